package network

import (
	"fmt"
	"sort"
	"testing"
)

// exerciseQoS runs every QoS command once, leaving a policy with rules on
// port pid of network nid, for the snapshot test.
func exerciseQoS(f *fixture, nid, pid string) {
	f.t.Helper()
	q := f.mk(admin, "qos/policies", "policy", map[string]any{"name": "q", "project_id": projA})["id"].(string)
	f.expect("PUT", "/v2.0/qos/policies/"+q, admin, map[string]any{"policy": map[string]any{"description": "d"}}, 200, "")
	bw := f.mk(admin, "qos/policies/"+q+"/bandwidth_limit_rules", "bandwidth_limit_rule", map[string]any{"max_kbps": 1000})["id"].(string)
	f.expect("PUT", "/v2.0/qos/policies/"+q+"/bandwidth_limit_rules/"+bw, admin, map[string]any{"bandwidth_limit_rule": map[string]any{"max_burst_kbps": 800}}, 200, "")
	d := f.mk(admin, "qos/policies/"+q+"/dscp_marking_rules", "dscp_marking_rule", map[string]any{"dscp_mark": 46})["id"].(string)
	f.expect("DELETE", "/v2.0/qos/policies/"+q+"/dscp_marking_rules/"+d, admin, nil, 204, "")
	f.expect("PUT", "/v2.0/ports/"+pid, alice, map[string]any{"port": map[string]any{"qos_policy_id": q}}, 200, "")
	f.expect("PUT", "/v2.0/networks/"+nid, alice, map[string]any{"network": map[string]any{"qos_policy_id": q}}, 200, "")
	gone := f.mk(admin, "qos/policies", "policy", map[string]any{"name": "gone"})["id"].(string)
	f.expect("DELETE", "/v2.0/qos/policies/"+gone, admin, nil, 204, "")
}

func qosRules(v map[string]any) []map[string]any {
	var out []map[string]any
	for _, r := range v["rules"].([]any) {
		out = append(out, r.(map[string]any))
	}
	return out
}

