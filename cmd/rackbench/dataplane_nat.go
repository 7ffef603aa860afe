package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/rackstack/rackstack/dataplane"
)

// The layer-3 paths of the dataplane suite (issue 13's benchmark):
//
//   - rackstack-routed: the client on a second subnet (VLAN 102) of the
//     server's node, routed to the server's subnet by a router in the
//     dataplane;
//   - rackstack-fip: the client outside, on the external network, dialling
//     the server's floating IP, which the dataplane translates 1:1;
//   - iptables-dnat: the same through a Neutron L3 agent's way, a router
//     namespace holding the floating IP on its gateway device, with
//     iptables DNAT and SNAT rules and conntrack.
//
// Each has the server's security group (rackstack) or no filter at all
// (iptables-dnat: its floating IP costs only NAT).

const (
	caseRouted = "rackstack-routed"
	caseFIP    = "rackstack-fip"
	caseDNAT   = "iptables-dnat"

	routedVLAN = 102
)

var (
	routedClientIP = netip.MustParseAddr("10.9.1.1")
	routedSubnet   = netip.MustParsePrefix("10.9.1.0/24")
	routedGateway  = netip.MustParseAddr("10.9.1.254")
	serverGateway  = netip.MustParseAddr("10.9.0.254")
	routerMACs     = [2]net.HardwareAddr{{0xfa, 0x16, 0x3e, 0x09, 0x00, 0xfe}, {0xfa, 0x16, 0x3e, 0x09, 0x01, 0xfe}}

	extSubnet   = netip.MustParsePrefix("172.24.9.0/24")
	extGateway  = netip.MustParseAddr("172.24.9.1") // the client: the outside's router
	routerExtIP = netip.MustParseAddr("172.24.9.2")
	dnatNodeIP  = netip.MustParseAddr("172.24.9.254")
	floatingIP  = netip.MustParseAddr("172.24.9.10")
	extMAC      = net.HardwareAddr{0xfa, 0x16, 0x3e, 0x09, 0xff, 0x01}
)

// admitFrom is the rules that let the benchmark's traffic in from remote.
func admitFrom(remote netip.Prefix) []dataplane.Rule {
	var out []dataplane.Rule
	for _, port := range []int{iperfPort, rrPort, connPort} {
		out = append(out, dataplane.Rule{Group: benchGroup, Ingress: true, Proto: 6, PortMin: port, PortMax: port, Remote: remote})
	}
	return out
}

// benchRouter is the router between the server's subnet and, for the
// routed path, the client's.
func benchRouter(routed bool) dataplane.Router {
	r := dataplane.Router{ID: "bench", Interfaces: []dataplane.RouterInterface{
		{VLAN: benchVLAN, MAC: routerMACs[0], IP: netip.PrefixFrom(serverGateway, benchSubnet.Bits())},
	}}
	if routed {
		r.Interfaces = append(r.Interfaces, dataplane.RouterInterface{VLAN: routedVLAN, MAC: routerMACs[1], IP: netip.PrefixFrom(routedGateway, routedSubnet.Bits())})
	}
	return r
}

func (b *dpBench) buildRouted(ctx context.Context, p *dpPath, name string) error {
	node, err := b.addNetns(ctx, name+"-node")
	if err != nil {
		return err
	}
	a, s := benchPorts()
	a.VLAN, a.Addrs = routedVLAN, []netip.Prefix{netip.PrefixFrom(routedClientIP, 32)}
	if err := b.plug(ctx, node, a.Device, p.client, a.MAC); err != nil {
		return err
	}
	if err := b.plug(ctx, node, s.Device, p.server, s.MAC); err != nil {
		return err
	}
	d, err := b.openDataplane(node)
	if err != nil {
		return err
	}
	want := benchDesired(p.rules, "", a, s)
	want.Rules = append(want.Rules, admitFrom(routedSubnet)...)
	want.Routers = []dataplane.Router{benchRouter(true)}
	p.clientAddr, p.clientGW, p.serverGW = netip.PrefixFrom(routedClientIP, routedSubnet.Bits()), routedGateway, serverGateway
	return applyPorts(d, want)
}

