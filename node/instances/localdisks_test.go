package instances

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/testenv"
	"github.com/rackstack/rackstack/node/hypervisor"
)

// probe is what blkid says of the file at path: its TYPE and LABEL.
func probe(t *testing.T, path string) (string, string) {
	t.Helper()
	field := func(tag string) string {
		out, _ := exec.Command("blkid", "-p", "-o", "value", "-s", tag, path).Output()
		return strings.TrimSpace(string(out))
	}
	return field("TYPE"), field("LABEL")
}

// A server's ephemeral and swap disks are made on the host, formatted,
// and given to the guest as raw disks after its root disk; a start keeps
// what they hold, a rebuild makes them anew unless it preserves them,
// and the server's delete removes them.
func TestAgentMakesLocalDisks(t *testing.T) {
	needTools(t)
	for _, tool := range []string{"mkfs.ext4", "mkfs.vfat", "mkswap", "blkid"} {
		testenv.RequireCommand(t, tool)
	}
	w := newWorld(t)
	host := hypervisor.NewFakeHost(t.TempDir())
	a := newAgent(t, w, host, t.TempDir(), &logs{})
	ctx := context.Background()
	local := []computestate.LocalDisk{{Name: "ephemeral0", SizeMB: 64, Format: "ext4"}, {Name: "ephemeral1", SizeMB: 40, Format: "vfat"},
		{Name: "swap", SizeMB: 32, Format: "swap"}}
	w.Put("compute_servers", &computestate.Server{ID: "s1", Project: "p1", Name: "vm1", Host: "n1", ImageID: "img1",
		Flavor: computestate.Flavor{ID: "f1", VCPUs: 1, RAM: 256, Disk: 1, Ephemeral: 1, Swap: 32}, RootGB: 1,
		LocalDisks: local, Want: "active", VMState: "building", TaskState: "spawning"})
	a.reconcile(ctx)
	if o := w.last(); o.Status != "ACTIVE" {
		t.Fatalf("build: %+v", o)
	}
	dir := filepath.Join(a.Dir, "instances", "s1")
	spec, _ := host.Spec("s1")
	if len(spec.Disks) != 4 || spec.Disks[0].Serial != "root" {
		t.Fatalf("disks %+v", spec.Disks)
	}
	want := []struct{ typ, label string }{{"ext4", "ephemeral0"}, {"vfat", "EPHEMERAL1"}, {"swap", ""}}
	for i, d := range local {
		got := spec.Disks[i+1]
		if got.Path != filepath.Join(dir, "disk."+d.Name) || got.Format != hypervisor.FormatRaw || got.Serial != d.Name {
			t.Errorf("disk %d: %+v", i+1, got)
		}
		fi, err := os.Stat(got.Path)
		if err != nil || fi.Size() != int64(d.SizeMB)<<20 {
			t.Fatalf("%s: %v size %d, want %d MiB", d.Name, err, fi.Size(), d.SizeMB)
		}
		if typ, label := probe(t, got.Path); typ != want[i].typ || label != want[i].label {
			t.Errorf("%s is %q labelled %q, want %q %q", d.Name, typ, label, want[i].typ, want[i].label)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(m) != 0 {
		t.Errorf("left behind: %v", m)
	}

	// What the guest put on its ephemeral disk survives a stop and start.
	eph := filepath.Join(dir, "disk.ephemeral0")
	mark := func() {
		t.Helper()
		if out, err := exec.Command("mkfs.ext4", "-F", "-q", "-L", "guestdata", eph).CombinedOutput(); err != nil {
			t.Fatalf("mkfs: %v %s", err, out)
		}
	}
	mark()
	s := w.server("s1")
	s.Want = "stopped"
	w.Put("compute_servers", &s)
	a.reconcile(ctx)
	s = w.server("s1")
	s.Want, s.TaskState = "active", "powering-on"
	w.Put("compute_servers", &s)
	a.reconcile(ctx)
	if _, label := probe(t, eph); label != "guestdata" {
		t.Fatalf("a start formatted the ephemeral disk again: label %q", label)
	}

	// A rebuild preserving them keeps them; one that does not makes
	// them anew.
	s = w.server("s1")
	s.RebuildSeq, s.PreserveEphemeral, s.TaskState = 1, true, "rebuilding"
	w.Put("compute_servers", &s)
	a.reconcile(ctx)
	if _, label := probe(t, eph); w.last().RebuildSeq != 1 || label != "guestdata" {
		t.Fatalf("rebuild preserving ephemeral: %+v, label %q", w.last(), label)
	}
	s = w.server("s1")
	s.RebuildSeq, s.PreserveEphemeral, s.TaskState = 2, false, "rebuilding"
	w.Put("compute_servers", &s)
	a.reconcile(ctx)
	if _, label := probe(t, eph); w.last().RebuildSeq != 2 || label != "ephemeral0" {
		t.Fatalf("rebuild: %+v, ephemeral label %q, want it made anew", w.last(), label)
	}

	s = w.server("s1")
	s.Want = "deleted"
	w.Put("compute_servers", &s)
	a.reconcile(ctx)
	if _, err := os.Stat(eph); !os.IsNotExist(err) {
		t.Errorf("the ephemeral disk outlives its server: %v", err)
	}
}

// A disk whose making was cut short (a kill -9 of rackd mid-mkfs leaves
// its temporary file) is made again, never used half-made.
func TestLocalDiskHalfMadeIsRemade(t *testing.T) {
	testenv.RequireCommand(t, "mkswap")
	testenv.RequireCommand(t, "blkid")
	dir := t.TempDir()
	d := computestate.LocalDisk{Name: "swap", SizeMB: 16, Format: "swap"}
	if err := os.WriteFile(localDiskPath(dir, d)+".tmp", []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	disks, err := localDisks(context.Background(), computestate.Server{LocalDisks: []computestate.LocalDisk{d}}, dir)
	if err != nil || len(disks) != 1 {
		t.Fatalf("%v %v", disks, err)
	}
	if typ, _ := probe(t, disks[0].Path); typ != "swap" {
		t.Fatalf("made %q", typ)
	}
	if _, err := os.Stat(localDiskPath(dir, d) + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary file left: %v", err)
	}
	// An unknown format fails saying so, leaving nothing.
	bad := computestate.LocalDisk{Name: "ephemeral0", SizeMB: 16, Format: "ntfs"}
	if _, err := localDisks(context.Background(), computestate.Server{LocalDisks: []computestate.LocalDisk{bad}}, dir); err == nil || !strings.Contains(err.Error(), "ntfs") {
		t.Fatalf("ntfs: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "disk.ephemeral0*")); len(m) != 0 {
		t.Errorf("left behind: %v", m)
	}
}

// A resize grows the ephemeral disk, its filesystem with it, keeping
// what it holds, and remakes the swap disk at the new flavor's size (or
// drops it); a revert gives the old swap back and leaves the grown disk
// grown.
func TestResizeFollowsLocalDisks(t *testing.T) {
	needTools(t)
	for _, tool := range []string{"mkfs.ext4", "mkswap", "blkid", "resize2fs", "dumpe2fs", "debugfs"} {
		testenv.RequireCommand(t, tool)
	}
	w := newWorld(t)
	host := hypervisor.NewFakeHost(t.TempDir())
	a := newAgent(t, w, host, t.TempDir(), &logs{})
	ctx := context.Background()
	small := computestate.Flavor{ID: "f1", VCPUs: 1, RAM: 256, Disk: 1, Ephemeral: 1, Swap: 32}
	before := []computestate.LocalDisk{{Name: "ephemeral0", SizeMB: 64, Format: "ext4"}, {Name: "swap", SizeMB: 32, Format: "swap"}}
	w.Put("compute_servers", &computestate.Server{ID: "s1", Project: "p1", Name: "vm1", Host: "n1", ImageID: "img1", Flavor: small, RootGB: 1,
		LocalDisks: before, Want: "active", VMState: "building", TaskState: "spawning"})
	a.reconcile(ctx)
	dir := filepath.Join(a.Dir, "instances", "s1")
	eph, swap := filepath.Join(dir, "disk.ephemeral0"), filepath.Join(dir, "disk.swap")
	// What the guest wrote: a file in the ephemeral filesystem.
	if out, err := exec.Command("debugfs", "-w", "-R", "mkdir kept", eph).CombinedOutput(); err != nil {
		t.Fatalf("debugfs: %v %s", err, out)
	}
	blocks := func() string {
		t.Helper()
		out, err := exec.Command("dumpe2fs", "-h", eph).Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if v, ok := strings.CutPrefix(l, "Block count:"); ok {
				return strings.TrimSpace(v)
			}
		}
		return ""
	}
	was := blocks()
	step := func(disks []computestate.LocalDisk, seq int, task string) {
		t.Helper()
		s := w.server("s1")
		s.LocalDisks, s.ResizeSeq, s.TaskState, s.VMState, s.Want = disks, seq, task, "active", "active"
		w.Put("compute_servers", &s)
		a.reconcile(ctx)
		if o := w.last(); o.Status != "ACTIVE" || o.ResizeSeq != seq {
			t.Fatalf("step %d: %+v", seq, o)
		}
	}
	step([]computestate.LocalDisk{{Name: "ephemeral0", SizeMB: 128, Format: "ext4"}, {Name: "swap", SizeMB: 48, Format: "swap"}}, 1, computestate.TaskResizeFinish)
	if fi, _ := os.Stat(eph); fi.Size() != 128<<20 || blocks() == was {
		t.Errorf("ephemeral disk %d bytes, %s blocks (was %s): not grown", fi.Size(), blocks(), was)
	}
	if out, _ := exec.Command("debugfs", "-R", "stat kept", eph).CombinedOutput(); !strings.Contains(string(out), "Type: directory") {
		t.Errorf("the grown disk lost what it held:\n%s", out)
	}
	if fi, _ := os.Stat(swap); fi.Size() != 48<<20 {
		t.Errorf("swap %d bytes, want 48 MiB", fi.Size())
	}
	if typ, _ := probe(t, swap); typ != "swap" {
		t.Errorf("swap is %q", typ)
	}
	spec, _ := host.Spec("s1")
	if len(spec.Disks) != 3 {
		t.Errorf("disks %+v", spec.Disks)
	}

	// Reverted: the old swap back, the ephemeral disk left grown.
	step(before, 2, computestate.TaskResizeReverting)
	if fi, _ := os.Stat(swap); fi.Size() != 32<<20 {
		t.Errorf("swap after the revert %d bytes, want 32 MiB", fi.Size())
	}
	if fi, _ := os.Stat(eph); fi.Size() != 128<<20 {
		t.Errorf("ephemeral after the revert %d bytes: shrunk", fi.Size())
	}
	// To a flavor without swap: the swap disk goes.
	step(before[:1], 3, computestate.TaskResizeFinish)
	if _, err := os.Stat(swap); !os.IsNotExist(err) {
		t.Errorf("swap disk kept: %v", err)
	}
	if spec, _ := host.Spec("s1"); len(spec.Disks) != 2 {
		t.Errorf("disks %+v", spec.Disks)
	}
}
