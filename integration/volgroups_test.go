//go:build integration

package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// cinder runs the real cinder CLI (for what openstack's does not have:
// group-update --add-volumes, create --group-id, group-create-from-src).
func cinder(t *testing.T, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/cinder", args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cinder %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// cinderTable reads the cinder CLI's two-column property table.
func cinderTable(out string) map[string]string {
	p := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		cells := strings.Split(l, "|")
		if len(cells) == 4 {
			p[strings.TrimSpace(cells[1])] = strings.TrimSpace(cells[2])
		}
	}
	return p
}

// pyList reads a Python list of strings as the cinder CLI prints it.
func pyList(s string) []string {
	var out []string
	for _, x := range strings.Split(strings.Trim(s, "[]"), ",") {
		if x = strings.Trim(strings.TrimSpace(x), "'"); x != "" {
			out = append(out, x)
		}
	}
	return out
}

type groupInfo struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Status      string   `json:"status"`
	Volumes     []string `json:"volumes"`
	VolumeTypes []string `json:"volume_types"`
}

// TestVolumeGroups drives generic volume groups and group snapshots with
// the openstack and cinder CLIs against a real rackd: a group of two
// volumes written over NBD, a group snapshot of them, writes after it,
// and a group made from the snapshot whose volumes hold exactly what was
// written before the snapshot.
func TestVolumeGroups(t *testing.T) {
	testenv.RequireRoot(t, "export volumes over NBD")
	for _, c := range []string{"/usr/bin/openstack", "/usr/bin/cinder", "qemu-io"} {
		testenv.RequireCommand(t, c)
	}
	n1 := startDevCloud(t, "vg1", "--disk", t.TempDir(), "--compute", "off", "--s3-listen", "off")
	creds := openrc(t, n1.dataDir)
	admin := osEnv(creds, n1)
	openstack(t, admin, "project", "create", "demo")
	openstack(t, admin, "user", "create", "--project", "demo", "--password", "alice-pass-1", "alice")
	openstack(t, admin, "role", "add", "--project", "demo", "--user", "alice", "member")
	alice := osEnv(creds, n1, "OS_USERNAME=alice", "OS_PASSWORD=alice-pass-1", "OS_PROJECT_NAME=demo")
	v := func(minor string, env []string, args ...string) string {
		t.Helper()
		return openstack(t, env, append([]string{"--os-volume-api-version", "3." + minor}, args...)...)
	}
	// openstack volume group show needs cinderclient's groups.show,
	// which cinderclient 9 does not have: cinder's group-show it is.
	showGroup := func(name string) groupInfo {
		t.Helper()
		p := cinderTable(cinder(t, alice, "--os-volume-api-version", "3.25", "group-show", "--list-volume", "True", name))
		g := groupInfo{ID: p["id"], Name: p["name"], Status: p["status"], Volumes: pyList(p["volumes"]), VolumeTypes: pyList(p["volume_types"])}
		if g.ID == "" {
			t.Fatalf("group-show %s: %v", name, p)
		}
		return g
	}

	v("11", admin, "volume", "group", "type", "create", "gt")
	openstack(t, admin, "volume", "type", "create", "fast")
	fast := strings.TrimSpace(openstack(t, admin, "volume", "type", "show", "-f", "value", "-c", "id", "fast"))

	// A volume type the group does not name is refused, naming it.
	if out, err := openstackErr(alice, "--os-volume-api-version", "3.13", "volume", "group", "create", "gt", "nosuch", "--name", "bad"); err == nil {
		t.Fatalf("group of an unknown volume type made:\n%s", out)
	}
	v("13", alice, "volume", "group", "create", "gt", "fast", "--name", "g1", "--description", "two disks")
	g := showGroup("g1")
	if g.Status != "available" || !slices.Equal(g.VolumeTypes, []string{fast}) || len(g.Volumes) != 0 {
		t.Fatalf("group %+v", g)
	}

	// One volume made in the group, one added to it.
	cinder(t, alice, "--os-volume-api-version", "3.13", "create", "--group-id", g.ID, "--volume-type", "fast", "--name", "d1", "1")
	openstack(t, alice, "volume", "create", "--size", "1", "--type", "fast", "d2")
	d1 := waitVolume(t, alice, "d1", "available", time.Minute)
	d2 := waitVolume(t, alice, "d2", "available", time.Minute)
	cinder(t, alice, "--os-volume-api-version", "3.13", "group-update", "--add-volumes", d2.ID, "g1")
	want := []string{d1.ID, d2.ID}
	slices.Sort(want)
	got := showGroup("g1").Volumes
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("group volumes %v, want %v", got, want)
	}
	if out := v("13", alice, "volume", "show", "-f", "value", "-c", "group_id", "d2"); strings.TrimSpace(out) != g.ID {
		t.Fatalf("d2's group_id %q", out)
	}
	if out := v("13", alice, "volume", "group", "list", "-f", "value", "-c", "Name"); strings.TrimSpace(out) != "g1" {
		t.Fatalf("group list %q", out)
	}
	// openstack volume group set shows the group through groups.show
	// too: cinder's group-update renames it.
	cinder(t, alice, "--os-volume-api-version", "3.13", "group-update", "--name", "g1b", "g1")

	// Data before the snapshot (pattern 0x11 on d1, 0x22 on d2), the
	// group snapshot, then other data (0x33) on both.
	// The group's volumes stay exported (open in the block store) from
	// the first write: the group snapshot is of open volumes.
	exports := map[string]string{}
	write := func(id, pattern string) {
		t.Helper()
		if exports[id] == "" {
			exports[id] = exportVolume(t, creds, n1, id).UnixURI
		}
		nbdTool(t, "qemu-io", "-f", "raw", "-c", "write -P "+pattern+" 0 1M", "-c", "write -P "+pattern+" 512M 64k", exports[id])
	}
	unexport := func(id string) {
		t.Helper()
		if out, err := rackctl(t, creds, n1, "volume", "unexport", id); err != nil {
			t.Fatalf("unexport %s: %v\n%s", id, err, out)
		}
	}
	write(d1.ID, "0x11")
	write(d2.ID, "0x22")
	v("14", alice, "volume", "group", "snapshot", "create", "--name", "gs1", "g1b")
	if out := v("14", alice, "volume", "group", "snapshot", "list", "-f", "value", "-c", "Name", "-c", "Status"); strings.TrimSpace(out) != "available gs1" {
		t.Fatalf("group snapshot list %q", out)
	}
	if out := openstack(t, alice, "volume", "snapshot", "list", "-f", "value", "-c", "Status"); strings.Count(out, "available") != 2 {
		t.Fatalf("the group snapshot's snapshots: %q", out)
	}
	write(d1.ID, "0x33")
	write(d2.ID, "0x33")

	// A group from the group snapshot: each volume holds its source's
	// data as it was at the snapshot.
	cinder(t, alice, "--os-volume-api-version", "3.14", "group-create-from-src", "--group-snapshot", "gs1", "--name", "g2")
	g2 := showGroup("g2")
	if g2.Status != "available" || len(g2.Volumes) != 2 {
		t.Fatalf("group from snapshot %+v", g2)
	}
	for _, id := range g2.Volumes {
		var vol struct {
			SnapshotID string `json:"snapshot_id"`
			Status     string `json:"status"`
		}
		out := v("14", alice, "volume", "show", "-f", "json", id)
		if err := json.Unmarshal([]byte(out), &vol); err != nil || vol.Status != "available" {
			t.Fatalf("volume %s: %v\n%s", id, err, out)
		}
		src := strings.TrimSpace(openstack(t, alice, "volume", "snapshot", "show", "-f", "value", "-c", "volume_id", vol.SnapshotID))
		pattern := map[string]string{d1.ID: "0x11", d2.ID: "0x22"}[src]
		if pattern == "" {
			t.Fatalf("volume %s is of snapshot %s of %q, not of the group's volumes", id, vol.SnapshotID, src)
		}
		ex := exportVolume(t, creds, n1, id)
		out = nbdTool(t, "qemu-io", "-f", "raw", "-c", "read -P "+pattern+" 0 1M", "-c", "read -P "+pattern+" 512M 64k", "-c", "read -P 0 1M 1M", ex.UnixURI)
		if strings.Contains(out, "Pattern verification failed") {
			t.Fatalf("volume %s from the snapshot of %s:\n%s", id, src, out)
		}
		unexport(id)
	}
	unexport(d1.ID)
	unexport(d2.ID)

	// A group with a group snapshot stays; the snapshot goes, then the
	// groups with their volumes.
	if out, err := openstackErr(alice, "--os-volume-api-version", "3.13", "volume", "group", "delete", "--force", "g1b"); err == nil {
		t.Fatalf("group with a group snapshot deleted:\n%s", out)
	}
	v("14", alice, "volume", "group", "snapshot", "delete", "gs1")
	v("13", alice, "volume", "group", "delete", "--force", "g1b")
	v("13", alice, "volume", "group", "delete", "--force", "g2")
	if !eventually(time.Minute, func() bool {
		out, err := openstackErr(alice, "--os-volume-api-version", "3.13", "volume", "group", "list", "-f", "value")
		vols, err2 := openstackErr(alice, "volume", "list", "-f", "value")
		return err == nil && err2 == nil && strings.TrimSpace(out) == "" && strings.TrimSpace(vols) == ""
	}) {
		t.Fatalf("groups or volumes left:\n%s\n%s", v("13", alice, "volume", "group", "list"), openstack(t, alice, "volume", "list"))
	}
}

