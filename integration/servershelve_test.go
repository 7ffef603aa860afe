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
// member, as in Nova: the unit tests check it.) A volume attached while
// it is offloaded (2.20) is in-use at once, and plugged into the new
// QEMU once the server is unshelved, with a device name; then detached.
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
	vol := createVolume(t, alice, "--size", "1", vm.Name+"-shelvevol")
	waitVolume(t, alice, vol.ID, "available", time.Minute)
	openstack(t, alice, "--os-compute-api-version", "2.20", "server", "add", "volume", vm.ID, vol.ID)
	if v := showVolume(t, alice, vol.ID); v.Status != "in-use" || len(v.Attachments) != 1 {
		t.Fatalf("%s attached to offloaded %s: %s, attachments %v", vol.ID, vm.ID, v.Status, v.Attachments)
	}
	openstack(t, alice, "server", "unshelve", vm.ID)
	if !eventually(2*time.Minute, func() bool { s = showServer(t, alice, vm.ID); return s.Status == "ACTIVE" }) {
		t.Fatalf("%s is %s after its unshelve", vm.ID, s.Status)
	}
	disk := "disk-" + strings.ReplaceAll(vol.ID, "-", "")[:24]
	if !eventually(2*time.Minute, func() bool {
		for _, b := range queryBlocks(t, vm.ID) {
			if strings.Contains(b.QDev, "/"+disk+"/") {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("the volume attached to %s while offloaded is not in its QEMU after the unshelve: %+v", vm.ID, queryBlocks(t, vm.ID))
	}
	if v := showVolume(t, alice, vol.ID); v.Status != "in-use" || len(v.Attachments) != 1 || v.Attachments[0]["device"] == "" || v.Attachments[0]["device"] == nil {
		t.Fatalf("%s after the unshelve: %s, attachments %v", vol.ID, v.Status, v.Attachments)
	}
	openstack(t, alice, "server", "remove", "volume", vm.ID, vol.ID)
	waitVolume(t, alice, vol.ID, "available", 2*time.Minute)
	openstack(t, alice, "volume", "delete", vol.ID)
	if qemuPID(t, vm.ID) == 0 || fmt.Sprint(s.Addresses) != fmt.Sprint(before.Addresses) {
		t.Fatalf("unshelved %s: QEMU %d, addresses %v (were %v)", vm.ID, qemuPID(t, vm.ID), s.Addresses, before.Addresses)
	}
	if out, err := openstackErr(alice, "image", "show", image); err == nil {
		t.Errorf("the shelved image %s is kept after the unshelve:\n%s", image, out)
	}
}
