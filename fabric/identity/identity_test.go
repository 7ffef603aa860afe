package identity

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/rackstack/rackstack/fabric/api/apitest"
	"github.com/rackstack/rackstack/fabric/store"
)

// fixture is an identity service on a Local store with a fake clock.
type fixture struct {
	t     *testing.T
	svc   *Service
	local *store.Local
	srv   *httptest.Server
	now   time.Time
	admin string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	local, err := store.NewLocal(Schema())
	if err != nil {
		t.Fatal(err)
	}
	return newFixtureOn(t, local, local)
}

// newFixtureOn runs the service on repl, which writes through local.
func newFixtureOn(t *testing.T, local *store.Local, repl store.Replicated) *fixture {
	t.Helper()
	f := &fixture{t: t, local: local, now: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	var err error
	f.svc, err = New(Config{Repl: repl, Now: func() time.Time { return f.now }, BcryptCost: bcrypt.MinCost,
		Services: []CatalogService{{Type: "identity", Name: "keystone", Path: "/identity/v3"}, {Type: "object-store", Name: "swift", Path: "/object/v1/AUTH_{project_id}"}}})
	if err != nil {
		t.Fatal(err)
	}
	f.start()
	return f
}

// start bootstraps the service, serves it and logs the admin in.
func (f *fixture) start() {
	t := f.t
	t.Helper()
	if err := f.svc.Bootstrap(context.Background(), "admin-secret"); err != nil {
		t.Fatal(err)
	}
	f.srv = apitest.Serve(t, "/identity", f.svc.Handler())
	f.admin = f.login("admin", "admin-secret", "admin")
}

// call makes a request and returns status, headers and decoded body.
func (f *fixture) call(method, path, tok string, body any, hdr ...string) (int, http.Header, map[string]any) {
	f.t.Helper()
	res := apitest.Call(f.t, method, f.srv.URL+"/identity/v3"+path, tok, body, hdr...)
	return res.Code, res.Header, res.Body
}

func passwordAuth(user, password, project string) map[string]any {
	a := map[string]any{"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{"user": map[string]any{"name": user, "domain": map[string]any{"id": "default"}, "password": password}}}}
	if project != "" {
		a["scope"] = map[string]any{"project": map[string]any{"name": project, "domain": map[string]any{"name": "Default"}}}
	}
	return map[string]any{"auth": a}
}

func (f *fixture) login(user, password, project string) string {
	f.t.Helper()
	code, h, body := f.call("POST", "/auth/tokens", "", passwordAuth(user, password, project))
	if code != 201 {
		f.t.Fatalf("login %s: %d %v", user, code, body)
	}
	return h.Get("X-Subject-Token")
}

// mk creates a resource and returns its id.
func (f *fixture) mk(path, key string, fields map[string]any) string {
	f.t.Helper()
	code, _, body := f.call("POST", path, f.admin, map[string]any{key: fields})
	if code != 201 {
		f.t.Fatalf("create %s: %d %v", path, code, body)
	}
	return body[key].(map[string]any)["id"].(string)
}

func (f *fixture) roleID(name string) string {
	_, _, body := f.call("GET", "/roles?name="+name, f.admin, nil)
	return body["roles"].([]any)[0].(map[string]any)["id"].(string)
}

// tenant makes project p with a user u holding role in it.
func (f *fixture) tenant(p, u, role string) (projectID, userID, token string) {
	projectID = f.mk("/projects", "project", map[string]any{"name": p})
	userID = f.mk("/users", "user", map[string]any{"name": u, "password": u + "-pw", "default_project_id": projectID})
	if code, _, _ := f.call("PUT", "/projects/"+projectID+"/users/"+userID+"/roles/"+f.roleID(role), f.admin, nil); code != 204 {
		f.t.Fatalf("grant: %d", code)
	}
	return projectID, userID, f.login(u, u+"-pw", p)
}

func TestBootstrapIsIdempotent(t *testing.T) {
	f := newFixture(t)
	if err := f.svc.Bootstrap(context.Background(), "another-password"); err != nil {
		t.Fatal(err)
	}
	f.login("admin", "admin-secret", "admin") // the first password still holds
	_, _, body := f.call("GET", "/users?name=admin", f.admin, nil)
	if n := len(body["users"].([]any)); n != 1 {
		t.Fatalf("%d admin users", n)
	}
}

func TestTokenBodyAndCatalog(t *testing.T) {
	f := newFixture(t)
	code, h, body := f.call("POST", "/auth/tokens", "", passwordAuth("admin", "admin-secret", "admin"))
	if code != 201 || h.Get("X-Subject-Token") == "" {
		t.Fatalf("%d %v", code, body)
	}
	tok := body["token"].(map[string]any)
	for _, k := range []string{"methods", "user", "audit_ids", "expires_at", "issued_at", "project", "roles", "catalog"} {
		if _, ok := tok[k]; !ok {
			t.Errorf("token body lacks %q", k)
		}
	}
	if tok["expires_at"] != "2026-11-24T13:00:00.000000Z" {
		t.Errorf("expires_at = %v", tok["expires_at"])
	}
	raw, _ := json.Marshal(tok["roles"])
	for _, r := range []string{"admin", "member", "reader"} {
		if !strings.Contains(string(raw), `"`+r+`"`) {
			t.Errorf("admin token lacks implied role %s: %s", r, raw)
		}
	}
	cat, _ := json.Marshal(tok["catalog"])
	pid := tok["project"].(map[string]any)["id"].(string)
	if !strings.Contains(string(cat), f.srv.URL+"/object/v1/AUTH_"+pid) || !strings.Contains(string(cat), `"interface":"public"`) {
		t.Errorf("catalog: %s", cat)
	}
	if strings.Contains(string(raw), "password") {
		t.Error("token body mentions a password")
	}
}

func TestValidateExpiryRevocation(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tok := f.login("admin", "admin-secret", "admin")
	p, err := f.svc.Validate(ctx, tok)
	if err != nil || !p.IsAdmin() || p.ProjectName != "admin" {
		t.Fatalf("validate: %+v %v", p, err)
	}
	tampered := tok[:len(tok)-2] + "AA"
	if _, err := f.svc.Validate(ctx, tampered); err == nil {
		t.Fatal("a tampered token validated")
	}
	if code, _, _ := f.call("GET", "/auth/tokens", f.admin, nil, "X-Subject-Token", tok); code != 200 {
		t.Fatalf("GET token: %d", code)
	}
	if code, _, _ := f.call("DELETE", "/auth/tokens", f.admin, nil, "X-Subject-Token", tok); code != 204 {
		t.Fatalf("DELETE token: %d", code)
	}
	if _, err := f.svc.Validate(ctx, tok); err == nil {
		t.Fatal("a revoked token validated")
	}
	if code, _, _ := f.call("GET", "/auth/tokens", f.admin, nil, "X-Subject-Token", tok); code != 404 {
		t.Fatalf("GET revoked token: %d", code)
	}
	fresh := f.login("admin", "admin-secret", "admin")
	f.now = f.now.Add(61 * time.Minute)
	if _, err := f.svc.Validate(ctx, fresh); err == nil {
		t.Fatal("an expired token validated")
	}
}

func TestLoginFailuresAndRateLimit(t *testing.T) {
	f := newFixture(t)
	tests := map[string]struct {
		body any
		want int
	}{
		"wrong password":  {passwordAuth("admin", "nope", "admin"), 401},
		"unknown user":    {passwordAuth("ghost", "x", ""), 401},
		"no password":     {`{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","domain":{"id":"default"}}}}}}`, 400},
		"bad method":      {`{"auth":{"identity":{"methods":["totp"]}}}`, 400},
		"malformed json":  {`{"auth":`, 400},
		"unknown project": {passwordAuth("admin", "admin-secret", "nosuch"), 401},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			code, _, body := f.call("POST", "/auth/tokens", "", tc.body)
			if code != tc.want {
				t.Fatalf("%d %v, want %d", code, body, tc.want)
			}
		})
	}
}

