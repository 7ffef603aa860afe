package instances

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/image/imagestate"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/node/hypervisor"
)

// Nova's createImage, on the node that runs the guest: the root disk
// (a qcow2 overlay of the server's image) is copied into one flattened
// qcow2 file (no backing file) and uploaded into the queued image the API
// made, which goes saving then active. A running guest is paused for the
// copy (QMP stop, which drains and flushes its disks) and let run again
// at once after; a stopped or paused one is copied as it is. The steps
// are reported (computestate.CmdImageStep): image_pending_upload once
// the copy is made, image_uploading while it is stored, then the end. A
// failed snapshot deletes its image, unless it became active, and says
// why in the createImage action: the server goes back to its state.

// SnapshotStore stores the images createImage makes: the image service
// of this node.
type SnapshotStore interface {
	// Upload stores size bytes from r as the data of queued image id,
	// which becomes active.
	Upload(ctx context.Context, id string, r io.Reader, size int64) error
	// DiscardUnfinished deletes image id and its data unless it is
	// active.
	DiscardUnfinished(ctx context.Context, id string) error
	// Discard deletes image id and its data: a backup rotated out.
	Discard(ctx context.Context, id string) error
}

// snapshot makes server s's image s.SnapshotImage from its root disk.
func (a *Agent) snapshot(ctx context.Context, s computestate.Server, vm hypervisor.VM, state hypervisor.PowerState) error {
	image := s.SnapshotImage
	if a.Snapshots == nil || a.Step == nil {
		return a.snapshotFailed(ctx, s, errors.New("this node cannot store images"))
	}
	if tx, err := a.State(ctx); err == nil {
		if img, err := imagestate.Load(tx, image); errors.Is(err, store.ErrNotFound) {
			return a.snapshotFailed(ctx, s, fmt.Errorf("image %s was deleted", image))
		} else if err == nil && img.Status == imagestate.StatusActive {
			// Made by a pass whose end was not recorded.
			a.rotateBackups(ctx, s)
			return a.imageStep(ctx, s, "", "Success", "")
		}
	}
	a.Log.Info("compute: snapshotting", "server", s.ID, "image", image, "state", state)
	if s.SnapshotShelve && vm != nil && state != hypervisor.Shutdown {
		// Nova's shelve powers the guest off, then saves its disk.
		if err := vm.PowerOff(ctx, a.grace()); err != nil {
			return a.snapshotFailed(ctx, s, fmt.Errorf("power off for the shelve: %w", err))
		}
		state = hypervisor.Shutdown
	}
	dir := a.instanceDir(s.ID)
	out := filepath.Join(dir, "snapshot-"+image+".qcow2")
	defer os.Remove(out)
	if err := copyDisk(ctx, vm, state, filepath.Join(dir, "disk"), out); err != nil {
		return a.snapshotFailed(ctx, s, err)
	}
	if err := a.imageStep(ctx, s, computestate.TaskImagePendingUpload, "", ""); err != nil {
		return err
	}
	f, err := os.Open(out)
	if err != nil {
		return a.snapshotFailed(ctx, s, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return a.snapshotFailed(ctx, s, err)
	}
	if err := a.imageStep(ctx, s, computestate.TaskImageUploading, "", ""); err != nil {
		return err
	}
	if err := a.Snapshots.Upload(ctx, image, f, st.Size()); err != nil {
		return a.snapshotFailed(ctx, s, fmt.Errorf("upload: %w", err))
	}
	a.Log.Info("compute: snapshot uploaded", "server", s.ID, "image", image, "bytes", st.Size())
	a.rotateBackups(ctx, s)
	return a.imageStep(ctx, s, "", "Success", "")
}

// copyDisk writes disk, flattened, to out as qcow2; a running guest is
// paused for the copy so that the disk does not change under it.
func copyDisk(ctx context.Context, vm hypervisor.VM, state hypervisor.PowerState, disk, out string) (err error) {
	if vm != nil && state == hypervisor.Running {
		if err := vm.Pause(ctx); err != nil {
			return fmt.Errorf("pause guest for the copy: %w", err)
		}
		defer func() {
			// Whatever the copy did, the guest runs again; if it cannot
			// now, the next pass resumes it.
			if rerr := vm.Resume(context.WithoutCancel(ctx)); rerr != nil {
				err = errors.Join(err, fmt.Errorf("resume guest after the copy: %w", rerr))
			}
		}()
	}
	// -U: the guest's QEMU holds the image's lock; it is paused (or
	// stopped), so the disk does not change while it is read. -f is
	// given: a format is never probed.
	cmd := exec.CommandContext(ctx, "qemu-img", "convert", "-U", "-q", "-f", "qcow2", "-O", "qcow2", disk, out+".part")
	if msg, err := cmd.CombinedOutput(); err != nil {
		os.Remove(out + ".part")
		return fmt.Errorf("qemu-img convert: %v: %s", err, strings.TrimSpace(string(msg)))
	}
	return os.Rename(out+".part", out)
}

// snapshotFailed deletes the image of a failed snapshot (unless it became
// active) and ends the snapshot with why.
func (a *Agent) snapshotFailed(ctx context.Context, s computestate.Server, cause error) error {
	if ctx.Err() != nil {
		return cause // shutting down: the next rackd tries again
	}
	a.Log.Warn("compute: snapshot failed", "server", s.ID, "image", s.SnapshotImage, "err", cause)
	if a.Snapshots != nil {
		if err := a.Snapshots.DiscardUnfinished(ctx, s.SnapshotImage); err != nil && !errors.Is(err, store.ErrNotFound) {
			a.Log.Warn("compute: delete the image of a failed snapshot", "server", s.ID, "image", s.SnapshotImage, "err", err)
		}
	}
	return errors.Join(cause, a.imageStep(ctx, s, "", "Error", fmt.Sprintf("Snapshot of instance %s failed: %v", s.ID, cause)))
}

// imageStep reports a snapshot's step; a conflict means the server no
// longer makes this image (it was deleted, or the step was recorded).
func (a *Agent) imageStep(ctx context.Context, s computestate.Server, task, result, details string) error {
	if a.Step == nil {
		return errors.New("no way to report a snapshot's steps")
	}
	err := a.Step(ctx, computestate.ImageStepCmd{ServerID: s.ID, ImageID: s.SnapshotImage, Task: task, Result: result, Details: details,
		Now: time.Now().UTC()})
	if errors.Is(err, store.ErrConflict) {
		return nil
	}
	return err
}
