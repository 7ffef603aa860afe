package ports

import (
	"fmt"
	"net"
	"testing"

	"github.com/rackstack/rackstack/fabric/network/netstate"
)

// TestExternalIPv6FromView: the external network's IPv6 subnet and r1's
// gateway address on it (in the scope of its subnet's pool) reach the
// dataplane, so that r1 routes IPv6 out of its gateway; a VLAN external
// network on the uplink as a flat one.
func TestExternalIPv6FromView(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	for _, c := range []struct {
		name  string
		vlan  int
		reach Reach
	}{
		{"flat", -1, Reach{Flat: map[string]string{"public": "rsext0"}, MACs: map[string]net.HardwareAddr{"rsext0": mac}}},
		{"VLAN 300", 300, Reach{Uplink: "up0", MACs: map[string]net.HardwareAddr{"up0": mac}}},
	} {
		v := l3View()
		for i, n := range v.Networks {
			if n.ID == "ext" && c.vlan > 0 {
				v.Networks[i].SegmentationID, v.Networks[i].Flat = c.vlan, ""
			}
		}
		v.Pools = []netstate.SubnetPool{{ID: "gua", AddressScopeID: "s6"}}
		v.Subnets = append(v.Subnets, netstate.Subnet{ID: "extsub6", NetworkID: "ext", CIDR: "2001:db8:ff::/64", IPVersion: 6, GatewayIP: "2001:db8:ff::1", SubnetPoolID: "gua"})
		for i, p := range v.Ports {
			if p.ID == "r1gw" {
				v.Ports[i].FixedIPs = append(p.FixedIPs, netstate.FixedIP{SubnetID: "extsub6", IP: "2001:db8:ff::2"})
			}
		}
		d := FromView(v, "n1")
		addL3(&d, v, "n1", c.reach)
		if len(d.Externals) != 1 || d.Externals[0].Prefix6.String() != "2001:db8:ff::/64" || d.Externals[0].Gateway6.String() != "2001:db8:ff::1" {
			t.Errorf("%s: externals %+v, want public with 2001:db8:ff::/64 via 2001:db8:ff::1", c.name, d.Externals)
			continue
		}
		if c.vlan > 0 && (d.Externals[0].Device != "up0" || d.Externals[0].VLAN != uint16(c.vlan)) {
			t.Errorf("%s: external on %s VLAN %d, want up0 VLAN %d", c.name, d.Externals[0].Device, d.Externals[0].VLAN, c.vlan)
		}
		if g := d.Routers[0].Gateway; g.IP.String() != "172.24.4.2" || g.IP6.String() != "2001:db8:ff::2" || g.Scope6 != "s6" {
			t.Errorf("%s: r1's gateway %+v, want 172.24.4.2 and 2001:db8:ff::2 in s6", c.name, g)
		}
	}
}

// TestLease6FromView: a port on a dhcpv6-stateful subnet is answered its
// address and the subnet's IPv6 DNS servers, one on a dhcpv6-stateless
// subnet the DNS servers only, one on a SLAAC subnet nothing.
func TestLease6FromView(t *testing.T) {
	for _, c := range []struct{ mode, want string }{
		{"dhcpv6-stateful", "fd00:2::5 [fd00::53]"},
		{"dhcpv6-stateless", "invalid IP [fd00::53]"},
		{"slaac", "none"},
	} {
		v := l3View()
		v.Subnets = append(v.Subnets, netstate.Subnet{ID: "sub1v6", NetworkID: "net1", CIDR: "fd00:2::/64", IPVersion: 6, EnableDHCP: true,
			IPv6AddressMode: c.mode, IPv6RAMode: c.mode, DNSNameservers: []string{"10.0.0.53", "fd00::53"}})
		for i, p := range v.Ports {
			if p.ID == "vm1" {
				v.Ports[i].FixedIPs = append(p.FixedIPs, netstate.FixedIP{SubnetID: "sub1v6", IP: "fd00:2::5"})
			}
		}
		d := FromView(v, "n1")
		got := "none"
		if l := d.Ports[0].DHCP6; l != nil {
			got = fmt.Sprintf("%s %v", l.IP, l.DNS)
		}
		if got != c.want {
			t.Errorf("%s: lease %s, want %s", c.mode, got, c.want)
		}
	}
}
