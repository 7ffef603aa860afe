package volume

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// Group types (3.11) and their group specs, as Cinder serves them: an
// admin manages them; others see the public ones. A group type some
// group is of is not deleted (groups.go).

func needGroupTypes(r *http.Request) error {
	if !atLeast(r, 11) {
		return &api.Error{Status: http.StatusNotFound, Msg: "The resource could not be found: group types need microversion 3.11 or later."}
	}
	return nil
}

func groupTypeView(t *volstate.GroupType) api.View {
	specs := map[string]string{}
	for k, v := range t.Specs {
		specs[k] = v
	}
	return api.View{"id": t.ID, "name": t.Name, "description": nullable(t.Description), "is_public": t.Public, "group_specs": specs}
}

// findGroupType is a group type by id or name, if the caller may see it.
func (s *Service) findGroupType(r *http.Request, ref string) (*volstate.GroupType, error) {
	if err := needGroupTypes(r); err != nil {
		return nil, err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return nil, err
	}
	t := store.Get[volstate.GroupType](tx, volstate.GroupTypeTable, ref)
	if t == nil {
		if raw, _ := tx.First(volstate.GroupTypeTable, "name", ref); raw != nil {
			t = raw.(*volstate.GroupType)
		}
	}
	if t == nil || (!t.Public && !principal(r).IsAdmin()) {
		return nil, notFound("Group type", ref)
	}
	return t, nil
}

func (s *Service) listGroupTypes(w http.ResponseWriter, r *http.Request) error {
	if err := needGroupTypes(r); err != nil {
		return err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	// An admin's is_public: true (the default) the public ones, false
	// the private ones, None all; others see the public ones.
	public := true
	all := false
	if principal(r).IsAdmin() {
		switch q := r.URL.Query().Get("is_public"); {
		case strings.EqualFold(q, "none"):
			all = true
		case q != "":
			b, ok := api.ToBool(q)
			if !ok {
				return cinderWording{}.BadField("is_public", q, "must be true, false or None")
			}
			public = b
		}
	}
	var views []api.View
	for _, t := range store.All[volstate.GroupType](tx, volstate.GroupTypeTable, "id") {
		if all || t.Public == public {
			views = append(views, groupTypeView(t))
		}
	}
	return api.Listing{Key: "group_types", Word: cinderWording{}, Reserved: []string{"is_public", "sort"}}.Write(w, sortParams(r), views)
}

func (s *Service) showGroupType(w http.ResponseWriter, r *http.Request) error {
	t, err := s.findGroupType(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"group_type": groupTypeView(t)})
	return nil
}

// showDefaultGroupType answers as Cinder does with no default_group_type
// configured.
func (s *Service) showDefaultGroupType(w http.ResponseWriter, r *http.Request) error {
	if err := needGroupTypes(r); err != nil {
		return err
	}
	return store.Fault(store.KindNotFound, "itemNotFound", "Default group type can not be found.")
}

func (s *Service) createGroupType(w http.ResponseWriter, r *http.Request) error {
	if err := needGroupTypes(r); err != nil {
		return err
	}
	o, err := body(r, "group_type")
	if err != nil {
		return err
	}
	in := newInput(o)
	t := volstate.GroupType{ID: api.NewUUID()}
	t.Name = in.Required("name", 255)
	t.Description = in.Str("description", "", 255)
	t.Public = in.Bool("is_public", true)
	t.Specs = metadata(in, "group_specs")
	if in.Err != nil {
		return in.Err
	}
	var row volstate.GroupType
	if _, err := api.Propose(r.Context(), s.cfg.Repl, volstate.CmdPutGroupType, volstate.PutGroupTypeCmd{Row: t, Create: true}, &row); err != nil {
		return err
	}
	api.JSON(w, http.StatusAccepted, map[string]any{"group_type": groupTypeView(&row)})
	return nil
}

// changeGroupType applies change to the group type the URL names and
// proposes it.
func (s *Service) changeGroupType(r *http.Request, change func(t *volstate.GroupType) error) (*volstate.GroupType, error) {
	cur, err := s.findGroupType(r, chi.URLParam(r, "id"))
	if err != nil {
		return nil, err
	}
	next := cur.Clone()
	if err := change(next); err != nil {
		return nil, err
	}
	var row volstate.GroupType
	if _, err := api.Propose(r.Context(), s.cfg.Repl, volstate.CmdPutGroupType, volstate.PutGroupTypeCmd{Row: *next}, &row); err != nil {
		return nil, err
	}
	return &row, nil
}

