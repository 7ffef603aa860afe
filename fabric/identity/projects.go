package identity

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// projects is the project collection. Listing every project is for
// admins (the route says so); a user reads a project it holds a role on
// through project().
func (s *Service) projects(r *http.Request) api.Collection[Project] {
	l := s.listing("projects")
	l.Filters = map[string]api.Filter{
		// Keystone's tag filters take a comma-separated list: tags needs
		// all of them, tags-any one; not-tags and not-tags-any negate.
		"tags":         tagFilter(true, false),
		"tags-any":     tagFilter(false, false),
		"not-tags":     tagFilter(true, true),
		"not-tags-any": tagFilter(false, true),
	}
	return api.Collection[Project]{
		Table: tProjects, One: "project", NotFound: notFoundOf("project"), Listing: l,
		Visible: func(p *api.Principal, pr *Project) bool { return p.IsAdmin() || p.ProjectID == pr.ID },
		View:    func(_ *memdb.Txn, _ *api.Principal, pr *Project) api.View { return s.projectView(r, pr) },
	}
}

func (s *Service) projectView(r *http.Request, p *Project) api.View {
	tags := p.Tags
	if tags == nil {
		tags = []string{}
	}
	parent := p.ParentID
	if parent == "" {
		parent = p.DomainID
	}
	return withExtras(p.Extra, api.View{"id": p.ID, "name": p.Name, "domain_id": p.DomainID, "parent_id": parent, "description": p.Description,
		"enabled": p.Enabled, "is_domain": false, "tags": tags, "options": map[string]any{}, "links": s.self(r, "projects", p.ID)})
}

// tagFilter matches a project's tags against a comma-separated list:
// all of them (or any, when !all), negated when not.
func tagFilter(all, not bool) api.Filter {
	return func(v api.View, values []string) (bool, error) {
		have, _ := v["tags"].([]string)
		for _, want := range values {
			if api.HasTags(have, strings.Split(want, ","), all) == not {
				return false, nil
			}
		}
		return true, nil
	}
}

var projectFields = []string{"name", "domain_id", "parent_id", "description", "enabled", "is_domain", "tags", "options"}

func readProject(r *http.Request, in *api.Input, old *Project) (*Project, error) {
	p := Project{ID: api.NewHexID(), Enabled: true, Tags: []string{}}
	if old != nil {
		p = *old
	}
	p.Name = name(in, p.Name, old == nil, 64)
	p.Description = str(in, "description", p.Description)
	p.Enabled = boolean(in, "enabled", p.Enabled)
	p.Tags = strs(in, "tags", p.Tags)
	checkTags(in, p.Tags)
	domain := str(in, "domain_id", p.DomainID)
	parent := str(in, "parent_id", p.ParentID)
	if boolean(in, "is_domain", false) {
		// A new one goes to createProjectOrDomain; a project stays one.
		in.Fail(api.BadField("is_domain", "a project cannot become a domain"))
	}
	p.Extra = mergeExtras(p.Extra, in, projectFields...)
	if in.Err != nil {
		return nil, in.Err
	}
	if old != nil {
		if domain != p.DomainID {
			return nil, api.BadField("domain_id", "a project cannot move to another domain")
		}
		return &p, nil
	}
	p.DomainID, p.ParentID = domain, parent
	if p.DomainID == "" {
		p.DomainID = api.PrincipalFrom(r.Context()).DomainID
		if p.DomainID == "" {
			p.DomainID = "default"
		}
	}
	if p.ParentID == "" {
		p.ParentID = p.DomainID
	}
	return &p, nil
}

// project is the project in the URL, if the caller is an admin or holds
// a role on it; others are told 403, as Keystone does.
func (s *Service) project(r *http.Request) (*Project, error) {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return nil, err
	}
	id := chi.URLParam(r, "id")
	pr := store.Get[Project](tx, tProjects, id)
	if pr == nil {
		return nil, notFoundErr("project", id)
	}
	p := api.PrincipalFrom(r.Context())
	if !p.IsAdmin() && len(effectiveRoles(tx, p.UserID, "project", id)) == 0 {
		return nil, errForbidden
	}
	return pr, nil
}

func (s *Service) showProject(w http.ResponseWriter, r *http.Request) error {
	pr, err := s.project(r)
	if err != nil {
		return err
	}
	return api.Show(w, r, "project", s.projectView(r, pr))
}

// Project tags.

var errNoTag = &api.Error{Status: http.StatusNotFound, Msg: "Could not find tag."}

func (s *Service) listTags(w http.ResponseWriter, r *http.Request) error {
	pr, err := s.project(r)
	if err != nil {
		return err
	}
	tags := pr.Tags
	if tags == nil {
		tags = []string{}
	}
	api.JSON(w, http.StatusOK, map[string]any{"tags": tags})
	return nil
}

func (s *Service) checkTag(w http.ResponseWriter, r *http.Request) error {
	pr, err := s.project(r)
	if err != nil {
		return err
	}
	if !contains(pr.Tags, chi.URLParam(r, "tag")) {
		return errNoTag
	}
	return noContent(w)
}

