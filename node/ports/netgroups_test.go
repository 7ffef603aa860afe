package ports

import (
	"fmt"
	"testing"

	"github.com/rackstack/rackstack/fabric/network/netstate"
)

// TestFromViewAddressGroupsAndStateless: a rule's remote address group
// reaches the dataplane by id with the group's CIDRs beside it (empty
// for an empty group), and a port is stateless only when every group it
// has is.
func TestFromViewAddressGroupsAndStateless(t *testing.T) {
	port := func(id string, groups ...string) netstate.Port {
		return netstate.Port{ID: id, NetworkID: "net1", HostID: "n1", AdminStateUp: true, MAC: "fa:16:3e:00:00:01",
			PortSecurity: true, SecurityGroups: groups}
	}
	v := &netstate.View{
		Networks: []netstate.Network{{ID: "net1", SegmentationID: 101}},
		Ports:    []netstate.Port{port("sl", "sl1", "sl2"), port("mixed", "sl1", "sf"), port("none")},
		Groups:   []netstate.SecurityGroup{{ID: "sl1", Stateless: true}, {ID: "sl2", Stateless: true}, {ID: "sf"}},
		Rules: []netstate.SecurityGroupRule{
			{GroupID: "sl1", Direction: "ingress", EtherType: "IPv4", RemoteAddressGroupID: "office"},
		},
		AddressGroups: []netstate.AddressGroup{
			{ID: "office", Addresses: []string{"10.1.0.0/16", "2001:db8::/32"}},
			{ID: "empty", Addresses: []string{}},
		},
	}
	d := FromView(v, "n1")
	got := map[string]bool{}
	for _, p := range d.Ports {
		got[p.ID] = p.Stateless
	}
	if fmt.Sprint(got) != "map[mixed:false none:false sl:true]" {
		t.Errorf("stateless per port %v, want only sl", got)
	}
	if len(d.Rules) != 1 || d.Rules[0].RemoteAddressGroup != "office" {
		t.Errorf("rules %+v, want the office rule", d.Rules)
	}
	if fmt.Sprint(d.AddressGroups["office"]) != "[10.1.0.0/16 2001:db8::/32]" {
		t.Errorf("office %v", d.AddressGroups["office"])
	}
	if g, ok := d.AddressGroups["empty"]; !ok || len(g) != 0 {
		t.Errorf("empty group %v (present %v), want present and empty", g, ok)
	}
}