func TestTenantIsolationAndPolicy(t *testing.T) {
	f := newFixture(t)
	pa, ua, ta := f.tenant("alpha", "alice", "member")
	pb, ub, _ := f.tenant("beta", "bob", "member")
	tests := map[string]struct {
		method, path string
		body         any
		want         int
	}{
		"own project":            {"GET", "/projects/" + pa, nil, 200},
		"other project":          {"GET", "/projects/" + pb, nil, 403},
		"list all projects":      {"GET", "/projects", nil, 403},
		"own user":               {"GET", "/users/" + ua, nil, 200},
		"other user":             {"GET", "/users/" + ub, nil, 403},
		"list users":             {"GET", "/users", nil, 403},
		"create project":         {"POST", "/projects", map[string]any{"project": map[string]any{"name": "x"}}, 403},
		"grant self admin":       {"PUT", "/projects/" + pa + "/users/" + ua + "/roles/" + f.roleID("admin"), nil, 403},
		"own user projects":      {"GET", "/users/" + ua + "/projects", nil, 200},
		"other user assignments": {"GET", "/role_assignments?user.id=" + ub, nil, 403},
		"own assignments":        {"GET", "/role_assignments?user.id=" + ua, nil, 200},
		"no token":               {"GET", "/projects/" + pa, nil, 401},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tok := ta
			if name == "no token" {
				tok = ""
			}
			code, _, body := f.call(tc.method, tc.path, tok, tc.body)
			if code != tc.want {
				t.Fatalf("%d %v, want %d", code, body, tc.want)
			}
		})
	}
	// Removing alice's role invalidates her project token at once.
	if code, _, _ := f.call("DELETE", "/projects/"+pa+"/users/"+ua+"/roles/"+f.roleID("member"), f.admin, nil); code != 204 {
		t.Fatal(code)
	}
	if _, err := f.svc.Validate(context.Background(), ta); err == nil {
		t.Fatal("a token without roles on its project validated")
	}
}

