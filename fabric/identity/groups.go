package identity

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// groups is the group collection (every route to it is for admins).
func (s *Service) groups(r *http.Request) api.Collection[Group] {
	return api.Collection[Group]{
		Table: tGroups, One: "group", NotFound: notFoundOf("group"), Listing: s.listing("groups"),
		Visible: func(*api.Principal, *Group) bool { return true },
		View:    func(_ *memdb.Txn, _ *api.Principal, g *Group) api.View { return s.groupView(r, g) },
	}
}

func (s *Service) groupView(r *http.Request, g *Group) api.View {
	return withExtras(g.Extra, api.View{"id": g.ID, "name": g.Name, "domain_id": g.DomainID, "description": g.Description, "links": s.self(r, "groups", g.ID)})
}

var groupFields = []string{"name", "domain_id", "description"}

func readGroup(_ *http.Request, in *api.Input, old *Group) (*Group, error) {
	g := Group{ID: api.NewHexID()}
	if old != nil {
		g = *old
	} else {
		g.DomainID = str(in, "domain_id", "default")
	}
	g.Name = name(in, g.Name, old == nil, maxName)
	g.Description = str(in, "description", g.Description)
	// Keystone keeps attributes it does not know (an "email" on a group).
	g.Extra = mergeExtras(g.Extra, in, groupFields...)
	return &g, in.Err
}

func (s *Service) listGroupUsers(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	id := chi.URLParam(r, "id")
	if store.Get[Group](tx, tGroups, id) == nil {
		return notFoundErr("group", id)
	}
	out := []api.View{}
	for _, m := range store.All[Membership](tx, tMembers, "group", id) {
		if u := store.Get[User](tx, tUsers, m.UserID); u != nil {
			out = append(out, s.userView(r, u))
		}
	}
	return s.writeList(w, r, s.listing("users"), out)
}

// membership adds a user to a group (idempotently) or removes it.
func (s *Service) membership(add bool) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		m := Membership{GroupID: chi.URLParam(r, "id"), UserID: chi.URLParam(r, "user")}
		m.ID = m.GroupID + "/" + m.UserID
		if !add {
			if err := s.remove(r, tMembers, m.ID); err != nil {
				return err
			}
			return noContent(w)
		}
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		if !exists(tx, tMembers, m.ID) {
			if err := s.put(r, tMembers, true, &m); err != nil {
				return err
			}
		}
		return noContent(w)
	}
}

func (s *Service) checkMembership(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	if !exists(tx, tMembers, chi.URLParam(r, "id")+"/"+chi.URLParam(r, "user")) {
		return &api.Error{Status: http.StatusNotFound, Msg: "Could not find membership."}
	}
	return noContent(w)
}
