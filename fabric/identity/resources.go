package identity

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"
	"golang.org/x/crypto/bcrypt"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Shared plumbing of the CRUD handlers.

func (s *Service) read(w http.ResponseWriter, r *http.Request) (*memdb.Txn, bool) {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		api.Fail(w, r, writeError, err)
		return nil, false
	}
	return tx, true
}

func (s *Service) propose(w http.ResponseWriter, r *http.Request, typ string, body any) bool {
	if _, err := s.cfg.Repl.Propose(r.Context(), typ, body); err != nil {
		api.Fail(w, r, writeError, err)
		return false
	}
	return true
}

func (s *Service) put(w http.ResponseWriter, r *http.Request, table string, create bool, row any) bool {
	raw, err := jsonRaw(row)
	if err != nil {
		api.Fail(w, r, writeError, err)
		return false
	}
	return s.propose(w, r, cmdPut, putCmd{Table: table, Create: create, Row: raw})
}

func (s *Service) deleteRow(table string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.propose(w, r, cmdDelete, deleteCmd{Table: table, ID: chi.URLParam(r, "id"), At: s.cfg.Now().UTC()}) {
			w.WriteHeader(http.StatusNoContent)
		}
	}
}

// match reports whether a query filter (if given) equals value.
func match(r *http.Request, param, value string) bool {
	q := r.URL.Query()
	if !q.Has(param) {
		return true
	}
	return q.Get(param) == value
}

func matchBool(r *http.Request, param string, value bool) bool {
	q := r.URL.Query()
	if !q.Has(param) {
		return true
	}
	v := strings.ToLower(q.Get(param))
	want := !(v == "false" || v == "0" || v == "no")
	return want == value
}

func listOut[T any](w http.ResponseWriter, r *http.Request, s *Service, key string, items []*T, id func(*T) string, view func(*T) map[string]any) {
	page, _, err := api.Page(r, items, id)
	if err != nil {
		api.Fail(w, r, writeError, err)
		return
	}
	out := make([]map[string]any, 0, len(page))
	for _, it := range page {
		out = append(out, view(it))
	}
	api.JSON(w, http.StatusOK, map[string]any{key: out, "links": s.links(r)})
}

func notFoundErr(kind, id string) error {
	return api.Errorf(http.StatusNotFound, "Could not find %s: %s.", kind, id)
}

// Domains.

func (s *Service) domainView(r *http.Request, d *Domain) map[string]any {
	return map[string]any{"id": d.ID, "name": d.Name, "description": d.Description, "enabled": d.Enabled, "tags": []string{}, "options": map[string]any{}, "links": s.self(r, "domains", d.ID)}
}

func (s *Service) listDomains(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	p := api.PrincipalFrom(r.Context())
	var out []*Domain
	for _, d := range store.All[Domain](tx, tDomains, "id") {
		if (p.IsAdmin() || d.ID == p.UserDomainID) && match(r, "name", d.Name) && matchBool(r, "enabled", d.Enabled) {
			out = append(out, d)
		}
	}
	listOut(w, r, s, "domains", out, func(d *Domain) string { return d.ID }, func(d *Domain) map[string]any { return s.domainView(r, d) })
}

func (s *Service) showDomain(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	id := chi.URLParam(r, "id")
	d := store.Get[Domain](tx, tDomains, id)
	p := api.PrincipalFrom(r.Context())
	if d == nil || !(p.IsAdmin() || p.UserDomainID == id || p.DomainID == id) {
		api.Fail(w, r, writeError, notFoundErr("domain", id))
		return
	}
	api.JSON(w, http.StatusOK, map[string]any{"domain": s.domainView(r, d)})
}

func (s *Service) createDomain(w http.ResponseWriter, r *http.Request) {
	o, err := body(r, "domain")
	if err != nil {
		api.Fail(w, r, writeError, err)
		return
	}
	rd := reader{o: o}
	d := Domain{ID: api.NewHexID(), Name: rd.str("name", true, ""), Description: rd.str("description", false, ""), Enabled: rd.boolean("enabled", true)}
	rd.maxLen("name", d.Name, 64)
	if rd.err != nil {
		api.Fail(w, r, writeError, rd.err)
		return
	}
	if s.put(w, r, tDomains, true, &d) {
		api.JSON(w, http.StatusCreated, map[string]any{"domain": s.domainView(r, &d)})
	}
}

