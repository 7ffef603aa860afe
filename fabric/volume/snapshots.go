package volume

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// snapshots is the snapshots collection, scoped as volumes are.
func (s *Service) snapshots(r *http.Request, detail bool) api.Collection[volstate.Snapshot] {
	visible := visibleTo(allTenants(r) || byID(r))
	return api.Collection[volstate.Snapshot]{
		Table: volstate.SnapshotTable, One: "snapshot",
		Visible: func(p *api.Principal, v *volstate.Snapshot) bool { return visible(p, v.Project) },
		View: func(_ *memdb.Txn, p *api.Principal, sn *volstate.Snapshot) api.View {
			return snapshotView(r, p, sn, detail)
		},
		NotFound: func(id string) error { return notFound("Snapshot", id) },
		Listing:  s.cinderListing("snapshots", []string{"id", "name", "status", "size", "volume_id", "created_at", "updated_at", "description"}, map[string]api.Filter{"metadata": metadataFilter, "consumes_quota": consumesQuotaFilter(r)}),
	}
}

func snapshotView(r *http.Request, p *api.Principal, sn *volstate.Snapshot, detail bool) api.View {
	md := sn.Metadata
	if md == nil {
		md = map[string]string{}
	}
	v := api.View{
		"id": sn.ID, "name": nullable(sn.Name), "description": nullable(sn.Description), "status": sn.Status,
		"size": sn.Size, "volume_id": sn.VolumeID, "created_at": timeText(sn.CreatedAt), "updated_at": timeText(sn.UpdatedAt),
		"metadata": md,
	}
	if atLeast(r, 14) {
		v["group_snapshot_id"] = nullable(sn.GroupSnapshotID)
	}
	if atLeast(r, 65) {
		v["consumes_quota"] = true // as a volume's
	}
	if detail {
		v["os-extended-snapshot-attributes:project_id"] = sn.Project
		v["os-extended-snapshot-attributes:progress"] = "100%"
		switch {
		case sn.Progress != "":
			v["os-extended-snapshot-attributes:progress"] = sn.Progress
		case sn.Status == volstate.SnapStatusCreating:
			v["os-extended-snapshot-attributes:progress"] = "0%"
		}
	}
	if sn.Reason != "" && p.IsAdmin() {
		v["rackstack:error_reason"] = sn.Reason
	}
	return v
}

func (s *Service) listSnapshots(detail bool) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if _, err := project(r); err != nil {
			return err
		}
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		r = sortParams(r)
		c := s.snapshots(r, detail)
		return listCounted(w, r, c.Listing, c.Views(tx, principal(r)), nil)
	}
}

