package network

import (
	"context"
	"errors"
	"testing"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Nova's floating IP proxy works on the network API's own floating IPs,
// by the caller's rights: allocated on a pool (an external network by
// name or id, or the default), associated as a PUT port_id does (the
// same router, row and view), disassociated only at the revision asked,
// released; another project's are neither listed, found nor touched.
func TestNovaFloatingIPs(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	pa := &api.Principal{UserID: "u-alice", ProjectID: projA, Roles: []string{"member", "reader"}}
	pb := &api.Principal{UserID: "u-bob", ProjectID: projB, Roles: []string{"member", "reader"}}
	pc := &api.Principal{UserID: "u-reader", ProjectID: projA, Roles: []string{"reader"}}
	w := f.l3(alice)
	sp := f.svc.ServerPorts()

	if pools, err := sp.FloatingIPPools(ctx, pb); err != nil || len(pools) != 1 || pools[0].ID != w.ext {
		t.Fatalf("pools: %+v %v", pools, err)
	}
	for _, pool := range []string{"private", "nope", w.net} {
		if _, err := sp.AllocateFloatingIP(ctx, pa, pool); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("allocate from %q (not an external network): %v", pool, err)
		}
	}
	if _, err := sp.AllocateFloatingIP(ctx, pc, "public"); !errors.Is(err, store.ErrForbidden) {
		t.Fatalf("a reader allocates: %v", err)
	}
	mine, err := sp.AllocateFloatingIP(ctx, pa, "public")
	if err != nil || mine.Project != projA || mine.NetworkID != w.ext || mine.Pool != "public" || mine.FixedPortID != "" {
		t.Fatalf("allocated: %+v %v", mine, err)
	}
	// No pool: the only external network (none is marked default).
	theirs, err := sp.AllocateFloatingIP(ctx, pb, "")
	if err != nil || theirs.NetworkID != w.ext || theirs.Project != projB {
		t.Fatalf("allocated from the default pool: %+v %v", theirs, err)
	}
	if n := f.expect("GET", "/v2.0/floatingips/"+mine.ID, alice, nil, 200, "")["floatingip"].(map[string]any); n["floating_ip_address"] != mine.IP {
		t.Fatalf("Neutron's view of the allocated floating IP: %v", n)
	}

	// Scoping: listed, found and changed only in their project.
	if l, _ := sp.FloatingIPs(ctx, projA); len(l) != 1 || l[0].ID != mine.ID {
		t.Fatalf("project A's: %+v", l)
	}
	if _, err := sp.FloatingIP(ctx, pa, theirs.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("alice finds bob's: %v", err)
	}
	if _, err := sp.FloatingIPByAddress(ctx, pa, theirs.IP); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("alice finds bob's by address: %v", err)
	}
	if err := sp.SetFloatingIPPort(ctx, pa, theirs.ID, w.port, "", nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("alice associates bob's: %v", err)
	}
	if err := sp.SetFloatingIPPort(ctx, pb, theirs.ID, w.port, "", nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("bob associates his with alice's port: %v", err)
	}
	if err := sp.ReleaseFloatingIP(ctx, pa, theirs.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("alice releases bob's: %v", err)
	}

	// A port whose subnet has no router to the external network.
	lone := f.network(alice, "lone")["id"].(string)
	f.subnet(alice, lone, "10.2.0.0/24")
	lonePort := f.port(alice, lone)["id"].(string)
	if err := sp.SetFloatingIPPort(ctx, pa, mine.ID, lonePort, "", nil); store.KindOf(err) != store.KindNotFound || api.ProblemOf(err).Fault != "ExternalGatewayForFloatingIPNotFound" {
		t.Fatalf("associate with an unrouted port: %v", err)
	}

	// Associated: the row Neutron's PUT port_id makes.
	if err := sp.SetFloatingIPPort(ctx, pa, mine.ID, w.port, "10.1.0.2", nil); err != nil {
		t.Fatal(err)
	}
	n := f.expect("GET", "/v2.0/floatingips/"+mine.ID, alice, nil, 200, "")["floatingip"].(map[string]any)
	if n["port_id"] != w.port || n["fixed_ip_address"] != "10.1.0.2" || n["router_id"] != w.router {
		t.Fatalf("Neutron's view after the association: %v", n)
	}
	got, err := sp.FloatingIPByAddress(ctx, pa, mine.IP)
	if err != nil || got.FixedPortID != w.port || got.FixedIP != "10.1.0.2" {
		t.Fatalf("by address: %+v %v", got, err)
	}
	// A disassociation at an older revision changes nothing.
	stale := mine.Revision
	if err := sp.SetFloatingIPPort(ctx, pa, mine.ID, "", "", &stale); !errors.Is(err, store.ErrPrecondition) {
		t.Fatalf("disassociate at a stale revision: %v", err)
	}
	if now, _ := sp.FloatingIP(ctx, pa, mine.ID); now.FixedPortID != w.port {
		t.Fatalf("a stale disassociation changed it: %+v", now)
	}
	rev := got.Revision
	if err := sp.SetFloatingIPPort(ctx, pa, mine.ID, "", "", &rev); err != nil {
		t.Fatal(err)
	}
	if n := f.expect("GET", "/v2.0/floatingips/"+mine.ID, alice, nil, 200, "")["floatingip"].(map[string]any); n["port_id"] != nil || n["router_id"] != nil {
		t.Fatalf("Neutron's view after the disassociation: %v", n)
	}
	if err := sp.ReleaseFloatingIP(ctx, pa, mine.ID); err != nil {
		t.Fatal(err)
	}
	f.expect("GET", "/v2.0/floatingips/"+mine.ID, alice, nil, 404, "FloatingIPNotFound")
}
