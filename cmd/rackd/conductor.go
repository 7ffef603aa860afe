package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/rackstack/rackstack/fabric/baremetal/bmstate"
	"github.com/rackstack/rackstack/fabric/cluster"
	"github.com/rackstack/rackstack/fabric/compute"
	"github.com/rackstack/rackstack/fabric/image"
	"github.com/rackstack/rackstack/node/conductor"
	"github.com/rackstack/rackstack/provision"
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
		OpenBMC: openBMC, Unseal: sealedPasswords{node.Secrets()}, Images: images, Report: servers.Report, Log: log,
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

// openBMC connects to a node's BMC.
//
// SEAM (lead, at merge): provision/bmc's BMC already is a conductor.BMC;
// the body becomes
//
//	creds, err := bmc.FromDriverInfo(driver, info, password)
//	if err != nil {
//		return nil, err
//	}
//	return bmc.Open(ctx, creds)
//
// (fake-hardware needs one bmc.Fake per node kept across calls, through
// bmc.WithFake, or its power state resets on every open). Until then
// every BMC call fails with this error, which the conductor records as
// the node's last_error.
func openBMC(_ context.Context, driver string, _ map[string]string, _ string) (conductor.BMC, error) {
	return nil, fmt.Errorf("%s: no BMC driver in this build (provision/bmc is not wired)", driver)
}

// provisionHooks makes the DHCP and TFTP servers of the provisioning
// interface.
//
// SEAM (lead, at merge): with provision/dhcp and provision/tftp (both
// have New(Config) (*Server, error) and Serve(ctx) error):
//
//	DHCP: func(s provision.Site) (provision.Server, error) {
//		return dhcp.New(dhcp.Config{
//			Interface: s.Interface, Mode: dhcp.Mode(s.DHCPMode), ServerIP: s.IP,
//			Range:    dhcp.Range{Start: s.RangeStart, End: s.RangeEnd},
//			LeaseDir: filepath.Join(o.DataDir, "baremetal"), Log: log,
//			ScriptURL: func(mac net.HardwareAddr) string { return s.ScriptURL(mac.String()) },
//		})
//	},
//	TFTP: func(s provision.Site) (provision.Server, error) {
//		return tftp.New(tftp.Config{Addr: netip.AddrPortFrom(s.IP, 69), Dir: "/usr/lib/ipxe", Log: log})
//	},
//
// Until then provision.Start logs that each is missing and serves HTTP
// only.
func provisionHooks(_ *options, _ *slog.Logger) provision.Hooks {
	return provision.Hooks{}
}

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
