package network

import (
	"sync"
	"testing"

	"github.com/rackstack/rackstack/fabric/store"
)

// autoWorld is a cloud ready for auto-allocation: a flat external network
// marked default, with a subnet, and shared default IPv4 and IPv6 pools.
func (f *fixture) autoWorld(v6 bool) (ext string) {
	ext = f.network(admin, "public", "router:external", true, "is_default", true,
		"provider:network_type", "flat", "provider:physical_network", "public")["id"].(string)
	f.subnet(admin, ext, "203.0.113.0/24")
	f.mk(admin, "subnetpools", "subnetpool", map[string]any{"name": "v4", "prefixes": []string{"10.100.0.0/16"}, "default_prefixlen": 26, "shared": true, "is_default": true})
	if v6 {
		f.mk(admin, "subnetpools", "subnetpool", map[string]any{"name": "v6", "prefixes": []string{"2001:db8::/48"}, "default_prefixlen": 64, "shared": true, "is_default": true})
	}
	return ext
}

func (f *fixture) namedNetworks(project, name string) []*Network {
	var out []*Network
	for _, n := range store.All[Network](f.local.State.Txn(), tNetworks, "id") {
		if n.Project == project && n.Name == name {
			out = append(out, n)
		}
	}
	return out
}

// TestAutoTopologyDryRun: the dry run names what the deployment lacks,
// as Neutron's 409 "Deployment error", and passes once it has it.
func TestAutoTopologyDryRun(t *testing.T) {
	f := newFixture(t)
	dry := "/v2.0/auto-allocated-topology/" + projA + "?fields=dry-run"
	f.expect("GET", dry, alice, nil, 409, "AutoAllocationFailure", "Deployment error: No default router:external network.")
	ext := f.network(admin, "public", "router:external", true, "provider:network_type", "flat", "provider:physical_network", "public")["id"].(string)
	f.expect("GET", dry, alice, nil, 409, "AutoAllocationFailure", "No default router:external network")
	f.expect("PUT", "/v2.0/networks/"+ext, alice, map[string]any{"network": map[string]any{"is_default": true}}, 403, "")
	n := f.expect("PUT", "/v2.0/networks/"+ext, admin, map[string]any{"network": map[string]any{"is_default": true}}, 200, "")["network"].(map[string]any)
	if n["is_default"] != true {
		t.Fatalf("is_default not set: %v", n)
	}
	f.expect("GET", dry, alice, nil, 409, "AutoAllocationFailure", "Deployment error: No default subnetpools defined.")
	f.mk(admin, "subnetpools", "subnetpool", map[string]any{"name": "v4", "prefixes": []string{"10.100.0.0/16"}, "shared": true, "is_default": true})
	top := f.expect("GET", dry, alice, nil, 200, "")["auto_allocated_topology"].(map[string]any)
	if top["id"] != "dry-run=pass" || top["tenant_id"] != projA {
		t.Fatalf("dry run: %v", top)
	}
	// A dry run allocates nothing; another project's is an admin's to ask.
	if len(f.namedNetworks(projA, autoNetworkName)) != 0 {
		t.Fatal("the dry run allocated a network")
	}
	f.expect("GET", "/v2.0/auto-allocated-topology/"+projB+"?fields=dry-run", alice, nil, 403, "NotAuthorized")
	f.expect("GET", "/v2.0/auto-allocated-topology/"+projA+"?fields=name", alice, nil, 400, "BadRequest", "Unrecognized field")
}

// TestDefaultExternalNetwork: is_default is on external networks only,
// admins' to set, and only one network is the default (409).
func TestDefaultExternalNetwork(t *testing.T) {
	f := newFixture(t)
	ext := f.autoWorld(false)
	other := f.network(admin, "public2", "router:external", true)["id"].(string)
	if n := f.expect("GET", "/v2.0/networks/"+other, admin, nil, 200, "")["network"].(map[string]any); n["is_default"] != false {
		t.Fatalf("external network's is_default: %v", n["is_default"])
	}
	if n := f.network(alice, "private"); n["is_default"] != nil {
		t.Fatalf("an internal network shows is_default: %v", n)
	}
	f.expect("PUT", "/v2.0/networks/"+other, admin, map[string]any{"network": map[string]any{"is_default": true}}, 409, "DefaultExternalNetworkExists", ext)
	f.expect("POST", "/v2.0/networks", admin, map[string]any{"network": map[string]any{"name": "x", "router:external": true, "is_default": true}}, 409, "DefaultExternalNetworkExists", ext)
	f.expect("POST", "/v2.0/networks", alice, map[string]any{"network": map[string]any{"name": "x", "is_default": true}}, 403, "PolicyNotAuthorized", "is_default")
	// Unsetting it frees the place.
	f.expect("PUT", "/v2.0/networks/"+ext, admin, map[string]any{"network": map[string]any{"is_default": false}}, 200, "")
	f.expect("PUT", "/v2.0/networks/"+other, admin, map[string]any{"network": map[string]any{"is_default": true}}, 200, "")
}

