package instances

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/network/netstate"
	"github.com/rackstack/rackstack/node/hypervisor"
)

// rescuing says the server waits for this node to restart its guest for
// a rescue or an unrescue (task_state rescuing or unrescuing) newer than
// the last one done here.
func rescuing(s computestate.Server, rec record) bool {
	return (s.TaskState == computestate.TaskRescuing || s.TaskState == computestate.TaskUnrescuing) &&
		s.RescueSeq > rec.RescueSeq
}

// rescue restarts the guest for Nova's rescue or unrescue: the guest
// powered off as for a stop, the last rescue disk removed, and the guest
// started again, its flavor, NICs, taps and MACs the same. A rescue
// (RescueImage set) boots it from a fresh overlay of the rescue image,
// with its own root disk second and untouched (build); an unrescue boots
// it from its own disk alone. Either way the guest runs after it, as
// Nova's rescue starts a stopped instance and its unrescue leaves it
// active. The step's RescueSeq is recorded once done: a rackd that stops
// in the middle does it again on its next pass (a fresh rescue disk
// again, which nothing has written yet). A step that fails reports ERROR
// saying why, once.
func (a *Agent) rescue(ctx context.Context, s computestate.Server, view *netstate.View, vm hypervisor.VM, state hypervisor.PowerState, rec *record) error {
	what := "rescue"
	if s.RescueImage == "" {
		what = "unrescue"
	}
	a.Log.Info("compute: "+what, "server", s.ID, "rescue_image", s.RescueImage, "rescue", s.RescueSeq)
	if vm != nil && state != hypervisor.Shutdown {
		// Stopped as Nova does, with the guest's own shutdown first; an
		// error here is retried on the next pass.
		if err := vm.PowerOff(ctx, a.grace()); err != nil {
			return fmt.Errorf("stop guest for %s: %w", what, err)
		}
	}
	fail := func(err error) error {
		if ctx.Err() != nil {
			return err // shutting down: the next rackd does the step
		}
		rec.RescueSeq = s.RescueSeq
		if werr := a.writeRecord(s.ID, *rec); werr != nil {
			return werr
		}
		return a.report(ctx, s.ID, withFault(rec.observed("ERROR", 4), fmt.Sprintf("%s of instance %s failed: %v", titled(what), s.ID, err)))
	}
	if err := os.Remove(filepath.Join(a.instanceDir(s.ID), rescueDiskName)); err != nil && !os.IsNotExist(err) {
		return fail(fmt.Errorf("remove the last rescue disk: %w", err))
	}
	started, err := a.build(ctx, s, view, rec)
	if err != nil {
		return fail(err)
	}
	a.mu.Lock()
	a.pids[s.ID] = started.PID() // started here: nothing to adopt
	delete(a.failed, s.ID)
	a.mu.Unlock()
	// The fresh boot is also any reboot asked for meanwhile.
	rec.RebootSeq = max(rec.RebootSeq, s.RebootSeq)
	rec.RescueSeq = s.RescueSeq
	if err := a.writeRecord(s.ID, *rec); err != nil {
		return err
	}
	a.Log.Info("compute: "+what+" done", "server", s.ID, "pid", started.PID())
	return a.report(ctx, s.ID, rec.observed("ACTIVE", 1))
}

func titled(what string) string {
	if what == "rescue" {
		return "Rescue"
	}
	return "Unrescue"
}

// rescueDiskName is the rescue disk's file in the instance directory;
// the server's delete removes it with the directory.
const rescueDiskName = "disk.rescue"

// rescueDisk is the disk a rescued guest boots from: a qcow2 overlay of
// the rescue image, the size of the server's root disk as Nova makes it.
// It is made by the rescue's first boot and kept while the server stays
// rescued, so that a guest restarted in rescue keeps what was written.
func (a *Agent) rescueDisk(ctx context.Context, s computestate.Server, dir string) (hypervisor.Disk, error) {
	disk := filepath.Join(dir, rescueDiskName)
	if _, err := os.Stat(disk); err != nil {
		base, img, err := a.cachedImage(ctx, s.RescueImage)
		if err != nil {
			return hypervisor.Disk{}, fmt.Errorf("rescue image %s: %w", s.RescueImage, err)
		}
		if err := overlay(ctx, base, imageFormat(img), disk, s.RootGB); err != nil {
			return hypervisor.Disk{}, err
		}
	}
	return hypervisor.Disk{Path: disk, Format: hypervisor.FormatQCOW2, Serial: "rescue"}, nil
}