// TestQoSPoliciesAndRules covers the API as Neutron's reference words it:
// fields, admin-only writes, the enforced rule types and the refused
// ones, one rule per type and direction, policies in use.
func TestQoSPoliciesAndRules(t *testing.T) {
	f := newFixture(t)
	// Only admins write policies.
	f.expect("POST", "/v2.0/qos/policies", alice, map[string]any{"policy": map[string]any{"name": "x"}}, 403, "PolicyNotAuthorized")
	p := f.mk(admin, "qos/policies", "policy", map[string]any{"name": "gold", "description": "fast", "project_id": projA})
	q := p["id"].(string)
	for k, want := range map[string]any{"name": "gold", "description": "fast", "shared": false, "is_default": false, "project_id": projA, "tenant_id": projA, "revision_number": 0} {
		if fmt.Sprint(p[k]) != fmt.Sprint(want) {
			t.Errorf("policy %s = %v, want %v", k, p[k], want)
		}
	}
	if len(qosRules(p)) != 0 {
		t.Errorf("new policy has rules: %v", p["rules"])
	}
	// Its project sees it; another does not, until it is shared.
	f.expect("GET", "/v2.0/qos/policies/"+q, alice, nil, 200, "")
	f.expect("GET", "/v2.0/qos/policies/"+q, bob, nil, 404, "QosPolicyNotFound")
	f.expect("GET", "/v2.0/qos/policies/nope", alice, nil, 404, "QosPolicyNotFound")

	// Rules: bandwidth limits (egress by default, one per direction) and
	// one DSCP mark.
	base := "/v2.0/qos/policies/" + q
	f.expect("POST", base+"/bandwidth_limit_rules", alice, map[string]any{"bandwidth_limit_rule": map[string]any{"max_kbps": 1}}, 403, "PolicyNotAuthorized")
	f.expect("POST", base+"/bandwidth_limit_rules", admin, map[string]any{"bandwidth_limit_rule": map[string]any{}}, 400, "HTTPBadRequest", "max_kbps")
	f.expect("POST", base+"/bandwidth_limit_rules", admin, map[string]any{"bandwidth_limit_rule": map[string]any{"max_kbps": -1}}, 400, "HTTPBadRequest", "max_kbps")
	f.expect("POST", base+"/bandwidth_limit_rules", admin, map[string]any{"bandwidth_limit_rule": map[string]any{"max_kbps": 10, "direction": "up"}}, 400, "HTTPBadRequest", "direction")
	f.expect("POST", base+"/bandwidth_limit_rules", admin, map[string]any{"bandwidth_limit_rule": map[string]any{"max_kbps": 10, "min_kbps": 1}}, 400, "HTTPBadRequest", "min_kbps")
	bw := f.mk(admin, "qos/policies/"+q+"/bandwidth_limit_rules", "bandwidth_limit_rule", map[string]any{"max_kbps": 10000, "max_burst_kbps": 2000})
	if bw["direction"] != "egress" || fmt.Sprint(bw["max_kbps"]) != "10000" || fmt.Sprint(bw["max_burst_kbps"]) != "2000" {
		t.Errorf("bandwidth limit rule: %v", bw)
	}
	f.expect("POST", base+"/bandwidth_limit_rules", admin, map[string]any{"bandwidth_limit_rule": map[string]any{"max_kbps": 5}}, 409, "QoSRuleExists")
	in := f.mk(admin, "qos/policies/"+q+"/bandwidth_limit_rules", "bandwidth_limit_rule", map[string]any{"max_kbps": 5000, "direction": "ingress"})
	f.expect("PUT", base+"/bandwidth_limit_rules/"+in["id"].(string), admin, map[string]any{"bandwidth_limit_rule": map[string]any{"direction": "egress"}}, 409, "QoSRuleExists")
	got := f.expect("PUT", base+"/bandwidth_limit_rules/"+in["id"].(string), admin, map[string]any{"bandwidth_limit_rule": map[string]any{"max_kbps": 6000}}, 200, "")["bandwidth_limit_rule"].(map[string]any)
	if fmt.Sprint(got["max_kbps"]) != "6000" || got["direction"] != "ingress" {
		t.Errorf("updated rule: %v", got)
	}
	// Packet rate limits, beside the bandwidth limits of the same
	// direction.
	f.expect("POST", base+"/packet_rate_limit_rules", admin, map[string]any{"packet_rate_limit_rule": map[string]any{"max_burst_kpps": 1}}, 400, "HTTPBadRequest", "max_kpps")
	pps := f.mk(admin, "qos/policies/"+q+"/packet_rate_limit_rules", "packet_rate_limit_rule", map[string]any{"max_kpps": 100, "max_burst_kpps": 20})
	if pps["direction"] != "egress" || fmt.Sprint(pps["max_kpps"]) != "100" || fmt.Sprint(pps["max_burst_kpps"]) != "20" {
		t.Errorf("packet rate limit rule: %v", pps)
	}
	f.expect("POST", base+"/packet_rate_limit_rules", admin, map[string]any{"packet_rate_limit_rule": map[string]any{"max_kpps": 5}}, 409, "QoSRuleExists")
	f.expect("DELETE", base+"/packet_rate_limit_rules/"+pps["id"].(string), admin, nil, 204, "")
	f.expect("POST", base+"/dscp_marking_rules", admin, map[string]any{"dscp_marking_rule": map[string]any{"dscp_mark": 7}}, 400, "HTTPBadRequest", "dscp_mark")
	dscp := f.mk(admin, "qos/policies/"+q+"/dscp_marking_rules", "dscp_marking_rule", map[string]any{"dscp_mark": 46})
	f.expect("POST", base+"/dscp_marking_rules", admin, map[string]any{"dscp_marking_rule": map[string]any{"dscp_mark": 10}}, 409, "QoSRuleExists")
	f.expect("GET", base+"/dscp_marking_rules/"+dscp["id"].(string), alice, nil, 200, "")
	// A rule is found only under its own policy and type.
	f.expect("GET", base+"/bandwidth_limit_rules/"+dscp["id"].(string), alice, nil, 404, "QosRuleNotFound")
	list := f.expect("GET", base+"/bandwidth_limit_rules", alice, nil, 200, "")["bandwidth_limit_rules"].([]any)
	if len(list) != 2 {
		t.Errorf("bandwidth limit rules listed: %v", list)
	}
	pol := f.expect("GET", base, alice, nil, 200, "")["policy"].(map[string]any)
	var types []string
	for _, r := range qosRules(pol) {
		types = append(types, fmt.Sprint(r["type"], "/", r["qos_policy_id"] == q))
	}
	sort.Strings(types)
	if fmt.Sprint(types) != "[bandwidth_limit/true bandwidth_limit/true dscp_marking/true]" || fmt.Sprint(pol["revision_number"]) != "6" {
		t.Errorf("policy after 4 rules made, one updated, one deleted: rules %v, revision %v", types, pol["revision_number"])
	}

	// Rule types the dataplane cannot enforce are refused, and not listed.
	for _, c := range []string{"minimum_bandwidth_rules", "minimum_packet_rate_rules"} {
		f.expect("POST", base+"/"+c, admin, map[string]any{c[:len(c)-1]: map[string]any{"min_kbps": 1000}}, 400, "QosRuleNotSupported", "not supported")
	}
	rt := f.expect("GET", "/v2.0/qos/rule-types", alice, nil, 200, "")["rule_types"].([]any)
	if fmt.Sprint(rt) != "[map[type:bandwidth_limit] map[type:packet_rate_limit] map[type:dscp_marking]]" {
		t.Errorf("rule types: %v", rt)
	}
	f.expect("GET", "/v2.0/qos/rule-types/minimum_bandwidth", admin, nil, 404, "QosRuleTypeNotFound")
	det := f.expect("GET", "/v2.0/qos/rule-types/bandwidth_limit", admin, nil, 200, "")["rule_type"].(map[string]any)
	if len(det["drivers"].([]any)) != 1 {
		t.Errorf("rule type details: %v", det)
	}

	// Ports and networks name it; a port's own and its network's show.
	nid := f.network(alice, "n")["id"].(string)
	f.subnet(alice, nid, "10.0.0.0/24")
	pid := f.port(alice, nid)["id"].(string)
	port := f.expect("GET", "/v2.0/ports/"+pid, alice, nil, 200, "")["port"].(map[string]any)
	if port["qos_policy_id"] != nil || port["qos_network_policy_id"] != nil {
		t.Errorf("port without QoS: %v %v", port["qos_policy_id"], port["qos_network_policy_id"])
	}
	f.expect("PUT", "/v2.0/ports/"+pid, alice, map[string]any{"port": map[string]any{"qos_policy_id": "nope"}}, 404, "QosPolicyNotFound")
	f.expect("PUT", "/v2.0/ports/"+pid, alice, map[string]any{"port": map[string]any{"qos_network_policy_id": q}}, 400, "HTTPBadRequest")
	f.expect("PUT", "/v2.0/networks/"+nid, alice, map[string]any{"network": map[string]any{"qos_policy_id": q}}, 200, "")
	port = f.expect("PUT", "/v2.0/ports/"+pid, alice, map[string]any{"port": map[string]any{"qos_policy_id": q}}, 200, "")["port"].(map[string]any)
	if port["qos_policy_id"] != q || port["qos_network_policy_id"] != q {
		t.Errorf("port with QoS: %v %v", port["qos_policy_id"], port["qos_network_policy_id"])
	}
	// Another project may not name a policy it does not see.
	bnet := f.network(bob, "b")["id"].(string)
	f.expect("PUT", "/v2.0/networks/"+bnet, bob, map[string]any{"network": map[string]any{"qos_policy_id": q}}, 404, "QosPolicyNotFound")
	f.expect("POST", "/v2.0/networks", bob, map[string]any{"network": map[string]any{"name": "x", "qos_policy_id": q}}, 404, "QosPolicyNotFound")

	// Tags: an admin's to set, anyone's who sees the policy to filter on.
	f.expect("PUT", "/v2.0/policies/"+q+"/tags/blue", alice, nil, 403, "PolicyNotAuthorized")
	f.expect("PUT", "/v2.0/policies/"+q+"/tags/blue", admin, nil, 201, "") // Neutron tags QoS policies as /v2.0/policies
	if l := f.expect("GET", "/v2.0/qos/policies?tags=blue", alice, nil, 200, "")["policies"].([]any); len(l) != 1 || fmt.Sprint(l[0].(map[string]any)["tags"]) != "[blue]" {
		t.Errorf("policies tagged blue: %v", l)
	}

	// In use: not deleted; shared and used by another project: not
	// unshared.
	f.expect("DELETE", base, admin, nil, 409, "QosPolicyInUse")
	f.expect("PUT", base, admin, map[string]any{"policy": map[string]any{"shared": true}}, 200, "")
	f.expect("PUT", "/v2.0/networks/"+bnet, bob, map[string]any{"network": map[string]any{"qos_policy_id": q}}, 200, "")
	f.expect("PUT", base, admin, map[string]any{"policy": map[string]any{"shared": false}}, 409, "QosPolicyInUse", bnet)
	f.expect("PUT", "/v2.0/networks/"+bnet, bob, map[string]any{"network": map[string]any{"qos_policy_id": nil}}, 200, "")
	f.expect("PUT", "/v2.0/ports/"+pid, alice, map[string]any{"port": map[string]any{"qos_policy_id": nil}}, 200, "")
	f.expect("PUT", "/v2.0/networks/"+nid, alice, map[string]any{"network": map[string]any{"qos_policy_id": nil}}, 200, "")
	f.expect("DELETE", base, admin, nil, 204, "")
	f.expect("GET", base+"/bandwidth_limit_rules/"+bw["id"].(string), admin, nil, 404, "QosPolicyNotFound")
}

