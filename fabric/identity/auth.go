package identity

import (
	"context"
	"errors"
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
			ApplicationCredential *appCredAuth `json:"application_credential"`
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
	System *struct {
		All bool `json:"all"`
	} `json:"system"`
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

// postToken issues a token: authenticate (identify), then scope.
func (s *Service) postToken(w http.ResponseWriter, r *http.Request) error {
	var req authRequest
	if err := api.DecodeLoose(r, &req); err != nil {
		return err
	}
	// Current, not local: a user, project or grant acknowledged through
	// another node just before must be seen, as Keystone's database
	// would. Issuing costs a bcrypt hash anyway; one round trip to the
	// leader is small beside it.
	tx, err := s.current(r.Context())
	if err != nil {
		return err
	}
	var c claims
	var expires time.Time
	if contains(req.Auth.Identity.Methods, "oauth1") {
		c, expires, err = s.identifyOAuth(r, tx)
	} else {
		c, expires, err = s.identify(tx, source(r), req)
	}
	if err != nil {
		return throttledError(w, err)
	}
	trust, byTrust, err := trustScopeID(req.Auth.Scope)
	if err != nil {
		return err
	}
	if byTrust {
		if c, expires, err = s.scopeToTrust(r, tx, c, expires, trust); err != nil {
			return err
		}
	} else if err := scope(tx, req.Auth.Scope, &c); err != nil {
		return err
	}
	tok, err := s.issue(tx, c, expires)
	if err != nil {
		return err
	}
	p, cl, err := s.validate(tx, tok)
	if err != nil {
		return errUnauthorized
	}
	w.Header().Set("X-Subject-Token", tok)
	api.JSON(w, http.StatusCreated, map[string]any{"token": s.tokenBody(r, tx, p, cl, !r.URL.Query().Has("nocatalog"))})
	return nil
}

// identify authenticates a token request by password or by token; a
// token from a token keeps the original's expiry (returned) and audit
// chain.
func (s *Service) identify(tx *memdb.Txn, source string, req authRequest) (claims, time.Time, error) {
	id := req.Auth.Identity
	switch {
	case contains(id.Methods, "password"):
		if id.Password == nil || id.Password.User.Password == nil {
			return claims{}, time.Time{}, api.BadField("auth.identity.password.user.password", "'password' is a required property")
		}
		pu := id.Password.User
		var u *User
		// The throttle's user: the id, or for an unknown user the name
		// asked for (so guesses at names are slowed too).
		key := pu.ID
		if pu.ID != "" {
			u = store.Get[User](tx, tUsers, pu.ID)
		} else {
			key = "name:" + pu.Name
			if pu.Domain != nil {
				key = "name:" + pu.Domain.ID + "/" + pu.Domain.Name + "/" + pu.Name
			}
			if pu.Name == "" || pu.Domain == nil {
				return claims{}, time.Time{}, api.BadField("auth.identity.password.user", "a user needs an id, or a name and a domain")
			}
			if d := findDomain(tx, pu.Domain); d != nil {
				if raw, _ := tx.First(tUsers, "name", d.ID, pu.Name); raw != nil {
					u = raw.(*User)
				}
			}
		}
		if u != nil {
			key = u.ID
		}
		if err := s.checkPassword(tx, source, key, u, *pu.Password); err != nil {
			var t *errThrottled
			if errors.As(err, &t) {
				return claims{}, time.Time{}, err
			}
			return claims{}, time.Time{}, errUnauthorized
		}
		if d := store.Get[Domain](tx, tDomains, u.DomainID); d == nil || !d.Enabled {
			return claims{}, time.Time{}, errUnauthorized
		}
		if err := checkMFA(u, []string{"password"}); err != nil {
			return claims{}, time.Time{}, err
		}
		return claims{User: u.ID, Methods: []string{"password"}}, time.Time{}, nil
	case contains(id.Methods, "token"):
		if id.Token == nil || id.Token.ID == "" {
			return claims{}, time.Time{}, api.BadField("auth.identity.token.id", "'id' is a required property")
		}
		_, old, err := s.validate(tx, id.Token.ID)
		if errors.Is(err, errBadToken) {
			// As Keystone: a token it cannot validate (revoked by a
			// password change, expired, malformed) is not found, as
			// when it is validated with X-Subject-Token.
			return claims{}, time.Time{}, &api.Error{Status: http.StatusNotFound, Msg: "Could not find token: " + shortHash(id.Token.ID) + "."}
		}
		if err != nil {
			return claims{}, time.Time{}, errUnauthorized
		}
		if old.OAuth != "" {
			return claims{}, time.Time{}, &api.Error{Status: http.StatusForbidden, Msg: "You are not authorized to perform the requested action: using OAuth-scoped token to create another token. Create a new OAuth-scoped token instead."}
		}
		if old.Trust != "" {
			// As Keystone: a new token from the trust is had by
			// authenticating again, which takes one of its uses.
			return claims{}, time.Time{}, &api.Error{Status: http.StatusForbidden, Msg: "You are not authorized to perform the requested action: using trust-scoped token to create another token. Create a new trust-scoped token instead."}
		}
		c := claims{User: old.User, Methods: old.Methods, Audit: []string{old.Audit[len(old.Audit)-1]}}
		if !contains(c.Methods, "token") {
			c.Methods = append(append([]string{}, c.Methods...), "token")
		}
		if old.AppCred != "" {
			// A token from an application credential stays bound to it
			// and to its project: it cannot be widened by rescoping.
			if req.Auth.Scope != nil {
				return claims{}, time.Time{}, &api.Error{Status: http.StatusForbidden, Msg: "A token issued from an application credential cannot be rescoped."}
			}
			c.AppCred = old.AppCred
		}
		if req.Auth.Scope == nil {
			c.Project, c.Domain, c.System = old.Project, old.Domain, old.System
		}
		return c, old.expires(), nil
	case contains(id.Methods, "application_credential"):
		return s.identifyAppCred(tx, source, req)
	}
	return claims{}, time.Time{}, api.BadField("auth.identity.methods", "supported methods are password, token, application_credential and oauth1")
}

// scope scopes c as the request asks: a project, a domain or the system
// the user holds a role on, explicitly unscoped, or (without a scope) the
// user's default project if it has a role there, as Keystone does.
func scope(tx *memdb.Txn, requested any, c *claims) error {
	if requested == nil {
		if c.Project != "" || c.Domain != "" || c.System {
			return nil
		}
		if u := store.Get[User](tx, tUsers, c.User); u != nil && u.DefaultProjectID != "" {
			if p := store.Get[Project](tx, tProjects, u.DefaultProjectID); p != nil && p.Enabled && len(effectiveRoles(tx, u.ID, "project", p.ID)) > 0 {
				c.Project = p.ID
			}
		}
		return nil
	}
	if str, ok := requested.(string); ok && str == "unscoped" {
		return nil
	}
	var sc scopeRequest
	if err := remarshal(requested, &sc); err != nil {
		return api.BadField("auth.scope", "must be an object")
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
			return errUnauthorized
		}
		c.Project, c.Domain, c.System = p.ID, "", false
	case sc.Domain != nil:
		d := findDomain(tx, sc.Domain)
		if d == nil || !d.Enabled || len(effectiveRoles(tx, c.User, "domain", d.ID)) == 0 {
			return errUnauthorized
		}
		c.Domain, c.Project, c.System = d.ID, "", false
	case sc.System != nil:
		if !sc.System.All {
			return api.BadField("auth.scope.system", `the only system scope is {"all": true}`)
		}
		if len(effectiveRoles(tx, c.User, "system", systemAll)) == 0 {
			return errUnauthorized
		}
		c.System, c.Project, c.Domain = true, "", ""
	}
	return nil
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
	u := store.Get[User](tx, tUsers, p.UserID) // the trustor, for a trust that impersonates it
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
	case c.Domain != "":
		d := store.Get[Domain](tx, tDomains, c.Domain)
		body["domain"] = map[string]any{"id": d.ID, "name": d.Name}
	case c.System:
		body["system"] = map[string]any{"all": true}
	}
	roleIDs = s.tokenRoles(tx, c)
	if c.Trust != "" {
		if t := store.Get[Trust](tx, tTrusts, c.Trust); t != nil {
			body["OS-TRUST:trust"] = map[string]any{"id": t.ID, "impersonation": t.Impersonation,
				"trustor_user": map[string]any{"id": t.TrustorID}, "trustee_user": map[string]any{"id": t.TrusteeID}}
		}
	}
	if o, ok := oauthBody(tx, c); ok {
		body["OS-OAUTH1"] = o
	}
	if c.AppCred != "" {
		if a := store.Get[AppCred](tx, tAppCreds, c.AppCred); a != nil {
			ac := map[string]any{"id": a.ID, "name": a.Name, "restricted": !a.Unrestricted}
			if len(a.AccessRules) > 0 {
				ac["access_rules"] = accessRulesView(a.AccessRules)
			}
			body["application_credential"] = ac
		}
	}
	if c.Project != "" || c.Domain != "" || c.System {
		roles := []map[string]any{}
		for _, id := range roleIDs {
			if role := store.Get[Role](tx, tRoles, id); role != nil {
				roles = append(roles, map[string]any{"id": role.ID, "name": role.Name})
			}
		}
		body["roles"] = roles
		if withCatalog {
			body["catalog"] = s.catalog(r, tx, c.Project)
		}
	}
	return body
}

