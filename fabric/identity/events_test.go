package identity

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/events/eventstate"
	"github.com/rackstack/rackstack/fabric/store"
)

// Identity changes are events: who made, changed, granted, revoked and
// removed users, projects, groups, domains and roles, none of them in a
// project (only admins read them), and no password or secret in any.
func TestIdentityChangesAreEvents(t *testing.T) {
	local, err := store.NewLocal(Schema(), eventstate.Schema())
	if err != nil {
		t.Fatal(err)
	}
	f := newFixtureOn(t, local, local)
	_, _, me := f.call("GET", "/auth/tokens", f.admin, nil, "X-Subject-Token", f.admin)
	adminID := me["token"].(map[string]any)["user"].(map[string]any)["id"].(string)

	dom := f.mk("/domains", "domain", map[string]any{"name": "lab"})
	proj := f.mk("/projects", "project", map[string]any{"name": "p1"})
	user := f.mk("/users", "user", map[string]any{"name": "bob", "password": "first-secret", "default_project_id": proj})
	group := f.mk("/groups", "group", map[string]any{"name": "ops"})
	role := f.mk("/roles", "role", map[string]any{"name": "auditor"})
	calls := []struct {
		method, path string
		tok          string
		body         any
	}{
		{"PUT", "/groups/" + group + "/users/" + user, f.admin, nil},
		{"PUT", "/projects/" + proj + "/users/" + user + "/roles/" + role, f.admin, nil},
		{"PATCH", "/users/" + user, f.admin, map[string]any{"user": map[string]any{"password": "second-secret"}}},
		{"POST", "/users/" + user + "/password", "", map[string]any{"user": map[string]any{"original_password": "second-secret", "password": "third-secret"}}},
		{"PATCH", "/projects/" + proj, f.admin, map[string]any{"project": map[string]any{"enabled": false}}},
		{"DELETE", "/projects/" + proj + "/users/" + user + "/roles/" + role, f.admin, nil},
		{"DELETE", "/groups/" + group + "/users/" + user, f.admin, nil},
		{"DELETE", "/groups/" + group, f.admin, nil},
		{"DELETE", "/users/" + user, f.admin, nil},
		{"DELETE", "/roles/" + role, f.admin, nil},
		{"PATCH", "/domains/" + dom, f.admin, map[string]any{"domain": map[string]any{"enabled": false}}},
		{"DELETE", "/domains/" + dom, f.admin, nil},
	}
	for _, c := range calls {
		if code, _, body := f.call(c.method, c.path, c.tok, c.body); code/100 != 2 {
			t.Fatalf("%s %s: %d %v", c.method, c.path, code, body)
		}
	}

	evs := eventstate.List(local.State.Txn(), eventstate.Filter{})
	brief := func(id string) string {
		var out []string
		for _, e := range evs {
			if e.ResourceID != id {
				continue
			}
			who := e.UserID
			switch who {
			case adminID:
				who = "admin"
			case user:
				who = "bob"
			}
			out = append(out, fmt.Sprintf("%s %s %s>%s by %s (%s)", e.ResourceType, e.Action, e.From, e.To, who, e.Reason))
		}
		return strings.Join(out, "; ")
	}
	grant := assignmentID("user", user, "project", proj, role)
	for id, want := range map[string]string{
		dom:  "domain create >enabled by admin (lab); domain update enabled>disabled by admin (); domain delete disabled>DELETED by admin ()",
		proj: "project create >enabled by admin (p1 in domain default); project update enabled>disabled by admin ()",
		user: "user create >enabled by admin (bob in domain default, default project " + proj + "); " +
			"user update enabled>enabled by admin (password changed); user update enabled>enabled by bob (password changed); " +
			"user delete enabled>DELETED by admin ()",
		group:              "group create > by admin (ops in domain default); group delete >DELETED by admin ()",
		group + "/" + user: "group_membership add > by admin (user " + user + " in group " + group + "); group_membership remove >DELETED by admin ()",
		role:               "role create > by admin (auditor); role delete >DELETED by admin ()",
		grant:              "role_assignment grant > by admin (role " + role + " to user " + user + " on project " + proj + "); role_assignment revoke >DELETED by admin ()",
	} {
		if got := brief(id); got != want {
			t.Errorf("events of %s\n%s\nwant\n%s", id, got, want)
		}
	}
	raw, _ := json.Marshal(evs)
	for _, secret := range []string{"first-secret", "second-secret", "third-secret", "$2a$"} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("the event log holds %q", secret)
		}
	}
	for _, e := range evs {
		if e.Project != "" || e.Time.IsZero() {
			t.Errorf("event %+v: identity events are in no project and have a time", e)
		}
	}
}
