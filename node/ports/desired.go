package ports

import (
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/rackstack/rackstack/dataplane"
	"github.com/rackstack/rackstack/fabric/network/netstate"
)

// FromView is what node must enforce: its ports (binding:host_id = node,
// admin state up), the rules of their groups, and the addresses of every
// group member cluster-wide.
func FromView(v *netstate.View, node string) dataplane.Desired {
	nets := map[string]netstate.Network{}
	for _, n := range v.Networks {
		nets[n.ID] = n
	}
	subnets := map[string]netstate.Subnet{}
	for _, s := range v.Subnets {
		subnets[s.ID] = s
	}
	d := dataplane.Desired{Members: map[string][]netip.Prefix{}, AddressGroups: addressGroups(v)}
	stateless := map[string]bool{}
	for _, g := range v.Groups {
		stateless[g.ID] = g.Stateless
	}
	used := map[string]bool{}
	policies := qosOf(v)
	slots := trunkSlots(v)
	for _, p := range v.Ports {
		addrs := portAddrs(p)
		for _, g := range p.SecurityGroups {
			d.Members[g] = append(d.Members[g], addrs...)
		}
		n, ok := nets[p.NetworkID]
		slot, sub := slots[p.ID]
		if (p.HostID != node && !sub) || !ok || !p.AdminStateUp || n.SegmentationID <= 0 {
			continue
		}
		mac, err := net.ParseMAC(p.MAC)
		if err != nil {
			continue
		}
		port := dataplane.Port{
			ID: p.ID, Device: dataplane.DeviceName(p.ID), VLAN: uint16(n.SegmentationID), MAC: mac,
			Addrs: addrs, Security: p.PortSecurity, Groups: p.SecurityGroups,
			Stateless: allStateless(p.SecurityGroups, stateless),
			QoS:       portQoS(policies, p, n),
		}
		if sub && !onTrunk(&port, slot, node) {
			continue
		}
		// An admin may have removed the network from this node's DHCP
		// agent (dhcp_agent_scheduler).
		if n.DHCPHostedOn(node, true) {
			port.DHCP = lease(p, n, subnets)
			if !sub { // a subport gets DHCPv4 only (dataplane/trunk_dhcp.go)
				port.DHCP6 = lease6(p, subnets)
			}
		}
		for _, pair := range p.AllowedAddressPairs {
			if m, err := net.ParseMAC(pair.MAC); err == nil {
				port.MACs = append(port.MACs, m)
			}
		}
		if p.PortSecurity {
			for _, g := range p.SecurityGroups {
				used[g] = true
			}
		}
		d.Ports = append(d.Ports, port)
	}
	for _, r := range v.Rules {
		if !used[r.GroupID] {
			continue
		}
		rule := dataplane.Rule{
			Group: r.GroupID, Ingress: r.Direction == "ingress", IPv6: r.EtherType == "IPv6",
			PortMin: -1, PortMax: -1, RemoteGroup: r.RemoteGroupID, RemoteAddressGroup: r.RemoteAddressGroupID,
		}
		if r.Protocol != "" {
			proto, err := strconv.Atoi(r.Protocol)
			if err != nil || proto < 0 || proto > 255 {
				continue
			}
			rule.Proto = uint8(proto)
		}
		if r.PortMin != nil {
			rule.PortMin = *r.PortMin
		}
		if r.PortMax != nil {
			rule.PortMax = *r.PortMax
		}
		if r.RemoteIPPrefix != "" {
			pfx, err := netip.ParsePrefix(r.RemoteIPPrefix)
			if err != nil {
				continue
			}
			rule.Remote = pfx
		}
		d.Rules = append(d.Rules, rule)
	}
	return d
}

// allStateless says a port's groups are all stateless, so its dataplane
// tracks no connection: one stateful group makes the port stateful, its
// replies let in by conntrack (where Neutron's OVN driver also lets
// the stateful groups win).
func allStateless(groups []string, stateless map[string]bool) bool {
	for _, g := range groups {
		if !stateless[g] {
			return false
		}
	}
	return len(groups) > 0
}

// addressGroups are the CIDRs of every address group.
func addressGroups(v *netstate.View) map[string][]netip.Prefix {
	out := map[string][]netip.Prefix{}
	for _, ag := range v.AddressGroups {
		list := []netip.Prefix{}
		for _, a := range ag.Addresses {
			if pfx, err := netip.ParsePrefix(a); err == nil {
				list = append(list, pfx.Masked())
			}
		}
		out[ag.ID] = list
	}
	return out
}

// portAddrs is what a port may send from: its fixed IPs and its allowed
// address pairs.
func portAddrs(p netstate.Port) []netip.Prefix {
	var out []netip.Prefix
	for _, f := range p.FixedIPs {
		if a, err := netip.ParseAddr(f.IP); err == nil {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	for _, pair := range p.AllowedAddressPairs {
		if pfx, err := netip.ParsePrefix(pair.IP); err == nil {
			out = append(out, pfx.Masked())
		} else if a, err := netip.ParseAddr(pair.IP); err == nil {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out
}

// lease is the DHCP answer for the port's first IPv4 address on a subnet
// with DHCP enabled.
func lease(p netstate.Port, n netstate.Network, subnets map[string]netstate.Subnet) *dataplane.Lease {
	for _, f := range p.FixedIPs {
		s, ok := subnets[f.SubnetID]
		if !ok || !s.EnableDHCP || s.IPVersion != 4 {
			continue
		}
		ip, err := netip.ParseAddr(f.IP)
		cidr, cerr := netip.ParsePrefix(s.CIDR)
		if err != nil || cerr != nil || !ip.Is4() {
			continue
		}
		l := &dataplane.Lease{
			IP:       netip.PrefixFrom(ip, cidr.Bits()),
			Hostname: "host-" + strings.ReplaceAll(ip.String(), ".", "-"),
			MTU:      uint16(n.MTU),
		}
		if gw, err := netip.ParseAddr(s.GatewayIP); err == nil {
			l.Gateway = gw
		}
		for _, dns := range s.DNSNameservers {
			if a, err := netip.ParseAddr(dns); err == nil && a.Is4() {
				l.DNS = append(l.DNS, a)
			}
		}
		for _, r := range s.HostRoutes {
			dst, err1 := netip.ParsePrefix(r.Destination)
			hop, err2 := netip.ParseAddr(r.Nexthop)
			if err1 == nil && err2 == nil && dst.Addr().Is4() {
				l.Routes = append(l.Routes, dataplane.Route{Dst: dst, Nexthop: hop})
			}
		}
		addExtraOptions(l, p.ExtraDHCPOpts)
		return l
	}
	return nil
}
