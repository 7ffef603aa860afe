package compute

import "testing"

func TestResetState(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	id := f.server(alice, "web")
	f.report(id, Observed{Status: "ACTIVE", PowerState: PowerRunning})
	reset := func(tok string, arg any, status int, fault string, inMsg ...string) {
		t.Helper()
		f.expect("POST", "/v2.1/servers/"+id+"/action", tok, "", map[string]any{"os-resetState": arg}, status, fault, inMsg...)
	}
	// Stuck powering off.
	f.action(alice, id, map[string]any{"os-stop": nil}, 202)
	if sv := f.row(id); sv.TaskState != "powering-off" {
		t.Fatalf("task %q", sv.TaskState)
	}
	// Only an admin; bad states name the field.
	reset(alice, map[string]any{"state": "active"}, 403, "forbidden", resetStateRule)
	reset(bob, map[string]any{"state": "active"}, 404, "itemNotFound")
	reset(admin, map[string]any{"state": "stopped"}, 400, "badRequest", "state", "stopped")
	reset(admin, map[string]any{"state": 1}, 400, "badRequest", "state")
	reset(admin, map[string]any{}, 400, "badRequest", "state", "required")
	reset(admin, map[string]any{"state": "error", "x": 1}, 400, "badRequest", "x")
	reset(admin, nil, 400, "badRequest", "os-resetState")
	if sv := f.row(id); sv.TaskState != "powering-off" || sv.Status != "ACTIVE" {
		t.Fatalf("a refused reset changed the server: %s %s", sv.Status, sv.TaskState)
	}
	// error, then active: vm_state set, no task.
	reset(admin, map[string]any{"state": "error"}, 202, "")
	if v := f.show(alice, id, ""); v["status"] != "ERROR" || v["OS-EXT-STS:vm_state"] != "error" || v["OS-EXT-STS:task_state"] != nil {
		t.Fatalf("after reset to error: %v %v %v", v["status"], v["OS-EXT-STS:vm_state"], v["OS-EXT-STS:task_state"])
	}
	reset(admin, map[string]any{"state": "active"}, 202, "")
	if v := f.show(alice, id, ""); v["status"] != "ACTIVE" || v["OS-EXT-STS:vm_state"] != "active" || v["OS-EXT-STS:task_state"] != nil {
		t.Fatalf("after reset to active: %v %v %v", v["status"], v["OS-EXT-STS:vm_state"], v["OS-EXT-STS:task_state"])
	}
	// Actions are possible again.
	f.action(alice, id, map[string]any{"reboot": map[string]any{"type": "SOFT"}}, 202)
	// Logged as Nova logs it.
	var n int
	for _, a := range f.expect("GET", "/v2.1/servers/"+id+"/os-instance-actions", admin, "", nil, 200, "")["instanceActions"].([]any) {
		if a.(map[string]any)["action"] == "resetState" {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d resetState actions logged, want 2", n)
	}
}
