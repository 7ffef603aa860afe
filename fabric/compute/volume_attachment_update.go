package compute

import (
	"net/http"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// Updating a volume attachment: PUT /servers/{id}/os-volume_attachments/
// {volume_id}. Before 2.85 its only use is Nova's swap volume (admin),
// which this cloud does not have (501 once the caller's right to it is
// checked). From 2.85, naming the attached volume itself updates the
// attachment: delete_on_termination may change, and the other
// attributes may be given only as they are (Nova's "not mutable" 400).
//
// The flag lives on the volume's attachment (volstate.Attachment), where
// a server's removal reads it (volstate.ReleaseServer) in the same
// command that removes the server. The update is one command that
// checks the attachment is still the one the API read: answered only
// once committed, so acknowledged means it survives a crash.

const (
	attachSwapRule   = "os_compute_api:os-volumes-attachments:swap"
	attachUpdateRule = "os_compute_api:os-volumes-attachments:update"

	cmdVolumeAttachmentUpdate = "compute.server.volume_attachment.update"
)

func (s *Service) updateVolumeAttachment(w http.ResponseWriter, r *http.Request) error {
	o, _, err := readBody(r, "volumeAttachment")
	if err != nil {
		return err
	}
	only := []string{"volumeId"}
	if atLeast(r, 85) {
		only = append(only, "device", "id", "serverId", "tag", "delete_on_termination")
	}
	if err := allowOnly(o, only...); err != nil {
		return err
	}
	in := newInput(o)
	newID := in.Required("volumeId", 0)
	if in.Err == nil && !api.UUIDLike(newID) {
		in.Fail(badField("volumeId", newID, "'%s' is not a 'uuid'", newID))
	}
	var device *string
	if in.Has("device") && !in.IsNull("device") {
		d := in.Str("device", "", 0)
		device = &d
	}
	var del *bool
	if in.Has("delete_on_termination") {
		b := in.Bool("delete_on_termination", false)
		del = &b
	}
	if in.Err != nil {
		return in.Err
	}
	tx, sv, err := s.readServerTx(r, "")
	if err != nil {
		return err
	}
	volID := pathParam(r, "volume_id")
	p := principal(r)
	if !atLeast(r, 85) || newID != volID {
		if !p.IsAdmin() {
			return policyDenied(attachSwapRule)
		}
		return notImplemented("Swapping a server's volume is not implemented by this cloud.")
	}
	if !p.CanWrite(sv.Project) {
		return policyDenied(attachUpdateRule)
	}
	v, err := attachedVolume(tx, r, sv.ID)
	if err != nil {
		return notFound("Volume %s is not attached to the instance %s", volID, sv.ID)
	}
	var att volstate.Attachment
	for _, a := range v.Attachments {
		if a.ServerID == sv.ID {
			att = a
		}
	}
	switch {
	case in.Has("id") && o["id"] != volID:
		return badRequest("The id property is not mutable")
	case in.Has("serverId") && o["serverId"] != sv.ID:
		return badRequest("The serverId property is not mutable")
	case device != nil && *device != att.Device:
		return badRequest("The device property is not mutable")
	case in.Has("tag") && o["tag"] != nil:
		return badRequest("The tag property is not mutable")
	}
	if del != nil && *del != att.DeleteOnTermination {
		c := volumeAttachmentUpdateCmd{VolumeID: volID, AttachmentID: att.ID, DeleteOnTermination: *del, Now: s.now()}
		if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdVolumeAttachmentUpdate, c, nil); err != nil {
			return err
		}
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

type volumeAttachmentUpdateCmd struct {
	VolumeID            string    `json:"volume_id"`
	AttachmentID        string    `json:"attachment_id"`
	DeleteOnTermination bool      `json:"delete_on_termination"`
	Now                 time.Time `json:"now"`
}

// applyVolumeAttachmentUpdate sets an attachment's delete_on_termination,
// if the volume still has that attachment (a detach or a removal of the
// server in between is the 404 the API would have answered after it).
func applyVolumeAttachmentUpdate(tx *memdb.Txn, c volumeAttachmentUpdateCmd) (any, error) {
	cur := store.Get[volstate.Volume](tx, volstate.VolumeTable, c.VolumeID)
	if cur == nil {
		return nil, notFound("Volume %s could not be found.", c.VolumeID)
	}
	row := cur.Clone()
	for i, a := range row.Attachments {
		if a.ID == c.AttachmentID {
			row.Attachments[i].DeleteOnTermination = c.DeleteOnTermination
			row.UpdatedAt = c.Now
			row.Revision++
			return nil, tx.Insert(volstate.VolumeTable, row)
		}
	}
	return nil, notFound("Volume %s is not attached to the instance.", c.VolumeID)
}
