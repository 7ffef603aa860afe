package network

import "testing"

// An admin sets an agent's description (PUT /agents/{id}), which every
// later read shows and "" clears; admin_state_up false is refused naming
// the field (an agent here cannot be disabled), as is a read-only
// attribute, an unknown agent and a member.
func TestAgentUpdate(t *testing.T) {
	f := newFixture(t)
	f.svc.cfg.Agents = agentHosts{{Name: "node1", Up: true}}
	dhcp, ovs := agentID(dhcpAgentType, "node1"), agentID("Open vSwitch agent", "node1")
	got := f.expect("PUT", "/v2.0/agents/"+dhcp, admin, map[string]any{"agent": map[string]any{"description": "rack 4", "admin_state_up": true}}, 200, "")
	if a := got["agent"].(map[string]any); a["description"] != "rack 4" || a["id"] != dhcp {
		t.Fatalf("updated agent: %v", a)
	}
	if a := f.expect("GET", "/v2.0/agents/"+dhcp, admin, nil, 200, "")["agent"].(map[string]any); a["description"] != "rack 4" {
		t.Fatalf("agent read back: %v", a)
	}
	if a := f.expect("GET", "/v2.0/agents/"+ovs, admin, nil, 200, "")["agent"].(map[string]any); a["description"] != "" {
		t.Fatalf("another agent of the node: %v", a)
	}
	f.expect("PUT", "/v2.0/agents/"+dhcp, admin, map[string]any{"agent": map[string]any{"admin_state_up": false}}, 400, "HTTPBadRequest", "admin_state_up")
	f.expect("PUT", "/v2.0/agents/"+dhcp, admin, map[string]any{"agent": map[string]any{"host": "x"}}, 400, "HTTPBadRequest", "host")
	f.expect("PUT", "/v2.0/agents/nope", admin, map[string]any{"agent": map[string]any{"description": "x"}}, 404, "AgentNotFound")
	f.expect("PUT", "/v2.0/agents/"+dhcp, alice, map[string]any{"agent": map[string]any{"description": "x"}}, 403, "")
	f.expect("PUT", "/v2.0/agents/"+dhcp, admin, map[string]any{"agent": map[string]any{"description": ""}}, 200, "")
	if a := f.expect("GET", "/v2.0/agents/"+dhcp, admin, nil, 200, "")["agent"].(map[string]any); a["description"] != "" {
		t.Fatalf("agent after clearing: %v", a)
	}
}
