package dataplane

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/rackstack/rackstack/bpf"
)

// Route flags, as in bpf/dataplane.c.
const (
	routeVia      = 1
	routeExternal = 2
	routeSNAT     = 4
	// routeMTUShift places the network's MTU in a route's flags
	// (ROUTE_MTU_SHIFT, bpf/icmp4.h): what is routed onto it bigger with
	// DF set gets ICMP fragmentation needed.
	routeMTUShift = 16

	natRouted = 1 // NAT_ROUTED
)

// metaIP is the metadata service's address guests ask.
var (
	metaIP  = netip.AddrFrom4([4]byte{169, 254, 169, 254})
	metaNet = netip.MustParsePrefix("169.254.0.0/16")
)

// routerID names a router in the maps. It is a hash, so it survives
// restarts unchanged.
func routerID(id string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(id))
	if v := h.Sum32(); v != 0 {
		return v
	}
	return 1
}

// l3tables is the content of the routing, NAT and metadata maps.
type l3tables struct {
	rifs   map[bpf.DataplaneRifKey]bpf.DataplaneRif
	rmacs  map[bpf.DataplaneFdbKey]bpf.DataplaneRif
	routes map[bpf.DataplaneRouteKey]bpf.DataplaneRoute
	neighs map[bpf.DataplaneNeighKey]bpf.DataplaneNeigh
	fipOut map[bpf.DataplaneNatKey]bpf.DataplaneNat
	fipIn  map[bpf.DataplaneNatKey]bpf.DataplaneNat
	exts   map[uint32]bpf.DataplaneExt
	metas  map[uint32]uint32
	meta   bpf.DataplaneMetaCfg
}

func newL3Tables() l3tables {
	return l3tables{
		rifs: map[bpf.DataplaneRifKey]bpf.DataplaneRif{}, rmacs: map[bpf.DataplaneFdbKey]bpf.DataplaneRif{},
		routes: map[bpf.DataplaneRouteKey]bpf.DataplaneRoute{}, neighs: map[bpf.DataplaneNeighKey]bpf.DataplaneNeigh{},
		fipOut: map[bpf.DataplaneNatKey]bpf.DataplaneNat{}, fipIn: map[bpf.DataplaneNatKey]bpf.DataplaneNat{},
		exts: map[uint32]bpf.DataplaneExt{}, metas: map[uint32]uint32{},
	}
}

func ip4(a netip.Addr) [4]byte { return a.As4() }

// le reads an address as the programs hold it in a __u32: the bytes in
// network order, loaded on this (little-endian) machine.
func le(a netip.Addr) uint32 {
	b := a.As4()
	return binary.NativeEndian.Uint32(b[:])
}

func mac6(m net.HardwareAddr) (out [6]uint8) {
	copy(out[:], m)
	return out
}

// extKeyShift places an external network's VLAN in its key above the
// device's ifindex (EXT_VLAN_SHIFT in bpf/dataplane.c).
const extKeyShift = 20

// extKey names an external network in the maps: its device's ifindex,
// plus its VLAN above it when it is a VLAN of the uplink.
func extKey(ifindex uint32, vlan uint16) uint32 {
	return ifindex | uint32(vlan)<<extKeyShift
}

