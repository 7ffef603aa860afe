package identity

import (
	"net/http"
	"net/url"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Grants: /v3/{projects,domains}/{scope}/{users,groups}/{actor}/roles, and
// /v3/system/{users,groups}/{actor}/roles on the one system, "all".

var singularOf = map[string]string{"projects": "project", "domains": "domain", "system": "system", "users": "user", "groups": "group"}

func grantOf(r *http.Request, scope, actor string) Assignment {
	a := Assignment{ActorType: singularOf[actor], ActorID: chi.URLParam(r, "actor"), ScopeType: singularOf[scope], ScopeID: grantScope(r, scope), RoleID: chi.URLParam(r, "role")}
	a.ID = assignmentID(a.ActorType, a.ActorID, a.ScopeType, a.ScopeID, a.RoleID)
	return a
}

// grantScope is the scope id of a grant's path: the system's path names
// none.
func grantScope(r *http.Request, scope string) string {
	if scope == "system" {
		return systemAll
	}
	return chi.URLParam(r, "scope")
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
			if a.ScopeType == singularOf[scope] && a.ScopeID == grantScope(r, scope) {
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

// assignmentRow is an assignment as listed; in an effective listing,
// group is set when it came through this group, prior when through the
// role that implies it.
type assignmentRow struct {
	a            Assignment
	group, prior string
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

// assignmentRows are all assignments as made or, effective, as Keystone
// lists what users hold: a group's assignments once per member, each with
// the roles it implies, and without domain-specific roles (they only
// stand for what they imply).
func assignmentRows(tx *memdb.Txn, effective bool) []assignmentRow {
	var rows []assignmentRow
	for _, a := range store.All[Assignment](tx, tAssignments, "id") {
		if !effective {
			rows = append(rows, assignmentRow{a: *a})
			continue
		}
		held := []assignmentRow{{a: *a}}
		if a.ActorType == "group" {
			held = nil
			for _, m := range store.All[Membership](tx, tMembers, "group", a.ActorID) {
				b := *a
				b.ActorType, b.ActorID = "user", m.UserID
				held = append(held, assignmentRow{a: b, group: a.ActorID})
			}
		}
		for _, row := range held {
			for _, x := range withImplied(tx, row) {
				if !domainSpecific(tx, x.a.RoleID) {
					rows = append(rows, x)
				}
			}
		}
	}
	return rows
}

// withImplied is row and a row for each role its role implies,
// transitively, each naming the role that implies it directly.
func withImplied(tx *memdb.Txn, row assignmentRow) []assignmentRow {
	out := []assignmentRow{row}
	seen := map[string]bool{row.a.RoleID: true}
	for i := 0; i < len(out) && len(out) < 1000; i++ {
		for _, im := range store.All[Implication](tx, tImplies, "prior", out[i].a.RoleID) {
			if seen[im.Implied] {
				continue
			}
			seen[im.Implied] = true
			x := out[i]
			x.a.RoleID, x.prior = im.Implied, im.Prior
			out = append(out, x)
		}
	}
	return out
}

func domainSpecific(tx *memdb.Txn, role string) bool {
	ro := store.Get[Role](tx, tRoles, role)
	return ro != nil && ro.DomainID != ""
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
		scopeIs("project", "scope.project.id") && scopeIs("domain", "scope.domain.id") && scopeIs("system", "scope.system") &&
		is("role.id", a.RoleID)
}

func (s *Service) assignmentView(r *http.Request, tx *memdb.Txn, row assignmentRow, names bool) map[string]any {
	a := row.a
	base := s.baseURL(r) + "/identity/v3/"
	// An implied role's assignment is the grant of the role implying it.
	granted := a.RoleID
	if row.prior != "" {
		granted = row.prior
	}
	scope := map[string]any{a.ScopeType: map[string]any{"id": a.ScopeID}}
	assignment := base + a.ScopeType + "s/" + a.ScopeID + "/" + a.ActorType + "s/" + a.ActorID + "/roles/" + granted
	if a.ScopeType == "system" {
		scope = map[string]any{"system": map[string]any{"all": true}}
		assignment = base + "system/" + a.ActorType + "s/" + a.ActorID + "/roles/" + granted
	}
	links := map[string]any{"assignment": assignment}
	if row.group != "" {
		links["membership"] = base + "groups/" + row.group + "/users/" + a.ActorID
	}
	if row.prior != "" {
		links["prior_role"] = base + "roles/" + row.prior
	}
	v := map[string]any{
		"role":      map[string]any{"id": a.RoleID},
		"scope":     scope,
		a.ActorType: map[string]any{"id": a.ActorID},
		"links":     links,
	}
	if names {
		nameAssignment(tx, a, v)
	}
	return v
}

// nameAssignment adds the names of an assignment's role, actor and scope
// (with their domains) to its view, as include_names asks.
func nameAssignment(tx *memdb.Txn, a Assignment, v map[string]any) {
	domain := func(id string) map[string]any {
		d := map[string]any{"id": id}
		if dd := store.Get[Domain](tx, tDomains, id); dd != nil {
			d["name"] = dd.Name
		}
		return d
	}
	if ro := store.Get[Role](tx, tRoles, a.RoleID); ro != nil {
		role := map[string]any{"id": ro.ID, "name": ro.Name}
		if ro.DomainID != "" {
			role["domain"] = domain(ro.DomainID)
		}
		v["role"] = role
	}
	switch a.ActorType {
	case "user":
		if u := store.Get[User](tx, tUsers, a.ActorID); u != nil {
			v["user"] = map[string]any{"id": u.ID, "name": u.Name, "domain": domain(u.DomainID)}
		}
	case "group":
		if g := store.Get[Group](tx, tGroups, a.ActorID); g != nil {
			v["group"] = map[string]any{"id": g.ID, "name": g.Name, "domain": domain(g.DomainID)}
		}
	}
	switch a.ScopeType {
	case "project":
		if pr := store.Get[Project](tx, tProjects, a.ScopeID); pr != nil {
			v["scope"] = map[string]any{"project": map[string]any{"id": pr.ID, "name": pr.Name, "domain": domain(pr.DomainID)}}
		}
	case "domain":
		if d := store.Get[Domain](tx, tDomains, a.ScopeID); d != nil {
			v["scope"] = map[string]any{"domain": map[string]any{"id": d.ID, "name": d.Name}}
		}
	}
}
