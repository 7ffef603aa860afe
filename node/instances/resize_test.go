package instances

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/node/hypervisor"
)

func diskSize(t *testing.T, disk string) int64 {
	t.Helper()
	n, err := virtualSize(context.Background(), disk, "qcow2")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAgentResize: a resize restarts the guest with the new flavor's
// vCPUs and RAM and its root disk grown, and reports the resize done,
// once; a revert restarts it with the old flavor and keeps the grown
// disk; a stopped server is resized without being started.
func TestAgentResize(t *testing.T) {
	needTools(t)
	small := computestate.Flavor{ID: "f1", VCPUs: 1, RAM: 256, Disk: 1}
	large := computestate.Flavor{ID: "f2", VCPUs: 2, RAM: 512, Disk: 2}
	w, a, host := oneGuestAgent(t, small)
	ctx := context.Background()
	before := mustAdopt(t, a, "s1").PID()
	disk := filepath.Join(a.Dir, "instances", "s1", "disk")
	if n := diskSize(t, disk); n != 1<<30 {
		t.Fatalf("root disk %d bytes before the resize", n)
	}
	step := func(f computestate.Flavor, rootGB, seq int, task, want string) {
		t.Helper()
		s := w.server("s1")
		s.OldFlavor, s.Flavor, s.RootGB, s.ResizeSeq, s.TaskState, s.VMState, s.Want = &s.Flavor, f, rootGB, seq, task, "active", want
		w.Put("compute_servers", &s)
		a.reconcile(ctx)
	}

	step(large, 2, 1, computestate.TaskResizeFinish, "active")
	if o := w.last(); o.Status != "ACTIVE" || o.ResizeSeq != 1 || o.PowerState != 1 {
		t.Fatalf("after resize: %+v", o)
	}
	vm := mustAdopt(t, a, "s1")
	if st, _ := vm.State(ctx); st != hypervisor.Running || vm.PID() == before {
		t.Fatalf("after resize guest %s pid %d (was %d): not started again", st, vm.PID(), before)
	}
	spec, _ := host.Spec("s1")
	if spec.VCPUs != 2 || spec.MemoryMB != 512 || len(spec.NICs) != 1 || spec.NICs[0].MAC != "fa:16:3e:00:00:01" {
		t.Fatalf("resized guest's spec: %+v", spec)
	}
	if n := diskSize(t, disk); n != 2<<30 {
		t.Fatalf("root disk %d bytes after the resize, want 2 GiB", n)
	}
	// Done once: another pass leaves the guest be.
	pid := vm.PID()
	a.reconcile(ctx)
	if mustAdopt(t, a, "s1").PID() != pid {
		t.Fatal("a done resize was done again")
	}
	// The step's report lost once the step was recorded (a new agent,
	// its record up to date): its first report of the guest still says
	// the resize is done, or the server would wait in RESIZE for ever.
	w.reports = nil
	a = newAgent(t, w, host, a.Dir, &logs{})
	a.reconcile(ctx)
	if o := w.last(); o.Status != "ACTIVE" || o.ResizeSeq != 1 || mustAdopt(t, a, "s1").PID() != pid {
		t.Fatalf("a new agent's report after a recorded resize: %+v", o)
	}

	// A rackd that stopped before it recorded the step (a new agent on
	// the same directory, the record a step behind) does it again and
	// reports it: the resize ends, never half applied.
	rec := a.readRecord("s1")
	rec.ResizeSeq = 0
	if err := a.writeRecord("s1", rec); err != nil {
		t.Fatal(err)
	}
	s := w.server("s1")
	s.TaskState = computestate.TaskResizeFinish // not reported either
	w.Put("compute_servers", &s)
	w.reports = nil
	a = newAgent(t, w, host, a.Dir, &logs{})
	a.reconcile(ctx)
	if o := w.last(); o.Status != "ACTIVE" || o.ResizeSeq != 1 {
		t.Fatalf("after a restart in the middle of the resize: %+v", o)
	}
	if spec, _ := host.Spec("s1"); spec.VCPUs != 2 || spec.MemoryMB != 512 || mustAdopt(t, a, "s1").PID() == pid {
		t.Fatalf("the resize was not done again after a restart: %+v", spec)
	}
	pid = mustAdopt(t, a, "s1").PID()

	// Revert: the old flavor, the disk as grown.
	step(small, 2, 2, computestate.TaskResizeReverting, "active")
	if o := w.last(); o.Status != "ACTIVE" || o.ResizeSeq != 2 {
		t.Fatalf("after revert: %+v", o)
	}
	if spec, _ := host.Spec("s1"); spec.VCPUs != 1 || spec.MemoryMB != 256 || mustAdopt(t, a, "s1").PID() == pid {
		t.Fatalf("reverted guest's spec: %+v", spec)
	}
	if n := diskSize(t, disk); n != 2<<30 {
		t.Fatalf("root disk %d bytes after the revert, want it kept at 2 GiB", n)
	}

	// A stopped server: stopped first, then resized without a start.
	s = w.server("s1")
	s.Want, s.TaskState = "stopped", "powering-off"
	w.Put("compute_servers", &s)
	a.reconcile(ctx)
	step(large, 2, 3, computestate.TaskResizeFinish, "stopped")
	if o := w.last(); o.Status != "SHUTOFF" || o.ResizeSeq != 3 {
		t.Fatalf("after a stopped resize: %+v", o)
	}
	if vm, err := a.Driver.Adopt(ctx, "s1"); err == nil {
		if st, _ := vm.State(ctx); st != hypervisor.Shutdown {
			t.Fatalf("a stopped server's resize started its guest: %s", st)
		}
	}
}
