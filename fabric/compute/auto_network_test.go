package compute

import (
	"context"
	"testing"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// autoPorts is fakePorts with Neutron's auto-allocated topology: the
// first call makes the project's network, or fails with err.
type autoPorts struct {
	*fakePorts
	err   error
	calls int
}

func (a *autoPorts) AutoAllocatedNetwork(_ context.Context, p *api.Principal) (NetworkInfo, error) {
	a.calls++
	if a.err != nil {
		return NetworkInfo{}, a.err
	}
	id := "auto-" + p.ProjectID
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.networks[id]; !ok {
		a.addNetwork(id, "auto_allocated_network", p.ProjectID, false)
	}
	return a.networks[id], nil
}

// TestNetworksAuto: networks "auto" on a project with no network boots on
// its auto-allocated network (Nova's _auto_allocate_network), once; where
// none can be allocated the create is refused, 400, saying why.
func TestNetworksAuto(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	auto := func() map[string]any {
		return map[string]any{"server": map[string]any{"name": "a", "imageRef": img1, "flavorRef": "small", "networks": "auto"}}
	}
	// The admin's project has no network. A network service without
	// auto-allocation: Nova's refusal.
	f.expect("POST", "/v2.1/servers", admin, "2.37", auto(), 400, "badRequest", "Unable to automatically allocate a network for project project-admin")

	ap := &autoPorts{fakePorts: f.ports}
	f.svc.cfg.Ports = ap
	ap.err = store.Fault(store.KindConflict, "AutoAllocationFailure", "Deployment error: No default router:external network.")
	f.expect("POST", "/v2.1/servers", admin, "2.37", auto(), 400, "badRequest", "Unable to automatically allocate", "No default router:external network")
	if n := len(store.All[Server](f.local.State.Txn(), tServers, "id")); n != 0 {
		t.Fatalf("%d servers after a refused auto allocation", n)
	}

	ap.err = nil
	ap.calls = 0
	id := f.expect("POST", "/v2.1/servers", admin, "2.37", auto(), 202, "")["server"].(map[string]any)["id"].(string)
	if ap.calls != 1 {
		t.Fatalf("auto allocation asked %d times", ap.calls)
	}
	ap.mu.Lock()
	var on []string
	for _, pt := range ap.ports {
		if pt.DeviceID == id {
			on = append(on, pt.NetworkID)
		}
	}
	ap.mu.Unlock()
	if len(on) != 1 || on[0] != "auto-project-admin" {
		t.Fatalf("server's ports on %v, want the auto-allocated network", on)
	}
	// Now the project has a network: "auto" takes it, allocating nothing.
	f.expect("POST", "/v2.1/servers", admin, "2.37", auto(), 202, "")
	if ap.calls != 1 {
		t.Fatalf("auto allocation asked again (%d) though the project has a network", ap.calls)
	}
	// A project that has a network never allocates one.
	f.expect("POST", "/v2.1/servers", alice, "2.37", auto(), 202, "")
	if ap.calls != 1 {
		t.Fatalf("auto allocation asked for a project with a network (%d)", ap.calls)
	}
}
