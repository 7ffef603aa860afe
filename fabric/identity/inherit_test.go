package identity

import (
	"context"
	"strings"
	"testing"
)

// loginIn logs user (of domain) in scoped to project id (or unscoped).
func (f *fixture) loginIn(domain, user, password, project string) (int, string) {
	f.t.Helper()
	a := map[string]any{"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{"user": map[string]any{"name": user, "domain": map[string]any{"id": domain}, "password": password}}}}
	if project != "" {
		a["scope"] = map[string]any{"project": map[string]any{"id": project}}
	}
	code, h, _ := f.call("POST", "/auth/tokens", "", map[string]any{"auth": a})
	return code, h.Get("X-Subject-Token")
}

// OS-INHERIT: a role granted on a domain or project "inherited to
// projects" is held on every project below it, not on the domain or
// project itself, and is taken away everywhere when revoked.
func TestInheritedRoles(t *testing.T) {
	f := newFixture(t)
	d := f.mk("/domains", "domain", map[string]any{"name": "corp"})
	parent := f.mk("/projects", "project", map[string]any{"name": "parent", "domain_id": d})
	leaf := f.mk("/projects", "project", map[string]any{"name": "leaf", "domain_id": d, "parent_id": parent})
	u := f.mk("/users", "user", map[string]any{"name": "ivy", "domain_id": d, "password": "ivy-pw"})
	g := f.mk("/groups", "group", map[string]any{"name": "ops", "domain_id": d})
	if code, _, _ := f.call("PUT", "/groups/"+g+"/users/"+u, f.admin, nil); code != 204 {
		t.Fatalf("add to group: %d", code)
	}
	member := f.roleID("member")
	onDomain := "/OS-INHERIT/domains/" + d + "/users/" + u + "/roles/" + member + "/inherited_to_projects"
	if code, _, body := f.call("PUT", onDomain, f.admin, nil); code != 204 {
		t.Fatalf("inherited grant on the domain: %d %v", code, body)
	}
	for _, m := range []string{"HEAD", "GET"} {
		if code, _, _ := f.call(m, onDomain, f.admin, nil); code != 204 {
			t.Fatalf("%s the inherited grant: %d", m, code)
		}
	}
	_, _, body := f.call("GET", "/OS-INHERIT/domains/"+d+"/users/"+u+"/roles/inherited_to_projects", f.admin, nil)
	if roles := body["roles"].([]any); len(roles) != 1 || roles[0].(map[string]any)["id"] != member {
		t.Fatalf("inherited roles on the domain: %v", body)
	}
	// Not a grant on the domain itself.
	_, _, body = f.call("GET", "/domains/"+d+"/users/"+u+"/roles", f.admin, nil)
	if roles := body["roles"].([]any); len(roles) != 0 {
		t.Fatalf("direct roles on the domain: %v", body)
	}
	if code, _ := f.loginIn(d, "ivy", "ivy-pw", ""); code != 201 {
		t.Fatalf("unscoped login: %d", code)
	}
	var leafTok string
	for _, p := range []string{parent, leaf} {
		code, tok := f.loginIn(d, "ivy", "ivy-pw", p)
		if code != 201 {
			t.Fatalf("login to a project below the domain: %d", code)
		}
		leafTok = tok
	}
	a := map[string]any{"auth": map[string]any{"identity": map[string]any{"methods": []string{"token"}, "token": map[string]any{"id": leafTok}}, "scope": map[string]any{"domain": map[string]any{"id": d}}}}
	if code, _, _ := f.call("POST", "/auth/tokens", "", a); code != 401 {
		t.Fatalf("a domain-scoped token from a role inherited to projects: %d", code)
	}
	// Listed as Keystone lists it: as made, and as held.
	_, _, body = f.call("GET", "/role_assignments?scope.OS-INHERIT:inherited_to=projects&user.id="+u, f.admin, nil)
	ra := body["role_assignments"].([]any)
	if len(ra) != 1 || ra[0].(map[string]any)["scope"].(map[string]any)["OS-INHERIT:inherited_to"] != "projects" {
		t.Fatalf("inherited assignments: %v", body)
	}
	_, _, body = f.call("GET", "/role_assignments?effective&user.id="+u+"&scope.project.id="+leaf, f.admin, nil)
	ra = body["role_assignments"].([]any)
	if len(ra) == 0 || !strings.Contains(ra[0].(map[string]any)["links"].(map[string]any)["assignment"].(string), "/OS-INHERIT/domains/"+d) {
		t.Fatalf("effective assignments on the leaf: %v", body)
	}
	// Revoked: the tokens below go at once.
	if code, _, _ := f.call("DELETE", onDomain, f.admin, nil); code != 204 {
		t.Fatalf("revoke the inherited grant: %d", code)
	}
	if _, err := f.svc.Validate(context.Background(), leafTok); err == nil {
		t.Fatal("a token on the leaf validated after the inherited grant was revoked")
	}
	_, _, body = f.call("GET", "/role_assignments?effective&user.id="+u+"&scope.project.id="+leaf, f.admin, nil)
	if ra := body["role_assignments"].([]any); len(ra) != 0 {
		t.Fatalf("effective assignments after the revoke: %v", body)
	}

	// On a project, through a group: the projects below, not the project.
	onParent := "/OS-INHERIT/projects/" + parent + "/groups/" + g + "/roles/" + member + "/inherited_to_projects"
	if code, _, _ := f.call("PUT", onParent, f.admin, nil); code != 204 {
		t.Fatalf("inherited grant on the parent: %d", code)
	}
	if code, _ := f.loginIn(d, "ivy", "ivy-pw", leaf); code != 201 {
		t.Fatalf("login to the leaf through the parent's inherited grant: %d", code)
	}
	if code, _ := f.loginIn(d, "ivy", "ivy-pw", parent); code != 401 {
		t.Fatalf("login to the parent itself: %d", code)
	}
	if code, _, _ := f.call("HEAD", "/projects/"+parent+"/groups/"+g+"/roles/"+member, f.admin, nil); code != 404 {
		t.Fatalf("the inherited grant seen as a direct one: %d", code)
	}
	// The system has no projects below it.
	if code, _, _ := f.call("PUT", "/OS-INHERIT/system/users/"+u+"/roles/"+member+"/inherited_to_projects", f.admin, nil); code != 404 {
		t.Fatalf("an inherited grant on the system: %d", code)
	}
}

// role_assignments?include_subtree widens scope.project.id to the
// projects below it, and a domain's id to every project of the domain,
// as Keystone's projects acting as domains make it (gophercloud's
// acceptance suite lists a user's assignments in the default domain so).
func TestAssignmentsIncludeSubtree(t *testing.T) {
	f := newFixture(t)
	d := f.mk("/domains", "domain", map[string]any{"name": "tree"})
	parent := f.mk("/projects", "project", map[string]any{"name": "parent", "domain_id": d})
	leaf := f.mk("/projects", "project", map[string]any{"name": "leaf", "domain_id": d, "parent_id": parent})
	other := f.mk("/projects", "project", map[string]any{"name": "other", "domain_id": d})
	u := f.mk("/users", "user", map[string]any{"name": "sam", "domain_id": d, "password": "sam-pw"})
	member := f.roleID("member")
	for _, p := range []string{parent, leaf, other} {
		if code, _, _ := f.call("PUT", "/projects/"+p+"/users/"+u+"/roles/"+member, f.admin, nil); code != 204 {
			t.Fatalf("grant on %s: %d", p, code)
		}
	}
	scopes := func(query string) map[string]bool {
		t.Helper()
		code, _, body := f.call("GET", "/role_assignments?user.id="+u+"&"+query, f.admin, nil)
		if code != 200 {
			t.Fatalf("%s: %d %v", query, code, body)
		}
		got := map[string]bool{}
		for _, a := range body["role_assignments"].([]any) {
			got[a.(map[string]any)["scope"].(map[string]any)["project"].(map[string]any)["id"].(string)] = true
		}
		return got
	}
	if got := scopes("scope.project.id=" + parent); len(got) != 1 || !got[parent] {
		t.Fatalf("the parent alone: %v", got)
	}
	if got := scopes("scope.project.id=" + parent + "&include_subtree=true"); len(got) != 2 || !got[parent] || !got[leaf] {
		t.Fatalf("the parent's subtree: %v", got)
	}
	if got := scopes("scope.project.id=" + parent + "&include_subtree=false"); len(got) != 1 {
		t.Fatalf("include_subtree=false: %v", got)
	}
	if got := scopes("scope.project.id=" + d + "&include_subtree=true&include_names=true"); len(got) != 3 {
		t.Fatalf("the domain's subtree: %v", got)
	}
	if code, _, body := f.call("GET", "/role_assignments?include_subtree=true", f.admin, nil); code != 400 || !strings.Contains(strings.ToLower(body["error"].(map[string]any)["message"].(string)), "scope.project.id") {
		t.Fatalf("include_subtree without scope.project.id: %d %v", code, body)
	}
}
