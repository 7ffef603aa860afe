//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// localDisksScript is the user data that tells what the guest sees: the
// filesystem and label of vdb, the swap signature of vdc, which it turns
// on (the kernel's own check of what mkswap made), and the config drive's
// EC2 block-device-mapping.
const localDisksScript = `#!/bin/sh
# busybox has no blkid: the ext superblock's magic (0xef53 at 1080) and
# its incompatible features (extents, 0x40, is ext4's) are read as is;
# findfs finds the disk by its label.
magic=$(od -A n -t x2 -j 1080 -N 2 /dev/vdb | tr -d ' ')
incompat=$(od -A n -t x4 -j 1120 -N 4 /dev/vdb | tr -d ' ')
fs=unknown
[ "$magic" = ef53 ] && fs=ext2/3
[ "$magic" = ef53 ] && [ $((0x$incompat & 0x40)) != 0 ] && fs=ext4
echo "LOCALDISK vdb fs=$fs ephemeral0=$(findfs LABEL=ephemeral0)"
echo "LOCALDISK vdc signature=$(dd if=/dev/vdc bs=1 skip=4086 count=10 2>/dev/null)"
# sizes: the disks' sectors, the filesystem's block count (s_blocks_count)
echo "LOCALDISK sizes vdb=$(cat /sys/block/vdb/size) blocks=$(od -A n -t u4 -j 1028 -N 4 /dev/vdb | tr -d ' ') vdc=$(cat /sys/block/vdc/size)"
if swapon /dev/vdc; then echo "LOCALDISK swapon ok: $(grep -c /dev/vdc /proc/swaps) in /proc/swaps"; fi
echo "LOCALDISK ec2 $(cat /mnt/config/ec2/latest/meta-data.json)"
`

