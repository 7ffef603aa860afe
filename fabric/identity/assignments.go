package identity

import (
	"maps"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Grants: /v3/{projects,domains}/{scope}/{users,groups}/{actor}/roles, and
// /v3/system/{users,groups}/{actor}/roles on the one system, "all";
// inherited ones (OS-INHERIT) at /v3/OS-INHERIT/{domains,projects}/
// {scope}/{users,groups}/{actor}/roles/{role}/inherited_to_projects.

var singularOf = map[string]string{"projects": "project", "domains": "domain", "system": "system", "users": "user", "groups": "group"}

func grantOf(r *http.Request, scope, actor string, inherited bool) Assignment {
	a := Assignment{ActorType: singularOf[actor], ActorID: chi.URLParam(r, "actor"), ScopeType: singularOf[scope], ScopeID: grantScope(r, scope), RoleID: chi.URLParam(r, "role"), Inherited: inherited}
	a.ID = assignmentID(a.ActorType, a.ActorID, a.ScopeType, a.ScopeID, a.RoleID)
	if inherited {
		a.ID = inheritedID(a.ActorType, a.ActorID, a.ScopeType, a.ScopeID, a.RoleID)
	}
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
func (s *Service) grant(scope, actor string, inherited, add bool) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		a := grantOf(r, scope, actor, inherited)
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

func (s *Service) checkGrant(scope, actor string, inherited bool) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		if !exists(tx, tAssignments, grantOf(r, scope, actor, inherited).ID) {
			return &api.Error{Status: http.StatusNotFound, Msg: "Could not find role assignment."}
		}
		return noContent(w)
	}
}

func (s *Service) listGrants(scope, actor string, inherited bool) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		out := []api.View{}
		for _, a := range store.All[Assignment](tx, tAssignments, "actor", singularOf[actor], chi.URLParam(r, "actor")) {
			if a.ScopeType == singularOf[scope] && a.ScopeID == grantScope(r, scope) && a.Inherited == inherited {
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
	// from is the inherited assignment an effective row comes from.
	from *Assignment
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
	// include_subtree widens scope.project.id to the projects below it.
	// A domain is the root of its projects' tree in Keystone (a project
	// acting as a domain), so its id names every project of the domain.
	var subtree map[string]bool
	if q.Has("include_subtree") && queryTrue(q.Get("include_subtree")) {
		root := q.Get("scope.project.id")
		if root == "" {
			return invalid("scope.project.id must be specified if include_subtree is also specified")
		}
		subtree = projectSubtree(tx, root)
		q = maps.Clone(q)
		q.Del("scope.project.id")
	}
	out := []map[string]any{}
	for _, row := range assignmentRows(tx, q.Has("effective")) {
		if subtree != nil && (row.a.ScopeType != "project" || !subtree[row.a.ScopeID]) {
			continue
		}
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
		// An inherited assignment is held on the projects below its
		// scope, not on the scope itself.
		on := []assignmentRow{{a: *a}}
		if a.Inherited {
			on = nil
			for _, p := range inheritors(tx, a) {
				b := *a
				b.ScopeType, b.ScopeID, b.Inherited = "project", p.ID, false
				on = append(on, assignmentRow{a: b, from: a})
			}
		}
		var held []assignmentRow
		for _, row := range on {
			if a.ActorType != "group" {
				held = append(held, row)
				continue
			}
			for _, m := range store.All[Membership](tx, tMembers, "group", a.ActorID) {
				b := row
				b.a.ActorType, b.a.ActorID, b.group = "user", m.UserID, a.ActorID
				held = append(held, b)
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
	inheritedIs := !q.Has("scope.OS-INHERIT:inherited_to") || a.Inherited
	return actorIs("user", "user.id") && actorIs("group", "group.id") &&
		scopeIs("project", "scope.project.id") && scopeIs("domain", "scope.domain.id") && scopeIs("system", "scope.system") &&
		is("role.id", a.RoleID) && inheritedIs
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
	switch {
	case a.ScopeType == "system":
		scope = map[string]any{"system": map[string]any{"all": true}}
		assignment = base + "system/" + a.ActorType + "s/" + a.ActorID + "/roles/" + granted
	case a.Inherited:
		scope["OS-INHERIT:inherited_to"] = "projects"
		assignment = base + "OS-INHERIT/" + a.ScopeType + "s/" + a.ScopeID + "/" + a.ActorType + "s/" + a.ActorID + "/roles/" + granted + "/inherited_to_projects"
	case row.from != nil:
		// Held through inheritance: the link is the inherited grant's.
		f := row.from
		assignment = base + "OS-INHERIT/" + f.ScopeType + "s/" + f.ScopeID + "/" + f.ActorType + "s/" + f.ActorID + "/roles/" + granted + "/inherited_to_projects"
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
		if a.Inherited {
			v["scope"].(map[string]any)["OS-INHERIT:inherited_to"] = "projects"
		}
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

// projectSubtree is the set of a project's id and the ids of the projects
// below it; for a domain's id, the ids of every project of the domain.
func projectSubtree(tx *memdb.Txn, root string) map[string]bool {
	set := map[string]bool{}
	if store.Get[Domain](tx, tDomains, root) != nil {
		for _, p := range inheritors(tx, &Assignment{ScopeType: "domain", ScopeID: root}) {
			set[p.ID] = true
		}
		return set
	}
	set[root] = true
	for _, p := range inheritors(tx, &Assignment{ScopeType: "project", ScopeID: root}) {
		set[p.ID] = true
	}
	return set
}

// queryTrue reads a boolean query parameter as Keystone does: only "0"
// and "false" (any case) are false; a bare "?include_subtree" is true.
func queryTrue(v string) bool {
	return v != "0" && !strings.EqualFold(v, "false")
}

// inheritsFrom are the scopes ("domain/<id>", "project/<id>") whose
// inherited assignments reach project: its domain and the projects above
// it, not itself.
func inheritsFrom(tx *memdb.Txn, project string) []string {
	p := store.Get[Project](tx, tProjects, project)
	if p == nil {
		return nil
	}
	out := []string{"domain/" + p.DomainID}
	for parent := p.ParentID; parent != "" && parent != p.DomainID && len(out) < 100; {
		pp := store.Get[Project](tx, tProjects, parent)
		if pp == nil {
			break
		}
		out = append(out, "project/"+pp.ID)
		parent = pp.ParentID
	}
	return out
}

// inheritors are the projects an inherited assignment on a domain or
// project reaches: every project of the domain, or every project below
// the project.
func inheritors(tx *memdb.Txn, a *Assignment) []*Project {
	var out []*Project
	switch a.ScopeType {
	case "domain":
		out = store.All[Project](tx, tProjects, "domain", a.ScopeID)
	case "project":
		p := store.Get[Project](tx, tProjects, a.ScopeID)
		if p == nil {
			return nil
		}
		for _, c := range store.All[Project](tx, tProjects, "domain", p.DomainID) {
			for _, s := range inheritsFrom(tx, c.ID) {
				if s == "project/"+p.ID {
					out = append(out, c)
					break
				}
			}
		}
	}
	return out
}
