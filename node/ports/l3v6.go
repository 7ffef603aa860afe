package ports

import (
	"net/netip"

	"github.com/rackstack/rackstack/dataplane"
	"github.com/rackstack/rackstack/fabric/network/netstate"
)

// IPv6 through routers' external gateways: routed as it is, as Neutron
// does, so the dataplane needs the external network's IPv6 subnet and
// each gateway's IPv6 address and its scope.

// external6 gives x (external network id, flat or a VLAN of the uplink)
// its oldest IPv6 subnet.
func external6(x *dataplane.External, id string, subnets []netstate.Subnet) {
	var best *netstate.Subnet
	for i, s := range subnets {
		if s.NetworkID == id && s.IPVersion == 6 && (best == nil || s.CreatedAt.Before(best.CreatedAt)) {
			best = &subnets[i]
		}
	}
	if best == nil {
		return
	}
	pfx, err := netip.ParsePrefix(best.CIDR)
	if err != nil || !pfx.Addr().Is6() {
		return
	}
	x.Prefix6 = pfx
	if gw, err := netip.ParseAddr(best.GatewayIP); err == nil && pfx.Contains(gw) {
		x.Gateway6 = gw
	}
}

// gateway6 is the gateway port's IPv6 address and its subnet's scope.
func gateway6(p netstate.Port, scopeOf map[string]string) (netip.Addr, string) {
	for _, f := range p.FixedIPs {
		if a, err := netip.ParseAddr(f.IP); err == nil && a.Is6() && !a.Is4In6() {
			return a, scopeOf[f.SubnetID]
		}
	}
	return netip.Addr{}, ""
}

// lease6 is the DHCPv6 answer for the port's first address on an IPv6
// subnet with DHCP enabled whose ipv6_address_mode is dhcpv6-stateful (the
// address and DNS servers) or dhcpv6-stateless (the DNS servers only);
// nil when it has none.
func lease6(p netstate.Port, subnets map[string]netstate.Subnet) *dataplane.Lease6 {
	for _, f := range p.FixedIPs {
		s, ok := subnets[f.SubnetID]
		ip, err := netip.ParseAddr(f.IP)
		if !ok || err != nil || !s.EnableDHCP || s.IPVersion != 6 {
			continue
		}
		l := &dataplane.Lease6{}
		switch s.IPv6AddressMode {
		case "dhcpv6-stateful":
			l.IP = ip
		case "dhcpv6-stateless":
		default:
			continue
		}
		for _, dns := range s.DNSNameservers {
			if a, err := netip.ParseAddr(dns); err == nil && a.Is6() && !a.Is4In6() {
				l.DNS = append(l.DNS, a)
			}
		}
		return l
	}
	return nil
}
