package identity

import (
	"context"
	"strings"
	"testing"
)

func systemAuth(user, password string, system any) map[string]any {
	a := passwordAuth(user, password, "")
	a["auth"].(map[string]any)["scope"] = map[string]any{"system": system}
	return a
}

// The bootstrap admin holds admin on the system, as keystone-manage
// bootstrap grants it: a system-scoped token carries the system, its
// roles and a catalog without project endpoints, and no project.
func TestBootstrapAdminGetsSystemScopedToken(t *testing.T) {
	f := newFixture(t)
	code, h, body := f.call("POST", "/auth/tokens", "", systemAuth("admin", "admin-secret", map[string]any{"all": true}))
	if code != 201 {
		t.Fatalf("system token: %d %v", code, body)
	}
	tok := body["token"].(map[string]any)
	if sys, _ := tok["system"].(map[string]any); sys["all"] != true {
		t.Fatalf("token system %v, want {all: true}", tok["system"])
	}
	if _, ok := tok["project"]; ok {
		t.Fatalf("a system token names a project: %v", tok)
	}
	if !hasRoleNamed(tok["roles"], "admin") || !hasRoleNamed(tok["roles"], "reader") {
		t.Fatalf("roles %v, want admin and the roles it implies", tok["roles"])
	}
	types := map[string]bool{}
	for _, s := range tok["catalog"].([]any) {
		types[s.(map[string]any)["type"].(string)] = true
	}
	if !types["identity"] || types["object-store"] {
		t.Fatalf("catalog types %v: want identity, and no endpoint that needs a project", types)
	}

	sys := h.Get("X-Subject-Token")
	p, err := f.svc.Validate(context.Background(), sys)
	if err != nil || !p.System || p.ProjectID != "" || !p.IsAdmin() {
		t.Fatalf("principal %+v, %v: want a system admin without a project", p, err)
	}
	// Validation answers the system scope, and the token works on admin
	// APIs.
	code, _, body = f.call("GET", "/auth/tokens", sys, nil, "X-Subject-Token", sys)
	if sc, _ := body["token"].(map[string]any)["system"].(map[string]any); code != 200 || sc["all"] != true {
		t.Fatalf("validate: %d %v", code, body)
	}
	if code, _, body := f.call("GET", "/users", sys, nil); code != 200 {
		t.Fatalf("list users with a system admin token: %d %v", code, body)
	}
	code, _, body = f.call("GET", "/auth/system", sys, nil)
	if list, _ := body["system"].([]any); code != 200 || len(list) != 1 || list[0].(map[string]any)["all"] != true {
		t.Fatalf("auth/system: %d %v", code, body)
	}
	code, _, body = f.call("GET", "/auth/catalog", sys, nil)
	if code != 200 {
		t.Fatalf("auth/catalog: %d %v", code, body)
	}
	// A token from this token keeps its system scope.
	code, _, body = f.call("POST", "/auth/tokens", "", map[string]any{"auth": map[string]any{"identity": map[string]any{"methods": []string{"token"}, "token": map[string]any{"id": sys}}}})
	if code != 201 || body["token"].(map[string]any)["system"] == nil {
		t.Fatalf("rescope by token: %d %v", code, body)
	}
}

func hasRoleNamed(roles any, name string) bool {
	list, _ := roles.([]any)
	for _, r := range list {
		if r.(map[string]any)["name"] == name {
			return true
		}
	}
	return false
}

