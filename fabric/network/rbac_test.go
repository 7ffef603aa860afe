package network

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/api/apitest"
	"github.com/rackstack/rackstack/fabric/store"
)

func rbacBody(obj, action, target string) map[string]any {
	return map[string]any{"rbac_policy": map[string]any{"object_type": "network", "object_id": obj, "action": action, "target_tenant": target}}
}

// TestRBACSharesANetworkWithOneProject: alice shares her network with
// bob's project only; bob then sees it and its subnets and puts ports on
// it, a third project does not, and the policy cannot go while bob uses it.
func TestRBACSharesANetworkWithOneProject(t *testing.T) {
	f := newFixture(t)
	n := f.network(alice, "private")["id"].(string)
	sub := f.subnet(alice, n, "10.5.0.0/24")["id"].(string)
	// Before: bob neither sees nor uses it.
	f.expect("GET", "/v2.0/networks/"+n, bob, nil, 404, "NetworkNotFound")
	f.expect("POST", "/v2.0/ports", bob, map[string]any{"port": map[string]any{"network_id": n}}, 404, "NetworkNotFound")
	// Only the network's owner gives it away.
	f.expect("POST", "/v2.0/rbac-policies", bob, rbacBody(n, "access_as_shared", projB), 404, "NetworkNotFound")
	f.expect("POST", "/v2.0/rbac-policies", carol, rbacBody(n, "access_as_shared", projB), 403, "PolicyNotAuthorized")
	// To every project is an admin's.
	f.expect("POST", "/v2.0/rbac-policies", alice, rbacBody(n, "access_as_shared", "*"), 403, "PolicyNotAuthorized", "target_tenant")
	pol := f.expect("POST", "/v2.0/rbac-policies", alice, rbacBody(n, "access_as_shared", projB), 201, "")["rbac_policy"].(map[string]any)
	if pol["object_id"] != n || pol["target_tenant"] != projB || pol["project_id"] != projA || pol["action"] != "access_as_shared" || pol["object_type"] != "network" {
		t.Fatalf("policy: %v", pol)
	}
	id := pol["id"].(string)
	f.expect("POST", "/v2.0/rbac-policies", alice, rbacBody(n, "access_as_shared", projB), 409, "DuplicateRbacPolicy")

	// Bob sees the network as shared, and its subnet, and uses it.
	bn := f.expect("GET", "/v2.0/networks/"+n, bob, nil, 200, "")["network"].(map[string]any)
	if bn["shared"] != true {
		t.Fatalf("bob's view: %v", bn)
	}
	if an := f.expect("GET", "/v2.0/networks/"+n, alice, nil, 200, "")["network"].(map[string]any); an["shared"] != false {
		t.Fatalf("alice's view: %v", an)
	}
	f.expect("GET", "/v2.0/subnets/"+sub, bob, nil, 200, "")
	port := f.port(bob, n)["id"].(string)
	// Bob does not see the policy, nor change the network.
	f.expect("GET", "/v2.0/rbac-policies/"+id, bob, nil, 404, "RbacPolicyNotFound")
	if l := f.expect("GET", "/v2.0/rbac-policies", bob, nil, 200, "")["rbac_policies"].([]any); len(l) != 0 {
		t.Fatalf("bob lists %v", l)
	}
	f.expect("PUT", "/v2.0/networks/"+n, bob, map[string]any{"network": map[string]any{"name": "x"}}, 403, "PolicyNotAuthorized")

	// A third project still cannot see or use it.
	addMember(f, "eve-token", "project-e")
	f.expect("GET", "/v2.0/networks/"+n, "eve-token", nil, 404, "NetworkNotFound")
	f.expect("GET", "/v2.0/subnets/"+sub, "eve-token", nil, 404, "")
	f.expect("POST", "/v2.0/ports", "eve-token", map[string]any{"port": map[string]any{"network_id": n}}, 404, "NetworkNotFound")
	if l := f.expect("GET", "/v2.0/networks", "eve-token", nil, 200, "")["networks"].([]any); len(l) != 0 {
		t.Fatalf("eve lists %v", l)
	}

	// In use: the policy stays, and so does sharing by moving it away.
	f.expect("DELETE", "/v2.0/rbac-policies/"+id, alice, nil, 409, "RbacPolicyInUse")
	f.expect("PUT", "/v2.0/rbac-policies/"+id, alice, map[string]any{"rbac_policy": map[string]any{"target_tenant": "project-e"}}, 409, "RbacPolicyInUse")
	f.expect("PUT", "/v2.0/rbac-policies/"+id, alice, map[string]any{"rbac_policy": map[string]any{"action": "access_as_external"}}, 400, "HTTPBadRequest", "action")
	// Filters.
	if l := f.expect("GET", "/v2.0/rbac-policies?object_id="+n+"&action=access_as_shared", alice, nil, 200, "")["rbac_policies"].([]any); len(l) != 1 {
		t.Fatalf("filtered: %v", l)
	}
	f.expect("DELETE", "/v2.0/ports/"+port, bob, nil, 204, "")
	// Moved to another project: bob loses it, eve gets it.
	out := f.expect("PUT", "/v2.0/rbac-policies/"+id, alice, map[string]any{"rbac_policy": map[string]any{"target_tenant": "project-e"}}, 200, "")["rbac_policy"].(map[string]any)
	if out["id"] != id || out["target_tenant"] != "project-e" {
		t.Fatalf("updated: %v", out)
	}
	f.expect("GET", "/v2.0/networks/"+n, bob, nil, 404, "NetworkNotFound")
	f.expect("GET", "/v2.0/networks/"+n, "eve-token", nil, 200, "")
	f.expect("DELETE", "/v2.0/rbac-policies/"+id, alice, nil, 204, "")
	f.expect("GET", "/v2.0/networks/"+n, "eve-token", nil, 404, "NetworkNotFound")
	f.expect("DELETE", "/v2.0/rbac-policies/"+id, alice, nil, 404, "RbacPolicyNotFound")
}

