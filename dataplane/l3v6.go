package dataplane

import (
	"fmt"
	"net/netip"

	"github.com/rackstack/rackstack/bpf"
)

// Router advertisement flags, as in bpf/dataplane.c.
const (
	raManaged = 0x80 // M
	raOther   = 0x40 // O
	piOnLink  = 0x80 // L
	piAuto    = 0x40 // A

	// route6MTUShift places the network's MTU in a route6's flags
	// (ROUTE6_MTU_SHIFT): what is routed onto it bigger gets packet too big.
	route6MTUShift = 16
)

// l3v6tables is the content of the IPv6 routing maps.
type l3v6tables struct {
	rifs6   map[bpf.DataplaneRif6Key]bpf.DataplaneRif6
	rmacs6  map[bpf.DataplaneFdbKey]bpf.DataplaneRif6
	routes6 map[bpf.DataplaneRoute6Key]bpf.DataplaneRoute6
	neighs6 map[bpf.DataplaneNeigh6Key]bpf.DataplaneNeigh
	ras     map[uint32]bpf.DataplaneRa
	exts6   map[uint32]bpf.DataplaneExt6 // by the external's key
	ext6In  map[bpf.DataplaneExt6Key]bpf.DataplaneExt6Val
}

func newL3v6Tables() l3v6tables {
	return l3v6tables{
		rifs6: map[bpf.DataplaneRif6Key]bpf.DataplaneRif6{}, rmacs6: map[bpf.DataplaneFdbKey]bpf.DataplaneRif6{},
		routes6: map[bpf.DataplaneRoute6Key]bpf.DataplaneRoute6{}, neighs6: map[bpf.DataplaneNeigh6Key]bpf.DataplaneNeigh{},
		ras: map[uint32]bpf.DataplaneRa{}, exts6: map[uint32]bpf.DataplaneExt6{}, ext6In: map[bpf.DataplaneExt6Key]bpf.DataplaneExt6Val{},
	}
}

func is6(a netip.Addr) bool { return a.Is6() && !a.Is4In6() }

// compileL3v6 adds the routers' IPv6 interfaces and routes and the IPv6
// neighbours to t. Each interface answers neighbour solicitations for its
// gateway address and for the link-local address of its MAC, the source
// of its router advertisements (when the subnet's ipv6_ra_mode asks for
// them) and so the next hop guests route by.
func compileL3v6(d Desired, devs map[string]device, t *tables) error {
	l := &t.l3v6
	for _, p := range d.Ports {
		if _, ok := devs[p.Device]; !ok {
			continue
		}
		for _, a := range p.Addrs {
			if is6(a.Addr()) && a.Bits() == 128 {
				l.neighs6[bpf.DataplaneNeigh6Key{Vlan: uint32(p.VLAN), Ip: a.Addr().As16()}] = bpf.DataplaneNeigh{Mac: mac6(p.MAC)}
			}
		}
	}
	for _, n := range d.Neighbors {
		if !is6(n.IP) {
			continue
		}
		if len(n.MAC) != 6 || n.VLAN == 0 || n.VLAN > 4094 {
			return fmt.Errorf("neighbor %s: MAC %q or VLAN %d invalid", n.IP, n.MAC, n.VLAN)
		}
		l.neighs6[bpf.DataplaneNeigh6Key{Vlan: uint32(n.VLAN), Ip: n.IP.As16()}] = bpf.DataplaneNeigh{Mac: mac6(n.MAC)}
	}
	scopes, err := scopeNumbers(d)
	if err != nil {
		return err
	}
	ext6, err := compileExt6(d, devs, l)
	if err != nil {
		return err
	}
	for _, r := range d.Routers {
		id := routerID(r.ID)
		var v6 []RouterInterface
		for _, ri := range r.Interfaces {
			if !is6(ri.IP.Addr()) {
				continue
			}
			if len(ri.MAC) != 6 {
				return fmt.Errorf("router %s: interface MAC %q is not Ethernet", r.ID, ri.MAC)
			}
			if ri.VLAN == 0 || ri.VLAN > 4094 {
				return fmt.Errorf("router %s: interface VLAN %d out of 1-4094", r.ID, ri.VLAN)
			}
			v6 = append(v6, ri)
			vlan, lla := uint32(ri.VLAN), linkLocal(ri.MAC).Addr()
			rif := bpf.DataplaneRif6{Router: id, Ip: ri.IP.Addr().As16(), Mac: mac6(ri.MAC), Scope: scopes[ri.Scope]}
			l.rifs6[bpf.DataplaneRif6Key{Vlan: vlan, Ip: rif.Ip}] = rif
			l.rifs6[bpf.DataplaneRif6Key{Vlan: vlan, Ip: lla.As16()}] = rif
			l.rmacs6[bpf.DataplaneFdbKey{Vlan: vlan, Mac: rif.Mac}] = rif
			l.routes6[route6Key(id, ri.IP.Masked())] = bpf.DataplaneRoute6{Vlan: vlan, Flags: uint32(ri.MTU) << route6MTUShift, Mac: rif.Mac, Scope: rif.Scope}
			if _, taken := l.ras[vlan]; !taken && ri.RAMode != "" {
				ra := bpf.DataplaneRa{Mac: rif.Mac, Lla: lla.As16(), Prefix: ri.IP.Masked().Addr().As16(), Plen: uint8(ri.IP.Bits()), Pflags: piOnLink, Mtu: uint32(ri.MTU)}
				switch ri.RAMode {
				case "slaac":
					ra.Pflags |= piAuto
				case "dhcpv6-stateless":
					ra.Flags, ra.Pflags = raOther, ra.Pflags|piAuto
				case "dhcpv6-stateful":
					ra.Flags = raManaged
				default:
					return fmt.Errorf("router %s: interface %s: ipv6_ra_mode %q unknown", r.ID, ri.IP, ri.RAMode)
				}
				l.ras[vlan] = ra
			}
		}
		for _, rt := range r.Routes {
			if !is6(rt.Dst.Addr()) || !is6(rt.Nexthop) {
				continue
			}
			var on *RouterInterface
			for i := range v6 {
				if v6[i].IP.Masked().Contains(rt.Nexthop) {
					on = &v6[i]
					break
				}
			}
			if on == nil {
				return fmt.Errorf("router %s: route %s via %s: the next hop is on none of its subnets", r.ID, rt.Dst, rt.Nexthop)
			}
			l.routes6[route6Key(id, rt.Dst.Masked())] = bpf.DataplaneRoute6{Vlan: uint32(on.VLAN), Flags: routeVia | uint32(on.MTU)<<route6MTUShift, Nexthop: rt.Nexthop.As16(), Mac: mac6(on.MAC), Scope: scopes[on.Scope]}
		}
		if err := compileGateway6(d, devs, l, r, v6, ext6, scopes); err != nil {
			return err
		}
	}
	return nil
}

func route6Key(router uint32, p netip.Prefix) bpf.DataplaneRoute6Key {
	return bpf.DataplaneRoute6Key{Prefixlen: 32 + uint32(p.Bits()), Router: router, Ip: p.Addr().As16()}
}
