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

// Nova's proxy makes, changes and deletes groups and rules through the
// same commands as Neutron's API: Neutron shows what the proxy made, the
// checks are Neutron's, and a project never reaches another's groups.
func TestNovaProxyGroupWrites(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	sp := f.svc.ServerPorts()
	kind := func(err error, want error, what string) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Fatalf("%s: %v, want %v", what, err, want)
		}
	}

	g, err := sp.CreateSecurityGroup(ctx, projA, "web", "web servers")
	if err != nil || g.Project != projA || g.Name != "web" {
		t.Fatalf("create: %+v %v", g, err)
	}
	shown := f.expect("GET", "/v2.0/security-groups/"+g.ID, alice, nil, 200, "")["security_group"].(map[string]any)
	if shown["description"] != "web servers" || len(shown["security_group_rules"].([]any)) != 2 {
		t.Fatalf("Neutron shows %v", shown)
	}
	f.expect("GET", "/v2.0/security-groups/"+g.ID, bob, nil, 404, "SecurityGroupNotFound")
	_, err = sp.CreateSecurityGroup(ctx, projA, "Default", "")
	kind(err, store.ErrConflict, "a second default")

	name := "www"
	if g2, err := sp.UpdateSecurityGroup(ctx, projA, g.ID, &name, nil); err != nil || g2.Name != "www" || g2.Description != "web servers" {
		t.Fatalf("update: %+v %v", g2, err)
	}
	_, err = sp.UpdateSecurityGroup(ctx, projB, g.ID, &name, nil)
	kind(err, store.ErrNotFound, "update of another project's group")

	port := 22
	rl := SecurityGroupRule{GroupID: g.ID, Protocol: "tcp", PortMin: &port, PortMax: &port, RemoteIPPrefix: "2001:db8::/32"}
	made, err := sp.CreateSecurityGroupRule(ctx, projA, rl)
	if err != nil || made.Direction != "ingress" || made.EtherType != "IPv6" || made.Protocol != "6" || made.ProtocolName != "tcp" {
		t.Fatalf("rule: %+v %v", made, err)
	}
	f.expect("GET", "/v2.0/security-group-rules/"+made.ID, alice, nil, 200, "")
	// A range with host bits: enforced by its network, shown as given,
	// as Neutron keeps it; the same range by its network is the same rule.
	hosts := SecurityGroupRule{GroupID: g.ID, Protocol: "udp", PortMin: &port, PortMax: &port, RemoteIPPrefix: "10.2.3.124/24"}
	r, err := sp.CreateSecurityGroupRule(ctx, projA, hosts)
	if err != nil || r.RemoteIPPrefix != "10.2.3.0/24" || r.RemoteIPPrefixGiven != "10.2.3.124/24" || r.EtherType != "IPv4" {
		t.Fatalf("range rule: %+v %v", r, err)
	}
	viaNeutron := f.expect("GET", "/v2.0/security-group-rules/"+r.ID, alice, nil, 200, "")["security_group_rule"].(map[string]any)
	if viaNeutron["remote_ip_prefix"] != "10.2.3.124/24" {
		t.Fatalf("Neutron shows %v", viaNeutron)
	}
	hosts.RemoteIPPrefix = "10.2.3.0/24"
	_, err = sp.CreateSecurityGroupRule(ctx, projA, hosts)
	kind(err, store.ErrConflict, "the same range by its network")
	_, err = sp.CreateSecurityGroupRule(ctx, projA, rl)
	kind(err, store.ErrConflict, "the same rule again")
	_, err = sp.CreateSecurityGroupRule(ctx, projB, rl)
	kind(err, store.ErrNotFound, "a rule in another project's group")
	low := 30
	bad := SecurityGroupRule{GroupID: g.ID, Protocol: "tcp", PortMin: &low, PortMax: &port}
	_, err = sp.CreateSecurityGroupRule(ctx, projA, bad)
	kind(err, store.ErrInvalid, "min above max")
	theirs, err := sp.CreateSecurityGroup(ctx, projB, "theirs", "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = sp.CreateSecurityGroupRule(ctx, projA, SecurityGroupRule{GroupID: g.ID, RemoteGroupID: theirs.ID})
	kind(err, store.ErrNotFound, "a rule from another project's group")

	kind(sp.DeleteSecurityGroupRule(ctx, projB, made.ID), store.ErrNotFound, "delete of another project's rule")
	if err := sp.DeleteSecurityGroupRule(ctx, projA, made.ID); err != nil {
		t.Fatal(err)
	}
	f.expect("GET", "/v2.0/security-group-rules/"+made.ID, alice, nil, 404, "SecurityGroupRuleNotFound")

	def, err := sp.SecurityGroup(ctx, projA, "default")
	if err != nil {
		t.Fatal(err)
	}
	kind(sp.DeleteSecurityGroup(ctx, projA, def.ID), store.ErrConflict, "delete of the default group")
	kind(sp.DeleteSecurityGroup(ctx, projB, g.ID), store.ErrNotFound, "delete of another project's group")
	nid := f.network(alice, "net-a")["id"].(string)
	f.subnet(alice, nid, "10.0.0.0/24")
	pt := f.port(alice, nid, "security_groups", []any{g.ID})
	kind(sp.DeleteSecurityGroup(ctx, projA, g.ID), store.ErrConflict, "delete of a group in use")
	f.expect("DELETE", "/v2.0/ports/"+pt["id"].(string), alice, nil, 204, "")
	if err := sp.DeleteSecurityGroup(ctx, projA, g.ID); err != nil {
		t.Fatal(err)
	}
	f.expect("GET", "/v2.0/security-groups/"+g.ID, alice, nil, 404, "SecurityGroupNotFound")
	if err := sp.DeleteSecurityGroup(ctx, "", def.ID); err != nil {
		t.Fatalf("an admin deletes a default group, as in Neutron: %v", err)
	}
}
