package ports

import (
	"testing"

	"github.com/rackstack/rackstack/dataplane"
	"github.com/rackstack/rackstack/fabric/network/netstate"
)

// TestFromViewQoS: a port enforces its own policy, else its network's
// (never on a port the network owns); a policy without rules asks
// nothing.
func TestFromViewQoS(t *testing.T) {
	v := &netstate.View{
		Networks: []netstate.Network{{ID: "net1", SegmentationID: 101, QoSPolicyID: "netpol"}},
		Ports: []netstate.Port{
			{ID: "own", NetworkID: "net1", HostID: "n1", AdminStateUp: true, MAC: "fa:16:3e:00:00:01", QoSPolicyID: "gold"},
			{ID: "inherits", NetworkID: "net1", HostID: "n1", AdminStateUp: true, MAC: "fa:16:3e:00:00:02", DeviceOwner: "compute:nova"},
			{ID: "dhcp", NetworkID: "net1", HostID: "n1", AdminStateUp: true, MAC: "fa:16:3e:00:00:03", DeviceOwner: "network:dhcp"},
			{ID: "empty", NetworkID: "net1", HostID: "n1", AdminStateUp: true, MAC: "fa:16:3e:00:00:04", QoSPolicyID: "empty"},
		},
		QoSPolicies: []netstate.QoSPolicy{{ID: "gold"}, {ID: "netpol"}, {ID: "empty"}},
		QoSRules: []netstate.QoSRule{
			{ID: "r1", PolicyID: "gold", Type: netstate.QoSBandwidthLimit, MaxKbps: 1000, MaxBurstKbps: 100, Direction: "egress"},
			{ID: "r2", PolicyID: "gold", Type: netstate.QoSBandwidthLimit, MaxKbps: 2000, Direction: "ingress"},
			{ID: "r3", PolicyID: "gold", Type: netstate.QoSDSCPMarking, DSCPMark: 46},
			{ID: "r5", PolicyID: "gold", Type: netstate.QoSPacketRate, MaxKpps: 10, MaxBurstKpps: 2, Direction: "egress"},
			{ID: "r4", PolicyID: "netpol", Type: netstate.QoSDSCPMarking, DSCPMark: 10},
		},
	}
	got := map[string]*dataplane.QoS{}
	for _, p := range FromView(v, "n1").Ports {
		got[p.ID] = p.QoS
	}
	want := map[string]*dataplane.QoS{
		"own": {Egress: dataplane.Limit{Kbps: 1000, BurstKbits: 100, Kpps: 10, BurstKpackets: 2}, Ingress: dataplane.Limit{Kbps: 2000},
			Mark: true, DSCP: 46},
		"inherits": {Mark: true, DSCP: 10},
	}
	for id, w := range want {
		if got[id] == nil || *got[id] != *w {
			t.Errorf("port %s QoS %+v, want %+v", id, got[id], w)
		}
	}
	for _, id := range []string{"dhcp", "empty"} {
		if got[id] != nil {
			t.Errorf("port %s QoS %+v, want none", id, got[id])
		}
	}
}
