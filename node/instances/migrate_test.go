package instances

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/image/imagestate"
	"github.com/rackstack/rackstack/fabric/testenv"
	"github.com/rackstack/rackstack/node/hypervisor"
)

// reportsOf are the reports node made of server s1.
func (w *world) reportsOf(node string) []computestate.Observed {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []computestate.Observed
	for _, o := range w.reports {
		if o.Node == node {
			out = append(out, o)
		}
	}
	return out
}

// TestAgentMigrate: the source powers the guest off and uploads its disk
// once (a pass that lost its record does not upload again), the new host
// makes the disk from that image, deletes the image and starts the guest,
// the source keeps its copy, off, meanwhile; a revert starts the guest on
// the source again and the new host removes its copy; a stopped server
// migrates stopped, and a confirm removes the source's copy.
func TestAgentMigrate(t *testing.T) {
	needTools(t)
	flavor := computestate.Flavor{ID: "f1", VCPUs: 1, RAM: 256, Disk: 1}
	testenv.RequireCommand(t, "qemu-io")
	w, src, _ := oneGuestAgent(t, flavor)
	hostB := hypervisor.NewFakeHost(t.TempDir())
	dst := newAgent(t, w, hostB, t.TempDir(), &logs{})
	dst.Node = "n2"
	snaps := &snapshots{w: w, dir: t.TempDir(), uploaded: map[string]string{}, vm: func() hypervisor.PowerState {
		st, _ := mustAdopt(t, src, "s1").State(context.Background())
		return st
	}}
	src.Snapshots, dst.Snapshots = snaps, snaps
	dst.Images = uploadedImages{w, snaps}
	ctx := context.Background()
	srcDir := filepath.Join(src.Dir, "instances", "s1")
	dstDir := filepath.Join(dst.Dir, "instances", "s1")
	// What the guest wrote on the source.
	if out, err := exec.Command("qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 64k", filepath.Join(srcDir, "disk")).CombinedOutput(); err != nil {
		t.Fatalf("qemu-io write: %v %s", err, out)
	}
	pass := func() { src.reconcile(ctx); dst.reconcile(ctx) }
	put := func(change func(*computestate.Server)) {
		s := w.server("s1")
		change(&s)
		w.Put("compute_servers", &s)
	}
	migrate := func(image string, seq int) {
		t.Helper()
		w.Put(imagestate.Table, &imagestate.Image{ID: image, Owner: "p1", Status: imagestate.StatusQueued, DiskFormat: "qcow2"})
		put(func(s *computestate.Server) {
			s.OldFlavor, s.ResizeSeq, s.TaskState, s.MigrateTo, s.MigrateImage = &s.Flavor, seq, computestate.TaskResizeMigrating, "n2", image
		})
		pass()
		o := w.reportsOf("n1")
		if last := o[len(o)-1]; last.Status != "SHUTOFF" || last.ResizeSeq != seq {
			t.Fatalf("the source's report of the migration: %+v", last)
		}
		if _, ok := snaps.uploaded[image]; !ok {
			t.Fatalf("the source did not upload the disk into %s", image)
		}
		// The API gives it to the new host.
		put(func(s *computestate.Server) {
			s.Host, s.MigrateFrom, s.MigrateTo, s.ResizeSeq, s.TaskState = "n2", "n1", "", seq+1, computestate.TaskResizeFinish
		})
		pass()
	}

	migrate("mig1", 1)
	if len(snaps.during) != 1 || snaps.during[0] != hypervisor.Shutdown {
		t.Fatalf("uploads with the guest in %v, want one, off", snaps.during)
	}
	if o := w.reportsOf("n2"); len(o) == 0 || o[len(o)-1].Status != "ACTIVE" || o[len(o)-1].ResizeSeq != 2 {
		t.Fatalf("the new host's reports: %+v", o)
	}
	if st, _ := mustAdopt(t, dst, "s1").State(ctx); st != hypervisor.Running {
		t.Fatalf("guest on the new host %s, want running", st)
	}
	if st, _ := mustAdopt(t, src, "s1").State(ctx); st != hypervisor.Shutdown {
		t.Fatalf("guest on the source %s, want off", st)
	}
	if _, err := os.Stat(filepath.Join(srcDir, "disk")); err != nil {
		t.Fatalf("the source's disk is gone before the confirm: %v", err)
	}
	if !slices.Contains(snaps.deleted, "mig1") {
		t.Fatalf("the migration's image was not deleted: %v", snaps.deleted)
	}
	// The new host's disk holds what the guest wrote on the source.
	if out, err := exec.Command("qemu-io", "-r", "-U", "-f", "qcow2", "-c", "read -P 0x5a 0 64k", filepath.Join(dstDir, "disk")).CombinedOutput(); err != nil ||
		strings.Contains(string(out), "Pattern verification failed") {
		t.Fatalf("the new host's disk lacks what the guest wrote: %v %s", err, out)
	}
	// A source whose record lost the step does it again without a second
	// upload (the image is active).
	rec := src.readRecord("s1")
	rec.ResizeSeq = 0
	src.writeRecord("s1", rec)
	put(func(s *computestate.Server) {
		s.Host, s.MigrateFrom, s.ResizeSeq, s.TaskState = "n1", "", 1, computestate.TaskResizeMigrating
	})
	src.reconcile(ctx)
	if len(snaps.during) != 1 {
		t.Fatalf("%d uploads after a redone step, want 1", len(snaps.during))
	}
	put(func(s *computestate.Server) {
		s.Host, s.MigrateFrom, s.MigrateTo, s.ResizeSeq, s.TaskState = "n2", "n1", "", 2, computestate.TaskResizeFinish
	})
	pass()

	// Revert: back on the source, started from the disk it kept.
	put(func(s *computestate.Server) {
		s.Host, s.MigrateFrom, s.MigrateImage, s.ResizeSeq, s.TaskState = "n1", "", "", 3, computestate.TaskResizeReverting
	})
	pass()
	if st, _ := mustAdopt(t, src, "s1").State(ctx); st != hypervisor.Running {
		t.Fatalf("guest on the source after the revert %s, want running", st)
	}
	if _, err := os.Stat(dstDir); !os.IsNotExist(err) {
		t.Fatalf("the new host kept its copy after the revert: %v", err)
	}
	if o := w.reportsOf("n1"); o[len(o)-1].Status != "ACTIVE" || o[len(o)-1].ResizeSeq != 3 {
		t.Fatalf("the source's report of the revert: %+v", o[len(o)-1])
	}

	// Stopped, migrated again: made on the new host, not started; the
	// confirm removes the source's copy.
	put(func(s *computestate.Server) { s.Want, s.TaskState, s.VMState = "stopped", "", "stopped" })
	pass()
	migrate("mig2", 4)
	if o := w.reportsOf("n2"); o[len(o)-1].Status != "SHUTOFF" || o[len(o)-1].ResizeSeq != 5 {
		t.Fatalf("the new host's report of a stopped server: %+v", o[len(o)-1])
	}
	if vm, err := dst.Driver.Adopt(ctx, "s1"); err == nil {
		if st, _ := vm.State(ctx); st != hypervisor.Shutdown {
			t.Fatalf("a stopped server started on its new host: %s", st)
		}
	}
	if _, err := os.Stat(filepath.Join(dstDir, "disk")); err != nil {
		t.Fatalf("no disk made for a stopped server: %v", err)
	}
	put(func(s *computestate.Server) { s.MigrateFrom, s.MigrateImage, s.TaskState = "", "", "" })
	pass()
	if _, err := os.Stat(srcDir); !os.IsNotExist(err) {
		t.Fatalf("the source kept its copy after the confirm: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dstDir, "disk")); err != nil {
		t.Fatalf("the new host's disk after the confirm: %v", err)
	}

	// Deleted while its source saves it: the migration's image goes with
	// the server.
	w.Put(imagestate.Table, &imagestate.Image{ID: "mig3", Owner: "p1", Status: imagestate.StatusQueued, DiskFormat: "qcow2"})
	put(func(s *computestate.Server) {
		s.Host, s.ResizeSeq, s.TaskState, s.MigrateTo, s.MigrateImage, s.Want = "n2", 6, computestate.TaskResizeMigrating, "n1", "mig3", "deleted"
	})
	pass()
	if !slices.Contains(snaps.deleted, "mig3") {
		t.Fatalf("a deleted server's migration image was kept: %v", snaps.deleted)
	}
}