// compileL3 adds routers, neighbours, floating IPs, external networks and
// metadata redirection to t. IPv6 router interfaces and routes are
// compileL3v6's.
func compileL3(d Desired, devs map[string]device, t *tables) error {
	l := &t.l3
	ports := map[string]Port{}
	for _, p := range d.Ports {
		if _, ok := devs[p.Device]; !ok {
			continue
		}
		ports[p.ID] = p
		// Local ports are the neighbours routed traffic reaches here.
		for _, a := range p.Addrs {
			if a.Addr().Is4() && a.Bits() == 32 {
				l.neighs[bpf.DataplaneNeighKey{Vlan: uint32(p.VLAN), Ip: ip4(a.Addr())}] = bpf.DataplaneNeigh{Mac: mac6(p.MAC)}
			}
		}
	}
	for _, n := range d.Neighbors {
		if !n.IP.Is4() {
			continue
		}
		if len(n.MAC) != 6 || n.VLAN == 0 || n.VLAN > 4094 {
			return fmt.Errorf("neighbor %s: MAC %q or VLAN %d invalid", n.IP, n.MAC, n.VLAN)
		}
		l.neighs[bpf.DataplaneNeighKey{Vlan: uint32(n.VLAN), Ip: ip4(n.IP)}] = bpf.DataplaneNeigh{Mac: mac6(n.MAC)}
	}

	exts := map[string]External{}
	extKeys := map[string]uint32{}
	for _, e := range d.Externals {
		switch {
		case e.Device == "":
			return fmt.Errorf("external %s: no device", e.ID)
		case e.VLAN > 4094:
			return fmt.Errorf("external %s: VLAN %d out of 0-4094", e.ID, e.VLAN)
		case e.VLAN != 0 && e.Device != d.Uplink:
			// ext_in takes untagged frames; uplink_in sorts VLANs.
			return fmt.Errorf("external %s: VLAN %d on %s: a VLAN external network rides on the uplink (%q)", e.ID, e.VLAN, e.Device, d.Uplink)
		case len(e.MAC) != 6:
			return fmt.Errorf("external %s: MAC %q is not Ethernet", e.ID, e.MAC)
		case !e.Prefix.Addr().Is4() || !e.Gateway.Is4():
			return fmt.Errorf("external %s: prefix %s and gateway %s must be IPv4", e.ID, e.Prefix, e.Gateway)
		}
		dev, ok := devs[e.Device]
		if !ok {
			return fmt.Errorf("external %s: device %s not found", e.ID, e.Device)
		}
		if dev.ifindex >= 1<<extKeyShift {
			return fmt.Errorf("external %s: ifindex %d of %s too large to key", e.ID, dev.ifindex, e.Device)
		}
		key := extKey(dev.ifindex, e.VLAN)
		if _, dup := l.exts[key]; dup {
			return fmt.Errorf("external %s: another external network is on %s VLAN %d too", e.ID, e.Device, e.VLAN)
		}
		mask := net.CIDRMask(e.Prefix.Bits(), 32)
		x := bpf.DataplaneExt{Ifindex: dev.ifindex, Vlan: uint32(e.VLAN), Mac: mac6(e.MAC), Gateway: ip4(e.Gateway), Net: ip4(e.Prefix.Masked().Addr())}
		copy(x.Mask[:], mask)
		l.exts[key] = x
		exts[e.ID] = e
		extKeys[e.ID] = key
	}

	scopes, err := scopeNumbers(d)
	if err != nil {
		return err
	}
	routers := map[string]Router{}
	for _, r := range d.Routers {
		routers[r.ID] = r
		id := routerID(r.ID)
		var v4 []RouterInterface
		for _, ri := range r.Interfaces {
			if !ri.IP.Addr().Is4() {
				continue
			}
			if len(ri.MAC) != 6 {
				return fmt.Errorf("router %s: interface MAC %q is not Ethernet", r.ID, ri.MAC)
			}
			if ri.VLAN == 0 || ri.VLAN > 4094 {
				return fmt.Errorf("router %s: interface VLAN %d out of 1-4094", r.ID, ri.VLAN)
			}
			v4 = append(v4, ri)
			rif := bpf.DataplaneRif{Router: id, Ip: ip4(ri.IP.Addr()), Mac: mac6(ri.MAC), Scope: scopes[ri.Scope]}
			l.rifs[bpf.DataplaneRifKey{Vlan: uint32(ri.VLAN), Ip: rif.Ip}] = rif
			l.rmacs[bpf.DataplaneFdbKey{Vlan: uint32(ri.VLAN), Mac: rif.Mac}] = rif
			l.routes[routeKey(id, ri.IP.Masked())] = bpf.DataplaneRoute{Vlan: uint32(ri.VLAN), Flags: uint32(ri.MTU) << routeMTUShift, Mac: rif.Mac, Scope: rif.Scope}
		}
		if g := r.Gateway; g != nil {
			e, ok := exts[g.External]
			if !ok {
				return fmt.Errorf("router %s: gateway on external %s, which this node does not reach", r.ID, g.External)
			}
			if !g.IP.Is4() || !e.Prefix.Contains(g.IP) {
				return fmt.Errorf("router %s: gateway address %s is not an IPv4 address of external %s (%s)", r.ID, g.IP, e.ID, e.Prefix)
			}
			ext := extKeys[e.ID]
			rt := bpf.DataplaneRoute{Vlan: ext, Flags: routeExternal, Nexthop: ip4(g.IP)}
			if g.SNAT {
				rt.Flags |= routeSNAT
			}
			l.routes[routeKey(id, netip.PrefixFrom(netip.IPv4Unspecified(), 0))] = rt
			// ARP for the gateway address is answered; what comes in to
			// it finds its flow in the SNAT map, or is dropped.
			l.fipIn[bpf.DataplaneNatKey{Ifindex: ext, Ip: ip4(g.IP)}] = bpf.DataplaneNat{}
		}
		for _, rt := range r.Routes {
			if !rt.Dst.Addr().Is4() || !rt.Nexthop.Is4() {
				continue
			}
			var on *RouterInterface
			for i := range v4 {
				if v4[i].IP.Masked().Contains(rt.Nexthop) {
					on = &v4[i]
					break
				}
			}
			if on == nil {
				return fmt.Errorf("router %s: route %s via %s: the next hop is on none of its subnets", r.ID, rt.Dst, rt.Nexthop)
			}
			l.routes[routeKey(id, rt.Dst.Masked())] = bpf.DataplaneRoute{Vlan: uint32(on.VLAN), Flags: routeVia | uint32(on.MTU)<<routeMTUShift, Nexthop: ip4(rt.Nexthop), Mac: mac6(on.MAC), Scope: scopes[on.Scope]}
		}
	}

	for _, f := range d.Floating {
		p, ok := ports[f.Port]
		if !ok {
			continue // not plugged here (yet)
		}
		e, ok := exts[f.External]
		if !ok {
			return fmt.Errorf("floating IP %s: external %s is not one this node reaches", f.IP, f.External)
		}
		if !f.IP.Is4() || !f.Fixed.Is4() || !e.Prefix.Contains(f.IP) {
			return fmt.Errorf("floating IP %s: not an IPv4 address of external %s (%s), or fixed IP %s not IPv4", f.IP, e.ID, e.Prefix, f.Fixed)
		}
		r, ok := routers[f.Router]
		if !ok {
			return fmt.Errorf("floating IP %s: router %s unknown", f.IP, f.Router)
		}
		var rmac net.HardwareAddr
		for _, ri := range r.Interfaces {
			if ri.VLAN == p.VLAN && ri.IP.Masked().Contains(f.Fixed) {
				rmac = ri.MAC
			}
		}
		if rmac == nil {
			return fmt.Errorf("floating IP %s: router %s has no interface on port %s's subnet of %s", f.IP, f.Router, f.Port, f.Fixed)
		}
		port, ext := devs[p.Device].ifindex, extKeys[e.ID]
		l.fipOut[bpf.DataplaneNatKey{Ifindex: port, Ip: ip4(f.Fixed)}] = bpf.DataplaneNat{Ifindex: ext, Ip: ip4(f.IP)}
		l.fipIn[bpf.DataplaneNatKey{Ifindex: ext, Ip: ip4(f.IP)}] = bpf.DataplaneNat{Ifindex: port, Ip: ip4(f.Fixed), Mac: mac6(rmac)}
	}

	// A router without SNAT routes its ports' fixed IPs out as they are,
	// and what comes back to them in (the outside routes the subnets to
	// the router's gateway address): 1:1 NAT of each address to itself.
	// So does a router with SNAT for its subnets in its gateway's address
	// scope (RouterInterface.NoSNAT). A subnet of another scope than the
	// gateway's is never routed out as it is: without SNAT it reaches the
	// outside only by a floating IP.
	for _, r := range d.Routers {
		g := r.Gateway
		if g == nil {
			continue
		}
		ext := extKeys[g.External]
		for _, p := range ports {
			port := devs[p.Device].ifindex
			for _, a := range p.Addrs {
				if !a.Addr().Is4() || a.Bits() != 32 {
					continue
				}
				out := bpf.DataplaneNatKey{Ifindex: port, Ip: ip4(a.Addr())}
				if _, floating := l.fipOut[out]; floating {
					continue
				}
				for _, ri := range r.Interfaces {
					if ri.VLAN == p.VLAN && ri.IP.Addr().Is4() && ri.IP.Masked().Contains(a.Addr()) && (ri.NoSNAT || !g.SNAT && ri.Scope == g.Scope) {
						l.fipOut[out] = bpf.DataplaneNat{Ifindex: ext, Ip: out.Ip}
						l.fipIn[bpf.DataplaneNatKey{Ifindex: ext, Ip: out.Ip}] = bpf.DataplaneNat{Ifindex: port, Ip: out.Ip, Mac: mac6(ri.MAC), Flags: natRouted}
						break
					}
				}
			}
		}
	}

	if m := d.Metadata; m != nil {
		dev, ok := devs[m.Device]
		if !ok {
			return fmt.Errorf("metadata: device %s not found", m.Device)
		}
		if !dev.veth || dev.peer == ([6]byte{}) {
			return fmt.Errorf("metadata: device %s is not a veth whose peer the server listens on", m.Device)
		}
		l.meta = bpf.DataplaneMetaCfg{Ifindex: dev.ifindex, Mac: dev.mac, Peer: dev.peer}
		seen := map[netip.Addr]string{}
		for _, p := range d.Ports {
			dev, ok := devs[p.Device]
			if !ok || !p.MetaAddr.IsValid() {
				continue
			}
			if !metaNet.Contains(p.MetaAddr) || p.MetaAddr == metaIP {
				return fmt.Errorf("port %s: metadata address %s is not a 169.254.0.0/16 address other than %s", p.ID, p.MetaAddr, metaIP)
			}
			if other, dup := seen[p.MetaAddr]; dup {
				return fmt.Errorf("port %s: metadata address %s is port %s's too", p.ID, p.MetaAddr, other)
			}
			seen[p.MetaAddr] = p.ID
			l.metas[dev.ifindex] = le(p.MetaAddr)
		}
	}
	return nil
}

