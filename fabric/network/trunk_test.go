package network

import (
	"fmt"
	"testing"
)

func subport(port string, seg any) map[string]any {
	return map[string]any{"port_id": port, "segmentation_type": "vlan", "segmentation_id": seg}
}

func subports(v map[string]any) map[string]string {
	out := map[string]string{}
	for _, x := range v["sub_ports"].([]any) {
		m := x.(map[string]any)
		out[m["port_id"].(string)] = fmt.Sprint(m["segmentation_id"])
	}
	return out
}

// TestTrunks covers the trunk API as Neutron's reference and trunk plugin
// have it: fields, the subport rules, the errors and who may do what.
func TestTrunks(t *testing.T) {
	f := newFixture(t)
	n1 := f.network(alice, "n1")["id"].(string)
	n2 := f.network(alice, "n2")["id"].(string)
	parent := f.port(alice, n1)["id"].(string)
	s1 := f.port(alice, n2)["id"].(string)
	s2 := f.port(alice, n2)["id"].(string)
	same := f.port(alice, n1)["id"].(string) // a subport on the parent's network is allowed

	tr := f.mk(alice, "trunks", "trunk", map[string]any{"name": "t", "port_id": parent, "sub_ports": []any{subport(s1, 10)}})
	id := tr["id"].(string)
	for k, want := range map[string]any{"name": "t", "description": "", "port_id": parent, "admin_state_up": true,
		"status": "DOWN", "project_id": projA, "tenant_id": projA, "revision_number": 0, "tags": "[]"} {
		if fmt.Sprint(tr[k]) != fmt.Sprint(want) {
			t.Errorf("trunk %s = %v, want %v", k, tr[k], want)
		}
	}
	if got := subports(tr); len(got) != 1 || got[s1] != "10" {
		t.Errorf("sub_ports = %v", tr["sub_ports"])
	}
	// The subport is the trunk's: device_owner trunk:subport, device_id the trunk.
	sp := f.expect("GET", "/v2.0/ports/"+s1, alice, nil, 200, "")["port"].(map[string]any)
	if sp["device_owner"] != "trunk:subport" || sp["device_id"] != id {
		t.Errorf("subport device_owner %v device_id %v", sp["device_owner"], sp["device_id"])
	}
	if _, has := sp["trunk_details"]; has {
		t.Errorf("a subport shows trunk_details")
	}
	// trunk-details on the parent.
	pp := f.expect("GET", "/v2.0/ports/"+parent, alice, nil, 200, "")["port"].(map[string]any)
	td, _ := pp["trunk_details"].(map[string]any)
	if td == nil || td["trunk_id"] != id || len(td["sub_ports"].([]any)) != 1 ||
		td["sub_ports"].([]any)[0].(map[string]any)["mac_address"] != sp["mac_address"] {
		t.Errorf("parent's trunk_details = %v", pp["trunk_details"])
	}

	// Another project sees nothing, and may not use alice's ports.
	f.expect("GET", "/v2.0/trunks/"+id, bob, nil, 404, "TrunkNotFound")
	if l := f.expect("GET", "/v2.0/trunks", bob, nil, 200, "")["trunks"].([]any); len(l) != 0 {
		t.Errorf("bob lists %v", l)
	}
	if l := f.expect("GET", "/v2.0/trunks", admin, nil, 200, "")["trunks"].([]any); len(l) != 1 {
		t.Errorf("admin lists %v", l)
	}
	f.expect("PUT", "/v2.0/trunks/"+id, bob, map[string]any{"trunk": map[string]any{"name": "x"}}, 404, "TrunkNotFound")
	f.expect("POST", "/v2.0/trunks", bob, map[string]any{"trunk": map[string]any{"port_id": s2}}, 404, "PortNotFound")

	// Parent rules: one trunk per parent; a subport is no parent; a
	// missing port is 404.
	f.expect("POST", "/v2.0/trunks", alice, map[string]any{"trunk": map[string]any{"port_id": parent}}, 409, "ParentPortInUse")
	f.expect("POST", "/v2.0/trunks", alice, map[string]any{"trunk": map[string]any{"port_id": s1}}, 409, "TrunkPortInUse")
	f.expect("POST", "/v2.0/trunks", alice, map[string]any{"trunk": map[string]any{}}, 400, "HTTPBadRequest", "port_id")
	f.expect("POST", "/v2.0/trunks", alice, map[string]any{"trunk": map[string]any{"port_id": parent, "status": "ACTIVE"}}, 400, "HTTPBadRequest", "status")

	// Subport rules.
	add := "/v2.0/trunks/" + id + "/add_subports"
	body := func(subs ...any) map[string]any { return map[string]any{"sub_ports": subs} }
	f.expect("PUT", add, alice, body(subport(s2, 0)), 400, "InvalidInput", "not in range")
	f.expect("PUT", add, alice, body(subport(s2, 4095)), 400, "InvalidInput", "not in range")
	f.expect("PUT", add, alice, body(map[string]any{"port_id": s2, "segmentation_type": "vxlan", "segmentation_id": 5}), 400, "InvalidInput", "segmentation_type")
	f.expect("PUT", add, alice, body(map[string]any{"port_id": s2}), 400, "InvalidInput", "missing segmentation")
	f.expect("PUT", add, alice, body(subport(s2, "x")), 400, "InvalidInput", "not an integer")
	f.expect("PUT", add, alice, body(subport("nope", 5)), 400, "InvalidInput", "UUID")
	f.expect("PUT", add, alice, body(subport(s2, 5), subport(s2, 6)), 400, "InvalidInput", "Non unique")
	f.expect("PUT", add, alice, body(subport(s2, 5), subport(same, 5)), 400, "InvalidInput", "not unique")
	f.expect("PUT", add, alice, body(subport(s2, 10)), 409, "DuplicateSubPort")
	f.expect("PUT", add, alice, body(subport(s1, 11)), 409, "TrunkPortInUse")
	f.expect("PUT", add, alice, body(subport(parent, 11)), 409, "ParentPortInUse")
	f.expect("PUT", add, alice, body(subport("00000000-0000-0000-0000-000000000000", 11)), 404, "PortNotFound")
	// Across trunks: another trunk's subport or parent is no subport
	// here, and a trunk's parent is not its own subport.
	parent2 := f.port(alice, n1)["id"].(string)
	other := f.mk(alice, "trunks", "trunk", map[string]any{"port_id": parent2})["id"].(string)
	f.expect("PUT", "/v2.0/trunks/"+other+"/add_subports", alice, body(subport(s1, 30)), 409, "TrunkPortInUse")
	f.expect("PUT", "/v2.0/trunks/"+other+"/add_subports", alice, body(subport(parent, 30)), 409, "ParentPortInUse")
	f.expect("DELETE", "/v2.0/trunks/"+other, alice, nil, 204, "")
	f.expect("POST", "/v2.0/trunks", alice, map[string]any{"trunk": map[string]any{"port_id": parent2, "sub_ports": []any{subport(parent2, 5)}}}, 409, "ParentPortInUse")
	busy := f.port(alice, n2, "device_id", "some-server")["id"].(string)
	f.expect("PUT", add, alice, body(subport(busy, 12)), 409, "PortInUse")
	// A failed add leaves nothing half-written: s2 is still free.
	f.expect("PUT", add, alice, body(subport(s2, 20), subport(busy, 21)), 409, "PortInUse")
	if got := f.expect("GET", "/v2.0/ports/"+s2, alice, nil, 200, "")["port"].(map[string]any); got["device_owner"] != "" {
		t.Errorf("s2 after a failed add: device_owner %v", got["device_owner"])
	}
	got := f.expect("PUT", add, alice, body(subport(s2, 20), subport(same, 21)), 200, "")
	if s := subports(got); len(s) != 3 || s[s2] != "20" || s[same] != "21" {
		t.Errorf("after add_subports: %v", got["sub_ports"])
	}
	if l := f.expect("GET", "/v2.0/trunks/"+id+"/get_subports", alice, nil, 200, "")["sub_ports"].([]any); len(l) != 3 {
		t.Errorf("get_subports: %v", l)
	}
	// Filters.
	if l := f.expect("GET", "/v2.0/trunks?port_id="+parent, alice, nil, 200, "")["trunks"].([]any); len(l) != 1 {
		t.Errorf("filter port_id: %v", l)
	}
	if l := f.expect("GET", "/v2.0/trunks?name=other", alice, nil, 200, "")["trunks"].([]any); len(l) != 0 {
		t.Errorf("filter name: %v", l)
	}

	// Ports in a trunk are not deleted.
	f.expect("DELETE", "/v2.0/ports/"+parent, alice, nil, 409, "PortInUseAsTrunkParent")
	f.expect("DELETE", "/v2.0/ports/"+s1, alice, nil, 409, "PortInUseAsSubPort")

	// A disabled trunk is not managed.
	f.expect("PUT", "/v2.0/trunks/"+id, alice, map[string]any{"trunk": map[string]any{"admin_state_up": false}}, 200, "")
	f.expect("PUT", "/v2.0/trunks/"+id+"/remove_subports", alice, body(map[string]any{"port_id": s1}), 409, "TrunkDisabled")
	f.expect("DELETE", "/v2.0/trunks/"+id, alice, nil, 409, "TrunkDisabled")
	up := f.expect("PUT", "/v2.0/trunks/"+id, alice, map[string]any{"trunk": map[string]any{"admin_state_up": true, "description": "d"}}, 200, "")["trunk"].(map[string]any)
	if up["description"] != "d" || fmt.Sprint(up["revision_number"]) != "3" {
		t.Errorf("updated trunk: %v", up)
	}

	// remove_subports frees the port.
	rm := "/v2.0/trunks/" + id + "/remove_subports"
	f.expect("PUT", rm, alice, body(map[string]any{"port_id": busy}), 404, "SubPortNotFound")
	got = f.expect("PUT", rm, alice, body(map[string]any{"port_id": s1}), 200, "")
	if s := subports(got); len(s) != 2 || s[s1] != "" {
		t.Errorf("after remove_subports: %v", got["sub_ports"])
	}
	if p := f.expect("GET", "/v2.0/ports/"+s1, alice, nil, 200, "")["port"].(map[string]any); p["device_owner"] != "" || p["device_id"] != "" {
		t.Errorf("removed subport: device_owner %v device_id %v", p["device_owner"], p["device_id"])
	}
	f.expect("DELETE", "/v2.0/ports/"+s1, alice, nil, 204, "")

	// Tags.
	f.expect("PUT", "/v2.0/trunks/"+id+"/tags/blue", alice, nil, 201, "")
	if l := f.expect("GET", "/v2.0/trunks?tags=blue", alice, nil, 200, "")["trunks"].([]any); len(l) != 1 {
		t.Errorf("tags filter: %v", l)
	}

	// Deleting the trunk frees its subports and parent.
	f.expect("DELETE", "/v2.0/trunks/"+id, alice, nil, 204, "")
	f.expect("GET", "/v2.0/trunks/"+id, alice, nil, 404, "TrunkNotFound")
	if p := f.expect("GET", "/v2.0/ports/"+s2, alice, nil, 200, "")["port"].(map[string]any); p["device_owner"] != "" {
		t.Errorf("subport after trunk delete: %v", p["device_owner"])
	}
	if _, has := f.expect("GET", "/v2.0/ports/"+parent, alice, nil, 200, "")["port"].(map[string]any)["trunk_details"]; has {
		t.Errorf("parent keeps trunk_details")
	}
	f.expect("DELETE", "/v2.0/ports/"+parent, alice, nil, 204, "")
}

