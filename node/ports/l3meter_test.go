package ports

import (
	"fmt"
	"net"
	"testing"

	"github.com/rackstack/rackstack/fabric/network/netstate"
)

// TestSameScopeIsNotNATed: net1's subnet comes from a pool of the scope
// the external subnet's pool is in, net2's from a pool of none: r1 routes
// net1 out without SNAT, net2 with. Each interface and the gateway carry
// their scope, which the dataplane routes within.
func TestSameScopeIsNotNATed(t *testing.T) {
	v := l3View()
	v.Scopes = []netstate.AddressScope{{ID: "s1", IPVersion: 4}}
	v.Pools = []netstate.SubnetPool{{ID: "inside", AddressScopeID: "s1"}, {ID: "outside", AddressScopeID: "s1"}, {ID: "other"}}
	for i := range v.Subnets {
		v.Subnets[i].SubnetPoolID = map[string]string{"sub1": "inside", "sub2": "other", "extsub": "outside"}[v.Subnets[i].ID]
	}
	d := FromView(v, "n1")
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	addL3(&d, v, "n1", Reach{Flat: map[string]string{"public": "rsext0"}, MACs: map[string]net.HardwareAddr{"rsext0": mac}})
	var got []string
	for _, ri := range d.Routers[0].Interfaces {
		got = append(got, fmt.Sprintf("%s nosnat=%v scope=%q", ri.IP, ri.NoSNAT, ri.Scope))
	}
	if fmt.Sprint(got) != `[10.0.0.1/24 nosnat=true scope="s1" 10.0.1.1/24 nosnat=false scope=""]` {
		t.Errorf("interfaces %v", got)
	}
	if g := d.Routers[0].Gateway; g.Scope != "s1" {
		t.Errorf("gateway scope %q, want s1", g.Scope)
	}
	// Without a scope on the external side, everything is SNATed.
	v.Pools[1].AddressScopeID = ""
	d = FromView(v, "n1")
	addL3(&d, v, "n1", Reach{Flat: map[string]string{"public": "rsext0"}, MACs: map[string]net.HardwareAddr{"rsext0": mac}})
	for _, ri := range d.Routers[0].Interfaces {
		if ri.NoSNAT {
			t.Errorf("%s not SNATed with no scope outside", ri.IP)
		}
	}
}

// TestMetersFromView: a label counts on its project's routers with a
// gateway, a shared one on all of them; remote_ip_prefix is the outside,
// source and destination are the sides by direction.
func TestMetersFromView(t *testing.T) {
	v := l3View()
	v.Routers[0].Project = "pa"
	v.Labels = []netstate.MeteringLabel{{ID: "mine", Project: "pa"}, {ID: "theirs", Project: "pb"}, {ID: "everyone", Project: "pb", Shared: true}}
	v.Meters = []netstate.MeteringRule{
		{ID: "1", LabelID: "mine", Direction: "egress", Remote: "8.8.8.0/24"},
		{ID: "2", LabelID: "mine", Direction: "ingress", Source: "1.2.3.0/24", Destination: "10.0.0.0/24", Excluded: true},
		{ID: "3", LabelID: "mine", Direction: "egress", Source: "10.0.0.0/24"},
		{ID: "4", LabelID: "everyone", Direction: "ingress", Remote: "0.0.0.0/0"},
		{ID: "5", LabelID: "theirs", Direction: "ingress", Remote: "0.0.0.0/0"},
	}
	d := FromView(v, "n1")
	addL3(&d, v, "n1", Reach{Flat: map[string]string{"public": "rsext0"}, MACs: map[string]net.HardwareAddr{"rsext0": {2, 0, 0, 0, 0, 1}}})
	var got []string
	for _, m := range d.Meters {
		s := fmt.Sprintf("%s(%s) on %v:", m.Label, m.Project, m.Routers)
		for _, r := range m.Rules {
			s += fmt.Sprintf(" [out=%v excl=%v local=%s remote=%s]", r.Egress, r.Excluded, r.Local, r.Remote)
		}
		got = append(got, s)
	}
	want := []string{
		"mine(pa) on [r1]: [out=true excl=false local=invalid Prefix remote=8.8.8.0/24] [out=false excl=true local=10.0.0.0/24 remote=1.2.3.0/24] [out=true excl=false local=10.0.0.0/24 remote=invalid Prefix]",
		"everyone(pb) on [r1]: [out=false excl=false local=invalid Prefix remote=0.0.0.0/0]",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("meters\n%v\nwant\n%v", got, want)
	}
}
