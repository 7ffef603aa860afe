package volume

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// Group snapshots (3.14): a snapshot of each volume of a group, made as a
// single snapshot is made (a snapshot row, then the block store's
// copy-on-write snapshot of the volume), with an admin's reset_status
// (3.19).
//
// Consistency: with Config.HoldLease set, the group's volumes are held
// on the nodes that write them and snapshotted in one command
// (groupquiesce.go): the snapshots are of one instant, whether the
// volumes are attached, exported or idle, and a volume that cannot be
// held fails the group snapshot with 409 before anything is made.
// Without it, each volume's snapshot holds every write to it
// acknowledged before it was taken, one after another, as Cinder's
// generic group snapshot takes them; a group type that asks for
// consistent group snapshots ("consistent_group_snapshot_enabled": "<is>
// True") is then refused a group snapshot while any of its volumes is
// attached, rather than given one that is not.

// ConsistentSpec is the group spec that asks for consistent group
// snapshots.
const consistentSpec = "consistent_group_snapshot_enabled"

func (s *Service) groupSnapshots(r *http.Request) api.Collection[volstate.GroupSnapshot] {
	visible := visibleTo(allTenants(r) || byID(r))
	return api.Collection[volstate.GroupSnapshot]{
		Table: volstate.GroupSnapshotTable, One: "group_snapshot",
		Visible: func(p *api.Principal, g *volstate.GroupSnapshot) bool { return visible(p, g.Project) },
		View: func(_ *memdb.Txn, p *api.Principal, g *volstate.GroupSnapshot) api.View {
			return groupSnapshotView(p, g)
		},
		NotFound: func(id string) error { return notFound("GroupSnapshot", id) },
		Listing: api.Listing{Key: "group_snapshots", Word: cinderWording{}, Base: s.baseURL, ZeroLimit: true, Offset: true, MissingMarker: missingMarker,
			SortKeys: []string{"id", "name", "status", "created_at", "group_id"},
			Reserved: []string{"all_tenants", "sort", "offset"},
			Filters: map[string]api.Filter{"project_id": func(v api.View, want []string) (bool, error) {
				return api.MatchValue(v["project_id"], want), nil
			}}},
	}
}

func groupSnapshotView(p *api.Principal, g *volstate.GroupSnapshot) api.View {
	v := api.View{
		"id": g.ID, "group_id": g.GroupID, "group_type_id": g.GroupTypeID, "status": g.Status,
		"created_at": timeText(g.CreatedAt), "name": nullable(g.Name), "description": nullable(g.Description),
		"project_id": g.Project,
	}
	if g.Reason != "" && p.IsAdmin() {
		v["rackstack:error_reason"] = g.Reason
	}
	return v
}

func (s *Service) listGroupSnapshots(detail bool) api.HandlerFunc {
	return listGrouping(s, 14, "group snapshots", s.groupSnapshots, detail)
}

func (s *Service) showGroupSnapshot(w http.ResponseWriter, r *http.Request) error {
	if err := needVersion(r, 14, "group snapshots"); err != nil {
		return err
	}
	if _, err := project(r); err != nil {
		return err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	g, err := s.groupSnapshots(r).Get(tx, principal(r), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"group_snapshot": groupProject(r)(groupSnapshotView(principal(r), g))})
	return nil
}

// ownGroupSnapshot is the group snapshot the URL names if the caller may
// change it.
func (s *Service) ownGroupSnapshot(r *http.Request) (*volstate.GroupSnapshot, error) {
	if err := needVersion(r, 14, "group snapshots"); err != nil {
		return nil, err
	}
	if _, err := project(r); err != nil {
		return nil, err
	}
	return own(s, r, s.groupSnapshots(r), chi.URLParam(r, "id"), volstate.LoadGroupSnapshot,
		func(g *volstate.GroupSnapshot) string { return g.Project }, "group:delete_group_snapshot")
}

// changeGroupSnapshot is changeVolume for group snapshots.
func (s *Service) changeGroupSnapshot(ctx context.Context, id string, change func(g *volstate.GroupSnapshot) error) (*volstate.GroupSnapshot, error) {
	return changeRow(ctx, s.cfg.Repl, func(tx *memdb.Txn) (*volstate.GroupSnapshot, error) { return volstate.LoadGroupSnapshot(tx, id) },
		func(cur *volstate.GroupSnapshot) (string, any, error) {
			next := cur.Clone()
			if err := change(next); err != nil {
				return "", nil, err
			}
			s.groupWork(cur.Status, next.Status, &next.WorkNode, &next.WorkRun)
			next.UpdatedAt = s.now()
			return volstate.CmdPutGroupSnapshot, volstate.PutGroupSnapshotCmd{Row: *next, Revision: cur.Revision}, nil
		})
}

