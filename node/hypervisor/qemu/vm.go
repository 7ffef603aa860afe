package qemu

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/rackstack/rackstack/node/hypervisor"
	"github.com/rackstack/rackstack/node/hypervisor/qmp"
)

// vm is a handle on one VM; all it holds is where the VM's files are.
type vm struct {
	d  *Driver
	id string
	p  runPaths
}

var _ hypervisor.VM = (*vm)(nil)

const (
	// statusPoll is how often a soft reboot checks whether the guest has
	// shut down.
	statusPoll = 250 * time.Millisecond
	// quitTimeout and killTimeout bound the two steps of stopping a
	// process that will not stop by itself.
	quitTimeout = 5 * time.Second
	killTimeout = 10 * time.Second
)

func (v *vm) ID() string           { return v.id }
func (v *vm) Console() string      { return v.p.console }
func (v *vm) SerialSocket() string { return v.p.serial }
func (v *vm) VNCSocket() string    { return v.p.vnc }
func (v *vm) PID() int             { return v.d.livePID(v.p) }

// known fails with ErrNotFound once the VM is destroyed.
func (v *vm) known(op string) error {
	if _, err := os.Stat(v.p.spec); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s %s: %w", op, v.id, hypervisor.ErrNotFound)
	}
	return nil
}

// running returns the live pid, or ErrNotFound / ErrNotRunning.
func (v *vm) running(op string) (int, error) {
	if err := v.known(op); err != nil {
		return 0, err
	}
	pid := v.d.livePID(v.p)
	if pid == 0 {
		return 0, fmt.Errorf("%s %s: %w", op, v.id, hypervisor.ErrNotRunning)
	}
	return pid, nil
}

func (v *vm) status(ctx context.Context) (status, error) {
	var st status
	err := v.d.monitor(ctx, v.p, func(c *qmp.Client) error {
		return c.Execute(ctx, "query-status", nil, &st)
	})
	return st, err
}

// State implements hypervisor.VM.
func (v *vm) State(ctx context.Context) (hypervisor.PowerState, error) {
	if err := v.known("state"); err != nil {
		return hypervisor.NoState, err
	}
	pid := v.d.livePID(v.p)
	if pid == 0 {
		return hypervisor.Shutdown, nil
	}
	st, err := v.status(ctx)
	if err != nil {
		if !v.d.runs(pid, v.p) { // it exited while we asked
			return hypervisor.Shutdown, nil
		}
		return hypervisor.NoState, fmt.Errorf("state %s: %w", v.id, err)
	}
	return powerState(st.Status), nil
}

// powerState maps QEMU's run state to Nova's power state, as libvirt does.
func powerState(s string) hypervisor.PowerState {
	switch s {
	case "running":
		return hypervisor.Running
	case "shutdown":
		return hypervisor.Shutdown
	case "guest-panicked", "internal-error":
		return hypervisor.Crashed
	default:
		// paused, prelaunch (after a reset of a stopped guest), io-error
		// (stopped on a full or failing disk: cont resumes it),
		// suspended, watchdog, debug, and the migration states.
		return hypervisor.Paused
	}
}

// PowerOff implements hypervisor.VM.
func (v *vm) PowerOff(ctx context.Context, grace time.Duration) error {
	lock, err := v.d.lock(v.id)
	if err != nil {
		return fmt.Errorf("power off %s: %w", v.id, err)
	}
	defer lock.unlock()
	if err := v.known("power off"); err != nil {
		return err
	}
	pid := v.d.livePID(v.p)
	if pid == 0 {
		removeStale(v.p)
		return nil
	}
	if grace > 0 {
		err := v.d.monitor(ctx, v.p, func(c *qmp.Client) error {
			return c.Execute(ctx, "system_powerdown", nil, nil)
		})
		if err == nil && v.d.waitGone(ctx, pid, v.p, grace) {
			removeStale(v.p)
			v.d.log.Info("vm powered off", "id", v.id, "pid", pid, "by", "guest")
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("power off %s: %w", v.id, ctx.Err())
		}
		if err != nil {
			v.d.log.Warn("vm power button failed; stopping it", "id", v.id, "err", err)
		}
	}
	if err := v.d.stop(ctx, pid, v.p); err != nil {
		return fmt.Errorf("power off %s: %w", v.id, err)
	}
	v.d.log.Info("vm powered off", "id", v.id, "pid", pid, "by", "hypervisor", "grace", grace)
	return nil
}

// Kill implements hypervisor.VM.
func (v *vm) Kill() error {
	lock, err := v.d.lock(v.id)
	if err != nil {
		return fmt.Errorf("kill %s: %w", v.id, err)
	}
	defer lock.unlock()
	if err := v.known("kill"); err != nil {
		return err
	}
	pid := v.d.livePID(v.p)
	if pid == 0 {
		removeStale(v.p)
		return nil
	}
	if err := v.d.kill(pid, v.p); err != nil {
		return fmt.Errorf("kill %s: %w", v.id, err)
	}
	if !v.d.waitGone(context.Background(), pid, v.p, killTimeout) {
		return fmt.Errorf("kill %s: pid %d survives SIGKILL", v.id, pid)
	}
	removeStale(v.p)
	v.d.log.Info("vm killed", "id", v.id, "pid", pid)
	return nil
}

