package compute

import "testing"

// With deletes not deferred, forceDelete deletes a server in any state
// (locked: 409, as Nova's check_instance_lock) and restore is always a
// conflict, after the server lookup and the policy check.
func TestDeferredDeleteActions(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	id := f.server(alice, "web")
	f.report(id, Observed{Status: "ACTIVE", PowerState: PowerRunning})
	path := "/v2.1/servers/" + id + "/action"

	for _, a := range []string{"forceDelete", "restore"} {
		f.expect("POST", path, bob, "", map[string]any{a: nil}, 404, "itemNotFound")
		f.expect("POST", path, carol, "", map[string]any{a: nil}, 403, "forbidden", "os-deferred-delete")
	}
	f.expect("POST", path, alice, "", map[string]any{"restore": nil}, 409, "conflictingRequest",
		"Cannot 'restore' instance "+id+" while it is in vm_state active")

	// Locked: neither acts for a member; an admin's restore still finds
	// nothing to restore.
	f.expect("POST", path, alice, "", map[string]any{"lock": nil}, 202, "")
	f.expect("POST", path, alice, "", map[string]any{"forceDelete": nil}, 409, "conflictingRequest", "is locked")
	f.expect("POST", path, alice, "", map[string]any{"restore": nil}, 409, "conflictingRequest", "is locked")
	f.expect("POST", path, admin, "", map[string]any{"restore": nil}, 409, "conflictingRequest", "vm_state active")
	if row := f.row(id); row == nil || row.TaskState != "" {
		t.Fatalf("a refused action changed the server: %+v", row)
	}
	f.expect("POST", path, alice, "", map[string]any{"unlock": nil}, 202, "")

	// forceDelete deletes as DELETE does: the server is being deleted.
	// Its argument is not read, as Nova's schema takes any value:
	// Terraform sends "".
	f.expect("POST", path, alice, "", map[string]any{"forceDelete": ""}, 202, "")
	if row := f.row(id); row != nil && row.TaskState != "deleting" {
		t.Fatalf("after forceDelete: %+v", row)
	}
	// In any state: one still building too, with an empty object.
	other := f.server(alice, "db")
	f.expect("POST", "/v2.1/servers/"+other+"/action", alice, "", map[string]any{"forceDelete": map[string]any{}}, 202, "")
	if row := f.row(other); row != nil && row.TaskState != "deleting" {
		t.Fatalf("after forceDelete of a building server: %+v", row)
	}
}