func TestGroupRolesAndDisabledUser(t *testing.T) {
	f := newFixture(t)
	pid := f.mk("/projects", "project", map[string]any{"name": "gp"})
	uid := f.mk("/users", "user", map[string]any{"name": "carol", "password": "carol-pw"})
	gid := f.mk("/groups", "group", map[string]any{"name": "ops"})
	f.call("PUT", "/groups/"+gid+"/users/"+uid, f.admin, nil)
	f.call("PUT", "/projects/"+pid+"/groups/"+gid+"/roles/"+f.roleID("reader"), f.admin, nil)
	tok := f.login("carol", "carol-pw", "gp")
	p, err := f.svc.Validate(context.Background(), tok)
	if err != nil || !p.HasRole("reader") || p.HasRole("member") {
		t.Fatalf("group role: %+v %v", p, err)
	}
	if code, _, _ := f.call("PATCH", "/users/"+uid, f.admin, map[string]any{"user": map[string]any{"enabled": false}}); code != 200 {
		t.Fatal(code)
	}
	if _, err := f.svc.Validate(context.Background(), tok); err == nil {
		t.Fatal("a disabled user's token validated")
	}
	if code, _, _ := f.call("POST", "/auth/tokens", "", passwordAuth("carol", "carol-pw", "gp")); code != 401 {
		t.Fatalf("disabled user logged in: %d", code)
	}
}

func TestPasswordChangeRevokesTokens(t *testing.T) {
	f := newFixture(t)
	_, uid, tok := f.tenant("pp", "dave", "member")
	f.now = f.now.Add(time.Second)
	code, _, body := f.call("POST", "/users/"+uid+"/password", "", map[string]any{"user": map[string]any{"original_password": "wrong", "password": "new-pw-1"}})
	if code != 401 {
		t.Fatalf("wrong original password: %d %v", code, body)
	}
	code, _, body = f.call("POST", "/users/"+uid+"/password", tok, map[string]any{"user": map[string]any{"original_password": "dave-pw", "password": "new-pw-1"}})
	if code != 204 {
		t.Fatalf("change: %d %v", code, body)
	}
	if _, err := f.svc.Validate(context.Background(), tok); err == nil {
		t.Fatal("a token from before the password change validated")
	}
	// As Keystone (tempest's test_user_update_own_password): the old
	// token cannot be traded for a new one, and is not found (404).
	byToken := map[string]any{"auth": map[string]any{"identity": map[string]any{"methods": []string{"token"}, "token": map[string]any{"id": tok}}}}
	if code, _, body := f.call("POST", "/auth/tokens", "", byToken); code != 404 {
		t.Fatalf("token auth with a revoked token: %d %v, want 404", code, body)
	}
	f.now = f.now.Add(time.Second)
	f.login("dave", "new-pw-1", "pp")
}

func TestBadInputNamesTheField(t *testing.T) {
	f := newFixture(t)
	tests := map[string]struct {
		path  string
		body  string
		field string
	}{
		"missing name":     {"/projects", `{"project": {}}`, "name"},
		"name not string":  {"/projects", `{"project": {"name": 7}}`, "name"},
		"enabled not bool": {"/users", `{"user": {"name": "u1", "enabled": "yes"}}`, "enabled"},
		"long name":        {"/domains", `{"domain": {"name": "` + strings.Repeat("d", 65) + `"}}`, "name"},
		"no wrapper":       {"/roles", `{"name": "r"}`, "role"},
		"bad tags":         {"/projects", `{"project": {"name": "t", "tags": ["a/b"]}}`, "tags"},
		"bad interface":    {"/endpoints", `{"endpoint": {"service_id": "x", "interface": "weird", "url": "http://x"}}`, "interface"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			code, _, body := f.call("POST", tc.path, f.admin, tc.body)
			msg, _ := body["error"].(map[string]any)["message"].(string)
			if code != 400 || !strings.Contains(msg, tc.field) {
				t.Fatalf("%d %q, want 400 naming %q", code, msg, tc.field)
			}
		})
	}
	f.mk("/projects", "project", map[string]any{"name": "dup"})
	if code, _, _ := f.call("POST", "/projects", f.admin, map[string]any{"project": map[string]any{"name": "dup"}}); code != 409 {
		t.Fatalf("duplicate project name: %d", code)
	}
}

