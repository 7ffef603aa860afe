package volume

import (
	"net/http"
	"sort"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// The attachments API (3.27+) and the legacy attach actions, as Cinder's
// bookkeeping. An attachment Nova made (os-volume_attachments) names the
// server's host: the node agent plugs it, and deleting it is Nova's
// detach. One made here names no host: nothing plugs it (this cloud
// serves volumes only to its own guests, through Nova); it reserves the
// volume for its instance and records the attach a client reports, so a
// volume it holds is not attached elsewhere meanwhile.

// attachStatus is Cinder's attach_status of a volume's attachment.
func attachStatus(v *volstate.Volume) string {
	switch v.Status {
	case volstate.StatusReserved:
		return "reserved"
	case volstate.StatusAttaching:
		return "attaching"
	case volstate.StatusDetaching:
		return "detaching"
	}
	return "attached"
}

func (s *Service) attachmentView(v *volstate.Volume, a volstate.Attachment, detail bool) api.View {
	out := api.View{"id": a.ID, "status": attachStatus(v), "instance": nullable(a.ServerID), "volume_id": v.ID}
	if detail {
		out["attached_at"] = nil
		if attachStatus(v) == "attached" {
			out["attached_at"] = timeText(a.Since)
		}
		out["detached_at"] = nil
		out["attach_mode"] = modeText(a)
		out["connection_info"] = nil
	}
	return out
}

func needAttachments(r *http.Request) error {
	if !atLeast(r, 27) {
		return &api.Error{Status: http.StatusNotFound, Msg: "The resource could not be found: the attachments API needs microversion 3.27 or later."}
	}
	return nil
}

// attachmentsOf lists the attachments the caller may see, by id.
func (s *Service) attachmentsOf(r *http.Request) ([]*volstate.Volume, error) {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return nil, err
	}
	p := principal(r)
	var out []*volstate.Volume
	for _, v := range store.All[volstate.Volume](tx, volstate.VolumeTable, "id") {
		if len(v.Attachments) == 0 || !(v.Project == p.ProjectID && p.CanRead(v.Project) || allTenants(r) && p.IsAdmin()) {
			continue
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Attachments[0].ID < out[j].Attachments[0].ID })
	return out, nil
}

func (s *Service) listAttachments(detail bool) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if _, err := project(r); err != nil {
			return err
		}
		if err := needAttachments(r); err != nil {
			return err
		}
		vols, err := s.attachmentsOf(r)
		if err != nil {
			return err
		}
		q := r.URL.Query()
		out := []api.View{}
		for _, v := range vols {
			a := v.Attachments[0]
			if id := q.Get("volume_id"); id != "" && id != v.ID {
				continue
			}
			if id := q.Get("instance_id"); id != "" && id != a.ServerID {
				continue
			}
			out = append(out, s.attachmentView(v, a, detail))
		}
		api.JSON(w, http.StatusOK, map[string]any{"attachments": out})
		return nil
	}
}

// attachment finds attachment {id} among the caller's volumes.
func (s *Service) attachment(r *http.Request) (*volstate.Volume, error) {
	if err := needAttachments(r); err != nil {
		return nil, err
	}
	vols, err := s.attachmentsOf(r)
	if err != nil {
		return nil, err
	}
	id := chi.URLParam(r, "id")
	for _, v := range vols {
		if v.Attachments[0].ID == id {
			return v, nil
		}
	}
	return nil, notFound("VolumeAttachment", id)
}

func (s *Service) showAttachment(w http.ResponseWriter, r *http.Request) error {
	if _, err := project(r); err != nil {
		return err
	}
	v, err := s.attachment(r)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"attachment": s.attachmentView(v, v.Attachments[0], true)})
	return nil
}

