package network

import "testing"

// TestQuotasOfRBACAndSubnetPools: rbac_policy and subnetpool are quota
// resources, set like the others and enforced where they are made.
func TestQuotasOfRBACAndSubnetPools(t *testing.T) {
	f := newFixture(t)
	q := f.expect("GET", "/v2.0/quotas/"+projA, alice, nil, 200, "")["quota"].(map[string]any)
	if q["rbac_policy"] != 10.0 || q["subnetpool"] != -1.0 {
		t.Fatalf("defaults: %v", q)
	}
	f.expect("PUT", "/v2.0/quotas/"+projA, admin, map[string]any{"quota": map[string]any{"rbac_policy": 1, "subnetpool": 1}}, 200, "")
	n := f.network(alice, "n")["id"].(string)
	f.expect("POST", "/v2.0/rbac-policies", alice, rbacBody(n, "access_as_shared", projB), 201, "")
	f.expect("POST", "/v2.0/rbac-policies", alice, rbacBody(n, "access_as_shared", "project-c"), 409, "OverQuota", "rbac_policy")
	f.mk(alice, "subnetpools", "subnetpool", map[string]any{"prefixes": []string{"10.60.0.0/16"}})
	f.expect("POST", "/v2.0/subnetpools", alice, map[string]any{"subnetpool": map[string]any{"prefixes": []string{"10.61.0.0/16"}}}, 409, "OverQuota", "subnetpool")
	d := f.expect("GET", "/v2.0/quotas/"+projA+"/details", alice, nil, 200, "")["quota"].(map[string]any)
	if r := d["rbac_policy"].(map[string]any); r["used"] != 1.0 || r["limit"] != 1.0 {
		t.Fatalf("rbac_policy details: %v", r)
	}
	if r := d["subnetpool"].(map[string]any); r["used"] != 1.0 {
		t.Fatalf("subnetpool details: %v", r)
	}
}
