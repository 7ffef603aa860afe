package volume

import (
	"context"
	"maps"
	"net/http"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

func typeView(t *volstate.Type) api.View {
	specs := t.ExtraSpecs
	if specs == nil {
		specs = map[string]string{}
	}
	return api.View{"id": t.ID, "name": t.Name, "description": nullable(t.Description), "is_public": t.Public,
		"os-volume-type-access:is_public": t.Public, "extra_specs": specs}
}

// typeViewFor is a type as show and list answer it: with the QoS spec
// it has for an admin, as Cinder's policy shows it (create and update
// answers never carry it).
func typeViewFor(r *http.Request, t *volstate.Type) api.View {
	v := typeView(t)
	if principal(r).IsAdmin() {
		v["qos_specs_id"] = nullable(t.QoSSpecID)
	}
	return v
}

// changedTypeView is a type as update answers it: without the access
// extension's attribute, which create, show and list carry.
func changedTypeView(t *volstate.Type) api.View {
	v := typeView(t)
	delete(v, "os-volume-type-access:is_public")
	return v
}

// visibleTypes are the public types and the private ones the caller's
// project was given, and every type for an admin.
func visibleTypes(p *api.Principal, all []*volstate.Type) []*volstate.Type {
	var out []*volstate.Type
	for _, t := range all {
		if t.Usable(p.ProjectID) || p.IsAdmin() {
			out = append(out, t)
		}
	}
	return out
}

func (s *Service) listTypes(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	specs, err := typeSpecFilter(r)
	if err != nil {
		return err
	}
	var views []api.View
	for _, t := range visibleTypes(principal(r), volstate.Types(tx)) {
		if hasSpecs(t, specs) {
			views = append(views, typeViewFor(r, t))
		}
	}
	return api.Listing{Key: "volume_types", Word: cinderWording{}, Reserved: []string{"is_public", "sort", "extra_specs"}}.Write(w, sortParams(r), views)
}

// findType is a type by id or name, if the caller may see it.
func (s *Service) findType(r *http.Request, ref string) (*volstate.Type, error) {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return nil, err
	}
	t, err := resolveType(tx, ref)
	if err != nil || (!t.Usable(principal(r).ProjectID) && !principal(r).IsAdmin()) {
		return nil, notFound("Volume type", ref)
	}
	return t, nil
}

func (s *Service) showType(w http.ResponseWriter, r *http.Request) error {
	t, err := s.findType(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"volume_type": typeViewFor(r, t)})
	return nil
}

func (s *Service) showDefaultType(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	// The caller's project's default (3.62's override), else the cloud's.
	t, err := volstate.ProjectDefaultType(tx, principal(r).ProjectID)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"volume_type": typeViewFor(r, t)})
	return nil
}

// extraSpecs reads extra specs: string values, the policy spec a valid
// policy.
func extraSpecs(in *api.Input, field string) map[string]string {
	specs := metadata(in, field)
	if pol, ok := specs[volstate.PolicySpec]; ok && in.Err == nil {
		if _, err := volstate.ParsePolicy(pol); err != nil {
			in.Fail(in.Word.BadField(field+"."+volstate.PolicySpec, pol, err.Error()))
		}
	}
	return specs
}

func (s *Service) createType(w http.ResponseWriter, r *http.Request) error {
	o, err := body(r, "volume_type")
	if err != nil {
		return err
	}
	in := newInput(o)
	t := volstate.Type{ID: api.NewUUID()}
	t.Name = in.Required("name", 255)
	t.Description = in.Str("description", "", 255)
	t.Public = in.Bool("os-volume-type-access:is_public", in.Bool("is_public", true))
	t.ExtraSpecs = extraSpecs(in, "extra_specs")
	if in.Err != nil {
		return in.Err
	}
	var row volstate.Type
	if _, err := api.Propose(r.Context(), s.cfg.Repl, volstate.CmdCreateType, volstate.CreateTypeCmd{Row: t}, &row); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"volume_type": typeView(&row)})
	return nil
}

// changeType applies change to type id and proposes it, retrying when
// another change got in first.
func (s *Service) changeType(ctx context.Context, id string, change func(t *volstate.Type) error) (*volstate.Type, error) {
	return changeRow(ctx, s.cfg.Repl, func(tx *memdb.Txn) (*volstate.Type, error) { return volstate.LoadType(tx, id) },
		func(cur *volstate.Type) (string, any, error) {
			next := cur.Clone()
			if err := change(next); err != nil {
				return "", nil, err
			}
			return volstate.CmdPutType, volstate.PutTypeCmd{Row: *next, Revision: cur.Revision}, nil
		})
}