// TestTrunkSubportMTU: a subport's network may not have a larger MTU
// than the parent's.
func TestTrunkSubportMTU(t *testing.T) {
	f := newFixture(t)
	small := f.network(alice, "small", "mtu", 1400)["id"].(string)
	big := f.network(alice, "big")["id"].(string)
	parent := f.port(alice, small)["id"].(string)
	sp := f.port(alice, big)["id"].(string)
	f.expect("POST", "/v2.0/trunks", alice, map[string]any{"trunk": map[string]any{"port_id": parent, "sub_ports": []any{subport(sp, 7)}}},
		409, "SubPortMtuGreaterThanTrunkPortMtu")
	if l := f.expect("GET", "/v2.0/trunks", alice, nil, 200, "")["trunks"].([]any); len(l) != 0 {
		t.Errorf("a refused trunk was made: %v", l)
	}
}

// TestTrunkSubportsFollowParentBinding: binding the parent to a host
// binds its subports there (the node of the parent's device hosts them).
func TestTrunkSubportsFollowParentBinding(t *testing.T) {
	f := newFixture(t)
	n := f.network(alice, "n")["id"].(string)
	parent := f.port(alice, n)["id"].(string)
	sp := f.port(alice, n)["id"].(string)
	f.mk(alice, "trunks", "trunk", map[string]any{"port_id": parent, "sub_ports": []any{subport(sp, 7)}})
	f.expect("PUT", "/v2.0/ports/"+parent, admin, map[string]any{"port": map[string]any{"binding:host_id": "node1"}}, 200, "")
	if got := f.expect("GET", "/v2.0/ports/"+sp, admin, nil, 200, "")["port"].(map[string]any); got["binding:host_id"] != "node1" {
		t.Errorf("subport binding:host_id = %v, want node1", got["binding:host_id"])
	}
	f.expect("PUT", "/v2.0/ports/"+parent, admin, map[string]any{"port": map[string]any{"binding:host_id": ""}}, 200, "")
	if got := f.expect("GET", "/v2.0/ports/"+sp, admin, nil, 200, "")["port"].(map[string]any); got["binding:host_id"] != "" {
		t.Errorf("subport binding:host_id = %v after unbinding", got["binding:host_id"])
	}
}

// exerciseTrunks runs every trunk command once, leaving a trunk with a
// subport on network nid, for the snapshot test.
func exerciseTrunks(f *fixture, nid string) {
	f.t.Helper()
	parent := f.port(alice, nid)["id"].(string)
	sp := f.port(alice, nid)["id"].(string)
	id := f.mk(alice, "trunks", "trunk", map[string]any{"port_id": parent, "name": "kept"})["id"].(string)
	f.expect("PUT", "/v2.0/trunks/"+id, alice, map[string]any{"trunk": map[string]any{"description": "d"}}, 200, "")
	f.expect("PUT", "/v2.0/trunks/"+id+"/add_subports", alice, map[string]any{"sub_ports": []any{subport(sp, 101)}}, 200, "")
	goneParent := f.port(alice, nid)["id"].(string)
	gone := f.mk(alice, "trunks", "trunk", map[string]any{"port_id": goneParent})["id"].(string)
	f.expect("DELETE", "/v2.0/trunks/"+gone, alice, nil, 204, "")
}
