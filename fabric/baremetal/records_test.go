package baremetal

import (
	"context"
	"net/http"
	"testing"

	"github.com/rackstack/rackstack/fabric/baremetal/bmstate"
)

// process does what a conductor does with an allocation just created.
func (f *fixture) process(id string) {
	f.t.Helper()
	if _, err := f.local.Propose(context.Background(), bmstate.CmdProcessAllocation, bmstate.ProcessAllocationCmd{ID: id, Now: f.now}); err != nil {
		f.t.Fatal(err)
	}
}

// availableNode creates a node and moves it to available and powered
// off, as the conductor would.
func (f *fixture) availableNode(fields map[string]any) string {
	f.t.Helper()
	id := f.createNode(fields)["uuid"].(string)
	f.conductor(id, func(n *bmstate.Node) { n.ProvisionState, n.PowerState = bmstate.StateAvailable, bmstate.PowerOff })
	return id
}

func TestAllocations(t *testing.T) {
	f := newFixture(t)
	if res := f.call("GET", "/v1/allocations", admin, nil, headerVersion, "1.51"); res.Code != 404 {
		t.Fatalf("allocations at 1.51: %d", res.Code)
	}
	id := f.availableNode(map[string]any{"name": "n1", "resource_class": "gold"})
	other := f.availableNode(map[string]any{"name": "n2", "resource_class": "silver"})
	// Without a conductor nothing would process it.
	f.expect(503, "POST", "/v1/allocations", admin, map[string]any{"resource_class": "gold"}, "No conductor")
	f.addConductor("c1")
	f.expect(400, "POST", "/v1/allocations", admin, map[string]any{}, "resource_class")
	f.expect(400, "POST", "/v1/allocations", admin, map[string]any{"resource_class": "gold", "traits": []any{"lower"}}, "traits")
	f.expect(400, "POST", "/v1/allocations", admin, map[string]any{"resource_class": "gold", "candidate_nodes": []any{"nope"}}, "candidate_nodes")
	f.expect(400, "POST", "/v1/allocations", admin, map[string]any{"resource_class": "gold", "bogus": 1}, "bogus")

	a := f.expect(201, "POST", "/v1/allocations", admin, map[string]any{"resource_class": "gold", "name": "alloc1", "candidate_nodes": []any{"n1"}}).Body
	aid := a["uuid"].(string)
	if a["state"] != "allocating" || a["node_uuid"] != nil || a["last_error"] != nil {
		t.Fatalf("created: %v", a)
	}
	if c := a["candidate_nodes"].([]any); len(c) != 1 || c[0] != id {
		t.Fatalf("candidate_nodes are not the node UUIDs: %v", c)
	}
	f.process(aid)
	got := f.expect(200, "GET", "/v1/allocations/alloc1", admin, nil).Body
	if got["state"] != "active" || got["node_uuid"] != id {
		t.Fatalf("processed: %v", got)
	}
	if byNode := f.expect(200, "GET", "/v1/nodes/n1/allocation", admin, nil).Body; byNode["uuid"] != aid {
		t.Fatalf("node allocation: %v", byNode)
	}
	if n := f.expect(200, "GET", "/v1/nodes/"+id, admin, nil).Body; n["allocation_uuid"] != aid || n["instance_uuid"] != aid {
		t.Fatalf("node: allocation_uuid %v instance_uuid %v", n["allocation_uuid"], n["instance_uuid"])
	}
	f.expect(404, "GET", "/v1/nodes/n2/allocation", admin, nil)

	bad := f.expect(201, "POST", "/v1/allocations", admin, map[string]any{"resource_class": "bronze"}).Body["uuid"].(string)
	f.process(bad)
	if got := f.expect(200, "GET", "/v1/allocations/"+bad, admin, nil).Body; got["state"] != "error" || got["last_error"] == nil {
		t.Fatalf("unmatched: %v", got)
	}
	if l := f.expect(200, "GET", "/v1/allocations?state=error", admin, nil).Body["allocations"].([]any); len(l) != 1 || l[0].(map[string]any)["uuid"] != bad {
		t.Fatalf("by state: %v", l)
	}
	if l := f.expect(200, "GET", "/v1/allocations?resource_class=gold", admin, nil).Body["allocations"].([]any); len(l) != 1 {
		t.Fatalf("by resource class: %v", l)
	}
	if l := f.expect(200, "GET", "/v1/allocations?node=n1", admin, nil).Body["allocations"].([]any); len(l) != 1 {
		t.Fatalf("by node: %v", l)
	}

	// Only name and extra change; at 1.57.
	patch := []any{map[string]any{"op": "add", "path": "/extra/k", "value": "v"}, map[string]any{"op": "replace", "path": "/name", "value": "renamed"}}
	if res := f.call("PATCH", "/v1/allocations/"+aid, admin, patch, headerVersion, "1.56"); res.Code != 404 {
		t.Fatalf("patch at 1.56: %d", res.Code)
	}
	if got := f.expect(200, "PATCH", "/v1/allocations/"+aid, admin, patch).Body; got["name"] != "renamed" || got["extra"].(map[string]any)["k"] != "v" {
		t.Fatalf("patched: %v", got)
	}
	f.expect(400, "PATCH", "/v1/allocations/"+aid, admin, []any{map[string]any{"op": "replace", "path": "/resource_class", "value": "x"}}, "resource_class")

	// Deleting it by the node frees the node.
	f.expect(204, "DELETE", "/v1/nodes/n1/allocation", admin, nil)
	f.expect(404, "GET", "/v1/allocations/"+aid, admin, nil)
	if n := f.node(id); n.AllocationID != "" || n.InstanceUUID != "" {
		t.Fatalf("node not freed: %+v", n)
	}

	// Backfill (1.58): a deployed node's allocation, active at once.
	f.conductor(other, func(n *bmstate.Node) { n.ProvisionState = bmstate.StateActive })
	if res := f.call("POST", "/v1/allocations", admin, map[string]any{"node": other}, headerVersion, "1.57"); res.Code != http.StatusNotAcceptable {
		t.Fatalf("backfill at 1.57: %d", res.Code)
	}
	b := f.expect(201, "POST", "/v1/allocations", admin, map[string]any{"node": other}).Body
	if b["state"] != "active" || b["node_uuid"] != other || b["resource_class"] != "silver" {
		t.Fatalf("backfill: %v", b)
	}
	f.expect(409, "DELETE", "/v1/allocations/"+b["uuid"].(string), admin, nil, "undeploy")
}