func (s *Service) updateType(w http.ResponseWriter, r *http.Request) error {
	o, err := body(r, "volume_type")
	if err != nil {
		return err
	}
	in := newInput(o)
	name, hasName := in.Str("name", "", 255), in.Has("name")
	desc, hasDesc := in.Str("description", "", 255), in.Has("description")
	public, hasPublic := in.Bool("is_public", true), in.Has("is_public")
	if in.Err != nil {
		return in.Err
	}
	if hasName && name == "" {
		return cinderWording{}.BadField("name", name, "the name must not be empty")
	}
	t, err := s.findType(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	row, err := s.changeType(r.Context(), t.ID, func(t *volstate.Type) error {
		if hasName {
			t.Name = name
		}
		if hasDesc {
			t.Description = desc
		}
		if hasPublic {
			t.Public = public
		}
		return nil
	})
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"volume_type": changedTypeView(row)})
	return nil
}

func (s *Service) deleteType(w http.ResponseWriter, r *http.Request) error {
	t, err := s.findType(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	if _, err := api.Propose(r.Context(), s.cfg.Repl, volstate.CmdDeleteType, volstate.DeleteTypeCmd{ID: t.ID}, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (s *Service) listExtraSpecs(w http.ResponseWriter, r *http.Request) error {
	t, err := s.findType(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"extra_specs": typeView(t)["extra_specs"]})
	return nil
}

func (s *Service) setExtraSpecs(w http.ResponseWriter, r *http.Request) error {
	top, err := api.ReadObject(r)
	if err != nil {
		return err
	}
	in := newInput(top)
	if !in.Has("extra_specs") {
		return cinderWording{}.Missing("extra_specs")
	}
	specs := extraSpecs(in, "extra_specs")
	if in.Err != nil {
		return in.Err
	}
	if specs == nil {
		return cinderWording{}.BadField("extra_specs", nil, "None is not of type 'object'")
	}
	t, err := s.findType(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	if err := s.specsChangeable(r, t.ID, specs); err != nil {
		return err
	}
	if _, err := s.changeType(r.Context(), t.ID, func(t *volstate.Type) error {
		if t.ExtraSpecs == nil {
			t.ExtraSpecs = map[string]string{}
		}
		maps.Copy(t.ExtraSpecs, specs)
		return nil
	}); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"extra_specs": specs})
	return nil
}

// specsChangeable refuses to change the policy of a type that volumes
// use: their blocks are stored with the old one.
func (s *Service) specsChangeable(r *http.Request, typeID string, specs map[string]string) error {
	if _, ok := specs[volstate.PolicySpec]; !ok {
		return nil
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	for _, v := range store.All[volstate.Volume](tx, volstate.VolumeTable, "id") {
		if v.TypeID == typeID {
			return badRequest("Invalid volume type: the %s of a type that volumes use cannot change.", volstate.PolicySpec)
		}
	}
	return nil
}

func (s *Service) showExtraSpec(w http.ResponseWriter, r *http.Request) error {
	t, err := s.findType(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	key := chi.URLParam(r, "key")
	v, ok := t.ExtraSpecs[key]
	if !ok {
		return store.Fault(store.KindNotFound, "itemNotFound", "Volume Type %s has no extra specs with key %s.", t.ID, key)
	}
	api.JSON(w, http.StatusOK, map[string]string{key: v})
	return nil
}

func (s *Service) putExtraSpec(w http.ResponseWriter, r *http.Request) error {
	key := chi.URLParam(r, "key")
	top, err := api.ReadObject(r)
	if err != nil {
		return err
	}
	in := newInput(api.Object{"extra_specs": top})
	specs := extraSpecs(in, "extra_specs")
	if in.Err != nil {
		return in.Err
	}
	if len(specs) != 1 {
		return badRequest("Request body contains too many items.")
	}
	if _, ok := specs[key]; !ok {
		return badRequest("Request body and URI mismatch")
	}
	t, err := s.findType(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	if err := s.specsChangeable(r, t.ID, specs); err != nil {
		return err
	}
	if _, err := s.changeType(r.Context(), t.ID, func(t *volstate.Type) error {
		if t.ExtraSpecs == nil {
			t.ExtraSpecs = map[string]string{}
		}
		t.ExtraSpecs[key] = specs[key]
		return nil
	}); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, specs)
	return nil
}

func (s *Service) deleteExtraSpec(w http.ResponseWriter, r *http.Request) error {
	key := chi.URLParam(r, "key")
	t, err := s.findType(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	if err := s.specsChangeable(r, t.ID, map[string]string{key: ""}); err != nil {
		return err
	}
	if _, err := s.changeType(r.Context(), t.ID, func(t *volstate.Type) error {
		if _, ok := t.ExtraSpecs[key]; !ok {
			return store.Fault(store.KindNotFound, "itemNotFound", "Volume Type %s has no extra specs with key %s.", t.ID, key)
		}
		delete(t.ExtraSpecs, key)
		return nil
	}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}
