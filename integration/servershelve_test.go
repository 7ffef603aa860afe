//go:build integration

package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// checkShelve shelves a running guest with the openstack CLI and
// unshelves it: SHELVED_OFFLOADED with no QEMU, its disk in a
// "<name>-shelved" image; unshelved, ACTIVE in a new QEMU with the same
// addresses, and the shelved image deleted. (The host is not shown to a
// member, as in Nova: the unit tests check it.)
func checkShelve(t *testing.T, alice []string, vm serverInfo) {
	t.Helper()
	before := showServer(t, alice, vm.ID)
	openstack(t, alice, "server", "shelve", vm.ID)
	var s serverInfo
	if !eventually(2*time.Minute, func() bool { s = showServer(t, alice, vm.ID); return s.Status == "SHELVED_OFFLOADED" }) {
		t.Fatalf("%s is %s after its shelve", vm.ID, s.Status)
	}
	if !eventually(30*time.Second, func() bool { return qemuPID(t, vm.ID) == 0 }) {
		t.Fatalf("offloaded %s still has QEMU %d", vm.ID, qemuPID(t, vm.ID))
	}
	image := strings.TrimSpace(openstack(t, alice, "image", "show", "-f", "value", "-c", "id", vm.Name+"-shelved"))
	openstack(t, alice, "server", "unshelve", vm.ID)
	if !eventually(2*time.Minute, func() bool { s = showServer(t, alice, vm.ID); return s.Status == "ACTIVE" }) {
		t.Fatalf("%s is %s after its unshelve", vm.ID, s.Status)
	}
	if qemuPID(t, vm.ID) == 0 || fmt.Sprint(s.Addresses) != fmt.Sprint(before.Addresses) {
		t.Fatalf("unshelved %s: QEMU %d, addresses %v (were %v)", vm.ID, qemuPID(t, vm.ID), s.Addresses, before.Addresses)
	}
	if out, err := openstackErr(alice, "image", "show", image); err == nil {
		t.Errorf("the shelved image %s is kept after the unshelve:\n%s", image, out)
	}
}
