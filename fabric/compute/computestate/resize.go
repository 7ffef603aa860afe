package computestate

import "time"

// Migration is one resize of a server (Nova's migration record, of
// migration_type "resize"): this cloud resizes a server on its own host
// (Nova's allow_resize_to_same_host), so SourceCompute and DestCompute
// are that host. Status goes migrating → finished (the guest runs the
// new flavor, VERIFY_RESIZE) → confirmed or reverted, or error.
type Migration struct {
	ID string `json:"id"` // uuid (Nova's 2.59)
	// Seq is Nova's integer id: the log index of the resize.
	Seq           uint64 `json:"seq"`
	ServerID      string `json:"server_id"`
	Project       string `json:"project"`
	UserID        string `json:"user_id"`
	Type          string `json:"type"`
	Status        string `json:"status"`
	SourceCompute string `json:"source_compute"`
	DestCompute   string `json:"dest_compute"`
	OldFlavorID   string `json:"old_flavor_id"`
	NewFlavorID   string `json:"new_flavor_id"`
	// OldFlavorSeq and NewFlavorSeq are the flavors' integer ids
	// (Flavor.Seq), 0 where unknown.
	OldFlavorSeq uint64    `json:"old_flavor_seq,omitempty"`
	NewFlavorSeq uint64    `json:"new_flavor_seq,omitempty"`
	Created      time.Time `json:"created"`
	Updated      time.Time `json:"updated"`
}

// Nova's resize states: a resize runs with vm_state active or stopped
// and task_state resize_finish (status RESIZE) until the node restarted
// the guest with the new flavor, then waits in vm_state resized
// (VERIFY_RESIZE); a revert runs with task_state resize_reverting
// (REVERT_RESIZE).
const (
	VMResized           = "resized"
	TaskResizeFinish    = "resize_finish"
	TaskResizeReverting = "resize_reverting"

	ActionResize        = "resize"
	ActionConfirmResize = "confirmResize"
	ActionRevertResize  = "revertResize"
)
