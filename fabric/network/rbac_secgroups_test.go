package network

import "testing"

// TestSecurityGroupRBAC: an access_as_shared policy on a security group
// lets its target see the group, put its ports in it and name it as a
// remote group, not change it or share it on; the policy cannot go or
// move while the target uses it; deleting the group takes its policies.
func TestSecurityGroupRBAC(t *testing.T) {
	f := newFixture(t)
	sg := f.mk(alice, "security-groups", "security_group", map[string]any{"name": "web"})["id"].(string)
	share := func(target string) map[string]any {
		return map[string]any{"rbac_policy": map[string]any{"object_type": "security_group", "object_id": sg, "action": "access_as_shared", "target_tenant": target}}
	}
	n := f.network(bob, "bnet")["id"].(string)
	f.subnet(bob, n, "10.9.0.0/24")
	inGroup := map[string]any{"port": map[string]any{"network_id": n, "security_groups": []string{sg}}}

	// Before: bob neither sees nor uses it, nor may share it.
	f.expect("GET", "/v2.0/security-groups/"+sg, bob, nil, 404, "SecurityGroupNotFound")
	f.expect("POST", "/v2.0/ports", bob, inGroup, 404, "SecurityGroupNotFound")
	f.expect("POST", "/v2.0/rbac-policies", bob, share(projB), 404, "SecurityGroupNotFound")
	f.expect("POST", "/v2.0/rbac-policies", alice, map[string]any{"rbac_policy": map[string]any{"object_type": "security_group", "object_id": sg, "action": "access_as_external", "target_tenant": projB}}, 400, "InvalidActionForType")
	f.expect("POST", "/v2.0/rbac-policies", alice, share("*"), 403, "PolicyNotAuthorized", "target_tenant")

	pol := f.expect("POST", "/v2.0/rbac-policies", alice, share(projB), 201, "")["rbac_policy"].(map[string]any)
	if pol["object_type"] != "security_group" || pol["object_id"] != sg || pol["target_tenant"] != projB || pol["project_id"] != projA {
		t.Fatalf("policy: %v", pol)
	}
	id := pol["id"].(string)
	f.expect("POST", "/v2.0/rbac-policies", alice, share(projB), 409, "DuplicateRbacPolicy")

	// Bob sees it, as shared, and uses it; alice's own view is not shared.
	if g := f.expect("GET", "/v2.0/security-groups/"+sg, bob, nil, 200, "")["security_group"].(map[string]any); g["shared"] != true {
		t.Errorf("bob's view: %v", g)
	}
	if g := f.expect("GET", "/v2.0/security-groups/"+sg, alice, nil, 200, "")["security_group"].(map[string]any); g["shared"] != false {
		t.Errorf("alice's view: %v", g)
	}
	port := f.expect("POST", "/v2.0/ports", bob, inGroup, 201, "")["port"].(map[string]any)["id"].(string)
	bg := f.mk(bob, "security-groups", "security_group", map[string]any{"name": "b"})["id"].(string)
	rule := f.mk(bob, "security-group-rules", "security_group_rule", map[string]any{"security_group_id": bg, "direction": "ingress", "remote_group_id": sg})["id"].(string)
	// Not bob's to change, add rules to, delete or share on.
	// Seen, so Neutron's 403 rather than 404.
	f.expect("PUT", "/v2.0/security-groups/"+sg, bob, map[string]any{"security_group": map[string]any{"name": "x"}}, 403, "PolicyNotAuthorized")
	f.expect("POST", "/v2.0/security-group-rules", bob, map[string]any{"security_group_rule": map[string]any{"security_group_id": sg, "direction": "ingress"}}, 403, "PolicyNotAuthorized")
	f.expect("DELETE", "/v2.0/security-groups/"+sg, bob, nil, 403, "PolicyNotAuthorized")
	f.expect("POST", "/v2.0/rbac-policies", bob, share("project-c"), 400, "HTTPBadRequest", "object_id")
	if l := f.expect("GET", "/v2.0/rbac-policies", bob, nil, 200, "")["rbac_policies"].([]any); len(l) != 0 {
		t.Errorf("bob sees policies %v", l)
	}

	// In use by bob's port: the policy stays, and so does the group.
	f.expect("DELETE", "/v2.0/rbac-policies/"+id, alice, nil, 409, "RbacPolicyInUse", port)
	f.expect("PUT", "/v2.0/rbac-policies/"+id, alice, map[string]any{"rbac_policy": map[string]any{"target_tenant": "project-c"}}, 409, "RbacPolicyInUse")
	f.expect("DELETE", "/v2.0/security-groups/"+sg, alice, nil, 409, "SecurityGroupInUse")
	f.expect("DELETE", "/v2.0/ports/"+port, bob, nil, 204, "")
	// Then by bob's rule naming it as remote group.
	f.expect("DELETE", "/v2.0/rbac-policies/"+id, alice, nil, 409, "RbacPolicyInUse", rule)
	f.expect("DELETE", "/v2.0/security-group-rules/"+rule, bob, nil, 204, "")
	// Unused: moved to another project, bob loses it.
	moved := f.expect("PUT", "/v2.0/rbac-policies/"+id, alice, map[string]any{"rbac_policy": map[string]any{"target_tenant": "project-c"}}, 200, "")["rbac_policy"].(map[string]any)
	if moved["id"] != id || moved["target_tenant"] != "project-c" {
		t.Errorf("moved: %v", moved)
	}
	f.expect("GET", "/v2.0/security-groups/"+sg, bob, nil, 404, "SecurityGroupNotFound")
	f.expect("DELETE", "/v2.0/security-groups/"+sg, bob, nil, 404, "SecurityGroupNotFound")
	// A deleted group takes its policies with it.
	f.expect("DELETE", "/v2.0/security-groups/"+sg, alice, nil, 204, "")
	f.expect("GET", "/v2.0/rbac-policies/"+id, admin, nil, 404, "RbacPolicyNotFound")
}

// TestSecurityGroupRBACPortApplyChecksSharing: the port's apply refuses a
// group its project neither owns nor has shared, whatever the handler
// saw: an admin's port for bob in alice's group.
func TestSecurityGroupRBACPortApplyChecksSharing(t *testing.T) {
	f := newFixture(t)
	sg := f.mk(alice, "security-groups", "security_group", map[string]any{"name": "web"})["id"].(string)
	n := f.network(bob, "bnet")["id"].(string)
	body := map[string]any{"port": map[string]any{"network_id": n, "security_groups": []string{sg}, "project_id": projB}}
	f.expect("POST", "/v2.0/ports", admin, body, 404, "SecurityGroupNotFound", sg)
	f.expect("POST", "/v2.0/rbac-policies", admin, map[string]any{"rbac_policy": map[string]any{"object_type": "security_group", "object_id": sg, "action": "access_as_shared", "target_tenant": "*"}}, 201, "")
	f.expect("POST", "/v2.0/ports", admin, body, 201, "")
}
