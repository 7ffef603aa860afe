//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// markerScript is user data that writes a marker to the guest's first
// disk (/dev/vda, 512 MiB in) on its first boot, flushed (fsync: the
// disk's write cache is the guest's to flush, as on any disk), and, on
// any later boot that finds it there, prints it: a boot that prints
// MARK-FOUND:<tag> runs on the disk an earlier boot wrote.
func markerScript(tag string) string {
	return fmt.Sprintf(`#!/bin/sh
m=$(dd if=/dev/vda bs=512 skip=1048576 count=1 2>/dev/null | tr -d '\000' | head -c 40)
case "$m" in
MIGMARK-*) echo "MARK-FOUND:$m" ;;
*) if printf 'MIGMARK-%s' | dd of=/dev/vda bs=512 seek=1048576 conv=sync,fsync 2>/dev/null; then echo MARK-WROTE; else echo MARK-WRITE-FAILED; fi ;;
esac
`, tag)
}

// qemuIn is the PID of the QEMU that runs server id under run directory
// runDir (one node's), 0 when none does.
func qemuIn(runDir, id string) int {
	raw, err := os.ReadFile(filepath.Join(runDir, id, "qemu.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		return 0
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), filepath.Join(runDir, id)) {
		return 0
	}
	return pid
}

// computeNode is one rackd of TestMigrate's cluster.
type computeNode struct {
	*rackd
	runDir string
}

// joinToken makes a join token of that many uses through node.
func joinToken(t *testing.T, creds map[string]string, node *rackd, uses int) string {
	t.Helper()
	out, err := rackctl(t, creds, node, "cluster", "join-token", "create", "--ttl", "1h", "--uses", strconv.Itoa(uses), "-o", "json")
	if err != nil {
		t.Fatalf("join-token create: %v\n%s", err, out)
	}
	var jt struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(out), &jt); err != nil || jt.Token == "" {
		t.Fatalf("join token output %q: %v", out, err)
	}
	return jt.Token
}

// computeCluster starts a cluster of compute nodes named prefix1 to
// prefixN (every node is a compute host, each running its TCG guests
// under a run directory of its own): the first bootstraps it, the others
// join; all are healthy on return, and killed and purged at cleanup
// (tests delete their servers first, through any node up). It returns
// the nodes by name and the admin credentials.
func computeCluster(t *testing.T, prefix string, count int) (map[string]*computeNode, map[string]string) {
	t.Helper()
	nodes := map[string]*computeNode{}
	mk := func(name string, extra ...string) *computeNode {
		n := &computeNode{runDir: fmt.Sprintf("/run/rackstack/%s%d%s", prefix, os.Getpid(), name)}
		args := []string{"--disk", t.TempDir(), "--s3-listen", "off", "--compute", "on", "--accel", "tcg", "--vm-run-dir", n.runDir}
		n.rackd = newRackd(t, name, append(args, extra...)...)
		nodes[name] = n
		t.Cleanup(func() {
			n.kill()
			args := []string{"dev", "--purge", "--name", n.name, "--data-dir", n.dataDir, "--vm-run-dir", n.runDir}
			if out, err := exec.Command(filepath.Join(binDir, "rackd"), args...).CombinedOutput(); err != nil {
				t.Errorf("rackd dev --purge %s: %v\n%s", n.name, err, out)
			}
			os.RemoveAll(n.runDir)
		})
		return n
	}
	n1 := mk(prefix + "1")
	n1.start("--bootstrap")
	n1.waitHealthy()
	creds := openrc(t, n1.dataDir)
	if count > 1 {
		tok := joinToken(t, creds, n1.rackd, count-1)
		var joined []*computeNode
		for i := 2; i <= count; i++ {
			n := mk(fmt.Sprintf("%s%d", prefix, i), "--join", n1.url(), "--join-token", tok)
			n.start()
			joined = append(joined, n)
		}
		for _, n := range joined {
			n.waitHealthy()
		}
	}
	return nodes, creds
}

