package identity

import (
	"context"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/rackstack/rackstack/fabric/store"
)

func appCredAuthByID(id, secret string) map[string]any {
	return map[string]any{"auth": map[string]any{"identity": map[string]any{"methods": []string{"application_credential"},
		"application_credential": map[string]any{"id": id, "secret": secret}}}}
}

// mkAppCred creates an application credential as tok's user and returns
// its id and secret.
func (f *fixture) mkAppCred(uid, tok string, fields map[string]any) (id, secret string) {
	f.t.Helper()
	code, _, body := f.call("POST", "/users/"+uid+"/application_credentials", tok, map[string]any{"application_credential": fields})
	if code != 201 {
		f.t.Fatalf("create application credential: %d %v", code, body)
	}
	ac := body["application_credential"].(map[string]any)
	return ac["id"].(string), ac["secret"].(string)
}

func roleNamesOf(v any) []string {
	var out []string
	for _, r := range v.([]any) {
		out = append(out, r.(map[string]any)["name"].(string))
	}
	return out
}

func TestAppCredLifecycleAndAuth(t *testing.T) {
	f := newFixture(t)
	pid, uid, tok := f.tenant("ci", "carl", "member")
	// A second role on the project, not delegated.
	if code, _, _ := f.call("PUT", "/projects/"+pid+"/users/"+uid+"/roles/"+f.roleID("admin"), f.admin, nil); code != 204 {
		t.Fatalf("grant admin: %d", code)
	}
	tok = f.login("carl", "carl-pw", "ci")
	id, secret := f.mkAppCred(uid, tok, map[string]any{"name": "cred1", "description": "for CI", "roles": []any{map[string]any{"name": "member"}}})
	if len(secret) < 40 {
		t.Fatalf("generated secret %q is short", secret)
	}
	if code, _, body := f.call("POST", "/users/"+uid+"/application_credentials", tok, map[string]any{"application_credential": map[string]any{"name": "cred1"}}); code != 409 {
		t.Fatalf("duplicate name: %d %v", code, body)
	}
	code, _, body := f.call("GET", "/users/"+uid+"/application_credentials/"+id, tok, nil)
	ac, _ := body["application_credential"].(map[string]any)
	if code != 200 || ac["name"] != "cred1" || ac["project_id"] != pid || ac["unrestricted"] != false || strings.Join(roleNamesOf(ac["roles"]), ",") != "member" {
		t.Fatalf("show: %d %v", code, body)
	}
	if _, ok := ac["secret"]; ok {
		t.Fatalf("show returns the secret: %v", ac)
	}
	_, _, body = f.call("GET", "/users/"+uid+"/application_credentials", tok, nil)
	if l := body["application_credentials"].([]any); len(l) != 1 || l[0].(map[string]any)["secret"] != nil {
		t.Fatalf("list: %v", body)
	}
	_, _, body = f.call("GET", "/users/"+uid+"/application_credentials?name=nope", tok, nil)
	if l := body["application_credentials"].([]any); len(l) != 0 {
		t.Fatalf("list ?name=nope: %v", body)
	}

	// Authenticate by id: the credential's project and roles, no more.
	code, h, body := f.call("POST", "/auth/tokens", "", appCredAuthByID(id, secret))
	if code != 201 {
		t.Fatalf("auth by id: %d %v", code, body)
	}
	acTok := h.Get("X-Subject-Token")
	tb := body["token"].(map[string]any)
	if tb["project"].(map[string]any)["id"] != pid || tb["methods"].([]any)[0] != "application_credential" {
		t.Fatalf("token body: %v", tb)
	}
	if got := tb["application_credential"].(map[string]any); got["id"] != id || got["name"] != "cred1" || got["restricted"] != true {
		t.Fatalf("token's application_credential: %v", got)
	}
	for _, r := range roleNamesOf(tb["roles"]) {
		if r == "admin" {
			t.Fatalf("token from a member credential holds admin: %v", tb["roles"])
		}
	}
	p, err := f.svc.Validate(context.Background(), acTok)
	if err != nil || p.IsAdmin() || !p.HasRole("member") || p.ProjectID != pid {
		t.Fatalf("validate: %+v %v", p, err)
	}
	// By name, with the user by name and domain.
	byName := map[string]any{"auth": map[string]any{"identity": map[string]any{"methods": []string{"application_credential"},
		"application_credential": map[string]any{"name": "cred1", "secret": secret, "user": map[string]any{"name": "carl", "domain": map[string]any{"id": "default"}}}}}}
	if code, _, body := f.call("POST", "/auth/tokens", "", byName); code != 201 {
		t.Fatalf("auth by name: %d %v", code, body)
	}
	if code, _, _ := f.call("POST", "/auth/tokens", "", appCredAuthByID(id, secret+"x")); code != 401 {
		t.Fatalf("wrong secret: %d", code)
	}
	scoped := appCredAuthByID(id, secret)
	scoped["auth"].(map[string]any)["scope"] = map[string]any{"project": map[string]any{"id": pid}}
	if code, _, _ := f.call("POST", "/auth/tokens", "", scoped); code != 401 {
		t.Fatalf("a scope in the request: %d", code)
	}
	// A token from it cannot be rescoped.
	rescope := map[string]any{"auth": map[string]any{"identity": map[string]any{"methods": []string{"token"}, "token": map[string]any{"id": acTok}},
		"scope": map[string]any{"project": map[string]any{"name": "admin", "domain": map[string]any{"id": "default"}}}}}
	if code, _, _ := f.call("POST", "/auth/tokens", "", rescope); code != 403 {
		t.Fatalf("rescope an application credential token: %d", code)
	}

	// A restricted token may neither make nor remove credentials.
	if code, _, _ := f.call("POST", "/users/"+uid+"/application_credentials", acTok, map[string]any{"application_credential": map[string]any{"name": "more"}}); code != 403 {
		t.Fatalf("create from a restricted token: %d", code)
	}
	if code, _, _ := f.call("DELETE", "/users/"+uid+"/application_credentials/"+id, acTok, nil); code != 403 {
		t.Fatalf("delete from a restricted token: %d", code)
	}
	// An unrestricted one may.
	uid2, usecret := f.mkAppCred(uid, tok, map[string]any{"name": "free", "unrestricted": true, "secret": "my-own-secret"})
	if usecret != "my-own-secret" {
		t.Fatalf("the secret given is not the one shown: %q", usecret)
	}
	_, h, _ = f.call("POST", "/auth/tokens", "", appCredAuthByID(uid2, usecret))
	freeTok := h.Get("X-Subject-Token")
	if code, _, body := f.call("POST", "/users/"+uid+"/application_credentials", freeTok, map[string]any{"application_credential": map[string]any{"name": "child"}}); code != 201 {
		t.Fatalf("create from an unrestricted token: %d %v", code, body)
	}

	// Delete: 204, its tokens die, it no longer authenticates.
	if code, _, _ := f.call("DELETE", "/users/"+uid+"/application_credentials/"+id, tok, nil); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if _, err := f.svc.Validate(context.Background(), acTok); err == nil {
		t.Fatal("a token from a deleted application credential validated")
	}
	if code, _, _ := f.call("POST", "/auth/tokens", "", appCredAuthByID(id, secret)); code != 401 {
		t.Fatalf("auth with a deleted credential: %d", code)
	}
	if code, _, _ := f.call("GET", "/users/"+uid+"/application_credentials/"+id, tok, nil); code != 404 {
		t.Fatalf("show a deleted credential: %d", code)
	}
	// Deleting the user takes the rest, and their tokens.
	if code, _, _ := f.call("DELETE", "/users/"+uid, f.admin, nil); code != 204 {
		t.Fatalf("delete user: %d", code)
	}
	if _, err := f.svc.Validate(context.Background(), freeTok); err == nil {
		t.Fatal("a token from a deleted user's credential validated")
	}
	if n := len(store.All[AppCred](f.local.Local(), tAppCreds, "id")); n != 0 {
		t.Fatalf("%d application credentials outlive their user", n)
	}
}