func TestEC2Credentials(t *testing.T) {
	f := newFixture(t)
	pid, uid, tok := f.tenant("s3", "erin", "member")
	code, _, body := f.call("POST", "/users/"+uid+"/credentials/OS-EC2", tok, map[string]any{"tenant_id": pid})
	if code != 201 {
		t.Fatalf("%d %v", code, body)
	}
	cred := body["credential"].(map[string]any)
	p, psecret, err := f.svc.EC2Principal(context.Background(), cred["access"].(string))
	if err != nil || p.ProjectID != pid || p.UserID != uid || !p.CanWrite(pid) || psecret != cred["secret"] {
		t.Fatalf("EC2Principal = %+v, %v", p, err)
	}
	user, project, secret, err := f.svc.EC2Credential(context.Background(), cred["access"].(string))
	if err != nil || user != uid || project != pid || secret != cred["secret"] {
		t.Fatalf("lookup: %s %s %s %v", user, project, secret, err)
	}
	if _, _, _, err := f.svc.EC2Credential(context.Background(), "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown access: %v", err)
	}
	// Another tenant cannot read erin's credentials.
	_, _, other := f.tenant("s3b", "frank", "member")
	if code, _, _ := f.call("GET", "/users/"+uid+"/credentials/OS-EC2", other, nil); code != 403 {
		t.Fatalf("foreign credential list: %d", code)
	}
	// Deleting the user deletes its credentials.
	f.call("DELETE", "/users/"+uid, f.admin, nil)
	if _, _, _, err := f.svc.EC2Credential(context.Background(), cred["access"].(string)); err == nil {
		t.Fatal("credential outlived its user")
	}
}

func TestKeyRotationKeepsLiveTokens(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.now = f.now.Add(25 * time.Hour)
	newer := f.login("admin", "admin-secret", "admin") // still the old key: not rotated yet
	if err := f.svc.rotateIfDue(ctx); err != nil {
		t.Fatal(err)
	}
	latest := f.login("admin", "admin-secret", "admin")
	tx := f.local.Local()
	if n := len(store.All[SigningKey](tx, tKeys, "id")); n != 2 {
		t.Fatalf("%d keys after rotation, want 2 (old kept for live tokens)", n)
	}
	if _, err := f.svc.Validate(ctx, newer); err != nil {
		t.Fatalf("a live token signed with the previous key: %v", err)
	}
	if _, err := f.svc.Validate(ctx, latest); err != nil {
		t.Fatal(err)
	}
	if keyOf(t, latest) == keyOf(t, newer) {
		t.Fatal("the token after rotation was signed with the old key")
	}
}

