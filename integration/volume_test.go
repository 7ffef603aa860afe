//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
	"github.com/rackstack/rackstack/node/hypervisor/qmp"
)

type volumeInfo struct {
	ID          string           `json:"id"`
	Status      string           `json:"status"`
	Size        int              `json:"size"`
	Attachments []map[string]any `json:"attachments"`
}

func showVolume(t *testing.T, env []string, name string) volumeInfo {
	t.Helper()
	var v volumeInfo
	out := openstack(t, env, "volume", "show", "-f", "json", name)
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("volume show %s: %v\n%s", name, err, out)
	}
	return v
}

func waitVolume(t *testing.T, env []string, name, status string, d time.Duration) volumeInfo {
	t.Helper()
	var v volumeInfo
	if !eventually(d, func() bool { v = showVolume(t, env, name); return v.Status == status }) {
		t.Fatalf("volume %s is %s after %s, want %s", name, v.Status, d, status)
	}
	return v
}

type backupInfo struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

func waitBackup(t *testing.T, env []string, name, status string, d time.Duration) backupInfo {
	t.Helper()
	var b backupInfo
	if !eventually(d, func() bool {
		out := openstack(t, env, "volume", "backup", "show", "-f", "json", name)
		if err := json.Unmarshal([]byte(out), &b); err != nil {
			t.Fatalf("backup show %s: %v\n%s", name, err, out)
		}
		return b.Status == status
	}) {
		t.Fatalf("backup %s is %s after %s, want %s", name, b.Status, d, status)
	}
	return b
}

// findDisk is guest shell that sets $dev to the virtio disk whose serial
// is $1 once it appears (hot-plugged), waiting up to 5 minutes.
const findDisk = `find_disk() {
	for i in $(seq 1 300); do
		for d in /sys/block/vd*; do
			if [ "$(cat $d/serial 2>/dev/null)" = "$1" ]; then dev=${d##*/}; return 0; fi
		done
		sleep 1
	done
	return 1
}
`

// TestVolumes drives block storage through the real openstack CLI: a
// volume made, snapshotted and cloned; attached to a running TCG guest
// that writes a pattern to it; the guest deleted; the volume attached to
// a new guest that reads the pattern back and sees the volume grow when
// it is extended; detached, backed up, deleted, restored and transferred.
// Beside it an encrypted and a read-only volume go through the same two
// guests, a volume made from an image is uploaded as images and booted
// from, and an encrypted one made from the image is booted from and
// grown under its running guest. The volumes go their ways at once (a
// CLI call costs seconds): each volume's steps in order, a guest holding
// several.
func TestVolumes(t *testing.T) {
	testenv.RequireRoot(t, "run QEMU guests")
	for _, c := range []string{"/usr/bin/openstack", "qemu-system-x86_64", "qemu-img", "genisoimage"} {
		testenv.RequireCommand(t, c)
	}
	img := testImage(t)
	n1 := startDevCloud(t, "v1", "--disk", t.TempDir(), "--compute", "on", "--accel", "tcg", "--s3-listen", "off")
	t.Cleanup(func() {
		// What the volume agent did, for a failure's cause.
		if !t.Failed() {
			return
		}
		raw, _ := os.ReadFile(n1.logPath)
		var lines []string
		for _, l := range strings.Split(string(raw), "\n") {
			if (strings.Contains(l, "volume") || strings.Contains(l, "compute")) && (strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") || strings.Contains(l, "plugged") || strings.Contains(l, "export")) {
				lines = append(lines, l)
			}
		}
		t.Logf("rackd's volume and compute log:\n%s", strings.Join(lines[max(0, len(lines)-40):], "\n"))
	})
	creds := openrc(t, n1.dataDir)
	admin := osEnv(creds, n1)
	alice := osEnv(creds, n1, "OS_USERNAME=alice", "OS_PASSWORD=alice-pass-1", "OS_PROJECT_NAME=demo")
	bob := osEnv(creds, n1, "OS_USERNAME=bob", "OS_PASSWORD=bob-pass-1", "OS_PROJECT_NAME=other")

	// The catalog, the two projects and the volume types, side by side.
	inParallel(t, "setup", map[string]func(t *testing.T){
		"testimg and alice": func(t *testing.T) { setupTestimgAndAlice(t, admin, img) },
		// bob's project, which a volume is transferred to.
		"bob": func(t *testing.T) {
			openstack(t, admin, "project", "create", "other")
			openstack(t, admin, "user", "create", "--project", "other", "--password", "bob-pass-1", "bob")
			openstack(t, admin, "role", "add", "--project", "other", "--user", "bob", "member")
		},
		// A type with a front-end QoS spec for the boot volume, whose
		// spec the boot volume's lane changes while its server runs.
		"capped": func(t *testing.T) {
			openstack(t, admin, "volume", "qos", "create", "--consumer", "front-end", "--property", "read_iops_sec=200",
				"--property", "write_bytes_sec=2097152", "capped-qos")
			openstack(t, admin, "volume", "type", "create", "capped")
			openstack(t, admin, "volume", "qos", "associate", "capped-qos", "capped")
		},
		// The same limits in a type of rovol's own, which that change
		// does not reach while rovol is attached at the same time.
		"rocapped": func(t *testing.T) {
			openstack(t, admin, "volume", "qos", "create", "--consumer", "front-end", "--property", "read_iops_sec=200",
				"--property", "write_bytes_sec=2097152", "rocapped-qos")
			openstack(t, admin, "volume", "type", "create", "rocapped")
			openstack(t, admin, "volume", "qos", "associate", "rocapped-qos", "rocapped")
		},
		// An encrypted type (LUKS, opened by QEMU with the volume's key).
		"secret": func(t *testing.T) {
			openstack(t, admin, "volume", "type", "create", "--encryption-provider", "luks", "--encryption-cipher", "aes-xts-plain64",
				"--encryption-key-size", "256", "--encryption-control-location", "front-end", "secret")
		},
	})

	// The image volume and its boot go their own way; the guests' volumes
	// theirs. Each lane's steps stay in order.
	inParallel(t, "volumes", map[string]func(t *testing.T){
		"imgvol":  func(t *testing.T) { imageVolumeLane(t, creds, n1, admin, alice, img) },
		"guests":  func(t *testing.T) { guestVolumesLane(t, creds, n1, alice, bob) },
		"encboot": func(t *testing.T) { encryptedBootLane(t, creds, n1, alice, img) },
	})
}

