package volume

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// Consistency groups and cgsnapshots: Cinder's deprecated API, still
// served in v3 at every microversion. Cinder serves it as generic groups
// of its default_cgsnapshot_type group type (one whose group snapshots
// are consistent), and so does this: each call is the matching group or
// group snapshot call (groups.go, groupsnapshots.go), its body and answer
// renamed, so there is one implementation of what a group does. A group
// of another type is no consistency group (404), as in Cinder.

// cgTypeName is the group type of consistency groups: Cinder's
// migration makes it; here the first consistency group create does.
const cgTypeName = "default_cgsnapshot_type"

// cgTypeID finds or makes the consistency groups' group type. Its name
// is unique in the state machine, so two first creates at once make one:
// the loser of the race reads the winner's.
func (s *Service) cgTypeID(ctx context.Context) (string, error) {
	for range 2 {
		tx, err := s.cfg.Repl.Read(ctx)
		if err != nil {
			return "", err
		}
		if raw, _ := tx.First(volstate.GroupTypeTable, "name", cgTypeName); raw != nil {
			return raw.(*volstate.GroupType).ID, nil
		}
		t := volstate.GroupType{ID: api.NewUUID(), Name: cgTypeName, Public: true,
			Description: "consistency groups (Cinder's deprecated consistencygroups API)",
			Specs:       map[string]string{consistentSpec: "<is> True"}}
		_, err = api.Propose(ctx, s.cfg.Repl, volstate.CmdPutGroupType, volstate.PutGroupTypeCmd{Row: t, Create: true}, nil)
		if err == nil {
			return t.ID, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return "", err
		}
	}
	return "", errors.New("volume: the consistency group type was made and removed while it was read")
}

// cgTypeOf is the consistency groups' group type's id, or "" while none
// was made (then there is no consistency group).
func cgTypeOf(tx *memdb.Txn) string {
	if raw, _ := tx.First(volstate.GroupTypeTable, "name", cgTypeName); raw != nil {
		return raw.(*volstate.GroupType).ID
	}
	return ""
}

func (s *Service) consistencyGroups(r *http.Request, tx *memdb.Txn) api.Collection[volstate.Group] {
	c := s.groups(r)
	cg, visible := cgTypeOf(tx), c.Visible
	c.One, c.Listing.Key = "consistencygroup", "consistencygroups"
	c.Visible = func(p *api.Principal, g *volstate.Group) bool {
		return cg != "" && g.GroupTypeID == cg && visible(p, g)
	}
	c.View = func(_ *memdb.Txn, _ *api.Principal, g *volstate.Group) api.View { return cgView(g) }
	c.NotFound = func(id string) error { return notFound("ConsistencyGroup", id) }
	c.Listing.Reserved = append(c.Listing.Reserved, "list_volume")
	return c
}

func (s *Service) cgSnapshots(r *http.Request, tx *memdb.Txn) api.Collection[volstate.GroupSnapshot] {
	c := s.groupSnapshots(r)
	cg, visible := cgTypeOf(tx), c.Visible
	c.One, c.Listing.Key = "cgsnapshot", "cgsnapshots"
	c.Visible = func(p *api.Principal, g *volstate.GroupSnapshot) bool {
		return cg != "" && g.GroupTypeID == cg && visible(p, g)
	}
	c.View = func(_ *memdb.Txn, _ *api.Principal, g *volstate.GroupSnapshot) api.View { return cgSnapshotView(g) }
	c.NotFound = func(id string) error { return notFound("CgSnapshot", id) }
	return c
}

// cgView is Cinder's consistency group detail; project_id is kept for
// the all_tenants filter and dropped before it is shown.
func cgView(g *volstate.Group) api.View {
	types := []string{}
	types = append(types, g.VolumeTypeIDs...)
	return api.View{"id": g.ID, "status": g.Status, "availability_zone": zone, "created_at": timeText(g.CreatedAt),
		"name": nullable(g.Name), "description": nullable(g.Description), "volume_types": types, "project_id": g.Project}
}

func cgSnapshotView(g *volstate.GroupSnapshot) api.View {
	return api.View{"id": g.ID, "consistencygroup_id": g.GroupID, "status": g.Status, "created_at": timeText(g.CreatedAt),
		"name": nullable(g.Name), "description": nullable(g.Description), "project_id": g.Project}
}

func (s *Service) listCGs(detail bool) api.HandlerFunc {
	return listCGRows(s, s.consistencyGroups, detail)
}

func (s *Service) listCGSnapshots(detail bool) api.HandlerFunc {
	return listCGRows(s, s.cgSnapshots, detail)
}

// listCGRows lists consistency groups or cgsnapshots (any microversion,
// unlike the generic groups listGrouping lists).
func listCGRows[T any](s *Service, coll func(*http.Request, *memdb.Txn) api.Collection[T], detail bool) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if _, err := project(r); err != nil {
			return err
		}
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		r = sortParams(r)
		c := coll(r, tx)
		show := hideProject
		if !detail {
			show = groupSummary
		}
		return listCounted(w, r, c.Listing, c.Views(tx, principal(r)), show)
	}
}