// TestQoSDefaultPolicy: a project's default policy (one at most) is the
// policy of its new networks that name none.
func TestQoSDefaultPolicy(t *testing.T) {
	f := newFixture(t)
	d := f.mk(admin, "qos/policies", "policy", map[string]any{"name": "d", "project_id": projA, "is_default": true})["id"].(string)
	f.expect("POST", "/v2.0/qos/policies", admin, map[string]any{"policy": map[string]any{"name": "e", "project_id": projA, "is_default": true}}, 409, "QoSPolicyDefaultAlreadyExists")
	other := f.mk(admin, "qos/policies", "policy", map[string]any{"name": "o", "project_id": projA})["id"].(string)
	f.expect("PUT", "/v2.0/qos/policies/"+other, admin, map[string]any{"policy": map[string]any{"is_default": true}}, 409, "QoSPolicyDefaultAlreadyExists")
	if n := f.network(alice, "n"); n["qos_policy_id"] != d {
		t.Errorf("new network's policy %v, want the default %s", n["qos_policy_id"], d)
	}
	if n := f.network(alice, "m", "qos_policy_id", other); n["qos_policy_id"] != other {
		t.Errorf("network naming a policy got %v, want %s", n["qos_policy_id"], other)
	}
	if n := f.network(bob, "b"); n["qos_policy_id"] != nil {
		t.Errorf("another project's network got policy %v", n["qos_policy_id"])
	}
}