func (s *Service) updateDomain(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	id := chi.URLParam(r, "id")
	old := store.Get[Domain](tx, tDomains, id)
	if old == nil {
		api.Fail(w, r, writeError, notFoundErr("domain", id))
		return
	}
	o, err := body(r, "domain")
	if err != nil {
		api.Fail(w, r, writeError, err)
		return
	}
	d := *old
	rd := reader{o: o}
	d.Name = rd.str("name", false, d.Name)
	d.Description = rd.str("description", false, d.Description)
	d.Enabled = rd.boolean("enabled", d.Enabled)
	rd.maxLen("name", d.Name, 64)
	if rd.err != nil {
		api.Fail(w, r, writeError, rd.err)
		return
	}
	if s.put(w, r, tDomains, false, &d) {
		api.JSON(w, http.StatusOK, map[string]any{"domain": s.domainView(r, &d)})
	}
}

// Projects.

func (s *Service) projectView(r *http.Request, p *Project) map[string]any {
	v := map[string]any{}
	for k, x := range p.Extra {
		v[k] = x
	}
	tags := p.Tags
	if tags == nil {
		tags = []string{}
	}
	parent := p.ParentID
	if parent == "" {
		parent = p.DomainID
	}
	for k, x := range map[string]any{"id": p.ID, "name": p.Name, "domain_id": p.DomainID, "parent_id": parent, "description": p.Description,
		"enabled": p.Enabled, "is_domain": false, "tags": tags, "options": map[string]any{}, "links": s.self(r, "projects", p.ID)} {
		v[k] = x
	}
	return v
}

func (s *Service) projectViews(r *http.Request, ps []*Project) []map[string]any {
	out := make([]map[string]any, 0, len(ps))
	for _, p := range ps {
		out = append(out, s.projectView(r, p))
	}
	return out
}

func (s *Service) listProjects(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	p := api.PrincipalFrom(r.Context())
	var out []*Project
	for _, pr := range store.All[Project](tx, tProjects, "id") {
		visible := p.IsAdmin() || len(effectiveRoles(tx, p.UserID, "project", pr.ID)) > 0
		if visible && match(r, "name", pr.Name) && match(r, "domain_id", pr.DomainID) && match(r, "parent_id", pr.ParentID) && matchBool(r, "enabled", pr.Enabled) && hasTags(r, pr.Tags) {
			out = append(out, pr)
		}
	}
	listOut(w, r, s, "projects", out, func(p *Project) string { return p.ID }, func(p *Project) map[string]any { return s.projectView(r, p) })
}

func (s *Service) project(w http.ResponseWriter, r *http.Request) (*Project, bool) {
	tx, ok := s.read(w, r)
	if !ok {
		return nil, false
	}
	id := chi.URLParam(r, "id")
	pr := store.Get[Project](tx, tProjects, id)
	if pr == nil {
		api.Fail(w, r, writeError, notFoundErr("project", id))
		return nil, false
	}
	p := api.PrincipalFrom(r.Context())
	if !p.IsAdmin() && len(effectiveRoles(tx, p.UserID, "project", id)) == 0 {
		forbidden(w, r)
		return nil, false
	}
	return pr, true
}

func (s *Service) listTags(w http.ResponseWriter, r *http.Request) {
	if pr, ok := s.project(w, r); ok {
		tags := pr.Tags
		if tags == nil {
			tags = []string{}
		}
		api.JSON(w, http.StatusOK, map[string]any{"tags": tags})
	}
}

