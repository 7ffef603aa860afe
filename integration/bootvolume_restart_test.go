//go:build integration

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// rootIOScript is guest user data that, once a second for 15 minutes,
// writes a stamp to a sector of its boot disk past the image's 64 MiB,
// flushed, reads it back bypassing the page cache, and says how that
// went: "ROOT-IO-OK <n>" or "ROOT-IO-FAIL <n>".
const rootIOScript = `#!/bin/sh
(
dev=/dev/vda
for i in $(seq 1 900); do
	printf 'stamp-%08d' $i > /tmp/stamp
	if dd if=/tmp/stamp of=$dev bs=512 seek=$((140000 + i % 1000)) count=1 conv=sync,fsync oflag=direct 2>/dev/null &&
		dd if=$dev of=/tmp/back bs=512 skip=$((140000 + i % 1000)) count=1 iflag=direct 2>/dev/null &&
		[ "$(head -c 14 /tmp/back)" = "stamp-$(printf '%08d' $i)" ]; then
		echo "ROOT-IO-OK $i"
	else
		echo "ROOT-IO-FAIL $i"
	fi
	sleep 1
done
) &
`

// TestBootVolumeAcrossRestart: a guest booted from a volume keeps its
// root disk through a kill -9 and restart of rackd, which serves the
// volume's NBD export. QEMU's NBD client waits for the export to come
// back and sends the paused requests again: the guest's flushed writes
// and direct reads go on without an I/O error, as a plugged volume's do.
func TestBootVolumeAcrossRestart(t *testing.T) {
	testenv.RequireRoot(t, "run QEMU guests")
	for _, c := range []string{"/usr/bin/openstack", "qemu-system-x86_64", "qemu-img", "genisoimage"} {
		testenv.RequireCommand(t, c)
	}
	img := testImage(t)
	n1 := startDevCloud(t, "br1", "--disk", t.TempDir(), "--compute", "on", "--accel", "tcg", "--s3-listen", "off")
	creds := openrc(t, n1.dataDir)
	admin := osEnv(creds, n1)
	alice := osEnv(creds, n1, "OS_USERNAME=alice", "OS_PASSWORD=alice-pass-1", "OS_PROJECT_NAME=demo")
	setupTestimgAndAlice(t, admin, img)

	openstack(t, alice, "volume", "create", "--image", "testimg", "--size", "1", "rootvol")
	waitVolume(t, alice, "rootvol", "available", 3*time.Minute)
	script := filepath.Join(t.TempDir(), "rootio.sh")
	if err := os.WriteFile(script, []byte(rootIOScript), 0o644); err != nil {
		t.Fatal(err)
	}
	openstack(t, alice, "--os-compute-api-version", "2.37", "server", "create", "--volume", "rootvol", "--flavor", "m1.tiny", "--nic", "none",
		"--user-data", script, "--wait", "bvr")
	s := showServer(t, alice, "bvr")
	waitConsole(t, alice, "bvr", 4*time.Minute, "ROOT-IO-OK 3")

	pid := qemuPID(t, s.ID)
	if pid == 0 {
		t.Fatal("no QEMU for bvr")
	}
	n1.kill()
	// The guest goes on writing and reading while nothing serves its disk.
	time.Sleep(3 * time.Second)
	if syscall.Kill(pid, 0) != nil {
		t.Fatalf("bvr's QEMU %d died with rackd", pid)
	}
	before := lastRootIO(consoleFile(t, s.ID))
	n1.start()
	n1.waitHealthy()

	// Ten more rounds after the restart, every one of them whole.
	console := waitConsole(t, alice, "bvr", 3*time.Minute, fmt.Sprintf("ROOT-IO-OK %d", before+10))
	if strings.Contains(console, "ROOT-IO-FAIL") || strings.Contains(console, "I/O error") {
		t.Fatalf("the guest's root disk failed across rackd's restart (last round before it %d):\n%s", before, console)
	}
	if got := showServer(t, alice, "bvr"); got.Status != "ACTIVE" || qemuPID(t, s.ID) != pid {
		t.Fatalf("after the restart bvr is %s with QEMU %d (was %d)", got.Status, qemuPID(t, s.ID), pid)
	}
	t.Logf("rounds before the kill: %d; the guest's root disk kept working across the restart", before)
	openstack(t, alice, "server", "delete", "--wait", "bvr")
	waitVolume(t, alice, "rootvol", "available", time.Minute)
}

// consoleFile is the serial console log QEMU writes for server id, read
// from the file while the API is down.
func consoleFile(t *testing.T, id string) string {
	t.Helper()
	paths, _ := filepath.Glob("/run/rackstack/*/" + id + "/console.log")
	if len(paths) != 1 {
		t.Fatalf("console log of %s: %v", id, paths)
	}
	b, err := os.ReadFile(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var rootIORound = regexp.MustCompile(`ROOT-IO-(?:OK|FAIL) (\d+)`)

// lastRootIO is the last round rootIOScript reported in console.
func lastRootIO(console string) int {
	last := 0
	for _, m := range rootIORound.FindAllStringSubmatch(console, -1) {
		if n, _ := strconv.Atoi(m[1]); n > last {
			last = n
		}
	}
	return last
}