// encryptedBootLane is TestVolumes' encrypted boot volume: made from the
// test image in the encrypted type, its raw blocks are a LUKS header and
// ciphertext (none of the image's plain bytes); a server boots from it
// (QEMU opens the LUKS layer with the volume's key, which is on no
// command line); extended while the server runs, the guest sees its
// boot disk grow and Nova's extend event is a Success.
func encryptedBootLane(t *testing.T, creds map[string]string, n1 *rackd, alice []string, img string) {
	openstack(t, alice, "volume", "create", "--image", "testimg", "--type", "secret", "--size", "1", "encimg")
	ev := waitVolume(t, alice, "encimg", "available", 3*time.Minute)
	if out := openstack(t, alice, "volume", "show", "-f", "json", "-c", "encrypted", "-c", "bootable", "encimg"); !strings.Contains(out, `"encrypted": true`) || !strings.Contains(out, `"bootable": "true"`) {
		t.Fatalf("encimg: %s", out)
	}

	requireCiphertextOf(t, creds, n1, ev.ID, "encimg", img)
	home := t.TempDir()

	// A server boots from it; its user data reports the boot disk's
	// size (sectors) and again when it changes.
	script := filepath.Join(home, "bootsize.sh")
	os.WriteFile(script, []byte("#!/bin/sh\n"+findDisk+fmt.Sprintf(`(
if find_disk %s; then
	size=$(cat /sys/block/$dev/size); echo "BOOT-SIZE:$size"
	for i in $(seq 1 900); do
		now=$(cat /sys/block/$dev/size)
		if [ "$now" != "$size" ]; then echo "BOOT-SIZE:$now"; break; fi
		sleep 1
	done
else
	echo BOOT-NOT-FOUND
fi
) &
`, ev.ID[:20])), 0o644)
	out := openstack(t, alice, "--os-compute-api-version", "2.37", "server", "create", "--volume", "encimg", "--flavor", "m1.tiny", "--nic", "none",
		"--user-data", script, "--wait", "-f", "json", "encbfv")
	var s serverInfo
	if err := json.Unmarshal([]byte(out), &s); err != nil || s.Status != "ACTIVE" {
		show, _ := openstackErr(alice, "server", "show", "-c", "status", "-c", "fault", "encbfv")
		t.Fatalf("server create --volume encimg: %v %s\n%q\n%s", err, s.Status, out, show)
	}
	console := waitConsole(t, alice, "encbfv", 4*time.Minute, "RACKSTACK-TEST-IMAGE: ready", "BOOT-SIZE:")
	// The guest sees the volume less its LUKS header.
	var first int
	if _, err := fmt.Sscanf(console[strings.Index(console, "BOOT-SIZE:"):], "BOOT-SIZE:%d", &first); err != nil || first <= 0 || first >= 2097152 {
		t.Fatalf("boot disk size in the guest: %d sectors (%v) of a 1 GiB volume", first, err)
	}
	if v := waitVolume(t, alice, "encimg", "in-use", time.Minute); len(v.Attachments) != 1 {
		t.Fatalf("attachments of the boot volume: %v", v.Attachments)
	}
	// The key is on no command line: QEMU's names only the pipe it read.
	if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", qemuPID(t, s.ID))); err != nil || !strings.Contains(string(cmdline), "driver=luks") || !strings.Contains(string(cmdline), "file=/dev/fd/") {
		t.Errorf("qemu's command line: %v %q", err, cmdline)
	}

	// Extended while the server runs (3.42): the guest sees 1 GiB more.
	openstack(t, alice, "--os-volume-api-version", "3.42", "volume", "set", "--size", "2", "encimg")
	waitConsole(t, alice, "encbfv", 2*time.Minute, fmt.Sprintf("BOOT-SIZE:%d", first+2097152))
	waitExtendRecorded(t, alice, "encbfv")

	openstack(t, alice, "server", "delete", "--wait", "encbfv")
	waitVolume(t, alice, "encimg", "available", time.Minute)
	openstack(t, alice, "volume", "delete", "encimg")
}

