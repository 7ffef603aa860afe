package identity

import (
	"net/http"
	"net/url"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Grants: /v3/{projects,domains}/{scope}/{users,groups}/{actor}/roles.

var singularOf = map[string]string{"projects": "project", "domains": "domain", "users": "user", "groups": "group"}

func grantOf(r *http.Request, scope, actor string) Assignment {
	a := Assignment{ActorType: singularOf[actor], ActorID: chi.URLParam(r, "actor"), ScopeType: singularOf[scope], ScopeID: chi.URLParam(r, "scope"), RoleID: chi.URLParam(r, "role")}
	a.ID = assignmentID(a.ActorType, a.ActorID, a.ScopeType, a.ScopeID, a.RoleID)
	return a
}

// grant adds a role assignment (idempotently) or removes it.
func (s *Service) grant(scope, actor string, add bool) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		a := grantOf(r, scope, actor)
		if !add {
			if err := s.remove(r, tAssignments, a.ID); err != nil {
				return err
			}
			return noContent(w)
		}
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		if !exists(tx, tAssignments, a.ID) {
			if err := s.put(r, tAssignments, true, &a); err != nil {
				return err
			}
		}
		return noContent(w)
	}
}

func (s *Service) checkGrant(scope, actor string) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		if !exists(tx, tAssignments, grantOf(r, scope, actor).ID) {
			return &api.Error{Status: http.StatusNotFound, Msg: "Could not find role assignment."}
		}
		return noContent(w)
	}
}

func (s *Service) listGrants(scope, actor string) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		out := []api.View{}
		for _, a := range store.All[Assignment](tx, tAssignments, "actor", singularOf[actor], chi.URLParam(r, "actor")) {
			if a.ScopeType == singularOf[scope] && a.ScopeID == chi.URLParam(r, "scope") {
				if ro := store.Get[Role](tx, tRoles, a.RoleID); ro != nil {
					out = append(out, s.roleView(r, ro))
				}
			}
		}
		return s.writeList(w, r, s.listing("roles"), out)
	}
}

// GET /v3/role_assignments with Keystone's filters. Non-admins may list
// only their own.

// assignmentRow is an assignment as listed; group is set when an
// effective listing found it through this group.
type assignmentRow struct {
	a     Assignment
	group string
}

func (s *Service) listAssignments(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	p := api.PrincipalFrom(r.Context())
	if !p.IsAdmin() && q.Get("user.id") != p.UserID {
		return errForbidden
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	out := []map[string]any{}
	for _, row := range assignmentRows(tx, q.Has("effective")) {
		if assignmentMatches(row.a, q) {
			out = append(out, s.assignmentView(r, tx, row, q.Has("include_names")))
		}
	}
	api.JSON(w, http.StatusOK, map[string]any{"role_assignments": out, "links": s.links(r)})
	return nil
}

// assignmentRows are all assignments; effective ones expand a group's
// assignments into one per member.
func assignmentRows(tx *memdb.Txn, effective bool) []assignmentRow {
	var rows []assignmentRow
	for _, a := range store.All[Assignment](tx, tAssignments, "id") {
		if effective && a.ActorType == "group" {
			for _, m := range store.All[Membership](tx, tMembers, "group", a.ActorID) {
				b := *a
				b.ActorType, b.ActorID = "user", m.UserID
				rows = append(rows, assignmentRow{a: b, group: a.ActorID})
			}
			continue
		}
		rows = append(rows, assignmentRow{a: *a})
	}
	return rows
}

func assignmentMatches(a Assignment, q url.Values) bool {
	is := func(param, got string) bool { return !q.Has(param) || q.Get(param) == got }
	actorIs := func(typ, param string) bool {
		return !q.Has(param) || (a.ActorType == typ && a.ActorID == q.Get(param))
	}
	scopeIs := func(typ, param string) bool {
		return !q.Has(param) || (a.ScopeType == typ && a.ScopeID == q.Get(param))
	}
	return actorIs("user", "user.id") && actorIs("group", "group.id") &&
		scopeIs("project", "scope.project.id") && scopeIs("domain", "scope.domain.id") && is("role.id", a.RoleID)
}

func (s *Service) assignmentView(r *http.Request, tx *memdb.Txn, row assignmentRow, names bool) map[string]any {
	a := row.a
	links := map[string]any{"assignment": s.baseURL(r) + "/identity/v3/" + a.ScopeType + "s/" + a.ScopeID + "/" + a.ActorType + "s/" + a.ActorID + "/roles/" + a.RoleID}
	if row.group != "" {
		links["membership"] = s.baseURL(r) + "/identity/v3/groups/" + row.group + "/users/" + a.ActorID
	}
	v := map[string]any{
		"role":      map[string]any{"id": a.RoleID},
		"scope":     map[string]any{a.ScopeType: map[string]any{"id": a.ScopeID}},
		a.ActorType: map[string]any{"id": a.ActorID},
		"links":     links,
	}
	if !names {
		return v
	}
	if ro := store.Get[Role](tx, tRoles, a.RoleID); ro != nil {
		v["role"] = map[string]any{"id": ro.ID, "name": ro.Name}
	}
	if a.ActorType == "user" {
		if u := store.Get[User](tx, tUsers, a.ActorID); u != nil {
			v["user"] = map[string]any{"id": u.ID, "name": u.Name, "domain": map[string]any{"id": u.DomainID}}
		}
	}
	if a.ScopeType == "project" {
		if pr := store.Get[Project](tx, tProjects, a.ScopeID); pr != nil {
			v["scope"] = map[string]any{"project": map[string]any{"id": pr.ID, "name": pr.Name, "domain": map[string]any{"id": pr.DomainID}}}
		}
	}
	return v
}
