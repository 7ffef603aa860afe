package instances

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/image/imagestate"
	"github.com/rackstack/rackstack/fabric/testenv"
	"github.com/rackstack/rackstack/node/hypervisor"
)

// snapshots is the image service and the compute FSM as a snapshot sees
// them: Upload keeps the bytes in a file and makes the image active,
// Step records the steps and applies them to the server's row.
type snapshots struct {
	w         *world
	dir       string
	mu        sync.Mutex
	uploadErr error
	uploaded  map[string]string // image → file of its bytes
	discarded []string
	deleted   []string // by Discard
	steps     []computestate.ImageStepCmd
	// during is the guest's power state when each upload began.
	vm     func() hypervisor.PowerState
	during []hypervisor.PowerState
}

func (s *snapshots) Upload(_ context.Context, id string, r io.Reader, size int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.vm != nil {
		s.during = append(s.during, s.vm())
	}
	if s.uploadErr != nil {
		return s.uploadErr
	}
	p := filepath.Join(s.dir, id)
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if n, err := io.Copy(f, r); err != nil || n != size {
		return errors.New("short upload")
	}
	s.uploaded[id] = p
	img := &imagestate.Image{ID: id, Owner: "p1", Visibility: "private"}
	if queued, err := imagestate.Load(s.w.DB.Txn(false), id); err == nil {
		img = queued.Clone()
	}
	img.Status, img.Size = imagestate.StatusActive, size
	s.w.Put(imagestate.Table, img)
	return nil
}

// Discard deletes the image's row.
func (s *snapshots) Discard(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleted = append(s.deleted, id)
	tx := s.w.DB.Txn(true)
	defer tx.Commit()
	img, err := imagestate.Load(tx, id)
	if err != nil {
		return err
	}
	return tx.Delete(imagestate.Table, img)
}

func (s *snapshots) DiscardUnfinished(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.discarded = append(s.discarded, id)
	return nil
}

func (s *snapshots) Step(_ context.Context, c computestate.ImageStepCmd) error {
	s.mu.Lock()
	s.steps = append(s.steps, c)
	s.mu.Unlock()
	sv := s.w.server(c.ServerID)
	if sv.SnapshotImage != c.ImageID {
		return errors.New("not this server's snapshot")
	}
	if c.Result == "" {
		sv.TaskState = c.Task
	} else {
		sv.TaskState, sv.SnapshotImage, sv.SnapshotBackup = "", "", nil
	}
	s.w.Put("compute_servers", &sv)
	return nil
}

func (s *snapshots) stepsOf(image string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, c := range s.steps {
		if c.ImageID == image {
			out = append(out, c.Task+c.Result)
		}
	}
	return out
}

// pausing records the pauses and resumes of the guests it hands out.
// snapshotAgent is an agent with a fake snapshot path and one guest, s1
// (1 GiB from img1), adopted through a driver that notes its pauses and
// resumes; snaps sees the guest's power state.
func snapshotAgent(t *testing.T) (*world, *Agent, *snapshots, *pausing, hypervisor.VM) {
	t.Helper()
	w := newWorld(t)
	host := hypervisor.NewFakeHost(t.TempDir())
	a := newAgent(t, w, host, t.TempDir(), &logs{})
	snaps := &snapshots{w: w, dir: t.TempDir(), uploaded: map[string]string{}}
	a.Snapshots, a.Step = snaps, snaps.Step
	drv := &pausing{Driver: a.Driver}
	a.Driver = drv
	ctx := context.Background()
	flavor := computestate.Flavor{ID: "f1", VCPUs: 1, RAM: 256, Disk: 1}
	w.Put("compute_servers", &computestate.Server{ID: "s1", Project: "p1", Name: "vm1", Host: "n1", ImageID: "img1", Flavor: flavor, RootGB: 1,
		Want: "active", VMState: "building", TaskState: "spawning"})
	a.reconcile(ctx)
	vm := mustAdopt(t, a, "s1")
	snaps.vm = func() hypervisor.PowerState { st, _ := vm.State(ctx); return st }
	return w, a, snaps, drv, vm
}

type pausing struct {
	hypervisor.Driver
	mu    sync.Mutex
	calls []string
}

type pausingVM struct {
	hypervisor.VM
	d *pausing
}

func (d *pausing) note(c string) {
	d.mu.Lock()
	d.calls = append(d.calls, c)
	d.mu.Unlock()
}

func (d *pausing) Adopt(ctx context.Context, id string) (hypervisor.VM, error) {
	vm, err := d.Driver.Adopt(ctx, id)
	if err != nil {
		return nil, err
	}
	return pausingVM{vm, d}, nil
}

func (v pausingVM) Pause(ctx context.Context) error  { v.d.note("pause"); return v.VM.Pause(ctx) }
func (v pausingVM) Resume(ctx context.Context) error { v.d.note("resume"); return v.VM.Resume(ctx) }

func (d *pausing) take() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := d.calls
	d.calls = nil
	return out
}