// readCG is the consistency group the URL names, if the caller may see it.
func (s *Service) readCG(r *http.Request) (*volstate.Group, error) {
	return readCGRow(s, r, s.consistencyGroups)
}

func (s *Service) readCGSnapshot(r *http.Request) (*volstate.GroupSnapshot, error) {
	return readCGRow(s, r, s.cgSnapshots)
}

func readCGRow[T any](s *Service, r *http.Request, coll func(*http.Request, *memdb.Txn) api.Collection[T]) (*T, error) {
	if _, err := project(r); err != nil {
		return nil, err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return nil, err
	}
	return coll(r, tx).Get(tx, principal(r), chi.URLParam(r, "id"))
}

func (s *Service) showCG(w http.ResponseWriter, r *http.Request) error {
	g, err := s.readCG(r)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"consistencygroup": hideProject(cgView(g))})
	return nil
}

func (s *Service) showCGSnapshot(w http.ResponseWriter, r *http.Request) error {
	g, err := s.readCGSnapshot(r)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"cgsnapshot": hideProject(cgSnapshotView(g))})
	return nil
}

// answer is what a group handler called for a consistency group call
// wrote.
type answer struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (a *answer) Header() http.Header         { return a.header }
func (a *answer) WriteHeader(status int)      { a.status = status }
func (a *answer) Write(b []byte) (int, error) { return a.body.Write(b) }

// asGroupCall runs the group handler h for r with body as its request
// body, at the microversion the group call needs (minor) or r's if later,
// and gives back its status and JSON answer (nil when it has none).
// Errors are h's, as a group call would answer them.
func asGroupCall(r *http.Request, minor int, body any, h api.HandlerFunc) (int, map[string]any, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	ctx := r.Context()
	if !atLeast(r, minor) {
		ctx = context.WithValue(ctx, versionKey{}, minor)
	}
	r2 := r.Clone(ctx)
	r2.Body, r2.ContentLength = io.NopCloser(bytes.NewReader(raw)), int64(len(raw))
	r2.Header.Set("Content-Type", "application/json")
	a := &answer{header: http.Header{}, status: http.StatusOK}
	if err := h(a, r2); err != nil {
		return 0, nil, err
	}
	if a.body.Len() == 0 {
		return a.status, nil, nil
	}
	var out map[string]any
	if err := json.Unmarshal(a.body.Bytes(), &out); err != nil {
		return 0, nil, err
	}
	return a.status, out, nil
}

// cgInput reads {key: {...}} with only the allowed keys.
func cgInput(r *http.Request, key string, allowed ...string) (api.Object, *api.Input, error) {
	o, err := body(r, key)
	if err != nil {
		return nil, nil, err
	}
	if err := unexpected(o, allowed...); err != nil {
		return nil, nil, err
	}
	return o, newInput(o), nil
}

// copyStrings copies the string attributes names of in into out, under
// the names rename gives (the same name where it has none).
func copyStrings(in *api.Input, out map[string]any, rename map[string]string, names ...string) {
	for _, n := range names {
		if in.Has(n) && !in.IsNull(n) {
			to := n
			if rename[n] != "" {
				to = rename[n]
			}
			out[to] = in.Str(n, "", 255)
		}
	}
}

// createCG: POST consistencygroups {"consistencygroup": {volume_types:
// "a,b", name, description, availability_zone}}, a group of the
// consistency group type.
func (s *Service) createCG(w http.ResponseWriter, r *http.Request) error {
	_, in, err := cgInput(r, "consistencygroup", "name", "description", "volume_types", "availability_zone", "user_id", "project_id", "status")
	if err != nil {
		return err
	}
	types := volumeList(in.Str("volume_types", "", 0))
	g := map[string]any{}
	copyStrings(in, g, nil, "name", "description", "availability_zone")
	if in.Err != nil {
		return in.Err
	}
	if len(types) == 0 {
		return cinderWording{}.BadField("volume_types", in.Obj["volume_types"], "volume_types must be provided to create a consistency group")
	}
	typeID, err := s.cgTypeID(r.Context())
	if err != nil {
		return err
	}
	g["group_type"], g["volume_types"] = typeID, types
	return s.cgAnswer(w, r, 13, map[string]any{"group": g}, s.createGroup, "group", "consistencygroup")
}

// cgAnswer runs the group call h and answers its {from: ...} as {to:
// ...} with h's status.
func (s *Service) cgAnswer(w http.ResponseWriter, r *http.Request, minor int, body any, h api.HandlerFunc, from, to string) error {
	status, out, err := asGroupCall(r, minor, body, h)
	if err != nil {
		return err
	}
	if out == nil {
		w.WriteHeader(status)
		return nil
	}
	v, _ := out[from].(map[string]any)
	delete(v, "group_type_id")
	api.JSON(w, status, map[string]any{to: v})
	return nil
}