func TestAppCredPolicyAndInput(t *testing.T) {
	f := newFixture(t)
	_, uid, tok := f.tenant("p1", "pia", "member")
	// Not even an admin makes one for another user.
	if code, _, _ := f.call("POST", "/users/"+uid+"/application_credentials", f.admin, map[string]any{"application_credential": map[string]any{"name": "x"}}); code != 403 {
		t.Fatalf("admin creating for another user: %d", code)
	}
	_, other, otherTok := f.tenant("p2", "olaf", "member")
	if code, _, _ := f.call("GET", "/users/"+uid+"/application_credentials", otherTok, nil); code != 403 {
		t.Fatalf("another user lists: %d", code)
	}
	_ = other
	// Only roles the token holds.
	if code, _, body := f.call("POST", "/users/"+uid+"/application_credentials", tok, map[string]any{"application_credential": map[string]any{"name": "x", "roles": []any{map[string]any{"name": "admin"}}}}); code != 403 {
		t.Fatalf("delegating a role not held: %d %v", code, body)
	}
	for _, c := range []struct {
		fields map[string]any
		field  string
	}{
		{map[string]any{}, "name"},
		{map[string]any{"name": "x", "expires_at": "yesterday"}, "expires_at"},
		{map[string]any{"name": "x", "expires_at": "2020-01-01T00:00:00Z"}, "expires_at"},
		{map[string]any{"name": "x", "access_rules": []any{map[string]any{"service": "", "method": "GET", "path": "/v2.1/servers"}}}, "access_rules.service"},
		{map[string]any{"name": "x", "access_rules": []any{map[string]any{"service": "object-store", "method": "FETCH", "path": "/v1/**"}}}, "access_rules.method"},
		{map[string]any{"name": "x", "access_rules": []any{map[string]any{"service": "object-store", "method": "GET", "path": "v1"}}}, "access_rules.path"},
		{map[string]any{"name": "x", "access_rules": []any{map[string]any{"id": "nope"}}}, "access_rules"},
		{map[string]any{"name": "x", "roles": []any{map[string]any{}}}, "roles"},
	} {
		code, _, body := f.call("POST", "/users/"+uid+"/application_credentials", tok, map[string]any{"application_credential": c.fields})
		if msg, _ := body["error"].(map[string]any)["message"].(string); code != 400 || !strings.Contains(msg, c.field) {
			t.Errorf("%v: %d %v", c.fields, code, body)
		}
	}
	if n := len(store.All[AppCred](f.local.Local(), tAppCreds, "id")); n != 0 {
		t.Fatalf("refused requests left %d credentials", n)
	}
}

