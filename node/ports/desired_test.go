package ports

import (
	"maps"
	"net/netip"
	"slices"
	"testing"

	"github.com/rackstack/rackstack/fabric/network/netstate"
)

// TestFromView checks what a node is asked to enforce: only its own ports
// that are up on a network with a VLAN, the rules of the groups those
// ports use, group members from every node, and the DHCP lease of the
// first IPv4 address on a DHCP subnet.
func TestFromView(t *testing.T) {
	v := &netstate.View{
		Networks: []netstate.Network{{ID: "net1", SegmentationID: 101, MTU: 1450}, {ID: "novlan"}},
		Subnets: []netstate.Subnet{{
			ID: "sub1", NetworkID: "net1", CIDR: "10.0.0.0/24", IPVersion: 4, EnableDHCP: true, GatewayIP: "10.0.0.1",
			DNSNameservers: []string{"10.0.0.2", "2001:db8::1"},
		}},
		Ports: []netstate.Port{
			{ID: "mine", NetworkID: "net1", HostID: "n1", AdminStateUp: true, MAC: "fa:16:3e:00:00:01", PortSecurity: true,
				SecurityGroups: []string{"web"}, FixedIPs: []netstate.FixedIP{{SubnetID: "sub1", IP: "10.0.0.5"}},
				AllowedAddressPairs: []netstate.AddressPair{{IP: "10.0.9.0/24", MAC: "fa:16:3e:00:00:aa"}}},
			{ID: "elsewhere", NetworkID: "net1", HostID: "n2", AdminStateUp: true, MAC: "fa:16:3e:00:00:02",
				SecurityGroups: []string{"web"}, FixedIPs: []netstate.FixedIP{{SubnetID: "sub1", IP: "10.0.0.6"}}},
			{ID: "down", NetworkID: "net1", HostID: "n1", MAC: "fa:16:3e:00:00:03"},
			{ID: "no-vlan", NetworkID: "novlan", HostID: "n1", AdminStateUp: true, MAC: "fa:16:3e:00:00:04"},
			{ID: "bad-mac", NetworkID: "net1", HostID: "n1", AdminStateUp: true, MAC: "nope"},
		},
		Rules: []netstate.SecurityGroupRule{
			{GroupID: "web", Direction: "ingress", Protocol: "6", EtherType: "IPv4", RemoteIPPrefix: "10.0.0.0/24"},
			{GroupID: "unused", Direction: "ingress", EtherType: "IPv4"},
			{GroupID: "web", Direction: "ingress", Protocol: "tcp", EtherType: "IPv4"}, // not a number: dropped
		},
	}
	d := FromView(v, "n1")
	if len(d.Ports) != 1 || d.Ports[0].ID != "mine" {
		t.Fatalf("ports %+v, want only mine", d.Ports)
	}
	p := d.Ports[0]
	if p.Device != "tapmine" || p.VLAN != 101 || !p.Security || len(p.MACs) != 1 {
		t.Errorf("port %+v", p)
	}
	wantAddrs := []netip.Prefix{netip.MustParsePrefix("10.0.0.5/32"), netip.MustParsePrefix("10.0.9.0/24")}
	if !slices.Equal(p.Addrs, wantAddrs) {
		t.Errorf("addrs %v, want %v", p.Addrs, wantAddrs)
	}
	if p.DHCP == nil || p.DHCP.IP != netip.MustParsePrefix("10.0.0.5/24") || p.DHCP.Gateway != netip.MustParseAddr("10.0.0.1") ||
		len(p.DHCP.DNS) != 1 || p.DHCP.MTU != 1450 || p.DHCP.Hostname != "host-10-0-0-5" {
		t.Errorf("lease %+v", p.DHCP)
	}
	if len(p.DHCP.Extra) != 0 || p.DHCP.BootFile != "" {
		t.Errorf("extra options of a port without any: %+v", p.DHCP)
	}
	if len(d.Rules) != 1 || d.Rules[0].Proto != 6 || !d.Rules[0].Ingress || d.Rules[0].PortMin != -1 {
		t.Errorf("rules %+v, want web's tcp rule only", d.Rules)
	}
	if got := d.Members["web"]; len(got) != 3 {
		t.Errorf("web members %v, want both ports' addresses (three)", got)
	}
}

