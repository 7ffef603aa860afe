//go:build integration

package integration

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// checkUsage reads Nova's usage report (os-simple-tenant-usage) with the
// openstack CLI, at 2.1 and at 2.40 (where the CLI pages with a marker),
// and over the API: the running vm counts with hours > 0, and the
// deleted one counts too, terminated, through the usage record its
// removal left.
func checkUsage(t *testing.T, n1 *rackd, admin, alice []string, demoID, aliceTok, running, deleted string) {
	t.Helper()
	for _, v := range []string{"2.1", "2.40"} {
		// The admin names the project (a member may not look projects
		// up in Keystone, as in OpenStack); the member's is its own.
		for _, c := range []struct {
			who  string
			env  []string
			args []string
		}{{"admin", admin, []string{"--project", "demo"}}, {"alice", alice, nil}} {
			args := append([]string{"--os-compute-api-version", v, "usage", "show", "-f", "json"}, c.args...)
			who := c.who
			var show map[string]any
			out := openstack(t, c.env, args...)
			if err := json.Unmarshal([]byte(out), &show); err != nil {
				t.Fatalf("%s's usage show at %s: %v\n%s", who, v, err, out)
			}
			// JSON is the raw fields: Servers is the list of servers.
			cpu, _ := show["CPU Hours"].(float64)
			servers, _ := show["Servers"].([]any)
			if show["Project"] != demoID || cpu <= 0 || len(servers) < 2 {
				t.Errorf("%s's usage show at %s: %s", who, v, out)
			}
			t.Logf("%s's openstack usage show at %s: %d servers, %.4f CPU hours", who, v, len(servers), cpu)
		}
		// The table names projects (the other formats give their ids).
		list := openstack(t, admin, "--os-compute-api-version", v, "usage", "list", "-c", "Project", "-c", "CPU Hours")
		if !strings.Contains(list, "| demo ") {
			t.Errorf("usage list at %s has no demo line:\n%s", v, list)
		}
	}
	// Another project's usage is the admin's business only.
	if out, err := openstackErr(alice, "usage", "list"); err == nil || !strings.Contains(out, "os-simple-tenant-usage:list") {
		t.Errorf("a member's usage list: %v\n%s", err, out)
	}

	start := time.Now().UTC().Add(-time.Hour).Format("2006-01-02T15:04:05")
	var rep struct {
		Usage struct {
			Servers []struct {
				ID      string  `json:"instance_id"`
				Hours   float64 `json:"hours"`
				State   string  `json:"state"`
				EndedAt *string `json:"ended_at"`
			} `json:"server_usages"`
		} `json:"tenant_usage"`
	}
	code, err := call("GET", n1.url()+"/compute/v2.1/os-simple-tenant-usage/"+demoID+"?start="+start, aliceTok, nil, &rep)
	if err != nil || code != 200 {
		t.Fatalf("usage of demo: %d %v", code, err)
	}
	found := map[string]bool{}
	for _, s := range rep.Usage.Servers {
		switch s.ID {
		case running:
			found[s.ID] = s.Hours > 0 && s.EndedAt == nil && s.State == "active"
		case deleted:
			found[s.ID] = s.Hours > 0 && s.EndedAt != nil && s.State == "terminated"
		}
	}
	t.Logf("demo's usage since %s: %+v", start, rep.Usage.Servers)
	if !found[running] || !found[deleted] {
		t.Errorf("demo's usage since %s lacks the running %s or the deleted %s: %+v", start, running, deleted, rep.Usage.Servers)
	}
}