// TestMigrate moves servers between the two compute nodes of a real
// three-node cluster with the openstack CLI: a server's cold migration
// (its disk's marker found by the guest on the new host) confirmed, a
// second one reverted (the guest back in a new QEMU on the host it left,
// none on the other); then the node of a server booted from a volume is
// killed and the server evacuated: it boots on the other node with the
// volume's data, and the killed node, started again, removes the guest
// it still ran.
func TestMigrate(t *testing.T) {
	testenv.RequireRoot(t, "run QEMU guests")
	for _, c := range []string{"/usr/bin/openstack", "/usr/bin/nova", "qemu-system-x86_64", "qemu-img", "genisoimage"} {
		testenv.RequireCommand(t, c)
	}
	img := testImage(t)
	nodes, creds := computeCluster(t, "m", 3)
	n1, n2, n3 := nodes["m1"], nodes["m2"], nodes["m3"]
	t.Cleanup(func() {
		for _, n := range []*computeNode{n3, n2, n1} {
			if n.cmd == nil {
				continue
			}
			out, err := openstackErr(osEnv(creds, n.rackd), "server", "list", "--all-projects", "-f", "value", "-c", "ID")
			if err != nil {
				continue
			}
			if ids := strings.Fields(out); len(ids) > 0 {
				openstackErr(osEnv(creds, n.rackd), append([]string{"server", "delete", "--wait"}, ids...)...)
			}
			return
		}
	})
	t.Cleanup(func() {
		// What the agents did, for a failure's cause.
		if !t.Failed() {
			return
		}
		for _, n := range []*computeNode{n1, n2, n3} {
			var lines []string
			for _, l := range strings.Split(n.log(), "\n") {
				if strings.Contains(l, "migrat") || strings.Contains(l, "evacuat") || strings.Contains(l, "rebuil") ||
					(strings.Contains(l, "compute") || strings.Contains(l, "volume")) && (strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR")) {
					lines = append(lines, l)
				}
			}
			t.Logf("%s's log:\n%s", n.name, strings.Join(lines[max(0, len(lines)-30):], "\n"))
		}
	})
	// The clients go through a node that is up: m3 until the node
	// killed below is known.
	var admin, alice []string
	through := func(n *computeNode) {
		admin = osEnv(creds, n.rackd)
		alice = osEnv(creds, n.rackd, "OS_USERNAME=alice", "OS_PASSWORD=alice-pass-1", "OS_PROJECT_NAME=demo")
	}
	through(n3)
	setupTestimgAndAlice(t, admin, img)

	home := t.TempDir()
	hostOf := func(id string) string { return showServer(t, admin, id).Host }
	var vmA, vmB serverInfo
	inParallel(t, "boot", map[string]func(t *testing.T){
		"image": func(t *testing.T) {
			script := filepath.Join(home, "a.sh")
			os.WriteFile(script, []byte(markerScript("imgdisk")), 0o644)
			out := openstack(t, alice, "--os-compute-api-version", "2.37", "server", "create", "--image", "testimg", "--flavor", "m1.tiny", "--nic", "none",
				"--user-data", script, "--wait", "-f", "json", "mig-a")
			if err := json.Unmarshal([]byte(out), &vmA); err != nil || vmA.Status != "ACTIVE" {
				t.Fatalf("server create mig-a: %v %q", err, out)
			}
			waitConsole(t, alice, vmA.ID, 3*time.Minute, "MARK-WROTE", "RACKSTACK-TEST-IMAGE: ready")
		},
		"volume": func(t *testing.T) {
			openstack(t, alice, "volume", "create", "--image", "testimg", "--size", "1", "mig-vol")
			waitVolume(t, alice, "mig-vol", "available", 3*time.Minute)
			script := filepath.Join(home, "b.sh")
			os.WriteFile(script, []byte(markerScript("bootvol")), 0o644)
			out := openstack(t, alice, "--os-compute-api-version", "2.37", "server", "create", "--volume", "mig-vol", "--flavor", "m1.tiny", "--nic", "none",
				"--user-data", script, "--wait", "-f", "json", "mig-b")
			if err := json.Unmarshal([]byte(out), &vmB); err != nil || vmB.Status != "ACTIVE" {
				t.Fatalf("server create mig-b: %v %q", err, out)
			}
			waitConsole(t, alice, vmB.ID, 3*time.Minute, "MARK-WROTE", "RACKSTACK-TEST-IMAGE: ready")
		},
	})

	// Cold migration, confirmed: the guest runs on the other node, from
	// the disk its first boot wrote; the source keeps nothing.
	src := hostOf(vmA.ID)
	if out, err := openstackErr(alice, "server", "migrate", vmA.ID); err == nil || !strings.Contains(out, "403") && !strings.Contains(strings.ToLower(out), "policy") {
		t.Fatalf("a member's migrate: %v\n%s", err, out)
	}
	openstack(t, admin, "server", "migrate", "--wait", vmA.ID)
	s := showServer(t, admin, vmA.ID)
	dst := nodes[s.Host]
	if s.Status != "VERIFY_RESIZE" || dst == nil || s.Host == src {
		t.Fatalf("after migrate: %s on %s (from %s), want VERIFY_RESIZE on another", s.Status, s.Host, src)
	}
	if qemuIn(dst.runDir, vmA.ID) == 0 || qemuIn(nodes[src].runDir, vmA.ID) != 0 {
		t.Fatalf("QEMU of %s: %d on %s, %d on %s", vmA.ID, qemuIn(dst.runDir, vmA.ID), dst.name, qemuIn(nodes[src].runDir, vmA.ID), src)
	}
	openstack(t, admin, "server", "migration", "confirm", vmA.ID)
	if !eventually(time.Minute, func() bool { return showServer(t, admin, vmA.ID).Status == "ACTIVE" }) {
		t.Fatalf("%s not ACTIVE after the confirm", vmA.ID)
	}
	waitConsole(t, alice, vmA.ID, 3*time.Minute, "MARK-FOUND:MIGMARK-imgdisk")
	srcDir := filepath.Join(nodes[src].dataDir, "compute", "instances", vmA.ID)
	if !eventually(time.Minute, func() bool { _, err := os.Stat(srcDir); return os.IsNotExist(err) }) {
		t.Fatalf("the source kept %s after the confirm", srcDir)
	}
	migs := openstack(t, admin, "--os-compute-api-version", "2.59", "server", "migration", "list", "--server", vmA.ID, "-f", "json")
	if !strings.Contains(migs, `"confirmed"`) || !strings.Contains(migs, `"migration"`) {
		t.Fatalf("migrations of %s: %s", vmA.ID, migs)
	}

	// Migrated back and reverted: on the host it left, in a new QEMU.
	back := dst.name
	before := qemuIn(dst.runDir, vmA.ID)
	openstack(t, admin, "--os-compute-api-version", "2.56", "server", "migrate", "--host", src, "--wait", vmA.ID)
	if s := showServer(t, admin, vmA.ID); s.Status != "VERIFY_RESIZE" || s.Host != src {
		t.Fatalf("after the second migrate: %s on %s, want VERIFY_RESIZE on %s", s.Status, s.Host, src)
	}
	openstack(t, admin, "server", "migration", "revert", vmA.ID)
	if !eventually(2*time.Minute, func() bool { s = showServer(t, admin, vmA.ID); return s.Status == "ACTIVE" }) {
		t.Fatalf("%s is %s after the revert", vmA.ID, s.Status)
	}
	if s.Host != back {
		t.Fatalf("reverted to %s, want %s", s.Host, back)
	}
	if !eventually(time.Minute, func() bool { return qemuIn(nodes[src].runDir, vmA.ID) == 0 }) {
		t.Fatalf("the new host still runs %s after the revert", vmA.ID)
	}
	if pid := qemuIn(dst.runDir, vmA.ID); pid == 0 || pid == before {
		t.Fatalf("QEMU of %s on %s after the revert: %d (was %d)", vmA.ID, back, pid, before)
	}

	// Evacuation: refused while the host is up; with its node killed, the
	// server booted from a volume comes up on the other with its data.
	bHost := nodes[hostOf(vmB.ID)]
	for _, n := range []*computeNode{n3, n2, n1} {
		if n != bHost {
			through(n)
			break
		}
	}
	if out, err := openstackErr(admin, "server", "evacuate", vmB.ID); err == nil || !strings.Contains(out, "still in use") {
		t.Fatalf("evacuate with the host up: %v\n%s", err, out)
	}
	oldPID := qemuIn(bHost.runDir, vmB.ID)
	if oldPID == 0 {
		t.Fatalf("no QEMU of %s on %s", vmB.ID, bHost.name)
	}
	bHost.kill()
	if !eventually(time.Minute, func() bool {
		out, err := openstackErr(admin, "compute", "service", "list", "--service", "nova-compute", "--host", bHost.name, "-f", "value", "-c", "State")
		return err == nil && strings.TrimSpace(out) == "down"
	}) {
		t.Fatalf("%s's compute service is not down after its kill", bHost.name)
	}
	// The installed openstack CLI (6.0) evacuates but then fails reading
	// the answer ('TupleWithMeta' object has no attribute 'id'): nova's
	// CLI asks it.
	nova := exec.Command("/usr/bin/nova", "evacuate", vmB.ID)
	nova.Env = admin
	if out, err := nova.CombinedOutput(); err != nil {
		t.Fatalf("nova evacuate: %v\n%s", err, out)
	}
	if !eventually(2*time.Minute, func() bool { s = showServer(t, admin, vmB.ID); return s.Status == "ACTIVE" }) {
		t.Fatalf("%s is %s after its evacuation", vmB.ID, s.Status)
	}
	bNew := nodes[s.Host]
	if bNew == nil || bNew == bHost || qemuIn(bNew.runDir, vmB.ID) == 0 {
		t.Fatalf("evacuated %s from %s on %s: not on another node, or no QEMU there", vmB.ID, bHost.name, s.Host)
	}
	waitConsole(t, alice, vmB.ID, 3*time.Minute, "MARK-FOUND:MIGMARK-bootvol")
	migs = openstack(t, admin, "--os-compute-api-version", "2.59", "server", "migration", "list", "--server", vmB.ID, "-f", "json")
	if !strings.Contains(migs, `"evacuation"`) || !strings.Contains(migs, `"done"`) {
		t.Fatalf("migrations of %s: %s", vmB.ID, migs)
	}
	// The old node back: the guest it still ran (guests outlive rackd)
	// is removed, the server stays where it is.
	if qemuIn(bHost.runDir, vmB.ID) != oldPID {
		t.Fatalf("the old guest of %s on %s is %d, was %d: it did not outlive its rackd", vmB.ID, bHost.name, qemuIn(bHost.runDir, vmB.ID), oldPID)
	}
	bHost.start()
	bHost.waitHealthy()
	if !eventually(2*time.Minute, func() bool { return qemuIn(bHost.runDir, vmB.ID) == 0 }) {
		t.Fatalf("%s still runs the evacuated %s after it came back", bHost.name, vmB.ID)
	}
	if s := showServer(t, admin, vmB.ID); s.Status != "ACTIVE" || s.Host != bNew.name {
		t.Fatalf("%s after its old node came back: %s on %s", vmB.ID, s.Status, s.Host)
	}
}
