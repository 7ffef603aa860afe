package ports

import (
	"encoding/binary"
	"hash/fnv"
	"net"
	"net/netip"
	"sort"
	"strings"

	"github.com/rackstack/rackstack/dataplane"
	"github.com/rackstack/rackstack/fabric/network/netstate"
)

// Layer 3 as one node enforces it: the routers its ports reach, the
// floating IPs of its ports, the external networks it has a device on,
// and which link-local address each of its ports' metadata requests come
// from.

const (
	routerInterfaceOwner = "network:router_interface"
)

// Reach is how this node reaches external networks: by Flat, a flat
// physical network's device (rackd dev's "public"), and by Uplink the
// VLANs of the physical network. MACs are this node's MAC on each device.
type Reach struct {
	Flat   map[string]string // physical network → device
	Uplink string
	MACs   map[string]net.HardwareAddr // device → MAC
}

// addL3 adds to d (FromView's result for node) the routers, floating IPs
// and external networks of node's ports, and the ports elsewhere its
// routers route to.
func addL3(d *dataplane.Desired, v *netstate.View, node string, reach Reach) {
	nets := map[string]netstate.Network{}
	for _, n := range v.Networks {
		nets[n.ID] = n
	}
	subnets := map[string]netstate.Subnet{}
	for _, s := range v.Subnets {
		subnets[s.ID] = s
	}
	ports := map[string]netstate.Port{}
	for _, p := range v.Ports {
		ports[p.ID] = p
	}
	local := map[string]bool{} // networks this node has ports on
	here := map[string]bool{}  // ports this node hosts
	for _, p := range d.Ports {
		here[p.ID] = true
		local[ports[p.ID].NetworkID] = true
	}

	for _, n := range v.Networks {
		if !n.External {
			continue
		}
		if x, ok := external(n, v.Subnets, reach); ok {
			d.Externals = append(d.Externals, x)
		}
	}
	reachable := map[string]bool{}
	for _, x := range d.Externals {
		reachable[x.ID] = true
	}

	ifaces := map[string][]netstate.Port{} // router → its interface ports
	for _, p := range v.Ports {
		if p.DeviceOwner == routerInterfaceOwner {
			ifaces[p.DeviceID] = append(ifaces[p.DeviceID], p)
		}
	}
	routed := map[string]bool{} // networks the node's routers route to
	scopeOf := subnetScopes(v)
	for _, r := range v.Routers {
		if !r.AdminStateUp || !reachesAny(ifaces[r.ID], local) {
			continue
		}
		dr := dataplane.Router{ID: r.ID}
		for _, p := range ifaces[r.ID] {
			n, ok := nets[p.NetworkID]
			mac, err := net.ParseMAC(p.MAC)
			if !ok || n.SegmentationID <= 0 || err != nil {
				continue
			}
			for _, f := range p.FixedIPs {
				s, ok := subnets[f.SubnetID]
				ip, err := netip.ParseAddr(f.IP)
				pfx, perr := netip.ParsePrefix(s.CIDR)
				if !ok || err != nil || perr != nil {
					continue
				}
				ri := dataplane.RouterInterface{VLAN: uint16(n.SegmentationID), MAC: mac, IP: netip.PrefixFrom(ip, pfx.Bits()), Scope: scopeOf[s.ID], MTU: uint16(n.MTU)}
				if s.IPVersion == 6 {
					ri.RAMode = s.IPv6RAMode
				}
				dr.Interfaces = append(dr.Interfaces, ri)
			}
		}
		if g := r.Gateway; g != nil && reachable[g.NetworkID] {
			if ip, ok := firstV4(ports[g.PortID]); ok {
				dr.Gateway = &dataplane.RouterGateway{External: g.NetworkID, IP: ip, SNAT: g.SNAT}
				markSameScope(&dr, ports[g.PortID], scopeOf)
				dr.Gateway.IP6, dr.Gateway.Scope6 = gateway6(ports[g.PortID], scopeOf)
			}
		}
		for _, rt := range r.Routes {
			dst, err1 := netip.ParsePrefix(rt.Destination)
			hop, err2 := netip.ParseAddr(rt.Nexthop)
			if err1 == nil && err2 == nil {
				dr.Routes = append(dr.Routes, dataplane.Route{Dst: dst, Nexthop: hop})
			}
		}
		d.Routers = append(d.Routers, dr)
		for _, p := range ifaces[r.ID] {
			routed[p.NetworkID] = true
		}
	}
	d.Neighbors = neighbors(v.Ports, nets, routed, node)

	for _, f := range v.Floating {
		if f.FixedPortID == "" || !here[f.FixedPortID] || !reachable[f.NetworkID] {
			continue
		}
		ip, err1 := netip.ParseAddr(f.IP)
		fixed, err2 := netip.ParseAddr(f.FixedIP)
		if err1 != nil || err2 != nil {
			continue
		}
		d.Floating = append(d.Floating, dataplane.FloatingIP{IP: ip, Fixed: fixed, Port: f.FixedPortID, Router: f.RouterID, External: f.NetworkID})
	}
	addPortForwards(d, v, here, reachable)
	addMeters(d, v)
}

