package identity

import (
	"net/http"
	"sort"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Endpoint filtering (Keystone's OS-EP-FILTER): a project associated
// with endpoints, directly or through endpoint groups (filters on
// service, region and interface), sees only those endpoints in the
// catalog of its tokens; a project with no association sees them all.

// EndpointGroup selects the endpoints matching all of its filters.
type EndpointGroup struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Filters     map[string]string `json:"filters"`
}

// EndpointAssoc associates a project with an endpoint (Kind "endpoint")
// or an endpoint group (Kind "group").
type EndpointAssoc struct {
	ID        string `json:"id"` // kind/project/target
	Kind      string `json:"kind"`
	ProjectID string `json:"project_id"`
	TargetID  string `json:"target_id"`
}

func endpointAssocID(kind, project, target string) string { return kind + "/" + project + "/" + target }

// endpointFilters are the attributes a group may filter on.
var endpointFilters = map[string]func(*Endpoint) string{
	"service_id": func(e *Endpoint) string { return e.ServiceID },
	"region_id":  func(e *Endpoint) string { return e.RegionID },
	"interface":  func(e *Endpoint) string { return e.Interface },
}

func (g *EndpointGroup) matches(e *Endpoint) bool {
	for k, v := range g.Filters {
		if f := endpointFilters[k]; f == nil || f(e) != v {
			return false
		}
	}
	return true
}

func (g *EndpointGroup) endpoints(tx *memdb.Txn) []*Endpoint {
	var out []*Endpoint
	for _, e := range store.All[Endpoint](tx, tEndpoints, "id") {
		if g.matches(e) {
			out = append(out, e)
		}
	}
	return out
}

// projectEndpoints are the endpoints a project's catalog is narrowed to,
// or nil when it has no association (it sees every endpoint).
func projectEndpoints(tx *memdb.Txn, project string) map[string]bool {
	assocs := store.All[EndpointAssoc](tx, tEndpointAssocs, "project", project)
	if len(assocs) == 0 {
		return nil
	}
	out := map[string]bool{}
	for _, a := range assocs {
		switch a.Kind {
		case "endpoint":
			out[a.TargetID] = true
		case "group":
			if g := store.Get[EndpointGroup](tx, tEndpointGroups, a.TargetID); g != nil {
				for _, e := range g.endpoints(tx) {
					out[e.ID] = true
				}
			}
		}
	}
	return out
}

func (s *Service) endpointGroups(r *http.Request) api.Collection[EndpointGroup] {
	return api.Collection[EndpointGroup]{
		Table: tEndpointGroups, One: "endpoint_group", NotFound: notFoundOf("endpoint group"), Listing: s.listing("endpoint_groups"),
		Visible: func(*api.Principal, *EndpointGroup) bool { return true },
		View:    func(_ *memdb.Txn, _ *api.Principal, g *EndpointGroup) api.View { return s.endpointGroupView(r, g) },
	}
}

func (s *Service) endpointGroupView(r *http.Request, g *EndpointGroup) api.View {
	filters := map[string]any{}
	for k, v := range g.Filters {
		filters[k] = v
	}
	return api.View{"id": g.ID, "name": g.Name, "description": g.Description, "filters": filters,
		"links": map[string]any{"self": s.baseURL(r) + "/identity/v3/OS-EP-FILTER/endpoint_groups/" + g.ID}}
}

func readEndpointGroup(_ *http.Request, in *api.Input, old *EndpointGroup) (*EndpointGroup, error) {
	g := EndpointGroup{ID: api.NewHexID()}
	if old != nil {
		g = *old
		g.Name = str(in, "name", g.Name)
	} else {
		g.Name = required(in, "name")
	}
	g.Description = str(in, "description", g.Description)
	if in.Err != nil {
		return nil, in.Err
	}
	raw, ok := in.Obj["filters"]
	if !ok && old == nil {
		return nil, api.BadField("filters", "'filters' is a required property")
	}
	if ok {
		m, isMap := raw.(map[string]any)
		if !isMap || len(m) == 0 {
			return nil, api.BadField("filters", "must be an object of service_id, region_id and interface")
		}
		g.Filters = map[string]string{}
		for k, v := range m {
			sv, isStr := v.(string)
			if endpointFilters[k] == nil || !isStr {
				return nil, api.BadField("filters", "%q is not a filter: filters are service_id, region_id and interface, each a string", k)
			}
			g.Filters[k] = sv
		}
	}
	return &g, nil
}

func (s *Service) headEndpointGroup(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	if _, err := s.endpointGroups(r).Get(tx, api.PrincipalFrom(r.Context()), chi.URLParam(r, "id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// associate adds (idempotently) or removes a project's association with
// an endpoint or endpoint group.
func (s *Service) associate(kind string, add bool) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		project, target := assocParams(r, kind)
		a := EndpointAssoc{Kind: kind, ProjectID: project, TargetID: target}
		a.ID = endpointAssocID(kind, a.ProjectID, a.TargetID)
		if !add {
			if err := s.remove(r, tEndpointAssocs, a.ID); err != nil {
				return err
			}
			return noContent(w)
		}
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		if !exists(tx, tEndpointAssocs, a.ID) {
			if err := s.put(r, tEndpointAssocs, true, &a); err != nil {
				return err
			}
		}
		return noContent(w)
	}
}

// assocParams are the project and target of an association's path:
// /endpoint_groups/{id}/projects/{project}, /projects/{id}/endpoints/{target}.
func assocParams(r *http.Request, kind string) (project, target string) {
	if kind == "group" {
		return chi.URLParam(r, "project"), chi.URLParam(r, "id")
	}
	return chi.URLParam(r, "id"), chi.URLParam(r, "target")
}

// checkAssoc answers whether an association exists: 204 for an endpoint
// (HEAD), the project for an endpoint group (GET), as Keystone.
func (s *Service) checkAssoc(kind string) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		project, target := assocParams(r, kind)
		if !exists(tx, tEndpointAssocs, endpointAssocID(kind, project, target)) {
			return &api.Error{Status: http.StatusNotFound, Msg: "Could not find the association of project " + project + " with " + kind + " " + target + "."}
		}
		if kind == "group" {
			if p := store.Get[Project](tx, tProjects, project); p != nil {
				api.JSON(w, http.StatusOK, map[string]any{"project": s.projectView(r, p)})
				return nil
			}
		}
		return noContent(w)
	}
}