// Reboot implements hypervisor.VM.
func (v *vm) Reboot(ctx context.Context, kind hypervisor.RebootKind, grace time.Duration) error {
	lock, err := v.d.lock(v.id)
	if err != nil {
		return fmt.Errorf("reboot %s: %w", v.id, err)
	}
	defer lock.unlock()
	pid, err := v.running("reboot")
	if err != nil {
		return err
	}
	soft := false
	if kind == hypervisor.SoftReboot {
		st, err := v.status(ctx)
		if err != nil {
			return fmt.Errorf("reboot %s: %w", v.id, err)
		}
		// A guest that is not running cannot answer the power button.
		if st.Status == "running" {
			// After the reset below: a guest still on its way down when
			// grace ran out must not take QEMU with it.
			defer v.restoreShutdownAction(ctx)
			soft, err = v.softShutdown(ctx, pid, grace)
			if err != nil {
				return fmt.Errorf("reboot %s: %w", v.id, err)
			}
		}
	}
	if err := v.d.monitor(ctx, v.p, func(c *qmp.Client) error {
		if err := c.Execute(ctx, "system_reset", nil, nil); err != nil {
			return err
		}
		var st status
		if err := c.Execute(ctx, "query-status", nil, &st); err != nil {
			return err
		}
		if st.Status != "running" { // reset leaves a stopped guest in "prelaunch"
			return c.Execute(ctx, "cont", nil, nil)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("reboot %s: %w", v.id, err)
	}
	v.d.log.Info("vm rebooted", "id", v.id, "pid", pid, "kind", kind, "guest_shut_down", soft)
	return nil
}

// softShutdown presses the power button with QEMU told to pause, not exit,
// when the guest shuts down, and waits up to grace for the guest to do so.
// It reports whether the guest shut down. The caller resets the guest, then
// restores the shutdown action.
func (v *vm) softShutdown(ctx context.Context, pid int, grace time.Duration) (bool, error) {
	err := v.d.monitor(ctx, v.p, func(c *qmp.Client) error {
		if err := c.Execute(ctx, "set-action", map[string]string{"shutdown": "pause"}, nil); err != nil {
			return err
		}
		return c.Execute(ctx, "system_powerdown", nil, nil)
	})
	if err != nil {
		var qerr *qmp.Error
		if errors.As(err, &qerr) { // an old QEMU without set-action, say
			v.d.log.Warn("soft reboot unavailable; resetting", "id", v.id, "err", err)
			return false, nil
		}
		return false, err
	}
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	tick := time.NewTicker(statusPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-deadline.C:
			v.d.log.Info("guest did not shut down for a soft reboot; resetting", "id", v.id, "grace", grace)
			return false, nil
		case <-tick.C:
		}
		st, err := v.status(ctx)
		if err != nil {
			if !v.d.runs(pid, v.p) {
				return false, fmt.Errorf("qemu exited during a soft reboot: %w", hypervisor.ErrNotRunning)
			}
			continue
		}
		if st.Status == "shutdown" {
			return true, nil
		}
	}
}

// restoreShutdownAction makes a guest shutdown end the process again. It
// runs even when ctx has ended: leaving "pause" behind would turn the
// guest's next power-off into a hang.
func (v *vm) restoreShutdownAction(ctx context.Context) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), quitTimeout)
	defer cancel()
	if err := v.d.monitor(rctx, v.p, func(c *qmp.Client) error {
		return c.Execute(rctx, "set-action", map[string]string{"shutdown": "poweroff"}, nil)
	}); err != nil && v.d.livePID(v.p) != 0 {
		v.d.log.Warn("restore shutdown action", "id", v.id, "err", err)
	}
}

// Pause implements hypervisor.VM.
func (v *vm) Pause(ctx context.Context) error {
	return v.execute(ctx, "pause", "stop")
}

// Resume implements hypervisor.VM.
func (v *vm) Resume(ctx context.Context) error {
	return v.execute(ctx, "resume", "cont")
}

func (v *vm) execute(ctx context.Context, op, command string) error {
	lock, err := v.d.lock(v.id)
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, v.id, err)
	}
	defer lock.unlock()
	if _, err := v.running(op); err != nil {
		return err
	}
	if err := v.d.monitor(ctx, v.p, func(c *qmp.Client) error {
		return c.Execute(ctx, command, nil, nil)
	}); err != nil {
		return fmt.Errorf("%s %s: %w", op, v.id, err)
	}
	return nil
}

// Destroy implements hypervisor.VM.
func (v *vm) Destroy(ctx context.Context) error {
	lock, err := v.d.lock(v.id)
	if err != nil {
		return fmt.Errorf("destroy %s: %w", v.id, err)
	}
	defer lock.unlock() // and removes the lock file, the VM being gone
	if _, err := os.Stat(v.p.dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	pid := v.d.livePID(v.p)
	if pid != 0 {
		if err := v.d.stop(ctx, pid, v.p); err != nil {
			return fmt.Errorf("destroy %s: %w", v.id, err)
		}
	}
	if err := os.RemoveAll(v.p.dir); err != nil {
		return fmt.Errorf("destroy %s: %w", v.id, err)
	}
	v.d.log.Info("vm destroyed", "id", v.id, "pid", pid)
	return nil
}

// stop ends the VM's process: QMP quit (QEMU flushes its disks and exits),
// then SIGKILL if it has not gone. It runs to the end even if ctx has
// ended: a half-stopped VM helps nobody.
func (d *Driver) stop(ctx context.Context, pid int, p runPaths) error {
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), quitTimeout)
	err := d.monitor(qctx, p, func(c *qmp.Client) error {
		return c.Execute(qctx, "quit", nil, nil) // the reply may be lost as QEMU exits
	})
	cancel()
	if !d.waitGone(context.Background(), pid, p, quitTimeout) {
		d.log.Warn("qemu did not quit; killing it", "pid", pid, "quit_err", err)
		if err := d.kill(pid, p); err != nil {
			return err
		}
		if !d.waitGone(context.Background(), pid, p, killTimeout) {
			return fmt.Errorf("pid %d survives SIGKILL", pid)
		}
	}
	removeStale(p)
	return nil
}
