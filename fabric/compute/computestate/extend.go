package computestate

import (
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// A volume grown while attached is recorded as Nova records Cinder's
// volume-extended external event: an instance action "extend_volume"
// whose one event, compute_extend_volume, starts when the event arrives
// and finishes when the guest has been told the new size (or, for a
// guest that is not running, at once: it sees the size when it starts).
// The volume service proposes CmdVolumeExtended; the node agent that
// serves the volume proposes CmdExtendDone.
const (
	CmdVolumeExtended = "compute.server.volume_extended"
	CmdExtendDone     = "compute.server.volume_extend_done"

	ActionExtendVolume = "extend_volume"
	EventExtendVolume  = "compute_extend_volume"
)

// VolumeExtendedCmd is Cinder's volume-extended event: volume, attached
// to server, grew to Size bytes at the request of UserID.
type VolumeExtendedCmd struct {
	ServerID  string    `json:"server_id"`
	VolumeID  string    `json:"volume_id"`
	Size      int64     `json:"size"`
	RequestID string    `json:"request_id"`
	UserID    string    `json:"user_id"`
	Now       time.Time `json:"now"`
}

// ExtendDoneCmd finishes the open extend_volume actions of server for
// volume: those to at most Size bytes, the size the guest now sees, with
// Result Success; with Result Error (and Details) every open one, as
// the step that failed was theirs.
type ExtendDoneCmd struct {
	ServerID string    `json:"server_id"`
	VolumeID string    `json:"volume_id"`
	Size     int64     `json:"size"`
	Result   string    `json:"result"`
	Details  string    `json:"details,omitempty"`
	Now      time.Time `json:"now"`
}

// OpenExtends are server's extend_volume actions for volume whose event
// has not finished.
func OpenExtends(tx *memdb.Txn, server, volume string) []*Action {
	var out []*Action
	for _, a := range store.All[Action](tx, TableActions, "server", server) {
		if a.Action == ActionExtendVolume && a.Volume == volume && len(a.Events) == 1 && a.Events[0].Finish.IsZero() {
			out = append(out, a)
		}
	}
	return out
}
