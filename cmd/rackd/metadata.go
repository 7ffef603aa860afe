package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/vishvananda/netlink"

	"github.com/rackstack/rackstack/fabric/cluster"
	"github.com/rackstack/rackstack/node/metadata"
	"github.com/rackstack/rackstack/node/ports"
)

// The metadata service sits behind a veth pair: the dataplane sends each
// port's requests to 169.254.169.254:80, rewritten to come from the port's
// own link-local address, out of metadataDataplaneDev; they arrive on
// metadataHostDev, which holds 169.254.169.254 and routes 169.254.0.0/16
// back the same way.
const (
	metadataDataplaneDev = "rsmeta0"
	metadataHostDev      = "rsmeta0h"
	metadataAddr         = "169.254.169.254"
)

// openMetadata makes the veth pair and the listener of the node's
// metadata service, and tells the ports agent where it is.
func openMetadata(node *cluster.Node, agent *ports.Agent, log *slog.Logger) (func(ctx context.Context) error, error) {
	if _, err := netlink.LinkByName(metadataHostDev); err != nil {
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: metadataHostDev}, PeerName: metadataDataplaneDev}
		if err := netlink.LinkAdd(veth); err != nil {
			return nil, fmt.Errorf("add veth %s: %w", metadataHostDev, err)
		}
	}
	host, err := netlink.LinkByName(metadataHostDev)
	if err != nil {
		return nil, fmt.Errorf("find %s: %w", metadataHostDev, err)
	}
	dp, err := netlink.LinkByName(metadataDataplaneDev)
	if err != nil {
		return nil, fmt.Errorf("find %s: %w", metadataDataplaneDev, err)
	}
	for _, l := range []netlink.Link{host, dp} {
		if err := netlink.LinkSetUp(l); err != nil {
			return nil, fmt.Errorf("set %s up: %w", l.Attrs().Name, err)
		}
	}
	if err := netlink.AddrReplace(host, &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP(metadataAddr), Mask: net.CIDRMask(32, 32)}}); err != nil {
		return nil, fmt.Errorf("address %s on %s: %w", metadataAddr, metadataHostDev, err)
	}
	_, linkLocal, _ := net.ParseCIDR("169.254.0.0/16")
	if err := netlink.RouteReplace(&netlink.Route{LinkIndex: host.Attrs().Index, Dst: linkLocal, Scope: netlink.SCOPE_LINK}); err != nil {
		return nil, fmt.Errorf("route 169.254.0.0/16 via %s: %w", metadataHostDev, err)
	}
	srv, err := metadata.New(metadata.Config{Ports: agent, State: node.Read, Log: log})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(metadataAddr, "80"))
	if err != nil {
		return nil, fmt.Errorf("listen for metadata: %w", err)
	}
	agent.MetadataDevice = metadataDataplaneDev
	return func(ctx context.Context) error { return srv.Serve(ctx, ln) }, nil
}