// TestConsistentGroupSnapshot takes a group snapshot of a consistent
// group type while a real NBD client (qemu-io) writes a numbered stamp to
// page i of the first volume and then of the second, for i = 1, 2, ...,
// each write acknowledged before the next and never flushed by the
// client. The group made from the snapshot holds the volumes at one
// instant: the first holds stamps 1..a, the second 1..b with b = a or
// a-1 (a stamp is never in the second without being in the first, and
// the first is at most one write ahead).
func TestConsistentGroupSnapshot(t *testing.T) {
	testenv.RequireRoot(t, "export volumes over NBD")
	for _, c := range []string{"/usr/bin/openstack", "/usr/bin/cinder", "qemu-io", "qemu-img", "stdbuf"} {
		testenv.RequireCommand(t, c)
	}
	n1 := startDevCloud(t, "cg1", "--disk", t.TempDir(), "--compute", "off", "--s3-listen", "off")
	creds := openrc(t, n1.dataDir)
	admin := osEnv(creds, n1)
	v := func(minor string, args ...string) string {
		t.Helper()
		return openstack(t, admin, append([]string{"--os-volume-api-version", "3." + minor}, args...)...)
	}
	v("11", "volume", "group", "type", "create", "cgt")
	cinder(t, admin, "--os-volume-api-version", "3.11", "group-type-key", "cgt", "set", "consistent_group_snapshot_enabled=<is> True")
	openstack(t, admin, "volume", "type", "create", "fast")
	v("13", "volume", "group", "create", "cgt", "fast", "--name", "cg")
	cg := cinderTable(cinder(t, admin, "--os-volume-api-version", "3.13", "group-show", "cg"))["id"]
	for _, name := range []string{"c1", "c2"} {
		cinder(t, admin, "--os-volume-api-version", "3.13", "create", "--group-id", cg, "--volume-type", "fast", "--name", name, "1")
	}
	c1 := waitVolume(t, admin, "c1", "available", time.Minute)
	c2 := waitVolume(t, admin, "c2", "available", time.Minute)
	uris := []string{exportVolume(t, creds, n1, c1.ID).UnixURI, exportVolume(t, creds, n1, c2.ID).UnixURI}

	// The writer: one qemu-io reading its commands from stdin, opening
	// each volume in turn (no flush: cache.no-flush) for one write.
	const stamps = 4000
	var script strings.Builder
	for i := 1; i <= stamps; i++ {
		for _, u := range uris {
			fmt.Fprintf(&script, "open -o driver=raw,cache.no-flush=on %s\nwrite -P %d %d 4k\nclose\n", u, stamp(i), i*4096)
		}
	}
	wrote, failed, stop := stampWriter(t, script.String(), 10*time.Minute, false)
	if !eventually(2*time.Minute, func() bool { return wrote.Load() >= 100 }) {
		t.Fatalf("the writer wrote %d stamps in 2 minutes (%v)", wrote.Load(), failed.Load())
	}
	before := wrote.Load()
	v("14", "volume", "group", "snapshot", "create", "--name", "cgs", "cg")
	after := wrote.Load()
	if !eventually(time.Minute, func() bool { return wrote.Load() > after }) {
		t.Fatalf("the writer stopped after the group snapshot (%d writes; %v)", after, failed.Load())
	}
	if after >= 2*stamps {
		t.Fatalf("the writer had finished before the group snapshot was made: make it write longer")
	}
	t.Logf("group snapshot taken between writes %d and %d of %d", before, after, 2*stamps)
	// The node held both exports (the hold, not luck, made the instant).
	heldBoth := false
	for _, l := range strings.Split(n1.log(), "\n") {
		if strings.Contains(l, "held volumes for a group snapshot") && strings.Contains(l, c1.ID) && strings.Contains(l, c2.ID) {
			heldBoth = true
		}
	}
	if !heldBoth {
		t.Fatalf("rackd did not log holding both volumes for the group snapshot")
	}
	var list []map[string]any
	if out := v("14", "volume", "group", "snapshot", "list", "-f", "json"); json.Unmarshal([]byte(out), &list) != nil ||
		len(list) != 1 || list[0]["Name"] != "cgs" || list[0]["Status"] != "available" {
		t.Fatalf("group snapshot list %q", out)
	}
	stop() // the writer has done its part
	if f := failed.Load(); f != nil {
		t.Fatalf("the writer failed: %v", f)
	}

	cinder(t, admin, "--os-volume-api-version", "3.14", "group-create-from-src", "--group-snapshot", "cgs", "--name", "cg2")
	p := cinderTable(cinder(t, admin, "--os-volume-api-version", "3.25", "group-show", "--list-volume", "True", "cg2"))
	made := pyList(p["volumes"])
	if p["status"] != "available" || len(made) != 2 {
		t.Fatalf("group from the snapshot: %v", p)
	}
	held := map[string]int{}
	for _, id := range made {
		waitVolume(t, admin, id, "available", time.Minute)
		snap := strings.TrimSpace(v("14", "volume", "show", "-f", "value", "-c", "snapshot_id", id))
		src := strings.TrimSpace(openstack(t, admin, "volume", "snapshot", "show", "-f", "value", "-c", "volume_id", snap))
		ex := exportVolume(t, creds, n1, id)
		file := filepath.Join(t.TempDir(), "vol.raw")
		nbdTool(t, "qemu-img", "convert", "-f", "raw", "-O", "raw", ex.UnixURI, file)
		if out, err := rackctl(t, creds, n1, "volume", "unexport", id); err != nil {
			t.Fatalf("unexport %s: %v\n%s", id, err, out)
		}
		held[src] = stampsIn(t, file, stamps)
	}
	a, b := held[c1.ID], held[c2.ID]
	t.Logf("the snapshot holds stamps 1..%d of %s and 1..%d of %s", a, c1.ID, b, c2.ID)
	if a < 1 || (b != a && b != a-1) {
		t.Fatalf("not one instant: the first volume holds stamps 1..%d, the second 1..%d", a, b)
	}
}

