//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// domainConfigScript drives /v3/domains/{id}/config with the real
// python-keystoneclient (the client Keystone's own docs use for it; the
// openstack CLI has no command for it): create, read, merge, and the
// LDAP password kept but never shown. It prints the config it read last.
const domainConfigScript = `
import json, os, sys
from keystoneauth1 import session
from keystoneauth1.identity import v3
from keystoneclient.v3 import client
from keystoneclient import exceptions
auth = v3.Password(auth_url=os.environ["OS_AUTH_URL"], username=os.environ["OS_USERNAME"],
    password=os.environ["OS_PASSWORD"], project_name=os.environ["OS_PROJECT_NAME"],
    user_domain_name="Default", project_domain_name="Default")
ks = client.Client(session=session.Session(auth=auth))
dom = sys.argv[1]
made = ks.domain_configs.create(dom, {"identity": {"driver": "ldap"},
    "ldap": {"url": "ldap://a.example:389/", "password": "ldap-pw"}})
assert made.to_dict() == {"identity": {"driver": "ldap"}, "ldap": {"url": "ldap://a.example:389/"}}, made.to_dict()
ks.domain_configs.update(dom, {"ldap": {"user_tree_dn": "ou=Users,dc=example"}})
try:
    ks.domain_configs.create(dom, {"cache": {"enabled": True}})
    sys.exit("an unsupported group was accepted")
except exceptions.Forbidden:
    pass
print(json.dumps(ks.domain_configs.get(dom).to_dict(), sort_keys=True))
`

// A domain's configuration through real clients: keystoneclient writes
// and reads it, and the openstack CLI's domain delete takes it along.
func TestDomainConfigClients(t *testing.T) {
	testenv.RequireCommand(t, "/usr/bin/openstack")
	testenv.RequireCommand(t, "/usr/bin/python3")
	n := startDevCloud(t, "domcfg")
	creds := openrc(t, n.dataDir)
	admin := osEnv(creds, n)
	dom := idOf(t, admin, "domain", "create", "ldapdom")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := runCombined(ctx, admin, "/usr/bin/python3", "-c", domainConfigScript, dom)
	if err != nil {
		t.Fatalf("keystoneclient domain_configs: %v\n%s", err, out)
	}
	want := `{"identity": {"driver": "ldap"}, "ldap": {"url": "ldap://a.example:389/", "user_tree_dn": "ou=Users,dc=example"}}`
	if lines := strings.Split(strings.TrimSpace(out), "\n"); lines[len(lines)-1] != want {
		t.Fatalf("config read back:\n%s\nwant %s", out, want)
	}

	// The group and option routes, over HTTP with an admin token.
	tok := token(t, n, "admin", creds["OS_PASSWORD"], "admin")
	get := func(path string) (int, map[string]any) {
		req, _ := http.NewRequest("GET", n.url()+"/identity/v3/domains/"+path, nil)
		req.Header.Set("X-Auth-Token", tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var body map[string]any
		json.Unmarshal(raw, &body)
		return resp.StatusCode, body
	}
	if code, body := get(dom + "/config/ldap/url"); code != 200 || body["config"].(map[string]any)["url"] != "ldap://a.example:389/" {
		t.Fatalf("option: %d %v", code, body)
	}
	if code, body := get(dom + "/config/ldap/password"); code != 404 {
		t.Fatalf("the LDAP password is shown: %d %v", code, body)
	}
	if code, body := get("config/identity/default"); code != 200 || body["config"].(map[string]any)["identity"].(map[string]any)["driver"] != "sql" {
		t.Fatalf("defaults: %d %v", code, body)
	}

	openstack(t, admin, "domain", "set", "--disable", dom)
	openstack(t, admin, "domain", "delete", dom)
	if code, body := get(dom + "/config"); code != 404 || !strings.Contains(body["error"].(map[string]any)["message"].(string), "domain") {
		t.Fatalf("config after its domain is deleted: %d %v", code, body)
	}
}
