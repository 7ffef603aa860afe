package identity

import (
	"context"
	"net/http"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

const timeFormat = "2006-01-02T15:04:05.000000Z"

// authRequest is POST /v3/auth/tokens.
type authRequest struct {
	Auth struct {
		Identity struct {
			Methods  []string `json:"methods"`
			Password *struct {
				User struct {
					ID       string     `json:"id"`
					Name     string     `json:"name"`
					Password *string    `json:"password"`
					Domain   *domainRef `json:"domain"`
				} `json:"user"`
			} `json:"password"`
			Token *struct {
				ID string `json:"id"`
			} `json:"token"`
		} `json:"identity"`
		Scope any `json:"scope"`
	} `json:"auth"`
}

type domainRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type scopeRequest struct {
	Project *struct {
		ID     string     `json:"id"`
		Name   string     `json:"name"`
		Domain *domainRef `json:"domain"`
	} `json:"project"`
	Domain *domainRef `json:"domain"`
	System any        `json:"system"`
}

func findDomain(tx *memdb.Txn, ref *domainRef) *Domain {
	if ref == nil {
		return nil
	}
	if ref.ID != "" {
		return store.Get[Domain](tx, tDomains, ref.ID)
	}
	if raw, _ := tx.First(tDomains, "name", ref.Name); raw != nil {
		return raw.(*Domain)
	}
	return nil
}

func (s *Service) postToken(w http.ResponseWriter, r *http.Request) {
	var req authRequest
	if err := api.DecodeLoose(r, &req); err != nil {
		api.Fail(w, r, writeError, err)
		return
	}
	tx, err := s.local(r.Context())
	if err != nil {
		api.Fail(w, r, writeError, err)
		return
	}
	id := req.Auth.Identity
	var c claims
	var expires time.Time
	unauthorized := func() {
		writeError(w, r, api.Problem{Status: http.StatusUnauthorized, Msg: "The request you have made requires authentication."})
	}
	switch {
	case contains(id.Methods, "password"):
		if id.Password == nil || id.Password.User.Password == nil {
			api.Fail(w, r, writeError, api.BadField("auth.identity.password.user.password", "'password' is a required property"))
			return
		}
		pu := id.Password.User
		var u *User
		if pu.ID != "" {
			u = store.Get[User](tx, tUsers, pu.ID)
		} else {
			if pu.Name == "" || pu.Domain == nil {
				api.Fail(w, r, writeError, api.BadField("auth.identity.password.user", "a user needs an id, or a name and a domain"))
				return
			}
			if d := findDomain(tx, pu.Domain); d != nil {
				if raw, _ := tx.First(tUsers, "name", d.ID, pu.Name); raw != nil {
					u = raw.(*User)
				}
			}
		}
		if u == nil {
			unauthorized()
			return
		}
		if err := s.checkPassword(u, *pu.Password); err != nil {
			unauthorized()
			return
		}
		if d := store.Get[Domain](tx, tDomains, u.DomainID); d == nil || !d.Enabled {
			unauthorized()
			return
		}
		c = claims{User: u.ID, Methods: []string{"password"}}
	case contains(id.Methods, "token"):
		if id.Token == nil || id.Token.ID == "" {
			api.Fail(w, r, writeError, api.BadField("auth.identity.token.id", "'id' is a required property"))
			return
		}
		_, old, err := s.validate(tx, id.Token.ID)
		if err != nil {
			unauthorized()
			return
		}
		// A rescoped token keeps the original expiry and audit chain.
		c = claims{User: old.User, Methods: old.Methods, Audit: []string{old.Audit[len(old.Audit)-1]}}
		if !contains(c.Methods, "token") {
			c.Methods = append(append([]string{}, c.Methods...), "token")
		}
		expires = old.expires()
		if req.Auth.Scope == nil {
			c.Project, c.Domain = old.Project, old.Domain
		}
	default:
		api.Fail(w, r, writeError, api.BadField("auth.identity.methods", "supported methods are password and token"))
		return
	}
	if req.Auth.Scope != nil {
		if str, ok := req.Auth.Scope.(string); ok && str == "unscoped" {
			// explicit unscoped
		} else {
			var sc scopeRequest
			if err := remarshal(req.Auth.Scope, &sc); err != nil {
				api.Fail(w, r, writeError, api.BadField("auth.scope", "must be an object"))
				return
			}
			switch {
			case sc.Project != nil:
				var p *Project
				if sc.Project.ID != "" {
					p = store.Get[Project](tx, tProjects, sc.Project.ID)
				} else if d := findDomain(tx, sc.Project.Domain); d != nil {
					if raw, _ := tx.First(tProjects, "name", d.ID, sc.Project.Name); raw != nil {
						p = raw.(*Project)
					}
				}
				if p == nil || !p.Enabled || len(effectiveRoles(tx, c.User, "project", p.ID)) == 0 {
					unauthorized()
					return
				}
				c.Project, c.Domain = p.ID, ""
			case sc.Domain != nil:
				d := findDomain(tx, sc.Domain)
				if d == nil || !d.Enabled || len(effectiveRoles(tx, c.User, "domain", d.ID)) == 0 {
					unauthorized()
					return
				}
				c.Domain, c.Project = d.ID, ""
			case sc.System != nil:
				// System scope maps to the cloud admin: allowed for users
				// with the admin role on some project, scoped to it.
				writeError(w, r, api.Problem{Status: http.StatusUnauthorized, Msg: "system scope is not supported; scope to a project"})
				return
			}
		}
	} else if c.Project == "" && c.Domain == "" {
		// Like Keystone: without a scope, use the default project if the
		// user has a role there.
		if u := store.Get[User](tx, tUsers, c.User); u != nil && u.DefaultProjectID != "" {
			if p := store.Get[Project](tx, tProjects, u.DefaultProjectID); p != nil && p.Enabled && len(effectiveRoles(tx, u.ID, "project", p.ID)) > 0 {
				c.Project = p.ID
			}
		}
	}
	tok, err := s.issue(tx, c, expires)
	if err != nil {
		api.Fail(w, r, writeError, err)
		return
	}
	p, cl, err := s.validate(tx, tok)
	if err != nil {
		unauthorized()
		return
	}
	w.Header().Set("X-Subject-Token", tok)
	api.JSON(w, http.StatusCreated, map[string]any{"token": s.tokenBody(r, tx, p, cl, !r.URL.Query().Has("nocatalog"))})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// tokenBody is Keystone's token representation.
func (s *Service) tokenBody(r *http.Request, tx *memdb.Txn, p *api.Principal, c claims, withCatalog bool) map[string]any {
	u := store.Get[User](tx, tUsers, p.UserID)
	ud := store.Get[Domain](tx, tDomains, u.DomainID)
	body := map[string]any{
		"methods":    c.Methods,
		"user":       map[string]any{"id": u.ID, "name": u.Name, "domain": map[string]any{"id": ud.ID, "name": ud.Name}, "password_expires_at": nil},
		"audit_ids":  c.Audit,
		"expires_at": c.expires().Format(timeFormat),
		"issued_at":  c.issued().Format(timeFormat),
	}
	var roleIDs []string
	switch {
	case c.Project != "":
		pr := store.Get[Project](tx, tProjects, c.Project)
		pd := store.Get[Domain](tx, tDomains, pr.DomainID)
		body["project"] = map[string]any{"id": pr.ID, "name": pr.Name, "domain": map[string]any{"id": pd.ID, "name": pd.Name}}
		body["is_domain"] = false
		roleIDs = effectiveRoles(tx, u.ID, "project", pr.ID)
	case c.Domain != "":
		d := store.Get[Domain](tx, tDomains, c.Domain)
		body["domain"] = map[string]any{"id": d.ID, "name": d.Name}
		roleIDs = effectiveRoles(tx, u.ID, "domain", d.ID)
	}
	if c.Project != "" || c.Domain != "" {
		roles := []map[string]any{}
		for _, id := range roleIDs {
			if role := store.Get[Role](tx, tRoles, id); role != nil {
				roles = append(roles, map[string]any{"id": role.ID, "name": role.Name})
			}
		}
		body["roles"] = roles
		if withCatalog {
			body["catalog"] = s.catalog(r, c.Project)
		}
	}
	return body
}

// subject validates the X-Subject-Token of a request on behalf of the
// caller: a caller may check its own tokens; admins may check any.
func (s *Service) subject(w http.ResponseWriter, r *http.Request) (*memdb.Txn, *api.Principal, claims, bool) {
	caller := api.PrincipalFrom(r.Context())
	tx, err := s.local(r.Context())
	if err != nil {
		api.Fail(w, r, writeError, err)
		return nil, nil, claims{}, false
	}
	sub := r.Header.Get("X-Subject-Token")
	if sub == "" {
		api.Fail(w, r, writeError, api.BadField("X-Subject-Token", "the header is required"))
		return nil, nil, claims{}, false
	}
	p, c, err := s.validate(tx, sub)
	if err != nil {
		writeError(w, r, api.Problem{Status: http.StatusNotFound, Msg: "Could not find token: " + shortHash(sub) + "."})
		return nil, nil, claims{}, false
	}
	if !caller.IsAdmin() && p.UserID != caller.UserID {
		writeError(w, r, api.Problem{Status: http.StatusForbidden, Msg: "You are not authorized to perform the requested action: identity:validate_token."})
		return nil, nil, claims{}, false
	}
	return tx, p, c, true
}

func (s *Service) getToken(w http.ResponseWriter, r *http.Request) {
	tx, p, c, ok := s.subject(w, r)
	if !ok {
		return
	}
	w.Header().Set("X-Subject-Token", r.Header.Get("X-Subject-Token"))
	api.JSON(w, http.StatusOK, map[string]any{"token": s.tokenBody(r, tx, p, c, !r.URL.Query().Has("nocatalog"))})
}

func (s *Service) headToken(w http.ResponseWriter, r *http.Request) {
	if _, _, _, ok := s.subject(w, r); ok {
		w.WriteHeader(http.StatusOK)
	}
}

func (s *Service) deleteToken(w http.ResponseWriter, r *http.Request) {
	_, p, c, ok := s.subject(w, r)
	if !ok {
		return
	}
	if err := s.revokeAudit(r.Context(), c.Audit[0], p.ExpiresAt); err != nil {
		api.Fail(w, r, writeError, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) revokeAudit(ctx context.Context, audit string, expires time.Time) error {
	_, err := s.cfg.Repl.Propose(ctx, cmdRevoke, Revocation{ID: "audit/" + audit, AuditID: audit, IssuedBefore: s.cfg.Now().UTC(), ExpiresAt: expires})
	return err
}

func (s *Service) authCatalog(w http.ResponseWriter, r *http.Request) {
	p := api.PrincipalFrom(r.Context())
	if p.ProjectID == "" && p.DomainID == "" {
		writeError(w, r, api.Problem{Status: http.StatusForbidden, Msg: "The authenticated token is not scoped; a catalog needs a scoped token."})
		return
	}
	api.JSON(w, http.StatusOK, map[string]any{"catalog": s.catalog(r, p.ProjectID), "links": map[string]any{"self": s.baseURL(r) + r.URL.Path}})
}

func (s *Service) authProjects(w http.ResponseWriter, r *http.Request) {
	p := api.PrincipalFrom(r.Context())
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		api.Fail(w, r, writeError, err)
		return
	}
	api.JSON(w, http.StatusOK, map[string]any{"projects": s.projectViews(r, userProjects(tx, p.UserID)), "links": s.links(r)})
}

func (s *Service) authDomains(w http.ResponseWriter, r *http.Request) {
	p := api.PrincipalFrom(r.Context())
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		api.Fail(w, r, writeError, err)
		return
	}
	out := []map[string]any{}
	for _, d := range store.All[Domain](tx, tDomains, "id") {
		if d.Enabled && len(effectiveRoles(tx, p.UserID, "domain", d.ID)) > 0 {
			out = append(out, s.domainView(r, d))
		}
	}
	api.JSON(w, http.StatusOK, map[string]any{"domains": out, "links": s.links(r)})
}

// userProjects are the enabled projects where user holds a role.
func userProjects(tx *memdb.Txn, user string) []*Project {
	var out []*Project
	for _, p := range store.All[Project](tx, tProjects, "id") {
		if p.Enabled && len(effectiveRoles(tx, user, "project", p.ID)) > 0 {
			out = append(out, p)
		}
	}
	return out
}
