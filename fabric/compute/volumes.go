package compute

import (
	"net/http"
	"slices"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// Volume attachments (os-volume_attachments). The API records the
// attachment on the volume (volstate.Attach: available → attaching); the
// node agent of the server's host plugs it into the VM and reports it
// in-use, as Nova's compute manager does after the API's reservation.
// Detaching is the reverse. A server's removal releases its volumes.

const attachRule = "os_compute_api:os-volumes-attachments:create"

// attachableStates are the vm_states a volume may be attached in or
// detached from (Nova's: not while building, resizing or in error).
var attachableStates = []string{vmActive, vmStopped, vmPaused}

// attachmentView is a volume attachment as Nova shows it; read is a GET
// (list or show), which from 2.89 shows the attachment's ids
// (attachment_id, bdm_uuid) instead of id.
func (s *Service) attachmentView(r *http.Request, serverID string, v *volstate.Volume, read bool) map[string]any {
	var att volstate.Attachment
	for _, a := range v.Attachments {
		if a.ServerID == serverID {
			att = a
		}
	}
	device, deleteOnTermination := att.Device, att.DeleteOnTermination
	// A volume attached to a shelved-offloaded server has no device
	// until the server is unshelved: null, as in Nova.
	out := map[string]any{"id": v.ID, "serverId": serverID, "volumeId": v.ID, "device": orNil(device)}
	if read && atLeast(r, 89) {
		delete(out, "id")
		out["attachment_id"], out["bdm_uuid"] = att.ID, bdmUUID(att.ID)
	}
	if atLeast(r, 70) {
		out["tag"] = orNil(att.Tag)
	}
	if atLeast(r, 79) {
		out["delete_on_termination"] = deleteOnTermination
	}
	return out
}

func (s *Service) listVolumeAttachments(w http.ResponseWriter, r *http.Request) error {
	tx, sv, err := s.readServerTx(r, "")
	if err != nil {
		return err
	}
	out := []any{}
	for _, v := range volstate.VolumesOfServer(tx, sv.ID) {
		out = append(out, s.attachmentView(r, sv.ID, v, true))
	}
	page, _, err := api.Page(r, out, func(v any) string { return v.(map[string]any)["volumeId"].(string) })
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"volumeAttachments": page})
	return nil
}

// attachedVolume is volume {volume_id} if it is attached to server.
func attachedVolume(tx *memdb.Txn, r *http.Request, server string) (*volstate.Volume, error) {
	id := chi.URLParam(r, "volume_id")
	for _, v := range volstate.VolumesOfServer(tx, server) {
		if v.ID == id {
			return v, nil
		}
	}
	return nil, notFound("Volume %s is not attached to instance %s.", id, server)
}

func (s *Service) showVolumeAttachment(w http.ResponseWriter, r *http.Request) error {
	tx, sv, err := s.readServerTx(r, "")
	if err != nil {
		return err
	}
	v, err := attachedVolume(tx, r, sv.ID)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"volumeAttachment": s.attachmentView(r, sv.ID, v, true)})
	return nil
}

// nextDevice is the first /dev/vdX a new attachment of server s gets:
// vda is the root disk, its local disks (ephemeral, swap) follow and the
// config drive is the next. The guest names its disks itself, so this is
// a hint, as in Nova.
func nextDevice(tx *memdb.Txn, s *Server) string {
	used := map[string]bool{"/dev/vda": true}
	for i := range len(s.LocalDisks) + 1 {
		used[computestate.LocalDevice(i)] = true
	}
	for _, v := range volstate.VolumesOfServer(tx, s.ID) {
		for _, a := range v.Attachments {
			used[a.Device] = true
		}
	}
	for c := 'c'; c <= 'z'; c++ {
		if d := "/dev/vd" + string(c); !used[d] {
			return d
		}
	}
	return ""
}