// TestLeaseExtraOptions: a port's extra DHCP options reach its lease by
// dnsmasq name or number; IPv6 ones and values that do not fit are left
// out.
func TestLeaseExtraOptions(t *testing.T) {
	v := &netstate.View{
		Networks: []netstate.Network{{ID: "net1", SegmentationID: 101}},
		Subnets:  []netstate.Subnet{{ID: "sub1", NetworkID: "net1", CIDR: "10.0.0.0/24", IPVersion: 4, EnableDHCP: true}},
		Ports: []netstate.Port{{ID: "p", NetworkID: "net1", HostID: "n1", AdminStateUp: true, MAC: "fa:16:3e:00:00:01",
			FixedIPs: []netstate.FixedIP{{SubnetID: "sub1", IP: "10.0.0.5"}},
			ExtraDHCPOpts: []netstate.DHCPOption{
				{Name: "bootfile-name", Value: "pxelinux.0", IPVersion: 4},
				{Name: "tftp-server", Value: "10.0.0.9", IPVersion: 4},
				{Name: "server-ip-address", Value: "10.0.0.9", IPVersion: 4},
				{Name: "dns-server", Value: "10.0.0.2,10.0.0.3", IPVersion: 4},
				{Name: "mtu", Value: "9000", IPVersion: 4},
				{Name: "150", Value: "10.0.0.9", IPVersion: 4},
				{Name: "option:domain-name", Value: "example.org", IPVersion: 4},
				{Name: "dns-server", Value: "2001:db8::1", IPVersion: 6},
				{Name: "ntp-server", Value: "not-an-address", IPVersion: 4},
				{Name: "no-such-option", Value: "x", IPVersion: 4},
			}}},
	}
	d := FromView(v, "n1")
	l := d.Ports[0].DHCP
	if l == nil || l.BootFile != "pxelinux.0" || l.NextServer != netip.MustParseAddr("10.0.0.9") {
		t.Fatalf("lease %+v", l)
	}
	got := map[uint8]string{}
	for _, o := range l.Extra {
		got[o.Code] = string(o.Value)
	}
	want := map[uint8]string{67: "pxelinux.0", 66: "10.0.0.9", 6: "\x0a\x00\x00\x02\x0a\x00\x00\x03", 26: "\x23\x28",
		150: "\x0a\x00\x00\x09", 15: "example.org"}
	if !maps.Equal(got, want) {
		t.Errorf("options %q, want %q", got, want)
	}
}

// TestDHCPRemovedFromNode: a network an admin removed from this node's
// DHCP agent gets no lease here, and still does elsewhere.
func TestDHCPRemovedFromNode(t *testing.T) {
	v := &netstate.View{
		Networks: []netstate.Network{{ID: "net1", SegmentationID: 101, DHCPOff: []string{"n1"}}},
		Subnets:  []netstate.Subnet{{ID: "sub1", NetworkID: "net1", CIDR: "10.0.0.0/24", IPVersion: 4, EnableDHCP: true}},
		Ports: []netstate.Port{
			{ID: "p1", NetworkID: "net1", HostID: "n1", AdminStateUp: true, MAC: "fa:16:3e:00:00:01", FixedIPs: []netstate.FixedIP{{SubnetID: "sub1", IP: "10.0.0.5"}}},
			{ID: "p2", NetworkID: "net1", HostID: "n2", AdminStateUp: true, MAC: "fa:16:3e:00:00:02", FixedIPs: []netstate.FixedIP{{SubnetID: "sub1", IP: "10.0.0.6"}}},
		},
	}
	if d := FromView(v, "n1"); len(d.Ports) != 1 || d.Ports[0].DHCP != nil {
		t.Errorf("on n1: %+v", d.Ports)
	}
	if d := FromView(v, "n2"); len(d.Ports) != 1 || d.Ports[0].DHCP == nil {
		t.Errorf("on n2: %+v", d.Ports)
	}
}
