package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"

	"github.com/rackstack/rackstack/fabric/baremetal/bmstate"
	"github.com/rackstack/rackstack/fabric/cluster"
	"github.com/rackstack/rackstack/fabric/compute"
	"github.com/rackstack/rackstack/fabric/image"
	"github.com/rackstack/rackstack/fabric/secrets"
	"github.com/rackstack/rackstack/node/conductor"
	"github.com/rackstack/rackstack/provision"
	"github.com/rackstack/rackstack/provision/bmc"
)

// openConductor starts the provisioning services on --provision-interface
// and the conductor that answers them and drives this node's bare-metal
// nodes. Without the flag this node conducts only Ironic's fake-hardware
// nodes, and only with --fake-hardware on (rackd dev's default): they boot
// nothing, so they need no provisioning services; the provisioning
// services are then nil.
func openConductor(ctx context.Context, o *options, node *cluster.Node, images *image.Service, servers *compute.Service, log *slog.Logger) (*conductor.Conductor, *provision.Services, error) {
	if o.ProvisionInterface == "" && o.FakeHardware != "on" {
		return nil, nil, nil
	}
	dir := filepath.Join(o.DataDir, "baremetal")
	key, err := conductorKey(filepath.Join(dir, "conductor.key"))
	if err != nil {
		return nil, nil, err
	}
	c := &conductor.Conductor{
		Name: o.Name, Dir: dir, Repl: node, Key: key,
		OpenBMC: (&bmcs{}).open, Unseal: sealedPasswords{node.Secrets()}, Images: images, Report: servers.Report, Log: log,
		CallbackTimeout: o.ProvisionCallbackTimeout, HeartbeatTimeout: o.ProvisionHeartbeatTimeout,
		AddPorts: o.InspectAddPorts,
	}
	if o.ProvisionInterface == "" {
		c.Row = bmstate.Conductor{Drivers: []string{bmc.DriverFake}}
		return c, nil, nil
	}
	svc, err := provision.Start(ctx, provision.Config{
		Interface: o.ProvisionInterface, DHCPMode: o.ProvisionDHCP, Range: o.ProvisionLeases,
		RamdiskDir: o.ProvisionRamdisk, HTTPPort: o.ProvisionHTTPPort, LeaseDir: dir, Log: log,
	}, c, provision.Hooks{})
	if err != nil {
		return nil, nil, err
	}
	c.Row = bmstate.Conductor{
		Interface: o.ProvisionInterface, Address: svc.Site.IP.String(), BootURL: svc.Site.HTTPURL, DHCPMode: o.ProvisionDHCP,
		Drivers: []string{"ipmi", "redfish", "fake-hardware"},
	}
	return c, svc, nil
}

// bmcs opens nodes' BMCs with provision/bmc. Each fake-hardware machine
// (by its driver_info) keeps one in-memory BMC, so its power state lasts
// from one call to the next as a real machine's does.
type bmcs struct {
	mu    sync.Mutex
	fakes map[string]*bmc.Fake
}

func (b *bmcs) open(ctx context.Context, driver string, info map[string]string, password string) (conductor.BMC, error) {
	creds, err := bmc.FromDriverInfo(driver, info, password)
	if err != nil {
		return nil, err
	}
	var opts []bmc.Option
	if driver == bmc.DriverFake {
		key := fmt.Sprint(info) // maps print sorted by key
		b.mu.Lock()
		if b.fakes == nil {
			b.fakes = map[string]*bmc.Fake{}
		}
		f := b.fakes[key]
		if f == nil {
			f = bmc.NewFake()
			b.fakes[key] = f
		}
		b.mu.Unlock()
		opts = append(opts, bmc.WithFake(f))
	}
	return bmc.Open(ctx, creds, opts...)
}

// sealedPasswords opens the BMC passwords the API sealed with the cluster
// key, each bound to its node's id.
type sealedPasswords struct {
	box interface {
		Open(value string, aad []byte) ([]byte, error)
	}
}

func (p sealedPasswords) Unseal(n *bmstate.Node, key string) (string, error) {
	plain, err := p.box.Open(n.Secrets[key], bmstate.SecretAAD(n.ID))
	if err != nil {
		return "", fmt.Errorf("open sealed %s of node %s: %w", key, n.ID, err)
	}
	return string(plain), nil
}

// conductorKey is the key the conductor derives agent tokens from: made
// once and kept in the data dir (written the way the cluster key is), so
// tokens survive a restart.
func conductorKey(path string) ([]byte, error) {
	k, err := secrets.Load(path)
	if errors.Is(err, secrets.ErrNoKey) {
		if k, err = secrets.NewKey(); err == nil {
			err = secrets.Save(path, k)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("conductor key: %w", err)
	}
	return k.Secret, nil
}