// TestEphemeralAndSwapDisks boots a real guest of a flavor with an
// ephemeral disk and swap: the guest finds an ext4 disk labelled
// ephemeral0 on vdb and a swap area on vdc, which it turns on, as its
// config drive's block-device-mapping says; a resize grows the
// ephemeral disk with its filesystem and remakes the swap at the new
// flavor's size; the disks are files on the host that go with the
// server. A migration is refused, naming them; a create asking for more
// ephemeral disk than the flavor allows is refused.
func TestEphemeralAndSwapDisks(t *testing.T) {
	testenv.RequireRoot(t, "make taps and load BPF programs")
	for _, c := range []string{"/usr/bin/openstack", "qemu-system-x86_64", "qemu-img", "genisoimage", "mkfs.ext4", "mkswap"} {
		testenv.RequireCommand(t, c)
	}
	img := testImage(t)
	bpfDir := fmt.Sprintf("/sys/fs/bpf/rackstack-ld%d", os.Getpid())
	t.Cleanup(func() { os.RemoveAll(bpfDir) })
	n1 := newRackd(t, "ld1", "--disk", t.TempDir(), "--dataplane", "on", "--bpf-dir", bpfDir, "--compute", "on", "--accel", "tcg", "--s3-listen", "off")
	n1.start("--bootstrap")
	n1.waitHealthy()
	creds := openrc(t, n1.dataDir)
	admin := osEnv(creds, n1)
	alice := osEnv(creds, n1, "OS_USERNAME=alice", "OS_PASSWORD=alice-pass-1", "OS_PROJECT_NAME=demo")
	setupTestimgAndAlice(t, admin, img)
	openstack(t, admin, "flavor", "create", "--vcpus", "1", "--ram", "256", "--disk", "1", "--ephemeral", "1", "--swap", "64", "m1.eph")

	ud := filepath.Join(t.TempDir(), "ud.sh")
	if err := os.WriteFile(ud, []byte(localDisksScript), 0o644); err != nil {
		t.Fatal(err)
	}
	out := openstack(t, alice, "--os-compute-api-version", "2.37", "server", "create", "--image", "testimg", "--flavor", "m1.eph", "--nic", "none",
		"--user-data", ud, "--wait", "-f", "json", "vm1")
	var vm serverInfo
	if err := json.Unmarshal([]byte(out), &vm); err != nil || vm.Status != "ACTIVE" {
		t.Fatalf("server create: %v\n%s", err, out)
	}
	console := waitConsole(t, alice, vm.ID, 4*time.Minute, "RACKSTACK-TEST-IMAGE: user-data ran")
	if !strings.Contains(console, "LOCALDISK vdb fs=ext4 ephemeral0=/dev/vdb") {
		t.Errorf("the guest's vdb is not an ext4 disk labelled ephemeral0:\n%s", console)
	}
	if !strings.Contains(console, "LOCALDISK vdc signature=SWAPSPACE2") {
		t.Errorf("the guest's vdc is not a swap area:\n%s", console)
	}
	if !strings.Contains(console, "LOCALDISK swapon ok: 1 in /proc/swaps") {
		t.Errorf("the guest could not turn its swap disk on:\n%s", console)
	}
	if !strings.Contains(console, `"ephemeral0":"/dev/vdb"`) || !strings.Contains(console, `"swap":"/dev/vdc"`) {
		t.Errorf("the config drive's block-device-mapping does not name the disks:\n%s", console)
	}
	// 1 GiB of 4 KiB blocks, 64 MiB of swap.
	if !strings.Contains(console, "LOCALDISK sizes vdb=2097152 blocks=262144 vdc=131072") {
		t.Errorf("the guest's disks are not 1 GiB of ext4 and 64 MiB of swap:\n%s", console)
	}

	// A resize takes them along: the ephemeral disk and its filesystem
	// grown to the new flavor's 2 GiB, the swap its 32 MiB.
	openstack(t, admin, "flavor", "create", "--vcpus", "1", "--ram", "256", "--disk", "1", "--ephemeral", "2", "--swap", "32", "m1.eph2")
	openstack(t, alice, "server", "resize", "--flavor", "m1.eph2", "--wait", vm.ID)
	if s := showServer(t, alice, vm.ID); s.Status != "VERIFY_RESIZE" {
		t.Fatalf("after the resize: %s", s.Status)
	}
	openstack(t, alice, "server", "resize", "confirm", vm.ID)
	if !eventually(3*time.Minute, func() bool {
		console, _ = openstackErr(alice, "console", "log", "show", vm.ID)
		return strings.Count(console, "RACKSTACK-TEST-IMAGE: user-data ran") >= 2
	}) {
		t.Fatalf("the resized guest did not boot again:\n%s", console)
	}
	second := console[strings.LastIndex(console, "RACKSTACK-TEST-IMAGE: booted"):]
	if !strings.Contains(second, "LOCALDISK sizes vdb=4194304 blocks=524288 vdc=65536") || !strings.Contains(second, "LOCALDISK vdb fs=ext4 ephemeral0=/dev/vdb") ||
		!strings.Contains(second, "LOCALDISK swapon ok: 1 in /proc/swaps") {
		t.Errorf("the resized guest's disks are not 2 GiB of ext4 and 32 MiB of swap:\n%s", second)
	}

	dir := filepath.Join(n1.dataDir, "compute", "instances", vm.ID)
	files := []string{filepath.Join(dir, "disk.ephemeral0"), filepath.Join(dir, "disk.swap")}
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("the disks are not files on the host: %v", err)
		}
	}

	if _, err := openstackErr(admin, "server", "migrate", vm.ID); err == nil {
		t.Error("a server with local disks was migrated")
	}
	if out, err := openstackErr(alice, "--os-compute-api-version", "2.37", "server", "create", "--image", "testimg", "--flavor", "m1.eph", "--nic", "none",
		"--block-device", "source_type=blank,destination_type=local,volume_size=2,boot_index=-1", "vm2"); err == nil ||
		!strings.Contains(out, "Ephemeral disks requested are larger") {
		t.Errorf("a create asking for 2 GB of ephemeral disk on a 1 GB flavor: %v\n%s", err, out)
	}

	openstack(t, alice, "server", "delete", "--wait", vm.ID)
	if !eventually(time.Minute, func() bool {
		for _, f := range files {
			if _, err := os.Stat(f); err == nil {
				return false
			}
		}
		return true
	}) {
		t.Errorf("the local disks outlive their server: %v", files)
	}
}