// TestAgentSnapshot: a running guest is paused while its disk is copied
// and runs again after; the image gets the disk flattened (no backing
// file) with what the guest wrote, and the steps are reported in order.
// A failed upload deletes the image and says why; a stopped guest is
// copied without being started; a server deleted mid-snapshot takes its
// image with it.
func TestAgentSnapshot(t *testing.T) {
	needTools(t)
	testenv.RequireCommand(t, "qemu-io")
	w, a, snaps, drv, vm := snapshotAgent(t)
	ctx := context.Background()
	disk := filepath.Join(a.Dir, "instances", "s1", "disk")
	if out, err := exec.Command("qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 64k", disk).CombinedOutput(); err != nil {
		t.Fatalf("qemu-io write: %v %s", err, out)
	}
	snapshot := func(image string) {
		t.Helper()
		w.Put(imagestate.Table, &imagestate.Image{ID: image, Owner: "p1", Visibility: "private", Status: imagestate.StatusQueued})
		s := w.server("s1")
		s.SnapshotImage, s.TaskState = image, computestate.TaskImageSnapshot
		w.Put("compute_servers", &s)
		a.reconcile(ctx)
	}

	drv.take()
	snapshot("snap1")
	if calls := drv.take(); !slices.Equal(calls, []string{"pause", "resume"}) {
		t.Errorf("the running guest was not paused for the copy and resumed: %v", calls)
	}
	if got := snaps.stepsOf("snap1"); !slices.Equal(got, []string{"image_pending_upload", "image_uploading", "Success"}) {
		t.Fatalf("steps: %v", got)
	}
	file := snaps.uploaded["snap1"]
	info, err := exec.Command("qemu-img", "info", "--output", "json", file).CombinedOutput()
	if err != nil || !bytes.Contains(info, []byte(`"format": "qcow2"`)) || bytes.Contains(info, []byte("backing")) {
		t.Fatalf("uploaded image is not a flat qcow2: %v\n%s", err, info)
	}
	if !written(t, file) {
		t.Error("the image lacks what the guest wrote")
	}
	if st, _ := vm.State(ctx); st != hypervisor.Running || !slices.Equal(snaps.during, []hypervisor.PowerState{hypervisor.Running}) {
		t.Errorf("guest %s after the snapshot", st)
	}
	if sv := w.server("s1"); sv.SnapshotImage != "" || sv.TaskState != "" {
		t.Fatalf("server after the snapshot: %q %q", sv.SnapshotImage, sv.TaskState)
	}
	if _, err := os.Stat(filepath.Join(a.Dir, "instances", "s1", "snapshot-snap1.qcow2")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the copy was left behind: %v", err)
	}
	// A done snapshot is not done again.
	a.reconcile(ctx)
	if n := len(snaps.stepsOf("snap1")); n != 3 {
		t.Errorf("%d steps after another pass", n)
	}

	// A failed upload: the image goes, the end says why.
	snaps.uploadErr = errors.New("no storage disks")
	snapshot("snap2")
	got := snaps.stepsOf("snap2")
	if len(got) != 3 || got[2] != "Error" || !slices.Contains(snaps.discarded, "snap2") {
		t.Fatalf("failed snapshot: steps %v discarded %v", got, snaps.discarded)
	}
	if last := snaps.steps[len(snaps.steps)-1]; !strings.Contains(last.Details, "no storage disks") {
		t.Errorf("failure details: %q", last.Details)
	}
	if st, _ := vm.State(ctx); st != hypervisor.Running {
		t.Errorf("guest %s after a failed snapshot", st)
	}
	snaps.uploadErr = nil

	// A stopped guest is copied as it is: not started, not paused.
	s := w.server("s1")
	s.Want, s.TaskState = "stopped", "powering-off"
	w.Put("compute_servers", &s)
	a.reconcile(ctx)
	snaps.during = nil
	drv.take()
	snapshot("snap3")
	if calls := drv.take(); len(calls) != 0 {
		t.Errorf("a stopped guest's snapshot: %v", calls)
	}
	if got := snaps.stepsOf("snap3"); len(got) != 3 || got[2] != "Success" || !slices.Equal(snaps.during, []hypervisor.PowerState{hypervisor.Shutdown}) {
		t.Fatalf("stopped guest's snapshot: %v, guest %v during the upload", got, snaps.during)
	}
	if st, _ := vm.State(ctx); st != hypervisor.Shutdown {
		t.Errorf("stopped guest is %s after its snapshot", st)
	}

	// Deleted while a snapshot waits: the image goes with the server.
	s = w.server("s1")
	s.SnapshotImage, s.Want, s.TaskState = "snap4", "deleted", "deleting"
	w.Put("compute_servers", &s)
	a.reconcile(ctx)
	if !slices.Contains(snaps.discarded, "snap4") {
		t.Errorf("a deleted server's snapshot image was kept: %v", snaps.discarded)
	}
}
