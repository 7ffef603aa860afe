//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// liveTickScript is user data that leaves a loop running in the guest:
// every second it writes "LV-<n>" to the volume plugged as /dev/vdc (when
// there is one), drops the guest's caches, reads it back, reads the
// marker its start wrote on the root disk (512 MiB in), and prints
// "LIVETICK-<n> vol=<read> root=<read>". A guest that kept running across
// a move goes on counting where it was; one whose disks did not follow
// reads something else, and one whose volume hangs stops counting.
func liveTickScript(mark string) string {
	return fmt.Sprintf(`#!/bin/sh
printf '%s' | dd of=/dev/vda bs=512 seek=1048576 conv=sync,fsync 2>/dev/null
(
i=0
while :; do
	i=$((i+1))
	v=-
	if [ -b /dev/vdc ]; then
		printf 'LV-%%d' $i | dd of=/dev/vdc bs=512 seek=8 conv=sync,fsync 2>/dev/null
		echo 3 > /proc/sys/vm/drop_caches
		v=$(dd if=/dev/vdc bs=512 skip=8 count=1 2>/dev/null | tr -d '\000')
	fi
	echo 3 > /proc/sys/vm/drop_caches
	r=$(dd if=/dev/vda bs=512 skip=1048576 count=1 2>/dev/null | tr -d '\000')
	echo "LIVETICK-$i vol=$v root=$r"
	sleep 1
done
) </dev/null >/dev/console 2>&1 &
echo LOOP-STARTED
`, mark)
}

var liveTick = regexp.MustCompile(`LIVETICK-(\d+) vol=(\S*) root=(\S*)`)

// liveTicks are the ticks of a console log, in order.
type tick struct {
	n         int
	vol, root string
}

func liveTicks(console string) []tick {
	var out []tick
	for _, m := range liveTick.FindAllStringSubmatch(console, -1) {
		n, _ := strconv.Atoi(m[1])
		out = append(out, tick{n: n, vol: m[2], root: m[3]})
	}
	return out
}

