package computestate

import "time"

// Nova's live migration (os-migrateLive): the guest keeps running while
// its memory and local disk are copied to another host by QEMU's own
// migration, then runs there. The server's task_state is migrating
// (status MIGRATING) throughout; its migration record, of type
// live-migration, goes preparing → running → completed, or error, or
// cancelled (an abort). Live is the run's state, which the two nodes'
// agents follow (fabric/compute/server_livemigrate.go has the steps and
// the crash argument).
const (
	TaskMigrating       = "migrating"
	ActionLiveMigration = "live-migration"
	MigrationLive       = "live-migration"

	// CmdLiveMigrateStep is a node's step of a live migration
	// (LiveMigrateStepCmd).
	CmdLiveMigrateStep = "compute.server.live_migrate_step"
)

// LiveMigration is a live migration under way.
type LiveMigration struct {
	// Seq keys the run: the log index of the command that began it. A
	// step of an older run changes nothing.
	Seq    uint64 `json:"seq"`
	Source string `json:"source"`
	Dest   string `json:"dest"`
	// RootBytes and Disks are what the source reported of its guest
	// (step LiveSource): the size of its root disk, and its plugged
	// disks, which the destination plugs placeholders for in the same
	// slots. The destination prepares once they are known.
	RootBytes int64      `json:"root_bytes,omitempty"`
	Disks     []LiveDisk `json:"disks,omitempty"`
	// StreamAddr is where the destination's QEMU waits for the
	// migration stream, DiskAddr where its NBD server takes the copy
	// of the local root disk (host:port each), once it is prepared.
	StreamAddr string `json:"stream_addr,omitempty"`
	DiskAddr   string `json:"disk_addr,omitempty"`
	// Abort asks the source to cancel the run (Nova's abort, 2.24);
	// ForceComplete to pause the guest so that the copy converges
	// (Nova's force_complete, 2.22).
	Abort         bool `json:"abort,omitempty"`
	ForceComplete bool `json:"force_complete,omitempty"`
}

// LiveDisk is a disk plugged into a live-migrating guest.
type LiveDisk struct {
	ID       string `json:"id"`
	Slot     string `json:"slot"`
	Size     int64  `json:"size"`
	Serial   string `json:"serial,omitempty"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

// Live migration steps a node reports.
const (
	// LiveSource: the source's guest as it is (RootBytes, Disks).
	LiveSource = "source"
	// LivePrepared: the destination waits for the stream (addresses set).
	LivePrepared = "prepared"
	// LiveSwitched: the guest's state has all reached the destination
	// and the source's guest is stopped for good (QEMU's migration
	// completed, on either side): the server is the destination's.
	LiveSwitched = "switched"
	// LiveDone: the destination runs the guest.
	LiveDone = "done"
	// LiveFailed: the migration did not happen (QEMU says so on the
	// source, or the destination could not prepare): the guest runs on
	// the source. LiveCancelled is the same after an abort.
	LiveFailed    = "failed"
	LiveCancelled = "cancelled"
)

// LiveMigrateStepCmd is a node's step of the live migration Seq of a
// server.
type LiveMigrateStepCmd struct {
	ServerID   string     `json:"server_id"`
	Node       string     `json:"node"`
	Seq        uint64     `json:"seq"`
	Step       string     `json:"step"`
	StreamAddr string     `json:"stream_addr,omitempty"`
	DiskAddr   string     `json:"disk_addr,omitempty"`
	RootBytes  int64      `json:"root_bytes,omitempty"`
	Disks      []LiveDisk `json:"disks,omitempty"`
	Fault      string     `json:"fault,omitempty"`
	Now        time.Time  `json:"now"`
}
