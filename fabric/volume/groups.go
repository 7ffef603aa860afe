package volume

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// Generic volume groups (3.13), made from a group snapshot or another
// group (3.14), with an admin's reset_status (3.20). A group holds
// volumes of its volume types; creating one is recording it, as no block
// work is needed; one made from a source makes each of its volumes as a
// volume is made from a snapshot or another volume. Group replication
// (3.38) is not built and answers 501.

// needVersion is Cinder's answer to a resource or action of a later
// microversion than the request's: not found.
func needVersion(r *http.Request, minor int, what string) error {
	if !atLeast(r, minor) {
		return &api.Error{Status: http.StatusNotFound, Msg: fmt.Sprintf("The resource could not be found: %s need microversion %s or later.", what, versionText(minor))}
	}
	return nil
}

func (s *Service) groups(r *http.Request) api.Collection[volstate.Group] {
	visible := visibleTo(allTenants(r) || byID(r))
	return api.Collection[volstate.Group]{
		Table: volstate.GroupTable, One: "group",
		Visible: func(p *api.Principal, g *volstate.Group) bool { return visible(p, g.Project) },
		View: func(tx *memdb.Txn, _ *api.Principal, g *volstate.Group) api.View {
			return groupView(tx, r, g)
		},
		NotFound: func(id string) error { return notFound("Group", id) },
		Listing: api.Listing{Key: "groups", Word: cinderWording{}, Base: s.baseURL, ZeroLimit: true, Offset: true, MissingMarker: missingMarker,
			SortKeys: []string{"id", "name", "status", "created_at", "group_type"},
			Reserved: []string{"all_tenants", "sort", "offset", "list_volume"},
			Filters: map[string]api.Filter{"project_id": func(v api.View, want []string) (bool, error) {
				return api.MatchValue(v["project_id"], want), nil
			}}},
	}
}

// groupView is Cinder's detailed group; project_id is kept for the
// all_tenants filter and dropped before it is shown (Cinder shows it from
// 3.58).
func groupView(tx *memdb.Txn, r *http.Request, g *volstate.Group) api.View {
	types := slices.Clone(g.VolumeTypeIDs)
	if types == nil {
		types = []string{}
	}
	v := api.View{
		"id": g.ID, "status": g.Status, "availability_zone": zone, "created_at": timeText(g.CreatedAt),
		"name": nullable(g.Name), "description": nullable(g.Description), "group_type": g.GroupTypeID,
		"volume_types": types, "project_id": g.Project,
	}
	if atLeast(r, 14) {
		v["group_snapshot_id"], v["source_group_id"] = nullable(g.GroupSnapshotID), nullable(g.SourceGroupID)
	}
	if list, _ := api.ToBool(r.URL.Query().Get("list_volume")); list && atLeast(r, 25) {
		ids := []string{}
		for _, vol := range volstate.GroupVolumes(tx, g.ID) {
			ids = append(ids, vol.ID)
		}
		v["volumes"] = ids
	}
	if atLeast(r, 38) {
		v["replication_status"] = "disabled"
	}
	if g.Reason != "" && principal(r).IsAdmin() {
		v["rackstack:error_reason"] = g.Reason
	}
	return v
}

func groupSummary(v api.View) api.View { return api.View{"id": v["id"], "name": v["name"]} }

func hideProject(v api.View) api.View { delete(v, "project_id"); return v }

// groupProject shows or hides the project_id of a group's or a group
// snapshot's detail: shown to admins from 3.58 (Cinder's
// group:group_project_attribute, admin by default).
func groupProject(r *http.Request) func(api.View) api.View {
	if atLeast(r, 58) && principal(r).IsAdmin() {
		return func(v api.View) api.View { return v }
	}
	return hideProject
}

func (s *Service) listGroups(detail bool) api.HandlerFunc {
	return listGrouping(s, 13, "groups", s.groups, detail)
}

