package network

import (
	"context"
	"errors"
	"testing"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

func TestServerPorts(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	pa := &api.Principal{UserID: "u-alice", ProjectID: projA, Roles: []string{"member", "reader"}}
	pb := &api.Principal{UserID: "u-bob", ProjectID: projB, Roles: []string{"member", "reader"}}
	nid := f.network(alice, "net-a")["id"].(string)
	f.subnet(alice, nid, "10.0.0.0/24")
	shared := f.network(admin, "public", "shared", true)["id"].(string)
	f.network(bob, "net-b")
	sp := f.svc.ServerPorts()

	if n, err := sp.Network(ctx, pa, nid); err != nil || n.Name != "net-a" {
		t.Fatalf("network: %+v %v", n, err)
	}
	if _, err := sp.Network(ctx, pb, nid); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another project's network: %v", err)
	}
	nets, err := sp.Networks(ctx, pa)
	if err != nil || len(nets) != 2 || nets[0].ID != nid || nets[1].ID != shared {
		t.Fatalf("networks: %+v %v", nets, err)
	}
	pt, err := sp.Create(ctx, pa, ServerPortRequest{NetworkID: nid, Project: projA, DeviceID: "server-1", DeviceOwner: "compute:nova"})
	if err != nil || pt.DeviceID != "server-1" || len(pt.FixedIPs) != 1 || pt.MAC == "" || len(pt.SecurityGroups) != 1 {
		t.Fatalf("create: %+v %v", pt, err)
	}
	fixed, err := sp.Create(ctx, pa, ServerPortRequest{NetworkID: nid, Project: projA, DeviceID: "server-2", FixedIP: "10.0.0.50"})
	if err != nil || fixed.FixedIPs[0].IP != "10.0.0.50" {
		t.Fatalf("fixed ip: %+v %v", fixed, err)
	}
	g := f.mk(alice, "security-groups", "security_group", map[string]any{"name": "web"})["id"].(string)
	named, err := sp.Create(ctx, pa, ServerPortRequest{NetworkID: nid, Project: projA, DeviceID: "server-3", SecurityGroups: []string{"web", "default"}})
	if err != nil || len(named.SecurityGroups) != 2 || named.SecurityGroups[0] != g {
		t.Fatalf("named groups: %+v %v", named, err)
	}
	if _, err := sp.Create(ctx, pa, ServerPortRequest{NetworkID: nid, Project: projA, SecurityGroups: []string{"nope"}}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("unknown group: %v", err)
	}
	if _, err := sp.Create(ctx, pb, ServerPortRequest{NetworkID: nid, Project: projB}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another project's network: %v", err)
	}
	if err := sp.Bind(ctx, pt.ID, "server-1", "n1"); err != nil {
		t.Fatal(err)
	}
	got, name, err := sp.Port(ctx, nil, pt.ID)
	if err != nil || got.HostID != "n1" || name != "net-a" {
		t.Fatalf("bound: %+v %s %v", got, name, err)
	}
	if err := sp.Bind(ctx, pt.ID, "server-9", "n1"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("bind to another device: %v", err)
	}
	if _, _, err := sp.Port(ctx, pb, pt.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another project's port: %v", err)
	}
	if err := sp.Bind(ctx, pt.ID, "", ""); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := sp.Port(ctx, pa, pt.ID); got.DeviceID != "" || got.HostID != "" || got.DeviceOwner != "" {
		t.Fatalf("unbound: %+v", got)
	}
	if err := sp.Delete(ctx, pt.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sp.Port(ctx, nil, pt.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted: %v", err)
	}
}

// TestServerPortsOnExternalNetworks: Nova lets only admins put a guest on
// an external network that is not shared (network:attach_external_network),
// though every project sees it.
func TestServerPortsOnExternalNetworks(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	pa := &api.Principal{UserID: "u-alice", ProjectID: projA, Roles: []string{"member", "reader"}}
	pAdm := &api.Principal{UserID: "u-admin", ProjectID: projAdm, Roles: []string{"admin", "member", "reader"}}
	ext := f.network(admin, "public", "router:external", true)["id"].(string)
	f.subnet(admin, ext, "172.24.4.0/24")
	sp := f.svc.ServerPorts()
	if _, err := sp.Create(ctx, pa, ServerPortRequest{NetworkID: ext, Project: projA, DeviceID: "server-1"}); !errors.Is(err, store.ErrForbidden) {
		t.Fatalf("a member's guest on an external network: %v, want forbidden", err)
	}
	if p := api.ProblemOf(func() error {
		_, err := sp.Create(ctx, pa, ServerPortRequest{NetworkID: ext, Project: projA})
		return err
	}()); p.Fault != "ExternalNetworkAttachForbidden" {
		t.Errorf("fault %q, want ExternalNetworkAttachForbidden", p.Fault)
	}
	if _, err := sp.Create(ctx, pAdm, ServerPortRequest{NetworkID: ext, Project: projAdm, DeviceID: "server-2"}); err != nil {
		t.Fatalf("an admin's guest on an external network: %v", err)
	}
	shared := f.network(admin, "public-shared", "router:external", true, "shared", true)["id"].(string)
	f.subnet(admin, shared, "172.24.5.0/24")
	if _, err := sp.Create(ctx, pa, ServerPortRequest{NetworkID: shared, Project: projA, DeviceID: "server-3"}); err != nil {
		t.Fatalf("a member's guest on a shared external network: %v", err)
	}
}