func (s *Service) updateGroupType(w http.ResponseWriter, r *http.Request) error {
	o, err := body(r, "group_type")
	if err != nil {
		return err
	}
	in := newInput(o)
	name, desc, public := in.Str("name", "", 255), in.Str("description", "", 255), in.Bool("is_public", false)
	if in.Err != nil {
		return in.Err
	}
	if !in.Has("name") && !in.Has("description") && !in.Has("is_public") {
		return badRequest("Specify group type name, description or a combination thereof.")
	}
	row, err := s.changeGroupType(r, func(t *volstate.GroupType) error {
		if in.Has("name") {
			if strings.TrimSpace(name) == "" {
				return cinderWording{}.BadField("name", name, "must not be empty")
			}
			t.Name = name
		}
		if in.Has("description") {
			t.Description = desc
		}
		if in.Has("is_public") {
			t.Public = public
		}
		return nil
	})
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"group_type": groupTypeView(row)})
	return nil
}

func (s *Service) deleteGroupType(w http.ResponseWriter, r *http.Request) error {
	t, err := s.findGroupType(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	if _, err := s.cfg.Repl.Propose(r.Context(), volstate.CmdDeleteGroupType, volstate.DeleteGroupTypeCmd{ID: t.ID}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (s *Service) listGroupSpecs(w http.ResponseWriter, r *http.Request) error {
	t, err := s.findGroupType(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"group_specs": groupTypeView(t)["group_specs"]})
	return nil
}

// setGroupSpecs adds or changes the specs given, answering them.
func (s *Service) setGroupSpecs(w http.ResponseWriter, r *http.Request) error {
	o, err := body(r, "group_specs")
	if err != nil {
		return err
	}
	in := newInput(api.Object{"group_specs": map[string]any(o)})
	specs := metadata(in, "group_specs")
	if in.Err != nil {
		return in.Err
	}
	if _, err := s.changeGroupType(r, func(t *volstate.GroupType) error {
		if t.Specs == nil {
			t.Specs = map[string]string{}
		}
		for k, v := range specs {
			t.Specs[k] = v
		}
		return nil
	}); err != nil {
		return err
	}
	api.JSON(w, http.StatusAccepted, map[string]any{"group_specs": specs})
	return nil
}

func (s *Service) showGroupSpec(w http.ResponseWriter, r *http.Request) error {
	t, err := s.findGroupType(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	key := chi.URLParam(r, "key")
	v, ok := t.Specs[key]
	if !ok {
		return store.Fault(store.KindNotFound, "itemNotFound", "Group Type %s has no specs with key %s.", t.ID, key)
	}
	api.JSON(w, http.StatusOK, map[string]any{key: v})
	return nil
}

// putGroupSpec sets one spec; the body names it, and only it. Unlike the
// POST of several, Cinder answers it 200.
func (s *Service) putGroupSpec(w http.ResponseWriter, r *http.Request) error {
	key := chi.URLParam(r, "key")
	o, err := api.ReadObject(r)
	if err != nil {
		return err
	}
	v, ok := o[key].(string)
	if !ok || len(o) != 1 {
		return badRequest("Request body and URI mismatch: the body must hold only the spec %s, a string.", key)
	}
	if _, err := s.changeGroupType(r, func(t *volstate.GroupType) error {
		if t.Specs == nil {
			t.Specs = map[string]string{}
		}
		t.Specs[key] = v
		return nil
	}); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{key: v})
	return nil
}

func (s *Service) deleteGroupSpec(w http.ResponseWriter, r *http.Request) error {
	key := chi.URLParam(r, "key")
	if _, err := s.changeGroupType(r, func(t *volstate.GroupType) error {
		if _, ok := t.Specs[key]; !ok {
			return store.Fault(store.KindNotFound, "itemNotFound", "Group Type %s has no specs with key %s.", t.ID, key)
		}
		delete(t.Specs, key)
		return nil
	}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}
