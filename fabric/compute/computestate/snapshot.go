package computestate

import (
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// Nova's createImage of an image-backed server: the API makes a queued
// image and sets the server's task_state to image_snapshot with
// Server.SnapshotImage naming the image, and records a createImage
// instance action whose one event, compute_snapshot_instance, starts
// then. The node agent that runs the guest copies its disk, flattened,
// and uploads it into the image, proposing CmdImageStep as it goes
// (image_pending_upload, image_uploading) and once with a Result when it
// is done: the task state goes back to none, the event finishes. A
// failed snapshot's image is deleted by the agent before it says so.
const (
	CmdImageStep = "compute.server.image_step"

	ActionCreateImage = "createImage"
	EventSnapshot     = "compute_snapshot_instance"

	// Nova's createBackup is the same snapshot (Server.SnapshotBackup
	// set), in task_state image_backup first; once its image is active
	// the agent rotates the server's backups of its type (Backup).
	ActionCreateBackup = "createBackup"
	EventBackup        = "compute_backup_instance"

	// Nova's shelve of an image-backed server is the same snapshot
	// (Server.SnapshotShelve set) into "<name>-shelved", the guest
	// powered off first; once it is made the server is offloaded at once
	// (Nova's shelved_offload_time 0): vm_state shelved_offloaded, no
	// host, whose agent then removes the guest and its directory.
	ActionShelve              = "shelve"
	ActionUnshelve            = "unshelve"
	EventShelve               = "compute_shelve_instance"
	TaskShelving              = "shelving"
	TaskShelvingPendingUpload = "shelving_image_pending_upload"
	TaskShelvingUploading     = "shelving_image_uploading"
	TaskUnshelving            = "unshelving"
	VMShelvedOffloaded        = "shelved_offloaded"

	TaskImageSnapshot      = "image_snapshot"
	TaskImageBackup        = "image_backup"
	TaskImagePendingUpload = "image_pending_upload"
	TaskImageUploading     = "image_uploading"
)

// ImageStepCmd is the node agent's progress on the snapshot of server
// into image: with Result "" the task state it reached (Task), with
// Result Success or Error (and Details) its end.
type ImageStepCmd struct {
	ServerID string    `json:"server_id"`
	ImageID  string    `json:"image_id"`
	Task     string    `json:"task,omitempty"`
	Result   string    `json:"result,omitempty"`
	Details  string    `json:"details,omitempty"`
	Now      time.Time `json:"now"`
}

// SnapshotTask reports whether task is one of a snapshot's task states.
func SnapshotTask(task string) bool {
	return task == TaskImageSnapshot || task == TaskImageBackup || task == TaskShelving ||
		task == TaskShelvingPendingUpload || task == TaskShelvingUploading || task == TaskImagePendingUpload || task == TaskImageUploading
}

// Backup is what a createBackup keeps: once its image is active, the
// Rotation newest images of the server's project with properties
// image_type=backup, backup_type=Type and instance_uuid=the server stay,
// older ones are deleted (Nova's _rotate_backups; Rotation 0 deletes them
// all, the new one too).
type Backup struct {
	Type     string `json:"type"`
	Rotation int    `json:"rotation"`
}

// OpenSnapshot is server's createImage or createBackup action whose event has not
// finished, nil if there is none.
func OpenSnapshot(tx *memdb.Txn, server string) *Action {
	for _, a := range store.All[Action](tx, TableActions, "server", server) {
		if (a.Action == ActionCreateImage || a.Action == ActionCreateBackup || a.Action == ActionShelve) && len(a.Events) == 1 && a.Events[0].Finish.IsZero() {
			return a
		}
	}
	return nil
}