// createAttachment reserves a volume for an instance. A connector would
// ask this service to export the volume to a host outside the cloud,
// which it does not do.
func (s *Service) createAttachment(w http.ResponseWriter, r *http.Request) error {
	if _, err := project(r); err != nil {
		return err
	}
	if err := needAttachments(r); err != nil {
		return err
	}
	o, err := body(r, "attachment")
	if err != nil {
		return err
	}
	in := newInput(o)
	volID := in.Required("volume_uuid", 36)
	instance := in.Str("instance_uuid", "", 36)
	mode := in.Str("mode", "", 10)
	if in.Err != nil {
		return in.Err
	}
	if in.Has("mode") && !atLeast(r, 54) {
		// The attach mode is an argument from 3.54; before, Cinder's
		// schema refuses the key.
		return cinderWording{}.BadField("mode", o["mode"], "Additional properties are not allowed ('mode' was unexpected): the attach mode is taken from microversion 3.54")
	}
	if c, ok := o["connector"]; ok && c != nil && !emptyObject(c) {
		return cinderWording{}.BadField("connector", c, "volumes are attached to this cloud's servers through the compute API (os-volume_attachments), not to outside hosts")
	}
	v, err := s.ownVolume(r, volID)
	if err != nil {
		return err
	}
	a := volstate.Attachment{ID: api.NewUUID(), ServerID: instance, Since: s.now()}
	row, err := s.changeVolume(r.Context(), v.ID, func(v *volstate.Volume) error {
		if v.Status != volstate.StatusAvailable || len(v.Attachments) > 0 {
			return badRequest("Invalid volume: Volume %s status must be available to reserve, but the current status is: %s.", v.ID, v.Status)
		}
		m, err := attachMode(v, mode)
		if err != nil {
			return err
		}
		a.Mode = m
		v.Status, v.Attachments = volstate.StatusReserved, []volstate.Attachment{a}
		return nil
	})
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"attachment": s.attachmentView(row, a, true)})
	return nil
}

func (s *Service) updateAttachment(w http.ResponseWriter, r *http.Request) error {
	if _, err := project(r); err != nil {
		return err
	}
	if _, err := s.attachment(r); err != nil {
		return err
	}
	return cinderWording{}.BadField("connector", nil, "volumes are attached to this cloud's servers through the compute API (os-volume_attachments), not to outside hosts")
}

// deleteAttachment ends an attachment: one this API made is dropped at
// once, one Nova made is detached by the node agent as Nova's detach.
func (s *Service) deleteAttachment(w http.ResponseWriter, r *http.Request) error {
	if _, err := project(r); err != nil {
		return err
	}
	v, err := s.attachment(r)
	if err != nil {
		return err
	}
	if err := s.release(r, v.ID, v.Attachments[0].ID); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"attachments": []any{}})
	return nil
}

// release ends attachment att of volume id (any, when att is "").
func (s *Service) release(r *http.Request, id, att string) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	v, err := volstate.LoadVolume(tx, id)
	if err != nil {
		return err
	}
	if len(v.Attachments) != 1 || (att != "" && v.Attachments[0].ID != att) {
		return badRequest("Invalid volume: volume %s is not attached.", id)
	}
	a := v.Attachments[0]
	if a.Root {
		return badRequest("Invalid volume: volume %s is the root disk of server %s and goes with it.", id, a.ServerID)
	}
	if a.Host != "" {
		_, err := api.Propose(r.Context(), s.cfg.Repl, volstate.CmdDetach, volstate.DetachCmd{VolumeID: id, ServerID: a.ServerID, Now: s.now()}, nil)
		return err
	}
	_, err = s.changeVolume(r.Context(), id, func(v *volstate.Volume) error {
		if len(v.Attachments) != 1 || v.Attachments[0].ID != a.ID {
			return badRequest("Invalid volume: volume %s is not attached.", id)
		}
		v.Status, v.Attachments = volstate.StatusAvailable, nil
		return nil
	})
	return err
}