// A user scopes to the system only while it holds a role there; the grant
// is made, checked, listed and revoked like a project's, and revoking it
// voids the tokens it allowed.
func TestSystemRoleAssignments(t *testing.T) {
	f := newFixture(t)
	_, uid, userTok := f.tenant("sys", "sally", "member")
	reader := f.roleID("reader")
	grant := "/system/users/" + uid + "/roles/" + reader

	if code, _, body := f.call("POST", "/auth/tokens", "", systemAuth("sally", "sally-pw", map[string]any{"all": true})); code != 401 {
		t.Fatalf("system token without a system role: %d %v, want 401", code, body)
	}
	if code, _, body := f.call("POST", "/auth/tokens", "", systemAuth("admin", "admin-secret", map[string]any{"all": false})); code != 400 || !strings.Contains(body["error"].(map[string]any)["message"].(string), "auth.scope.system") {
		t.Fatalf("system scope other than all: %d %v, want 400 naming the field", code, body)
	}
	if code, _, _ := f.call("PUT", grant, userTok, nil); code != 403 {
		t.Fatalf("a member grants itself a system role: %d, want 403", code)
	}
	if code, _, _ := f.call("HEAD", grant, f.admin, nil); code != 404 {
		t.Fatalf("check before the grant: %d, want 404", code)
	}
	if code, _, body := f.call("PUT", "/system/users/"+uid+"/roles/nope", f.admin, nil); code != 404 {
		t.Fatalf("grant of an unknown role: %d %v, want 404", code, body)
	}
	if code, _, body := f.call("PUT", grant, f.admin, nil); code != 204 {
		t.Fatalf("grant: %d %v", code, body)
	}
	for _, m := range []string{"HEAD", "GET"} {
		if code, _, _ := f.call(m, grant, f.admin, nil); code != 204 {
			t.Fatalf("%s grant: %d, want 204", m, code)
		}
	}
	_, _, body := f.call("GET", "/system/users/"+uid+"/roles", f.admin, nil)
	if roles := body["roles"].([]any); len(roles) != 1 || roles[0].(map[string]any)["id"] != reader {
		t.Fatalf("system roles of the user: %v", body)
	}
	// The project grant is not a system one, nor the other way round.
	_, _, body = f.call("GET", "/role_assignments?scope.system=all&user.id="+uid+"&include_names", f.admin, nil)
	list := body["role_assignments"].([]any)
	if len(list) != 1 {
		t.Fatalf("system assignments of the user: %v", body)
	}
	a := list[0].(map[string]any)
	if sc, _ := a["scope"].(map[string]any)["system"].(map[string]any); sc["all"] != true ||
		a["role"].(map[string]any)["name"] != "reader" || a["user"].(map[string]any)["name"] != "sally" ||
		!strings.HasSuffix(a["links"].(map[string]any)["assignment"].(string), "/identity/v3"+grant) {
		t.Fatalf("system assignment view: %v", a)
	}
	_, _, body = f.call("GET", "/role_assignments?scope.project.id=x&user.id="+uid, f.admin, nil)
	if n := len(body["role_assignments"].([]any)); n != 0 {
		t.Fatalf("a project filter lists system assignments: %v", body)
	}

	code, h, body := f.call("POST", "/auth/tokens", "", systemAuth("sally", "sally-pw", map[string]any{"all": true}))
	if code != 201 || !hasRoleNamed(body["token"].(map[string]any)["roles"], "reader") || hasRoleNamed(body["token"].(map[string]any)["roles"], "member") {
		t.Fatalf("system reader token: %d %v", code, body)
	}
	sys := h.Get("X-Subject-Token")
	if p, err := f.svc.Validate(context.Background(), sys); err != nil || !p.System || p.IsAdmin() {
		t.Fatalf("system reader principal %+v, %v", p, err)
	}
	if code, _, _ := f.call("GET", "/users", sys, nil); code != 403 {
		t.Fatalf("a system reader lists users: %d, want 403", code)
	}
	if code, _, _ := f.call("DELETE", grant, f.admin, nil); code != 204 {
		t.Fatalf("revoke: %d", code)
	}
	if code, _, _ := f.call("HEAD", grant, f.admin, nil); code != 404 {
		t.Fatalf("check after revoke: %d, want 404", code)
	}
	if _, err := f.svc.Validate(context.Background(), sys); err == nil {
		t.Fatal("a system token outlived the user's last system role")
	}
	if code, _, body := f.call("GET", "/auth/system", userTok, nil); code != 200 || len(body["system"].([]any)) != 0 {
		t.Fatalf("auth/system without a system role: %d %v", code, body)
	}
}

// A group's system grant is held by its members: they scope to the
// system, and an effective listing shows the grant per member, with the
// roles it implies.
func TestSystemRoleThroughGroup(t *testing.T) {
	f := newFixture(t)
	_, uid, _ := f.tenant("gs", "gus", "member")
	gid := f.mk("/groups", "group", map[string]any{"name": "operators"})
	f.call("PUT", "/groups/"+gid+"/users/"+uid, f.admin, nil)
	if code, _, body := f.call("PUT", "/system/groups/"+gid+"/roles/"+f.roleID("member"), f.admin, nil); code != 204 {
		t.Fatalf("group grant: %d %v", code, body)
	}
	if code, _, body := f.call("GET", "/system/groups/"+gid+"/roles/"+f.roleID("member"), f.admin, nil); code != 204 {
		t.Fatalf("check group grant: %d %v", code, body)
	}
	_, _, body := f.call("GET", "/role_assignments?effective&scope.system=all&user.id="+uid, f.admin, nil)
	roles := map[string]bool{}
	for _, a := range body["role_assignments"].([]any) {
		as := a.(map[string]any)
		if _, ok := as["links"].(map[string]any)["membership"]; !ok {
			t.Errorf("effective row without its membership link: %v", as)
		}
		roles[as["role"].(map[string]any)["id"].(string)] = true
	}
	if !roles[f.roleID("member")] || !roles[f.roleID("reader")] || len(roles) != 2 {
		t.Fatalf("effective system roles %v: %v", roles, body)
	}
	if code, _, body := f.call("POST", "/auth/tokens", "", systemAuth("gus", "gus-pw", map[string]any{"all": true})); code != 201 {
		t.Fatalf("system token through a group: %d %v", code, body)
	}
}
