package baremetal

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/baremetal/bmstate"
	"github.com/rackstack/rackstack/fabric/store"
)

// Allocations (Ironic 1.52): a request for an available node of a
// resource class (with traits, and optionally among candidates). The API
// records it "allocating"; a conductor proposes its processing, which
// picks the node inside the Raft apply (bmstate.ProcessAllocationCmd) and
// makes it "active" (the node's allocation_uuid and instance_uuid set) or
// "error" with last_error.

var allocationSince = map[string]int{"owner": 60}

var allocationFields = []string{"uuid", "name", "node_uuid", "state", "last_error", "resource_class", "traits",
	"candidate_nodes", "extra", "owner", "created_at", "updated_at", "links"}

func allocationNotFound(id string) error { return notFoundf("Allocation %s could not be found.", id) }

func (s *Service) allocationView(r *http.Request, a *bmstate.Allocation) api.View {
	traits, cands := a.Traits, a.CandidateNodes
	if traits == nil {
		traits = []string{}
	}
	if cands == nil {
		cands = []string{}
	}
	v := api.View{
		"id": a.ID, "uuid": a.ID, "name": nullStr(a.Name), "node_uuid": nullStr(a.NodeID), "state": a.State,
		"last_error": nullStr(a.LastError), "resource_class": nullStr(a.ResourceClass), "traits": traits,
		"candidate_nodes": cands, "extra": jsonMap(a.Extra), "owner": nullStr(a.Owner),
		"created_at": timeText(a.CreatedAt), "updated_at": timeText(a.UpdatedAt),
		"links": links(s.baseURL(r), "allocations", a.ID),
	}
	for f, since := range allocationSince {
		if versionOf(r.Context()) < since {
			delete(v, f)
		}
	}
	return v
}

// lookupAllocation finds an allocation by UUID or name.
func lookupAllocation(tx *memdb.Txn, ident string) (*bmstate.Allocation, error) {
	if a := store.Get[bmstate.Allocation](tx, bmstate.AllocationTable, ident); a != nil {
		return a, nil
	}
	if !uuidRE.MatchString(ident) {
		if raw, _ := tx.First(bmstate.AllocationTable, "name", ident); raw != nil {
			return raw.(*bmstate.Allocation), nil
		}
	}
	return nil, allocationNotFound(ident)
}