// createVolume makes a volume with the CLI (its arguments args) and
// returns what the create answered.
func createVolume(t *testing.T, env []string, args ...string) volumeInfo {
	t.Helper()
	var v volumeInfo
	out := openstack(t, env, append([]string{"volume", "create", "-f", "json"}, args...)...)
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.ID == "" {
		t.Fatalf("volume create %v: %v\n%s", args, err, out)
	}
	return v
}

// imageVolumeLane is TestVolumes' image volume: made from the test image
// it holds its disk byte for byte; uploaded to the image service it makes
// images of the disk; a server boots from it at its type's QoS limits.
func imageVolumeLane(t *testing.T, creds map[string]string, n1 *rackd, admin, alice []string, img string) {
	// A volume made from the test image holds its disk byte for byte.
	openstack(t, alice, "volume", "create", "--image", "testimg", "--size", "1", "imgvol")
	iv := waitVolume(t, alice, "imgvol", "available", 3*time.Minute)
	if out := openstack(t, alice, "volume", "show", "-f", "json", "-c", "bootable", "-c", "volume_image_metadata", "imgvol"); !strings.Contains(out, `"bootable": "true"`) || !strings.Contains(out, `"image_name": "testimg"`) {
		t.Fatalf("volume from image: %s", out)
	}
	ex := exportVolume(t, creds, n1, iv.ID)
	nbdTool(t, "qemu-img", "compare", "-f", "qcow2", "-F", "raw", img, ex.UnixURI)
	if out, err := rackctl(t, creds, n1, "volume", "unexport", iv.ID); err != nil {
		t.Fatalf("unexport: %v\n%s", err, out)
	}

	// Uploaded to the image service, as raw and as qcow2, the volume
	// becomes images that hold its disk (the test image, then zeroes).
	for _, format := range []string{"raw", "qcow2"} {
		name := "fromvol-" + format
		openstack(t, alice, "image", "create", "--volume", "imgvol", "--disk-format", format, name)
		if !eventually(3*time.Minute, func() bool {
			out, _ := openstackErr(alice, "image", "show", "-f", "value", "-c", "status", name)
			return strings.TrimSpace(out) == "active"
		}) {
			t.Fatalf("image %s is not active", name)
		}
		waitVolume(t, alice, "imgvol", "available", time.Minute)
		saved := filepath.Join(t.TempDir(), name)
		openstack(t, alice, "image", "save", "--file", saved, name)
		nbdTool(t, "qemu-img", "compare", "-f", "qcow2", "-F", format, img, saved)
		if out := nbdTool(t, "qemu-img", "info", "--output", "json", saved); !strings.Contains(out, fmt.Sprintf(`"virtual-size": %d`, 1<<30)) {
			t.Fatalf("image %s is not the volume's 1 GiB disk: %s", name, out)
		}
		openstack(t, alice, "image", "delete", name)
	}

	// Of the type with a front-end QoS spec, a server boots from it: its
	// root disk is the volume, which QEMU's own NBD client reads from this
	// node's export.
	openstack(t, admin, "volume", "set", "--type", "capped", "--retype-policy", "never", "imgvol")
	out := openstack(t, alice, "--os-compute-api-version", "2.37", "server", "create", "--volume", "imgvol", "--flavor", "m1.tiny", "--nic", "none",
		"--wait", "-f", "json", "bfv")
	var bfv serverInfo
	if err := json.Unmarshal([]byte(out), &bfv); err != nil || bfv.Status != "ACTIVE" {
		t.Fatalf("server create --volume: %v %s\n%s", err, bfv.Status, out)
	}
	waitConsole(t, alice, "bfv", 4*time.Minute, "RACKSTACK-TEST-IMAGE: ready")
	if v := waitVolume(t, alice, "imgvol", "in-use", time.Minute); len(v.Attachments) != 1 {
		t.Fatalf("attachments of the boot volume: %v", v.Attachments)
	}
	if out := openstack(t, alice, "server", "show", "-f", "json", "-c", "volumes_attached", "-c", "image", "bfv"); !strings.Contains(out, iv.ID) || !strings.Contains(out, "booted from volume") {
		t.Errorf("server booted from a volume: %s", out)
	}
	if out, err := openstackErr(alice, "server", "remove", "volume", "bfv", "imgvol"); err == nil {
		t.Errorf("the root volume was detached: %s", out)
	}
	// The boot volume runs at its type's QoS limits, and follows a
	// change of the spec while the server runs.
	bfvID := strings.TrimSpace(openstack(t, alice, "server", "show", "-f", "value", "-c", "id", "bfv"))
	if got := qemuDiskOf(t, bfvID, "disk0"); got.IOPSRead != 200 || got.BPSWrite != 2097152 {
		t.Errorf("boot volume in QEMU at launch: %+v", got)
	}
	openstack(t, admin, "volume", "qos", "set", "--property", "read_iops_sec=300", "capped-qos")
	if !eventually(time.Minute, func() bool { return qemuDiskOf(t, bfvID, "disk0").IOPSRead == 300 }) {
		t.Errorf("boot volume in QEMU after the spec changed: %+v", qemuDiskOf(t, bfvID, "disk0"))
	}
	openstack(t, admin, "volume", "qos", "set", "--property", "read_iops_sec=200", "capped-qos")
	bfvImage(t, alice, iv.ID)
	openstack(t, alice, "server", "delete", "--wait", "bfv")
	waitVolume(t, alice, "imgvol", "available", time.Minute)
}