func TestAppCredExpiryAndLostAccess(t *testing.T) {
	f := newFixture(t)
	pid, uid, tok := f.tenant("exp", "eve", "member")
	exp := f.now.Add(30 * time.Minute)
	id, secret := f.mkAppCred(uid, tok, map[string]any{"name": "short", "expires_at": exp.Format("2006-01-02T15:04:05")})
	// The expiry reads back as Keystone writes it (and tempest compares).
	_, _, body := f.call("GET", "/users/"+uid+"/application_credentials/"+id, tok, nil)
	if got := body["application_credential"].(map[string]any)["expires_at"]; got != exp.Format("2006-01-02T15:04:05") {
		t.Fatalf("expires_at = %v", got)
	}
	micro := "2027-01-02T03:04:05.123456"
	_, _, body = f.call("POST", "/users/"+uid+"/application_credentials", tok, map[string]any{"application_credential": map[string]any{"name": "micro", "expires_at": micro}})
	if got := body["application_credential"].(map[string]any)["expires_at"]; got != micro {
		t.Fatalf("expires_at %s reads back as %v", micro, got)
	}
	code, _, body := f.call("POST", "/auth/tokens", "", appCredAuthByID(id, secret))
	if code != 201 {
		t.Fatalf("auth: %d %v", code, body)
	}
	if got := body["token"].(map[string]any)["expires_at"]; got != exp.Format(timeFormat) {
		t.Fatalf("token expires at %v, after its credential (%v)", got, exp)
	}
	f.now = exp
	if code, _, _ := f.call("POST", "/auth/tokens", "", appCredAuthByID(id, secret)); code != 401 {
		t.Fatalf("expired credential: %d", code)
	}
	f.now = exp.Add(-time.Hour)

	id2, secret2 := f.mkAppCred(uid, tok, map[string]any{"name": "long"})
	_, h, _ := f.call("POST", "/auth/tokens", "", appCredAuthByID(id2, secret2))
	acTok := h.Get("X-Subject-Token")
	// The user loses its role on the project: the credential and its
	// tokens stop working.
	if code, _, _ := f.call("DELETE", "/projects/"+pid+"/users/"+uid+"/roles/"+f.roleID("member"), f.admin, nil); code != 204 {
		t.Fatalf("revoke grant: %d", code)
	}
	if _, err := f.svc.Validate(context.Background(), acTok); err == nil {
		t.Fatal("a token validated after its user lost the role")
	}
	if code, _, _ := f.call("POST", "/auth/tokens", "", appCredAuthByID(id2, secret2)); code != 401 {
		t.Fatalf("auth after the role is gone: %d", code)
	}
	// ...and, as Keystone, the removal deleted the user's credentials on
	// the project: granting the role again does not revive them.
	if code, _, _ := f.call("PUT", "/projects/"+pid+"/users/"+uid+"/roles/"+f.roleID("member"), f.admin, nil); code != 204 {
		t.Fatalf("grant again: %d", code)
	}
	if code, _, _ := f.call("POST", "/auth/tokens", "", appCredAuthByID(id2, secret2)); code != 401 {
		t.Fatalf("auth with the role back: %d, want 401 (the credential went with the grant)", code)
	}
	if code, _, _ := f.call("GET", "/users/"+uid+"/application_credentials/"+id2, tok, nil); code != 404 {
		t.Fatalf("the credential after its grant was removed: %d, want 404", code)
	}
	tok = f.login("eve", "eve-pw", "exp")
	id2, secret2 = f.mkAppCred(uid, tok, map[string]any{"name": "again"})
	if code, _, _ := f.call("POST", "/auth/tokens", "", appCredAuthByID(id2, secret2)); code != 201 {
		t.Fatalf("a new credential after the grant: %d", code)
	}
	if code, _, _ := f.call("PATCH", "/users/"+uid, f.admin, map[string]any{"user": map[string]any{"enabled": false}}); code != 200 {
		t.Fatalf("disable: %d", code)
	}
	if code, _, _ := f.call("POST", "/auth/tokens", "", appCredAuthByID(id2, secret2)); code != 401 {
		t.Fatalf("auth as a disabled user: %d", code)
	}
}