func (s *Service) listAllocations(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if q.Has("owner") && versionOf(r.Context()) < 60 {
		return versionError("owner", 60)
	}
	if st := q.Get("state"); st != "" && !slices.Contains([]string{bmstate.AllocAllocating, bmstate.AllocActive, bmstate.AllocError}, st) {
		return badRequestf("Invalid value for state: %q is not one of allocating, active, error.", st)
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	node := ""
	if ident := q.Get("node"); ident != "" {
		n, err := lookupNode(tx, ident)
		if err != nil {
			return badRequestf("%s", err.Error())
		}
		node = n.ID
	}
	var views []api.View
	for _, a := range store.All[bmstate.Allocation](tx, bmstate.AllocationTable, "id") {
		views = append(views, s.allocationView(r, a))
	}
	l := listing{
		key: "allocations", short: allocationFields, known: allocationFields, since: allocationSince,
		unsortable: []string{"extra", "traits", "candidate_nodes", "links"},
		filters: map[string]api.Filter{
			"node": func(v api.View, _ []string) (bool, error) { return v["node_uuid"] == node, nil },
		},
	}
	return l.write(w, r, s.baseURL(r), views, false)
}

func (s *Service) showAllocation(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	a, err := lookupAllocation(tx, chi.URLParam(r, "allocation"))
	if err != nil {
		return err
	}
	return s.writeAllocation(w, r, http.StatusOK, a)
}

func (s *Service) writeAllocation(w http.ResponseWriter, r *http.Request, status int, a *bmstate.Allocation) error {
	v := s.allocationView(r, a)
	delete(v, "id")
	fields := api.Fields(r.URL.Query())
	for _, f := range fields {
		if _, ok := v[f]; !ok {
			return badRequestf("Field(s) \"%s\" are not valid", f)
		}
	}
	api.JSON(w, status, api.Pick(v, fields))
	return nil
}

// nodeAllocation finds the allocation of the node in the path.
func (s *Service) nodeAllocation(r *http.Request) (*bmstate.Allocation, error) {
	tx, n, err := s.readNode(r)
	if err != nil {
		return nil, err
	}
	a := store.Get[bmstate.Allocation](tx, bmstate.AllocationTable, n.AllocationID)
	if n.AllocationID == "" || a == nil {
		return nil, notFoundf("Allocation for node %s could not be found.", n.ID)
	}
	return a, nil
}

func (s *Service) showNodeAllocation(w http.ResponseWriter, r *http.Request) error {
	a, err := s.nodeAllocation(r)
	if err != nil {
		return err
	}
	return s.writeAllocation(w, r, http.StatusOK, a)
}

func (s *Service) deleteNodeAllocation(w http.ResponseWriter, r *http.Request) error {
	a, err := s.nodeAllocation(r)
	if err != nil {
		return err
	}
	return s.dropAllocation(w, r, a.ID)
}

var allocationCreateFields = []string{"uuid", "name", "resource_class", "traits", "candidate_nodes", "extra", "node", "owner"}

func (s *Service) createAllocation(w http.ResponseWriter, r *http.Request) error {
	body, err := api.ReadObject(r)
	if err != nil {
		return err
	}
	if extra := api.Unexpected(body, allocationCreateFields...); len(extra) > 0 {
		return &api.Error{Status: http.StatusBadRequest, Field: extra[0],
			Msg: fmt.Sprintf("Additional properties are not allowed ('%s' was unexpected)", strings.Join(extra, "', '"))}
	}
	minor := versionOf(r.Context())
	for field, since := range map[string]int{"node": 58, "owner": 60} {
		if _, ok := body[field]; ok && minor < since {
			return versionError(field, since)
		}
	}
	in := api.NewInput(body, wording{})
	id, err := newID(in)
	if err != nil {
		return err
	}
	a := bmstate.Allocation{ID: id, CreatedAt: s.now()}
	a.Name = in.Str("name", "", 255)
	if in.Err == nil && a.Name != "" && (!nameRE.MatchString(a.Name) || uuidRE.MatchString(a.Name)) {
		return wording{}.BadField("name", a.Name, "Expected a logical name but received "+a.Name+".")
	}
	a.ResourceClass = in.Str("resource_class", "", 80)
	a.Traits = in.Strs("traits")
	a.Extra = in.Object("extra")
	a.Owner = in.Str("owner", "", 255)
	cands := in.Strs("candidate_nodes")
	nodeRef := in.Str("node", "", 255)
	if in.Err != nil {
		return in.Err
	}
	for _, t := range a.Traits {
		if err := checkTrait(t); err != nil {
			return err
		}
	}
	if len(a.Traits) == 0 {
		a.Traits = nil
	}
	if a.ResourceClass == "" && nodeRef == "" {
		return wording{}.Missing("resource_class")
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	for _, c := range cands {
		n, err := lookupNode(tx, c)
		if err != nil {
			return &api.Error{Status: http.StatusBadRequest, Field: "candidate_nodes",
				Msg: "Invalid input for field/attribute candidate_nodes: " + err.Error()}
		}
		if !slices.Contains(a.CandidateNodes, n.ID) {
			a.CandidateNodes = append(a.CandidateNodes, n.ID)
		}
	}
	if nodeRef == "" && !s.anyConductorAlive(tx) {
		// Nothing would ever process it: say so, as Ironic's API does
		// when no conductor is registered.
		return api.Errorf(http.StatusServiceUnavailable, "No conductor is alive to process the allocation: bare-metal nodes are conducted by a rackd started with --provision-interface.")
	}
	if nodeRef != "" {
		if len(cands) > 0 {
			return badRequestf("Cannot use both candidate_nodes and node: node backfills the allocation of a deployed node.")
		}
		n, err := lookupNode(tx, nodeRef)
		if err != nil {
			return badRequestf("%s", err.Error())
		}
		a.NodeID = n.ID
		if _, given := body["uuid"]; !given && n.InstanceUUID != "" {
			// A node deployed for an instance keeps that identity, as
			// Ironic backfills it.
			a.ID = n.InstanceUUID
		}
	}
	res, err := s.cfg.Repl.Propose(r.Context(), bmstate.CmdCreateAllocation, bmstate.CreateAllocationCmd{Row: a})
	if err != nil {
		return err
	}
	var out bmstate.Allocation
	if err := res.Decode(&out); err != nil {
		return err
	}
	w.Header().Set("Location", s.baseURL(r)+"/v1/allocations/"+out.ID)
	return s.writeAllocation(w, r, http.StatusCreated, &out)
}

func (s *Service) updateAllocation(w http.ResponseWriter, r *http.Request) error {
	ops, err := readPatch(r)
	if err != nil {
		return err
	}
	return retryStale(func() error {
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		cur, err := lookupAllocation(tx, chi.URLParam(r, "allocation"))
		if err != nil {
			return err
		}
		doc := map[string]any{"name": nullStr(cur.Name), "extra": deepCopy(jsonMap(cur.Extra))}
		// Only name and extra change after creation (1.57).
		if err := applyPatch(doc, ops, slices.DeleteFunc(slices.Clone(allocationFields), func(f string) bool { return f == "name" || f == "extra" }), nil); err != nil {
			return err
		}
		in := api.NewInput(doc, wording{})
		a := *cur
		a.Name = in.Str("name", "", 255)
		a.Extra = in.Object("extra")
		if in.Err != nil {
			return in.Err
		}
		if a.Name != "" && (!nameRE.MatchString(a.Name) || uuidRE.MatchString(a.Name)) {
			return wording{}.BadField("name", a.Name, "Expected a logical name but received "+a.Name+".")
		}
		a.UpdatedAt = s.now()
		res, err := s.cfg.Repl.Propose(r.Context(), bmstate.CmdPutAllocation, bmstate.PutAllocationCmd{Row: a, Revision: cur.Revision})
		if err != nil {
			return err
		}
		var out bmstate.Allocation
		if err := res.Decode(&out); err != nil {
			return err
		}
		return s.writeAllocation(w, r, http.StatusOK, &out)
	})
}

func (s *Service) deleteAllocation(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	a, err := lookupAllocation(tx, chi.URLParam(r, "allocation"))
	if err != nil {
		return err
	}
	return s.dropAllocation(w, r, a.ID)
}

func (s *Service) dropAllocation(w http.ResponseWriter, r *http.Request, id string) error {
	if _, err := s.cfg.Repl.Propose(r.Context(), bmstate.CmdDeleteAllocation, bmstate.DeleteAllocationCmd{ID: id, Now: s.now()}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) anyConductorAlive(tx *memdb.Txn) bool {
	for _, c := range store.All[bmstate.Conductor](tx, bmstate.ConductorTable, "id") {
		if s.conductorAlive(c) {
			return true
		}
	}
	return false
}
