package compute

import (
	"net/http"
	"slices"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// Volumes of a shelved-offloaded server (2.20 on; Nova's 409 before).
// The server runs nowhere, so nothing is plugged: as Nova's compute API
// does in _attach_volume_shelved_offloaded, an attach records the
// attachment on no host and completes it at once (the volume in-use,
// device not chosen yet: null), and a detach of such an attachment
// deletes it at once (the volume available). A volume attached before
// the shelve keeps its attachment on its old host, whose volume agent
// unplugs it on a detach as for any stopped guest. Unshelve moves every
// attachment of the server to its new host (device names given to the
// ones attached while shelved), whose agent plugs them once the guest
// runs (unshelveVolumes).
//
// Each is one command that checks the server is still shelved offloaded
// in the same transaction that changes the volume, so an unshelve
// between the API's read and the change cannot leave a volume recorded
// on no host for a server that runs. Answered once committed.

const cmdShelvedVolume = "compute.server.shelved_volume"

type shelvedVolumeCmd struct {
	ServerID string `json:"server_id"`
	VolumeID string `json:"volume_id"`
	// Detach is a detach; else Attachment is attached.
	Detach     bool                `json:"detach,omitempty"`
	Attachment volstate.Attachment `json:"attachment"`
	Admin      bool                `json:"admin,omitempty"`
	Now        time.Time           `json:"now"`
}

// shelvedOffloaded says whether server sv's volumes are changed the
// shelved way, and refuses it before 2.20.
func shelvedOffloaded(r *http.Request, sv *Server, action string) (bool, error) {
	if sv.VMState != computestate.VMShelvedOffloaded && sv.VMState != vmShelved {
		return false, nil
	}
	if !atLeast(r, 20) || sv.TaskState != "" {
		return false, stateConflict(action, sv.ID, "vm_state", sv.VMState)
	}
	return true, nil
}

// attachShelvedVolume attaches volume volID to shelved-offloaded server
// sv. Nova takes no device name nor tag then (it cannot check either
// against the host the server will run on).
func (s *Service) attachShelvedVolume(w http.ResponseWriter, r *http.Request, sv *Server, volID, tag string, del bool) error {
	if tag != "" {
		return badRequest("Tagged volume attachment is not supported for shelved-offloaded instances.")
	}
	c := shelvedVolumeCmd{ServerID: sv.ID, VolumeID: volID, Admin: principal(r).IsAdmin(), Now: s.now(),
		Attachment: volstate.Attachment{ID: api.NewUUID(), ServerID: sv.ID, Since: s.now(), DeleteOnTermination: del}}
	var row volstate.Volume
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdShelvedVolume, c, &row); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"volumeAttachment": s.attachmentView(r, sv.ID, &row, false)})
	return nil
}

func applyShelvedVolume(tx *memdb.Txn, c shelvedVolumeCmd) (any, error) {
	old := store.Get[Server](tx, tServers, c.ServerID)
	if old == nil || old.Hidden {
		return nil, serverNotFound(c.ServerID)
	}
	if old.Locked && !c.Admin {
		return nil, serverLocked(old.ID)
	}
	action := "attach_volume"
	if c.Detach {
		action = "detach_volume"
	}
	if old.VMState != computestate.VMShelvedOffloaded || old.TaskState != "" {
		return nil, stateConflict(action, old.ID, "vm_state", old.VMState)
	}
	sv := *old
	sv.Updated = c.Now
	if c.Detach {
		return detachShelved(tx, &sv, c)
	}
	row, err := volstate.AttachTx(tx, volstate.AttachCmd{VolumeID: c.VolumeID, Project: sv.Project, Attachment: c.Attachment})
	if err != nil {
		return nil, store.WrapApplyError(err)
	}
	// Nova completes the attachment without a host connector, so the
	// volume is in-use while the server is offloaded.
	row.Status = volstate.StatusInUse
	if err := tx.Insert(volstate.VolumeTable, row); err != nil {
		return nil, err
	}
	sv.ShelvedAttachments = append(slices.Clone(sv.ShelvedAttachments), c.Attachment.ID)
	return *row, tx.Insert(tServers, &sv)
}

// detachShelved deletes an attachment made while sv was shelved
// offloaded: nothing is plugged anywhere, so the volume is available at
// once. One made before the shelve is detached by its host's agent.
func detachShelved(tx *memdb.Txn, sv *Server, c shelvedVolumeCmd) (any, error) {
	cur := store.Get[volstate.Volume](tx, volstate.VolumeTable, c.VolumeID)
	if cur == nil || len(cur.Attachments) != 1 || cur.Attachments[0].ServerID != sv.ID {
		return nil, notFound("Volume %s is not attached to instance %s.", c.VolumeID, sv.ID)
	}
	att := cur.Attachments[0]
	if att.Root {
		return nil, badRequest("Cannot detach a root device volume")
	}
	row := cur.Clone()
	row.UpdatedAt = c.Now
	row.Revision++
	if !slices.Contains(sv.ShelvedAttachments, att.ID) {
		if row.Status != volstate.StatusInUse && row.Status != volstate.StatusAttaching {
			return nil, badRequest("Invalid volume: volume %s status must be in-use to detach, but current status is: %s.", cur.ID, cur.Status)
		}
		row.Status = volstate.StatusDetaching
		return *row, tx.Insert(volstate.VolumeTable, row)
	}
	row.Status, row.Reason, row.Attachments = volstate.StatusAvailable, "", nil
	if err := tx.Insert(volstate.VolumeTable, row); err != nil {
		return nil, err
	}
	sv.ShelvedAttachments = slices.DeleteFunc(slices.Clone(sv.ShelvedAttachments), func(id string) bool { return id == att.ID })
	return *row, tx.Insert(tServers, sv)
}

// unshelveVolumes moves the attachments of unshelved server s to host,
// in the command that places it: those made while it was shelved take
// their device names now, as Nova's compute manager gives them at
// unshelve. A volume recorded through the volume API (os-attach, on no
// host and not the server's own attachment) stays as it is.
func unshelveVolumes(tx *memdb.Txn, s *Server, host string, now time.Time) error {
	for _, v := range volstate.VolumesOfServer(tx, s.ID) {
		if len(v.Attachments) != 1 {
			continue
		}
		att := v.Attachments[0]
		shelved := slices.Contains(s.ShelvedAttachments, att.ID)
		if att.Host == host || att.Host == "" && !shelved {
			continue
		}
		row := v.Clone()
		row.Attachments[0].Host = host
		if shelved && att.Device == "" {
			row.Attachments[0].Device = nextDevice(tx, s)
		}
		row.UpdatedAt = now
		row.Revision++
		if err := tx.Insert(volstate.VolumeTable, row); err != nil {
			return err
		}
	}
	s.ShelvedAttachments = nil
	return nil
}
