//go:build integration

package integration

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// createMeterLabel makes, by the CLI, a metering label counting what
// routers send to the outside namespace and what comes in from anywhere
// but the public network itself, and an address scope with a subnet pool
// in it; it returns the label's id.
func createMeterLabel(t *testing.T, admin []string) string {
	t.Helper()
	id := strings.TrimSpace(openstack(t, admin, "network", "meter", "create", "--description", "to and from outside", "outside", "-f", "value", "-c", "id"))
	openstack(t, admin, "network", "meter", "rule", "create", "--egress", "--remote-ip-prefix", outsideIP+"/32", id)
	openstack(t, admin, "network", "meter", "rule", "create", "--ingress", "--remote-ip-prefix", "0.0.0.0/0", id)
	openstack(t, admin, "network", "meter", "rule", "create", "--ingress", "--exclude", "--remote-ip-prefix", "172.24.4.0/24", id)
	if out := openstack(t, admin, "network", "meter", "list", "-f", "value", "-c", "ID"); !strings.Contains(out, id) {
		t.Errorf("meter list lacks %s:\n%s", id, out)
	}
	if out := openstack(t, admin, "network", "meter", "rule", "list", "-f", "value", "-c", "Remote IP Prefix"); !strings.Contains(out, outsideIP+"/32") {
		t.Errorf("meter rule list lacks %s/32:\n%s", outsideIP, out)
	}
	openstack(t, admin, "address", "scope", "create", "--ip-version", "4", "--share", "scope4")
	openstack(t, admin, "subnet", "pool", "create", "--address-scope", "scope4", "--pool-prefix", "10.99.0.0/16", "--default-prefix-length", "24", "pool4")
	if out := openstack(t, admin, "subnet", "pool", "show", "pool4", "-f", "value", "-c", "address_scope_id"); strings.TrimSpace(out) != strings.TrimSpace(openstack(t, admin, "address", "scope", "show", "scope4", "-f", "value", "-c", "id")) {
		t.Errorf("pool4's address scope: %s", out)
	}
	return id
}

// checkMeterCounts wants label's counts in /metrics to have grown both
// ways: vm1's traffic out to the outside through SNAT and its replies.
func checkMeterCounts(t *testing.T, n *rackd, admin []string, label string) {
	t.Helper()
	tok := strings.TrimSpace(openstack(t, admin, "token", "issue", "-f", "value", "-c", "id"))
	req, _ := http.NewRequest("GET", n.url()+"/metrics", nil)
	req.Header.Set("X-Auth-Token", tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, dir := range []string{"ingress", "egress"} {
		re := regexp.MustCompile(`(?m)^rackstack_dataplane_metering_packets_total\{direction="` + dir + `",label="` + label + `",project="[^"]*"\} (\S+)$`)
		m := re.FindStringSubmatch(string(raw))
		if m == nil {
			t.Errorf("no %s metering series of label %s in /metrics:\n%s", dir, label, grepLines(string(raw), "metering"))
			continue
		}
		if v, _ := strconv.ParseFloat(m[1], 64); v <= 0 {
			t.Errorf("label %s counted %v packets %s", label, v, dir)
		}
	}
}