// TestQoSExtensions lists the QoS extensions built, and only those.
func TestQoSExtensions(t *testing.T) {
	f := newFixture(t)
	for _, a := range []string{"qos", "qos-bw-limit-direction", "qos-default", "qos-rule-type-details", "qos-port-network-policy", "qos-pps"} {
		f.expect("GET", "/v2.0/extensions/"+a, alice, nil, 200, "")
	}
	for _, a := range []string{"qos-bw-minimum-ingress", "qos-pps-minimum", "qos-rules-alias", "qos-fip"} {
		f.expect("GET", "/v2.0/extensions/"+a, alice, nil, 404, "")
	}
}

// TestQoSRBAC shares a policy with one project by an RBAC policy: that
// project sees it and names it on its network; the sharing is not taken
// away while it does; a third project neither sees nor uses it; deleting
// the QoS policy takes its RBAC policies.
func TestQoSRBAC(t *testing.T) {
	f := newFixture(t)
	q := f.mk(admin, "qos/policies", "policy", map[string]any{"name": "q", "project_id": projA})["id"].(string)
	bnet := f.network(bob, "b")["id"].(string)
	f.expect("PUT", "/v2.0/networks/"+bnet, bob, map[string]any{"network": map[string]any{"qos_policy_id": q}}, 404, "QosPolicyNotFound")
	body := map[string]any{"rbac_policy": map[string]any{"object_type": "qos_policy", "object_id": q, "action": "access_as_shared", "target_tenant": projB}}
	// Only its project (or an admin) shares it, and only as shared.
	f.expect("POST", "/v2.0/rbac-policies", bob, body, 404, "QosPolicyNotFound")
	ext := map[string]any{"rbac_policy": map[string]any{"object_type": "qos_policy", "object_id": q, "action": "access_as_external", "target_tenant": projB}}
	f.expect("POST", "/v2.0/rbac-policies", admin, ext, 400, "InvalidActionForType")
	rb := f.expect("POST", "/v2.0/rbac-policies", alice, body, 201, "")["rbac_policy"].(map[string]any)["id"].(string)
	f.expect("GET", "/v2.0/qos/policies/"+q, bob, nil, 200, "")
	f.expect("PUT", "/v2.0/networks/"+bnet, bob, map[string]any{"network": map[string]any{"qos_policy_id": q}}, 200, "")
	f.expect("DELETE", "/v2.0/rbac-policies/"+rb, alice, nil, 409, "RbacPolicyInUse", bnet)
	f.expect("PUT", "/v2.0/rbac-policies/"+rb, alice, map[string]any{"rbac_policy": map[string]any{"target_tenant": "project-c"}}, 409, "RbacPolicyInUse")
	f.expect("PUT", "/v2.0/networks/"+bnet, bob, map[string]any{"network": map[string]any{"qos_policy_id": nil}}, 200, "")
	f.expect("DELETE", "/v2.0/rbac-policies/"+rb, alice, nil, 204, "")
	f.expect("GET", "/v2.0/qos/policies/"+q, bob, nil, 404, "QosPolicyNotFound")
	// A policy's RBAC policies go with it.
	rb = f.expect("POST", "/v2.0/rbac-policies", alice, body, 201, "")["rbac_policy"].(map[string]any)["id"].(string)
	f.expect("DELETE", "/v2.0/qos/policies/"+q, admin, nil, 204, "")
	f.expect("GET", "/v2.0/rbac-policies/"+rb, alice, nil, 404, "RbacPolicyNotFound")
}