// bfvImage snapshots server bfv, booted from volume imgvol, as Nova
// snapshots a volume-backed server: an active, empty image mapping a new
// snapshot of imgvol; a server created from that image boots from a
// volume made from that snapshot.
func bfvImage(t *testing.T, alice []string, imgvol string) {
	out := openstack(t, alice, "server", "image", "create", "--name", "bfv-snap", "--wait", "-f", "json", "bfv")
	var img struct {
		ID         string         `json:"id"`
		Status     string         `json:"status"`
		Size       int64          `json:"size"`
		Properties map[string]any `json:"properties"`
	}
	if err := json.Unmarshal([]byte(out), &img); err != nil || img.Status != "active" || img.Size != 0 {
		t.Fatalf("server image create of a volume-backed server: %v\n%s", err, out)
	}
	var mapping []struct {
		SnapshotID string `json:"snapshot_id"`
		BootIndex  *int   `json:"boot_index"`
	}
	raw, _ := img.Properties["block_device_mapping"].(string)
	if err := json.Unmarshal([]byte(raw), &mapping); err != nil || len(mapping) != 1 || mapping[0].BootIndex == nil || *mapping[0].BootIndex != 0 {
		t.Fatalf("block_device_mapping of the image: %v %q", err, raw)
	}
	var snap struct {
		VolumeID string `json:"volume_id"`
		Status   string `json:"status"`
	}
	if err := json.Unmarshal([]byte(openstack(t, alice, "volume", "snapshot", "show", "-f", "json", mapping[0].SnapshotID)), &snap); err != nil ||
		snap.VolumeID != imgvol || snap.Status != "available" {
		t.Fatalf("the image's snapshot %s: %+v %v", mapping[0].SnapshotID, snap, err)
	}
	// No need to wait for the guest: the boot volume is made first.
	openstack(t, alice, "--os-compute-api-version", "2.37", "server", "create", "--image", "bfv-snap", "--flavor", "m1.tiny", "--nic", "none", "bfv2")
	var v struct {
		SnapshotID string `json:"snapshot_id"`
		Bootable   string `json:"bootable"`
	}
	if err := json.Unmarshal([]byte(openstack(t, alice, "volume", "show", "-f", "json", "bfv2")), &v); err != nil || v.SnapshotID != mapping[0].SnapshotID {
		t.Fatalf("boot volume of the server made from the image: %+v %v", v, err)
	}
	if out := openstack(t, alice, "server", "show", "-f", "json", "-c", "image", "bfv2"); !strings.Contains(out, "booted from volume") {
		t.Errorf("server made from a volume-backed snapshot: %s", out)
	}
	openstack(t, alice, "server", "delete", "--wait", "bfv2")
	waitVolume(t, alice, "bfv2", "available", 2*time.Minute)
	openstack(t, alice, "volume", "delete", "bfv2")
	openstack(t, alice, "image", "delete", "bfv-snap")
	openstack(t, alice, "volume", "snapshot", "delete", mapping[0].SnapshotID)
}

