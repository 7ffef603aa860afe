package identity

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"
	"golang.org/x/crypto/bcrypt"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Application credentials (Keystone's /v3/users/{id}/application_credentials):
// a user delegates a subset of its roles on one project to a secret that a
// program (Terraform, cloud-provider-openstack, CI) authenticates with
// instead of the user's password. The secret is shown once, in the answer
// to the create; the state holds only a bcrypt hash of it, as for passwords.
//
// A token issued from one (method "application_credential") carries the
// credential's id: on every check its roles are the credential's roles the
// user still holds on the project, and it is void once the credential is
// gone (deleted, or with its user) or expired.

// AppCred is one application credential. It is never updated: only created
// and deleted.
type AppCred struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	UserID      string `json:"user_id"`
	ProjectID   string `json:"project_id"`
	Description string `json:"description,omitempty"`
	// SecretHash is bcrypt(secretDigest(secret)); the secret itself is
	// never stored, logged or proposed.
	SecretHash []byte     `json:"secret_hash"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	Roles      []string   `json:"roles"` // role ids
	// AccessRules, if any, are the only requests its tokens may make
	// (see api.Principal.Permits).
	AccessRules  []api.AccessRule `json:"access_rules,omitempty"`
	Unrestricted bool             `json:"unrestricted"`
	// NameKey is UserID + "/" + Name: names are unique per user.
	NameKey string `json:"name_key"`
}

func appCredKey(user, name string) string { return user + "/" + name }

// secretDigest is what bcrypt hashes: bcrypt reads at most 72 bytes, and
// the secrets Keystone generates (and users may choose) are longer, so the
// whole secret is digested first.
func secretDigest(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return []byte(base64.RawStdEncoding.EncodeToString(h[:]))
}

// newAppCredSecret is a generated secret: 64 random bytes, URL-safe, as
// Keystone's secrets.token_urlsafe(64).
func newAppCredSecret() string {
	b := make([]byte, 64)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// expired reports whether the credential no longer authenticates.
func (a *AppCred) expired(now time.Time) bool {
	return a.ExpiresAt != nil && !now.Before(*a.ExpiresAt)
}

// appCredRequest is the body of a create.
type appCredRequest struct {
	ApplicationCredential *struct {
		Name         *string          `json:"name"`
		Description  *string          `json:"description"`
		Secret       *string          `json:"secret"`
		ExpiresAt    *string          `json:"expires_at"`
		Roles        []map[string]any `json:"roles"`
		Unrestricted *bool            `json:"unrestricted"`
		AccessRules  []map[string]any `json:"access_rules"`
	} `json:"application_credential"`
}

// expiryLayouts are the ISO 8601 forms Keystone and its clients send.
var expiryLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999", "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"}

func parseExpiry(v string) (time.Time, bool) {
	for _, l := range expiryLayouts {
		if t, err := time.Parse(l, v); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// callerClaims are the claims of the caller's own token.
func (s *Service) callerClaims(tx *memdb.Txn, p *api.Principal) (claims, error) {
	_, c, err := s.validate(tx, p.Token)
	if err != nil {
		return claims{}, errUnauthorized
	}
	return c, nil
}

// restrictedCaller refuses a token issued from a restricted application
// credential: such a token may not make or remove application credentials
// (it could otherwise mint itself a longer-lived or wider one).
// unrestrictedCaller is the local state and the caller's claims, for a
// request that manages delegations (application credentials, trusts): a
// token of a restricted application credential may not.
func (s *Service) unrestrictedCaller(r *http.Request) (*memdb.Txn, claims, error) {
	tx, err := s.local(r.Context())
	if err != nil {
		return nil, claims{}, err
	}
	c, err := s.callerClaims(tx, api.PrincipalFrom(r.Context()))
	if err != nil {
		return nil, claims{}, err
	}
	return tx, c, s.restrictedCaller(tx, c)
}

func (s *Service) restrictedCaller(tx *memdb.Txn, c claims) error {
	if c.OAuth != "" {
		return &api.Error{Status: http.StatusForbidden, Msg: "You are not authorized to perform the requested action: an OAuth-scoped token cannot delegate."}
	}
	if c.AppCred == "" {
		return nil
	}
	if a := store.Get[AppCred](tx, tAppCreds, c.AppCred); a != nil && a.Unrestricted {
		return nil
	}
	return &api.Error{Status: http.StatusForbidden, Msg: "You are not authorized to perform the requested action: a token from a restricted application credential cannot manage application credentials."}
}

func (s *Service) createAppCred(w http.ResponseWriter, r *http.Request) error {
	p := api.PrincipalFrom(r.Context())
	user := chi.URLParam(r, "id")
	// As in Keystone, only the user itself makes its credentials: they
	// delegate its own roles.
	if p.UserID != user {
		return errForbidden
	}
	var req appCredRequest
	if err := api.DecodeLoose(r, &req); err != nil {
		return err
	}
	in := req.ApplicationCredential
	if in == nil {
		return api.BadField("application_credential", "'application_credential' is a required property")
	}
	if in.Name == nil || strings.TrimSpace(*in.Name) == "" {
		return api.BadField("application_credential.name", "'name' is a required property")
	}
	if utf8.RuneCountInString(*in.Name) > maxName || !utf8.ValidString(*in.Name) || strings.ContainsAny(*in.Name, "\n\t\r") {
		return api.BadField("application_credential.name", "must be one line of at most %d characters", maxName)
	}
	tx, c, err := s.unrestrictedCaller(r)
	if err != nil {
		return err
	}
	if c.Trust != "" {
		return &api.Error{Status: http.StatusForbidden, Msg: "You are not authorized to perform the requested action: a token scoped by a trust cannot create application credentials."}
	}
	if c.Project == "" {
		return &api.Error{Status: http.StatusForbidden, Msg: "An application credential is made with a project-scoped token."}
	}
	now := s.cfg.Now().UTC()
	a := AppCred{ID: api.NewHexID(), Name: *in.Name, UserID: user, ProjectID: c.Project, NameKey: appCredKey(user, *in.Name)}
	if in.Description != nil {
		a.Description = *in.Description
	}
	if in.Unrestricted != nil {
		a.Unrestricted = *in.Unrestricted
	}
	if in.ExpiresAt != nil {
		t, ok := parseExpiry(*in.ExpiresAt)
		if !ok {
			return api.BadField("application_credential.expires_at", "must be an ISO 8601 time")
		}
		if !t.After(now) {
			return api.BadField("application_credential.expires_at", "must be in the future")
		}
		a.ExpiresAt = &t
	}
	held := s.tokenRoles(tx, c)
	if in.Roles == nil {
		a.Roles = held
	} else {
		if a.Roles, err = pickRoles(tx, in.Roles, held); err != nil {
			return err
		}
	}
	if len(a.Roles) == 0 {
		return api.BadField("application_credential.roles", "an application credential needs at least one role")
	}
	if a.AccessRules, err = s.readAccessRules(tx, user, in.AccessRules); err != nil {
		return err
	}
	secret := newAppCredSecret()
	if in.Secret != nil {
		if *in.Secret == "" {
			return api.BadField("application_credential.secret", "must not be empty")
		}
		secret = *in.Secret
	}
	if a.SecretHash, err = bcrypt.GenerateFromPassword(secretDigest(secret), s.cfg.BcryptCost); err != nil {
		return err
	}
	create := appCredCreate{Cred: a}
	known := userAccessRules(tx, user)
	for i, rule := range a.AccessRules {
		if _, ok := known[rule.ID]; !ok {
			create.Rules = append(create.Rules, AccessRuleRow{AccessRule: rule, UserID: user, Order: now.UnixNano() + int64(i)})
		}
	}
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdAppCredCreate, create, nil); err != nil {
		return err
	}
	view := s.appCredView(r, tx, &a)
	view["secret"] = secret
	api.JSON(w, http.StatusCreated, map[string]any{"application_credential": view})
	return nil
}

// pickRoles resolves the roles asked for ({id} or {name}, a name possibly
// with a domain) and refuses any the caller's token does not hold.
func pickRoles(tx *memdb.Txn, asked []map[string]any, held []string) ([]string, error) {
	const field = "application_credential.roles"
	set := map[string]bool{}
	for _, ref := range asked {
		id, _ := ref["id"].(string)
		name, _ := ref["name"].(string)
		var role *Role
		switch {
		case id != "":
			role = store.Get[Role](tx, tRoles, id)
		case name != "":
			domain := ""
			if d, ok := ref["domain_id"].(string); ok {
				domain = d
			}
			if raw, _ := tx.First(tRoles, "name", roleKey(domain, name)); raw != nil {
				role = raw.(*Role)
			}
		default:
			return nil, api.BadField(field, "each role needs an id or a name")
		}
		if role == nil || !contains(held, role.ID) {
			what := id
			if what == "" {
				what = name
			}
			return nil, &api.Error{Status: http.StatusForbidden, Msg: "You are not authorized to perform the requested action: the token does not hold role " + what + " on its project, so it cannot delegate it."}
		}
		set[role.ID] = true
	}
	out := make([]string, 0, len(set))
	for id := range set {
		out = append(out, id)
	}
	sort.Strings(out)
	return out, nil
}

func (s *Service) appCredView(r *http.Request, tx *memdb.Txn, a *AppCred) api.View {
	roles := []map[string]any{}
	for _, id := range a.Roles {
		if role := store.Get[Role](tx, tRoles, id); role != nil {
			var domain any
			if role.DomainID != "" {
				domain = role.DomainID
			}
			roles = append(roles, map[string]any{"id": role.ID, "name": role.Name, "domain_id": domain})
		}
	}
	var expires any
	if a.ExpiresAt != nil {
		expires = isoformat(*a.ExpiresAt)
	}
	return api.View{
		"id": a.ID, "name": a.Name, "description": a.Description, "user_id": a.UserID, "project_id": a.ProjectID,
		"expires_at": expires, "roles": roles, "unrestricted": a.Unrestricted, "access_rules": accessRulesView(a.AccessRules),
		"links": map[string]any{"self": s.baseURL(r) + "/identity/v3/users/" + a.UserID + "/application_credentials/" + a.ID},
	}
}

func (s *Service) listAppCreds(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.local(r.Context())
	if err != nil {
		return err
	}
	name, byName := r.URL.Query().Get("name"), r.URL.Query().Has("name")
	out := []api.View{}
	for _, a := range store.All[AppCred](tx, tAppCreds, "user", chi.URLParam(r, "id")) {
		if !byName || a.Name == name {
			out = append(out, s.appCredView(r, tx, a))
		}
	}
	api.JSON(w, http.StatusOK, map[string]any{"application_credentials": out, "links": s.links(r)})
	return nil
}

// appCredOf is the user's credential in the URL.
func (s *Service) appCredOf(r *http.Request, tx *memdb.Txn) (*AppCred, error) {
	id := chi.URLParam(r, "cred")
	a := store.Get[AppCred](tx, tAppCreds, id)
	if a == nil || a.UserID != chi.URLParam(r, "id") {
		return nil, notFoundErr("application credential", id)
	}
	return a, nil
}

func (s *Service) showAppCred(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.local(r.Context())
	if err != nil {
		return err
	}
	a, err := s.appCredOf(r, tx)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"application_credential": s.appCredView(r, tx, a)})
	return nil
}

// deleteAppCred removes a credential; the tokens issued from it die with
// it, on every node once the call returns (see remove).
func (s *Service) deleteAppCred(w http.ResponseWriter, r *http.Request) error {
	tx, _, err := s.unrestrictedCaller(r)
	if err != nil {
		return err
	}
	a, err := s.appCredOf(r, tx)
	if err != nil {
		return err
	}
	if err := s.remove(r, tAppCreds, a.ID); err != nil {
		return err
	}
	return noContent(w)
}

// appCredAuth is the "application_credential" identity of a token request.
type appCredAuth struct {
	ID     string  `json:"id"`
	Name   string  `json:"name"`
	Secret *string `json:"secret"`
	User   *struct {
		ID     string     `json:"id"`
		Name   string     `json:"name"`
		Domain *domainRef `json:"domain"`
	} `json:"user"`
}

// identifyAppCred authenticates by application credential: the token is
// scoped to the credential's project (a scope in the request is refused,
// as in Keystone) and expires no later than the credential.
func (s *Service) identifyAppCred(tx *memdb.Txn, source string, req authRequest) (claims, time.Time, error) {
	ac := req.Auth.Identity.ApplicationCredential
	if ac == nil || ac.Secret == nil {
		return claims{}, time.Time{}, api.BadField("auth.identity.application_credential.secret", "'secret' is a required property")
	}
	if req.Auth.Scope != nil {
		return claims{}, time.Time{}, &api.Error{Status: http.StatusUnauthorized, Msg: "Application credentials cannot request a scope."}
	}
	var a *AppCred
	key := "appcred:" + ac.ID
	switch {
	case ac.ID != "":
		a = store.Get[AppCred](tx, tAppCreds, ac.ID)
	case ac.Name != "" && ac.User != nil:
		var u *User
		if ac.User.ID != "" {
			u = store.Get[User](tx, tUsers, ac.User.ID)
		} else {
			if ac.User.Name == "" || ac.User.Domain == nil {
				return claims{}, time.Time{}, api.BadField("auth.identity.application_credential.user", "a user needs an id, or a name and a domain")
			}
			if d := findDomain(tx, ac.User.Domain); d != nil {
				if raw, _ := tx.First(tUsers, "name", d.ID, ac.User.Name); raw != nil {
					u = raw.(*User)
				}
			}
		}
		key = "appcred:" + ac.Name
		if u != nil {
			if raw, _ := tx.First(tAppCreds, "name", appCredKey(u.ID, ac.Name)); raw != nil {
				a = raw.(*AppCred)
			}
		}
	default:
		return claims{}, time.Time{}, api.BadField("auth.identity.application_credential", "needs an id, or a name and a user")
	}
	if a != nil {
		key = "appcred:" + a.ID
	}
	now := s.cfg.Now().UTC()
	// Secrets are throttled like passwords, per source and credential.
	if err := s.throttle.check(tx, source, key, now); err != nil {
		return claims{}, time.Time{}, err
	}
	if a == nil || bcrypt.CompareHashAndPassword(a.SecretHash, secretDigest(*ac.Secret)) != nil {
		s.throttle.fail(source, key, now)
		return claims{}, time.Time{}, errUnauthorized
	}
	s.throttle.succeed(tx, source, key, now)
	c := claims{User: a.UserID, Project: a.ProjectID, AppCred: a.ID, Methods: []string{"application_credential"}}
	// The user, its domain, the project and the roles still held are
	// checked as for any token (validate, after issue).
	if a.expired(now) || len(s.tokenRoles(tx, c)) == 0 {
		return claims{}, time.Time{}, errUnauthorized
	}
	expires := now.Add(s.cfg.TokenTTL)
	if a.ExpiresAt != nil && a.ExpiresAt.Before(expires) {
		expires = *a.ExpiresAt
	}
	return c, expires, nil
}

// tokenRoles are the role ids a token holds on its scope now: the user's
// roles there, narrowed to its application credential's when it came
// from one (nothing if that credential is gone or expired); for a token
// scoped by a trust, the trust's roles (see trustRoles).
func (s *Service) tokenRoles(tx *memdb.Txn, c claims) []string {
	if c.Trust != "" {
		return trustRoles(tx, trustChain(tx, c.Trust))
	}
	var held []string
	switch {
	case c.Project != "":
		held = effectiveRoles(tx, c.User, "project", c.Project)
	case c.Domain != "":
		held = effectiveRoles(tx, c.User, "domain", c.Domain)
	case c.System:
		held = effectiveRoles(tx, c.User, "system", systemAll)
	}
	if c.OAuth != "" {
		return s.oauthRoles(tx, c, held)
	}
	if c.AppCred == "" {
		return held
	}
	a := store.Get[AppCred](tx, tAppCreds, c.AppCred)
	if a == nil || a.UserID != c.User || a.ProjectID != c.Project || a.expired(s.cfg.Now()) {
		return nil
	}
	return delegatedRoles(tx, held, a.Roles)
}

// delegatedRoles are the held roles a delegation (an application
// credential's or an access token's roles) names: its roles bring the
// roles they imply, as a grant does.
func delegatedRoles(tx *memdb.Txn, held, roles []string) []string {
	delegated := map[string]bool{}
	for _, id := range roles {
		delegated[id] = true
		for im := range impliedBy(tx, id) {
			delegated[im] = true
		}
	}
	var out []string
	for _, id := range held {
		if delegated[id] {
			out = append(out, id)
		}
	}
	return out
}

// isoformat renders a time as Keystone renders an application
// credential's expiry (Python's naive datetime.isoformat()): UTC without a
// zone, with microseconds only when there are any. Clients compare it
// with the expiry they sent.
func isoformat(t time.Time) string {
	t = t.UTC()
	if t.Nanosecond()/1000 == 0 {
		return t.Format("2006-01-02T15:04:05")
	}
	return t.Format("2006-01-02T15:04:05.000000")
}
