package compute

import "testing"

// Nova's documented actions this cloud lacks answer 501 naming the
// action, once the server is found and the caller may act on it; an
// undocumented key stays 400 and another project's server 404.
func TestUnbuiltActions(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	id := f.server(alice, "web")
	path := "/v2.1/servers/" + id + "/action"
	before := *f.row(id)
	for _, a := range []string{"changePassword",
		"trigger_crash_dump", "os-getSPICEConsole", "os-getRDPConsole",
		"injectNetworkInfo", "resetNetwork",
		"addFixedIp", "removeFixedIp"} {
		tok := alice
		if unbuiltActions[a].admin {
			// Admin-only in Nova: a member is refused by policy first.
			f.expect("POST", path, alice, "", map[string]any{a: map[string]any{}}, 403, "forbidden", unbuiltActions[a].rule)
			tok = admin
		}
		f.expect("POST", path, tok, "", map[string]any{a: map[string]any{}}, 501, "notImplemented", "action "+a+" is not implemented")
		f.expect("POST", path, bob, "", map[string]any{a: map[string]any{}}, 404, "itemNotFound")
		f.expect("POST", "/v2.1/servers/"+id+"x/action", tok, "", map[string]any{a: nil}, 404, "itemNotFound")
		// A reader of the project may not act.
		f.expect("POST", path, carol, "", map[string]any{a: nil}, 403, "forbidden")
	}
	// The table holds only what is not built: every entry answers 501.
	for a := range unbuiltActions {
		f.expect("POST", path, admin, "", map[string]any{a: map[string]any{}}, 501, "notImplemented", a)
	}
	f.expect("POST", path, alice, "", map[string]any{"explode": nil}, 400, "badRequest", "There is no such action: explode")
	f.expect("POST", path, bob, "", map[string]any{"explode": nil}, 400, "badRequest", "There is no such action: explode")
	if sv := f.row(id); sv.TaskState != before.TaskState || sv.Status != before.Status || !sv.Updated.Equal(before.Updated) {
		t.Fatalf("an unbuilt action changed the server: %+v", sv)
	}
}

// Discovery lists the extensions of the actions built, not those of the
// ones that answer 501.
func TestActionExtensions(t *testing.T) {
	f := newFixture(t)
	for _, alias := range []string{"os-lock-server", "os-admin-actions", "os-security-groups", "os-server-password", "os-rescue", "os-migrate-server", "os-evacuate"} {
		f.expect("GET", "/v2.1/extensions/"+alias, alice, "", nil, 200, "")
	}
	for _, alias := range []string{"os-shelve", "os-create-backup"} {
		f.expect("GET", "/v2.1/extensions/"+alias, alice, "", nil, 404, "itemNotFound")
	}
}