// external is how this node reaches external network n, if it does.
func external(n netstate.Network, subnets []netstate.Subnet, reach Reach) (dataplane.External, bool) {
	// A flat external network is reached on a device of its own; one that
	// is a VLAN of the physical network, on the uplink, tagged. Without an
	// uplink a VLAN one is left out (the network service refuses router
	// gateways on it then), as the dataplane would refuse it and one
	// refusal would stop it applying anything.
	x := dataplane.External{ID: n.ID}
	switch {
	case n.Flat != "":
		x.Device = reach.Flat[n.Flat]
		if x.Device == "" || x.Device == reach.Uplink {
			return x, false
		}
	case n.SegmentationID > 0 && n.SegmentationID <= 4094 && reach.Uplink != "":
		x.Device, x.VLAN = reach.Uplink, uint16(n.SegmentationID)
	default:
		return x, false
	}
	x.MAC = reach.MACs[x.Device]
	// The oldest IPv4 subnet is the one gateways and floating IPs come from.
	var best *netstate.Subnet
	for i, s := range subnets {
		if s.NetworkID == n.ID && s.IPVersion == 4 && (best == nil || s.CreatedAt.Before(best.CreatedAt)) {
			best = &subnets[i]
		}
	}
	if best == nil {
		return x, false
	}
	pfx, err := netip.ParsePrefix(best.CIDR)
	if err != nil {
		return x, false
	}
	x.Prefix = pfx
	x.Gateway, _ = netip.ParseAddr(best.GatewayIP)
	external6(&x, n.ID, subnets)
	return x, x.Gateway.Is4() && len(x.MAC) == 6
}

func reachesAny(ifaces []netstate.Port, local map[string]bool) bool {
	for _, p := range ifaces {
		if local[p.NetworkID] {
			return true
		}
	}
	return false
}

func firstV4(p netstate.Port) (netip.Addr, bool) {
	for _, f := range p.FixedIPs {
		if a, err := netip.ParseAddr(f.IP); err == nil && a.Is4() {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// MetadataServer is the address the metadata server answers on, and the
// one address of 169.254.0.0/16 never given to a port.
var metadataServer = netip.MustParseAddr("169.254.169.254")

// metaAddrs gives each port a distinct source address in 169.254.0.0/16
// for its metadata requests. A port keeps the address it had (prev), so
// a request in flight is never answered for another port; a new port
// gets its hash's address or the next free one.
func metaAddrs(portIDs []string, prev map[string]netip.Addr) map[string]netip.Addr {
	ids := append([]string(nil), portIDs...)
	sort.Strings(ids)
	out := map[string]netip.Addr{}
	used := map[netip.Addr]bool{metadataServer: true}
	for _, id := range ids {
		if a, ok := prev[id]; ok && !used[a] {
			out[id], used[a] = a, true
		}
	}
	for _, id := range ids {
		if _, ok := out[id]; ok {
			continue
		}
		h := fnv.New32a()
		h.Write([]byte(id))
		n := h.Sum32()
		for i := uint32(0); i < 1<<16; i++ {
			// Host part 1..65534: never 169.254.0.0 or the broadcast.
			host := uint16((n+i)%65534 + 1)
			var b [4]byte
			b[0], b[1] = 169, 254
			binary.BigEndian.PutUint16(b[2:], host)
			if a := netip.AddrFrom4(b); !used[a] {
				out[id], used[a] = a, true
				break
			}
		}
	}
	return out
}

// neighbors are the ports on other nodes of the routed networks: routed
// traffic for them leaves by the uplink.
func neighbors(ports []netstate.Port, nets map[string]netstate.Network, routed map[string]bool, node string) []dataplane.Neighbor {
	var out []dataplane.Neighbor
	for _, p := range ports {
		n, ok := nets[p.NetworkID]
		if !ok || !routed[p.NetworkID] || p.HostID == "" || p.HostID == node || !p.AdminStateUp || n.SegmentationID <= 0 || strings.HasPrefix(p.DeviceOwner, "network:") {
			continue
		}
		mac, err := net.ParseMAC(p.MAC)
		if err != nil {
			continue
		}
		for _, f := range p.FixedIPs {
			if a, err := netip.ParseAddr(f.IP); err == nil {
				out = append(out, dataplane.Neighbor{VLAN: uint16(n.SegmentationID), IP: a, MAC: mac})
			}
		}
	}
	return out
}