// listGrouping lists groups or group snapshots, which exist from
// microversion 3.minor: the detail list shows project_id to admins from
// 3.58, the summary
// shows id and name.
func listGrouping[T any](s *Service, minor int, what string, coll func(*http.Request) api.Collection[T], detail bool) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := needVersion(r, minor, what); err != nil {
			return err
		}
		if _, err := project(r); err != nil {
			return err
		}
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		r = sortParams(r)
		c := coll(r)
		show := groupProject(r)
		if !detail {
			show = groupSummary
		}
		return listCounted(w, r, c.Listing, c.Views(tx, principal(r)), show)
	}
}

// readGroup is the group the URL names, if the caller may see it.
func (s *Service) readGroup(r *http.Request) (*volstate.Group, error) {
	if err := needVersion(r, 13, "groups"); err != nil {
		return nil, err
	}
	if _, err := project(r); err != nil {
		return nil, err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return nil, err
	}
	return s.groups(r).Get(tx, principal(r), chi.URLParam(r, "id"))
}

// ownGroup is the group the URL names if the caller may change it.
func (s *Service) ownGroup(r *http.Request) (*volstate.Group, error) {
	if err := needVersion(r, 13, "groups"); err != nil {
		return nil, err
	}
	if _, err := project(r); err != nil {
		return nil, err
	}
	return own(s, r, s.groups(r), chi.URLParam(r, "id"), volstate.LoadGroup, func(g *volstate.Group) string { return g.Project }, "group:update")
}

func (s *Service) showGroup(w http.ResponseWriter, r *http.Request) error {
	g, err := s.readGroup(r)
	if err != nil {
		return err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"group": groupProject(r)(groupView(tx, r, g))})
	return nil
}

// unexpected refuses the first attribute of o not in allowed, as Cinder's
// schemas (additionalProperties: false) do.
func unexpected(o api.Object, allowed ...string) error {
	if extra := api.Unexpected(o, allowed...); len(extra) > 0 {
		return cinderWording{}.BadField(extra[0], o[extra[0]], "Additional properties are not allowed ('"+extra[0]+"' was unexpected)")
	}
	return nil
}

// nameAndDescription reads a group's or group snapshot's name and
// description, trimmed as Cinder trims them.
func nameAndDescription(in *api.Input) (string, string) {
	return strings.TrimSpace(in.Str("name", "", 255)), strings.TrimSpace(in.Str("description", "", 255))
}

// newGroup reads a group create's body, {key: {...}} with only the
// allowed keys, at microversion 3.minor and later (what names the
// feature below it), into a creating group of the caller's, named and
// described, worked on by this process; in reads the rest of the body.
func (s *Service) newGroup(r *http.Request, minor int, what, key string, allowed ...string) (g volstate.Group, o api.Object, in *api.Input, err error) {
	if err := needVersion(r, minor, what); err != nil {
		return g, nil, nil, err
	}
	proj, err := project(r)
	if err != nil {
		return g, nil, nil, err
	}
	if o, err = body(r, key); err != nil {
		return g, nil, nil, err
	}
	if err := unexpected(o, allowed...); err != nil {
		return g, nil, nil, err
	}
	in = newInput(o)
	now := s.now()
	g = volstate.Group{ID: api.NewUUID(), Project: proj, User: principal(r).UserID, Status: volstate.GroupCreating, Zone: zone, CreatedAt: now, UpdatedAt: now,
		WorkNode: s.cfg.Node, WorkRun: s.run}
	g.Name, g.Description = nameAndDescription(in)
	return g, o, in, nil
}