func (s *Service) showSnapshot(w http.ResponseWriter, r *http.Request) error {
	if _, err := project(r); err != nil {
		return err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	return s.snapshots(r, true).Show(w, r, tx, chi.URLParam(r, "id"))
}

func (s *Service) createSnapshot(w http.ResponseWriter, r *http.Request) error {
	proj, err := project(r)
	if err != nil {
		return err
	}
	o, err := body(r, "snapshot")
	if err != nil {
		return err
	}
	if v, ok := o["volume_id"]; ok && v == nil {
		// Cinder looks a null volume_id up, and does not find it.
		return notFound("Volume", "None")
	}
	in := newInput(o)
	now := s.now()
	p := principal(r)
	sn := volstate.Snapshot{ID: api.NewUUID(), Project: proj, User: p.UserID, Status: volstate.SnapStatusCreating, CreatedAt: now, UpdatedAt: now}
	sn.Name = in.Str("name", in.Str("display_name", "", 255), 255)
	sn.Description = in.Str("description", in.Str("display_description", "", 255), 255)
	sn.VolumeID = in.Required("volume_id", 36)
	force := in.Bool("force", false)
	sn.Metadata = metadata(in, "metadata")
	if in.Err != nil {
		return in.Err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	vol, err := s.volumes(r, true).Get(tx, p, sn.VolumeID)
	if err != nil {
		return err
	}
	if atLeast(r, 66) && in.Has("force") && !force {
		// 3.66: an in-use volume is snapshotted without force, and a
		// false force is refused (a true one is ignored), as Cinder.
		return cinderWording{}.BadField("force", o["force"], "Since microversion 3.66 the 'force' flag is invalid for this request. For backward compatibility, however, when the 'force' flag is passed with a value evaluating to True, it is silently ignored.")
	}
	if vol.Status == volstate.StatusInUse && !force && !atLeast(r, 66) {
		return badRequest("Invalid volume: Volume %s status must be available, but current status is: in-use. Use force to snapshot an attached volume.", vol.ID)
	}
	if vol.Status != volstate.StatusAvailable && vol.Status != volstate.StatusInUse {
		return badRequest("Invalid volume: Volume %s status must be available or in-use, but current status is: %s.", vol.ID, vol.Status)
	}
	if vol.Key != "" {
		// The snapshot's blocks are the volume's ciphertext: volumes made
		// from it open with the same key, which it keeps.
		if sn.Key, sn.KeyID, err = s.copyKey(vol.Key, vol.ID, sn.ID); err != nil {
			return err
		}
	}
	// Written on another node, the volume is held there (its writes in
	// flight end, it is flushed, new ones wait) while one command makes
	// the snapshot, as a group's volumes are: so the snapshot holds
	// every write acknowledged before it, wherever its writer is. A
	// volume open here is flushed by the block store itself.
	held, elsewhere, err := s.writtenElsewhere(r.Context(), vol)
	if err != nil {
		return err
	}
	var deadline time.Time
	release := func() {}
	if elsewhere {
		var end func()
		if deadline, end, err = s.holdGroup(r.Context(), sn.ID, "volume", []*volstate.Volume{vol}); err != nil {
			return err
		}
		release = sync.OnceFunc(end)
		defer release()
	}
	var row volstate.Snapshot
	sn.WorkNode, sn.WorkRun = s.cfg.Node, s.run
	defer s.carry(sn.ID)()
	if _, err := api.Propose(r.Context(), s.cfg.Repl, volstate.CmdCreateSnapshot, volstate.CreateSnapshotCmd{Row: sn}, &row); err != nil {
		return err
	}
	var dataErr error
	if elsewhere {
		// A failure or an unknown outcome leaves the snapshot in error,
		// never undone.
		dataErr = snapshotHeld(r.Context(), held, []volstate.Snapshot{sn}, deadline)
		release() // the guest writes on while the row is updated
	} else {
		dataErr = s.cfg.Blocks.Snapshot(r.Context(), sn.ID, sn.VolumeID)
	}
	done, err := s.changeSnapshot(r.Context(), sn.ID, func(sn *volstate.Snapshot) error {
		sn.Status, sn.Reason, sn.WorkNode, sn.WorkRun = volstate.SnapStatusAvailable, "", "", ""
		if dataErr != nil {
			sn.Status, sn.Reason = volstate.SnapStatusError, "snapshot the volume's blocks: "+dataErr.Error()
		}
		return nil
	})
	if err != nil {
		return err
	}
	if dataErr != nil {
		return fmt.Errorf("snapshot volume %s: %w", sn.VolumeID, dataErr)
	}
	// The os-extended-snapshot-attributes are show's and list's only.
	api.JSON(w, http.StatusAccepted, map[string]any{"snapshot": snapshotView(r, p, done, false)})
	return nil
}

// writtenElsewhere says whether vol's snapshot is made held: snapshots
// are held here, and vol may be written on another node that is up.
// Attached, it is written only on its attachments' hosts. Attached
// nowhere, it may be exported over NBD by an operator (`rackctl volume
// export`) on any node, and only that node knows of its export: so it
// is held whenever another node is up (the nodes that do not export it
// answer at once). A volume attached on a node that is not up has no
// writer that can still commit a flush: its snapshot is made as it
// stands, as is one with no other node up (the block store flushes a
// volume open here itself).
func (s *Service) writtenElsewhere(ctx context.Context, vol *volstate.Volume) (groupSnapshotter, bool, error) {
	held, ok := s.holding()
	if !ok || s.cfg.HoldNodes == nil {
		return nil, false, nil
	}
	up, err := s.cfg.HoldNodes(ctx)
	if err != nil {
		return nil, false, err
	}
	for _, n := range up {
		if n == s.cfg.Node {
			continue
		}
		if len(vol.Attachments) == 0 || slices.ContainsFunc(vol.Attachments, func(a volstate.Attachment) bool { return a.Host == n }) {
			return held, true, nil
		}
	}
	return nil, false, nil
}

// changeSnapshot is changeVolume for snapshots.
func (s *Service) changeSnapshot(ctx context.Context, id string, change func(sn *volstate.Snapshot) error) (*volstate.Snapshot, error) {
	return changeRow(ctx, s.cfg.Repl, func(tx *memdb.Txn) (*volstate.Snapshot, error) { return volstate.LoadSnapshot(tx, id) },
		func(cur *volstate.Snapshot) (string, any, error) {
			next := cur.Clone()
			if err := change(next); err != nil {
				return "", nil, err
			}
			next.UpdatedAt = s.now()
			return volstate.CmdPutSnapshot, volstate.PutSnapshotCmd{Row: *next, Revision: cur.Revision}, nil
		})
}

// ownSnapshot is the snapshot id if the caller may change it.
func (s *Service) ownSnapshot(r *http.Request) (*volstate.Snapshot, error) {
	if _, err := project(r); err != nil {
		return nil, err
	}
	return own(s, r, s.snapshots(r, true), chi.URLParam(r, "id"), volstate.LoadSnapshot, func(sn *volstate.Snapshot) string { return sn.Project }, "volume:update_snapshot")
}

func (s *Service) updateSnapshot(w http.ResponseWriter, r *http.Request) error {
	o, err := body(r, "snapshot")
	if err != nil {
		return err
	}
	if extra := api.Unexpected(o, "name", "description", "display_name", "display_description"); len(extra) > 0 {
		return cinderWording{}.BadField(extra[0], o[extra[0]], "Additional properties are not allowed ('"+extra[0]+"' was unexpected)")
	}
	in := newInput(o)
	name, hasName := in.Str("name", in.Str("display_name", "", 255), 255), in.Has("name") || in.Has("display_name")
	desc, hasDesc := in.Str("description", in.Str("display_description", "", 255), 255), in.Has("description") || in.Has("display_description")
	if in.Err != nil {
		return in.Err
	}
	sn, err := s.ownSnapshot(r)
	if err != nil {
		return err
	}
	row, err := s.changeSnapshot(r.Context(), sn.ID, func(sn *volstate.Snapshot) error {
		if hasName {
			sn.Name = name
		}
		if hasDesc {
			sn.Description = desc
		}
		return nil
	})
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"snapshot": snapshotView(r, principal(r), row, false)})
	return nil
}