// subject validates the X-Subject-Token of a request on behalf of the
// caller: a caller may check its own tokens; admins may check any.
func (s *Service) subject(r *http.Request) (*memdb.Txn, *api.Principal, claims, error) {
	caller := api.PrincipalFrom(r.Context())
	tx, err := s.local(r.Context())
	if err != nil {
		return nil, nil, claims{}, err
	}
	sub := r.Header.Get("X-Subject-Token")
	if sub == "" {
		return nil, nil, claims{}, api.BadField("X-Subject-Token", "the header is required")
	}
	tx, p, c, err := s.validateCurrent(r.Context(), tx, sub)
	if err != nil {
		return nil, nil, claims{}, &api.Error{Status: http.StatusNotFound, Msg: "Could not find token: " + shortHash(sub) + "."}
	}
	if !caller.IsAdmin() && p.UserID != caller.UserID {
		return nil, nil, claims{}, &api.Error{Status: http.StatusForbidden, Msg: "You are not authorized to perform the requested action: identity:validate_token."}
	}
	return tx, p, c, nil
}

func (s *Service) getToken(w http.ResponseWriter, r *http.Request) error {
	tx, p, c, err := s.subject(r)
	if err != nil {
		return err
	}
	w.Header().Set("X-Subject-Token", r.Header.Get("X-Subject-Token"))
	api.JSON(w, http.StatusOK, map[string]any{"token": s.tokenBody(r, tx, p, c, !r.URL.Query().Has("nocatalog"))})
	return nil
}

