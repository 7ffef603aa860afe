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
// the same host, or its revert): a local root disk grown to RootGB when
// it is smaller while the guest is off (a boot volume is not touched; a
// disk is never shrunk, so a revert keeps what a resize grew), and the
// guest started again with the flavor's vCPUs and RAM -- unless the
// server is stopped, which stays stopped.
func (a *Agent) resize(ctx context.Context, s computestate.Server, view *netstate.View, vm hypervisor.VM, state hypervisor.PowerState, rec *record) error {
	a.Log.Info("compute: resizing", "server", s.ID, "flavor", s.Flavor.ID, "vcpus", s.Flavor.VCPUs, "ram_mb", s.Flavor.RAM,
		"root_gb", s.RootGB, "resize", s.ResizeSeq)
	return a.restart(ctx, s, view, vm, state, rec, restartStep{
		what: "Resize",
		done: func(rec *record) { rec.ResizeSeq = s.ResizeSeq },
		offline: func() error {
			if a.migratingIn(s) {
				// The new host of a cold migration: the disk is made
				// from the source's copy (migrate.go).
				return a.migrateIn(ctx, s)
			}
			// The ephemeral and swap disks follow the flavor, as the
			// root disk does (localdisks.go).
			if err := resizeLocalDisks(ctx, s, a.instanceDir(s.ID)); err != nil {
				return err
			}
			if s.BootVolume != "" {
				return nil
			}
			return growDisk(ctx, filepath.Join(a.instanceDir(s.ID), "disk"), s.RootGB)
		},
		start: s.Want == "active",
	})
}

// restartStep is a step that restarts a server's guest on this node: a
// resize or its revert, a rescue or an unrescue.
type restartStep struct {
	what    string        // the step, as its fault and log name it
	done    func(*record) // records the step as done: its sequence number
	offline func() error  // the step's own work while the guest is off
	start   bool          // whether the guest runs after the step
}

// restart does st: the guest powered off as for a stop (with its own
// shutdown first; an error there is retried on the next pass), the
// step's work, and the guest started again with the server's flavor,
// disks, NICs, taps and MACs unless st leaves it stopped. The step is
// recorded once done and reported with the guest's state: a rackd that
// stops in the middle does it again on its next pass. A step that fails
// is recorded too and reports ERROR saying why, once.
func (a *Agent) restart(ctx context.Context, s computestate.Server, view *netstate.View, vm hypervisor.VM, state hypervisor.PowerState, rec *record, st restartStep) error {
	if vm != nil && state != hypervisor.Shutdown {
		if err := vm.PowerOff(ctx, a.grace()); err != nil {
			return fmt.Errorf("stop guest for %s: %w", strings.ToLower(st.what), err)
		}
	}
	fail := func(err error) error {
		if ctx.Err() != nil {
			return err // shutting down: the next rackd does the step
		}
		st.done(rec)
		if werr := a.writeRecord(s.ID, *rec); werr != nil {
			return werr
		}
		return a.report(ctx, s.ID, withFault(rec.observed("ERROR", 4), fmt.Sprintf("%s of instance %s failed: %v", st.what, s.ID, err)))
	}
	if err := st.offline(); err != nil {
		return fail(err)
	}
	status, power := "SHUTOFF", 4
	if st.start {
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
	st.done(rec)
	if err := a.writeRecord(s.ID, *rec); err != nil {
		return err
	}
	a.Log.Info("compute: "+strings.ToLower(st.what)+" done", "server", s.ID, "flavor", s.Flavor.ID, "status", status)
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