func (s *Service) createGroup(w http.ResponseWriter, r *http.Request) error {
	g, o, in, err := s.newGroup(r, 13, "groups", "group", "name", "description", "group_type", "volume_types", "availability_zone")
	if err != nil {
		return err
	}
	defer s.carry(g.ID)() // this request makes it (see workAbandoned)
	p := principal(r)
	typeRef := in.Required("group_type", 255)
	if in.Err == nil && !in.Has("volume_types") {
		in.Fail(cinderWording{}.Missing("volume_types"))
	}
	refs := in.Strs("volume_types")
	az := in.Str("availability_zone", "", 255)
	if in.Err != nil {
		return in.Err
	}
	if len(refs) == 0 {
		return cinderWording{}.BadField("volume_types", o["volume_types"], "[] is too short")
	}
	if az != "" && az != zone {
		return cinderWording{}.BadField("availability_zone", az, "the only availability zone is "+zone)
	}
	gt, err := s.findGroupType(r, typeRef)
	if err != nil {
		return err
	}
	g.GroupTypeID = gt.ID
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	for _, ref := range refs {
		if ref == "" || len(ref) > 255 {
			return cinderWording{}.BadField("volume_types", ref, "volume type names are 1 to 255 characters")
		}
		t, err := resolveType(tx, ref)
		if err != nil {
			return err
		}
		if !t.Usable(g.Project) && !p.IsAdmin() {
			return notFound("Volume type", ref)
		}
		if slices.Contains(g.VolumeTypeIDs, t.ID) {
			return cinderWording{}.BadField("volume_types", refs, "has non-unique elements")
		}
		g.VolumeTypeIDs = append(g.VolumeTypeIDs, t.ID)
	}
	if _, err := api.Propose(r.Context(), s.cfg.Repl, volstate.CmdCreateGroup, volstate.CreateGroupCmd{Row: g}, nil); err != nil {
		return err
	}
	// An empty group needs no block work: it is ready once recorded.
	return s.groupReady(w, r, g.ID)
}

// groupReady marks a new group available and answers its create (202:
// its id and name).
func (s *Service) groupReady(w http.ResponseWriter, r *http.Request, id string) error {
	row, err := s.changeGroup(r.Context(), id, func(g *volstate.Group) error {
		g.Status, g.Reason = volstate.GroupAvailable, ""
		return nil
	})
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusAccepted, map[string]any{"group": api.View{"id": row.ID, "name": nullable(row.Name)}})
	return nil
}

// changeGroup is changeVolume for groups.
func (s *Service) changeGroup(ctx context.Context, id string, change func(g *volstate.Group) error) (*volstate.Group, error) {
	return changeRow(ctx, s.cfg.Repl, func(tx *memdb.Txn) (*volstate.Group, error) { return volstate.LoadGroup(tx, id) },
		func(cur *volstate.Group) (string, any, error) {
			next := cur.Clone()
			if err := change(next); err != nil {
				return "", nil, err
			}
			s.groupWork(cur.Status, next.Status, &next.WorkNode, &next.WorkRun)
			next.UpdatedAt = s.now()
			return volstate.CmdPutGroup, volstate.PutGroupCmd{Row: *next, Revision: cur.Revision}, nil
		})
}