// guestVolumesLane is TestVolumes' volumes of hot-plugged guests: data,
// made, snapshotted and cloned, is written by vm1, which is deleted, and
// read back and extended in vm2, then backed up, deleted, restored and
// transferred; encvol (encrypted) is written by vm1 and read by vm2 while
// its raw blocks hold only ciphertext; rovol (read-only, QoS-capped) is
// refused writes in vm2. A guest holds several of them at once, each
// volume's steps in order.
func guestVolumesLane(t *testing.T, creds map[string]string, n1 *rackd, alice, bob []string) {
	// The guests' scripts look for the disks by serial (the first 20
	// characters of the volume's ID), so the volumes come first.
	var vol, encVol, roVol volumeInfo
	inParallel(t, "create", map[string]func(t *testing.T){
		"data":   func(t *testing.T) { vol = createVolume(t, alice, "--size", "1", "data") },
		"encvol": func(t *testing.T) { encVol = createVolume(t, alice, "--size", "1", "--type", "secret", "encvol") },
		"rovol":  func(t *testing.T) { roVol = createVolume(t, alice, "--size", "1", "--type", "rocapped", "rovol") },
	})

	serial := vol.ID[:20]
	home := t.TempDir()
	pattern := fmt.Sprintf("RACKSTACK-VOLUME-PATTERN-%d", time.Now().UnixNano())
	encPattern := "ENCRYPTED-" + pattern
	writer := filepath.Join(home, "writer.sh")
	// encvol and data are plugged at once, each into a root port of its own.
	os.WriteFile(writer, []byte("#!/bin/sh\n"+findDisk+fmt.Sprintf(`(
found=
for n in 1 2 3; do if find_disk %s; then found=1; break; fi; done
if [ -n "$found" ]; then
	echo %s | dd of=/dev/$dev bs=512 conv=sync 2>/dev/null && sync && echo "VOL-WRITTEN dev=$dev"
else
	echo VOL-NOT-FOUND
fi
) &
(
found=
for n in 1 2 3; do if find_disk %s; then found=1; break; fi; done
if [ -z "$found" ]; then
	echo ENC-NOT-FOUND
elif echo %s | dd of=/dev/$dev bs=512 conv=sync 2>/dev/null && sync; then
	echo "ENC-WRITTEN dev=$dev"
else
	echo "ENC-WRITE-FAILED dev=$dev"
fi
) &
`, serial, pattern, encVol.ID[:20], encPattern)), 0o644)
	reader := filepath.Join(home, "reader.sh")
	// data, rovol and encvol are plugged at once, after vm1 is gone: each
	// disk is waited for up to 15 minutes.
	os.WriteFile(reader, []byte("#!/bin/sh\n"+findDisk+fmt.Sprintf(`(
found=
for n in 1 2 3; do if find_disk %s; then found=1; break; fi; done
if [ -n "$found" ]; then
	echo "VOL-READ:$(head -c %d /dev/$dev)"
	size=$(cat /sys/block/$dev/size); echo "VOL-SIZE:$size"
	for i in $(seq 1 600); do
		now=$(cat /sys/block/$dev/size)
		if [ "$now" != "$size" ]; then echo "VOL-SIZE:$now"; break; fi
		sleep 1
	done
else
	echo VOL-NOT-FOUND
fi
) &
(
found=
for n in 1 2 3; do if find_disk %s; then found=1; break; fi; done
if [ -n "$found" ]; then
	echo "RO-DISK:ro=$(cat /sys/block/$dev/ro)"
	if echo x | dd of=/dev/$dev bs=512 conv=sync 2>/dev/null; then echo RO-WRITE:accepted; else echo RO-WRITE:refused; fi
fi
) &
(
found=
for n in 1 2 3; do if find_disk %s; then found=1; break; fi; done
if [ -n "$found" ]; then echo "ENC-READ:$(head -c %d /dev/$dev)"; else echo ENC-NOT-FOUND; fi
) &
`, serial, len(pattern), roVol.ID[:20], encVol.ID[:20], len(encPattern))), 0o644)

	create := func(t *testing.T, name, userData string) serverInfo {
		t.Helper()
		out := openstack(t, alice, "--os-compute-api-version", "2.37", "server", "create", "--image", "testimg", "--flavor", "m1.tiny", "--nic", "none",
			"--user-data", userData, "--wait", "-f", "json", name)
		var s serverInfo
		if err := json.Unmarshal([]byte(out), &s); err != nil || s.Status != "ACTIVE" {
			t.Fatalf("server create %s: %v %s\n%s", name, err, s.Status, out)
		}
		waitConsole(t, alice, name, 4*time.Minute, "RACKSTACK-TEST-IMAGE: ready")
		return s
	}

	// The guests boot while each volume is checked on its own.
	var vm2 serverInfo
	inParallel(t, "before the guests", map[string]func(t *testing.T){
		"vm1": func(t *testing.T) { create(t, "vm1", writer) },
		"vm2": func(t *testing.T) { vm2 = create(t, "vm2", reader) },
		// A snapshot, and volumes made from both.
		"data": func(t *testing.T) {
			waitVolume(t, alice, "data", "available", time.Minute)
			openstack(t, alice, "volume", "snapshot", "create", "--volume", "data", "snap")
			inParallel(t, "made from both", map[string]func(t *testing.T){
				"fromsnap": func(t *testing.T) {
					openstack(t, alice, "volume", "create", "--snapshot", "snap", "fromsnap")
					waitVolume(t, alice, "fromsnap", "available", time.Minute)
				},
				"clone": func(t *testing.T) {
					openstack(t, alice, "volume", "create", "--source", "data", "clone")
					waitVolume(t, alice, "clone", "available", time.Minute)
				},
			})
			if out, err := openstackErr(alice, "volume", "delete", "data"); err == nil {
				t.Fatalf("a volume with a snapshot was deleted: %s", out)
			}
			openstack(t, alice, "volume", "delete", "fromsnap", "clone")
			openstack(t, alice, "volume", "snapshot", "delete", "snap")
		},
		// An encrypted volume: vm1 writes a pattern into it, vm2 reads
		// it back, and the volume's raw blocks hold only the LUKS header
		// and ciphertext.
		"encvol": func(t *testing.T) {
			waitVolume(t, alice, "encvol", "available", time.Minute)
			if out := openstack(t, alice, "volume", "show", "-f", "json", "-c", "encrypted", "encvol"); !strings.Contains(out, `"encrypted": true`) {
				t.Fatalf("encvol: %s", out)
			}
		},
		// A read-only volume of a type with a front-end QoS spec, for
		// vm2: the guest gets it read-only, and QEMU caps its I/O at the
		// spec.
		"rovol": func(t *testing.T) {
			waitVolume(t, alice, "rovol", "available", time.Minute)
			openstack(t, alice, "volume", "set", "--read-only", "rovol")
		},
	})

	inParallel(t, "in vm1", map[string]func(t *testing.T){
		"encvol": func(t *testing.T) {
			openstack(t, alice, "server", "add", "volume", "vm1", "encvol")
			waitVolume(t, alice, "encvol", "in-use", 2*time.Minute)
			waitConsole(t, alice, "vm1", 4*time.Minute, "ENC-WRITTEN")
			openstack(t, alice, "server", "remove", "volume", "vm1", "encvol")
			waitVolume(t, alice, "encvol", "available", 2*time.Minute)

			// Read raw, the encrypted volume is a LUKS header and ciphertext.
			ex := exportVolume(t, creds, n1, encVol.ID)
			encDump := filepath.Join(home, "encvol.raw")
			nbdTool(t, "qemu-img", "dd", "-f", "raw", "-O", "raw", "bs=1M", "count=8", "if="+ex.UnixURI, "of="+encDump)
			if out, err := rackctl(t, creds, n1, "volume", "unexport", encVol.ID); err != nil {
				t.Fatalf("unexport: %v\n%s", err, out)
			}
			raw, err := os.ReadFile(encDump)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(raw), "LUKS\xba\xbe") {
				t.Fatalf("encvol has no LUKS header: %q", raw[:16])
			}
			if strings.Contains(string(raw), encPattern) || strings.Contains(string(raw), "ENCRYPTED-RACKSTACK") {
				t.Fatal("the encrypted volume holds what the guest wrote in clear")
			}
		},
		"data": func(t *testing.T) {
			openstack(t, alice, "server", "add", "volume", "vm1", "data")
			v := waitVolume(t, alice, "data", "in-use", 2*time.Minute)
			if len(v.Attachments) != 1 {
				t.Fatalf("attachments of data: %v", v.Attachments)
			}
			waitConsole(t, alice, "vm1", 4*time.Minute, "VOL-WRITTEN")
			if out := openstack(t, alice, "server", "show", "-f", "json", "-c", "volumes_attached", "vm1"); !strings.Contains(out, vol.ID) {
				t.Errorf("vm1's volumes_attached lacks data: %s", out)
			}
		},
	})

	// The server goes; the volume and what was written stay.
	openstack(t, alice, "server", "delete", "--wait", "vm1")
	waitVolume(t, alice, "data", "available", time.Minute)

	inParallel(t, "in vm2", map[string]func(t *testing.T){
		"data": func(t *testing.T) {
			openstack(t, alice, "server", "add", "volume", "vm2", "data")
			waitVolume(t, alice, "data", "in-use", 2*time.Minute)
			waitConsole(t, alice, "vm2", 4*time.Minute, "VOL-READ:"+pattern, "VOL-SIZE:2097152")

			// Extended while attached (3.42): the running guest sees 2 GiB.
			openstack(t, alice, "--os-volume-api-version", "3.42", "volume", "set", "--size", "2", "data")
			if v := showVolume(t, alice, "data"); v.Size != 2 || v.Status != "in-use" {
				t.Fatalf("after extend: size %d, %s", v.Size, v.Status)
			}
			waitConsole(t, alice, "vm2", 2*time.Minute, "VOL-SIZE:4194304")
			waitExtendRecorded(t, alice, "vm2")

			openstack(t, alice, "server", "remove", "volume", "vm2", "data")
			waitVolume(t, alice, "data", "available", 2*time.Minute)
		},
		"rovol": func(t *testing.T) {
			openstack(t, alice, "server", "add", "volume", "vm2", "rovol")
			waitVolume(t, alice, "rovol", "in-use", 2*time.Minute)
			waitConsole(t, alice, "vm2", 4*time.Minute, "RO-DISK:ro=1", "RO-WRITE:refused")
			if out := openstack(t, alice, "volume", "show", "-f", "json", "-c", "properties", "rovol"); !strings.Contains(out, `"attached_mode": "ro"`) || !strings.Contains(out, `"readonly": "True"`) {
				t.Errorf("read-only attachment: %s", out)
			}
			if got := qemuDiskOf(t, vm2.ID, "disk-"+strings.ReplaceAll(roVol.ID, "-", "")[:24]); got.IOPSRead != 200 || got.BPSWrite != 2097152 || !got.RO {
				t.Errorf("rovol in QEMU: %+v", got)
			}
			openstack(t, alice, "server", "remove", "volume", "vm2", "rovol")
			waitVolume(t, alice, "rovol", "available", 2*time.Minute)
			openstack(t, alice, "volume", "delete", "rovol")
		},
		// A second guest opens encvol with its key and reads the pattern.
		"encvol": func(t *testing.T) {
			openstack(t, alice, "server", "add", "volume", "vm2", "encvol")
			waitVolume(t, alice, "encvol", "in-use", 2*time.Minute)
			waitConsole(t, alice, "vm2", 4*time.Minute, "ENC-READ:"+encPattern)
			openstack(t, alice, "server", "remove", "volume", "vm2", "encvol")
			waitVolume(t, alice, "encvol", "available", 2*time.Minute)
			openstack(t, alice, "volume", "delete", "encvol")
		},
	})

	inParallel(t, "after the guests", map[string]func(t *testing.T){
		"vm2": func(t *testing.T) { openstack(t, alice, "server", "delete", "--wait", "vm2") },
		// Backed up into the project's object store; the volume goes;
		// the backup restores it, byte for byte, into a new volume,
		// which is transferred to another project.
		"data": func(t *testing.T) { backupRestoreTransfer(t, creds, n1, alice, bob, vol, pattern) },
	})
}

