package ports

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/rackstack/rackstack/fabric/network"
)

// TestFromView checks what a node is asked to enforce: only its own ports
// that are up on a network with a VLAN, the rules of the groups those
// ports use, group members from every node, and the DHCP lease of the
// first IPv4 address on a DHCP subnet.
func TestFromView(t *testing.T) {
	v := &network.View{
		Networks: []network.Network{{ID: "net1", SegmentationID: 101, MTU: 1450}, {ID: "novlan"}},
		Subnets: []network.Subnet{{
			ID: "sub1", NetworkID: "net1", CIDR: "10.0.0.0/24", IPVersion: 4, EnableDHCP: true, GatewayIP: "10.0.0.1",
			DNSNameservers: []string{"10.0.0.2", "2001:db8::1"},
		}},
		Ports: []network.Port{
			{ID: "mine", NetworkID: "net1", HostID: "n1", AdminStateUp: true, MAC: "fa:16:3e:00:00:01", PortSecurity: true,
				SecurityGroups: []string{"web"}, FixedIPs: []network.FixedIP{{SubnetID: "sub1", IP: "10.0.0.5"}},
				AllowedAddressPairs: []network.AddressPair{{IP: "10.0.9.0/24", MAC: "fa:16:3e:00:00:aa"}}},
			{ID: "elsewhere", NetworkID: "net1", HostID: "n2", AdminStateUp: true, MAC: "fa:16:3e:00:00:02",
				SecurityGroups: []string{"web"}, FixedIPs: []network.FixedIP{{SubnetID: "sub1", IP: "10.0.0.6"}}},
			{ID: "down", NetworkID: "net1", HostID: "n1", MAC: "fa:16:3e:00:00:03"},
			{ID: "no-vlan", NetworkID: "novlan", HostID: "n1", AdminStateUp: true, MAC: "fa:16:3e:00:00:04"},
			{ID: "bad-mac", NetworkID: "net1", HostID: "n1", AdminStateUp: true, MAC: "nope"},
		},
		Rules: []network.SecurityGroupRule{
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
	if len(d.Rules) != 1 || d.Rules[0].Proto != 6 || !d.Rules[0].Ingress || d.Rules[0].PortMin != -1 {
		t.Errorf("rules %+v, want web's tcp rule only", d.Rules)
	}
	if got := d.Members["web"]; len(got) != 3 {
		t.Errorf("web members %v, want both ports' addresses (three)", got)
	}
}