func (s *Service) deleteSnapshot(w http.ResponseWriter, r *http.Request) error {
	sn, err := s.ownSnapshot(r)
	if err != nil {
		return err
	}
	if sn.GroupSnapshotID != "" {
		return badRequest("Invalid snapshot: Snapshot %s is part of group snapshot %s: delete the group snapshot.", sn.ID, sn.GroupSnapshotID)
	}
	if err := s.removeSnapshot(r.Context(), sn.ID, false); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// removeSnapshot deletes snapshot id's blocks and row. Unless force, the
// snapshot must be available or in error.
func (s *Service) removeSnapshot(ctx context.Context, id string, force bool) error {
	defer s.carry(id)()
	row, err := s.changeSnapshot(ctx, id, func(sn *volstate.Snapshot) error {
		if err := snapshotDeletable(sn, force); err != nil {
			return err
		}
		sn.Status, sn.Reason = volstate.SnapStatusDeleting, ""
		sn.WorkNode, sn.WorkRun = s.cfg.Node, s.run
		return nil
	})
	if err != nil {
		return err
	}
	if dataErr := s.cfg.Blocks.Delete(ctx, id); dataErr != nil {
		if _, err := s.changeSnapshot(ctx, id, func(sn *volstate.Snapshot) error {
			sn.Status, sn.Reason = volstate.SnapStatusErrorDeleting, "delete the snapshot's blocks: "+dataErr.Error()
			sn.WorkNode, sn.WorkRun = "", ""
			return nil
		}); err != nil {
			return err
		}
		return fmt.Errorf("delete snapshot %s: %w", id, dataErr)
	}
	_, err = api.Propose(ctx, s.cfg.Repl, volstate.CmdDeleteSnapshot, volstate.DeleteSnapshotCmd{ID: row.ID, Revision: row.Revision}, nil)
	return err
}

// snapshotDeletable refuses a snapshot an ordinary delete may not
// delete; a forced one deletes it whatever its status.
func snapshotDeletable(sn *volstate.Snapshot, force bool) error {
	switch {
	case force:
		return nil
	case sn.Status == volstate.SnapStatusAvailable, sn.Status == volstate.SnapStatusError, sn.Status == volstate.SnapStatusErrorDeleting:
		return nil
	}
	return badRequest("Invalid snapshot: Snapshot status must be available or error and must not be part of a group (it is %s).", sn.Status)
}

// snapshotAction serves the snapshot actions: os-reset_status and
// os-force_delete (admin), os-update_snapshot_status (the owner, as
// Cinder's volume drivers report a snapshot's progress).
func (s *Service) snapshotAction(w http.ResponseWriter, r *http.Request) error {
	action, arg, err := readAction(r)
	if err != nil {
		return err
	}
	switch action {
	case "os-reset_status":
		return s.resetSnapshotStatus(w, r, arg)
	case "os-force_delete":
		if !principal(r).IsAdmin() {
			return policyDenied("volume_extension:snapshot_admin_actions:force_delete")
		}
		sn, err := s.ownSnapshot(r)
		if err != nil {
			return err
		}
		if err := s.removeSnapshot(r.Context(), sn.ID, true); err != nil {
			return err
		}
		w.WriteHeader(http.StatusAccepted)
		return nil
	case "os-update_snapshot_status":
		return s.updateSnapshotStatus(w, r, arg)
	case "os-unmanage":
		return &api.Error{Status: http.StatusNotImplemented, Msg: "the os-unmanage action is not supported by this cloud: it manages no storage but its own"}
	}
	return badRequest("There is no such action: %s", action)
}

func (s *Service) resetSnapshotStatus(w http.ResponseWriter, r *http.Request, arg any) error {
	if !principal(r).IsAdmin() {
		return policyDenied("volume_extension:snapshot_admin_actions:reset_status")
	}
	in, err := actionArg(arg, "os-reset_status")
	if err != nil {
		return err
	}
	status := in.Required("status", 255)
	if in.Err != nil {
		return in.Err
	}
	if !contains(volstate.SnapshotStatuses(), status) {
		return cinderWording{}.BadField("status", status, "must be one of "+strings.Join(volstate.SnapshotStatuses(), ", "))
	}
	sn, err := s.ownSnapshot(r)
	if err != nil {
		return err
	}
	if _, err := s.changeSnapshot(r.Context(), sn.ID, func(sn *volstate.Snapshot) error {
		sn.Status = status
		if !strings.HasPrefix(status, "error") {
			sn.Reason = ""
		}
		return nil
	}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// snapshotProgress are the moves os-update_snapshot_status may make
// (Cinder's): a snapshot being made ends available or in error, one
// being deleted in error_deleting.
var snapshotProgress = map[string][]string{
	volstate.SnapStatusCreating: {volstate.SnapStatusCreating, volstate.SnapStatusAvailable, volstate.SnapStatusError},
	volstate.SnapStatusDeleting: {volstate.SnapStatusDeleting, volstate.SnapStatusErrorDeleting},
}

func (s *Service) updateSnapshotStatus(w http.ResponseWriter, r *http.Request, arg any) error {
	in, err := actionArg(arg, "os-update_snapshot_status")
	if err != nil {
		return err
	}
	status := in.Required("status", 255)
	progress := in.Str("progress", "", 255)
	if in.Err != nil {
		return in.Err
	}
	sn, err := s.ownSnapshot(r)
	if err != nil {
		return err
	}
	if _, err := s.changeSnapshot(r.Context(), sn.ID, func(sn *volstate.Snapshot) error {
		if !contains(snapshotProgress[sn.Status], status) {
			return badRequest("Invalid snapshot: Snapshot status %s not allowed for update_snapshot_status (it is %s).", status, sn.Status)
		}
		sn.Status = status
		if progress != "" {
			sn.Progress = progress
		}
		return nil
	}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}