func (s *Service) headToken(w http.ResponseWriter, r *http.Request) error {
	if _, _, _, err := s.subject(r); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Service) deleteToken(w http.ResponseWriter, r *http.Request) error {
	_, p, c, err := s.subject(r)
	if err != nil {
		return err
	}
	if err := s.revokeAudit(r.Context(), c.Audit[0], p.ExpiresAt); err != nil {
		return err
	}
	return noContent(w)
}

func (s *Service) revokeAudit(ctx context.Context, audit string, expires time.Time) error {
	return s.narrow(ctx, cmdRevoke, Revocation{ID: "audit/" + audit, AuditID: audit, IssuedBefore: s.cfg.Now().UTC(), ExpiresAt: expires})
}

func (s *Service) authCatalog(w http.ResponseWriter, r *http.Request) error {
	p := api.PrincipalFrom(r.Context())
	if p.ProjectID == "" && p.DomainID == "" && !p.System {
		return &api.Error{Status: http.StatusForbidden, Msg: "The authenticated token is not scoped; a catalog needs a scoped token."}
	}
	tx, err := s.local(r.Context())
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"catalog": s.catalog(r, tx, p.ProjectID), "links": map[string]any{"self": s.baseURL(r) + r.URL.Path}})
	return nil
}

func (s *Service) authProjects(w http.ResponseWriter, r *http.Request) error {
	p := api.PrincipalFrom(r.Context())
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"projects": s.projectViews(r, userProjects(tx, p.UserID)), "links": s.links(r)})
	return nil
}

func (s *Service) authDomains(w http.ResponseWriter, r *http.Request) error {
	p := api.PrincipalFrom(r.Context())
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	out := []api.View{}
	for _, d := range store.All[Domain](tx, tDomains, "id") {
		if d.Enabled && len(effectiveRoles(tx, p.UserID, "domain", d.ID)) > 0 {
			out = append(out, s.domainView(r, d))
		}
	}
	api.JSON(w, http.StatusOK, map[string]any{"domains": out, "links": s.links(r)})
	return nil
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
