package instances

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/testenv"
	"github.com/rackstack/rackstack/node/hypervisor"
)

// TestAgentRebuild: a rebuild stops the guest, gives it a fresh root disk
// over the new image (what the guest wrote is gone), boots it again with
// the same NICs and a config drive of the renamed server, and reports
// ACTIVE carrying the rebuild's number; a rebuild whose image cannot be
// had ends in ERROR saying why, with the old disk kept, and is tried
// once, until the next rebuild request.
func TestAgentRebuild(t *testing.T) {
	needTools(t)
	testenv.RequireCommand(t, "qemu-io")
	w, a, host := oneGuestAgent(t, computestate.Flavor{ID: "f1", VCPUs: 1, RAM: 256, Disk: 1})
	ctx := context.Background()
	before := mustAdopt(t, a, "s1").PID()
	disk := filepath.Join(a.Dir, "instances", "s1", "disk")
	// What the guest wrote to its root disk, which the rebuild must drop.
	if out, err := exec.Command("qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 64k", disk).CombinedOutput(); err != nil {
		t.Fatalf("qemu-io write: %v %s", err, out)
	}
	if !written(t, disk) {
		t.Fatal("the guest's write is not in the root disk")
	}

	s := w.server("s1")
	s.ImageID, s.Name, s.RebuildSeq, s.TaskState, s.Status = "img2", "vm1-rebuilt", 1, "rebuilding", "REBUILD"
	w.Put("compute_servers", &s)
	a.reconcile(ctx)
	if o := w.last(); o.Status != "ACTIVE" || o.RebuildSeq != 1 || o.PowerState != 1 {
		t.Fatalf("after rebuild: %+v", o)
	}
	vm := mustAdopt(t, a, "s1")
	if st, _ := vm.State(ctx); st != hypervisor.Running || vm.PID() == before {
		t.Fatalf("after rebuild guest %s pid %d (was %d): not booted again", st, vm.PID(), before)
	}
	if written(t, disk) {
		t.Error("the root disk still holds what the guest wrote before the rebuild")
	}
	if out, _ := exec.Command("qemu-img", "info", disk).CombinedOutput(); !bytes.Contains(out, []byte(filepath.Join("images", "img2"))) {
		t.Errorf("root disk is not an overlay of the new image:\n%s", out)
	}
	spec, _ := host.Spec("s1")
	if len(spec.NICs) != 1 || spec.NICs[0].MAC != "fa:16:3e:00:00:01" || spec.Name != "vm1-rebuilt" {
		t.Errorf("rebuilt guest's spec: %+v", spec)
	}
	// The same pass again does nothing: the rebuild is done.
	pid := vm.PID()
	a.reconcile(ctx)
	if mustAdopt(t, a, "s1").PID() != pid {
		t.Error("a done rebuild was done again")
	}

	// A rebuild that cannot get its image: ERROR with why, old disk kept,
	// not retried by later passes.
	w.imageErr = errors.New("image store unreachable")
	s = w.server("s1")
	s.ImageID, s.RebuildSeq, s.TaskState = "img3", 2, "rebuilding"
	w.Put("compute_servers", &s)
	a.reconcile(ctx)
	a.reconcile(ctx)
	if o := w.last(); o.Status != "ERROR" || o.RebuildSeq != 2 || !strings.Contains(o.Fault, "image store unreachable") {
		t.Fatalf("failed rebuild: %+v", o)
	}
	if w.opens != 3 {
		t.Errorf("image opened %d times, want 3 (img1, img2, one try of img3)", w.opens)
	}
	if _, err := os.Stat(disk); err != nil {
		t.Errorf("a failed rebuild removed the old disk: %v", err)
	}
	// The next request rebuilds the server out of ERROR.
	w.imageErr = nil
	s = w.server("s1")
	s.RebuildSeq, s.TaskState = 3, "rebuilding"
	w.Put("compute_servers", &s)
	a.reconcile(ctx)
	if o := w.last(); o.Status != "ACTIVE" || o.RebuildSeq != 3 {
		t.Fatalf("rebuild out of ERROR: %+v", o)
	}
}