// backupRestoreTransfer backs vol (which holds pattern) up into alice's
// object store, deletes it, restores the backup byte for byte into a new
// volume and transfers that to bob's project, which presents the key once
// given.
func backupRestoreTransfer(t *testing.T, creds map[string]string, n1 *rackd, alice, bob []string, vol volumeInfo, pattern string) {
	dump := filepath.Join(t.TempDir(), "data.raw")
	ex := exportVolume(t, creds, n1, vol.ID)
	nbdTool(t, "qemu-img", "convert", "-f", "raw", "-O", "raw", ex.UnixURI, dump)
	if out, err := rackctl(t, creds, n1, "volume", "unexport", vol.ID); err != nil {
		t.Fatalf("unexport: %v\n%s", err, out)
	}
	if head, err := os.ReadFile(dump); err != nil || !strings.HasPrefix(string(head), pattern) {
		t.Fatalf("the volume does not hold what the guest wrote (%v)", err)
	}
	openstack(t, alice, "volume", "backup", "create", "--name", "bk", "data")
	bk := waitBackup(t, alice, "bk", "available", 3*time.Minute)
	if out := openstack(t, alice, "object", "list", "-f", "value", "volumebackups"); !strings.Contains(out, bk.ID+"/manifest") || !strings.Contains(out, bk.ID+"/chunk-00000000") {
		t.Fatalf("the backup's objects in the project's object store: %s", out)
	}
	openstack(t, alice, "volume", "delete", "data")
	// Other lanes' volumes come and go: the list is looked at for this
	// one's ID.
	if !eventually(time.Minute, func() bool {
		out, err := openstackErr(alice, "volume", "list", "-f", "value", "-c", "ID")
		return err == nil && !strings.Contains(out, vol.ID)
	}) {
		t.Fatal("volume data is still listed after its delete")
	}
	// python-openstackclient 6.0 makes the request, then fails to print
	// cinderclient's answer (fixed in later releases).
	if out, err := openstackErr(alice, "volume", "backup", "restore", "bk", "restored"); err != nil && !strings.Contains(out, "cannot unpack non-iterable VolumeBackupsRestore") {
		t.Fatalf("backup restore: %v\n%s", err, out)
	}
	rv := waitVolume(t, alice, "restored", "available", 3*time.Minute)
	waitBackup(t, alice, "bk", "available", time.Minute)
	ex = exportVolume(t, creds, n1, rv.ID)
	nbdTool(t, "qemu-img", "compare", "-f", "raw", "-F", "raw", dump, ex.UnixURI)
	if out, err := rackctl(t, creds, n1, "volume", "unexport", rv.ID); err != nil {
		t.Fatalf("unexport: %v\n%s", err, out)
	}

	// Transferred to another project, which presents the key once given.
	var tr struct {
		ID      string `json:"id"`
		AuthKey string `json:"auth_key"`
	}
	out := openstack(t, alice, "volume", "transfer", "request", "create", "-f", "json", "restored")
	if err := json.Unmarshal([]byte(out), &tr); err != nil || tr.AuthKey == "" {
		t.Fatalf("transfer request: %v\n%s", err, out)
	}
	openstack(t, bob, "volume", "transfer", "request", "accept", "--auth-key", tr.AuthKey, tr.ID)
	if v := showVolume(t, bob, rv.ID); v.Status != "available" {
		t.Fatalf("transferred volume: %s", v.Status)
	}
	if out, _ := openstackErr(alice, "volume", "list", "-f", "value", "-c", "ID"); strings.Contains(out, rv.ID) {
		t.Fatalf("alice still has the transferred volume: %s", out)
	}
	openstack(t, bob, "volume", "delete", rv.ID)
	openstack(t, alice, "volume", "backup", "delete", "bk")
}