func TestDeployTemplates(t *testing.T) {
	f := newFixture(t)
	steps := []any{map[string]any{"interface": "bios", "step": "apply_configuration", "args": map[string]any{}, "priority": 10}}
	if res := f.call("POST", "/v1/deploy_templates", admin, map[string]any{"name": "CUSTOM_A", "steps": steps}, headerVersion, "1.54"); res.Code != 404 {
		t.Fatalf("at 1.54: %d", res.Code)
	}
	for name, body := range map[string]map[string]any{
		"name":       {"name": "invalid-name", "steps": steps},
		"steps":      {"name": "CUSTOM_A"},
		"steps[0]":   {"name": "CUSTOM_A", "steps": []any{"x"}},
		"interface":  {"name": "CUSTOM_A", "steps": []any{map[string]any{"interface": "cpu", "step": "x", "args": map[string]any{}, "priority": 1}}},
		"priority":   {"name": "CUSTOM_A", "steps": []any{map[string]any{"interface": "bios", "step": "x", "args": map[string]any{}, "priority": -1}}},
		"uuid":       {"name": "CUSTOM_A", "steps": steps, "uuid": "malformed:uuid"},
		"Duplicate":  {"name": "CUSTOM_A", "steps": append(append([]any{}, steps...), steps...)},
		"not a list": {"name": "CUSTOM_A", "steps": map[string]any{"key": "value"}},
	} {
		want := name
		if name == "not a list" {
			want = "steps"
		}
		f.expect(400, "POST", "/v1/deploy_templates", admin, body, want)
	}
	tpl := f.expect(201, "POST", "/v1/deploy_templates", admin, map[string]any{"name": "CUSTOM_A", "steps": steps}).Body
	tid := tpl["uuid"].(string)
	f.expect(409, "POST", "/v1/deploy_templates", admin, map[string]any{"name": "CUSTOM_A", "steps": steps}, "already exists")
	if got := f.expect(200, "GET", "/v1/deploy_templates/CUSTOM_A", admin, nil).Body; got["uuid"] != tid || len(got["steps"].([]any)) != 1 {
		t.Fatalf("by name: %v", got)
	}
	more := map[string]any{"interface": "raid", "step": "create_configuration", "args": map[string]any{}, "priority": 20}
	got := f.expect(200, "PATCH", "/v1/deploy_templates/"+tid, admin, []any{
		map[string]any{"op": "add", "path": "/steps/1", "value": more},
		map[string]any{"op": "replace", "path": "/name", "value": "CUSTOM_B"},
	}).Body
	if got["name"] != "CUSTOM_B" || len(got["steps"].([]any)) != 2 {
		t.Fatalf("patched: %v", got)
	}
	f.expect(400, "PATCH", "/v1/deploy_templates/"+tid, admin, []any{map[string]any{"op": "remove", "path": "/name"}}, "name")
	f.expect(400, "PATCH", "/v1/deploy_templates/"+tid, admin, []any{map[string]any{"op": "remove", "path": "/steps"}}, "steps")
	f.expect(400, "PATCH", "/v1/deploy_templates/"+tid, admin, []any{map[string]any{"op": "replace", "path": "/name", "value": ""}}, "name")
	if l := f.expect(200, "GET", "/v1/deploy_templates", admin, nil).Body["deploy_templates"].([]any); len(l) != 1 || l[0].(map[string]any)["steps"] != nil {
		t.Fatalf("short list: %v", l)
	}
	if l := f.expect(200, "GET", "/v1/deploy_templates?detail=True", admin, nil).Body["deploy_templates"].([]any); len(l) != 1 || l[0].(map[string]any)["steps"] == nil {
		t.Fatalf("detail list: %v", l)
	}
	f.expect(204, "DELETE", "/v1/deploy_templates/CUSTOM_B", admin, nil)
	f.expect(404, "GET", "/v1/deploy_templates/"+tid, admin, nil)
}

