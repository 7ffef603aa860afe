package instances

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/node/hypervisor"
)

// backingFile is the backing file qemu-img names for a qcow2 disk.
func backingFile(t *testing.T, disk string) string {
	t.Helper()
	out, err := exec.Command("qemu-img", "info", "--output", "json", "-U", disk).Output()
	if err != nil {
		t.Fatalf("qemu-img info %s: %v", disk, err)
	}
	var info struct {
		Backing string `json:"backing-filename"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatal(err)
	}
	return info.Backing
}

// TestAgentRescue: a rescue restarts the guest with a fresh overlay of
// the rescue image as its first disk and its own root disk, untouched,
// as the second, its NICs the same, and reports the rescue done, once;
// a rackd that stops before it recorded the step does it again; an
// unrescue restarts it from its own disk alone and removes the rescue
// disk; a stopped server is rescued running; a rescued server's delete
// removes its rescue disk; a rescue image that cannot be had is ERROR
// saying why, once.
func TestAgentRescue(t *testing.T) {
	needTools(t)
	w, a, host := oneGuestAgent(t, computestate.Flavor{ID: "f1", VCPUs: 1, RAM: 256, Disk: 1})
	ctx := context.Background()
	dir := filepath.Join(a.Dir, "instances", "s1")
	root, rescueDisk := filepath.Join(dir, "disk"), filepath.Join(dir, rescueDiskName)
	rootInfo, err := os.Stat(root)
	if err != nil {
		t.Fatal(err)
	}
	rootBytes, _ := os.ReadFile(root)
	step := func(image string, seq int, task string) {
		t.Helper()
		s := w.server("s1")
		s.RescueImage, s.RescueSeq, s.TaskState, s.Want, s.RescueStable = image, seq, task, "active", false
		w.Put("compute_servers", &s)
		a.reconcile(ctx)
	}
	// rescued says the guest runs with the rescue disk first and its own
	// root disk second, the disks and NICs as they must be.
	rescued := func() {
		t.Helper()
		spec, _ := host.Spec("s1")
		if len(spec.Disks) != 2 || spec.Disks[0].Path != rescueDisk || spec.Disks[1].Path != root ||
			len(spec.NICs) != 1 || spec.NICs[0].MAC != "fa:16:3e:00:00:01" || spec.VCPUs != 1 || spec.MemoryMB != 256 {
			t.Fatalf("rescued guest's spec: %+v", spec)
		}
		if b := backingFile(t, rescueDisk); b != filepath.Join(a.Dir, "images", "img-rescue") {
			t.Fatalf("rescue disk's backing file %q, want the rescue image", b)
		}
		info, err := os.Stat(root)
		if now, _ := os.ReadFile(root); err != nil || !os.SameFile(info, rootInfo) || !bytes.Equal(now, rootBytes) {
			t.Fatalf("the rescue changed the server's root disk (%v)", err)
		}
	}
	before := mustAdopt(t, a, "s1").PID()
	step("img-rescue", 1, computestate.TaskRescuing)
	if o := w.last(); o.Status != "ACTIVE" || o.RescueSeq != 1 || o.PowerState != 1 {
		t.Fatalf("after rescue: %+v", o)
	}
	vm := mustAdopt(t, a, "s1")
	if st, _ := vm.State(ctx); st != hypervisor.Running || vm.PID() == before {
		t.Fatalf("after rescue guest %s pid %d (was %d): not started again", st, vm.PID(), before)
	}
	rescued()
	// Done once: another pass leaves the rescued guest be, before and
	// after its report is taken.
	pid := vm.PID()
	s := w.server("s1")
	s.TaskState = computestate.TaskRescuing
	w.Put("compute_servers", &s)
	a.reconcile(ctx)
	s.VMState, s.TaskState = computestate.VMRescued, ""
	w.Put("compute_servers", &s)
	a.reconcile(ctx)
	if mustAdopt(t, a, "s1").PID() != pid {
		t.Fatal("a done rescue was done again")
	}
	// A guest restarted while rescued boots the rescue disk again, as it
	// was: a rackd that stopped before it recorded the step (a new agent
	// on the same directory, the record a step behind) does it again with
	// a fresh rescue disk.
	written, _ := os.Stat(rescueDisk)
	rec := a.readRecord("s1")
	rec.RescueSeq = 0
	if err := a.writeRecord("s1", rec); err != nil {
		t.Fatal(err)
	}
	s = w.server("s1")
	s.TaskState = computestate.TaskRescuing // not reported either
	w.Put("compute_servers", &s)
	w.reports = nil
	a = newAgent(t, w, host, a.Dir, &logs{})
	a.reconcile(ctx)
	if o := w.last(); o.Status != "ACTIVE" || o.RescueSeq != 1 {
		t.Fatalf("after a restart in the middle of the rescue: %+v", o)
	}
	if mustAdopt(t, a, "s1").PID() == pid {
		t.Fatal("the rescue was not done again after a restart")
	}
	if info, err := os.Stat(rescueDisk); err != nil || os.SameFile(info, written) {
		t.Fatalf("the redone rescue did not make a fresh rescue disk (%v)", err)
	}
	rescued()

	// A stable rescue (2.87): the own disk keeps its place, the rescue
	// disk is added after it and booted first.
	s = w.server("s1")
	s.RescueStable, s.RescueSeq, s.TaskState = true, 2, computestate.TaskRescuing
	w.Put("compute_servers", &s)
	a.reconcile(ctx)
	if spec, _ := host.Spec("s1"); len(spec.Disks) != 2 || spec.Disks[0].Path != root || spec.Disks[0].Boot ||
		spec.Disks[1].Path != rescueDisk || !spec.Disks[1].Boot {
		t.Fatalf("stably rescued guest's spec: %+v", spec)
	}
	if o := w.last(); o.Status != "ACTIVE" || o.RescueSeq != 2 {
		t.Fatalf("after the stable rescue: %+v", o)
	}

	// Unrescue: its own disk alone, the rescue disk gone.
	pid = mustAdopt(t, a, "s1").PID()
	step("", 3, computestate.TaskUnrescuing)
	if o := w.last(); o.Status != "ACTIVE" || o.RescueSeq != 3 {
		t.Fatalf("after unrescue: %+v", o)
	}
	if spec, _ := host.Spec("s1"); len(spec.Disks) != 1 || spec.Disks[0].Path != root || mustAdopt(t, a, "s1").PID() == pid {
		t.Fatalf("unrescued guest's spec: %+v", spec)
	}
	if _, err := os.Stat(rescueDisk); !os.IsNotExist(err) {
		t.Fatalf("the rescue disk is still there after the unrescue: %v", err)
	}

	// A stopped server is rescued running.
	s = w.server("s1")
	s.Want, s.TaskState = "stopped", "powering-off"
	w.Put("compute_servers", &s)
	a.reconcile(ctx)
	if st, _ := mustAdopt(t, a, "s1").State(ctx); st != hypervisor.Shutdown {
		t.Fatalf("not stopped: %s", st)
	}
	step("img-rescue", 4, computestate.TaskRescuing)
	if st, _ := mustAdopt(t, a, "s1").State(ctx); st != hypervisor.Running || w.last().RescueSeq != 4 {
		t.Fatalf("a stopped server's rescue: guest %s, report %+v", st, w.last())
	}
	rescued()

	// A rescue image that cannot be had: ERROR saying why, once.
	w.imageErr = errors.New("image service down")
	os.Remove(filepath.Join(a.Dir, "images", "img-gone"))
	step("img-gone", 5, computestate.TaskRescuing)
	if o := w.last(); o.Status != "ERROR" || o.RescueSeq != 5 || !strings.Contains(o.Fault, "Rescue of instance s1 failed") || !strings.Contains(o.Fault, "image service down") {
		t.Fatalf("after a failed rescue: %+v", o)
	}
	// Not tried again, even were the row still rescuing.
	s = w.server("s1")
	s.TaskState = computestate.TaskRescuing
	w.Put("compute_servers", &s)
	a.reconcile(ctx)
	failures := 0
	for _, o := range w.reports {
		if strings.Contains(o.Fault, "Rescue of instance") {
			failures++
		}
	}
	if failures != 1 || a.readRecord("s1").RescueSeq != 5 {
		t.Fatalf("a failed rescue reported %d times: %+v", failures, w.reports)
	}
	w.imageErr = nil

	// Rescued, then deleted: the rescue disk goes with the server.
	step("img-rescue", 6, computestate.TaskRescuing)
	if _, err := os.Stat(rescueDisk); err != nil {
		t.Fatalf("no rescue disk after a rescue: %v", err)
	}
	s = w.server("s1")
	s.Want, s.TaskState = "deleted", "deleting"
	w.Put("compute_servers", &s)
	a.reconcile(ctx)
	if _, err := os.Stat(rescueDisk); !os.IsNotExist(err) {
		t.Fatalf("a deleted rescued server's rescue disk is still there: %v", err)
	}
	if _, err := a.Driver.Adopt(ctx, "s1"); !errors.Is(err, hypervisor.ErrNotFound) {
		t.Fatalf("a deleted rescued server's guest: %v", err)
	}
}
