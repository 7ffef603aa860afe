package network

import (
	"slices"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/api/apitest"
)

func idsOf(list []any) []string {
	var out []string
	for _, x := range list {
		out = append(out, x.(map[string]any)["id"].(string))
	}
	slices.Sort(out)
	return out
}

func TestDHCPAgentsHostNetworks(t *testing.T) {
	f := newFixture(t)
	f.svc.cfg.Agents = agentHosts{{Name: "node1", Up: true}, {Name: "node2", Up: true}}
	a1, a2 := agentID(dhcpAgentType, "node1"), agentID(dhcpAgentType, "node2")
	withDHCP := f.network(alice, "with")["id"].(string)
	f.subnet(alice, withDHCP, "10.0.0.0/24")
	bare := f.network(alice, "bare")["id"].(string)

	hosts := func(network string) []string {
		return idsOf(f.expect("GET", "/v2.0/networks/"+network+"/dhcp-agents", admin, nil, 200, "")["agents"].([]any))
	}
	hosted := func(agent string) []string {
		return idsOf(f.expect("GET", "/v2.0/agents/"+agent+"/dhcp-networks", admin, nil, 200, "")["networks"].([]any))
	}
	both := []string{a1, a2}
	slices.Sort(both)
	// Every node answers DHCP for a network with a DHCP subnet.
	if got := hosts(withDHCP); !slices.Equal(got, both) {
		t.Fatalf("agents of a network with DHCP: %v", got)
	}
	if got := hosts(bare); len(got) != 0 {
		t.Fatalf("agents of a network without subnets: %v", got)
	}
	if got := hosted(a1); !slices.Equal(got, []string{withDHCP}) {
		t.Fatalf("networks of node1's agent: %v", got)
	}
	// Removed from node1, the network is node2's alone, until added back.
	f.expect("DELETE", "/v2.0/agents/"+a1+"/dhcp-networks/"+withDHCP, admin, nil, 204, "")
	if got := hosts(withDHCP); !slices.Equal(got, []string{a2}) {
		t.Fatalf("after removal from node1: %v", got)
	}
	f.expect("DELETE", "/v2.0/agents/"+a1+"/dhcp-networks/"+withDHCP, admin, nil, 409, "NetworkNotHostedByDhcpAgent")
	// The answer is Neutron's JSON null, which clients decode.
	if res := apitest.Call(t, "POST", f.srv.URL+"/network/v2.0/agents/"+a1+"/dhcp-networks", admin, map[string]any{"network_id": withDHCP}); res.Code != 201 || strings.TrimSpace(string(res.Raw)) != "null" {
		t.Fatalf("adding back: %d %q, want 201 null", res.Code, res.Raw)
	}
	if got := hosts(withDHCP); !slices.Equal(got, both) {
		t.Fatalf("after adding back: %v", got)
	}
	f.expect("POST", "/v2.0/agents/"+a1+"/dhcp-networks", admin, map[string]any{"network_id": withDHCP}, 409, "NetworkHostedByDHCPAgent")
	// A network without DHCP subnets is hosted where an admin adds it.
	f.expect("POST", "/v2.0/agents/"+a2+"/dhcp-networks", admin, map[string]any{"network_id": bare}, 201, "")
	if got := hosts(bare); !slices.Equal(got, []string{a2}) {
		t.Fatalf("a bare network added to node2: %v", got)
	}
	f.expect("DELETE", "/v2.0/agents/"+a2+"/dhcp-networks/"+bare, admin, nil, 204, "")
	if got := hosts(bare); len(got) != 0 {
		t.Fatalf("a bare network removed again: %v", got)
	}
	// Admins only; bad ids and bodies are refused.
	f.expect("GET", "/v2.0/networks/"+withDHCP+"/dhcp-agents", alice, nil, 403, "")
	f.expect("POST", "/v2.0/agents/"+a1+"/dhcp-networks", alice, map[string]any{"network_id": bare}, 403, "")
	f.expect("POST", "/v2.0/agents/"+a1+"/dhcp-networks", admin, map[string]any{}, 400, "", "network_id")
	f.expect("POST", "/v2.0/agents/"+a1+"/dhcp-networks", admin, map[string]any{"network_id": "nope"}, 404, "NetworkNotFound")
	f.expect("POST", "/v2.0/agents/"+agentID("L3 agent", "node1")+"/dhcp-networks", admin, map[string]any{"network_id": bare}, 404, "AgentNotFound")
	f.expect("GET", "/v2.0/agents/nope/dhcp-networks", admin, nil, 404, "AgentNotFound")
}
