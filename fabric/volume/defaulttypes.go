package volume

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// Default volume types per project (3.62), at /v3/default-types as in
// Cinder (no project in the path: the id is the project whose default
// it is). An admin sets, lists and unsets them; a project reads its own.
// A volume made without a type is of its project's default type, else of
// the cloud's (volstate.ProjectDefaultType).

func defaultTypeView(d *volstate.ProjectDefault) api.View {
	return api.View{"project_id": d.ID, "volume_type_id": d.TypeID}
}

func (s *Service) setDefaultType(w http.ResponseWriter, r *http.Request) error {
	if err := needVersion(r, 62, "default types"); err != nil {
		return err
	}
	o, err := body(r, "default_type")
	if err != nil {
		return err
	}
	in := newInput(o)
	ref := in.Required("volume_type", 255)
	if in.Err != nil {
		return in.Err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	t, err := resolveType(tx, ref)
	if err != nil {
		return err
	}
	row := volstate.ProjectDefault{ID: chi.URLParam(r, "id"), TypeID: t.ID}
	if _, err := api.Propose(r.Context(), s.cfg.Repl, volstate.CmdSetDefaultType, volstate.SetDefaultTypeCmd{Row: row}, nil); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"default_type": defaultTypeView(&row)})
	return nil
}

func (s *Service) showProjectDefaultType(w http.ResponseWriter, r *http.Request) error {
	if err := needVersion(r, 62, "default types"); err != nil {
		return err
	}
	id, p := chi.URLParam(r, "id"), principal(r)
	if id != p.ProjectID && !p.IsAdmin() {
		return policyDenied("volume_extension:default_get")
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	d := store.Get[volstate.ProjectDefault](tx, volstate.DefaultTypeTable, id)
	if d == nil {
		return store.Fault(store.KindNotFound, "itemNotFound", "Default type for project %s could not be found.", id)
	}
	api.JSON(w, http.StatusOK, map[string]any{"default_type": defaultTypeView(d)})
	return nil
}

func (s *Service) listDefaultTypes(w http.ResponseWriter, r *http.Request) error {
	if err := needVersion(r, 62, "default types"); err != nil {
		return err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	out := []any{}
	for _, d := range store.All[volstate.ProjectDefault](tx, volstate.DefaultTypeTable, "id") {
		out = append(out, defaultTypeView(d))
	}
	api.JSON(w, http.StatusOK, map[string]any{"default_types": out})
	return nil
}

func (s *Service) unsetDefaultType(w http.ResponseWriter, r *http.Request) error {
	if err := needVersion(r, 62, "default types"); err != nil {
		return err
	}
	if _, err := api.Propose(r.Context(), s.cfg.Repl, volstate.CmdUnsetDefaultType, volstate.UnsetDefaultTypeCmd{Project: chi.URLParam(r, "id")}, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