// addMember adds a member's token of project to the fixture's tokens.
func addMember(f *fixture, tok, project string) {
	f.svc.cfg.Auth.(apitest.Tokens)[tok] = &api.Principal{UserID: "u-" + tok, ProjectID: project, Roles: []string{"member", "reader"}}
}

func TestRBACWildcardIsTheSharedFlag(t *testing.T) {
	f := newFixture(t)
	n := f.network(alice, "n")["id"].(string)
	f.subnet(alice, n, "10.6.0.0/24")
	// An admin's "*" policy shares it with every project.
	pol := f.expect("POST", "/v2.0/rbac-policies", admin, rbacBody(n, "access_as_shared", "*"), 201, "")["rbac_policy"].(map[string]any)
	if nv := f.expect("GET", "/v2.0/networks/"+n, alice, nil, 200, "")["network"].(map[string]any); nv["shared"] != true {
		t.Fatalf("after * policy: %v", nv)
	}
	port := f.port(bob, n)["id"].(string)
	f.expect("DELETE", "/v2.0/rbac-policies/"+pol["id"].(string), admin, nil, 409, "RbacPolicyInUse")
	f.expect("DELETE", "/v2.0/rbac-policies/"+pol["id"].(string), alice, nil, 403, "PolicyNotAuthorized")
	f.expect("DELETE", "/v2.0/ports/"+port, bob, nil, 204, "")
	f.expect("DELETE", "/v2.0/rbac-policies/"+pol["id"].(string), admin, nil, 204, "")
	if nv := f.expect("GET", "/v2.0/networks/"+n, alice, nil, 200, "")["network"].(map[string]any); nv["shared"] != false {
		t.Fatalf("after deleting the * policy: %v", nv)
	}
	// shared=True is the "*" policy, listed with the same id.
	f.expect("PUT", "/v2.0/networks/"+n, admin, map[string]any{"network": map[string]any{"shared": true}}, 200, "")
	l := f.expect("GET", "/v2.0/rbac-policies?object_id="+n, alice, nil, 200, "")["rbac_policies"].([]any)
	if len(l) != 1 || l[0].(map[string]any)["target_tenant"] != "*" || l[0].(map[string]any)["id"] != pol["id"] {
		t.Fatalf("policies of a shared network: %v", l)
	}
	f.expect("POST", "/v2.0/rbac-policies", admin, rbacBody(n, "access_as_shared", "*"), 409, "DuplicateRbacPolicy")
	// A project's own policy keeps its port when the flag goes.
	f.expect("POST", "/v2.0/rbac-policies", alice, rbacBody(n, "access_as_shared", projB), 201, "")
	f.port(bob, n)
	f.expect("PUT", "/v2.0/networks/"+n, admin, map[string]any{"network": map[string]any{"shared": false}}, 200, "")
	f.expect("GET", "/v2.0/networks/"+n, bob, nil, 200, "")
	// The network's policies go with it.
	for _, p := range f.expect("GET", "/v2.0/ports?network_id="+n, admin, nil, 200, "")["ports"].([]any) {
		f.expect("DELETE", "/v2.0/ports/"+p.(map[string]any)["id"].(string), admin, nil, 204, "")
	}
	f.expect("DELETE", "/v2.0/networks/"+n, alice, nil, 204, "")
	if l := f.expect("GET", "/v2.0/rbac-policies", admin, nil, 200, "")["rbac_policies"].([]any); len(l) != 0 {
		t.Fatalf("policies left: %v", l)
	}
}

