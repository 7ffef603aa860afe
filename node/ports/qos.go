package ports

import (
	"github.com/rackstack/rackstack/dataplane"
	"github.com/rackstack/rackstack/fabric/network/netstate"
)

// qosOf compiles the QoS policy each policy id names into what the
// dataplane enforces: its bandwidth and packet rate limits and DSCP mark.
func qosOf(v *netstate.View) map[string]*dataplane.QoS {
	out := map[string]*dataplane.QoS{}
	for _, q := range v.QoSPolicies {
		out[q.ID] = &dataplane.QoS{}
	}
	for _, r := range v.QoSRules {
		q := out[r.PolicyID]
		if q == nil {
			continue
		}
		switch r.Type {
		case netstate.QoSBandwidthLimit:
			l := &q.Egress
			if r.Direction == "ingress" {
				l = &q.Ingress
			}
			l.Kbps, l.BurstKbits = uint64(max(r.MaxKbps, 0)), uint64(max(r.MaxBurstKbps, 0))
		case netstate.QoSPacketRate:
			l := &q.Egress
			if r.Direction == "ingress" {
				l = &q.Ingress
			}
			l.Kpps, l.BurstKpackets = uint64(max(r.MaxKpps, 0)), uint64(max(r.MaxBurstKpps, 0))
		case netstate.QoSDSCPMarking:
			q.Mark, q.DSCP = true, uint8(r.DSCPMark&63)
		}
	}
	return out
}

// portQoS is what port p of network n enforces: its own policy, else its
// network's (netstate.EffectiveQoS); nil for none.
func portQoS(policies map[string]*dataplane.QoS, p netstate.Port, n netstate.Network) *dataplane.QoS {
	q := policies[netstate.EffectiveQoS(p, n)]
	if q == nil || *q == (dataplane.QoS{}) {
		return nil
	}
	c := *q
	return &c
}