func keyOf(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(strings.TrimPrefix(tok, tokenPrefix), ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	var c claims
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c.Key
}

func TestDomainDeleteCascades(t *testing.T) {
	f := newFixture(t)
	did := f.mk("/domains", "domain", map[string]any{"name": "corp"})
	pid := f.mk("/projects", "project", map[string]any{"name": "p", "domain_id": did})
	uid := f.mk("/users", "user", map[string]any{"name": "u", "domain_id": did})
	if code, _, _ := f.call("DELETE", "/domains/"+did, f.admin, nil); code != 403 {
		t.Fatalf("delete enabled domain: %d, want 403", code)
	}
	f.call("PATCH", "/domains/"+did, f.admin, map[string]any{"domain": map[string]any{"enabled": false}})
	if code, _, _ := f.call("DELETE", "/domains/"+did, f.admin, nil); code != 204 {
		t.Fatalf("delete disabled domain: %d", code)
	}
	for _, p := range []string{"/projects/" + pid, "/users/" + uid} {
		if code, _, _ := f.call("GET", p, f.admin, nil); code != 404 {
			t.Fatalf("%s after domain delete: %d", p, code)
		}
	}
}

// TestSnapshotRestoreEveryCommand applies every identity command type and
// checks the state survives a snapshot and restore byte for byte.
func TestSnapshotRestoreEveryCommand(t *testing.T) {
	f := newFixture(t)
	pid, uid, tok := f.tenant("snap", "sam", "member")
	gid := f.mk("/groups", "group", map[string]any{"name": "g"})
	f.call("PUT", "/groups/"+gid+"/users/"+uid, f.admin, nil)
	f.call("PUT", "/system/users/"+uid+"/roles/"+f.roleID("reader"), f.admin, nil)
	f.call("POST", "/users/"+uid+"/credentials/OS-EC2", tok, map[string]any{"tenant_id": pid})
	_, _, admins := f.call("GET", "/users?name=admin", f.admin, nil)
	_, _, trust := f.call("POST", "/OS-TRUST/trusts", tok, map[string]any{"trust": map[string]any{"trustor_user_id": uid,
		"trustee_user_id": admins["users"].([]any)[0].(map[string]any)["id"], "project_id": pid, "impersonation": false,
		"roles": []any{map[string]any{"name": "member"}}, "remaining_uses": 3}})
	if code, _, body := f.call("POST", "/auth/tokens", "", trustAuth("admin", "admin-secret", trust["trust"].(map[string]any)["id"].(string))); code != 201 {
		t.Fatalf("trust-scoped token: %d %v", code, body)
	}
	f.mk("/policies", "policy", map[string]any{"type": "application/json", "blob": "{}"})
	f.call("PUT", "/domains/default/config", f.admin, map[string]any{"config": map[string]any{"ldap": map[string]any{"url": "ldap://snap"}}})
	f.mkAppCred(uid, tok, map[string]any{"name": "snapac", "access_rules": []any{map[string]any{"service": "object-store", "method": "GET", "path": "/v1/**"}}})
	// OS-OAUTH1: a consumer, a request token authorized and traded.
	_, _, cons := f.call("POST", "/OS-OAUTH1/consumers", f.admin, map[string]any{"consumer": map[string]any{}})
	ck, cs := cons["consumer"].(map[string]any)["id"].(string), cons["consumer"].(map[string]any)["secret"].(string)
	_, out := f.oauthCall("POST", "/OS-OAUTH1/request_token", ck, cs, "", "", "", map[string]string{"Requested-Project-Id": pid}, "")
	rk, rs := formOf(t, out)
	_, _, ver := f.call("PUT", "/OS-OAUTH1/authorize/"+rk, tok, map[string]any{"roles": []any{map[string]any{"name": "member"}}})
	if code, out := f.oauthCall("POST", "/OS-OAUTH1/access_token", ck, cs, rk, rs, ver["token"].(map[string]any)["oauth_verifier"].(string), nil, ""); code != 201 {
		t.Fatalf("access token: %d %s", code, out)
	}
	if code, _, body := f.postBatch(f.admin, "/registered_limits", "registered_limits", map[string]any{"service_id": f.serviceID("identity"), "resource_name": "widgets", "default_limit": 4}); code != 201 {
		t.Fatalf("registered limit: %d %v", code, body)
	}
	if code, _, body := f.postBatch(f.admin, "/limits", "limits", map[string]any{"project_id": pid, "service_id": f.serviceID("identity"), "resource_name": "widgets", "resource_limit": 6}); code != 201 {
		t.Fatalf("limit: %d %v", code, body)
	}
	egid := f.mk("/OS-EP-FILTER/endpoint_groups", "endpoint_group", map[string]any{"name": "g", "filters": map[string]any{"interface": "public", "region_id": "RegionOne"}})
	f.call("PUT", "/OS-EP-FILTER/endpoint_groups/"+egid+"/projects/"+pid, f.admin, nil)
	f.call("PUT", "/OS-INHERIT/domains/default/users/"+uid+"/roles/"+f.roleID("reader")+"/inherited_to_projects", f.admin, nil)
	f.call("PATCH", "/projects/"+pid, f.admin, map[string]any{"project": map[string]any{"description": "d"}})
	f.call("POST", "/users/"+uid+"/password", "", map[string]any{"user": map[string]any{"original_password": "sam-pw", "password": "sam-pw2"}})
	f.call("DELETE", "/auth/tokens", f.admin, nil, "X-Subject-Token", f.login("admin", "admin-secret", "admin"))
	f.call("DELETE", "/groups/"+gid, f.admin, nil)
	f.call("POST", "/auth/tokens", "", passwordAuth("sam", "wrong", ""))
	if err := f.svc.flushFailures(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(48 * time.Hour)
	if err := f.svc.rotateIfDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	first := store.EveryCommandSurvivesSnapshot(t, f.local, Schema())
	for _, want := range []string{`"name":"snap"`, `"name":"sam"`, `"type":"ec2"`, `"t":"revocations"`, `"t":"signing_keys"`, `"scope_type":"system"`, `"remaining_uses":2`, `"t":"policies"`, `"kind":"group"`, `"inherited_to_projects":true`, `"default_limit":4`, `"resource_limit":6`, `"url":"ldap://snap"`} {
		if !strings.Contains(string(first), want) {
			t.Errorf("snapshot lacks %s", want)
		}
	}
}

// A disable revokes the user's tokens: enabling the user again does not
// bring back a token issued before the disable.
func TestReenabledUserKeepsOldTokensRevoked(t *testing.T) {
	f := newFixture(t)
	_, uid, tok := f.tenant("re", "rita", "member")
	f.now = f.now.Add(time.Second)
	for _, enabled := range []bool{false, true} {
		if code, _, body := f.call("PATCH", "/users/"+uid, f.admin, map[string]any{"user": map[string]any{"enabled": enabled}}); code != 200 {
			t.Fatalf("enabled=%v: %d %v", enabled, code, body)
		}
	}
	if _, err := f.svc.Validate(context.Background(), tok); err == nil {
		t.Fatal("a token issued before the user was disabled validated after it was enabled again")
	}
	f.now = f.now.Add(time.Second)
	if _, err := f.svc.Validate(context.Background(), f.login("rita", "rita-pw", "re")); err != nil {
		t.Fatalf("a token issued after the user was enabled again: %v", err)
	}
}

// ids are the ids of a list body's items.
func ids(body map[string]any, key string) map[string]bool {
	out := map[string]bool{}
	items, _ := body[key].([]any)
	for _, it := range items {
		out[it.(map[string]any)["id"].(string)] = true
	}
	return out
}

func TestListFilters(t *testing.T) {
	f := newFixture(t)
	web := f.mk("/projects", "project", map[string]any{"name": "WebFront", "tags": []string{"prod", "web"}})
	db := f.mk("/projects", "project", map[string]any{"name": "database", "tags": []string{"prod", "db"}})
	lab := f.mk("/projects", "project", map[string]any{"name": "lab", "tags": []string{"dev"}})
	check := func(query string, want ...string) {
		t.Helper()
		code, _, body := f.call("GET", "/projects?"+query, f.admin, nil)
		if code != 200 {
			t.Fatalf("%s: %d %v", query, code, body)
		}
		got := ids(body, "projects")
		for _, id := range []string{web, db, lab} {
			in := false
			for _, w := range want {
				in = in || w == id
			}
			if got[id] != in {
				t.Errorf("%s: project %s listed=%v, want %v", query, id, got[id], in)
			}
		}
	}
	check("name=lab", lab)
	check("name__contains=Front", web)
	check("name__contains=front")
	check("name__icontains=FRONT", web)
	check("name__startswith=data", db)
	check("name__iendswith=BASE", db)
	check("tags=prod,web", web)
	check("tags-any=web,dev", web, lab)
	check("tags=prod&not-tags=prod,db", web)
	check("tags-any=prod,dev&not-tags-any=web,dev", db)
}

// A filter on an attribute a user may lack (email) leaves out the users
// without it, as Keystone's SQL filters do.
func TestUserFilterOnOptionalAttribute(t *testing.T) {
	f := newFixture(t)
	with := f.mk("/users", "user", map[string]any{"name": "mailed", "email": "m@example.com"})
	code, _, body := f.call("GET", "/users?email__contains=example", f.admin, nil)
	got := ids(body, "users")
	if code != 200 || len(got) != 1 || !got[with] {
		t.Fatalf("%d %v, want only %s", code, body, with)
	}
}

// Attributes Keystone keeps without knowing them come back on show and
// survive an update of another attribute.
func TestExtraAttributesKept(t *testing.T) {
	f := newFixture(t)
	svc := f.mk("/services", "service", map[string]any{"type": "compute", "name": "nova"})
	tests := []struct {
		path, key string
		create    map[string]any
		attr      string
		want      string
		update    map[string]any
	}{
		{"/groups", "group", map[string]any{"name": "mailers", "email": "ops@example.com"}, "email", "ops@example.com", map[string]any{"description": "d"}},
		{"/roles", "role", map[string]any{"name": "auditor", "description": "reads logs"}, "description", "reads logs", map[string]any{"name": "auditor2"}},
		{"/endpoints", "endpoint", map[string]any{"service_id": svc, "interface": "public", "url": "http://c", "description": "the API"}, "description", "the API", map[string]any{"url": "http://d"}},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			id := f.mk(tc.path, tc.key, tc.create)
			if code, _, body := f.call("PATCH", tc.path+"/"+id, f.admin, map[string]any{tc.key: tc.update}); code != 200 {
				t.Fatalf("update: %d %v", code, body)
			}
			code, _, body := f.call("GET", tc.path+"/"+id, f.admin, nil)
			if got := body[tc.key].(map[string]any)[tc.attr]; code != 200 || got != tc.want {
				t.Fatalf("%s = %v (%d), want %q", tc.attr, got, code, tc.want)
			}
		})
	}
}

