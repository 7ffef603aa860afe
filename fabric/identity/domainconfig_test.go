package identity

import (
	"reflect"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/store"
)

func cfgOf(body map[string]any) map[string]any {
	c, _ := body["config"].(map[string]any)
	return c
}

// A domain's configuration is Keystone's: created (201, then 200 when
// replaced), shown whole, by group and by option, merged by PATCH,
// removed by option, group and whole, with Keystone's 403 for an option
// a domain may not set and 404 for one it has not set.
func TestDomainConfig(t *testing.T) {
	f := newFixture(t)
	dom := f.mk("/domains", "domain", map[string]any{"name": "cfgdom"})
	base := "/domains/" + dom + "/config"
	want := map[string]any{
		"identity": map[string]any{"driver": "ldap"},
		"ldap":     map[string]any{"url": "ldap://myldap.com:389/", "user_tree_dn": "ou=Users,dc=org"},
	}
	if code, _, body := f.call("GET", base, f.admin, nil); code != 404 {
		t.Fatalf("no config yet: %d %v", code, body)
	}
	code, _, body := f.call("PUT", base, f.admin, map[string]any{"config": want})
	if code != 201 || !reflect.DeepEqual(cfgOf(body), want) {
		t.Fatalf("create: %d %v", code, body)
	}
	if code, _, body := f.call("PUT", base, f.admin, map[string]any{"config": want}); code != 200 || !reflect.DeepEqual(cfgOf(body), want) {
		t.Fatalf("replace: %d %v", code, body)
	}
	if code, _, body := f.call("GET", base+"/ldap", f.admin, nil); code != 200 || !reflect.DeepEqual(cfgOf(body), map[string]any{"ldap": want["ldap"]}) {
		t.Fatalf("show group: %d %v", code, body)
	}
	if code, _, body := f.call("GET", base+"/ldap/url", f.admin, nil); code != 200 || cfgOf(body)["url"] != "ldap://myldap.com:389/" {
		t.Fatalf("show option: %d %v", code, body)
	}

	// A group update merges into the group; values keep their JSON type.
	code, _, body = f.call("PATCH", base+"/identity", f.admin, map[string]any{"config": map[string]any{"identity": map[string]any{"driver": "d2", "list_limit": 42}}})
	if id, _ := cfgOf(body)["identity"].(map[string]any); code != 200 || id["driver"] != "d2" || id["list_limit"] != float64(42) || cfgOf(body)["ldap"] == nil {
		t.Fatalf("update group: %d %v", code, body)
	}
	code, _, body = f.call("PATCH", base+"/identity/driver", f.admin, map[string]any{"config": map[string]any{"driver": "d3"}})
	if id, _ := cfgOf(body)["identity"].(map[string]any); code != 200 || id["driver"] != "d3" || id["list_limit"] != float64(42) {
		t.Fatalf("update option: %d %v", code, body)
	}
	// The whole-config update adds an option to what is there.
	code, _, body = f.call("PATCH", base, f.admin, map[string]any{"config": map[string]any{"ldap": map[string]any{"suffix": "dc=x"}}})
	if l, _ := cfgOf(body)["ldap"].(map[string]any); code != 200 || l["suffix"] != "dc=x" || l["url"] != "ldap://myldap.com:389/" {
		t.Fatalf("update config: %d %v", code, body)
	}

	// Refusals: Keystone's 403 for what a domain may not set, 404 for an
	// option or group not set.
	for _, c := range []struct {
		method, path string
		body         any
		code         int
		says         string
	}{
		{"PUT", base, map[string]any{"config": map[string]any{"identity": map[string]any{"nope": 1}}}, 403, "Option nope in group identity"},
		{"PUT", base, map[string]any{"config": map[string]any{"cache": map[string]any{"enabled": true}}}, 403, "Group cache"},
		{"PUT", base, map[string]any{"config": map[string]any{}}, 403, "No options specified"},
		{"PUT", base, map[string]any{"config": map[string]any{"ldap": "x"}}, 403, "dictionary of options"},
		{"PATCH", base + "/identity", map[string]any{"config": map[string]any{"ldap": map[string]any{"url": "u"}}}, 403, "group identity"},
		{"PATCH", base + "/identity/driver", map[string]any{"config": map[string]any{"list_limit": 3}}, 403, "option driver"},
		{"GET", base + "/identity/nope", nil, 403, "Option nope"},
		{"GET", base + "/ldap/user", nil, 404, "option user in group ldap"},
		{"PATCH", base + "/ldap/user", map[string]any{"config": map[string]any{"user": "cn=a"}}, 404, "option user in group ldap"},
		{"GET", "/domains/nosuch/config", nil, 404, "domain"},
		{"PUT", "/domains/nosuch/config", map[string]any{"config": want}, 404, "domain"},
	} {
		code, _, body := f.call(c.method, c.path, f.admin, c.body)
		if msg, _ := body["error"].(map[string]any)["message"].(string); code != c.code || !strings.Contains(msg, c.says) {
			t.Errorf("%s %s: %d %v, want %d saying %q", c.method, c.path, code, body, c.code, c.says)
		}
	}

	if code, _, _ := f.call("DELETE", base+"/identity/driver", f.admin, nil); code != 204 {
		t.Fatalf("delete option: %d", code)
	}
	if code, _, _ := f.call("GET", base+"/identity/driver", f.admin, nil); code != 404 {
		t.Fatalf("deleted option shown: %d", code)
	}
	if code, _, _ := f.call("DELETE", base+"/identity", f.admin, nil); code != 204 {
		t.Fatalf("delete group: %d", code)
	}
	if code, _, _ := f.call("GET", base+"/identity", f.admin, nil); code != 404 {
		t.Fatalf("deleted group shown: %d", code)
	}
	if code, _, _ := f.call("DELETE", base, f.admin, nil); code != 204 {
		t.Fatalf("delete config: %d", code)
	}
	if code, _, _ := f.call("GET", base, f.admin, nil); code != 404 {
		t.Fatalf("deleted config shown: %d", code)
	}

	// A member may not read or write it.
	_, _, tok := f.tenant("p", "mia", "member")
	if code, _, _ := f.call("GET", base, tok, nil); code != 403 {
		t.Fatalf("member reads a domain config: %d", code)
	}
	if code, _, _ := f.call("PUT", base, tok, map[string]any{"config": want}); code != 403 {
		t.Fatalf("member writes a domain config: %d", code)
	}

	// The configuration goes with its domain.
	f.call("PUT", base, f.admin, map[string]any{"config": want})
	f.call("PATCH", "/domains/"+dom, f.admin, map[string]any{"domain": map[string]any{"enabled": false}})
	if code, _, _ := f.call("DELETE", "/domains/"+dom, f.admin, nil); code != 204 {
		t.Fatalf("delete domain: %d", code)
	}
	if n := len(store.All[DomainConfig](f.local.Local(), tDomainConfigs, "id")); n != 0 {
		t.Fatalf("%d configs outlive their domain", n)
	}
}

