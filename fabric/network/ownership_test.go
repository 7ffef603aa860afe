package network

import "testing"

// TestPortsAndSubnetsOnlyOnOwnNetworks is Neutron's network ownership
// check: a member puts ports and subnets only on their project's networks
// and (ports) on shared ones. Another project's network is 404, as if it
// did not exist; an unshared external network, which every project sees,
// is 403. Admins may put ports anywhere.
func TestPortsAndSubnetsOnlyOnOwnNetworks(t *testing.T) {
	f := newFixture(t)
	own := f.network(alice, "net-a")["id"].(string)
	f.subnet(alice, own, "10.0.0.0/24")
	other := f.network(bob, "net-b")["id"].(string)
	f.subnet(bob, other, "10.1.0.0/24")
	ext := f.network(admin, "public", "router:external", true)["id"].(string)
	f.subnet(admin, ext, "172.24.4.0/24")
	shared := f.network(admin, "common", "shared", true)["id"].(string)
	f.subnet(admin, shared, "10.2.0.0/24")
	sharedExt := f.network(admin, "public2", "router:external", true, "shared", true)["id"].(string)
	f.subnet(admin, sharedExt, "172.24.5.0/24")

	port := func(netID string) map[string]any { return map[string]any{"port": map[string]any{"network_id": netID}} }
	subnet := func(netID, cidr string) map[string]any {
		return map[string]any{"subnet": map[string]any{"network_id": netID, "cidr": cidr, "ip_version": 4}}
	}
	f.expect("POST", "/v2.0/ports", alice, port(other), 404, "NetworkNotFound")
	f.expect("POST", "/v2.0/ports", alice, port(ext), 403, "HTTPForbidden", "Tenant "+projA+" not allowed to create port on this network")
	// In a bulk request, one refused port refuses them all.
	f.expect("POST", "/v2.0/ports", alice, map[string]any{"ports": []any{
		map[string]any{"network_id": own}, map[string]any{"network_id": ext}}}, 403, "HTTPForbidden")
	if _, body := f.call("GET", "/v2.0/ports?network_id="+own, alice, nil); len(body["ports"].([]any)) != 0 {
		t.Fatalf("the refused bulk request left ports: %v", body["ports"])
	}
	f.expect("POST", "/v2.0/subnets", alice, subnet(other, "10.9.0.0/24"), 404, "NetworkNotFound")
	f.expect("POST", "/v2.0/subnets", alice, subnet(ext, "172.24.9.0/24"), 403, "")
	f.expect("POST", "/v2.0/subnets", alice, subnet(shared, "10.2.9.0/24"), 403, "")

	f.port(alice, own)
	f.port(alice, shared)
	f.port(alice, sharedExt)
	for _, n := range []string{other, ext} {
		if p := f.port(admin, n); p["project_id"] != projAdm {
			t.Errorf("an admin's port on %s: project %v", n, p["project_id"])
		}
	}
	// An admin's port for alice's project on bob's network: the owner
	// check is the admin's to skip.
	if p := f.port(admin, other, "project_id", projA); p["project_id"] != projA {
		t.Errorf("an admin's port for project A: project %v", p["project_id"])
	}
}
