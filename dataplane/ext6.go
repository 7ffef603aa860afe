package dataplane

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/rackstack/rackstack/bpf"
	"github.com/rackstack/rackstack/dataplane/ndp"
)

// IPv6 through a router's external gateway (bpf/ext6.h): no NAT, as in
// Neutron. The router's default route leads out of its gateway, its
// gateway address answers neighbour solicitations and pings on the
// external network, and its local ports' addresses in the gateway's scope
// are reached from outside, through their ingress security groups.

// compileExt6 fills exts6 with the IPv6 subnets of d's external networks
// and returns their keys by external ID.
func compileExt6(d Desired, devs map[string]device, l *l3v6tables) (map[string]uint32, error) {
	keys := map[string]uint32{}
	for _, e := range d.Externals {
		if !e.Prefix6.IsValid() {
			continue
		}
		if !is6(e.Prefix6.Addr()) || (e.Gateway6.IsValid() && !e.Prefix6.Contains(e.Gateway6)) {
			return nil, fmt.Errorf("external %s: IPv6 prefix %s or gateway %s invalid", e.ID, e.Prefix6, e.Gateway6)
		}
		dev, ok := devs[e.Device]
		if !ok {
			continue // compileL3 refuses a missing device
		}
		key := extKey(dev.ifindex, e.VLAN)
		x := bpf.DataplaneExt6{Net: e.Prefix6.Masked().Addr().As16(), Plen: uint32(e.Prefix6.Bits())}
		if e.Gateway6.IsValid() {
			x.Gateway = e.Gateway6.As16()
		}
		l.exts6[key] = x
		keys[e.ID] = key
	}
	return keys, nil
}

// compileGateway6 gives router r (whose IPv6 interfaces are v6) its route
// out of its gateway's IPv6 address, and the way in to it and to the
// local ports' addresses the router routes out as they are: those of its
// interfaces in the gateway's address scope.
func compileGateway6(d Desired, devs map[string]device, l *l3v6tables, r Router, v6 []RouterInterface, ext6 map[string]uint32, scopes map[string]uint16) error {
	g := r.Gateway
	if g == nil || !g.IP6.IsValid() {
		return nil
	}
	key, ok := ext6[g.External]
	if !ok {
		return nil // no IPv6 on that external network here
	}
	if x := l.exts6[key]; !is6(g.IP6) || !netip.PrefixFrom(netip.AddrFrom16(x.Net), int(x.Plen)).Contains(g.IP6) {
		return fmt.Errorf("router %s: gateway address %s is not an IPv6 address of external %s", r.ID, g.IP6, g.External)
	}
	id := routerID(r.ID)
	def := route6Key(id, netip.PrefixFrom(netip.IPv6Unspecified(), 0))
	if _, static := l.routes6[def]; !static {
		l.routes6[def] = bpf.DataplaneRoute6{Vlan: key, Flags: routeExternal, Nexthop: g.IP6.As16(), Scope: scopes[g.Scope6]}
	}
	l.ext6In[bpf.DataplaneExt6Key{Ext: key, Ip: g.IP6.As16()}] = bpf.DataplaneExt6Val{}
	for _, p := range d.Ports {
		dev, ok := devs[p.Device]
		if !ok {
			continue
		}
		for _, a := range p.Addrs {
			if !is6(a.Addr()) || a.Bits() != 128 {
				continue
			}
			for _, ri := range v6 {
				if ri.VLAN == p.VLAN && ri.IP.Masked().Contains(a.Addr()) && ri.Scope == g.Scope6 {
					l.ext6In[bpf.DataplaneExt6Key{Ext: key, Ip: a.Addr().As16()}] = bpf.DataplaneExt6Val{Ifindex: dev.ifindex, Mac: mac6(ri.MAC)}
					break
				}
			}
		}
	}
	return nil
}

// gatewayProbes6 lists, per external network with an IPv6 gateway, a
// router's IPv6 gateway address to solicit it from.
func gatewayProbes6(want Desired, devs map[string]device) []gatewayProbe {
	from := map[string]netip.Addr{}
	for _, r := range want.Routers {
		if g := r.Gateway; g != nil && g.IP6.IsValid() {
			if _, ok := from[g.External]; !ok {
				from[g.External] = g.IP6
			}
		}
	}
	var out []gatewayProbe
	for _, e := range want.Externals {
		dev, ok := devs[e.Device]
		if a, has := from[e.ID]; ok && has && e.Gateway6.IsValid() {
			out = append(out, gatewayProbe{ext: e.ID, key: extKey(dev.ifindex, e.VLAN), ifindex: dev.ifindex, vlan: e.VLAN, mac: e.MAC, from: a, gateway: e.Gateway6})
		}
	}
	return out
}

// resolveGateway6 solicits g's gateway unless ext_in has learnt its MAC:
// its advertisement comes back to ext_in, which learns it.
func (d *Dataplane) resolveGateway6(g gatewayProbe) {
	var nb bpf.DataplaneNeigh
	if d.objs.ExtNeighs6.Lookup(bpf.DataplaneNeigh6Key{Vlan: g.key, Ip: g.gateway.As16()}, &nb) == nil {
		return
	}
	if err := d.inNetns(func() error { return sendNS(int(g.ifindex), g.vlan, g.mac, g.from, g.gateway) }); err != nil {
		d.log.Warn("ask the external IPv6 gateway for its MAC", "external", g.ext, "gateway", g.gateway, "err", err)
	}
}

// sendNS sends "who has to? tell from" (a neighbour solicitation to to's
// solicited-node group, with our link-layer address) out of the device,
// tagged with vlan unless it is 0.
func sendNS(ifindex int, vlan uint16, mac net.HardwareAddr, from, to netip.Addr) error {
	t := to.As16()
	group := [16]byte{0xff, 0x02, 11: 1, 12: 0xff, 13: t[13], 14: t[14], 15: t[15]}
	dst := net.HardwareAddr{0x33, 0x33, 0xff, t[13], t[14], t[15]}
	src := from.As16()
	icmp := append([]byte{135, 0, 0, 0, 0, 0, 0, 0}, t[:]...)
	icmp = append(append(icmp, 1, 1), mac...)
	sum := ndp.Checksum(src, group, icmp)
	icmp[2], icmp[3] = byte(sum>>8), byte(sum)
	f := append(append([]byte{}, dst...), mac...)
	if vlan != 0 {
		f = append(f, 0x81, 0x00, byte(vlan>>8), byte(vlan))
	}
	f = append(f, 0x86, 0xdd, 0x60, 0, 0, 0, 0, byte(len(icmp)), 58, 255)
	f = append(append(append(f, src[:]...), group[:]...), icmp...)
	if err := ndp.Send(ifindex, f); err != nil {
		return fmt.Errorf("send neighbour solicitation: %w", err)
	}
	return nil
}
