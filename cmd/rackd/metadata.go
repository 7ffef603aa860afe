package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/rackstack/rackstack/fabric/cluster"
	"github.com/rackstack/rackstack/fabric/compute"
	"github.com/rackstack/rackstack/node/hypervisor"
	"github.com/rackstack/rackstack/node/metadata"
	"github.com/rackstack/rackstack/node/ports"
)

// The metadata service sits behind a veth pair in the dataplane's
// namespace: the dataplane sends each port's requests to
// 169.254.169.254:80, rewritten to come from the port's own link-local
// address, out of metadataDataplaneDev; they arrive on metadataHostDev,
// which holds 169.254.169.254/16, so the replies go back the same way.
const (
	metadataDataplaneDev = "rsmeta0"
	metadataHostDev      = "rsmeta0h"
	metadataAddr         = "169.254.169.254"
)

// openMetadata makes the veth pair and the listener of the node's
// metadata service, and tells the ports agent where it is.
// Guests post their password to it; servers keeps it.
func openMetadata(netnsPath, dataDir string, node *cluster.Node, agent *ports.Agent, servers *compute.Service, drv hypervisor.Driver, log *slog.Logger) (func(ctx context.Context) error, error) {
	var ln net.Listener
	err := inNetns(netnsPath, func() error {
		var err error
		ln, err = metadataLink(dataDir)
		return err
	})
	var inUse *linkInUse
	if errors.As(err, &inUse) {
		return nil, fmt.Errorf("%w: its metadata server answers there; give this rackd its own namespace (--dataplane-netns) for a metadata service of its own", err)
	}
	if err != nil {
		return nil, err
	}
	srv, err := metadata.New(metadata.Config{Ports: agent, State: node.Read, SetPassword: servers.SetPassword, GuestDevices: guestDevices(drv), Log: log})
	if err != nil {
		ln.Close()
		return nil, err
	}
	agent.MetadataDevice = metadataDataplaneDev
	return func(ctx context.Context) error { return srv.Serve(ctx, ln) }, nil
}

// metadataLink makes the veth pair for the rackd on dataDir, in the
// namespace the thread is in, and listens behind it. A pair another
// running rackd owns is *linkInUse: its metadata server holds the address.
func metadataLink(dataDir string) (net.Listener, error) {
	host, dp, err := claimVeth(metadataHostDev, metadataDataplaneDev, dataDir)
	if err != nil {
		return nil, err
	}
	for _, l := range []netlink.Link{host, dp} {
		if err := netlink.LinkSetUp(l); err != nil {
			return nil, fmt.Errorf("set %s up: %w", l.Attrs().Name, err)
		}
	}
	if err := netlink.AddrReplace(host, &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP(metadataAddr), Mask: net.CIDRMask(16, 32)}}); err != nil {
		return nil, fmt.Errorf("address %s on %s: %w", metadataAddr, metadataHostDev, err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(metadataAddr, "80"))
	if err != nil {
		return nil, fmt.Errorf("listen for metadata: %w", err)
	}
	return ln, nil
}

// inNetns runs fn on a thread inside the namespace at path ("": rackd's
// own): links made and sockets opened there stay there.
func inNetns(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	target, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", path, err)
	}
	defer target.Close()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter netns %s: %w", path, err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: it dies with this goroutine.
		return errors.Join(ferr, fmt.Errorf("leave netns: %w", err))
	}
	runtime.UnlockOSThread()
	return ferr
}
