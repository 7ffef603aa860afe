package identity

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// A user's options are kept and shown (Terraform's user resource sets and
// reads them back), merged on update with null removing one; bad ones are
// a 400 naming the option.
func TestUserOptionsKeptAndMerged(t *testing.T) {
	f := newFixture(t)
	pid := f.mk("/projects", "project", map[string]any{"name": "op"})
	opts := map[string]any{
		"ignore_change_password_upon_first_use": true,
		"multi_factor_auth_enabled":             true,
		"multi_factor_auth_rules":               []any{[]any{"password", "totp"}, []any{"password", "custom-auth-method"}},
	}
	uid := f.mk("/users", "user", map[string]any{"name": "olga", "password": "olga-pw", "default_project_id": pid, "options": opts})
	if code, _, _ := f.call("PUT", "/projects/"+pid+"/users/"+uid+"/roles/"+f.roleID("member"), f.admin, nil); code != 204 {
		t.Fatalf("grant: %d", code)
	}
	shown := func() map[string]any {
		t.Helper()
		code, _, body := f.call("GET", "/users/"+uid, f.admin, nil)
		if code != 200 {
			t.Fatalf("show: %d %v", code, body)
		}
		return body["user"].(map[string]any)["options"].(map[string]any)
	}
	if got := shown(); !reflect.DeepEqual(got, opts) {
		t.Fatalf("options %v, want %v", got, opts)
	}
	// Every rule names a method this cloud does not offer: as Keystone
	// with those methods off, the rules do not stop a password login.
	f.login("olga", "olga-pw", "op")

	code, _, body := f.call("PATCH", "/users/"+uid, f.admin, map[string]any{"user": map[string]any{"options": map[string]any{
		"multi_factor_auth_rules": []any{[]any{"password", "application_credential"}}, "ignore_change_password_upon_first_use": nil}}})
	if code != 200 {
		t.Fatalf("update: %d %v", code, body)
	}
	want := map[string]any{"multi_factor_auth_enabled": true, "multi_factor_auth_rules": []any{[]any{"password", "application_credential"}}}
	if got := shown(); !reflect.DeepEqual(got, want) {
		t.Fatalf("options after update %v, want %v", got, want)
	}
	// Now a rule can be met, but not by a password alone.
	if code, _, body := f.call("POST", "/auth/tokens", "", passwordAuth("olga", "olga-pw", "op")); code != 401 || !strings.Contains(jsonText(body), "Insufficient auth methods") {
		t.Fatalf("password login against an MFA rule: %d %v", code, body)
	}
	f.call("PATCH", "/users/"+uid, f.admin, map[string]any{"user": map[string]any{"options": map[string]any{"multi_factor_auth_rules": []any{[]any{"password"}, []any{"password", "application_credential"}}}}})
	f.login("olga", "olga-pw", "op")
	f.call("PATCH", "/users/"+uid, f.admin, map[string]any{"user": map[string]any{"options": map[string]any{"multi_factor_auth_rules": []any{[]any{"password", "application_credential"}}, "multi_factor_auth_enabled": nil}}})
	f.login("olga", "olga-pw", "op")

	for name, bad := range map[string]map[string]any{
		"options.bogus":                     {"bogus": true},
		"options.lock_password":             {"lock_password": "yes"},
		"options.multi_factor_auth_rules":   {"multi_factor_auth_rules": []any{[]any{"password", "password"}}},
		"options.multi_factor_auth_enabled": {"multi_factor_auth_enabled": 1},
	} {
		code, _, body := f.call("PATCH", "/users/"+uid, f.admin, map[string]any{"user": map[string]any{"options": bad}})
		if code != 400 || !strings.Contains(jsonText(body), name) {
			t.Errorf("options %v: %d %v, want 400 naming %s", bad, code, body, name)
		}
	}
	if code, _, body := f.call("PATCH", "/users/"+uid, f.admin, map[string]any{"user": map[string]any{"options": "x"}}); code != 400 || !strings.Contains(jsonText(body), "options") {
		t.Errorf("options not an object: %d %v", code, body)
	}
}

// lock_password stops the user changing its own password; an admin still
// sets it.
func TestLockPassword(t *testing.T) {
	f := newFixture(t)
	_, uid, _ := f.tenant("lp", "lena", "member")
	f.call("PATCH", "/users/"+uid, f.admin, map[string]any{"user": map[string]any{"options": map[string]any{"lock_password": true}}})
	code, _, body := f.call("POST", "/users/"+uid+"/password", "", map[string]any{"user": map[string]any{"original_password": "lena-pw", "password": "new-pw-1"}})
	if code != 403 {
		t.Fatalf("self-service change of a locked password: %d %v", code, body)
	}
	f.login("lena", "lena-pw", "lp")
	if code, _, body := f.call("PATCH", "/users/"+uid, f.admin, map[string]any{"user": map[string]any{"password": "admin-set-1"}}); code != 200 {
		t.Fatalf("admin sets a locked password: %d %v", code, body)
	}
	f.now = f.now.Add(time.Second)
	f.login("lena", "admin-set-1", "lp")
}

// Rules read back from the log or a snapshot are JSON's []any.
func TestMFARulesFromJSON(t *testing.T) {
	var u User
	if err := json.Unmarshal([]byte(`{"options":{"multi_factor_auth_enabled":true,"multi_factor_auth_rules":[["password","application_credential"]]}}`), &u); err != nil {
		t.Fatal(err)
	}
	if got := u.userMFARules(); !reflect.DeepEqual(got, [][]string{{"password", "application_credential"}}) {
		t.Fatalf("rules %v", got)
	}
	if checkMFA(&u, []string{"password"}) == nil || checkMFA(&u, []string{"password", "application_credential"}) != nil {
		t.Fatal("rules read from JSON are not applied")
	}
}