func (s *Service) createGroupSnapshot(w http.ResponseWriter, r *http.Request) error {
	if err := needVersion(r, 14, "group snapshots"); err != nil {
		return err
	}
	proj, err := project(r)
	if err != nil {
		return err
	}
	o, err := body(r, "group_snapshot")
	if err != nil {
		return err
	}
	if err := unexpected(o, "name", "description", "group_id"); err != nil {
		return err
	}
	in := newInput(o)
	now := s.now()
	p := principal(r)
	gs := volstate.GroupSnapshot{ID: api.NewUUID(), Project: proj, User: p.UserID, Status: volstate.GroupCreating, CreatedAt: now, UpdatedAt: now,
		WorkNode: s.cfg.Node, WorkRun: s.run}
	defer s.carry(gs.ID)() // this request makes it (see workAbandoned)
	gs.Name, gs.Description = nameAndDescription(in)
	gs.GroupID = in.Required("group_id", 36)
	if in.Err != nil {
		return in.Err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	g, err := s.groups(r).Get(tx, p, gs.GroupID)
	if err != nil {
		return err
	}
	if g.Project != proj {
		// An admin snapshots another project's group in that project.
		gs.Project = g.Project
	}
	if g.Status != volstate.GroupAvailable {
		return badRequest("Invalid group: Group %s status must be available, but current status is: %s.", g.ID, g.Status)
	}
	gs.GroupTypeID = g.GroupTypeID
	consistent := false
	if gt := store.Get[volstate.GroupType](tx, volstate.GroupTypeTable, g.GroupTypeID); gt != nil {
		consistent = strings.EqualFold(strings.Join(strings.Fields(gt.Specs[consistentSpec]), " "), "<is> True")
	}
	var snaps []volstate.Snapshot
	held, holding := s.holding()
	vols := volstate.GroupVolumes(tx, g.ID)
	for _, v := range vols {
		if v.Status != volstate.StatusAvailable && v.Status != volstate.StatusInUse {
			return badRequest("Invalid volume: Volume %s status must be available or in-use, but current status is: %s.", v.ID, v.Status)
		}
		if consistent && !holding && len(v.Attachments) > 0 {
			return badRequest("Invalid group: group type %s asks for consistent group snapshots, which are only taken of volumes that are not attached; volume %s is attached to server %s.",
				g.GroupTypeID, v.ID, v.Attachments[0].ServerID)
		}
		sn := volstate.Snapshot{ID: api.NewUUID(), Project: gs.Project, User: p.UserID, VolumeID: v.ID, Status: volstate.SnapStatusCreating,
			Name: gs.Name, Description: gs.Description, CreatedAt: now, UpdatedAt: now}
		if v.Key != "" {
			if sn.Key, sn.KeyID, err = s.copyKey(v.Key, v.ID, sn.ID); err != nil {
				return err
			}
		}
		snaps = append(snaps, sn)
	}
	var deadline time.Time
	release := func() {}
	gs.Held = holding && len(snaps) > 0
	if gs.Held {
		// Held before any row is made: a volume that cannot be held
		// leaves nothing behind.
		var end func()
		if deadline, end, err = s.holdGroup(r.Context(), gs.ID, "group", vols); err != nil {
			return err
		}
		release = sync.OnceFunc(end)
		defer release()
	}
	if _, err := api.Propose(r.Context(), s.cfg.Repl, volstate.CmdCreateGroupSnapshot, volstate.CreateGroupSnapshotCmd{Row: gs, Snapshots: snaps}, nil); err != nil {
		return err
	}
	var failed error
	// Held: every volume's snapshot in one command. A failure (or an
	// unknown outcome) marks them all error; none is undone.
	var heldErr error
	if holding && len(snaps) > 0 {
		heldErr = snapshotHeld(r.Context(), held, snaps, deadline)
		failed = heldErr
		release() // the guests write on while the rows are updated
	}
	// Each volume's snapshot as a single snapshot is made.
	for _, sn := range snaps {
		var dataErr error
		if holding {
			dataErr = heldErr
		} else {
			dataErr = s.cfg.Blocks.Snapshot(r.Context(), sn.ID, sn.VolumeID)
		}
		if _, err := s.changeSnapshot(r.Context(), sn.ID, func(row *volstate.Snapshot) error {
			row.Status, row.Reason = volstate.SnapStatusAvailable, ""
			if dataErr != nil {
				row.Status, row.Reason = volstate.SnapStatusError, "snapshot the volume's blocks: "+dataErr.Error()
			}
			return nil
		}); err != nil && failed == nil {
			failed = err
		}
		if dataErr != nil && failed == nil {
			failed = fmt.Errorf("snapshot volume %s: %w", sn.VolumeID, dataErr)
		}
	}
	row, err := s.changeGroupSnapshot(r.Context(), gs.ID, func(g *volstate.GroupSnapshot) error {
		g.Status, g.Reason = volstate.GroupAvailable, ""
		if failed != nil {
			g.Status, g.Reason = volstate.GroupError, failed.Error()
		}
		return nil
	})
	if err != nil {
		return err
	}
	if failed != nil {
		return failed
	}
	api.JSON(w, http.StatusAccepted, map[string]any{"group_snapshot": api.View{"id": row.ID, "name": nullable(row.Name), "group_type_id": row.GroupTypeID}})
	return nil
}

// deleteGroupSnapshot deletes an available (or failed) group snapshot
// and its snapshots.
func (s *Service) deleteGroupSnapshot(w http.ResponseWriter, r *http.Request) error {
	gs, err := s.ownGroupSnapshot(r)
	if err != nil {
		return err
	}
	defer s.carry(gs.ID)()
	row, err := s.changeGroupSnapshot(r.Context(), gs.ID, func(g *volstate.GroupSnapshot) error {
		if g.Status != volstate.GroupAvailable && g.Status != volstate.GroupError {
			return badRequest("Invalid group snapshot: GroupSnapshot status must be available or error, and no Group can be currently using it as source for its creation (it is %s).", g.Status)
		}
		g.Status, g.Reason = volstate.GroupDeleting, ""
		return nil
	})
	if err != nil {
		return err
	}
	if err := s.finishGroupSnapshotDelete(r.Context(), row.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// finishGroupSnapshotDelete deletes a deleting group snapshot's
// snapshots and then its row: the end of a delete, and of one whose
// process died (settleGroups).
func (s *Service) finishGroupSnapshotDelete(ctx context.Context, id string) error {
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return err
	}
	for _, sn := range volstate.GroupSnapshotMembers(tx, id) {
		if err := s.removeSnapshot(ctx, sn.ID, true); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.groupSnapshotFailed(ctx, id, "delete snapshot "+sn.ID+": "+err.Error())
			return err
		}
	}
	row, err := s.changeGroupSnapshot(ctx, id, func(*volstate.GroupSnapshot) error { return nil })
	if err != nil {
		return err
	}
	if _, err := api.Propose(ctx, s.cfg.Repl, volstate.CmdDeleteGroupSnapshot, volstate.DeleteGroupSnapshotCmd{ID: row.ID, Revision: row.Revision}, nil); err != nil {
		s.groupSnapshotFailed(ctx, id, "delete the group snapshot: "+err.Error())
		return err
	}
	return nil
}

func (s *Service) groupSnapshotFailed(ctx context.Context, id, reason string) {
	if _, err := s.changeGroupSnapshot(context.WithoutCancel(ctx), id, func(g *volstate.GroupSnapshot) error {
		g.Status, g.Reason = volstate.GroupErrorDeleting, reason
		return nil
	}); err != nil {
		s.log.Warn("volume: record a group snapshot's failure", "group_snapshot", id, "reason", reason, "err", err)
	}
}

// groupSnapshotAction serves reset_status (3.19, admin).
func (s *Service) groupSnapshotAction(w http.ResponseWriter, r *http.Request) error {
	if err := needVersion(r, 14, "group snapshots"); err != nil {
		return err
	}
	action, arg, err := readAction(r)
	if err != nil {
		return err
	}
	if action != "reset_status" {
		return badRequest("There is no such action: %s", action)
	}
	if err := needVersion(r, 19, "group snapshot reset_status"); err != nil {
		return err
	}
	if !principal(r).IsAdmin() {
		return policyDenied("group:reset_group_snapshot_status")
	}
	return resetGroupStatus(w, r, arg, volstate.GroupSnapshotStatuses(), s.ownGroupSnapshot, s.changeGroupSnapshot,
		func(g *volstate.GroupSnapshot) (string, *string, *string) { return g.ID, &g.Status, &g.Reason })
}
