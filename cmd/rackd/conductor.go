package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/rackstack/rackstack/fabric/baremetal/bmstate"
	"github.com/rackstack/rackstack/fabric/cluster"
	"github.com/rackstack/rackstack/fabric/compute"
	"github.com/rackstack/rackstack/fabric/image"
	"github.com/rackstack/rackstack/node/conductor"
	"github.com/rackstack/rackstack/provision"
	"github.com/rackstack/rackstack/provision/bmc"
	"github.com/rackstack/rackstack/provision/dhcp"
	"github.com/rackstack/rackstack/provision/tftp"
)

// openConductor starts the provisioning services on --provision-interface
// and the conductor that answers them and drives this node's bare-metal
// nodes; without the flag this node conducts nothing.
func openConductor(ctx context.Context, o *options, node *cluster.Node, images *image.Service, servers *compute.Service, log *slog.Logger) (*conductor.Conductor, *provision.Services, error) {
	if o.ProvisionInterface == "" {
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
	}
	svc, err := provision.Start(ctx, provision.Config{
		Interface: o.ProvisionInterface, DHCPMode: o.ProvisionDHCP, RangeStart: o.ProvisionRangeStart, RangeEnd: o.ProvisionRangeEnd,
		RamdiskDir: o.ProvisionRamdisk, HTTPPort: o.ProvisionHTTPPort, Log: log,
	}, c, provisionHooks(o, log))
	if err != nil {
		return nil, nil, err
	}
	c.Row = bmstate.Conductor{
		Interface: o.ProvisionInterface, Address: svc.Site.IP.String(), BootURL: svc.Site.HTTPURL, DHCPMode: o.ProvisionDHCP,
		Drivers: []string{"ipmi", "redfish", "fake-hardware"},
	}
	return c, svc, nil
}

// bmcs opens nodes' BMCs through provision/bmc. fake-hardware nodes keep
// one in-memory BMC each for the life of this process (keyed by their
// driver_info), so a power change made by one call is seen by the next.
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
	if driver == "fake-hardware" {
		opts = append(opts, bmc.WithFake(b.fake(info)))
	}
	return bmc.Open(ctx, creds, opts...)
}

func (b *bmcs) fake(info map[string]string) *bmc.Fake {
	keys := slices.Sorted(maps.Keys(info))
	var id strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&id, "%s=%s;", k, info[k])
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fakes == nil {
		b.fakes = map[string]*bmc.Fake{}
	}
	f := b.fakes[id.String()]
	if f == nil {
		f = bmc.NewFake()
		b.fakes[id.String()] = f
	}
	return f
}

// provisionHooks makes the DHCP and TFTP servers of the provisioning
// interface: DHCP answers PXE clients (proxy or full), TFTP serves the
// iPXE builds of Debian's ipxe package.
func provisionHooks(o *options, log *slog.Logger) provision.Hooks {
	return provision.Hooks{
		DHCP: func(s provision.Site) (provision.Server, error) {
			return dhcp.New(dhcp.Config{
				Interface: s.Interface, Mode: dhcp.Mode(s.DHCPMode), ServerIP: s.IP,
				Range:    dhcp.Range{Start: s.RangeStart, End: s.RangeEnd},
				LeaseDir: filepath.Join(o.DataDir, "baremetal"), Log: log,
				ScriptURL: func(mac net.HardwareAddr) string { return s.ScriptURL(mac.String()) },
			})
		},
		TFTP: func(s provision.Site) (provision.Server, error) {
			return tftp.New(tftp.Config{Addr: netip.AddrPortFrom(s.IP, tftp.Port), Dir: ipxeDir, Log: log})
		},
	}
}

// ipxeDir holds the iPXE builds real firmware loads (package ipxe).
const ipxeDir = "/usr/lib/ipxe"

// sealedPasswords opens the BMC passwords the API sealed with the cluster
// key, each bound to its node's id.
type sealedPasswords struct {
	box interface {
		Open(value string, aad []byte) ([]byte, error)
	}
}

func (p sealedPasswords) Unseal(n *bmstate.Node, key string) (string, error) {
	plain, err := p.box.Open(n.Secrets[key], []byte(n.ID))
	if err != nil {
		return "", fmt.Errorf("open sealed %s of node %s: %w", key, n.ID, err)
	}
	return string(plain), nil
}

// conductorKey is the key the conductor derives agent tokens from: made
// once, kept in the data dir, so tokens survive a restart.
func conductorKey(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if err == nil && len(key) >= 32 {
		return key, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read conductor key: %w", err)
	}
	key = make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("make conductor key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	if err := os.WriteFile(path+".tmp", key, 0o600); err != nil {
		return nil, fmt.Errorf("write conductor key: %w", err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return nil, fmt.Errorf("write conductor key: %w", err)
	}
	return key, nil
}