// listAssoc lists one side of the associations: of a project (its
// endpoints or endpoint groups), of an endpoint or a group (projects),
// or a group's endpoints.
func (s *Service) listAssoc(what string) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		id := chi.URLParam(r, "id")
		var views []api.View
		projects := func(kind string) {
			for _, a := range store.All[EndpointAssoc](tx, tEndpointAssocs, "target", id) {
				if p := store.Get[Project](tx, tProjects, a.ProjectID); a.Kind == kind && p != nil {
					views = append(views, s.projectView(r, p))
				}
			}
		}
		key := "projects"
		switch what {
		case "project-endpoints":
			key = "endpoints"
			if !exists(tx, tProjects, id) {
				return notFoundErr("project", id)
			}
			ids := projectEndpoints(tx, id)
			keys := make([]string, 0, len(ids))
			for e := range ids {
				keys = append(keys, e)
			}
			sort.Strings(keys)
			for _, e := range keys {
				if ep := store.Get[Endpoint](tx, tEndpoints, e); ep != nil {
					views = append(views, s.endpointView(r, ep))
				}
			}
		case "project-groups":
			key = "endpoint_groups"
			if !exists(tx, tProjects, id) {
				return notFoundErr("project", id)
			}
			for _, a := range store.All[EndpointAssoc](tx, tEndpointAssocs, "project", id) {
				if g := store.Get[EndpointGroup](tx, tEndpointGroups, a.TargetID); a.Kind == "group" && g != nil {
					views = append(views, s.endpointGroupView(r, g))
				}
			}
		case "endpoint-projects":
			if !exists(tx, tEndpoints, id) {
				return notFoundErr("endpoint", id)
			}
			projects("endpoint")
		case "group-projects":
			if !exists(tx, tEndpointGroups, id) {
				return notFoundErr("endpoint group", id)
			}
			projects("group")
		case "group-endpoints":
			key = "endpoints"
			g := store.Get[EndpointGroup](tx, tEndpointGroups, id)
			if g == nil {
				return notFoundErr("endpoint group", id)
			}
			for _, e := range g.endpoints(tx) {
				views = append(views, s.endpointView(r, e))
			}
		}
		if views == nil {
			views = []api.View{}
		}
		api.JSON(w, http.StatusOK, map[string]any{key: views, "links": s.links(r)})
		return nil
	}
}

