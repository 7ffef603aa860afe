//go:build integration

package integration

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// TestAppCredAccessRules: an application credential made with access
// rules (the openstack CLI's --access-rules) reaches only what they name:
// listing servers and images works through the CLI logged in with the
// credential, while flavors, networks, volumes and the identity API are
// refused with a non-zero exit; the rules are listed under the user,
// cannot be deleted while the credential uses them, and can once it is
// gone.
func TestAppCredAccessRules(t *testing.T) {
	testenv.RequireCommand(t, "/usr/bin/openstack")
	n := startDevCloud(t, "accessrules", "--disk", t.TempDir(), "--s3-listen", "off")
	creds := openrc(t, n.dataDir)
	admin := osEnv(creds, n)
	openstack(t, admin, "project", "create", "arp")
	openstack(t, admin, "user", "create", "--password", "aru-pw", "--project", "arp", "aru")
	openstack(t, admin, "role", "add", "--project", "arp", "--user", "aru", "member")
	user := osEnv(creds, n, "OS_USERNAME=aru", "OS_PASSWORD=aru-pw", "OS_PROJECT_NAME=arp")

	if out, err := openstackErr(user, "application", "credential", "create", "--access-rules", `[{"service":"compute","method":"FETCH","path":"/v2.1/servers"}]`, "bad"); err == nil || !strings.Contains(out, "method") {
		t.Fatalf("a rule with a bad method: %v\n%s", err, out)
	}
	rules := `[{"service":"compute","method":"GET","path":"/v2.1/servers/detail"},{"service":"image","method":"GET","path":"/v2/images"}]`
	ac := showJSON(t, user, "application", "credential", "create", "--access-rules", rules, "lister")
	id, secret := ac["id"].(string), ac["secret"].(string)

	cred := []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "OS_AUTH_URL=" + n.url() + "/identity/v3", "OS_IDENTITY_API_VERSION=3",
		"OS_AUTH_TYPE=v3applicationcredential", "OS_APPLICATION_CREDENTIAL_ID=" + id, "OS_APPLICATION_CREDENTIAL_SECRET=" + secret}
	openstack(t, cred, "server", "list")
	openstack(t, cred, "image", "list")
	for _, args := range [][]string{{"flavor", "list"}, {"network", "list"}, {"volume", "list"}, {"project", "show", "arp"}} {
		if out, err := openstackErr(cred, args...); err == nil {
			t.Fatalf("%s with a credential whose rules do not name it:\n%s", strings.Join(args, " "), out)
		}
	}

	out := openstack(t, user, "access", "rule", "list", "-f", "json")
	var listed []map[string]any
	if err := json.Unmarshal([]byte(out), &listed); err != nil || len(listed) != 2 {
		t.Fatalf("access rule list: %v\n%s", err, out)
	}
	ruleID, _ := listed[0]["ID"].(string)
	if out, err := openstackErr(user, "access", "rule", "delete", ruleID); err == nil {
		t.Fatalf("deleted a rule in use:\n%s", out)
	}
	// As Keystone, the rules outlive the credential until deleted.
	openstack(t, user, "application", "credential", "delete", "lister")
	for _, r := range listed {
		openstack(t, user, "access", "rule", "delete", r["ID"].(string))
	}
	if out := openstack(t, user, "access", "rule", "list", "-f", "value"); strings.TrimSpace(out) != "" {
		t.Fatalf("rules left after their deletion: %q", out)
	}
}
