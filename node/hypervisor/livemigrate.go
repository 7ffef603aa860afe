package hypervisor

import (
	"context"
	"errors"
)

// Live migration: a VM's guest moves to another node while it runs,
// by the hypervisor's own migration of its memory over TCP and a mirror
// of its first disk (its local root disk) into the other node's copy,
// served over NBD there. Plugged disks (HotDisk, volumes of the block
// store) are not copied: the destination has placeholders of their
// size in the same slots until the switch-over, when it opens them
// (FinishIncoming). A driver that cannot do it does not implement these
// interfaces.

// Incoming is a Driver that starts a VM to receive a live migration.
type Incoming interface {
	// StartIncoming starts a VM for spec that runs no guest: it waits,
	// paused, for a live migration's stream (PrepareIncoming). Its
	// first disk must exist, blank, of the source's disk's size.
	StartIncoming(ctx context.Context, spec VMSpec) (VM, error)
}

// PluggedDisk is a disk plugged into a running guest as a live
// migration sees it: its id (HotDisk.ID), the slot it is in, its size
// in bytes as the guest sees it, and its serial and mode.
type PluggedDisk struct {
	ID       string `json:"id"`
	Slot     string `json:"slot"`
	Size     int64  `json:"size"`
	Serial   string `json:"serial,omitempty"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

// MigrationTarget is where a live migration goes: host:port of the
// destination's stream listener and of its NBD server, which serves
// the destination's copy of the first disk under the export DiskExport.
type MigrationTarget struct {
	Stream     string `json:"stream"`
	Disk       string `json:"disk"`
	DiskExport string `json:"disk_export,omitempty"`
}

// MigrationControl is what the source is asked besides: to cancel the
// migration, or to pause the guest so that it completes; Resume says
// the guest ran before (a failed or cancelled migration lets it run
// again if the migration paused it).
type MigrationControl struct {
	Abort, ForceComplete, Resume bool
}

// MigrationPhase is where a live migration is, as the hypervisor knows
// it.
type MigrationPhase string

const (
	// MigrationRunning: under way (or, on the source, not begun).
	MigrationRunning MigrationPhase = "running"
	// MigrationCompleted: the state has all reached the destination
	// and the source's guest is stopped for good.
	MigrationCompleted MigrationPhase = "completed"
	// MigrationFailed and MigrationCancelled: it did not happen; the
	// source's guest is what runs.
	MigrationFailed    MigrationPhase = "failed"
	MigrationCancelled MigrationPhase = "cancelled"
)

// LiveMigrator is a VM that takes part in live migrations.
type LiveMigrator interface {
	// FirstDiskSize is the size in bytes of the VM's first disk.
	FirstDiskSize(ctx context.Context) (int64, error)
	// PluggedDisks lists the disks plugged into the guest.
	PluggedDisks(ctx context.Context) ([]PluggedDisk, error)
	// MigrateOut (source) moves run's migration to t on by one step
	// and says where it is, with the hypervisor's reason when it
	// failed; call it again until it is over. The run's id is
	// recorded with the VM before the migration starts, so a phase left
	// by an earlier run is never taken for this one's.
	MigrateOut(ctx context.Context, run string, t MigrationTarget, c MigrationControl) (MigrationPhase, string, error)
	// PrepareIncoming (destination, after StartIncoming) plugs
	// placeholders for disks, serves the first disk over NBD on t.Disk
	// and listens for the stream on t.Stream. Calling it again on a
	// prepared VM is not an error.
	PrepareIncoming(ctx context.Context, disks []PluggedDisk, t MigrationTarget) error
	// IncomingPhase (destination) is where the incoming stream is.
	IncomingPhase(ctx context.Context) (MigrationPhase, string, error)
	// FinishIncoming (destination, once the stream completed) ends the
	// NBD server, puts disks (their exports now open on this node) in
	// place of the placeholders, and lets the guest run unless paused.
	// Calling it again on a finished VM is not an error.
	FinishIncoming(ctx context.Context, disks []HotDisk, paused bool) error
}

// ErrNotIncoming: the VM does not wait for a live migration.
var ErrNotIncoming = errors.New("vm does not wait for a live migration")