// TestLiveMigrate live-migrates a running TCG guest between the compute
// nodes of a real three-node cluster with the openstack CLI: the guest
// counts on across the move (its counter goes on where it was, on the
// new host's console, with no boot), its root disk's marker is read on
// the new host, and a volume plugged into it is written and read there;
// the source runs no QEMU of it after. The migration is recorded
// (os-migrations: live-migration, completed; the instance action).
// A member's live migration is refused (403), one to the server's own
// host (400), a stopped server's (409).
func TestLiveMigrate(t *testing.T) {
	testenv.RequireRoot(t, "run QEMU guests")
	for _, c := range []string{"/usr/bin/openstack", "qemu-system-x86_64", "qemu-img", "genisoimage"} {
		testenv.RequireCommand(t, c)
	}
	img := testImage(t)
	nodes, creds := computeCluster(t, "l", 3)
	n1, n2, n3 := nodes["l1"], nodes["l2"], nodes["l3"]
	admin := osEnv(creds, n1.rackd)
	alice := osEnv(creds, n1.rackd, "OS_USERNAME=alice", "OS_PASSWORD=alice-pass-1", "OS_PROJECT_NAME=demo")
	t.Cleanup(func() {
		if out, err := openstackErr(admin, "server", "list", "--all-projects", "-f", "value", "-c", "ID"); err == nil {
			if ids := strings.Fields(out); len(ids) > 0 {
				openstackErr(admin, append([]string{"server", "delete", "--wait"}, ids...)...)
			}
		}
	})
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, n := range []*computeNode{n1, n2, n3} {
			var lines []string
			for _, l := range strings.Split(n.log(), "\n") {
				if strings.Contains(l, "migrat") || strings.Contains(l, "volume") && (strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR")) ||
					strings.Contains(l, "compute") && (strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR")) {
					lines = append(lines, l)
				}
			}
			t.Logf("%s's log:\n%s", n.name, strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
	})
	setupTestimgAndAlice(t, admin, img)

	home := t.TempDir()
	script := filepath.Join(home, "tick.sh")
	os.WriteFile(script, []byte(liveTickScript("ROOTMARK-lm")), 0o644)
	openstack(t, alice, "volume", "create", "--size", "1", "lm-vol")
	openstack(t, alice, "volume", "create", "--image", "testimg", "--size", "1", "lm-boot")
	var vm serverInfo
	outJSON := openstack(t, alice, "--os-compute-api-version", "2.37", "server", "create", "--image", "testimg", "--flavor", "m1.tiny", "--nic", "none",
		"--user-data", script, "--wait", "-f", "json", "lm-a")
	if err := json.Unmarshal([]byte(outJSON), &vm); err != nil || vm.Status != "ACTIVE" {
		t.Fatalf("server create lm-a: %v %q", err, outJSON)
	}
	waitConsole(t, alice, vm.ID, 3*time.Minute, "LOOP-STARTED", "LIVETICK-3 ")
	waitVolume(t, alice, "lm-vol", "available", time.Minute)
	openstack(t, alice, "server", "add", "volume", vm.ID, "lm-vol")
	waitVolume(t, alice, "lm-vol", "in-use", 2*time.Minute)
	var before []tick
	if !eventually(2*time.Minute, func() bool {
		out, _ := openstackErr(alice, "console", "log", "show", vm.ID)
		before = liveTicks(out)
		return len(before) > 0 && strings.HasPrefix(before[len(before)-1].vol, "LV-")
	}) {
		t.Fatalf("the guest does not write its volume: ticks %v", before)
	}
	src := showServer(t, admin, vm.ID).Host
	srcNode := nodes[src]
	srcPID := qemuIn(srcNode.runDir, vm.ID)
	if srcPID == 0 {
		t.Fatalf("no QEMU of %s on %s", vm.ID, src)
	}

	// Bad input: a member, the server's own host.
	if out, err := openstackErr(alice, "server", "migrate", "--live-migration", vm.ID); err == nil || !strings.Contains(out, "403") && !strings.Contains(strings.ToLower(out), "policy") {
		t.Fatalf("a member's live migration: %v\n%s", err, out)
	}
	if out, err := openstackErr(admin, "--os-compute-api-version", "2.30", "server", "migrate", "--live-migration", "--host", src, vm.ID); err == nil || !strings.Contains(out, "400") || !strings.Contains(out, "current host") {
		t.Fatalf("a live migration to the server's own host: %v\n%s", err, out)
	}

	// The move. The counter it had is the floor of what the new host
	// shows.
	last := before[len(before)-1].n
	openstack(t, admin, "--os-compute-api-version", "2.30", "server", "migrate", "--live-migration", "--wait", vm.ID)
	s := showServer(t, admin, vm.ID)
	dst := nodes[s.Host]
	if s.Status != "ACTIVE" || dst == nil || s.Host == src {
		t.Fatalf("after the live migration: %s on %s (from %s), want ACTIVE on another", s.Status, s.Host, src)
	}
	if qemuIn(dst.runDir, vm.ID) == 0 {
		t.Fatalf("no QEMU of %s on %s after its live migration", vm.ID, dst.name)
	}
	if !eventually(time.Minute, func() bool { return qemuIn(srcNode.runDir, vm.ID) == 0 }) {
		t.Fatalf("%s still runs %s after its live migration", src, vm.ID)
	}
	var after []tick
	var console string
	if !eventually(2*time.Minute, func() bool {
		console, _ = openstackErr(alice, "console", "log", "show", vm.ID)
		after = liveTicks(console)
		return len(after) >= 3
	}) {
		t.Fatalf("the guest does not count on its new host:\n%s", console)
	}
	if strings.Contains(console, "RACKSTACK-TEST-IMAGE: booted") {
		t.Fatalf("the guest booted again on its new host:\n%s", console)
	}
	if after[0].n <= last {
		// (The first lines may be the source's last, sent with the
		// guest's memory? No: the console log is the new QEMU's own.)
		t.Fatalf("the counter on the new host starts at %d, not past %d: the guest restarted\n%s", after[0].n, last, console)
	}
	for i, tk := range after {
		if i > 0 && tk.n != after[i-1].n+1 {
			t.Fatalf("the counter skipped from %d to %d on the new host:\n%s", after[i-1].n, tk.n, console)
		}
		if tk.root != "ROOTMARK-lm" {
			t.Fatalf("tick %d read %q from the root disk on the new host, want its marker", tk.n, tk.root)
		}
		if i > 0 && tk.vol != fmt.Sprintf("LV-%d", tk.n) {
			t.Fatalf("tick %d read %q from the volume on the new host, want LV-%d", tk.n, tk.vol, tk.n)
		}
	}
	if v := waitVolume(t, alice, "lm-vol", "in-use", time.Minute); len(v.Attachments) != 1 {
		t.Fatalf("lm-vol attachments after the move: %+v", v.Attachments)
	}
	migs := openstack(t, admin, "--os-compute-api-version", "2.59", "server", "migration", "list", "--server", vm.ID, "-f", "json")
	if !strings.Contains(migs, `"live-migration"`) || !strings.Contains(migs, `"completed"`) {
		t.Fatalf("migrations of %s: %s", vm.ID, migs)
	}
	if acts := openstack(t, admin, "server", "event", "list", vm.ID, "-f", "value", "-c", "Action"); !strings.Contains(acts, "live-migration") {
		t.Fatalf("actions of %s: %s", vm.ID, acts)
	}
	// Nothing in progress: the server's migrations list none.
	if out := openstack(t, admin, "--os-compute-api-version", "2.23", "server", "migration", "list", "--server", vm.ID, "-f", "value", "-c", "Status"); strings.Contains(out, "running") {
		t.Fatalf("a live migration still runs: %s", out)
	}

	// Back to the host it left, named (2.30).
	openstack(t, admin, "--os-compute-api-version", "2.30", "server", "migrate", "--live-migration", "--host", src, "--wait", vm.ID)
	if s := showServer(t, admin, vm.ID); s.Status != "ACTIVE" || s.Host != src {
		t.Fatalf("after the live migration back: %s on %s, want ACTIVE on %s", s.Status, s.Host, src)
	}
	if !eventually(2*time.Minute, func() bool {
		console, _ = openstackErr(alice, "console", "log", "show", vm.ID)
		tk := liveTicks(console)
		return len(tk) >= 2 && tk[0].n > after[len(after)-1].n && tk[len(tk)-1].vol == fmt.Sprintf("LV-%d", tk[len(tk)-1].n)
	}) {
		t.Fatalf("the guest does not count on, with its volume, back on %s:\n%s", src, console)
	}

	// An abort asked at once (2.65: one still preparing too) leaves the
	// server where it is, still counting, the migration cancelled; one
	// that came too late (the migration completed first) is refused,
	// and the server runs on the other host.
	openstack(t, admin, "--os-compute-api-version", "2.30", "server", "migrate", "--live-migration", vm.ID)
	var mig []struct {
		ID     int    `json:"Id"`
		Status string `json:"Status"`
		Type   string `json:"Type"`
	}
	json.Unmarshal([]byte(openstack(t, admin, "--os-compute-api-version", "2.59", "server", "migration", "list", "--server", vm.ID, "-f", "json")), &mig)
	if len(mig) == 0 || mig[0].Type != "live-migration" {
		t.Fatalf("no live migration listed: %+v", mig)
	}
	_, abortErr := openstackErr(admin, "--os-compute-api-version", "2.65", "server", "migration", "abort", vm.ID, strconv.Itoa(mig[0].ID))
	var end serverInfo
	if !eventually(2*time.Minute, func() bool { end = showServer(t, admin, vm.ID); return end.Status == "ACTIVE" }) {
		t.Fatalf("%s is %s after the abort", vm.ID, end.Status)
	}
	json.Unmarshal([]byte(openstack(t, admin, "--os-compute-api-version", "2.59", "server", "migration", "list", "--server", vm.ID, "-f", "json")), &mig)
	switch {
	case abortErr == nil && (mig[0].Status != "cancelled" || end.Host != src):
		t.Fatalf("after an abort taken: migration %+v, the server on %s (was on %s)", mig[0], end.Host, src)
	case abortErr != nil && (mig[0].Status != "completed" || end.Host == src):
		t.Fatalf("after an abort refused (%v): migration %+v, the server on %s (was on %s)", abortErr, mig[0], end.Host, src)
	}
	t.Logf("abort taken: %v; the server on %s", abortErr == nil, end.Host)
	if !eventually(2*time.Minute, func() bool {
		console, _ = openstackErr(alice, "console", "log", "show", vm.ID)
		tk := liveTicks(console)
		return len(tk) >= 2 && tk[len(tk)-1].vol == fmt.Sprintf("LV-%d", tk[len(tk)-1].n)
	}) {
		t.Fatalf("the guest does not count on, with its volume, after the abort:\n%s", console)
	}

	// A paused server moves paused, and moves again (a guest that came
	// in paused and never ran since), then runs on once unpaused.
	openstack(t, admin, "server", "pause", vm.ID)
	if !eventually(time.Minute, func() bool { return showServer(t, admin, vm.ID).Status == "PAUSED" }) {
		t.Fatalf("%s not PAUSED", vm.ID)
	}
	for i := 0; i < 2; i++ {
		from := showServer(t, admin, vm.ID).Host
		openstack(t, admin, "--os-compute-api-version", "2.30", "server", "migrate", "--live-migration", vm.ID)
		var p serverInfo
		if !eventually(2*time.Minute, func() bool { p = showServer(t, admin, vm.ID); return p.Status == "PAUSED" && p.Host != from }) {
			t.Fatalf("paused %s after its live migration from %s: %s on %s", vm.ID, from, p.Status, p.Host)
		}
	}
	resumed := liveTicks(console)
	openstack(t, admin, "server", "unpause", vm.ID)
	if !eventually(2*time.Minute, func() bool {
		console, _ = openstackErr(alice, "console", "log", "show", vm.ID)
		tk := liveTicks(console)
		return len(tk) >= 2 && tk[0].n > resumed[len(resumed)-1].n && tk[len(tk)-1].vol == fmt.Sprintf("LV-%d", tk[len(tk)-1].n)
	}) {
		t.Fatalf("the guest does not count on, with its volume, once unpaused:\n%s", console)
	}

	// A server booted from a volume: no disk to copy, its boot volume
	// opened by the new host at the switch. It counts on there, reading
	// the marker it wrote on its boot volume.
	bootScript := filepath.Join(home, "tickb.sh")
	os.WriteFile(bootScript, []byte(liveTickScript("ROOTMARK-lb")), 0o644)
	waitVolume(t, alice, "lm-boot", "available", 3*time.Minute)
	var vb serverInfo
	outJSON = openstack(t, alice, "--os-compute-api-version", "2.37", "server", "create", "--volume", "lm-boot", "--flavor", "m1.tiny", "--nic", "none",
		"--user-data", bootScript, "--wait", "-f", "json", "lm-b")
	if err := json.Unmarshal([]byte(outJSON), &vb); err != nil || vb.Status != "ACTIVE" {
		t.Fatalf("server create lm-b: %v %q", err, outJSON)
	}
	bootConsole := waitConsole(t, alice, vb.ID, 3*time.Minute, "LOOP-STARTED", "LIVETICK-3 ")
	bTicks := liveTicks(bootConsole)
	bFrom := showServer(t, admin, vb.ID).Host
	openstack(t, admin, "--os-compute-api-version", "2.30", "server", "migrate", "--live-migration", "--wait", vb.ID)
	if s := showServer(t, admin, vb.ID); s.Status != "ACTIVE" || s.Host == bFrom || nodes[s.Host] == nil {
		t.Fatalf("after the live migration of a volume-backed server: %s on %s (from %s)", s.Status, s.Host, bFrom)
	}
	if !eventually(2*time.Minute, func() bool {
		bootConsole, _ = openstackErr(alice, "console", "log", "show", vb.ID)
		tk := liveTicks(bootConsole)
		return len(tk) >= 2 && tk[0].n > bTicks[len(bTicks)-1].n && tk[len(tk)-1].root == "ROOTMARK-lb"
	}) || strings.Contains(bootConsole, "RACKSTACK-TEST-IMAGE: booted") {
		t.Fatalf("the volume-backed guest does not count on, with its boot volume, on its new host:\n%s", bootConsole)
	}

	// A stopped server is not live-migrated.
	openstack(t, admin, "server", "stop", vm.ID)
	if !eventually(time.Minute, func() bool { return showServer(t, admin, vm.ID).Status == "SHUTOFF" }) {
		t.Fatalf("%s not SHUTOFF", vm.ID)
	}
	if out, err := openstackErr(admin, "server", "migrate", "--live-migration", vm.ID); err == nil || !strings.Contains(out, "409") {
		t.Fatalf("a stopped server's live migration: %v\n%s", err, out)
	}
}