// qemuDisk is how QEMU opened a guest's disk (query-block).
type qemuDisk struct {
	RO       bool  `json:"ro"`
	IOPSRead int64 `json:"iops_rd"`
	BPSWrite int64 `json:"bps_wr"`
}

// qemuDiskOf asks the QEMU of server, through its monitor socket under
// rackd's VM run directory, how it opened its disk device (disk0, the
// boot disk, or disk-<id> of a hot-plugged volume).
func qemuDiskOf(t *testing.T, server, device string) qemuDisk {
	t.Helper()
	blocks := queryBlocks(t, server)
	for _, b := range blocks {
		if strings.Contains(b.QDev, "/"+device+"/") {
			return b.Inserted
		}
	}
	t.Fatalf("no disk %s in %+v", device, blocks)
	return qemuDisk{}
}

// qemuBlock is one of a guest's block devices as QEMU's query-block
// lists it.
type qemuBlock struct {
	QDev     string   `json:"qdev"`
	Inserted qemuDisk `json:"inserted"`
}

// queryBlocks asks the QEMU of server, through its monitor socket,
// for its block devices.
func queryBlocks(t *testing.T, server string) []qemuBlock {
	t.Helper()
	socks, _ := filepath.Glob(filepath.Join("/run/rackstack", "*", server, "qmp.sock"))
	if len(socks) != 1 {
		t.Fatalf("monitor socket of %s: %v", server, socks)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var c *qmp.Client
	// rackd talks to the monitor too, one client at a time.
	if !eventually(30*time.Second, func() bool {
		var err error
		c, err = qmp.Dial(ctx, socks[0])
		return err == nil
	}) {
		t.Fatalf("dial %s", socks[0])
	}
	defer c.Close()
	var blocks []qemuBlock
	if err := c.Execute(ctx, "query-block", nil, &blocks); err != nil {
		t.Fatal(err)
	}
	return blocks
}

// requireCiphertextOf fails t unless volume id (called name), exported
// raw through rackctl, is a LUKS header and ciphertext of the qcow2
// image img: strings of the image's boot sector and FAT directory, there
// in the plain image, are not in the volume's first 72 MiB.
func requireCiphertextOf(t *testing.T, creds map[string]string, n1 *rackd, id, name, img string) {
	t.Helper()
	home := t.TempDir()
	plain := filepath.Join(home, "image.raw")
	nbdTool(t, "qemu-img", "convert", "-f", "qcow2", "-O", "raw", img, plain)
	ex := exportVolume(t, creds, n1, id)
	dump := filepath.Join(home, name+".raw")
	nbdTool(t, "qemu-img", "dd", "-f", "raw", "-O", "raw", "bs=1M", "count=72", "if="+ex.UnixURI, "of="+dump)
	if out, err := rackctl(t, creds, n1, "volume", "unexport", id); err != nil {
		t.Fatalf("unexport: %v\n%s", err, out)
	}
	plainBytes, err := os.ReadFile(plain)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(raw), "LUKS\xba\xbe") {
		t.Fatalf("%s has no LUKS header: %q", name, raw[:16])
	}
	for _, known := range []string{"Missing operating system.", "SYSLINUXCFG", "LDLINUX SYS"} {
		if !strings.Contains(string(plainBytes), known) {
			t.Fatalf("the test image lacks %q: the check would prove nothing", known)
		}
		if strings.Contains(string(raw), known) {
			t.Fatalf("%s holds the image's %q in clear", name, known)
		}
	}
}