func (b *dpBench) buildFIP(ctx context.Context, p *dpPath, name string) error {
	node, err := b.addNetns(ctx, name+"-node")
	if err != nil {
		return err
	}
	_, s := benchPorts()
	if err := b.plug(ctx, node, s.Device, p.server, s.MAC); err != nil {
		return err
	}
	// The client's eth0 is the other end of the external network's device.
	if err := b.ip(ctx, "-n", node, "link", "add", "ext0", "address", extMAC.String(), "type", "veth", "peer", "name", "eth0", "netns", p.client); err != nil {
		return err
	}
	if err := b.ip(ctx, "-n", node, "link", "set", "ext0", "up"); err != nil {
		return err
	}
	d, err := b.openDataplane(node)
	if err != nil {
		return err
	}
	want := benchDesired(p.rules, "", s)
	want.Rules = append(want.Rules, admitFrom(extSubnet)...)
	r := benchRouter(false)
	r.Gateway = &dataplane.RouterGateway{External: "ext", IP: routerExtIP, SNAT: true}
	want.Routers = []dataplane.Router{r}
	want.Externals = []dataplane.External{{ID: "ext", Device: "ext0", Gateway: extGateway, Prefix: extSubnet, MAC: extMAC}}
	want.Floating = []dataplane.FloatingIP{{IP: floatingIP, Fixed: serverIP, Port: s.ID, Router: r.ID, External: "ext"}}
	p.clientAddr, p.serverGW, p.dst = netip.PrefixFrom(extGateway, extSubnet.Bits()), serverGateway, floatingIP
	if err := applyPorts(d, want); err != nil {
		return err
	}
	// Apply asks the external gateway (the client) for its MAC: again once
	// the client has its address.
	p.settle = func() error { return applyPorts(d, want) }
	return nil
}

func (b *dpBench) buildDNAT(ctx context.Context, p *dpPath, name string) error {
	node, err := b.addNetns(ctx, name+"-node")
	if err != nil {
		return err
	}
	steps := [][]string{
		// The router's internal port, the server's gateway.
		{"-n", node, "link", "add", "tb", "type", "veth", "peer", "name", "eth0", "address", serverMAC.String(), "netns", p.server},
		{"-n", node, "addr", "add", netip.PrefixFrom(serverGateway, benchSubnet.Bits()).String(), "dev", "tb"},
		{"-n", node, "link", "set", "tb", "up"},
		// Its gateway port on the external network, holding the floating IP.
		{"-n", node, "link", "add", "ext0", "type", "veth", "peer", "name", "eth0", "netns", p.client},
		{"-n", node, "addr", "add", netip.PrefixFrom(dnatNodeIP, extSubnet.Bits()).String(), "dev", "ext0"},
		{"-n", node, "addr", "add", netip.PrefixFrom(floatingIP, 32).String(), "dev", "ext0"},
		{"-n", node, "link", "set", "ext0", "up"},
	}
	for _, args := range steps {
		if err := b.ip(ctx, args...); err != nil {
			return err
		}
	}
	if err := runCmd(ctx, nil, "ip", "netns", "exec", node, "sysctl", "-qw", "net.ipv4.ip_forward=1"); err != nil {
		return err
	}
	p.clientAddr, p.serverGW, p.dst = netip.PrefixFrom(extGateway, extSubnet.Bits()), serverGateway, floatingIP
	return runCmd(ctx, strings.NewReader(dnatRuleset(floatingIP, serverIP)), "ip", "netns", "exec", node, "iptables-restore")
}

// dnatRuleset is the nat table a Neutron L3 agent writes for one floating
// IP: DNAT in, SNAT of the fixed address out.
func dnatRuleset(fip, fixed netip.Addr) string {
	var w strings.Builder
	for _, l := range []string{
		"*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]",
		fmt.Sprintf("-A PREROUTING -d %s/32 -j DNAT --to-destination %s", fip, fixed),
		fmt.Sprintf("-A POSTROUTING -s %s/32 -j SNAT --to-source %s", fixed, fip),
		"COMMIT",
	} {
		w.WriteString(l + "\n")
	}
	return w.String()
}
