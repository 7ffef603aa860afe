package ports

import (
	"testing"

	"github.com/rackstack/rackstack/dataplane"
	"github.com/rackstack/rackstack/fabric/network/netstate"
)

// TestFromViewTrunk: a subport is enforced on the node of its parent, on
// the parent's device with its VLAN id, with its DHCPv4 lease; a subport whose
// parent is elsewhere or down is not enforced here.
func TestFromViewTrunk(t *testing.T) {
	v := &netstate.View{
		Networks: []netstate.Network{{ID: "n1", SegmentationID: 101}, {ID: "n2", SegmentationID: 102}},
		Subnets:  []netstate.Subnet{{ID: "s2", NetworkID: "n2", CIDR: "10.1.0.0/24", IPVersion: 4, EnableDHCP: true}},
		Ports: []netstate.Port{
			{ID: "parent", NetworkID: "n1", HostID: "node1", AdminStateUp: true, MAC: "fa:16:3e:00:00:01"},
			{ID: "sub", NetworkID: "n2", HostID: "node1", AdminStateUp: true, MAC: "fa:16:3e:00:00:02",
				DeviceOwner: netstate.SubPortOwner, FixedIPs: []netstate.FixedIP{{SubnetID: "s2", IP: "10.1.0.5"}}},
			{ID: "far", NetworkID: "n1", HostID: "node2", AdminStateUp: true, MAC: "fa:16:3e:00:00:03"},
			{ID: "farsub", NetworkID: "n2", HostID: "node1", AdminStateUp: true, MAC: "fa:16:3e:00:00:04"},
		},
		Trunks: []netstate.Trunk{
			{ID: "t1", PortID: "parent", SubPorts: []netstate.SubPort{{PortID: "sub", SegmentationType: "vlan", SegmentationID: 10}}},
			{ID: "t2", PortID: "far", SubPorts: []netstate.SubPort{{PortID: "farsub", SegmentationType: "vlan", SegmentationID: 11}}},
		},
	}
	d := FromView(v, "node1")
	got := map[string]dataplane.Port{}
	for _, p := range d.Ports {
		got[p.ID] = p
	}
	sub, ok := got["sub"]
	if !ok || sub.Device != dataplane.DeviceName("parent") || sub.TrunkVID != 10 || sub.VLAN != 102 || sub.DHCP == nil || sub.DHCP.IP.String() != "10.1.0.5/24" || sub.DHCP6 != nil {
		t.Errorf("subport: %+v (present %v)", sub, ok)
	}
	if p := got["parent"]; p.TrunkVID != 0 || p.Device != dataplane.DeviceName("parent") {
		t.Errorf("parent: %+v", p)
	}
	if _, ok := got["farsub"]; ok {
		t.Errorf("a subport of a parent on another node is enforced here")
	}
	if _, ok := portsByID(FromView(v, "node2"))["farsub"]; !ok {
		t.Errorf("node2 does not enforce the subport of its parent")
	}
}

func portsByID(d dataplane.Desired) map[string]dataplane.Port {
	out := map[string]dataplane.Port{}
	for _, p := range d.Ports {
		out[p.ID] = p
	}
	return out
}