// Names are one line of valid text: NUL, CR/LF and invalid UTF-8 are 400s
// naming the field (encoding/json would have turned bad bytes into U+FFFD).
func TestNamesRefuseControlCharactersAndBadUTF8(t *testing.T) {
	f := newFixture(t)
	tests := map[string]struct{ path, body, field string }{
		"NUL in a user name":      {"/users", `{"user": {"name": "a\u0000b"}}`, "name"},
		"CRLF in a project name":  {"/projects", `{"project": {"name": "a\r\nb"}}`, "name"},
		"LF in a group name":      {"/groups", `{"group": {"name": "a\nb"}}`, "name"},
		"invalid UTF-8 in a name": {"/roles", "{\"role\": {\"name\": \"a\xff\xfeb\"}}", "name"},
		"CR in a description":     {"/domains", `{"domain": {"name": "ok", "description": "x\ry"}}`, "description"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			code, _, body := f.call("POST", tc.path, f.admin, tc.body)
			msg, _ := body["error"].(map[string]any)["message"].(string)
			if code != 400 || !strings.Contains(msg, tc.field) {
				t.Fatalf("%d %q, want 400 naming %q", code, msg, tc.field)
			}
		})
	}
}

// The catalog is rows: the token's catalog shows the services and
// endpoints the API lists, an endpoint id from it can be shown, and
// changing the rows changes the catalog.
func TestCatalogIsBuiltFromRows(t *testing.T) {
	f := newFixture(t)
	code, _, body := f.call("GET", "/auth/catalog", f.admin, nil)
	if code != 200 {
		t.Fatalf("catalog: %d %v", code, body)
	}
	catalog := body["catalog"].([]any)
	if len(catalog) != 2 {
		t.Fatalf("catalog has %d services, want the 2 configured", len(catalog))
	}
	_, _, services := f.call("GET", "/services", f.admin, nil)
	_, _, endpoints := f.call("GET", "/endpoints", f.admin, nil)
	serviceIDs, endpointIDs := ids(services, "services"), ids(endpoints, "endpoints")
	var swiftPublic string
	for _, c := range catalog {
		svc := c.(map[string]any)
		if !serviceIDs[svc["id"].(string)] {
			t.Errorf("catalog service %v is not in the service list", svc["id"])
		}
		for _, e := range svc["endpoints"].([]any) {
			ep := e.(map[string]any)
			if !endpointIDs[ep["id"].(string)] {
				t.Errorf("catalog endpoint %v is not in the endpoint list", ep["id"])
			}
			if svc["type"] == "object-store" && ep["interface"] == "public" {
				swiftPublic = ep["id"].(string)
			}
		}
	}
	code, _, shown := f.call("GET", "/endpoints/"+swiftPublic, f.admin, nil)
	if url, _ := shown["endpoint"].(map[string]any)["url"].(string); code != 200 || url != f.srv.URL+"/object/v1/AUTH_$(project_id)s" {
		t.Fatalf("endpoint show %s: %d %v", swiftPublic, code, shown)
	}
	if _, _, regions := f.call("GET", "/regions", f.admin, nil); !ids(regions, "regions")["RegionOne"] {
		t.Errorf("regions: %v", regions)
	}

	// A disabled endpoint leaves the catalog; a new service joins it.
	f.call("PATCH", "/endpoints/"+swiftPublic, f.admin, map[string]any{"endpoint": map[string]any{"enabled": false}})
	svc := f.mk("/services", "service", map[string]any{"type": "dns", "name": "designate"})
	f.mk("/endpoints", "endpoint", map[string]any{"service_id": svc, "interface": "public", "url": "http://dns.example/v2"})
	_, _, body = f.call("GET", "/auth/catalog", f.admin, nil)
	raw, _ := json.Marshal(body["catalog"])
	if strings.Contains(string(raw), swiftPublic) || !strings.Contains(string(raw), "http://dns.example/v2") {
		t.Fatalf("catalog after changes: %s", raw)
	}

	// Seeding again (a restart) leaves one service of each type.
	if err := f.svc.Bootstrap(context.Background(), "admin-secret"); err != nil {
		t.Fatal(err)
	}
	if _, _, services = f.call("GET", "/services", f.admin, nil); len(ids(services, "services")) != 3 {
		t.Fatalf("services after a second seed: %v", services)
	}
}