func (s *Service) checkTag(w http.ResponseWriter, r *http.Request) {
	if pr, ok := s.project(w, r); ok {
		if !contains(pr.Tags, chi.URLParam(r, "tag")) {
			writeError(w, r, api.Problem{Status: http.StatusNotFound, Msg: "Could not find tag."})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *Service) replaceTags(w http.ResponseWriter, r *http.Request) {
	pr, ok := s.project(w, r)
	if !ok {
		return
	}
	var req struct {
		Tags []string `json:"tags"`
	}
	if err := api.Decode(r, &req); err != nil {
		api.Fail(w, r, writeError, err)
		return
	}
	rd := reader{}
	rd.tags(req.Tags)
	if rd.err != nil {
		api.Fail(w, r, writeError, rd.err)
		return
	}
	p := *pr
	p.Tags = append([]string{}, req.Tags...)
	if s.put(w, r, tProjects, false, &p) {
		api.JSON(w, http.StatusOK, map[string]any{"tags": p.Tags})
	}
}

// tag adds, removes or clears tags of a project.
func (s *Service) tag(op string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		pr, ok := s.project(w, r)
		if !ok {
			return
		}
		p := *pr
		t := chi.URLParam(r, "tag")
		switch op {
		case "add":
			rd := reader{}
			rd.tags(append(append([]string{}, p.Tags...), t))
			if rd.err != nil {
				api.Fail(w, r, writeError, rd.err)
				return
			}
			if !contains(p.Tags, t) {
				p.Tags = append(append([]string{}, p.Tags...), t)
			}
		case "remove":
			if !contains(p.Tags, t) {
				writeError(w, r, api.Problem{Status: http.StatusNotFound, Msg: "Could not find tag."})
				return
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
		if !s.put(w, r, tProjects, false, &p) {
			return
		}
		if op == "add" {
			w.Header().Set("Location", s.baseURL(r)+"/identity/v3/projects/"+p.ID+"/tags/"+t)
			api.JSON(w, http.StatusCreated, nil)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func hasTags(r *http.Request, tags []string) bool {
	want := r.URL.Query().Get("tags")
	if want == "" {
		return true
	}
	for _, t := range strings.Split(want, ",") {
		if !contains(tags, t) {
			return false
		}
	}
	return true
}

func (s *Service) showProject(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	id := chi.URLParam(r, "id")
	pr := store.Get[Project](tx, tProjects, id)
	p := api.PrincipalFrom(r.Context())
	if pr == nil {
		api.Fail(w, r, writeError, notFoundErr("project", id))
		return
	}
	if !p.IsAdmin() && len(effectiveRoles(tx, p.UserID, "project", id)) == 0 {
		forbidden(w, r)
		return
	}
	api.JSON(w, http.StatusOK, map[string]any{"project": s.projectView(r, pr)})
}

var projectFields = []string{"name", "domain_id", "parent_id", "description", "enabled", "is_domain", "tags", "options"}

func (s *Service) createProject(w http.ResponseWriter, r *http.Request) {
	o, err := body(r, "project")
	if err != nil {
		api.Fail(w, r, writeError, err)
		return
	}
	rd := reader{o: o}
	p := Project{ID: api.NewHexID(), Name: rd.str("name", true, ""), DomainID: rd.str("domain_id", false, ""), ParentID: rd.str("parent_id", false, ""),
		Description: rd.str("description", false, ""), Enabled: rd.boolean("enabled", true), Tags: rd.strs("tags", []string{}), Extra: o.extras(projectFields...)}
	isDomain := rd.boolean("is_domain", false)
	rd.maxLen("name", p.Name, 64)
	rd.tags(p.Tags)
	if rd.err != nil {
		api.Fail(w, r, writeError, rd.err)
		return
	}
	if isDomain {
		api.Fail(w, r, writeError, api.BadField("is_domain", "projects acting as domains are not supported"))
		return
	}
	if p.DomainID == "" {
		p.DomainID = api.PrincipalFrom(r.Context()).DomainID
		if p.DomainID == "" {
			p.DomainID = "default"
		}
	}
	if p.ParentID == "" {
		p.ParentID = p.DomainID
	}
	if s.put(w, r, tProjects, true, &p) {
		api.JSON(w, http.StatusCreated, map[string]any{"project": s.projectView(r, &p)})
	}
}

func (s *Service) updateProject(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	id := chi.URLParam(r, "id")
	old := store.Get[Project](tx, tProjects, id)
	if old == nil {
		api.Fail(w, r, writeError, notFoundErr("project", id))
		return
	}
	o, err := body(r, "project")
	if err != nil {
		api.Fail(w, r, writeError, err)
		return
	}
	p := *old
	rd := reader{o: o}
	p.Name = rd.str("name", false, p.Name)
	p.Description = rd.str("description", false, p.Description)
	p.Enabled = rd.boolean("enabled", p.Enabled)
	p.Tags = rd.strs("tags", p.Tags)
	rd.maxLen("name", p.Name, 64)
	rd.tags(p.Tags)
	if d := rd.str("domain_id", false, p.DomainID); rd.err == nil && d != p.DomainID {
		api.Fail(w, r, writeError, api.BadField("domain_id", "a project cannot move to another domain"))
		return
	}
	if rd.err != nil {
		api.Fail(w, r, writeError, rd.err)
		return
	}
	if ex := o.extras(projectFields...); ex != nil {
		p.Extra = map[string]any{}
		for k, v := range old.Extra {
			p.Extra[k] = v
		}
		for k, v := range ex {
			p.Extra[k] = v
		}
	}
	if s.put(w, r, tProjects, false, &p) {
		api.JSON(w, http.StatusOK, map[string]any{"project": s.projectView(r, &p)})
	}
}

// Users.

func (s *Service) userView(r *http.Request, u *User) map[string]any {
	v := map[string]any{}
	for k, x := range u.Extra {
		v[k] = x
	}
	for k, x := range map[string]any{"id": u.ID, "name": u.Name, "domain_id": u.DomainID, "enabled": u.Enabled, "password_expires_at": nil,
		"options": map[string]any{}, "links": s.self(r, "users", u.ID)} {
		v[k] = x
	}
	if u.DefaultProjectID != "" {
		v["default_project_id"] = u.DefaultProjectID
	}
	if u.Description != "" {
		v["description"] = u.Description
	}
	if u.Email != "" {
		v["email"] = u.Email
	}
	return v
}

func (s *Service) listUsers(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	var out []*User
	for _, u := range store.All[User](tx, tUsers, "id") {
		if match(r, "name", u.Name) && match(r, "domain_id", u.DomainID) && matchBool(r, "enabled", u.Enabled) {
			out = append(out, u)
		}
	}
	listOut(w, r, s, "users", out, func(u *User) string { return u.ID }, func(u *User) map[string]any { return s.userView(r, u) })
}

// self reports whether the caller is the user in the URL, or an admin.
func selfOrAdmin(r *http.Request) bool {
	p := api.PrincipalFrom(r.Context())
	return p.IsAdmin() || p.UserID == chi.URLParam(r, "id")
}

func (s *Service) showUser(w http.ResponseWriter, r *http.Request) {
	if !selfOrAdmin(r) {
		forbidden(w, r)
		return
	}
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	id := chi.URLParam(r, "id")
	u := store.Get[User](tx, tUsers, id)
	if u == nil {
		api.Fail(w, r, writeError, notFoundErr("user", id))
		return
	}
	api.JSON(w, http.StatusOK, map[string]any{"user": s.userView(r, u)})
}

var userFields = []string{"name", "domain_id", "enabled", "password", "default_project_id", "description", "email", "options"}

func (s *Service) hash(password string) ([]byte, error) {
	if len(password) > 72 {
		return nil, api.BadField("password", "must be at most 72 bytes")
	}
	return bcrypt.GenerateFromPassword([]byte(password), s.cfg.BcryptCost)
}

func (s *Service) createUser(w http.ResponseWriter, r *http.Request) {
	o, err := body(r, "user")
	if err != nil {
		api.Fail(w, r, writeError, err)
		return
	}
	rd := reader{o: o}
	u := User{ID: api.NewHexID(), Name: rd.str("name", true, ""), DomainID: rd.str("domain_id", false, ""), Enabled: rd.boolean("enabled", true),
		DefaultProjectID: rd.str("default_project_id", false, ""), Description: rd.str("description", false, ""), Email: rd.str("email", false, ""),
		Extra: o.extras(userFields...)}
	password := rd.str("password", false, "")
	if rd.err != nil {
		api.Fail(w, r, writeError, rd.err)
		return
	}
	if u.DomainID == "" {
		u.DomainID = "default"
	}
	if password != "" {
		if u.PasswordHash, err = s.hash(password); err != nil {
			api.Fail(w, r, writeError, err)
			return
		}
	}
	if u.DefaultProjectID != "" {
		tx, ok := s.read(w, r)
		if !ok {
			return
		}
		if store.Get[Project](tx, tProjects, u.DefaultProjectID) == nil {
			api.Fail(w, r, writeError, api.BadField("default_project_id", "project %s does not exist", u.DefaultProjectID))
			return
		}
	}
	if s.put(w, r, tUsers, true, &u) {
		api.JSON(w, http.StatusCreated, map[string]any{"user": s.userView(r, &u)})
	}
}

func (s *Service) updateUser(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	id := chi.URLParam(r, "id")
	old := store.Get[User](tx, tUsers, id)
	if old == nil {
		api.Fail(w, r, writeError, notFoundErr("user", id))
		return
	}
	o, err := body(r, "user")
	if err != nil {
		api.Fail(w, r, writeError, err)
		return
	}
	u := *old
	rd := reader{o: o}
	u.Name = rd.str("name", false, u.Name)
	u.Enabled = rd.boolean("enabled", u.Enabled)
	u.DefaultProjectID = rd.str("default_project_id", false, u.DefaultProjectID)
	u.Description = rd.str("description", false, u.Description)
	u.Email = rd.str("email", false, u.Email)
	password := rd.str("password", false, "")
	if rd.err != nil {
		api.Fail(w, r, writeError, rd.err)
		return
	}
	if ex := o.extras(userFields...); ex != nil {
		u.Extra = map[string]any{}
		for k, v := range old.Extra {
			u.Extra[k] = v
		}
		for k, v := range ex {
			u.Extra[k] = v
		}
	}
	if !s.put(w, r, tUsers, false, &u) {
		return
	}
	if password != "" {
		h, err := s.hash(password)
		if err != nil {
			api.Fail(w, r, writeError, err)
			return
		}
		if !s.propose(w, r, cmdSetPassword, passwordCmd{UserID: u.ID, Hash: h, At: s.cfg.Now().UTC()}) {
			return
		}
	}
	api.JSON(w, http.StatusOK, map[string]any{"user": s.userView(r, &u)})
}

// changePassword is the self-service change; it revokes the user's tokens.
func (s *Service) changePassword(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	o, err := body(r, "user")
	if err != nil {
		api.Fail(w, r, writeError, err)
		return
	}
	rd := reader{o: o}
	orig := rd.str("original_password", true, "")
	next := rd.str("password", true, "")
	if rd.err != nil {
		api.Fail(w, r, writeError, rd.err)
		return
	}
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	u := store.Get[User](tx, tUsers, id)
	if u == nil || s.checkPassword(u, orig) != nil {
		writeError(w, r, api.Problem{Status: http.StatusUnauthorized, Msg: "The request you have made requires authentication."})
		return
	}
	h, err := s.hash(next)
	if err != nil {
		api.Fail(w, r, writeError, err)
		return
	}
	if s.propose(w, r, cmdSetPassword, passwordCmd{UserID: id, Hash: h, At: s.cfg.Now().UTC()}) {
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *Service) listUserProjects(w http.ResponseWriter, r *http.Request) {
	if !selfOrAdmin(r) {
		forbidden(w, r)
		return
	}
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	id := chi.URLParam(r, "id")
	if store.Get[User](tx, tUsers, id) == nil {
		api.Fail(w, r, writeError, notFoundErr("user", id))
		return
	}
	listOut(w, r, s, "projects", userProjects(tx, id), func(p *Project) string { return p.ID }, func(p *Project) map[string]any { return s.projectView(r, p) })
}

func (s *Service) listUserGroups(w http.ResponseWriter, r *http.Request) {
	if !selfOrAdmin(r) {
		forbidden(w, r)
		return
	}
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	id := chi.URLParam(r, "id")
	if store.Get[User](tx, tUsers, id) == nil {
		api.Fail(w, r, writeError, notFoundErr("user", id))
		return
	}
	var out []*Group
	for _, m := range store.All[Membership](tx, tMembers, "user", id) {
		if g := store.Get[Group](tx, tGroups, m.GroupID); g != nil {
			out = append(out, g)
		}
	}
	listOut(w, r, s, "groups", out, func(g *Group) string { return g.ID }, func(g *Group) map[string]any { return s.groupView(r, g) })
}

// Roles.

func (s *Service) roleView(r *http.Request, ro *Role) map[string]any {
	var dom any
	if ro.DomainID != "" {
		dom = ro.DomainID
	}
	return map[string]any{"id": ro.ID, "name": ro.Name, "domain_id": dom, "description": ro.Description, "options": map[string]any{}, "links": s.self(r, "roles", ro.ID)}
}

func (s *Service) listRoles(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	var out []*Role
	for _, ro := range store.All[Role](tx, tRoles, "id") {
		if match(r, "name", ro.Name) && match(r, "domain_id", ro.DomainID) && (r.URL.Query().Has("domain_id") || ro.DomainID == "") {
			out = append(out, ro)
		}
	}
	listOut(w, r, s, "roles", out, func(ro *Role) string { return ro.ID }, func(ro *Role) map[string]any { return s.roleView(r, ro) })
}

func (s *Service) showRole(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	id := chi.URLParam(r, "id")
	ro := store.Get[Role](tx, tRoles, id)
	if ro == nil {
		api.Fail(w, r, writeError, notFoundErr("role", id))
		return
	}
	api.JSON(w, http.StatusOK, map[string]any{"role": s.roleView(r, ro)})
}

func (s *Service) createRole(w http.ResponseWriter, r *http.Request) {
	o, err := body(r, "role")
	if err != nil {
		api.Fail(w, r, writeError, err)
		return
	}
	rd := reader{o: o}
	ro := Role{ID: api.NewHexID(), Name: rd.str("name", true, ""), DomainID: rd.str("domain_id", false, ""), Description: rd.str("description", false, "")}
	if rd.err != nil {
		api.Fail(w, r, writeError, rd.err)
		return
	}
	if s.put(w, r, tRoles, true, &ro) {
		api.JSON(w, http.StatusCreated, map[string]any{"role": s.roleView(r, &ro)})
	}
}

func (s *Service) updateRole(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	id := chi.URLParam(r, "id")
	old := store.Get[Role](tx, tRoles, id)
	if old == nil {
		api.Fail(w, r, writeError, notFoundErr("role", id))
		return
	}
	o, err := body(r, "role")
	if err != nil {
		api.Fail(w, r, writeError, err)
		return
	}
	ro := *old
	rd := reader{o: o}
	ro.Name = rd.str("name", false, ro.Name)
	ro.Description = rd.str("description", false, ro.Description)
	if rd.err != nil {
		api.Fail(w, r, writeError, rd.err)
		return
	}
	if s.put(w, r, tRoles, false, &ro) {
		api.JSON(w, http.StatusOK, map[string]any{"role": s.roleView(r, &ro)})
	}
}

// Grants (role assignments).

var singularOf = map[string]string{"projects": "project", "domains": "domain", "users": "user", "groups": "group"}

func (s *Service) grant(scope, actor string, add bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		st, at := singularOf[scope], singularOf[actor]
		a := Assignment{ActorType: at, ActorID: chi.URLParam(r, "actor"), ScopeType: st, ScopeID: chi.URLParam(r, "scope"), RoleID: chi.URLParam(r, "role")}
		a.ID = assignmentID(a.ActorType, a.ActorID, a.ScopeType, a.ScopeID, a.RoleID)
		if add {
			tx, ok := s.read(w, r)
			if !ok {
				return
			}
			if exists(tx, tAssignments, a.ID) {
				w.WriteHeader(http.StatusNoContent)
				return
			}
			if s.put(w, r, tAssignments, true, &a) {
				w.WriteHeader(http.StatusNoContent)
			}
			return
		}
		if s.propose(w, r, cmdDelete, deleteCmd{Table: tAssignments, ID: a.ID}) {
			w.WriteHeader(http.StatusNoContent)
		}
	}
}

func (s *Service) checkGrant(scope, actor string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tx, ok := s.read(w, r)
		if !ok {
			return
		}
		id := assignmentID(singularOf[actor], chi.URLParam(r, "actor"), singularOf[scope], chi.URLParam(r, "scope"), chi.URLParam(r, "role"))
		if !exists(tx, tAssignments, id) {
			writeError(w, r, api.Problem{Status: http.StatusNotFound, Msg: "Could not find role assignment."})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *Service) listGrants(scope, actor string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tx, ok := s.read(w, r)
		if !ok {
			return
		}
		var out []*Role
		for _, a := range store.All[Assignment](tx, tAssignments, "actor", singularOf[actor], chi.URLParam(r, "actor")) {
			if a.ScopeType == singularOf[scope] && a.ScopeID == chi.URLParam(r, "scope") {
				if ro := store.Get[Role](tx, tRoles, a.RoleID); ro != nil {
					out = append(out, ro)
				}
			}
		}
		listOut(w, r, s, "roles", out, func(ro *Role) string { return ro.ID }, func(ro *Role) map[string]any { return s.roleView(r, ro) })
	}
}

// listAssignments is GET /v3/role_assignments with Keystone's filters.
// Non-admins may list only their own.
func (s *Service) listAssignments(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p := api.PrincipalFrom(r.Context())
	if !p.IsAdmin() && q.Get("user.id") != p.UserID {
		forbidden(w, r)
		return
	}
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	effective := q.Has("effective")
	names := q.Has("include_names")
	type row struct {
		a     Assignment
		group string // set when the assignment came through this group (effective)
	}
	var rows []row
	for _, a := range store.All[Assignment](tx, tAssignments, "id") {
		if effective && a.ActorType == "group" {
			for _, m := range store.All[Membership](tx, tMembers, "group", a.ActorID) {
				b := *a
				b.ActorType, b.ActorID = "user", m.UserID
				rows = append(rows, row{a: b, group: a.ActorID})
			}
			continue
		}
		rows = append(rows, row{a: *a})
	}
	out := []map[string]any{}
	for _, rw := range rows {
		a := rw.a
		if (q.Has("user.id") && !(a.ActorType == "user" && a.ActorID == q.Get("user.id"))) ||
			(q.Has("group.id") && !(a.ActorType == "group" && a.ActorID == q.Get("group.id"))) ||
			(q.Has("scope.project.id") && !(a.ScopeType == "project" && a.ScopeID == q.Get("scope.project.id"))) ||
			(q.Has("scope.domain.id") && !(a.ScopeType == "domain" && a.ScopeID == q.Get("scope.domain.id"))) ||
			(q.Has("role.id") && a.RoleID != q.Get("role.id")) {
			continue
		}
		v := map[string]any{
			"role":      map[string]any{"id": a.RoleID},
			"scope":     map[string]any{a.ScopeType: map[string]any{"id": a.ScopeID}},
			a.ActorType: map[string]any{"id": a.ActorID},
			"links":     map[string]any{"assignment": s.baseURL(r) + "/identity/v3/" + a.ScopeType + "s/" + a.ScopeID + "/" + a.ActorType + "s/" + a.ActorID + "/roles/" + a.RoleID},
		}
		if rw.group != "" {
			v["links"].(map[string]any)["membership"] = s.baseURL(r) + "/identity/v3/groups/" + rw.group + "/users/" + a.ActorID
		}
		if names {
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
		}
		out = append(out, v)
	}
	api.JSON(w, http.StatusOK, map[string]any{"role_assignments": out, "links": s.links(r)})
}

// Groups.

func (s *Service) groupView(r *http.Request, g *Group) map[string]any {
	return map[string]any{"id": g.ID, "name": g.Name, "domain_id": g.DomainID, "description": g.Description, "links": s.self(r, "groups", g.ID)}
}

func (s *Service) listGroups(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	var out []*Group
	for _, g := range store.All[Group](tx, tGroups, "id") {
		if match(r, "name", g.Name) && match(r, "domain_id", g.DomainID) {
			out = append(out, g)
		}
	}
	listOut(w, r, s, "groups", out, func(g *Group) string { return g.ID }, func(g *Group) map[string]any { return s.groupView(r, g) })
}

func (s *Service) showGroup(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	id := chi.URLParam(r, "id")
	g := store.Get[Group](tx, tGroups, id)
	if g == nil {
		api.Fail(w, r, writeError, notFoundErr("group", id))
		return
	}
	api.JSON(w, http.StatusOK, map[string]any{"group": s.groupView(r, g)})
}

func (s *Service) createGroup(w http.ResponseWriter, r *http.Request) {
	o, err := body(r, "group")
	if err != nil {
		api.Fail(w, r, writeError, err)
		return
	}
	rd := reader{o: o}
	g := Group{ID: api.NewHexID(), Name: rd.str("name", true, ""), DomainID: rd.str("domain_id", false, "default"), Description: rd.str("description", false, "")}
	if rd.err != nil {
		api.Fail(w, r, writeError, rd.err)
		return
	}
	if s.put(w, r, tGroups, true, &g) {
		api.JSON(w, http.StatusCreated, map[string]any{"group": s.groupView(r, &g)})
	}
}

func (s *Service) updateGroup(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	id := chi.URLParam(r, "id")
	old := store.Get[Group](tx, tGroups, id)
	if old == nil {
		api.Fail(w, r, writeError, notFoundErr("group", id))
		return
	}
	o, err := body(r, "group")
	if err != nil {
		api.Fail(w, r, writeError, err)
		return
	}
	g := *old
	rd := reader{o: o}
	g.Name = rd.str("name", false, g.Name)
	g.Description = rd.str("description", false, g.Description)
	if rd.err != nil {
		api.Fail(w, r, writeError, rd.err)
		return
	}
	if s.put(w, r, tGroups, false, &g) {
		api.JSON(w, http.StatusOK, map[string]any{"group": s.groupView(r, &g)})
	}
}

func (s *Service) listGroupUsers(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	id := chi.URLParam(r, "id")
	if store.Get[Group](tx, tGroups, id) == nil {
		api.Fail(w, r, writeError, notFoundErr("group", id))
		return
	}
	var out []*User
	for _, m := range store.All[Membership](tx, tMembers, "group", id) {
		if u := store.Get[User](tx, tUsers, m.UserID); u != nil {
			out = append(out, u)
		}
	}
	listOut(w, r, s, "users", out, func(u *User) string { return u.ID }, func(u *User) map[string]any { return s.userView(r, u) })
}

func (s *Service) membership(add bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		m := Membership{GroupID: chi.URLParam(r, "id"), UserID: chi.URLParam(r, "user")}
		m.ID = m.GroupID + "/" + m.UserID
		if add {
			tx, ok := s.read(w, r)
			if !ok {
				return
			}
			if exists(tx, tMembers, m.ID) || s.put(w, r, tMembers, true, &m) {
				w.WriteHeader(http.StatusNoContent)
			}
			return
		}
		if s.propose(w, r, cmdDelete, deleteCmd{Table: tMembers, ID: m.ID}) {
			w.WriteHeader(http.StatusNoContent)
		}
	}
}

func (s *Service) checkMembership(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	if !exists(tx, tMembers, chi.URLParam(r, "id")+"/"+chi.URLParam(r, "user")) {
		writeError(w, r, api.Problem{Status: http.StatusNotFound, Msg: "Could not find membership."})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Role inference rules.

func (s *Service) roleRef(r *http.Request, ro *Role) map[string]any {
	return map[string]any{"id": ro.ID, "name": ro.Name, "links": s.self(r, "roles", ro.ID)}
}

func (s *Service) inferenceRoles(w http.ResponseWriter, r *http.Request) (prior, implied *Role, ok bool) {
	tx, ok := s.read(w, r)
	if !ok {
		return nil, nil, false
	}
	prior, implied = store.Get[Role](tx, tRoles, chi.URLParam(r, "prior")), store.Get[Role](tx, tRoles, chi.URLParam(r, "implied"))
	if prior == nil {
		api.Fail(w, r, writeError, notFoundErr("role", chi.URLParam(r, "prior")))
		return nil, nil, false
	}
	if implied == nil {
		api.Fail(w, r, writeError, notFoundErr("role", chi.URLParam(r, "implied")))
		return nil, nil, false
	}
	return prior, implied, true
}

func (s *Service) putImplication(w http.ResponseWriter, r *http.Request) {
	prior, implied, ok := s.inferenceRoles(w, r)
	if !ok {
		return
	}
	im := Implication{ID: prior.ID + "/" + implied.ID, Prior: prior.ID, Implied: implied.ID}
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	if !exists(tx, tImplies, im.ID) && !s.put(w, r, tImplies, true, &im) {
		return
	}
	api.JSON(w, http.StatusCreated, map[string]any{"role_inference": map[string]any{"prior_role": s.roleRef(r, prior), "implies": s.roleRef(r, implied)}, "links": s.links(r)})
}

func (s *Service) getImplication(w http.ResponseWriter, r *http.Request) {
	prior, implied, ok := s.inferenceRoles(w, r)
	if !ok {
		return
	}
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	if !exists(tx, tImplies, prior.ID+"/"+implied.ID) {
		writeError(w, r, api.Problem{Status: http.StatusNotFound, Msg: "Could not find implied role."})
		return
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	api.JSON(w, http.StatusOK, map[string]any{"role_inference": map[string]any{"prior_role": s.roleRef(r, prior), "implies": s.roleRef(r, implied)}, "links": s.links(r)})
}

func (s *Service) deleteImplication(w http.ResponseWriter, r *http.Request) {
	if s.propose(w, r, cmdDelete, deleteCmd{Table: tImplies, ID: chi.URLParam(r, "prior") + "/" + chi.URLParam(r, "implied")}) {
		w.WriteHeader(http.StatusNoContent)
	}
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

func (s *Service) listImplied(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	prior := store.Get[Role](tx, tRoles, chi.URLParam(r, "prior"))
	if prior == nil {
		api.Fail(w, r, writeError, notFoundErr("role", chi.URLParam(r, "prior")))
		return
	}
	api.JSON(w, http.StatusOK, map[string]any{"role_inference": s.inference(r, tx, prior), "links": s.links(r)})
}

func (s *Service) listInferences(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
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
}