// TestAutoTopology: the first GET allocates the project's network (v4 and
// v6 subnets from the default pools), a router on the default external
// network with an interface on each subnet; later GETs return the same;
// DELETE takes it all down, and the next GET allocates anew.
func TestAutoTopology(t *testing.T) {
	f := newFixture(t)
	ext := f.autoWorld(true)
	path := "/v2.0/auto-allocated-topology/" + projA
	top := f.expect("GET", path, alice, nil, 200, "")["auto_allocated_topology"].(map[string]any)
	netID, _ := top["id"].(string)
	if top["tenant_id"] != projA || top["project_id"] != projA {
		t.Fatalf("topology: %v", top)
	}
	n := f.expect("GET", "/v2.0/networks/"+netID, alice, nil, 200, "")["network"].(map[string]any)
	if n["name"] != autoNetworkName || n["project_id"] != projA || n["admin_state_up"] != true || len(n["subnets"].([]any)) != 2 {
		t.Fatalf("network: %v", n)
	}
	subs := f.expect("GET", "/v2.0/subnets?network_id="+netID, alice, nil, 200, "")["subnets"].([]any)
	vers := map[float64]map[string]any{}
	for _, s := range subs {
		sm := s.(map[string]any)
		vers[sm["ip_version"].(float64)] = sm
	}
	if vers[4]["name"] != "auto_allocated_subnet_v4" || vers[4]["cidr"] != "10.100.0.0/26" || vers[6]["name"] != "auto_allocated_subnet_v6" || vers[6]["subnetpool_id"] == nil {
		t.Fatalf("subnets: %v", subs)
	}
	routers := f.expect("GET", "/v2.0/routers?name="+autoRouterName, alice, nil, 200, "")["routers"].([]any)
	if len(routers) != 1 {
		t.Fatalf("routers: %v", routers)
	}
	rt := routers[0].(map[string]any)
	if gw, _ := rt["external_gateway_info"].(map[string]any); gw == nil || gw["network_id"] != ext {
		t.Fatalf("router gateway: %v", rt)
	}
	ifaces := f.expect("GET", "/v2.0/ports?device_owner=network:router_interface&network_id="+netID, alice, nil, 200, "")["ports"].([]any)
	if len(ifaces) != 2 {
		t.Fatalf("router interfaces: %v", ifaces)
	}
	// The same again, for the member or an admin acting for it.
	if again := f.expect("GET", path, alice, nil, 200, "")["auto_allocated_topology"].(map[string]any); again["id"] != netID {
		t.Fatalf("second GET: %v, first %s", again, netID)
	}
	if again := f.expect("GET", path, admin, nil, 200, "")["auto_allocated_topology"].(map[string]any); again["id"] != netID {
		t.Fatalf("admin's GET: %v, first %s", again, netID)
	}
	// "None" is the caller's project, as Neutron takes it.
	if own := f.expect("GET", "/v2.0/auto-allocated-topology/None", alice, nil, 200, "")["auto_allocated_topology"].(map[string]any); own["id"] != netID {
		t.Fatalf("GET None: %v", own)
	}
	// A member neither reads nor deletes another project's.
	f.expect("GET", path, bob, nil, 403, "NotAuthorized")
	f.expect("DELETE", path, bob, nil, 403, "NotAuthorized")

	f.expect("DELETE", path, alice, nil, 204, "")
	f.expect("GET", "/v2.0/networks/"+netID, alice, nil, 404, "NetworkNotFound")
	f.expect("GET", "/v2.0/routers/"+rt["id"].(string), alice, nil, 404, "")
	f.expect("DELETE", path, alice, nil, 204, "") // none: nothing to do
	renewed := f.expect("GET", path, alice, nil, 200, "")["auto_allocated_topology"].(map[string]any)
	if renewed["id"] == netID || len(f.namedNetworks(projA, autoNetworkName)) != 1 {
		t.Fatalf("after delete: %v", renewed)
	}
	// Taken down by hand (interfaces, router, network), the topology is
	// forgotten with its network, and the next GET allocates anew.
	rid := f.expect("GET", "/v2.0/routers?name="+autoRouterName, alice, nil, 200, "")["routers"].([]any)[0].(map[string]any)["id"].(string)
	for _, sid := range f.expect("GET", "/v2.0/networks/"+renewed["id"].(string), alice, nil, 200, "")["network"].(map[string]any)["subnets"].([]any) {
		f.expect("PUT", "/v2.0/routers/"+rid+"/remove_router_interface", alice, map[string]any{"subnet_id": sid}, 200, "")
	}
	f.expect("DELETE", "/v2.0/routers/"+rid, alice, nil, 204, "")
	f.expect("DELETE", "/v2.0/networks/"+renewed["id"].(string), alice, nil, 204, "")
	if third := f.expect("GET", path, alice, nil, 200, "")["auto_allocated_topology"].(map[string]any); third["id"] == renewed["id"] {
		t.Fatalf("topology of a deleted network returned: %v", third)
	}
	f.expect("DELETE", path, admin, nil, 204, "") // an admin's, for the project
	if got := len(f.namedNetworks(projA, autoNetworkName)); got != 0 {
		t.Fatalf("%d networks after the admin's delete", got)
	}
}

