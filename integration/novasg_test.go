//go:build integration

package integration

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// Nova's security-group proxy (to 2.35) writes through the network
// service of a real rackd: a group and a rule made through Nova are
// Neutron's, as the real openstack CLI (which speaks Neutron) shows
// them, and a group deleted through Nova is gone from Neutron.
func TestNovaSecurityGroupProxy(t *testing.T) {
	testenv.RequireCommand(t, "/usr/bin/openstack")
	n := startDevCloud(t, "novasg")
	creds := openrc(t, n.dataDir)
	admin := osEnv(creds, n)
	tok := token(t, n, creds["OS_USERNAME"], creds["OS_PASSWORD"], creds["OS_PROJECT_NAME"])
	nova := n.url() + "/compute/v2.1"

	code, body := novaCall(t, "POST", nova+"/os-security-groups", tok, "35", `{"security_group": {"name": "web", "description": "made through Nova"}}`)
	var g struct {
		SecurityGroup struct {
			ID string `json:"id"`
		} `json:"security_group"`
	}
	if json.Unmarshal([]byte(body), &g); code != 200 || g.SecurityGroup.ID == "" {
		t.Fatalf("POST os-security-groups: %d %s", code, body)
	}
	code, body = novaCall(t, "POST", nova+"/os-security-group-rules", tok, "35",
		`{"security_group_rule": {"parent_group_id": "`+g.SecurityGroup.ID+`", "ip_protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "10.0.0.1/24"}}`)
	if code != 200 {
		t.Fatalf("POST os-security-group-rules: %d %s", code, body)
	}
	if code, body = novaCall(t, "POST", nova+"/os-security-group-rules", tok, "35",
		`{"security_group_rule": {"parent_group_id": "`+g.SecurityGroup.ID+`", "ip_protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "10.0.0.1/24"}}`); code != 400 || !strings.Contains(body, "already exists") {
		t.Fatalf("the same rule again: %d %s", code, body)
	}
	out := openstack(t, admin, "security", "group", "rule", "list", g.SecurityGroup.ID, "--ingress", "-f", "json")
	if !strings.Contains(out, `"10.0.0.1/24"`) || !strings.Contains(out, `"22:22"`) {
		t.Fatalf("Neutron's view of the rule made through Nova:\n%s", out)
	}
	// Past 2.35 the proxy is gone, as in Nova.
	if code, _ := novaCall(t, "POST", nova+"/os-security-groups", tok, "36", `{"security_group": {"name": "late", "description": ""}}`); code != 404 {
		t.Fatalf("POST os-security-groups at 2.36: %d", code)
	}
	if code, body := novaCall(t, "DELETE", nova+"/os-security-groups/"+g.SecurityGroup.ID, tok, "35", ""); code != 202 {
		t.Fatalf("DELETE os-security-groups: %d %s", code, body)
	}
	if out, err := openstackErr(admin, "security", "group", "show", g.SecurityGroup.ID); err == nil {
		t.Fatalf("the group deleted through Nova is still in Neutron:\n%s", out)
	}
}