func (s *Service) attachVolume(w http.ResponseWriter, r *http.Request) error {
	o, _, err := readBody(r, "volumeAttachment")
	if err != nil {
		return err
	}
	known := []string{"volumeId", "device"}
	if atLeast(r, 49) {
		known = append(known, "tag")
	}
	if atLeast(r, 79) {
		known = append(known, "delete_on_termination")
	}
	if err := allowOnly(o, known...); err != nil {
		return err
	}
	in := newInput(o)
	volID := in.Required("volumeId", 36)
	device := in.Str("device", "", 255)
	// 2.79: the volume goes with the server (volstate.ReleaseServer).
	del := in.Bool("delete_on_termination", false)
	tag := deviceTag(in, "tag")
	if in.Err != nil {
		return in.Err
	}
	tx, sv, err := s.readServerTx(r, attachRule)
	if err != nil {
		return err
	}
	if err := refuseLocked(r, sv); err != nil {
		return err
	}
	if isBaremetal(sv) {
		return badRequest("Volumes cannot be attached to bare-metal servers.")
	}
	if shelved, err := shelvedOffloaded(r, sv, "attach_volume"); err != nil || shelved {
		if err != nil {
			return err
		}
		return s.attachShelvedVolume(w, r, sv, volID, tag, del)
	}
	if !slices.Contains(attachableStates, sv.VMState) || sv.TaskState != "" || sv.Host == "" {
		state, attr := sv.VMState, "vm_state"
		if sv.TaskState != "" {
			state, attr = sv.TaskState, "task_state"
		}
		return stateConflict("attach_volume", sv.ID, attr, state)
	}
	if device == "" {
		device = nextDevice(tx, sv)
	}
	if device == "" {
		return badRequest("No free disk device names for server %s.", sv.ID)
	}
	a := volstate.Attachment{ID: api.NewUUID(), ServerID: sv.ID, Host: sv.Host, Device: device, Since: s.now(), DeleteOnTermination: del, Tag: tag}
	var row volstate.Volume
	if _, err := api.Propose(r.Context(), s.cfg.Repl, volstate.CmdAttach, volstate.AttachCmd{VolumeID: volID, Project: sv.Project, Attachment: a}, &row); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"volumeAttachment": s.attachmentView(r, sv.ID, &row, false)})
	return nil
}

func (s *Service) detachVolume(w http.ResponseWriter, r *http.Request) error {
	tx, sv, err := s.readServerTx(r, "os_compute_api:os-volumes-attachments:delete")
	if err != nil {
		return err
	}
	if err := refuseLocked(r, sv); err != nil {
		return err
	}
	v, err := attachedVolume(tx, r, sv.ID)
	if err != nil {
		return err
	}
	if v.Attachments[0].Root {
		return badRequest("Cannot detach a root device volume")
	}
	shelved, err := shelvedOffloaded(r, sv, "detach_volume")
	if err != nil {
		return err
	}
	if shelved && (v.Attachments[0].Host != "" || slices.Contains(sv.ShelvedAttachments, v.Attachments[0].ID)) {
		c := shelvedVolumeCmd{ServerID: sv.ID, VolumeID: v.ID, Detach: true, Admin: principal(r).IsAdmin(), Now: s.now()}
		if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdShelvedVolume, c, nil); err != nil {
			return err
		}
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
	if !shelved && (!slices.Contains(attachableStates, sv.VMState) || sv.TaskState != "") {
		// A building server's volumes are reserved for it (bdmbuild.go).
		return stateConflict("detach_volume", sv.ID, "vm_state", sv.VMState)
	}
	if v.Attachments[0].Host == "" {
		// Recorded through the volume API (os-attach), plugged nowhere:
		// it is released there.
		return badRequest("Volume %s was attached through the volume API; detach it there.", v.ID)
	}
	if _, err := api.Propose(r.Context(), s.cfg.Repl, volstate.CmdDetach, volstate.DetachCmd{VolumeID: v.ID, ServerID: sv.ID, Now: s.now()}, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// volumesAttached is a server's os-extended-volumes:volumes_attached.
func volumesAttached(r *http.Request, tx *memdb.Txn, server string) []any {
	out := []any{}
	for _, v := range volstate.VolumesOfServer(tx, server) {
		a := map[string]any{"id": v.ID}
		if atLeast(r, 3) {
			a["delete_on_termination"] = len(v.Attachments) == 1 && v.Attachments[0].DeleteOnTermination
		}
		out = append(out, a)
	}
	return out
}

// releaseVolumes detaches a removed server's volumes in the same command.
func releaseVolumes(tx *memdb.Txn, s *Server) error {
	if err := volstate.ReleaseServer(tx, s.ID, s.Updated); err != nil {
		return store.WrapApplyError(err)
	}
	return nil
}

// bdmUUID is the uuid of Nova's block device mapping of an attachment
// (2.89's bdm_uuid). The attachment is this cloud's mapping of the volume
// to the server: its uuid is derived from the attachment's id, stable and
// distinct for each attachment.
func bdmUUID(attachmentID string) string { return hostUUID("bdm", attachmentID) }
