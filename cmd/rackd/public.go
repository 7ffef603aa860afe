package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/rackstack/rackstack/fabric/identity"
	"github.com/rackstack/rackstack/fabric/network"
)

// A dev cloud's way in from the host: the flat external network "public"
// is a veth pair in the dataplane's namespace (rackd's own, in dev). The host side (publicHostDev) holds the subnet's first
// address, the outside's gateway; the dataplane sends the external
// network's traffic (floating IPs, SNAT) out of the other side
// (publicDataplaneDev), so it arrives in the host's stack, and takes the
// host's replies in there.
const (
	publicPhysnet      = "public"
	publicHostDev      = "rspub0"
	publicDataplaneDev = "rspub0dp"
)

// publicSubnet parses --public: an IPv4 subnet with room for the host's
// address, routers' gateways and floating IPs.
func publicSubnet(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() || p.Bits() > 29 || p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("--public %q: want an IPv4 subnet of at most /29 with its host bits zero, or off", s)
	}
	return p, nil
}

// publicGateway is the host's address on the public subnet.
func publicGateway(p netip.Prefix) netip.Addr { return p.Addr().Next() }

// ensurePublicLink makes (or finds) the veth pair for the rackd on
// dataDir and gives the host side its address, and no other (an earlier
// owner's on another subnet); it returns the dataplane side's MAC. A pair
// another running rackd owns is *linkInUse.
func ensurePublicLink(p netip.Prefix, dataDir string) (net.HardwareAddr, error) {
	host, dp, err := claimVeth(publicHostDev, publicDataplaneDev, dataDir)
	if err != nil {
		return nil, err
	}
	gw := publicGateway(p)
	addrs, err := netlink.AddrList(host, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("addresses of %s: %w", publicHostDev, err)
	}
	for _, a := range addrs {
		if ones, _ := a.Mask.Size(); a.IP.Equal(gw.AsSlice()) && ones == p.Bits() {
			continue
		}
		if err := netlink.AddrDel(host, &a); err != nil {
			return nil, fmt.Errorf("remove %s from %s: %w", a.IPNet, publicHostDev, err)
		}
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: gw.AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}}
	if err := netlink.AddrReplace(host, addr); err != nil {
		return nil, fmt.Errorf("address %s on %s: %w", addr, publicHostDev, err)
	}
	for _, l := range []netlink.Link{host, dp} {
		if err := netlink.LinkSetUp(l); err != nil {
			return nil, fmt.Errorf("set %s up: %w", l.Attrs().Name, err)
		}
	}
	return dp.Attrs().HardwareAddr, nil
}

// ensurePublicNetwork makes the external network "public" once this node
// leads and the admin project exists; a cloud that has one keeps it.
func ensurePublicNetwork(ctx context.Context, o *options, isLeader func() bool, ident *identity.Service, nets *network.Service, log *slog.Logger) error {
	p, err := publicSubnet(o.Public)
	if err != nil {
		return err
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var last error
	for i := 0; ; i++ {
		if isLeader() {
			project, err := ident.ProjectID(ctx, "default", "admin")
			if err == nil {
				_, err = nets.EnsureExternal(ctx, network.External{Name: "public", Project: project, Physnet: publicPhysnet, CIDR: p, Gateway: publicGateway(p)})
				if err == nil {
					log.Info("external network public", "subnet", p, "host", publicHostDev, "gateway", publicGateway(p))
					return nil
				}
			}
			last = err
		}
		if i == 300 && last != nil {
			log.Warn("external network public not made yet; still trying", "err", last)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