func (s *Service) epFilterRoutes() []api.Route {
	const base = "/v3/OS-EP-FILTER"
	const admin = api.Admin
	return []api.Route{
		route("GET", base+"/endpoint_groups", admin, "identity:list_endpoint_groups", list(s, s.endpointGroups)),
		route("POST", base+"/endpoint_groups", admin, "identity:create_endpoint_group", create(s, s.endpointGroups, readEndpointGroup)),
		route("GET", base+"/endpoint_groups/{id}", admin, "identity:get_endpoint_group", show(s, s.endpointGroups)),
		route("HEAD", base+"/endpoint_groups/{id}", admin, "identity:get_endpoint_group", s.headEndpointGroup),
		route("PATCH", base+"/endpoint_groups/{id}", admin, "identity:update_endpoint_group", update(s, s.endpointGroups, readEndpointGroup)),
		route("DELETE", base+"/endpoint_groups/{id}", admin, "identity:delete_endpoint_group", s.deleteRow(tEndpointGroups)),
		route("GET", base+"/endpoint_groups/{id}/projects", admin, "identity:list_projects_associated_with_endpoint_group", s.listAssoc("group-projects")),
		route("GET", base+"/endpoint_groups/{id}/endpoints", admin, "identity:list_endpoints_associated_with_endpoint_group", s.listAssoc("group-endpoints")),
		route("PUT", base+"/endpoint_groups/{id}/projects/{project}", admin, "identity:add_endpoint_group_to_project", s.associate("group", true)),
		route("GET", base+"/endpoint_groups/{id}/projects/{project}", admin, "identity:get_endpoint_group_in_project", s.checkAssoc("group")),
		route("HEAD", base+"/endpoint_groups/{id}/projects/{project}", admin, "identity:get_endpoint_group_in_project", s.checkAssoc("group")),
		route("DELETE", base+"/endpoint_groups/{id}/projects/{project}", admin, "identity:remove_endpoint_group_from_project", s.associate("group", false)),
		route("GET", base+"/projects/{id}/endpoint_groups", admin, "identity:list_endpoint_groups_for_project", s.listAssoc("project-groups")),
		route("GET", base+"/projects/{id}/endpoints", admin, "identity:list_endpoints_for_project", s.listAssoc("project-endpoints")),
		route("PUT", base+"/projects/{id}/endpoints/{target}", admin, "identity:add_endpoint_to_project", s.associate("endpoint", true)),
		route("HEAD", base+"/projects/{id}/endpoints/{target}", admin, "identity:check_endpoint_in_project", s.checkAssoc("endpoint")),
		route("GET", base+"/projects/{id}/endpoints/{target}", admin, "identity:check_endpoint_in_project", s.checkAssoc("endpoint")),
		route("DELETE", base+"/projects/{id}/endpoints/{target}", admin, "identity:remove_endpoint_from_project", s.associate("endpoint", false)),
		route("GET", base+"/endpoints/{id}/projects", admin, "identity:list_projects_for_endpoint", s.listAssoc("endpoint-projects")),
	}
}
