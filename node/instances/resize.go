package instances

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/network/netstate"
	"github.com/rackstack/rackstack/node/hypervisor"
)

// resizing says the server waits for this node to restart its guest with
// the flavor in its row: a resize or a revert (task_state resize_finish
// or resize_reverting) newer than the last one done here.
func resizing(s computestate.Server, rec record) bool {
	return (s.TaskState == computestate.TaskResizeFinish || s.TaskState == computestate.TaskResizeReverting) &&
		s.ResizeSeq > rec.ResizeSeq
}

// resize restarts the guest with the server's flavor (Nova's resize on
// the same host, or its revert): the guest powered off as for a stop, a
// local root disk grown to RootGB when it is smaller (a boot volume is
// not touched; a disk is never shrunk, so a revert keeps what a resize
// grew), and the guest started again with the flavor's vCPUs and RAM,
// its NICs, taps and MACs the same -- unless the server is stopped,
// which stays stopped. It reports the step's ResizeSeq once done, which
// the record keeps: a rackd that stops in the middle does it again on
// its next pass. A step that fails reports ERROR saying why, once.
func (a *Agent) resize(ctx context.Context, s computestate.Server, view *netstate.View, vm hypervisor.VM, state hypervisor.PowerState, rec *record) error {
	a.Log.Info("compute: resizing", "server", s.ID, "flavor", s.Flavor.ID, "vcpus", s.Flavor.VCPUs, "ram_mb", s.Flavor.RAM,
		"root_gb", s.RootGB, "resize", s.ResizeSeq)
	if vm != nil && state != hypervisor.Shutdown {
		// Stopped as Nova does, with the guest's own shutdown first; an
		// error here is retried on the next pass.
		if err := vm.PowerOff(ctx, a.grace()); err != nil {
			return fmt.Errorf("stop guest for resize: %w", err)
		}
	}
	fail := func(err error) error {
		if ctx.Err() != nil {
			return err // shutting down: the next rackd resizes it
		}
		rec.ResizeSeq = s.ResizeSeq
		if werr := a.writeRecord(s.ID, *rec); werr != nil {
			return werr
		}
		return a.report(ctx, s.ID, withFault(rec.observed("ERROR", 4), fmt.Sprintf("Resize of instance %s failed: %v", s.ID, err)))
	}
	if s.BootVolume == "" {
		if err := growDisk(ctx, filepath.Join(a.instanceDir(s.ID), "disk"), s.RootGB); err != nil {
			return fail(err)
		}
	}
	status, power := "SHUTOFF", 4
	if s.Want == "active" {
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
		status, power = "ACTIVE", 1
	}
	rec.ResizeSeq = s.ResizeSeq
	if err := a.writeRecord(s.ID, *rec); err != nil {
		return err
	}
	a.Log.Info("compute: resized", "server", s.ID, "flavor", s.Flavor.ID, "status", status)
	return a.report(ctx, s.ID, rec.observed(status, power))
}

// growDisk grows the qcow2 disk to rootGB when it is smaller; a disk not
// made yet is left to the build, which makes it that size.
func growDisk(ctx context.Context, disk string, rootGB int) error {
	if _, err := os.Stat(disk); os.IsNotExist(err) {
		return nil
	}
	virtual, err := virtualSize(ctx, disk, "qcow2")
	if err != nil {
		return err
	}
	size := int64(rootGB) << 30
	if size <= virtual {
		return nil
	}
	if out, err := exec.CommandContext(ctx, "qemu-img", "resize", "-q", "-f", "qcow2", disk, fmt.Sprint(size)).CombinedOutput(); err != nil {
		return fmt.Errorf("qemu-img resize: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
