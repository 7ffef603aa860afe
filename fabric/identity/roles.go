package identity

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// roles is the role collection; any token may read roles.
func (s *Service) roles(r *http.Request) api.Collection[Role] {
	return api.Collection[Role]{
		Table: tRoles, One: "role", NotFound: notFoundOf("role"), Listing: s.listing("roles"),
		Visible: func(*api.Principal, *Role) bool { return true },
		View:    func(_ *memdb.Txn, _ *api.Principal, ro *Role) api.View { return s.roleView(r, ro) },
	}
}

func (s *Service) roleView(r *http.Request, ro *Role) api.View {
	var dom any
	if ro.DomainID != "" {
		dom = ro.DomainID
	}
	return withExtras(ro.Extra, api.View{"id": ro.ID, "name": ro.Name, "domain_id": dom, "description": ro.Description, "options": map[string]any{}, "links": s.self(r, "roles", ro.ID)})
}

// listRoles lists global roles, or with domain_id the roles of a domain,
// as Keystone does.
func (s *Service) listRoles(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	c := s.roles(r)
	views := c.Views(tx, api.PrincipalFrom(r.Context()))
	if !r.URL.Query().Has("domain_id") {
		global := views[:0]
		for _, v := range views {
			if v["domain_id"] == nil {
				global = append(global, v)
			}
		}
		views = global
	}
	return s.writeList(w, r, c.Listing, views)
}

var roleFields = []string{"name", "domain_id", "description", "options"}

func readRole(_ *http.Request, in *api.Input, old *Role) (*Role, error) {
	ro := Role{ID: api.NewHexID()}
	if old != nil {
		ro = *old
	} else {
		ro.DomainID = str(in, "domain_id", "")
	}
	ro.Name = name(in, ro.Name, old == nil, maxName)
	ro.Description = str(in, "description", ro.Description)
	ro.Extra = mergeExtras(ro.Extra, in, roleFields...)
	return &ro, in.Err
}

// Role inference rules.

func (s *Service) roleRef(r *http.Request, ro *Role) map[string]any {
	return map[string]any{"id": ro.ID, "name": ro.Name, "links": s.self(r, "roles", ro.ID)}
}

// inferenceRoles reads the roles of /v3/roles/{prior}/implies/{implied}.
func (s *Service) inferenceRoles(r *http.Request) (tx *memdb.Txn, prior, implied *Role, err error) {
	tx, err = s.cfg.Repl.Read(r.Context())
	if err != nil {
		return nil, nil, nil, err
	}
	pid, iid := chi.URLParam(r, "prior"), chi.URLParam(r, "implied")
	if prior = store.Get[Role](tx, tRoles, pid); prior == nil {
		return nil, nil, nil, notFoundErr("role", pid)
	}
	if implied = store.Get[Role](tx, tRoles, iid); implied == nil {
		return nil, nil, nil, notFoundErr("role", iid)
	}
	return tx, prior, implied, nil
}

func (s *Service) inferenceBody(r *http.Request, prior, implied *Role) map[string]any {
	return map[string]any{"role_inference": map[string]any{"prior_role": s.roleRef(r, prior), "implies": s.roleRef(r, implied)}, "links": s.links(r)}
}

func (s *Service) putImplication(w http.ResponseWriter, r *http.Request) error {
	tx, prior, implied, err := s.inferenceRoles(r)
	if err != nil {
		return err
	}
	im := Implication{ID: prior.ID + "/" + implied.ID, Prior: prior.ID, Implied: implied.ID}
	if !exists(tx, tImplies, im.ID) {
		if err := s.put(r, tImplies, true, &im); err != nil {
			return err
		}
	}
	api.JSON(w, http.StatusCreated, s.inferenceBody(r, prior, implied))
	return nil
}

func (s *Service) getImplication(w http.ResponseWriter, r *http.Request) error {
	tx, prior, implied, err := s.inferenceRoles(r)
	if err != nil {
		return err
	}
	if !exists(tx, tImplies, prior.ID+"/"+implied.ID) {
		return &api.Error{Status: http.StatusNotFound, Msg: "Could not find implied role."}
	}
	if r.Method == http.MethodHead {
		return noContent(w)
	}
	api.JSON(w, http.StatusOK, s.inferenceBody(r, prior, implied))
	return nil
}

func (s *Service) deleteImplication(w http.ResponseWriter, r *http.Request) error {
	if err := s.remove(r, tImplies, chi.URLParam(r, "prior")+"/"+chi.URLParam(r, "implied")); err != nil {
		return err
	}
	return noContent(w)
}

func (s *Service) inference(r *http.Request, tx *memdb.Txn, prior *Role) map[string]any {
	implies := []map[string]any{}
	for _, im := range store.All[Implication](tx, tImplies, "prior", prior.ID) {
		if ro := store.Get[Role](tx, tRoles, im.Implied); ro != nil {
			implies = append(implies, s.roleRef(r, ro))
		}
	}
	return map[string]any{"prior_role": s.roleRef(r, prior), "implies": implies}
}

func (s *Service) listImplied(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	prior := store.Get[Role](tx, tRoles, chi.URLParam(r, "prior"))
	if prior == nil {
		return notFoundErr("role", chi.URLParam(r, "prior"))
	}
	api.JSON(w, http.StatusOK, map[string]any{"role_inference": s.inference(r, tx, prior), "links": s.links(r)})
	return nil
}

func (s *Service) listInferences(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	out := []map[string]any{}
	seen := map[string]bool{}
	for _, im := range store.All[Implication](tx, tImplies, "id") {
		if seen[im.Prior] {
			continue
		}
		seen[im.Prior] = true
		if prior := store.Get[Role](tx, tRoles, im.Prior); prior != nil {
			out = append(out, s.inference(r, tx, prior))
		}
	}
	api.JSON(w, http.StatusOK, map[string]any{"role_inferences": out, "links": s.links(r)})
	return nil
}
