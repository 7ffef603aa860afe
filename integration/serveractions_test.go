//go:build integration

package integration

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// checkServerActions drives Nova's lock/unlock, os-resetState and
// add/remove security group on a running guest with the openstack CLI:
// the lock refuses the owner's stop, the security group lands on (and
// leaves) the server's ports in the network service, whose dataplane
// enforces them.
func checkServerActions(t *testing.T, admin, alice []string, vm serverInfo) {
	t.Helper()
	openstack(t, alice, "server", "lock", vm.ID)
	if out, err := openstackErr(alice, "server", "stop", vm.ID); err == nil || !strings.Contains(out, "is locked") {
		t.Fatalf("stop of a locked server: %v\n%s", err, out)
	}
	openstack(t, alice, "server", "unlock", vm.ID)
	// An admin resets the state (the server is active: it stays so).
	openstack(t, admin, "server", "set", "--state", "active", vm.ID)

	// Each port's groups as the network service has them (port show:
	// this CLI's port list asks for a field Neutron does not know).
	portGroups := func() [][]string {
		t.Helper()
		ids := strings.Fields(openstack(t, alice, "port", "list", "--device-id", vm.ID, "-f", "value", "-c", "ID"))
		if len(ids) == 0 {
			t.Fatalf("%s has no ports", vm.ID)
		}
		var groups [][]string
		for _, id := range ids {
			var p struct {
				Groups []string `json:"security_group_ids"`
			}
			out := openstack(t, alice, "port", "show", id, "-f", "json", "-c", "security_group_ids")
			if err := json.Unmarshal([]byte(out), &p); err != nil {
				t.Fatalf("port %s: %v\n%s", id, err, out)
			}
			groups = append(groups, p.Groups)
		}
		return groups
	}
	web := strings.TrimSpace(openstack(t, alice, "security", "group", "create", "-f", "value", "-c", "id", "web"))
	openstack(t, alice, "server", "add", "security", "group", vm.ID, "web")
	for _, g := range portGroups() {
		if !slices.Contains(g, web) || len(g) != 2 {
			t.Fatalf("after add security group, a port of %s has groups %v (want default and %s)", vm.ID, g, web)
		}
	}
	openstack(t, alice, "server", "remove", "security", "group", vm.ID, "web")
	for _, g := range portGroups() {
		if slices.Contains(g, web) || len(g) != 1 {
			t.Fatalf("after remove security group, a port of %s has groups %v", vm.ID, g)
		}
	}
}