// Keystone forbids only a global role implying a domain-specific one; a
// domain-specific role may imply another.
func TestDomainRoleImplications(t *testing.T) {
	f := newFixture(t)
	a := f.mk("/roles", "role", map[string]any{"name": "dom-a", "domain_id": "default"})
	b := f.mk("/roles", "role", map[string]any{"name": "dom-b", "domain_id": "default"})
	tests := map[string]struct {
		prior, implied string
		want           int
	}{
		"domain-specific implies domain-specific": {a, b, 201},
		"domain-specific implies global":          {a, f.roleID("reader"), 201},
		"global implies domain-specific":          {f.roleID("member"), b, 403},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if code, _, body := f.call("PUT", "/roles/"+tc.prior+"/implies/"+tc.implied, f.admin, nil); code != tc.want {
				t.Fatalf("%d %v, want %d", code, body, tc.want)
			}
		})
	}
}

// role_assignments?effective lists what a user really holds: group grants
// per member, implied roles (with a link to the role that implies them),
// and no domain-specific roles, which only stand for what they imply.
func TestEffectiveAssignments(t *testing.T) {
	f := newFixture(t)
	pid, uid, _ := f.tenant("eff", "erik", "member")
	dom := f.mk("/roles", "role", map[string]any{"name": "dom-auditor", "domain_id": "default"})
	if code, _, body := f.call("PUT", "/roles/"+dom+"/implies/"+f.roleID("reader"), f.admin, nil); code != 201 {
		t.Fatalf("implication: %d %v", code, body)
	}
	f.call("PUT", "/projects/"+pid+"/users/"+uid+"/roles/"+dom, f.admin, nil)

	_, _, body := f.call("GET", "/role_assignments?effective&user.id="+uid, f.admin, nil)
	held := map[string]string{} // role id -> prior_role link
	for _, a := range body["role_assignments"].([]any) {
		as := a.(map[string]any)
		prior, _ := as["links"].(map[string]any)["prior_role"].(string)
		held[as["role"].(map[string]any)["id"].(string)] = prior
	}
	if _, ok := held[dom]; ok {
		t.Errorf("the domain-specific role is listed as held: %v", body)
	}
	if _, ok := held[f.roleID("member")]; !ok {
		t.Errorf("the granted role is missing: %v", body)
	}
	if prior := held[f.roleID("reader")]; !strings.HasSuffix(prior, "/identity/v3/roles/"+f.roleID("member")) && !strings.HasSuffix(prior, "/identity/v3/roles/"+dom) {
		t.Errorf("reader is not listed as implied: %v", body)
	}
	// Without effective, the grants are listed as made.
	_, _, body = f.call("GET", "/role_assignments?user.id="+uid, f.admin, nil)
	if n := len(body["role_assignments"].([]any)); n != 2 {
		t.Errorf("%d direct assignments, want 2: %v", n, body)
	}
	// The token holds no domain-specific role either.
	p, err := f.svc.Validate(context.Background(), f.login("erik", "erik-pw", "eff"))
	if err != nil || contains(p.Roles, "dom-auditor") || !p.HasRole("reader") {
		t.Fatalf("token roles %v, %v", p, err)
	}
}

