package network

import "testing"

// TestRouterPortStatusFollowsTheRouter: a router's ports have no node to
// report them; they show whether the router is forwarded.
func TestRouterPortStatusFollowsTheRouter(t *testing.T) {
	f := newFixture(t)
	w := f.l3(alice)
	status := func(owner string) string {
		t.Helper()
		ps := f.expect("GET", "/v2.0/ports?device_id="+w.router+"&device_owner="+owner, admin, nil, 200, "")["ports"].([]any)
		if len(ps) != 1 {
			t.Fatalf("%s ports: %v", owner, ps)
		}
		return ps[0].(map[string]any)["status"].(string)
	}
	// Nothing forwards for routers: their ports are DOWN.
	if a, b := status("network:router_interface"), status("network:router_gateway"); a != "DOWN" || b != "DOWN" {
		t.Fatalf("without forwarding: interface %s, gateway %s", a, b)
	}
	f.svc.cfg.Forwarding = true
	if a, b := status("network:router_interface"), status("network:router_gateway"); a != "ACTIVE" || b != "ACTIVE" {
		t.Fatalf("forwarded: interface %s, gateway %s", a, b)
	}
	// The status filter sees the same.
	if ps := f.expect("GET", "/v2.0/ports?device_id="+w.router+"&status=ACTIVE", alice, nil, 200, "")["ports"].([]any); len(ps) != 1 {
		t.Fatalf("ACTIVE ports alice sees of her router: %v", ps)
	}
	// An administratively down router forwards nothing: its ports say
	// so, while the router stays ACTIVE, as Neutron's routers do (their
	// statuses are ACTIVE, ALLOCATING and ERROR).
	down := f.expect("PUT", "/v2.0/routers/"+w.router, alice, map[string]any{"router": map[string]any{"admin_state_up": false}}, 200, "")["router"].(map[string]any)
	if a, b := status("network:router_interface"), status("network:router_gateway"); a != "DOWN" || b != "DOWN" {
		t.Fatalf("router down: interface %s, gateway %s", a, b)
	}
	if down["status"] != "ACTIVE" || f.expect("GET", "/v2.0/routers/"+w.router, alice, nil, 200, "")["router"].(map[string]any)["status"] != "ACTIVE" {
		t.Fatalf("a disabled router's status: %v", down["status"])
	}
	f.expect("PUT", "/v2.0/routers/"+w.router, alice, map[string]any{"router": map[string]any{"admin_state_up": true}}, 200, "")
	// A port taken down is DOWN, and the update's answer says so.
	ifport := f.expect("GET", "/v2.0/ports?device_id="+w.router+"&device_owner=network:router_interface", alice, nil, 200, "")["ports"].([]any)[0].(map[string]any)["id"].(string)
	out := f.expect("PUT", "/v2.0/ports/"+ifport, alice, map[string]any{"port": map[string]any{"admin_state_up": false}}, 200, "")["port"].(map[string]any)
	if out["status"] != "DOWN" {
		t.Fatalf("interface port down: %v", out["status"])
	}
	out = f.expect("PUT", "/v2.0/ports/"+ifport, alice, map[string]any{"port": map[string]any{"admin_state_up": true}}, 200, "")["port"].(map[string]any)
	if out["status"] != "ACTIVE" {
		t.Fatalf("interface port up again: %v", out["status"])
	}
	// A VM's port keeps the status its node reported.
	if st := f.expect("GET", "/v2.0/ports/"+w.port, alice, nil, 200, "")["port"].(map[string]any)["status"]; st != "DOWN" {
		t.Fatalf("an unplugged VM port shows %v", st)
	}
}

// TestRouterGatewayPortDownWhereNotReached: a gateway on a VLAN external
// network the nodes do not reach is not forwarded; the interfaces still
// are.
func TestRouterGatewayPortDownWhereNotReached(t *testing.T) {
	f := newFixture(t)
	f.svc.cfg.Forwarding, f.svc.cfg.VLANExternals = true, true
	vlanExt := f.network(admin, "vlan-public", "router:external", true)["id"].(string)
	f.subnet(admin, vlanExt, "198.51.100.0/24")
	net := f.network(alice, "n")["id"].(string)
	sub := f.subnet(alice, net, "10.2.0.0/24")["id"].(string)
	r := f.mk(alice, "routers", "router", map[string]any{"name": "r", "external_gateway_info": map[string]any{"network_id": vlanExt}})["id"].(string)
	f.expect("PUT", "/v2.0/routers/"+r+"/add_router_interface", alice, map[string]any{"subnet_id": sub}, 200, "")
	byOwner := func() map[string]any {
		got := map[string]any{}
		for _, p := range f.expect("GET", "/v2.0/ports?device_id="+r, admin, nil, 200, "")["ports"].([]any) {
			got[p.(map[string]any)["device_owner"].(string)] = p.(map[string]any)["status"]
		}
		return got
	}
	if got := byOwner(); got["network:router_gateway"] != "ACTIVE" || got["network:router_interface"] != "ACTIVE" {
		t.Fatalf("with uplinks: %v", got)
	}
	f.svc.cfg.VLANExternals = false
	if got := byOwner(); got["network:router_gateway"] != "DOWN" || got["network:router_interface"] != "ACTIVE" {
		t.Fatalf("without uplinks: %v", got)
	}
}