func TestVolumeConnectorsAndTargets(t *testing.T) {
	f := newFixture(t)
	id := f.createNode(map[string]any{"name": "n1"})["uuid"].(string)
	if res := f.call("GET", "/v1/volume/connectors", admin, nil, headerVersion, "1.31"); res.Code != 404 {
		t.Fatalf("at 1.31: %d", res.Code)
	}
	f.expect(400, "POST", "/v1/volume/connectors", admin, map[string]any{"node_uuid": id, "type": "floppy", "connector_id": "x"}, "type")
	f.expect(400, "POST", "/v1/volume/connectors", admin, map[string]any{"node_uuid": id, "type": "iqn"}, "connector_id")
	f.expect(400, "POST", "/v1/volume/connectors", admin, map[string]any{"node_uuid": "nope", "type": "iqn", "connector_id": "x"}, "nope")
	c := f.expect(201, "POST", "/v1/volume/connectors", admin, map[string]any{"node_uuid": id, "type": "iqn", "connector_id": "iqn.x", "extra": map[string]any{"a": "b"}}).Body
	f.expect(409, "POST", "/v1/volume/connectors", admin, map[string]any{"node_uuid": id, "type": "iqn", "connector_id": "iqn.x"}, "A volume connector", "already exists")
	f.expect(400, "POST", "/v1/volume/targets", admin, map[string]any{"node_uuid": id, "volume_type": "iscsi", "volume_id": "v"}, "boot_index")
	tg := f.expect(201, "POST", "/v1/volume/targets", admin, map[string]any{"node_uuid": id, "volume_type": "iscsi", "volume_id": "v1", "boot_index": 0}).Body
	f.expect(409, "POST", "/v1/volume/targets", admin, map[string]any{"node_uuid": id, "volume_type": "iscsi", "volume_id": "v2", "boot_index": 0}, "A volume target", "already exists")
	if l := f.expect(200, "GET", "/v1/nodes/n1/volume/targets", admin, nil).Body["targets"].([]any); len(l) != 1 {
		t.Fatalf("node's targets: %v", l)
	}
	if l := f.expect(200, "GET", "/v1/volume/connectors?node="+id, admin, nil).Body["connectors"].([]any); len(l) != 1 {
		t.Fatalf("connectors by node: %v", l)
	}
	if v := f.expect(200, "GET", "/v1/nodes/n1/volume", admin, nil).Body; v["connectors"] == nil || v["targets"] == nil {
		t.Fatalf("node volume root: %v", v)
	}

	// Changed only while the node is off (its power unknown counts as
	// not off), as in Ironic; a power-off request is the latest word.
	patch := []any{map[string]any{"op": "replace", "path": "/volume_id", "value": "v9"}}
	f.expect(400, "PATCH", "/v1/volume/targets/"+tg["uuid"].(string), admin, patch, `"volume target update"`)
	f.expect(202, "PUT", "/v1/nodes/n1/states/power", admin, map[string]any{"target": "power on"})
	f.expect(400, "DELETE", "/v1/volume/connectors/"+c["uuid"].(string), admin, nil, `"volume connector deletion"`, `"power on"`)
	f.expect(202, "PUT", "/v1/nodes/n1/states/power", admin, map[string]any{"target": "power off"})
	if got := f.expect(200, "PATCH", "/v1/volume/targets/"+tg["uuid"].(string), admin, patch).Body; got["volume_id"] != "v9" {
		t.Fatalf("patched: %v", got)
	}
	f.expect(400, "PATCH", "/v1/volume/connectors/"+c["uuid"].(string), admin, []any{map[string]any{"op": "remove", "path": "/type"}}, "type")
	if got := f.expect(200, "PATCH", "/v1/volume/connectors/"+c["uuid"].(string), admin, []any{map[string]any{"op": "remove", "path": "/extra"}}).Body; len(got["extra"].(map[string]any)) != 0 {
		t.Fatalf("extra removed: %v", got)
	}
	f.expect(204, "DELETE", "/v1/volume/connectors/"+c["uuid"].(string), admin, nil)
	f.expect(404, "GET", "/v1/volume/connectors/"+c["uuid"].(string), admin, nil)
}