func routeKey(router uint32, p netip.Prefix) bpf.DataplaneRouteKey {
	return bpf.DataplaneRouteKey{Prefixlen: 32 + uint32(p.Bits()), Router: router, Ip: ip4(p.Addr())}
}

// gatewayProbe is how to ask an external network's gateway for its MAC.
type gatewayProbe struct {
	ext     string
	key     uint32 // the external network's key in the maps
	ifindex uint32
	vlan    uint16
	mac     net.HardwareAddr
	from    netip.Addr // one of this node's addresses on the network
	gateway netip.Addr
}

// gatewayProbes lists, per external network, an address of ours to ask
// its gateway from: a floating IP here or a router's gateway address.
func gatewayProbes(want Desired, devs map[string]device) []gatewayProbe {
	from := map[string]netip.Addr{}
	for _, f := range want.Floating {
		if _, ok := from[f.External]; !ok && f.IP.Is4() {
			from[f.External] = f.IP
		}
	}
	for _, r := range want.Routers {
		if g := r.Gateway; g != nil && g.IP.Is4() {
			if _, ok := from[g.External]; !ok {
				from[g.External] = g.IP
			}
		}
	}
	var out []gatewayProbe
	for _, e := range want.Externals {
		dev, ok := devs[e.Device]
		if a, has := from[e.ID]; ok && has {
			out = append(out, gatewayProbe{ext: e.ID, key: extKey(dev.ifindex, e.VLAN), ifindex: dev.ifindex, vlan: e.VLAN, mac: e.MAC, from: a, gateway: e.Gateway})
		}
	}
	return append(out, gatewayProbes6(want, devs)...)
}