// The secret is shown once and the state keeps only a slow hash of it:
// neither the log nor a snapshot holds it.
func TestAppCredSecretNotStoredInClear(t *testing.T) {
	local, err := store.NewLocal(Schema())
	if err != nil {
		t.Fatal(err)
	}
	logged := &loggedLocal{local: local}
	f := &fixture{t: t, local: local, now: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	f.svc, err = New(Config{Repl: logged, Now: func() time.Time { return f.now }, BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	f.start()
	_, uid, tok := f.tenant("h", "hal", "member")
	_, generated := f.mkAppCred(uid, tok, map[string]any{"name": "gen"})
	id, chosen := f.mkAppCred(uid, tok, map[string]any{"name": "chosen", "secret": "chosen-secret-0123456789"})
	snap, _, err := store.SnapshotRoundTrip(local.State, Schema())
	if err != nil {
		t.Fatal(err)
	}
	for _, clear := range []string{generated, chosen} {
		if strings.Contains(string(snap), clear) {
			t.Errorf("the snapshot holds %q in clear", clear)
		}
		for _, cmd := range logged.log {
			if strings.Contains(cmd, clear) {
				t.Errorf("a command holds %q in clear: %s", clear, cmd)
			}
		}
	}
	a := store.Get[AppCred](local.Local(), tAppCreds, id)
	if a == nil || bcrypt.CompareHashAndPassword(a.SecretHash, secretDigest(chosen)) != nil {
		t.Fatalf("stored credential does not hold a bcrypt hash of the secret: %+v", a)
	}
}

// TestAppCredAccessRules: a credential's access rules are carried by its
// tokens (the principal and the token body), keep one id per user for the
// same rule, are listed and read under the user, and cannot be deleted
// while a credential uses them.
func TestAppCredAccessRules(t *testing.T) {
	f := newFixture(t)
	_, uid, tok := f.tenant("ar", "ari", "member")
	rule := map[string]any{"service": "object-store", "method": "get", "path": "/v1/{account}/**"}
	id, secret := f.mkAppCred(uid, tok, map[string]any{"name": "reader", "access_rules": []any{rule}})
	_, _, body := f.call("GET", "/users/"+uid+"/application_credentials/"+id, tok, nil)
	rules := body["application_credential"].(map[string]any)["access_rules"].([]any)
	if len(rules) != 1 || rules[0].(map[string]any)["method"] != "GET" {
		t.Fatalf("rules: %v", rules)
	}
	ruleID := rules[0].(map[string]any)["id"].(string)
	// The same rule again, by value or by id, is the same rule.
	id2, _ := f.mkAppCred(uid, tok, map[string]any{"name": "again", "access_rules": []any{map[string]any{"service": "object-store", "method": "GET", "path": "/v1/{account}/**"}, map[string]any{"id": ruleID}}})
	_, _, body = f.call("GET", "/users/"+uid+"/application_credentials/"+id2, tok, nil)
	if r := body["application_credential"].(map[string]any)["access_rules"].([]any); len(r) != 1 || r[0].(map[string]any)["id"] != ruleID {
		t.Fatalf("the same rule again: %v", r)
	}
	if code, _, body := f.call("GET", "/users/"+uid+"/access_rules", tok, nil); code != 200 || len(body["access_rules"].([]any)) != 1 {
		t.Fatalf("list: %d %v", code, body)
	}
	if code, _, _ := f.call("GET", "/users/"+uid+"/access_rules/"+ruleID, tok, nil); code != 200 {
		t.Fatalf("show: %d", code)
	}
	if code, _, _ := f.call("DELETE", "/users/"+uid+"/access_rules/"+ruleID, tok, nil); code != 403 {
		t.Fatalf("delete a rule in use: %d", code)
	}
	code, h, body := f.call("POST", "/auth/tokens", "", appCredAuthByID(id, secret))
	if code != 201 {
		t.Fatalf("auth: %d %v", code, body)
	}
	ac := body["token"].(map[string]any)["application_credential"].(map[string]any)
	if r, _ := ac["access_rules"].([]any); len(r) != 1 {
		t.Fatalf("token body: %v", ac)
	}
	p, err := f.svc.Validate(context.Background(), h.Get("X-Subject-Token"))
	if err != nil {
		t.Fatal(err)
	}
	if !p.Permits("object-store", "GET", "/v1/AUTH_x/c/o") || p.Permits("object-store", "PUT", "/v1/AUTH_x/c/o") || p.Permits("compute", "GET", "/v1/AUTH_x/c") || p.Permits("", "GET", "/v1/AUTH_x") {
		t.Fatalf("the principal's rules: %+v", p.AccessRules)
	}
	// The identity API itself is a service: the token reaches none of it.
	if code, _, _ := f.call("GET", "/users/"+uid, h.Get("X-Subject-Token"), nil); code != 401 {
		t.Fatalf("identity API with a restricted token: %d", code)
	}
	// As Keystone, a rule outlives its credentials until deleted.
	for _, c := range []string{id, id2} {
		if code, _, _ := f.call("DELETE", "/users/"+uid+"/application_credentials/"+c, tok, nil); code != 204 {
			t.Fatalf("delete credential: %d", code)
		}
	}
	if code, _, _ := f.call("DELETE", "/users/"+uid+"/access_rules/"+ruleID, tok, nil); code != 204 {
		t.Fatalf("delete a rule no longer used: %d", code)
	}
	if code, _, body := f.call("GET", "/users/"+uid+"/access_rules", tok, nil); code != 200 || len(body["access_rules"].([]any)) != 0 {
		t.Fatalf("list after delete: %d %v", code, body)
	}
}
