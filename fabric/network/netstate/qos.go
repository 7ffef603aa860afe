package netstate

import (
	"time"

	"github.com/rackstack/rackstack/fabric/store"
)

// QoSPolicy is a named set of QoS rules (Neutron's qos extension) that a
// port or network names by qos_policy_id. A port's own policy wins over
// its network's; a network's applies to its compute ports only (not to
// ports the network or a router owns), as in Neutron.
type QoSPolicy struct {
	ID          string `json:"id"`
	Project     string `json:"project"`
	Name        string `json:"name"`
	Description string `json:"description"`
	// Shared lets every project see the policy and name it on its ports
	// and networks (the policy's access_as_shared for "*").
	Shared bool `json:"shared,omitempty"`
	// Default makes it the policy of its project's new networks that name
	// none (qos-default); a project has at most one.
	Default   bool      `json:"default,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Revision  int       `json:"revision"`
	// Tags are the resource's standard-attribute tags, sorted.
	Tags []string `json:"tags,omitempty"`
}

// QoS rule types the dataplane enforces.
const (
	QoSBandwidthLimit = "bandwidth_limit"
	QoSPacketRate     = "packet_rate_limit"
	QoSDSCPMarking    = "dscp_marking"
)

// QoSRule is one rule of a policy: a bandwidth or packet rate limit of
// one direction (egress: what the port sends; ingress: what it receives)
// or the DSCP mark of what the port sends.
type QoSRule struct {
	ID       string `json:"id"`
	PolicyID string `json:"policy_id"`
	Type     string `json:"type"`
	// bandwidth_limit: kilobits per second and the burst in kilobits
	// (0: 80% of MaxKbps, Neutron's default for the OVS agent).
	MaxKbps      int    `json:"max_kbps,omitempty"`
	MaxBurstKbps int    `json:"max_burst_kbps,omitempty"`
	Direction    string `json:"direction,omitempty"`
	// packet_rate_limit: thousands of packets per second and the burst
	// in thousands of packets (0: 80% of MaxKpps).
	MaxKpps      int `json:"max_kpps,omitempty"`
	MaxBurstKpps int `json:"max_burst_kpps,omitempty"`
	// dscp_marking: the DSCP value written into what the port sends.
	DSCPMark int `json:"dscp_mark,omitempty"`
}

// Table names of QoS.
const (
	TableQoSPolicies = "network_qos_policies"
	TableQoSRules    = "network_qos_rules"
)

// qosTables are the QoS tables with their indexes.
func qosTables() []store.Table {
	return []store.Table{
		store.NewTable(TableQoSPolicies, &QoSPolicy{}, store.StringIndex("project", "Project", false)),
		store.NewTable(TableQoSRules, &QoSRule{}, store.StringIndex("policy", "PolicyID", false)),
	}
}

// EffectiveQoS is the policy that applies to port p of network n: its own,
// else its network's for a port no network service owns ("" for none).
func EffectiveQoS(p Port, n Network) string {
	if p.QoSPolicyID != "" {
		return p.QoSPolicyID
	}
	if len(p.DeviceOwner) >= 8 && p.DeviceOwner[:8] == "network:" {
		return ""
	}
	return n.QoSPolicyID
}
