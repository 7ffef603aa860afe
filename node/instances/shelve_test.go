package instances

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/image/imagestate"
	"github.com/rackstack/rackstack/fabric/testenv"
	"github.com/rackstack/rackstack/node/hypervisor"
)

// uploadedImages serves the images a test's snapshots uploaded (qcow2),
// the world's image for any other.
type uploadedImages struct {
	*world
	snaps *snapshots
}

func (u uploadedImages) Open(ctx context.Context, id string) (io.ReadCloser, imagestate.Image, error) {
	u.snaps.mu.Lock()
	p, ok := u.snaps.uploaded[id]
	u.snaps.mu.Unlock()
	if !ok {
		return u.world.Open(ctx, id)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, imagestate.Image{}, err
	}
	return f, imagestate.Image{ID: id, Status: "active", DiskFormat: "qcow2"}, nil
}

// Shelve on the node: the guest is powered off before its disk is saved
// (not paused and resumed), the image holds what the guest wrote; once
// the server is offloaded (no host) the guest, its directory and taps
// go. Unshelved onto the node, it is built from the shelved image with
// its ports, what it wrote is on its disk, and the shelved image is
// deleted.
func TestAgentShelve(t *testing.T) {
	needTools(t)
	testenv.RequireCommand(t, "qemu-io")
	w, a, snaps, drv, vm := snapshotAgent(t)
	a.Images = uploadedImages{w, snaps}
	ctx := context.Background()
	dir := filepath.Join(a.Dir, "instances", "s1")
	if out, err := exec.Command("qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 64k", filepath.Join(dir, "disk")).CombinedOutput(); err != nil {
		t.Fatalf("qemu-io write: %v %s", err, out)
	}

	w.Put(imagestate.Table, &imagestate.Image{ID: "shelved1", Owner: "p1", Visibility: "private", Status: imagestate.StatusQueued})
	s := w.server("s1")
	s.SnapshotImage, s.SnapshotShelve, s.TaskState = "shelved1", true, computestate.TaskShelving
	w.Put("compute_servers", &s)
	drv.take()
	a.reconcile(ctx)
	if calls := drv.take(); slices.Contains(calls, "pause") {
		t.Errorf("a shelved guest was paused, not powered off: %v", calls)
	}
	if !slices.Equal(snaps.during, []hypervisor.PowerState{hypervisor.Shutdown}) {
		t.Errorf("guest during the shelve's upload: %v", snaps.during)
	}
	if got := snaps.stepsOf("shelved1"); !slices.Equal(got, []string{"image_pending_upload", "image_uploading", "Success"}) {
		t.Fatalf("shelve steps: %v", got)
	}
	if !written(t, snaps.uploaded["shelved1"]) {
		t.Fatal("the shelved image lacks what the guest wrote")
	}

	// The API offloads it: no host.
	s = w.server("s1")
	s.Host, s.VMState, s.Want, s.ShelvedImage, s.PowerState = "", computestate.VMShelvedOffloaded, computestate.VMShelvedOffloaded, "shelved1", 0
	w.Put("compute_servers", &s)
	a.reconcile(ctx)
	if _, err := a.Driver.Adopt(ctx, "s1"); !errors.Is(err, hypervisor.ErrNotFound) {
		t.Errorf("the offloaded guest is still here: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the offloaded server's directory is left: %v", err)
	}
	if len(w.taps) != 0 {
		t.Errorf("taps left: %v", w.taps)
	}

	// Unshelved here: built from the shelved image, which then goes.
	s = w.server("s1")
	s.Host, s.Want, s.TaskState = "n1", "active", computestate.TaskUnshelving
	w.Put("compute_servers", &s)
	w.mu.Lock()
	before := len(w.reports)
	w.mu.Unlock()
	a.reconcile(ctx)
	vm = mustAdopt(t, a, "s1")
	w.mu.Lock()
	after := len(w.reports)
	w.mu.Unlock()
	// Reported, though the same ACTIVE was reported before the shelve.
	if st, _ := vm.State(ctx); st != hypervisor.Running || after == before || w.last().Status != "ACTIVE" {
		t.Fatalf("unshelved guest %s, reports %d -> %d, last %+v", st, before, after, w.last())
	}
	if !written(t, filepath.Join(dir, "disk")) {
		t.Error("the unshelved disk lacks what the guest wrote before its shelve")
	}
	if !slices.Equal(snaps.deleted, []string{"shelved1"}) {
		t.Errorf("shelved image not deleted after the unshelve: %v", snaps.deleted)
	}
}

// An unshelve that follows the offload before this agent saw the
// server leave (tempest attaches a volume to the offloaded server and
// unshelves it at once): the guest the shelve powered off is still
// here, so it is started again, and that start is reported (ACTIVE),
// though the last report, from before the shelve, said ACTIVE too: the
// server does not stay in task unshelving.
func TestAgentUnshelveBeforeTheOffloadWasSeen(t *testing.T) {
	needTools(t)
	w, a, snaps, drv, _ := snapshotAgent(t)
	a.Images = uploadedImages{w, snaps}
	ctx := context.Background()
	w.Put(imagestate.Table, &imagestate.Image{ID: "shelved1", Owner: "p1", Visibility: "private", Status: imagestate.StatusQueued})
	s := w.server("s1")
	s.SnapshotImage, s.SnapshotShelve, s.TaskState = "shelved1", true, computestate.TaskShelving
	w.Put("compute_servers", &s)
	drv.take()
	a.reconcile(ctx)
	if got := snaps.stepsOf("shelved1"); !slices.Equal(got, []string{"image_pending_upload", "image_uploading", "Success"}) {
		t.Fatalf("shelve steps: %v", got)
	}

	// Offloaded and unshelved back here before the next pass.
	s = w.server("s1")
	s.Host, s.VMState, s.Want, s.TaskState, s.ShelvedImage, s.PowerState = "n1", computestate.VMShelvedOffloaded, "active", computestate.TaskUnshelving, "shelved1", 0
	s.SnapshotImage, s.SnapshotShelve = "", false
	w.Put("compute_servers", &s)
	w.mu.Lock()
	before := len(w.reports)
	w.mu.Unlock()
	a.reconcile(ctx)
	vm := mustAdopt(t, a, "s1")
	w.mu.Lock()
	after := len(w.reports)
	w.mu.Unlock()
	if st, _ := vm.State(ctx); st != hypervisor.Running || after == before || w.last().Status != "ACTIVE" {
		t.Fatalf("unshelved guest %s, reports %d -> %d, last %+v", st, before, after, w.last())
	}
}