// The defaults: every option a domain may set, with Keystone's default,
// by group and by option; the LDAP password has none to show.
func TestDomainConfigDefaults(t *testing.T) {
	f := newFixture(t)
	code, _, body := f.call("GET", "/domains/config/default", f.admin, nil)
	if code != 200 || cfgOf(body)["identity"] == nil || len(cfgOf(body)["ldap"].(map[string]any)) != len(domainConfigOptions["ldap"]) {
		t.Fatalf("defaults: %d %v", code, body)
	}
	if code, _, body := f.call("GET", "/domains/config/identity/default", f.admin, nil); code != 200 || cfgOf(body)["identity"].(map[string]any)["driver"] != "sql" || len(cfgOf(body)) != 1 {
		t.Fatalf("identity defaults: %d %v", code, body)
	}
	if code, _, body := f.call("GET", "/domains/config/ldap/page_size/default", f.admin, nil); code != 200 || cfgOf(body)["page_size"] != float64(0) {
		t.Fatalf("option default: %d %v", code, body)
	}
	for _, p := range []string{"/domains/config/ldap/password/default", "/domains/config/cache/default", "/domains/config/ldap/nope/default"} {
		if code, _, body := f.call("GET", p, f.admin, nil); code != 403 {
			t.Errorf("%s: %d %v", p, code, body)
		}
	}
}

// The LDAP password is kept sealed and never shown.
func TestDomainConfigPasswordSealed(t *testing.T) {
	f, logged := sealedFixture(t)
	base := "/domains/default/config"
	code, _, body := f.call("PUT", base, f.admin, map[string]any{"config": map[string]any{"ldap": map[string]any{"url": "ldap://x", "password": "ldap-secret-1"}}})
	if code != 201 || !reflect.DeepEqual(cfgOf(body), map[string]any{"ldap": map[string]any{"url": "ldap://x"}}) {
		t.Fatalf("create with a password: %d %v", code, body)
	}
	if code, _, body := f.call("GET", base+"/ldap/password", f.admin, nil); code != 404 {
		t.Fatalf("password shown: %d %v", code, body)
	}
	// It is there to update, though not shown.
	if code, _, body := f.call("PATCH", base+"/ldap/password", f.admin, map[string]any{"config": map[string]any{"password": "ldap-secret-2"}}); code != 200 {
		t.Fatalf("update the password: %d %v", code, body)
	}
	snap, _, err := store.SnapshotRoundTrip(f.local.State, Schema())
	if err != nil {
		t.Fatal(err)
	}
	for _, clear := range []string{"ldap-secret-1", "ldap-secret-2"} {
		if strings.Contains(string(snap), clear) {
			t.Errorf("the snapshot holds %q in clear", clear)
		}
		for _, cmd := range logged.log {
			if strings.Contains(cmd, clear) {
				t.Errorf("a command holds %q in clear", clear)
			}
		}
	}
}