// stamp is the byte page i is written with.
func stamp(i int) int { return i%255 + 1 }

// stampsIn reads a volume's copy: pages 1..n hold their stamps, then
// zeroes to page max; anything else (a hole, a torn or wrong page) fails.
func stampsIn(t *testing.T, file string, max int) int {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data := make([]byte, (max+1)*4096)
	if _, err := f.ReadAt(data, 0); err != nil {
		t.Fatal(err)
	}
	n := 0
	for i := 1; i <= max; i++ {
		page := data[i*4096 : (i+1)*4096]
		want := byte(0)
		if i == n+1 && page[0] != 0 {
			want = byte(stamp(i))
		}
		for _, c := range page {
			if c != want {
				t.Fatalf("%s: page %d holds %#x, want %#x (stamps 1..%d before it)", file, i, c, want, n)
			}
		}
		if want != 0 {
			n = i
		}
	}
	return n
}

// crossNodeSnapshot is TestObjectStorage's single snapshot across nodes:
// a volume exported on node writer (`rackctl volume export`) is written
// there by a real NBD client (qemu-io) with a numbered stamp to page i
// for i = 1, 2, ..., each write acknowledged before the next and none
// flushed by the client, while the snapshot is taken through node via's
// Cinder API (the openstack CLI). The writes stay in the writer's cache
// (they are far fewer than its dirty limit, and nothing flushes a volume
// on a timer) until something flushes them: only the hold of the volume
// on its writer's node does. So a volume made from the snapshot holds
// stamps 1..a with a at least the number acknowledged before the
// snapshot was asked for only if the hold reached that node (without it,
// a is 0).
func crossNodeSnapshot(t *testing.T, creds map[string]string, env []string, tok, project string, writer, via *rackd) {
	const stamps = 6000 // 23 MiB of 4 KiB pages: under a volume's 32 MiB dirty limit
	// The openstack CLI makes what is tested; the waits ask the API.
	base := via.url() + "/volume/v3/" + project
	waitFor := func(kind, id, want string) {
		t.Helper()
		code, st := 0, ""
		if !eventually(time.Minute, func() bool {
			var body string
			code, body = volCall(t, "GET", base+"/"+kind+"s/"+id, tok, "0", "")
			var doc map[string]struct {
				Status string `json:"status"`
			}
			json.Unmarshal([]byte(body), &doc)
			st = doc[kind].Status
			return (want == "" && code == http.StatusNotFound) || (want != "" && st == want)
		}) {
			t.Fatalf("%s %s: HTTP %d, status %q; want %q", kind, id, code, st, want)
		}
	}
	remove := func(kind, id string) {
		t.Helper()
		if code, body := volCall(t, "DELETE", base+"/"+kind+"s/"+id, tok, "0", ""); code != http.StatusAccepted {
			t.Fatalf("delete %s %s: HTTP %d %s", kind, id, code, body)
		}
		waitFor(kind, id, "")
	}
	create := func(args ...string) string {
		t.Helper()
		return strings.TrimSpace(openstack(t, env, append(args, "-f", "value", "-c", "id")...))
	}
	vol := create("volume", "create", "--size", "1", "xn-vol")
	waitFor("volume", vol, "available")
	ex := exportVolume(t, creds, writer, vol)

	// One qemu-io on one connection (the server flushes a volume when a
	// client disconnects) writes stamp i+1 once stamp i is acknowledged,
	// a few milliseconds apart, so it is still writing when the snapshot
	// is made; it is killed after. qemu-io's open writes through by
	// default (every write FUA, durable when acknowledged): -t writeback
	// leaves the writes in the volume's cache, as a guest's are.
	var script strings.Builder
	fmt.Fprintf(&script, "open -t writeback -o driver=raw,cache.no-flush=on %s\n", ex.UnixURI)
	for i := 1; i <= stamps; i++ {
		fmt.Fprintf(&script, "write -P %d %d 4k\nsleep 10\n", stamp(i), i*4096)
	}
	acked, failed, stop := stampWriter(t, script.String(), 5*time.Minute, true)
	if !eventually(2*time.Minute, func() bool { return acked.Load() >= 25 || failed.Load() != nil }) || failed.Load() != nil {
		t.Fatalf("the writer on %s wrote %d stamps (%v)", writer.name, acked.Load(), failed.Load())
	}
	before := acked.Load()
	snap := create("volume", "snapshot", "create", "--volume", vol, "--force", "xn-snap")
	after := acked.Load()
	if !eventually(time.Minute, func() bool { return acked.Load() > after || failed.Load() != nil }) || failed.Load() != nil {
		t.Fatalf("the writer stopped after the snapshot (%d writes; %v)", after, failed.Load())
	}
	if after >= stamps {
		t.Fatalf("the writer had finished before the snapshot was made: make it write longer")
	}
	stop() // the writer has done its part
	if f := failed.Load(); f != nil {
		t.Fatalf("the writer failed: %v", f)
	}
	total := acked.Load()
	t.Logf("snapshot through %s asked for after %d stamps written on %s, answered after %d (%d in all)", via.name, before, writer.name, after, total)
	waitFor("snapshot", snap, "available")

	cp := create("volume", "create", "--snapshot", snap, "--size", "1", "xn-copy")
	waitFor("volume", cp, "available")
	cex := exportVolume(t, creds, via, cp)
	file := filepath.Join(t.TempDir(), "copy.raw")
	nbdTool(t, "qemu-img", "convert", "-f", "raw", "-O", "raw", cex.UnixURI, file)
	a := stampsIn(t, file, stamps)
	t.Logf("the volume made from the snapshot holds stamps 1..%d", a)
	if int64(a) < before || int64(a) > total {
		t.Fatalf("the snapshot holds stamps 1..%d: %d were acknowledged on %s before it was asked for through %s (%d in all)", a, before, writer.name, via.name, total)
	}
	// The writer's node held the volume (the hold, not luck, put the
	// writes in the snapshot).
	held := false
	for _, l := range strings.Split(writer.log(), "\n") {
		if strings.Contains(l, "held volumes for a group snapshot") && strings.Contains(l, vol) {
			held = true
		}
	}
	if !held {
		t.Fatalf("%s did not log holding volume %s for the snapshot", writer.name, vol)
	}
	for _, u := range []struct {
		n  *rackd
		id string
	}{{via, cp}, {writer, vol}} {
		if out, err := rackctl(t, creds, u.n, "volume", "unexport", u.id); err != nil {
			t.Fatalf("unexport %s: %v\n%s", u.id, err, out)
		}
	}
	remove("volume", cp)
	remove("snapshot", snap)
	remove("volume", vol)
}

// stampWriter runs qemu-io on script for at most d (recorded as a process
// the test started when record is set) and counts the writes it
// acknowledges; failed holds an error line it printed. stop kills it
// and waits for its output to be read; the test's end stops it too.
func stampWriter(t *testing.T, script string, d time.Duration, record bool) (wrote *atomic.Int64, failed *atomic.Value, stop func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	w := exec.CommandContext(ctx, "stdbuf", "-oL", "qemu-io")
	w.Stdin = strings.NewReader(script)
	out, err := w.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	w.Stderr = w.Stdout
	if err := w.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	if record {
		recordProcess(t, w.Process.Pid, false)
	}
	wrote, failed = &atomic.Int64{}, &atomic.Value{}
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			l := sc.Text()
			if strings.Contains(l, "wrote 4096/4096") {
				wrote.Add(1)
			} else if strings.Contains(l, "rror") || strings.Contains(l, "failed") {
				failed.Store(l)
			}
		}
	}()
	stop = sync.OnceFunc(func() {
		cancel()
		<-finished
		w.Wait()
	})
	t.Cleanup(stop)
	return wrote, failed, stop
}