// resolveGateways asks each external gateway ext_in has not learnt the MAC
// of yet: traffic out of a router needs it, and a gateway that never
// speaks first would never be learnt. Its answer comes back to ext_in,
// which learns it as it learns any ARP on the network.
func (d *Dataplane) resolveGateways() {
	for _, g := range d.gateways {
		if g.gateway.Is6() {
			d.resolveGateway6(g)
			continue
		}
		var nb bpf.DataplaneNeigh
		if d.objs.ExtNeighs.Lookup(bpf.DataplaneNeighKey{Vlan: g.key, Ip: ip4(g.gateway)}, &nb) == nil {
			continue
		}
		if err := d.inNetns(func() error { return sendARP(int(g.ifindex), g.vlan, g.mac, g.from, g.gateway) }); err != nil {
			d.log.Warn("ask the external gateway for its MAC", "external", g.ext, "gateway", g.gateway, "err", err)
		}
	}
}

// sendARP broadcasts "who has to? tell from" out of the device, tagged
// with vlan unless it is 0.
func sendARP(ifindex int, vlan uint16, mac net.HardwareAddr, from, to netip.Addr) error {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0) // 0: send only, receive nothing
	if err != nil {
		return fmt.Errorf("open packet socket: %w", err)
	}
	defer unix.Close(fd)
	bcast := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	f := append(append([]byte{}, bcast...), mac...)
	if vlan != 0 {
		f = append(f, 0x81, 0x00, byte(vlan>>8), byte(vlan))
	}
	f = append(f, 0x08, 0x06)
	f = append(f, 0, 1, 8, 0, 6, 4, 0, 1)
	a, b := from.As4(), to.As4()
	f = append(append(append(f, mac...), a[:]...), make([]byte, 6)...)
	f = append(f, b[:]...)
	sa := &unix.SockaddrLinklayer{Ifindex: ifindex, Protocol: htons(unix.ETH_P_ARP), Halen: 6}
	copy(sa.Addr[:], bcast)
	if err := unix.Sendto(fd, f, 0, sa); err != nil {
		return fmt.Errorf("send ARP request: %w", err)
	}
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
