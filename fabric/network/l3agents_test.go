package network

import (
	"slices"
	"testing"
)

func TestL3AgentsRouteWhereTheRoutersPortsAre(t *testing.T) {
	f := newFixture(t)
	f.svc.cfg.Forwarding = true
	f.svc.cfg.Agents = agentHosts{{Name: "node1", Up: true}, {Name: "node2", Up: true}}
	a1, a2 := agentID(l3AgentType, "node1"), agentID(l3AgentType, "node2")
	w := f.l3(alice)
	idle := f.mk(alice, "routers", "router", map[string]any{"name": "idle"})["id"].(string)

	agents := func(router string) []string {
		return idsOf(f.expect("GET", "/v2.0/routers/"+router+"/l3-agents", admin, nil, 200, "")["agents"].([]any))
	}
	routers := func(agent string) []string {
		return idsOf(f.expect("GET", "/v2.0/agents/"+agent+"/l3-routers", admin, nil, 200, "")["routers"].([]any))
	}
	// No node hosts a port on the router's network yet: nobody routes.
	if got := agents(w.router); len(got) != 0 {
		t.Fatalf("agents before any bound port: %v", got)
	}
	// A port bound to node2 puts the router on node2's agent only.
	f.expect("PUT", "/v2.0/ports/"+w.port, admin, map[string]any{"port": map[string]any{"binding:host_id": "node2"}}, 200, "")
	if got := agents(w.router); !slices.Equal(got, []string{a2}) {
		t.Fatalf("agents with a port on node2: %v", got)
	}
	if got := routers(a2); !slices.Equal(got, []string{w.router}) {
		t.Fatalf("routers of node2's agent: %v", got)
	}
	if got := routers(a1); len(got) != 0 {
		t.Fatalf("routers of node1's agent: %v", got)
	}
	if got := agents(idle); len(got) != 0 {
		t.Fatalf("agents of a router without interfaces: %v", got)
	}
	// Each agent says it is a DVR one.
	a := f.expect("GET", "/v2.0/agents/"+a2, admin, nil, 200, "")["agent"].(map[string]any)
	if a["configurations"].(map[string]any)["agent_mode"] != "dvr" {
		t.Fatalf("agent configurations: %v", a["configurations"])
	}
	// Where a router runs follows from its ports: moving it by hand is
	// refused, as Neutron does for agents in dvr mode.
	f.expect("POST", "/v2.0/agents/"+a1+"/l3-routers", admin, map[string]any{"router_id": w.router}, 409, "DVRL3CannotAssignToDvrAgent")
	f.expect("DELETE", "/v2.0/agents/"+a2+"/l3-routers/"+w.router, admin, nil, 409, "DVRL3CannotRemoveFromDvrAgent")
	f.expect("POST", "/v2.0/agents/"+a1+"/l3-routers", admin, map[string]any{}, 400, "", "router_id")
	// Admins only; other agents and unknown ids are not L3 agents.
	f.expect("GET", "/v2.0/routers/"+w.router+"/l3-agents", alice, nil, 403, "")
	f.expect("GET", "/v2.0/agents/"+agentID(dhcpAgentType, "node1")+"/l3-routers", admin, nil, 404, "AgentNotFound")
	f.expect("GET", "/v2.0/routers/nope/l3-agents", admin, nil, 404, "RouterNotFound")
}

// A router's "distributed" attribute is the dvr extension's, and the L3
// agents' routes are l3_agent_scheduler's: both are served, so both are
// listed; a centralized router, which no agent here can host, is refused
// naming the attribute.
func TestRouterExtensionsListWhatIsServed(t *testing.T) {
	f := newFixture(t)
	var aliases []string
	for _, e := range f.expect("GET", "/v2.0/extensions", alice, nil, 200, "")["extensions"].([]any) {
		aliases = append(aliases, e.(map[string]any)["alias"].(string))
	}
	for _, want := range []string{"dvr", "l3_agent_scheduler"} {
		if !slices.Contains(aliases, want) {
			t.Errorf("extension %s missing from %v", want, aliases)
		}
		f.expect("GET", "/v2.0/extensions/"+want, alice, nil, 200, "")
	}
	f.expect("POST", "/v2.0/routers", admin, map[string]any{"router": map[string]any{"distributed": false}}, 400, "", "distributed", "dvr")
	r := f.expect("POST", "/v2.0/routers", admin, map[string]any{"router": map[string]any{"distributed": true}}, 201, "")["router"].(map[string]any)
	if r["distributed"] != true {
		t.Fatalf("an admin's distributed router: %v", r)
	}
}