// written says whether the disk's first 64 KiB hold the pattern the test
// wrote.
func written(t *testing.T, disk string) bool {
	t.Helper()
	out, err := exec.Command("qemu-io", "-f", "qcow2", "-r", "-c", "read -P 0x5a 0 64k", disk).CombinedOutput()
	if bytes.Contains(out, []byte("Pattern verification failed")) {
		return false
	}
	if err != nil {
		t.Fatalf("qemu-io read: %v %s", err, out)
	}
	return true
}

// fakeReimager records the steps of a boot volume's reimage.
type fakeReimager struct {
	steps []string
	ex    *bootExports
	fail  error
}

func (f *fakeReimager) ReserveBootVolume(_ context.Context, id string, seq int) error {
	f.steps = append(f.steps, "reserve "+id)
	return nil
}

func (f *fakeReimager) ReimageBootVolume(_ context.Context, id string, seq int) error {
	// Reimaged only once its export here ended.
	f.steps = append(f.steps, "reimage "+id+" after unexport of "+strings.Join(f.ex.unexported, ","))
	return f.fail
}

// The rebuild of a server booted from a volume (2.93): the guest is
// stopped, the boot volume reserved, its export ended, reimaged, and the
// guest booted again from it; no image is fetched here. A reimage that
// fails ends in ERROR saying why.
func TestAgentRebuildVolumeBacked(t *testing.T) {
	needTools(t)
	w := newWorld(t)
	host := hypervisor.NewFakeHost(t.TempDir())
	a := newAgent(t, w, host, t.TempDir(), &logs{})
	ex := &bootExports{}
	re := &fakeReimager{ex: ex}
	a.Volumes, a.Reimager = ex, re
	const vol = "61111111-2222-3333-4444-555555555555"
	w.Put("compute_servers", &computestate.Server{ID: "s1", Project: "p1", Name: "vm1", Host: "n1", BootVolume: vol,
		Flavor: computestate.Flavor{ID: "f1", VCPUs: 1, RAM: 256}, Want: "active", VMState: "building", TaskState: "spawning"})
	ctx := context.Background()
	a.reconcile(ctx)
	before := mustAdopt(t, a, "s1").PID()
	s := w.server("s1")
	s.ReimageImage, s.ReimageSeq, s.RebuildSeq, s.TaskState, s.Status, s.VMState = "img2", 1, 1, "rebuilding", "REBUILD", "active"
	w.Put("compute_servers", &s)
	a.reconcile(ctx)
	if o := w.last(); o.Status != "ACTIVE" || o.RebuildSeq != 1 {
		t.Fatalf("after the rebuild: %+v", o)
	}
	if want := []string{"reserve s1", "reimage s1 after unexport of " + vol}; strings.Join(re.steps, "|") != strings.Join(want, "|") {
		t.Fatalf("reimage steps %q, want %q", re.steps, want)
	}
	vm := mustAdopt(t, a, "s1")
	if vm.PID() == before || w.opens != 0 {
		t.Fatalf("guest not booted again (pid %d, was %d), or an image fetched (%d)", vm.PID(), before, w.opens)
	}
	if spec, _ := host.Spec("s1"); len(spec.Disks) != 1 || spec.Disks[0].NBDExport != vol {
		t.Fatalf("rebuilt guest's disks: %+v", spec.Disks)
	}
	// A failed reimage: ERROR saying why.
	re.fail = errors.New("image copy failed")
	s = w.server("s1")
	s.RebuildSeq, s.ReimageSeq, s.TaskState = 2, 2, "rebuilding"
	w.Put("compute_servers", &s)
	a.reconcile(ctx)
	if o := w.last(); o.Status != "ERROR" || o.RebuildSeq != 2 || !strings.Contains(o.Fault, "image copy failed") {
		t.Fatalf("after a failed reimage: %+v", o)
	}
	// A rebuild of another kind (an evacuation's): the volume is booted
	// as it is, not reimaged.
	re.fail, re.steps = nil, nil
	s = w.server("s1")
	s.RebuildSeq, s.TaskState = 3, "rebuilding"
	w.Put("compute_servers", &s)
	a.reconcile(ctx)
	if o := w.last(); o.Status != "ACTIVE" || o.RebuildSeq != 3 || len(re.steps) != 0 {
		t.Fatalf("a rebuild not for a reimage: %+v, steps %q", o, re.steps)
	}
}