func TestBootFromVolumeIsRefusedClearly(t *testing.T) {
	f := newFixture(t)
	id := f.availableNode(map[string]any{"name": "n1", "instance_info": map[string]any{"image_source": "img"}})
	tg := f.expect(201, "POST", "/v1/volume/targets", admin, map[string]any{"node_uuid": id, "volume_type": "iscsi", "volume_id": "v1", "boot_index": 0}).Body["uuid"].(string)
	f.expect(400, "PUT", "/v1/nodes/n1/states/provision", admin, map[string]any{"target": "active"}, "boot volume target", "cinder storage interface")
	v := f.expect(200, "GET", "/v1/nodes/n1/validate", admin, nil).Body
	if st := v["storage"].(map[string]any); st["result"] != false {
		t.Fatalf("validate storage: %v", st)
	}
	// A data volume (boot_index > 0) is no obstacle; without the boot
	// target the node deploys to its disk.
	f.expect(201, "POST", "/v1/volume/targets", admin, map[string]any{"node_uuid": id, "volume_type": "iscsi", "volume_id": "v2", "boot_index": 1})
	f.expect(202, "PUT", "/v1/nodes/n1/states/power", admin, map[string]any{"target": "power off"})
	f.expect(204, "DELETE", "/v1/volume/targets/"+tg, admin, nil)
	f.expect(202, "PUT", "/v1/nodes/n1/states/provision", admin, map[string]any{"target": "active"})
}