// TestAutoTopologyConcurrent: requests at once for one project get one
// topology.
func TestAutoTopologyConcurrent(t *testing.T) {
	f := newFixture(t)
	f.autoWorld(false)
	const n = 6
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, body := f.call("GET", "/v2.0/auto-allocated-topology/"+projA, alice, nil)
			if code == 200 {
				ids[i], _ = body["auto_allocated_topology"].(map[string]any)["id"].(string)
			}
		}()
	}
	wg.Wait()
	for i, id := range ids {
		if id == "" || id != ids[0] {
			t.Fatalf("request %d got %q, request 0 %q", i, id, ids[0])
		}
	}
	if got := len(f.namedNetworks(projA, autoNetworkName)); got != 1 {
		t.Fatalf("%d auto-allocated networks, want 1", got)
	}
}

// TestAutoTopologyAllOrNothing: a step refused (the project's router
// quota, no free range in the pool) leaves nothing behind.
func TestAutoTopologyAllOrNothing(t *testing.T) {
	f := newFixture(t)
	f.autoWorld(false)
	f.expect("PUT", "/v2.0/quotas/"+projA, admin, map[string]any{"quota": map[string]any{"router": 0}}, 200, "")
	f.expect("GET", "/v2.0/auto-allocated-topology/"+projA, alice, nil, 409, "OverQuota", "router")
	if got := len(f.namedNetworks(projA, autoNetworkName)); got != 0 {
		t.Fatalf("%d networks left by a refused allocation", got)
	}
	for _, sn := range store.All[Subnet](f.local.State.Txn(), tSubnets, "id") {
		if sn.Project == projA {
			t.Fatalf("subnet left by a refused allocation: %+v", sn)
		}
	}
	// A pool with room for one: the second project's private network
	// cannot be provided.
	f2 := newFixture(t)
	ext := f2.network(admin, "public", "router:external", true, "is_default", true, "provider:network_type", "flat", "provider:physical_network", "public")["id"].(string)
	f2.subnet(admin, ext, "203.0.113.0/24")
	f2.mk(admin, "subnetpools", "subnetpool", map[string]any{"name": "v4", "prefixes": []string{"10.100.0.0/26"}, "default_prefixlen": 26, "shared": true, "is_default": true})
	f2.expect("GET", "/v2.0/auto-allocated-topology/"+projA, alice, nil, 200, "")
	f2.expect("GET", "/v2.0/auto-allocated-topology/"+projB, bob, nil, 409, "AutoAllocationFailure", "Deployment error: Unable to provide tenant private network.")
	if got := len(f2.namedNetworks(projB, autoNetworkName)); got != 0 {
		t.Fatalf("%d networks left by a refused allocation", got)
	}
}

// exerciseAutoTopology runs the auto-allocated topology's commands, for
// TestSnapshotRestoreEveryCommand: ext made the default, a default pool,
// a topology allocated, deleted, and allocated again (left in place).
func exerciseAutoTopology(f *fixture, ext string) {
	f.t.Helper()
	f.expect("PUT", "/v2.0/networks/"+ext, admin, map[string]any{"network": map[string]any{"is_default": true}}, 200, "")
	f.mk(admin, "subnetpools", "subnetpool", map[string]any{"name": "auto", "prefixes": []string{"10.120.0.0/16"}, "default_prefixlen": 26, "shared": true, "is_default": true})
	path := "/v2.0/auto-allocated-topology/" + projB
	f.expect("GET", path, bob, nil, 200, "")
	f.expect("DELETE", path, bob, nil, 204, "")
	f.expect("GET", path, bob, nil, 200, "")
}
