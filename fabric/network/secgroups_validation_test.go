package network

import "testing"

// TestPortGroupsNamedTwice: a port naming a group twice is refused, on
// create and on update, as neutron-lib's uuid_list validator does; the
// port is left as it was.
func TestPortGroupsNamedTwice(t *testing.T) {
	f := newFixture(t)
	n := f.network(alice, "n")["id"].(string)
	sg := f.mk(alice, "security-groups", "security_group", map[string]any{"name": "g"})["id"].(string)
	f.expect("POST", "/v2.0/ports", alice, map[string]any{"port": map[string]any{"network_id": n, "security_groups": []string{sg, sg}}}, 400, "HTTPBadRequest", "security_groups", "Duplicate")
	p := f.port(alice, n)
	id := p["id"].(string)
	f.expect("PUT", "/v2.0/ports/"+id, alice, map[string]any{"port": map[string]any{"security_groups": []string{sg, sg}}}, 400, "HTTPBadRequest", "security_groups", "Duplicate")
	got := f.expect("GET", "/v2.0/ports/"+id, alice, nil, 200, "")["port"].(map[string]any)
	if g := got["security_groups"].([]any); len(g) != 1 || g[0] == sg {
		t.Fatalf("port's groups after the refused update: %v (default group expected)", g)
	}
	f.expect("PUT", "/v2.0/ports/"+id, alice, map[string]any{"port": map[string]any{"security_groups": []string{sg}}}, 200, "")
}

// TestRuleIPv6ProtocolInIPv4Rule: the IPv6-only protocols, by name or
// number, are refused in an IPv4 rule and taken in an IPv6 one.
func TestRuleIPv6ProtocolInIPv4Rule(t *testing.T) {
	f := newFixture(t)
	sg := f.mk(alice, "security-groups", "security_group", map[string]any{"name": "g"})["id"].(string)
	for _, proto := range []any{"ipv6-encap", "ipv6-frag", "ipv6-icmp", "ipv6-nonxt", "ipv6-opts", "ipv6-route", 41, 43, 44, 58, 59, 60, "41"} {
		rule := map[string]any{"security_group_id": sg, "direction": "ingress", "protocol": proto}
		rule["ethertype"] = "IPv4"
		f.expect("POST", "/v2.0/security-group-rules", alice, map[string]any{"security_group_rule": rule}, 400, "SecurityGroupEthertypeConflictWithProtocol")
		if _, isName := proto.(string); isName && proto != "41" {
			rule["ethertype"] = "IPv6"
			f.expect("POST", "/v2.0/security-group-rules", alice, map[string]any{"security_group_rule": rule}, 201, "")
		}
	}
}

// TestRuleChangesBumpGroupRevision: adding or deleting a rule is a new
// revision of its group, as in Neutron, so an If-Match on the group's old
// revision fails.
func TestRuleChangesBumpGroupRevision(t *testing.T) {
	f := newFixture(t)
	sg := f.mk(alice, "security-groups", "security_group", map[string]any{"name": "g"})
	id := sg["id"].(string)
	rev := func() float64 {
		return f.expect("GET", "/v2.0/security-groups/"+id, alice, nil, 200, "")["security_group"].(map[string]any)["revision_number"].(float64)
	}
	r0 := rev()
	rule := f.mk(alice, "security-group-rules", "security_group_rule", map[string]any{"security_group_id": id, "direction": "ingress", "protocol": "tcp"})["id"].(string)
	r1 := rev()
	f.expect("DELETE", "/v2.0/security-group-rules/"+rule, alice, nil, 204, "")
	if r2 := rev(); !(r1 > r0 && r2 > r1) {
		t.Fatalf("group revisions %v, %v, %v: want each rule change to bump it", r0, r1, r2)
	}
}

// TestSubnetChangesBumpNetworkRevision: a subnet made or deleted is a new
// revision of its network, as in Neutron.
func TestSubnetChangesBumpNetworkRevision(t *testing.T) {
	f := newFixture(t)
	n := f.network(alice, "n")["id"].(string)
	rev := func() float64 {
		return f.expect("GET", "/v2.0/networks/"+n, alice, nil, 200, "")["network"].(map[string]any)["revision_number"].(float64)
	}
	r0 := rev()
	sub := f.subnet(alice, n, "10.8.0.0/24")["id"].(string)
	r1 := rev()
	f.expect("DELETE", "/v2.0/subnets/"+sub, alice, nil, 204, "")
	if r2 := rev(); !(r1 > r0 && r2 > r1) {
		t.Fatalf("network revisions %v, %v, %v: want each subnet change to bump it", r0, r1, r2)
	}
}