// include_names names every party of an assignment, groups included.
func TestAssignmentsIncludeNames(t *testing.T) {
	f := newFixture(t)
	pid := f.mk("/projects", "project", map[string]any{"name": "named"})
	gid := f.mk("/groups", "group", map[string]any{"name": "namers"})
	f.call("PUT", "/projects/"+pid+"/groups/"+gid+"/roles/"+f.roleID("reader"), f.admin, nil)
	_, _, body := f.call("GET", "/role_assignments?include_names&group.id="+gid, f.admin, nil)
	list := body["role_assignments"].([]any)
	if len(list) != 1 {
		t.Fatalf("%v", body)
	}
	a := list[0].(map[string]any)
	group := a["group"].(map[string]any)
	scope := a["scope"].(map[string]any)["project"].(map[string]any)
	if group["name"] != "namers" || group["domain"].(map[string]any)["name"] != "Default" ||
		scope["name"] != "named" || scope["domain"].(map[string]any)["name"] != "Default" ||
		a["role"].(map[string]any)["name"] != "reader" {
		t.Fatalf("names: %v", a)
	}
}

// A password is a secret, not a name: control characters are its own
// business.
func TestPasswordMayHoldControlCharacters(t *testing.T) {
	f := newFixture(t)
	f.mk("/users", "user", map[string]any{"name": "ctl", "password": "p\x01\r\nw"})
	f.login("ctl", "p\x01\r\nw", "")
}

// TestProjectActingAsDomain: a project made with is_domain is a domain,
// reached through both APIs: listed with is_domain=true (and not without),
// updated and, once disabled, deleted through the project API.
func TestProjectActingAsDomain(t *testing.T) {
	f := newFixture(t)
	code, _, body := f.call("POST", "/projects", f.admin, map[string]any{"project": map[string]any{"name": "acme", "is_domain": true, "domain_id": nil}})
	if code != 201 {
		t.Fatalf("create: %d %v", code, body)
	}
	p := body["project"].(map[string]any)
	id := p["id"].(string)
	if p["is_domain"] != true || p["domain_id"] != nil || p["parent_id"] != nil {
		t.Fatalf("view: %v", p)
	}
	if code, _, body := f.call("GET", "/domains/"+id, f.admin, nil); code != 200 || body["domain"].(map[string]any)["name"] != "acme" {
		t.Fatalf("the domain: %d %v", code, body)
	}
	has := func(path string) bool {
		_, _, body := f.call("GET", path, f.admin, nil)
		for _, x := range body["projects"].([]any) {
			if x.(map[string]any)["id"] == id {
				return true
			}
		}
		return false
	}
	if !has("/projects?is_domain=true") || !has("/projects?is_domain=True") || has("/projects") || has("/projects?is_domain=false") || has("/projects?is_domain=False") {
		t.Fatal("listing with and without is_domain")
	}
	if code, _, body := f.call("POST", "/projects", f.admin, map[string]any{"project": map[string]any{"name": "x", "is_domain": true, "parent_id": "default"}}); code != 400 {
		t.Fatalf("a domain project with a parent: %d %v", code, body)
	}
	if code, _, body := f.call("POST", "/projects", f.admin, map[string]any{"project": map[string]any{"name": "acme", "is_domain": true}}); code != 409 {
		t.Fatalf("a duplicate name: %d %v", code, body)
	}
	if code, _, _ := f.call("DELETE", "/projects/"+id, f.admin, nil); code != 403 {
		t.Fatalf("delete while enabled: %d", code)
	}
	if code, _, body := f.call("PATCH", "/projects/"+id, f.admin, map[string]any{"project": map[string]any{"enabled": false}}); code != 200 || body["project"].(map[string]any)["enabled"] != false {
		t.Fatalf("disable: %d %v", code, body)
	}
	if code, _, _ := f.call("DELETE", "/projects/"+id, f.admin, nil); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if code, _, _ := f.call("GET", "/domains/"+id, f.admin, nil); code != 404 {
		t.Fatalf("the domain after delete: %d", code)
	}
}
