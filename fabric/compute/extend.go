package compute

import (
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/store"
)

// applyVolumeExtended records Cinder's volume-extended event as Nova's
// API does: an extend_volume action, its compute_extend_volume event
// started on the server's host.
func applyVolumeExtended(tx *memdb.Txn, c computestate.VolumeExtendedCmd) (any, error) {
	s := store.Get[Server](tx, tServers, c.ServerID)
	if s == nil {
		return nil, serverNotFound(c.ServerID)
	}
	if c.RequestID == "" || c.VolumeID == "" || c.Size <= 0 {
		return nil, store.Invalidf("volume-extended event: request id, volume and size are required")
	}
	id := s.ID + "/" + c.RequestID
	if store.Get[Action](tx, tActions, id) != nil {
		// The same event again (a retried proposal): recorded once.
		return nil, nil
	}
	return nil, tx.Insert(tActions, &Action{ID: id, ServerID: s.ID, Project: s.Project, UserID: c.UserID,
		Action: computestate.ActionExtendVolume, RequestID: c.RequestID, Start: c.Now, Volume: c.VolumeID, Size: c.Size,
		Events: []ActionEvent{{Event: computestate.EventExtendVolume, Start: c.Now, Host: s.Host}}})
}

// applyExtendDone finishes the open extend_volume actions the node
// agent's step settled (see computestate.ExtendDoneCmd). It returns how
// many it finished.
func applyExtendDone(tx *memdb.Txn, c computestate.ExtendDoneCmd) (any, error) {
	if c.Result != "Success" && c.Result != "Error" {
		return nil, store.Invalidf("extend done: result %q is not Success or Error", c.Result)
	}
	n := 0
	for _, old := range computestate.OpenExtends(tx, c.ServerID, c.VolumeID) {
		if c.Result == "Success" && old.Size > c.Size {
			// A later extend the guest has not been told yet.
			continue
		}
		a := *old
		ev := a.Events[0]
		ev.Finish, ev.Result = c.Now, c.Result
		if c.Result == "Error" {
			ev.Details, a.Message = c.Details, "Error"
		}
		a.Events = []ActionEvent{ev}
		if err := tx.Insert(tActions, &a); err != nil {
			return nil, err
		}
		n++
	}
	return n, nil
}
