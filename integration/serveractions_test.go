//go:build integration

package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// snapshotMarker is what vm1's user data writes to its root disk, 100 MiB
// in (past the image's 64 MiB, in what the 1 GiB root disk adds), for
// its snapshot to carry.
const snapshotMarker = "RACKSTACK-SNAPSHOT-MARKER"

// checkServerImage snapshots a running guest with the openstack CLI
// (Nova's createImage, server image create --wait): the image becomes
// active, private, with Nova's snapshot properties and the caller's, and
// its data is the guest's disk flattened (qcow2, no backing file) with
// what the guest wrote; the guest runs on (the same QEMU) and the server
// is ACTIVE with no task. (The action log's createImage is the unit
// tests'.)
func checkServerImage(t *testing.T, alice []string, vm serverInfo) {
	t.Helper()
	pid := qemuPID(t, vm.ID)
	out := openstack(t, alice, "server", "image", "create", "--name", "vm1-snap", "--property", "purpose=itest", "--wait", "-f", "json", vm.ID)
	var made struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(out), &made); err != nil || made.ID == "" {
		t.Fatalf("server image create: %v\n%s", err, out)
	}
	var sv struct {
		Status string `json:"status"`
		Task   any    `json:"OS-EXT-STS:task_state"`
		Image  any    `json:"image"` // "name (id)"
	}
	out = openstack(t, alice, "server", "show", "-f", "json", vm.ID)
	if err := json.Unmarshal([]byte(out), &sv); err != nil {
		t.Fatalf("server show: %v\n%s", err, out)
	}
	if sv.Status != "ACTIVE" || (sv.Task != nil && sv.Task != "None" && sv.Task != "") || qemuPID(t, vm.ID) != pid {
		t.Errorf("after its snapshot %s is %s, task %v, with QEMU %d (was %d)", vm.ID, sv.Status, sv.Task, qemuPID(t, vm.ID), pid)
	}
	baseImage := regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`).FindString(fmt.Sprint(sv.Image))
	if baseImage == "" {
		t.Fatalf("no image id in the server's image: %v", sv.Image)
	}
	var img map[string]any
	out = openstack(t, alice, "image", "show", "-f", "json", made.ID)
	if err := json.Unmarshal([]byte(out), &img); err != nil {
		t.Fatalf("image show: %v\n%s", err, out)
	}
	props, _ := json.Marshal(img["properties"])
	size, _ := img["size"].(float64)
	if img["status"] != "active" || img["visibility"] != "private" || img["disk_format"] != "qcow2" || size <= 0 {
		t.Fatalf("the snapshot image: %s", out)
	}
	for _, want := range []string{"image_type", "snapshot", "instance_uuid", vm.ID, "base_image_ref", baseImage, "purpose", "itest"} {
		if !bytes.Contains(props, []byte(want)) {
			t.Errorf("the snapshot's properties lack %q: %s", want, props)
		}
	}
	file := filepath.Join(t.TempDir(), "snap.qcow2")
	openstack(t, alice, "image", "save", "--file", file, made.ID)
	info, err := exec.Command("qemu-img", "info", "--output", "json", file).CombinedOutput()
	if err != nil || !bytes.Contains(info, []byte(`"format": "qcow2"`)) || bytes.Contains(info, []byte("backing-filename")) {
		t.Fatalf("the snapshot's data is not a flat qcow2: %v\n%s", err, info)
	}
	at := filepath.Join(t.TempDir(), "at100M.raw")
	// qemu-img dd's count includes the blocks skipped.
	if out, err := exec.Command("qemu-img", "dd", "-f", "qcow2", "-O", "raw", "bs=1M", "skip=100", "count=101", "if="+file, "of="+at).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img dd: %v\n%s", err, out)
	}
	if raw, err := os.ReadFile(at); err != nil || !bytes.HasPrefix(raw, []byte(snapshotMarker)) {
		t.Errorf("the snapshot lacks what the guest wrote to its disk (%v): %q", err, raw[:min(len(raw), 32)])
	}
}

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
	checkInterfaceHotplug(t, alice, vm)
}

// checkInterfaceHotplug drives Nova's os-interface with the openstack
// CLI on a running guest whose user data prints "NIC-UP <name> <mac>"
// and "NIC-GONE <name>" as NICs come and go: a port added (server add
// port) and one made on a network (server add network) are plugged into
// the guest (NICs with the ports' MACs appear), on taps the node made;
// removed, the NICs leave the guest and the taps the node, the client's
// port is kept and the made one deleted. Bad requests fail the CLI.
func checkInterfaceHotplug(t *testing.T, alice []string, vm serverInfo) {
	t.Helper()
	portsOf := func() []string {
		t.Helper()
		return strings.Fields(openstack(t, alice, "port", "list", "--device-id", vm.ID, "-f", "value", "-c", "ID"))
	}
	macOf := func(id string) string {
		t.Helper()
		return strings.TrimSpace(openstack(t, alice, "port", "show", "-f", "value", "-c", "mac_address", id))
	}
	before := portsOf()
	own := strings.TrimSpace(openstack(t, alice, "port", "create", "--network", "net1", "-f", "value", "-c", "id", "hotnic"))
	if out, err := openstackErr(alice, "server", "add", "port", vm.ID, "00000000-0000-4000-8000-00000000dead"); err == nil {
		t.Fatalf("server add port of a port that does not exist succeeded:\n%s", out)
	}
	if out, err := openstackErr(alice, "server", "remove", "port", vm.ID, own); err == nil {
		t.Fatalf("server remove port of a port not attached succeeded:\n%s", out)
	}
	openstack(t, alice, "server", "add", "port", vm.ID, own)
	// Twice: the port is in use now.
	if out, err := openstackErr(alice, "server", "add", "port", vm.ID, own); err == nil || !strings.Contains(out, "still in use") {
		t.Fatalf("second server add port: %v\n%s", err, out)
	}
	openstack(t, alice, "server", "add", "network", vm.ID, "net2")
	var made string
	for _, id := range portsOf() {
		if id != own && !slices.Contains(before, id) {
			made = id
		}
	}
	if made == "" {
		t.Fatalf("no port made by server add network: %v (before %v)", portsOf(), before)
	}
	macs := map[string]string{own: macOf(own), made: macOf(made)}
	console := waitConsole(t, alice, vm.Name, 3*time.Minute, " "+macs[own], " "+macs[made])
	nics := map[string]string{} // port -> guest NIC
	for _, l := range strings.Split(console, "\n") {
		f := strings.Fields(l)
		if len(f) < 3 || f[len(f)-3] != "NIC-UP" {
			continue
		}
		for port, mac := range macs {
			if f[len(f)-1] == mac {
				nics[port] = f[len(f)-2]
				t.Logf("the guest sees port %s: %s", port, strings.Join(f[len(f)-3:], " "))
			}
		}
	}
	if len(nics) != 2 || nics[own] == "eth0" || nics[made] == "eth0" {
		t.Fatalf("the guest's new NICs %v:\n%s", nics, console)
	}
	for port := range macs {
		if exec.Command("ip", "link", "show", "tap"+port[:11]).Run() != nil {
			t.Fatalf("no tap for the attached port %s", port)
		}
	}
	openstack(t, alice, "server", "remove", "port", vm.ID, own)
	openstack(t, alice, "server", "remove", "port", vm.ID, made)
	waitConsole(t, alice, vm.Name, 3*time.Minute, "NIC-GONE "+nics[own], "NIC-GONE "+nics[made])
	for port := range macs {
		if !eventually(time.Minute, func() bool { return exec.Command("ip", "link", "show", "tap"+port[:11]).Run() != nil }) {
			t.Fatalf("the tap of %s outlived its removal", port)
		}
	}
	// The client's port is kept, unbound; the one made for the server is
	// gone.
	if dev := strings.TrimSpace(openstack(t, alice, "port", "show", "-f", "value", "-c", "device_id", own)); dev != "" {
		t.Fatalf("removed port still has device %q", dev)
	}
	if out, err := openstackErr(alice, "port", "show", made); err == nil {
		t.Fatalf("the port server add network made outlived its removal:\n%s", out)
	}
	if after := portsOf(); !slices.Equal(after, before) {
		t.Fatalf("ports of %s after the removals %v, want %v", vm.ID, after, before)
	}
	openstack(t, alice, "port", "delete", own)
}