func TestRBACExternalToOneProject(t *testing.T) {
	f := newFixture(t)
	f.svc.cfg.Forwarding = true
	ext := f.network(admin, "outside", "provider:network_type", "flat", "provider:physical_network", "public")["id"].(string)
	f.subnet(admin, ext, "172.25.0.0/24")
	gw := map[string]any{"router": map[string]any{"name": "r", "external_gateway_info": map[string]any{"network_id": ext}}}
	f.expect("POST", "/v2.0/routers", alice, gw, 404, "NetworkNotFound")
	// Making a network external to a project is an admin's.
	f.expect("POST", "/v2.0/rbac-policies", alice, rbacBody(ext, "access_as_external", projA), 403, "PolicyNotAuthorized")
	pol := f.expect("POST", "/v2.0/rbac-policies", admin, rbacBody(ext, "access_as_external", projA), 201, "")["rbac_policy"].(map[string]any)
	if nv := f.expect("GET", "/v2.0/networks/"+ext, alice, nil, 200, "")["network"].(map[string]any); nv["router:external"] != true {
		t.Fatalf("alice's view: %v", nv)
	}
	r := f.expect("POST", "/v2.0/routers", alice, gw, 201, "")["router"].(map[string]any)["id"].(string)
	// Bob neither sees it nor takes a gateway or floating IP on it.
	f.expect("GET", "/v2.0/networks/"+ext, bob, nil, 404, "NetworkNotFound")
	f.expect("POST", "/v2.0/routers", bob, gw, 404, "NetworkNotFound")
	f.expect("POST", "/v2.0/floatingips", bob, map[string]any{"floatingip": map[string]any{"floating_network_id": ext}}, 404, "NetworkNotFound")
	// In use by alice's router.
	f.expect("DELETE", "/v2.0/rbac-policies/"+pol["id"].(string), admin, nil, 409, "RbacPolicyInUse")
	f.expect("PUT", "/v2.0/routers/"+r, alice, map[string]any{"router": map[string]any{"external_gateway_info": nil}}, 200, "")
	f.expect("DELETE", "/v2.0/rbac-policies/"+pol["id"].(string), admin, nil, 204, "")
	// The last external policy gone, the network is internal again.
	if nv := f.expect("GET", "/v2.0/networks/"+ext, admin, nil, 200, "")["network"].(map[string]any); nv["router:external"] != false {
		t.Fatalf("after the last policy: %v", nv)
	}
	f.expect("GET", "/v2.0/networks/"+ext, alice, nil, 404, "NetworkNotFound")
}

func TestRBACRefusesOtherObjectTypes(t *testing.T) {
	f := newFixture(t)
	n := f.network(alice, "n")["id"].(string)
	for _, typ := range []string{"address_scope", "subnetpool"} {
		b := rbacBody(n, "access_as_shared", projB)
		b["rbac_policy"].(map[string]any)["object_type"] = typ
		out := f.expect("POST", "/v2.0/rbac-policies", alice, b, 400, "HTTPBadRequest", "object_type")
		if msg := out["NeutronError"].(map[string]any)["message"].(string); !strings.Contains(msg, typ) {
			t.Fatalf("%s: %s", typ, msg)
		}
	}
	b := rbacBody(n, "access_as_shared", projB)
	b["rbac_policy"].(map[string]any)["object_type"] = "nonsense"
	f.expect("POST", "/v2.0/rbac-policies", alice, b, 400, "HTTPBadRequest", "object_type")
	f.expect("POST", "/v2.0/rbac-policies", alice, rbacBody(n, "access_as_owner", projB), 400, "InvalidActionForType")
	f.expect("POST", "/v2.0/rbac-policies", alice, map[string]any{"rbac_policy": map[string]any{"object_type": "network", "object_id": n, "action": "access_as_shared"}}, 400, "HTTPBadRequest", "target_tenant")
	f.expect("POST", "/v2.0/rbac-policies", alice, rbacBody("nope", "access_as_shared", projB), 404, "NetworkNotFound")
	if l := f.expect("GET", "/v2.0/rbac-policies", admin, nil, 200, "")["rbac_policies"].([]any); len(l) != 0 {
		t.Fatalf("refused requests left policies: %v", l)
	}
}

// TestPortBySharingRecheckedWhenApplied: a port allowed by a policy when
// the request was read is refused if the policy went before the command
// was applied.
func TestPortBySharingRecheckedWhenApplied(t *testing.T) {
	f := newFixture(t)
	n := f.network(alice, "n")["id"].(string)
	f.subnet(alice, n, "10.9.0.0/24")
	pol := f.expect("POST", "/v2.0/rbac-policies", alice, rbacBody(n, "access_as_shared", projB), 201, "")["rbac_policy"].(map[string]any)["id"].(string)
	// What bob's request made while the policy stood...
	spec := portSpec{Port: Port{ID: "p-late", NetworkID: n, Project: projB, AdminStateUp: true, Status: "DOWN", VNICType: "normal"}, BySharing: true}
	// ...applied after the policy went.
	f.expect("DELETE", "/v2.0/rbac-policies/"+pol, alice, nil, 204, "")
	_, err := f.local.Propose(context.Background(), cmdPortCreate, portCreateCmd{Ports: []portSpec{spec}})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("late port: %v", err)
	}
	// With the policy, the same command goes through.
	f.expect("POST", "/v2.0/rbac-policies", alice, rbacBody(n, "access_as_shared", projB), 201, "")
	if _, err := f.local.Propose(context.Background(), cmdPortCreate, portCreateCmd{Ports: []portSpec{spec}}); err != nil {
		t.Fatalf("port with the policy: %v", err)
	}
}
