package network

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// A server's ports take and lose a security group of their project, as
// Nova's addSecurityGroup and removeSecurityGroup ask.
func TestServerPortSecurityGroups(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	pa := &api.Principal{UserID: "u-alice", ProjectID: projA, Roles: []string{"member", "reader"}}
	nid := f.network(alice, "net-a")["id"].(string)
	f.subnet(alice, nid, "10.0.0.0/24")
	sp := f.svc.ServerPorts()
	pt, err := sp.Create(ctx, pa, ServerPortRequest{NetworkID: nid, Project: projA, DeviceID: "server-1", DeviceOwner: "compute:nova"})
	if err != nil || len(pt.SecurityGroups) != 1 {
		t.Fatalf("create: %+v %v", pt, err)
	}
	def := pt.SecurityGroups[0]
	web := f.mk(alice, "security-groups", "security_group", map[string]any{"name": "web"})["id"].(string)
	theirs := f.mk(bob, "security-groups", "security_group", map[string]any{"name": "theirs"})["id"].(string)
	groups := func() []string {
		t.Helper()
		got, _, err := sp.Port(ctx, nil, pt.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.SecurityGroups
	}

	// Found by name or id in the project only.
	for _, ref := range []string{"web", web} {
		if g, err := sp.SecurityGroup(ctx, projA, ref); err != nil || g.ID != web || g.Name != "web" {
			t.Fatalf("group %s: %+v %v", ref, g, err)
		}
	}
	if g, err := sp.SecurityGroup(ctx, projA, "default"); err != nil || g.ID != def {
		t.Fatalf("default: %+v %v", g, err)
	}
	for _, ref := range []string{"theirs", theirs, "nope"} {
		if _, err := sp.SecurityGroup(ctx, projA, ref); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("group %s of another project or none: %v", ref, err)
		}
	}
	f.mk(alice, "security-groups", "security_group", map[string]any{"name": "twin"})
	f.mk(alice, "security-groups", "security_group", map[string]any{"name": "twin"})
	if _, err := sp.SecurityGroup(ctx, projA, "twin"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("ambiguous name: %v", err)
	}

	// Add, add again (no change), remove, remove again (no change).
	if changed, err := sp.SetPortSecurityGroup(ctx, pt.ID, web, true); err != nil || !changed {
		t.Fatalf("add: %v %v", changed, err)
	}
	if got := groups(); !slices.Equal(got, []string{def, web}) {
		t.Fatalf("after add: %v", got)
	}
	if changed, err := sp.SetPortSecurityGroup(ctx, pt.ID, web, true); err != nil || changed {
		t.Fatalf("add again: %v %v", changed, err)
	}
	if changed, err := sp.SetPortSecurityGroup(ctx, pt.ID, def, false); err != nil || !changed {
		t.Fatalf("remove: %v %v", changed, err)
	}
	if got := groups(); !slices.Equal(got, []string{web}) {
		t.Fatalf("after remove: %v", got)
	}
	if changed, err := sp.SetPortSecurityGroup(ctx, pt.ID, def, false); err != nil || changed {
		t.Fatalf("remove again: %v %v", changed, err)
	}
	// Another project's group is refused by the port's own check.
	if _, err := sp.SetPortSecurityGroup(ctx, pt.ID, theirs, true); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another project's group on the port: %v", err)
	}
	if got := groups(); !slices.Equal(got, []string{web}) {
		t.Fatalf("after refused add: %v", got)
	}
	if _, err := sp.SetPortSecurityGroup(ctx, "no-such-port", web, true); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing port: %v", err)
	}

	// The project's groups with their rules, for Nova's proxy.
	list, rules, err := sp.SecurityGroups(ctx, projA)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, g := range list {
		ids = append(ids, g.ID)
	}
	if len(ids) != 4 || !slices.Contains(ids, web) || !slices.Contains(ids, def) || slices.Contains(ids, theirs) {
		t.Fatalf("project's groups: %v", ids)
	}
	if len(rules[def]) == 0 {
		t.Fatalf("the default group has no rules: %v", rules)
	}
}