// legacyAttach is the volume actions that keep Cinder's attach
// bookkeeping without the attachments API.
func (s *Service) legacyAttach(w http.ResponseWriter, r *http.Request, action string, arg any) error {
	v, err := s.ownVolume(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	change := func(check func(v *volstate.Volume) error) error {
		_, err := s.changeVolume(r.Context(), v.ID, check)
		return err
	}
	switch action {
	case "os-reserve":
		// Cinder's legacy reserve: attaching, with no attachment yet
		// (nothing a node agent would plug).
		err = change(func(v *volstate.Volume) error {
			if v.Status != volstate.StatusAvailable {
				return badRequest("Invalid volume: Volume status must be available to reserve, but the status is %s.", v.Status)
			}
			v.Status = volstate.StatusAttaching
			return nil
		})
	case "os-unreserve":
		err = change(func(v *volstate.Volume) error {
			if (v.Status == volstate.StatusReserved || v.Status == volstate.StatusAttaching) && (len(v.Attachments) == 0 || v.Attachments[0].Host == "") {
				v.Status, v.Attachments = volstate.StatusAvailable, nil
			}
			return nil
		})
	case "os-attach":
		in, aerr := actionArg(arg, action)
		if aerr != nil {
			return aerr
		}
		instance := in.Str("instance_uuid", "", 36)
		device := in.Str("mountpoint", "", 255)
		host := in.Str("host_name", "", 255)
		mode := in.Str("mode", "", 10)
		if in.Err != nil {
			return in.Err
		}
		if instance == "" && host == "" {
			return cinderWording{}.Missing("instance_uuid")
		}
		err = change(func(v *volstate.Volume) error {
			reserved := v.Status == volstate.StatusReserved || v.Status == volstate.StatusAttaching && len(v.Attachments) == 0
			if v.Status != volstate.StatusAvailable && !reserved || len(v.Attachments) > 0 && v.Attachments[0].Host != "" {
				return badRequest("Invalid volume: Volume status must be available or reserved to attach, but the status is %s.", v.Status)
			}
			m, err := attachMode(v, mode)
			if err != nil {
				return err
			}
			id := api.NewUUID()
			if len(v.Attachments) == 1 {
				id = v.Attachments[0].ID
			}
			// Recorded, not plugged: Host is this cloud's node, and
			// none is named (host_name is the caller's).
			v.Status, v.Attachments = volstate.StatusInUse, []volstate.Attachment{{ID: id, ServerID: instance, Device: device, Since: s.now(), Mode: m}}
			return nil
		})
	case "os-detach":
		in, aerr := actionArg(arg, action)
		if aerr != nil {
			return aerr
		}
		att := in.Str("attachment_id", "", 36)
		if in.Err != nil {
			return in.Err
		}
		if len(v.Attachments) == 0 {
			// Already detached: Cinder answers a detach of it 202
			// too (its volume manager finds nothing to do).
			break
		}
		err = s.release(r, v.ID, att)
	case "os-begin_detaching":
		err = change(func(v *volstate.Volume) error {
			if v.Status != volstate.StatusInUse || len(v.Attachments) != 1 || v.Attachments[0].Host != "" {
				return badRequest("Invalid volume: Volume status must be in-use (attached through this API) to begin detaching, but the status is %s.", v.Status)
			}
			v.Status = volstate.StatusDetaching
			return nil
		})
	case "os-roll_detaching":
		err = change(func(v *volstate.Volume) error {
			if v.Status == volstate.StatusDetaching && len(v.Attachments) == 1 && v.Attachments[0].Host == "" {
				v.Status = volstate.StatusInUse
			}
			return nil
		})
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// attachmentAction is POST /attachments/{id}/action (3.44): os-complete,
// the client's word that the volume is attached. An attachment made here
// goes from reserved to in-use (recorded, as os-attach records it); one
// Nova made is complete when its node has plugged it, which the node
// agent reports, so completing it earlier is refused.
func (s *Service) attachmentAction(w http.ResponseWriter, r *http.Request) error {
	if _, err := project(r); err != nil {
		return err
	}
	if !atLeast(r, 44) {
		return &api.Error{Status: http.StatusNotFound, Msg: "The resource could not be found: attachment actions need microversion 3.44 or later."}
	}
	top, err := api.ReadObject(r)
	if err != nil {
		return err
	}
	if _, ok := top["os-complete"]; !ok || len(top) != 1 {
		return badRequest("Invalid request body: the only attachment action is os-complete.")
	}
	v, err := s.attachment(r)
	if err != nil {
		return err
	}
	att := v.Attachments[0].ID
	if _, err := s.changeVolume(r.Context(), v.ID, func(v *volstate.Volume) error {
		if len(v.Attachments) != 1 || v.Attachments[0].ID != att {
			return notFound("VolumeAttachment", att)
		}
		switch {
		case v.Status == volstate.StatusInUse:
			return nil
		case v.Attachments[0].Host != "":
			return badRequest("Invalid volume: attachment %s is being plugged by node %s; it completes when the server has the disk (volume status %s).", att, v.Attachments[0].Host, v.Status)
		case v.Status != volstate.StatusReserved:
			return badRequest("Invalid volume: attachment %s cannot complete: volume %s is %s.", att, v.ID, v.Status)
		}
		v.Status = volstate.StatusInUse
		return nil
	}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// emptyObject reports whether v is {}: cinderclient's attachment-create
// sends an empty connector for "no connector" (a reservation).
func emptyObject(v any) bool { m, ok := v.(map[string]any); return ok && len(m) == 0 }