// volumeList reads Cinder's comma-separated list of volume ids.
func volumeList(s string) []string {
	var out []string
	for _, id := range strings.Split(strings.Trim(s, ","), ",") {
		if id = strings.TrimSpace(id); id != "" && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

func (s *Service) updateGroup(w http.ResponseWriter, r *http.Request) error {
	if err := needVersion(r, 13, "groups"); err != nil {
		return err
	}
	o, err := body(r, "group")
	if err != nil {
		return err
	}
	if err := unexpected(o, "name", "description", "add_volumes", "remove_volumes"); err != nil {
		return err
	}
	in := newInput(o)
	name, desc := nameAndDescription(in)
	add, remove := volumeList(in.Str("add_volumes", "", 0)), volumeList(in.Str("remove_volumes", "", 0))
	if in.Err != nil {
		return in.Err
	}
	if !in.Has("name") && !in.Has("description") && !in.Has("add_volumes") && !in.Has("remove_volumes") {
		return badRequest("Invalid input received: the group update needs name, description, add_volumes or remove_volumes.")
	}
	g, err := s.ownGroup(r)
	if err != nil {
		return err
	}
	if g.Status != volstate.GroupAvailable {
		return badRequest("Invalid group: Group status must be available, but current status is: %s.", g.Status)
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	// Volumes already in the group are not added again (Cinder's).
	var toAdd []string
	for _, id := range add {
		if v := store.Get[volstate.Volume](tx, volstate.VolumeTable, id); v == nil || v.GroupID != g.ID {
			toAdd = append(toAdd, id)
		}
	}
	newName := in.Has("name") && name != g.Name
	newDesc := in.Has("description") && desc != g.Description
	if !newName && !newDesc && len(toAdd) == 0 && len(remove) == 0 {
		return badRequest("Invalid group: Cannot update group %s because no valid name, description, add_volumes, or remove_volumes were provided.", g.ID)
	}
	if len(toAdd) > 0 || len(remove) > 0 {
		if _, err := api.Propose(r.Context(), s.cfg.Repl, volstate.CmdSetGroupVolumes,
			volstate.SetGroupVolumesCmd{GroupID: g.ID, Add: toAdd, Remove: remove, Now: s.now()}, nil); err != nil {
			return err
		}
	}
	if newName || newDesc {
		if _, err := s.changeGroup(r.Context(), g.ID, func(g *volstate.Group) error {
			if newName {
				g.Name = name
			}
			if newDesc {
				g.Description = desc
			}
			return nil
		}); err != nil {
			return err
		}
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// groupAction serves POST groups/{id}/action: delete, reset_status, and
// the replication actions, which are not built.
func (s *Service) groupAction(w http.ResponseWriter, r *http.Request) error {
	if err := needVersion(r, 13, "groups"); err != nil {
		return err
	}
	action, arg, err := readAction(r)
	if err != nil {
		return err
	}
	switch action {
	case "delete":
		return s.deleteGroup(w, r, arg)
	case "reset_status":
		if err := needVersion(r, 20, "group reset_status"); err != nil {
			return err
		}
		if !principal(r).IsAdmin() {
			return policyDenied("group:reset_status")
		}
		return resetGroupStatus(w, r, arg, volstate.GroupStatuses(), s.ownGroup, s.changeGroup,
			func(g *volstate.Group) (string, *string, *string) { return g.ID, &g.Status, &g.Reason })
	case "enable_replication", "disable_replication", "failover_replication", "list_replication_targets":
		if err := needVersion(r, 38, "group replication"); err != nil {
			return err
		}
		return &api.Error{Status: http.StatusNotImplemented, Msg: "group replication (" + action + ") is not supported by this cloud yet"}
	}
	return badRequest("There is no such action: %s", action)
}

// resetGroupStatus is reset_status of a group or a group snapshot (T):
// the status must be one of statuses; one that is not an error clears the
// reason of the last failure. own finds the row the caller may change,
// fields names its id, status and reason.
func resetGroupStatus[T any](w http.ResponseWriter, r *http.Request, arg any, statuses []string,
	own func(*http.Request) (*T, error),
	change func(context.Context, string, func(*T) error) (*T, error),
	fields func(*T) (id string, status, reason *string)) error {
	in, err := actionArg(arg, "reset_status")
	if err != nil {
		return err
	}
	if err := unexpected(in.Obj, "status"); err != nil {
		return err
	}
	status := strings.ToLower(in.Required("status", 255))
	if in.Err != nil {
		return in.Err
	}
	if !contains(statuses, status) {
		return cinderWording{}.BadField("status", status, "must be one of "+strings.Join(statuses, ", "))
	}
	row, err := own(r)
	if err != nil {
		return err
	}
	id, _, _ := fields(row)
	if _, err := change(r.Context(), id, func(row *T) error {
		_, st, reason := fields(row)
		*st = status
		if !strings.HasPrefix(status, "error") {
			*reason = ""
		}
		return nil
	}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// deleteGroup deletes a group, and with delete-volumes its volumes (none
// attached or with snapshots); without it the group must be empty and
// available or in error.
func (s *Service) deleteGroup(w http.ResponseWriter, r *http.Request, arg any) error {
	in, err := actionArg(arg, "delete")
	if err != nil {
		return err
	}
	if err := unexpected(in.Obj, "delete-volumes"); err != nil {
		return err
	}
	withVolumes := in.Bool("delete-volumes", false)
	if in.Err != nil {
		return in.Err
	}
	g, err := s.ownGroup(r)
	if err != nil {
		return err
	}
	if !withVolumes && g.Status != volstate.GroupAvailable && g.Status != volstate.GroupError {
		return badRequest("Invalid group: Group status must be available or error, but current status is: %s", g.Status)
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	if len(store.All[volstate.GroupSnapshot](tx, volstate.GroupSnapshotTable, "group", g.ID)) > 0 {
		return badRequest("Invalid group: Group has existing snapshots.")
	}
	vols := volstate.GroupVolumes(tx, g.ID)
	if len(vols) > 0 && !withVolumes {
		return badRequest("Invalid group: Group %s still contains volumes. The delete-volumes flag is required to delete it.", g.ID)
	}
	for _, v := range vols {
		if len(v.Attachments) > 0 {
			return badRequest("Invalid group: Volume %s in group %s is attached. Need to detach first.", v.ID, g.ID)
		}
		if len(store.All[volstate.Snapshot](tx, volstate.SnapshotTable, "volume", v.ID)) > 0 {
			return badRequest("Invalid group: Volume %s in group still has dependent snapshots.", v.ID)
		}
	}
	defer s.carry(g.ID)()
	if _, err := s.changeGroup(r.Context(), g.ID, func(g *volstate.Group) error {
		g.Status, g.Reason = volstate.GroupDeleting, ""
		return nil
	}); err != nil {
		return err
	}
	if err := s.finishGroupDelete(r.Context(), g.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// finishGroupDelete deletes a deleting group's volumes and then its row:
// the end of a delete, and of one whose process died (settleGroups).
func (s *Service) finishGroupDelete(ctx context.Context, id string) error {
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return err
	}
	for _, v := range volstate.GroupVolumes(tx, id) {
		if err := s.removeVolume(ctx, v.ID, false, true); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.groupFailed(ctx, id, volstate.GroupErrorDeleting, "delete volume "+v.ID+": "+err.Error())
			return err
		}
	}
	row, err := s.changeGroup(ctx, id, func(*volstate.Group) error { return nil })
	if err != nil {
		return err
	}
	if _, err := api.Propose(ctx, s.cfg.Repl, volstate.CmdDeleteGroup, volstate.DeleteGroupCmd{ID: row.ID, Revision: row.Revision}, nil); err != nil {
		s.groupFailed(ctx, id, volstate.GroupErrorDeleting, "delete the group: "+err.Error())
		return err
	}
	return nil
}

// groupFailed records why a group's work failed.
func (s *Service) groupFailed(ctx context.Context, id, status, reason string) {
	if _, err := s.changeGroup(context.WithoutCancel(ctx), id, func(g *volstate.Group) error {
		g.Status, g.Reason = status, reason
		return nil
	}); err != nil {
		s.log.Warn("volume: record a group's failure", "group", id, "reason", reason, "err", err)
	}
}

// createGroupFromSource makes a group from a group snapshot (a volume of
// each of its snapshots) or from another group (a copy of each of its
// volumes), in the source's group type and volume types.
func (s *Service) createGroupFromSource(w http.ResponseWriter, r *http.Request) error {
	g, o, in, err := s.newGroup(r, 14, "groups from a source", "create-from-src", "name", "description", "group_snapshot_id", "source_group_id")
	if err != nil {
		return err
	}
	defer s.carry(g.ID)()
	p := principal(r)
	g.GroupSnapshotID = in.Str("group_snapshot_id", "", 36)
	g.SourceGroupID = in.Str("source_group_id", "", 36)
	if in.Err != nil {
		return in.Err
	}
	if (g.GroupSnapshotID == "") == (g.SourceGroupID == "") {
		return cinderWording{}.BadField("create-from-src", o, "exactly one of group_snapshot_id and source_group_id is required")
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	// Each new volume: its source (a snapshot or a volume), size and type.
	type member struct {
		from, key string
		size      int
		typeID    string
		src       *volstate.Volume
		snapshot  bool
	}
	var members []member
	var srcGroup *volstate.Group
	if g.GroupSnapshotID != "" {
		gs, err := s.groupSnapshots(r).Get(tx, p, g.GroupSnapshotID)
		if err != nil {
			return err
		}
		if gs.Status != volstate.GroupAvailable {
			return badRequest("Invalid group snapshot: GroupSnapshot %s status must be available, but current status is: %s.", gs.ID, gs.Status)
		}
		if srcGroup, err = volstate.LoadGroup(tx, gs.GroupID); err != nil {
			return err
		}
		for _, sn := range volstate.GroupSnapshotMembers(tx, gs.ID) {
			src := store.Get[volstate.Volume](tx, volstate.VolumeTable, sn.VolumeID)
			if src == nil {
				return badRequest("Invalid group snapshot: the volume of snapshot %s is gone.", sn.ID)
			}
			members = append(members, member{from: sn.ID, key: sn.Key, size: sn.Size, typeID: src.TypeID, src: src, snapshot: true})
		}
		if len(members) == 0 {
			return badRequest("Invalid group: Group snapshot is empty. No group will be created.")
		}
	} else {
		if srcGroup, err = s.groups(r).Get(tx, p, g.SourceGroupID); err != nil {
			return err
		}
		if srcGroup.Status != volstate.GroupAvailable {
			return badRequest("Invalid group: Source group %s status must be available, but current status is: %s.", srcGroup.ID, srcGroup.Status)
		}
		for _, v := range volstate.GroupVolumes(tx, srcGroup.ID) {
			if v.Status != volstate.StatusAvailable && v.Status != volstate.StatusInUse {
				return badRequest("Invalid volume: Source volume %s status must be available or in-use, not %s.", v.ID, v.Status)
			}
			members = append(members, member{from: v.ID, key: v.Key, size: v.Size, typeID: v.TypeID, src: v})
		}
		if len(members) == 0 {
			return badRequest("Invalid group: Source Group is empty. No group will be created.")
		}
	}
	g.GroupTypeID, g.VolumeTypeIDs = srcGroup.GroupTypeID, slices.Clone(srcGroup.VolumeTypeIDs)
	if _, err := api.Propose(r.Context(), s.cfg.Repl, volstate.CmdCreateGroup, volstate.CreateGroupCmd{Row: g}, nil); err != nil {
		return err
	}
	// The volumes' rows first, all or none of the quota taken; then
	// their blocks.
	var made []string
	for _, m := range members {
		v := volstate.Volume{ID: api.NewUUID(), Project: g.Project, User: p.UserID, Status: volstate.StatusCreating, Size: m.size,
			TypeID: m.typeID, GroupID: g.ID, CreatedAt: g.CreatedAt, UpdatedAt: g.CreatedAt}
		if m.snapshot {
			v.SnapshotID = m.from
		} else {
			v.SourceVolID = m.from
		}
		inheritBoot(&v, m.src)
		if m.key != "" {
			if v.Key, v.KeyID, err = s.copyKey(m.key, m.from, v.ID); err != nil {
				s.groupFailed(r.Context(), g.ID, volstate.GroupError, "copy the encryption key of "+m.from+": "+err.Error())
				return err
			}
		}
		s.worked(&v)
		defer s.carry(v.ID)()
		if _, err := api.Propose(r.Context(), s.cfg.Repl, volstate.CmdCreateVolume, volstate.CreateVolumeCmd{Row: v}, nil); err != nil {
			s.groupFailed(r.Context(), g.ID, volstate.GroupError, "create the volume copying "+m.from+": "+err.Error())
			return err
		}
		made = append(made, v.ID)
	}
	var failed error
	for i, m := range members {
		dataErr := s.cloneBlocks(r.Context(), made[i], m.from)
		if dataErr == nil {
			dataErr = s.cfg.Blocks.Resize(r.Context(), made[i], int64(m.size)*volstate.GiB)
		}
		if _, err := s.finish(r.Context(), made[i], volstate.StatusAvailable, volstate.StatusError, "copy "+m.from+" into the volume", dataErr); err != nil && failed == nil {
			failed = err
		}
	}
	if failed != nil {
		s.groupFailed(r.Context(), g.ID, volstate.GroupError, failed.Error())
		return failed
	}
	return s.groupReady(w, r, g.ID)
}