func (s *Service) replaceTags(w http.ResponseWriter, r *http.Request) error {
	pr, err := s.project(r)
	if err != nil {
		return err
	}
	var req struct {
		Tags []string `json:"tags"`
	}
	if err := api.Decode(r, &req); err != nil {
		return err
	}
	in := api.NewInput(api.Object{"tags": toAny(req.Tags)}, wording{})
	p := *pr
	p.Tags = strs(in, "tags", []string{})
	checkTags(in, p.Tags)
	if in.Err != nil {
		return in.Err
	}
	if err := s.put(r, tProjects, false, &p); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"tags": p.Tags})
	return nil
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// tag adds, removes or clears tags of a project.
func (s *Service) tag(op string) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		pr, err := s.project(r)
		if err != nil {
			return err
		}
		p := *pr
		t := chi.URLParam(r, "tag")
		switch op {
		case "add":
			in := api.NewInput(nil, wording{})
			checkTags(in, append(append([]string{}, p.Tags...), t))
			if in.Err != nil {
				return in.Err
			}
			if !contains(p.Tags, t) {
				p.Tags = append(append([]string{}, p.Tags...), t)
			}
		case "remove":
			if !contains(p.Tags, t) {
				return errNoTag
			}
			var keep []string
			for _, x := range p.Tags {
				if x != t {
					keep = append(keep, x)
				}
			}
			p.Tags = keep
		case "clear":
			p.Tags = []string{}
		}
		if err := s.put(r, tProjects, false, &p); err != nil {
			return err
		}
		if op == "add" {
			w.Header().Set("Location", s.baseURL(r)+"/identity/v3/projects/"+p.ID+"/tags/"+t)
			api.JSON(w, http.StatusCreated, nil)
			return nil
		}
		return noContent(w)
	}
}

// Projects acting as domains (is_domain): Keystone keeps each domain as
// a project with is_domain true, and its project API reaches them. Here
// domains have their own table; these handlers show a domain as that
// project and write it through the domain's rules (a unique name, no
// deletion while enabled).

// domainAsProject is a domain as the project API shows it.
func (s *Service) domainAsProject(r *http.Request, d *Domain) api.View {
	return api.View{"id": d.ID, "name": d.Name, "domain_id": nil, "parent_id": nil, "description": d.Description,
		"enabled": d.Enabled, "is_domain": true, "tags": []string{}, "options": map[string]any{}, "links": s.self(r, "projects", d.ID)}
}

// projectsOrDomains lists projects, or with is_domain=true the domains
// as projects.
func (s *Service) projectsOrDomains(projects api.HandlerFunc) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		// Clients send Python's spelling too (is_domain=True).
		if asked, _ := strconv.ParseBool(r.URL.Query().Get("is_domain")); !asked {
			return projects(w, r)
		}
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		q := r.URL.Query()
		out := []api.View{}
		for _, d := range store.All[Domain](tx, tDomains, "id") {
			if q.Has("name") && q.Get("name") != d.Name || q.Has("enabled") && strconv.FormatBool(d.Enabled) != strings.ToLower(q.Get("enabled")) {
				continue
			}
			out = append(out, s.domainAsProject(r, d))
		}
		api.JSON(w, http.StatusOK, map[string]any{"projects": out, "links": s.links(r)})
		return nil
	}
}

// createProjectOrDomain creates a project, or with is_domain true a
// domain.
func (s *Service) createProjectOrDomain(projects api.HandlerFunc) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		raw, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, api.MaxBodyBytes))
		if err != nil {
			return api.BadField("project", "the body cannot be read")
		}
		r.Body = io.NopCloser(bytes.NewReader(raw))
		var peek struct {
			Project struct {
				IsDomain bool `json:"is_domain"`
			} `json:"project"`
		}
		if json.Unmarshal(raw, &peek) != nil || !peek.Project.IsDomain {
			return projects(w, r)
		}
		in, err := body(r, "project")
		if err != nil {
			return err
		}
		for _, f := range []string{"domain_id", "parent_id"} {
			if in.Has(f) && !in.IsNull(f) {
				return api.BadField(f, "a project acting as a domain has no %s", f)
			}
		}
		if onlyFields(in, false, "name", "description", "enabled", "is_domain", "domain_id", "parent_id"); in.Err != nil {
			return in.Err
		}
		d, err := readDomain(r, in, nil)
		if err != nil {
			return err
		}
		if err := s.put(r, tDomains, true, d); err != nil {
			return err
		}
		api.JSON(w, http.StatusCreated, map[string]any{"project": s.domainAsProject(r, d)})
		return nil
	}
}

// onDomainProject answers for a project id that is a domain's with
// domain, and for any other with project.
func (s *Service) onDomainProject(project api.HandlerFunc, domain func(w http.ResponseWriter, r *http.Request, tx *memdb.Txn, d *Domain) error) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		id := chi.URLParam(r, "id")
		d := store.Get[Domain](tx, tDomains, id)
		if d == nil || store.Get[Project](tx, tProjects, id) != nil || !api.PrincipalFrom(r.Context()).IsAdmin() {
			return project(w, r)
		}
		return domain(w, r, tx, d)
	}
}

func (s *Service) showDomainProject(w http.ResponseWriter, r *http.Request, _ *memdb.Txn, d *Domain) error {
	return api.Show(w, r, "project", s.domainAsProject(r, d))
}

func (s *Service) updateDomainProject(w http.ResponseWriter, r *http.Request, _ *memdb.Txn, old *Domain) error {
	in, err := body(r, "project")
	if err != nil {
		return err
	}
	if onlyFields(in, true, "name", "description", "enabled", "is_domain"); in.Err != nil {
		return in.Err
	}
	if in.Has("is_domain") && !boolean(in, "is_domain", true) {
		return api.BadField("is_domain", "a project acting as a domain stays one")
	}
	d, err := readDomain(r, in, old)
	if err != nil {
		return err
	}
	if err := s.put(r, tDomains, false, d); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"project": s.domainAsProject(r, d)})
	return nil
}

func (s *Service) deleteDomainProject(w http.ResponseWriter, r *http.Request, _ *memdb.Txn, d *Domain) error {
	if err := s.remove(r, tDomains, d.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