// createCGFromSource: POST consistencygroups/create_from_src
// {"consistencygroup-from-src": {cgsnapshot_id | source_cgid, name,
// description}}.
func (s *Service) createCGFromSource(w http.ResponseWriter, r *http.Request) error {
	_, in, err := cgInput(r, "consistencygroup-from-src", "name", "description", "cgsnapshot_id", "source_cgid", "user_id", "project_id", "status")
	if err != nil {
		return err
	}
	g := map[string]any{}
	copyStrings(in, g, map[string]string{"cgsnapshot_id": "group_snapshot_id", "source_cgid": "source_group_id"},
		"name", "description", "cgsnapshot_id", "source_cgid")
	if in.Err != nil {
		return in.Err
	}
	// The source must be a consistency group's, not any group's.
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	if id, ok := g["group_snapshot_id"].(string); ok && id != "" {
		if _, err := s.cgSnapshots(r, tx).Get(tx, principal(r), id); err != nil {
			return err
		}
	}
	if id, ok := g["source_group_id"].(string); ok && id != "" {
		if _, err := s.consistencyGroups(r, tx).Get(tx, principal(r), id); err != nil {
			return err
		}
	}
	return s.cgAnswer(w, r, 14, map[string]any{"create-from-src": g}, s.createGroupFromSource, "group", "consistencygroup")
}

// updateCG: PUT consistencygroups/{id}/update {"consistencygroup":
// {name, description, add_volumes, remove_volumes}}.
func (s *Service) updateCG(w http.ResponseWriter, r *http.Request) error {
	_, in, err := cgInput(r, "consistencygroup", "name", "description", "add_volumes", "remove_volumes")
	if err != nil {
		return err
	}
	g := map[string]any{}
	for _, n := range []string{"name", "description", "add_volumes", "remove_volumes"} {
		if in.Has(n) {
			g[n] = in.Str(n, "", 0)
		}
	}
	if in.Err != nil {
		return in.Err
	}
	if _, err := s.readCG(r); err != nil {
		return err
	}
	return s.cgAnswer(w, r, 13, map[string]any{"group": g}, s.updateGroup, "group", "consistencygroup")
}

// deleteCG: POST consistencygroups/{id}/delete {"consistencygroup":
// {"force": bool}}; force deletes its volumes too.
func (s *Service) deleteCG(w http.ResponseWriter, r *http.Request) error {
	force := false
	if r.ContentLength != 0 {
		_, in, err := cgInput(r, "consistencygroup", "force")
		if err != nil {
			return err
		}
		if force = in.Bool("force", false); in.Err != nil {
			return in.Err
		}
	}
	if _, err := s.readCG(r); err != nil {
		return err
	}
	return s.cgAnswer(w, r, 13, map[string]any{"delete": map[string]any{"delete-volumes": force}}, s.groupAction, "", "")
}

// createCGSnapshot: POST cgsnapshots {"cgsnapshot": {consistencygroup_id,
// name, description}}.
func (s *Service) createCGSnapshot(w http.ResponseWriter, r *http.Request) error {
	_, in, err := cgInput(r, "cgsnapshot", "name", "description", "consistencygroup_id", "user_id", "project_id", "status")
	if err != nil {
		return err
	}
	gs := map[string]any{}
	copyStrings(in, gs, map[string]string{"consistencygroup_id": "group_id"}, "name", "description")
	cg := in.Required("consistencygroup_id", 36)
	if in.Err != nil {
		return in.Err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	if _, err := s.consistencyGroups(r, tx).Get(tx, principal(r), cg); err != nil {
		return err
	}
	gs["group_id"] = cg
	return s.cgAnswer(w, r, 14, map[string]any{"group_snapshot": gs}, s.createGroupSnapshot, "group_snapshot", "cgsnapshot")
}

// deleteCGSnapshot: DELETE cgsnapshots/{id}.
func (s *Service) deleteCGSnapshot(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.readCGSnapshot(r); err != nil {
		return err
	}
	return s.cgAnswer(w, r, 14, nil, s.deleteGroupSnapshot, "", "")
}

// cgOfVolume is the group a volume create's consistencygroup_id names,
// which must be a consistency group the caller sees; "" when none is
// named.
func (s *Service) cgOfVolume(r *http.Request, tx *memdb.Txn, in *api.Input) (string, error) {
	id := strings.TrimSpace(in.Str("consistencygroup_id", "", 36))
	if in.Err != nil || id == "" {
		return "", in.Err
	}
	g, err := s.consistencyGroups(r, tx).Get(tx, principal(r), id)
	if err != nil {
		return "", err
	}
	return g.ID, nil
}

// consistencyGroupOf is what a volume shows as its consistencygroup_id:
// its group when that is a consistency group.
func consistencyGroupOf(tx *memdb.Txn, v *volstate.Volume) any {
	if v.GroupID == "" {
		return nil
	}
	if g := store.Get[volstate.Group](tx, volstate.GroupTable, v.GroupID); g != nil && g.GroupTypeID == cgTypeOf(tx) {
		return g.ID
	}
	return nil
}
