// Package hypervisor is the contract between the node agent and whatever runs
// virtual machines on a node: a Driver starts, adopts and lists VMs, a VM is a
// handle on one of them. The QEMU implementation lives in
// node/hypervisor/qemu; Fake stands in for it in other packages' unit tests,
// and node/hypervisor/drivertest is the conformance suite both must pass.
//
// A VM outlives the process that started it: rackd may be restarted (or
// killed) while its guests keep running, and a new Driver finds them again
// with Adopt. This package holds the contract and the fake; it must not
// start processes.
package hypervisor

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors; drivers wrap them, callers test with errors.Is.
var (
	// ErrNotFound: no VM with that id is known on this node.
	ErrNotFound = errors.New("vm not found")
	// ErrExists: a VM with that id is running with a different spec.
	ErrExists = errors.New("vm already exists")
	// ErrInvalidSpec: the VMSpec cannot be started as given (bad values, or
	// files it names are missing). Nothing is left behind.
	ErrInvalidSpec = errors.New("invalid vm spec")
	// ErrNotRunning: the operation needs a running guest process (pause,
	// resume, reboot) and there is none.
	ErrNotRunning = errors.New("vm not running")
)

// Driver runs VMs on one node.
type Driver interface {
	// Start creates and boots the VM. It is idempotent by spec.ID: if the VM
	// already runs with an equal spec, Start returns it untouched; if it runs
	// with a different spec, ErrExists; if it is known but stopped (or its
	// process holds a guest that shut down), it boots it again with spec,
	// which may differ from the last one. Errors from the spec itself wrap
	// ErrInvalidSpec, and leave nothing behind.
	Start(ctx context.Context, spec VMSpec) (VM, error)
	// Adopt returns the VM a previous driver instance (a previous rackd)
	// started with this id, running or not. ErrNotFound if there is none.
	Adopt(ctx context.Context, id string) (VM, error)
	// List returns the ids of the VMs known on this node, sorted: every id
	// that Adopt finds.
	List(ctx context.Context) ([]string, error)
	// Accelerator says how guests run: "kvm" or "tcg".
	Accelerator() string
}

// VM is a handle on one VM. Handles are cheap; two handles on the same id
// (say, from two driver instances) see the same VM.
type VM interface {
	ID() string
	// State reports the power state. A VM whose process is gone is Shutdown.
	// After Destroy, State returns ErrNotFound.
	State(ctx context.Context) (PowerState, error)
	// PowerOff asks the guest to power off (ACPI power button), waits up to
	// grace for it, then stops the process. A VM already off is not an error.
	PowerOff(ctx context.Context, grace time.Duration) error
	// Kill stops the process at once (SIGKILL): pulling the plug.
	Kill() error
	// Reboot restarts the guest. HardReboot resets it at once. SoftReboot
	// presses the ACPI power button and, once the guest has shut down,
	// resets it (there is no ACPI "reboot" request); a guest that has not
	// shut down within grace is reset anyway, as Nova does. Either way the
	// guest ends Running, even if it was Paused.
	Reboot(ctx context.Context, kind RebootKind, grace time.Duration) error
	// Pause freezes the guest's CPUs; Resume lets them run again.
	Pause(ctx context.Context) error
	Resume(ctx context.Context) error
	// Console is the path of the serial console log (everything the guest
	// wrote to its first serial port, across boots).
	Console() string
	// SerialSocket is the path of a unix socket speaking the interactive
	// serial console (one client at a time); "" if the driver has none.
	SerialSocket() string
	// VNCSocket is the path of a unix socket speaking RFB (VNC) to the
	// guest's display; "" if the driver has none.
	VNCSocket() string
	// PID is the id of the process running the guest; 0 when there is none.
	PID() int
	// Destroy stops the process and removes what the driver keeps for the
	// VM (run directory, console log). It never touches the disks, which
	// belong to the caller. Destroying a destroyed VM is not an error.
	Destroy(ctx context.Context) error
}

// PowerState is what a VM is doing, in Nova's terms.
type PowerState string

const (
	// NoState: the state could not be determined (returned with an error).
	NoState PowerState = ""
	// Running: the guest CPUs run.
	Running PowerState = "running"
	// Paused: the process is alive but the guest CPUs do not run: paused by
	// request, stopped by a disk I/O error (Resume continues it), or between
	// a reset and the guest starting again.
	Paused PowerState = "paused"
	// Shutdown: there is no guest: the process is gone, or the guest shut
	// down and the process waits to be reset or stopped.
	Shutdown PowerState = "shutdown"
	// Crashed: the guest panicked, or the hypervisor hit an internal error
	// and stopped it. Only a reboot (or power off) gets it out.
	Crashed PowerState = "crashed"
)

// RebootKind selects how Reboot restarts a guest.
type RebootKind int

const (
	// SoftReboot: ACPI power button, wait for the guest to shut down (up to
	// the grace period), then reset.
	SoftReboot RebootKind = iota
	// HardReboot: reset at once, like the reset button.
	HardReboot
)

func (k RebootKind) String() string {
	if k == HardReboot {
		return "hard"
	}
	return "soft"
}
