//go:build integration

package integration

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// systemEnv is the CLI's environment for the admin scoped to the system
// (`--os-system-scope all`), as Keystone's policy wants for limits.
func systemEnv(creds map[string]string, n *rackd) []string {
	var env []string
	for _, kv := range osEnv(creds, n) {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "OS_PROJECT_") || k == "OS_TENANT_NAME" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "OS_SYSTEM_SCOPE=all")
}

func showJSON(t *testing.T, env []string, args ...string) map[string]any {
	t.Helper()
	out := openstack(t, env, append(args, "-f", "json")...)
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("openstack %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return v
}

// Keystone's unified limits with the real CLI: the system admin
// registers a service's default and overrides it for one project; the
// project's member sees its own limit and no other project's; the
// registered limit a limit overrides cannot be deleted; a duplicate is
// refused; everything acknowledged is there after kill -9.
func TestUnifiedLimitsCLI(t *testing.T) {
	testenv.RequireCommand(t, "/usr/bin/openstack")
	n := startDevCloud(t, "limits", "--disk", t.TempDir(), "--s3-listen", "off")
	creds := openrc(t, n.dataDir)
	admin := osEnv(creds, n)
	sys := systemEnv(creds, n)

	svc := showJSON(t, sys, "service", "show", "keystone")["id"].(string)
	reg := showJSON(t, sys, "registered", "limit", "create", "--service", "keystone", "--default-limit", "10", "--region", "RegionOne", "--description", "widgets per project", "widgets")
	if reg["service_id"] != svc || reg["default_limit"] != float64(10) || reg["region_id"] != "RegionOne" || reg["resource_name"] != "widgets" {
		t.Fatalf("registered limit create: %v", reg)
	}
	regID := reg["id"].(string)
	if out, err := openstackErr(sys, "registered", "limit", "create", "--service", "keystone", "--default-limit", "3", "--region", "RegionOne", "widgets"); err == nil || !strings.Contains(out, "409") {
		t.Fatalf("a duplicate registered limit: %v\n%s", err, out)
	}
	if out, err := openstackErr(sys, "registered", "limit", "create", "--service", "keystone", "--default-limit", "3", "--region", "Atlantis", "gadgets"); err == nil {
		t.Fatalf("a registered limit in a region that does not exist: %s", out)
	}
	showJSON(t, sys, "registered", "limit", "create", "--service", "keystone", "--default-limit", "1", "gadgets")
	out := openstack(t, admin, "registered", "limit", "list", "--service", "keystone", "--resource-name", "widgets", "-f", "value", "-c", "ID")
	if strings.TrimSpace(out) != regID {
		t.Fatalf("registered limit list --resource-name widgets: %q", out)
	}
	if v := showJSON(t, sys, "registered", "limit", "set", "--default-limit", "20", regID); v["default_limit"] != float64(20) {
		t.Fatalf("registered limit set: %v", v)
	}

	openstack(t, admin, "project", "create", "lp1")
	openstack(t, admin, "project", "create", "lp2")
	for _, u := range []string{"lp1", "lp2"} {
		openstack(t, admin, "user", "create", "--password", u+"-pass", "--project", u, u)
		openstack(t, admin, "role", "add", "--project", u, "--user", u, "member")
	}
	lim1 := showJSON(t, sys, "limit", "create", "--project", "lp1", "--service", "keystone", "--resource-limit", "5", "--region", "RegionOne", "--description", "lp1 widgets", "widgets")
	if lim1["resource_limit"] != float64(5) || lim1["resource_name"] != "widgets" || lim1["region_id"] != "RegionOne" {
		t.Fatalf("limit create: %v", lim1)
	}
	id1 := lim1["id"].(string)
	id2 := showJSON(t, sys, "limit", "create", "--project", "lp2", "--service", "keystone", "--resource-limit", "9", "--region", "RegionOne", "widgets")["id"].(string)
	if out, err := openstackErr(sys, "limit", "create", "--project", "lp1", "--service", "keystone", "--resource-limit", "6", "--region", "RegionOne", "widgets"); err == nil || !strings.Contains(out, "409") {
		t.Fatalf("a duplicate limit: %v\n%s", err, out)
	}
	if out, err := openstackErr(sys, "limit", "create", "--project", "lp1", "--service", "keystone", "--resource-limit", "6", "sprockets"); err == nil || !strings.Contains(out, "403") {
		t.Fatalf("a limit with no registered limit: %v\n%s", err, out)
	}

	lp1 := userEnv(creds, n, "lp1", "lp1-pass", "lp1")
	if out := openstack(t, lp1, "limit", "list", "-f", "value", "-c", "ID"); strings.TrimSpace(out) != id1 {
		t.Fatalf("lp1's member lists limits: %q, want only %s", out, id1)
	}
	if out, err := openstackErr(lp1, "limit", "show", id2); err == nil {
		t.Fatalf("lp1's member shows lp2's limit: %s", out)
	}
	if out, err := openstackErr(lp1, "limit", "set", "--resource-limit", "50", id1); err == nil {
		t.Fatalf("a member raises its own limit: %s", out)
	}
	if out := openstack(t, sys, "limit", "list", "--project", "lp2", "-f", "value", "-c", "ID"); strings.TrimSpace(out) != id2 {
		t.Fatalf("limit list --project lp2: %q", out)
	}
	if v := showJSON(t, sys, "limit", "set", "--resource-limit", "7", id1); v["resource_limit"] != float64(7) {
		t.Fatalf("limit set: %v", v)
	}
	if out, err := openstackErr(sys, "registered", "limit", "delete", regID); err == nil {
		t.Fatalf("deleting a registered limit that limits override: %s", out)
	}

	// Acknowledged writes survive kill -9.
	n.kill()
	n.start()
	n.waitHealthy()
	if v := showJSON(t, sys, "limit", "show", id1); v["resource_limit"] != float64(7) || v["project_id"] == nil {
		t.Fatalf("limit after restart: %v", v)
	}
	if v := showJSON(t, sys, "registered", "limit", "show", regID); v["default_limit"] != float64(20) {
		t.Fatalf("registered limit after restart: %v", v)
	}

	openstack(t, sys, "limit", "delete", id1, id2)
	openstack(t, sys, "registered", "limit", "delete", regID)
	if out := openstack(t, sys, "registered", "limit", "list", "-f", "value", "-c", "Resource Name"); strings.Contains(out, "widgets") {
		t.Fatalf("registered limit list after delete: %q", out)
	}
}
