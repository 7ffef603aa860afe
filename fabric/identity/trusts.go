package identity

import (
	"encoding/json"
	"math"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Trusts are Keystone's OS-TRUST extension: a trustor delegates some of
// its roles on one project to a trustee, who then gets tokens scoped by
// the trust ("scope": {"OS-TRUST:trust": {"id": …}}) holding those roles
// only. Heat, Magnum and other services use them to act later on a
// user's behalf without its password.
//
// A trust-scoped token carries the trust's id. On every check its roles
// are the trust's (with the roles they imply), and only while the
// original trustor still holds every one of them on the project; the
// token dies with the trust (deleted, with its trustor or trustee, or its
// project), when either user is disabled, or when the trust expires.

// maxRedelegation is Keystone's [trust] max_redelegation_count default:
// how long a chain of redelegated trusts may grow.
const maxRedelegation = 3

// Trust is one trust. Only its RemainingUses changes after it is made
// (by cmdTrustConsume, one use per token issued).
type Trust struct {
	ID            string     `json:"id"`
	TrustorID     string     `json:"trustor_user_id"`
	TrusteeID     string     `json:"trustee_user_id"`
	ProjectID     string     `json:"project_id,omitempty"`
	Impersonation bool       `json:"impersonation"`
	ExpiresAt     *time.Time `json:"expires_at,omitempty"`
	// RemainingUses is how many more tokens the trust may issue; nil is
	// no limit.
	RemainingUses *int     `json:"remaining_uses,omitempty"`
	Roles         []string `json:"roles"` // role ids
	// RedelegationCount is how many more times the trust may be
	// redelegated (0: it may not be); RedelegatedFrom is the trust this
	// one was redelegated from.
	RedelegationCount int    `json:"redelegation_count"`
	RedelegatedFrom   string `json:"redelegated_trust_id,omitempty"`
}

func (t *Trust) expired(now time.Time) bool {
	return t.ExpiresAt != nil && !now.Before(*t.ExpiresAt)
}

// trustConsumeCmd takes one use of a trust with a limited number of
// uses. Raft orders the commands, so two nodes issuing tokens at once
// cannot both take the last use.
type trustConsumeCmd struct {
	ID string    `json:"id"`
	At time.Time `json:"at"` // the proposer's clock: an expired trust is not used
}

func applyTrustConsume(tx *memdb.Txn, c trustConsumeCmd) (any, error) {
	t := store.Get[Trust](tx, tTrusts, c.ID)
	if t == nil {
		return nil, notFound("Could not find trust: %s.", c.ID)
	}
	if t.expired(c.At) {
		return nil, store.Forbiddenf("The trust %s has expired.", c.ID)
	}
	if t.RemainingUses == nil {
		return nil, nil
	}
	if *t.RemainingUses <= 0 {
		return nil, store.Forbiddenf("No remaining uses for trust: %s.", c.ID)
	}
	n := *t
	left := *t.RemainingUses - 1
	n.RemainingUses = &left
	return nil, tx.Insert(tTrusts, &n)
}

// trustChain is the trust and those it was redelegated from, the
// original last; nil when one of them is gone.
func trustChain(tx *memdb.Txn, id string) []*Trust {
	var chain []*Trust
	for id != "" && len(chain) <= maxRedelegation+1 {
		t := store.Get[Trust](tx, tTrusts, id)
		if t == nil {
			return nil
		}
		chain = append(chain, t)
		id = t.RedelegatedFrom
	}
	if id != "" {
		return nil // longer than any chain this service makes
	}
	return chain
}

// trustUsable says why a token may not be scoped by trust t for user
// (the trustee's id), or nil: the trust and those it was redelegated
// from are live, both users and their domains are enabled, the project
// is, and the original trustor still holds every role delegated.
func (s *Service) trustUsable(tx *memdb.Txn, t *Trust, user string) error {
	if t.TrusteeID != user {
		return &api.Error{Status: http.StatusForbidden, Msg: "You are not authorized to perform the requested action: user is not a trustee."}
	}
	now := s.cfg.Now()
	chain := trustChain(tx, t.ID)
	if chain == nil {
		return notFoundErr("trust", t.ID)
	}
	for _, c := range chain {
		if c.expired(now) {
			return &api.Error{Status: http.StatusUnauthorized, Msg: "The trust " + t.ID + " has expired."}
		}
		for _, id := range []string{c.TrustorID, c.TrusteeID} {
			if !userUsable(tx, id) {
				return &api.Error{Status: http.StatusForbidden, Msg: "You are not authorized to perform the requested action: a user of the trust is disabled."}
			}
		}
	}
	if t.ProjectID == "" {
		return nil
	}
	if p := store.Get[Project](tx, tProjects, t.ProjectID); p == nil || !p.Enabled {
		return &api.Error{Status: http.StatusForbidden, Msg: "You are not authorized to perform the requested action: the trust's project is disabled."}
	}
	if len(trustRoles(tx, chain)) == 0 {
		return &api.Error{Status: http.StatusForbidden, Msg: "You are not authorized to perform the requested action: trustee has no delegated roles."}
	}
	return nil
}

// userUsable reports whether a user exists and may act: it and its
// domain are enabled.
func userUsable(tx *memdb.Txn, id string) bool {
	u := store.Get[User](tx, tUsers, id)
	if u == nil || !u.Enabled {
		return false
	}
	d := store.Get[Domain](tx, tDomains, u.DomainID)
	return d != nil && d.Enabled
}

// trustRoles are the role ids a token scoped by chain[0] holds: the
// trust's roles and those they imply, as long as the original trustor
// holds every one of them on the project now; none otherwise (as
// Keystone, a trust whose trustor lost one of its roles gives nothing).
func trustRoles(tx *memdb.Txn, chain []*Trust) []string {
	if len(chain) == 0 {
		return nil
	}
	t, root := chain[0], chain[len(chain)-1]
	held := map[string]bool{}
	for _, id := range effectiveRoles(tx, root.TrustorID, "project", root.ProjectID) {
		held[id] = true
	}
	delegated := map[string]bool{}
	for _, id := range t.Roles {
		delegated[id] = true
		for im := range impliedBy(tx, id) {
			delegated[im] = true
		}
	}
	out := make([]string, 0, len(delegated))
	for id := range delegated {
		if domainSpecific(tx, id) {
			continue
		}
		if !held[id] {
			return nil
		}
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// trustScopeID is the trust a token request's scope names, if it names
// one.
func trustScopeID(requested any) (id string, ok bool, err error) {
	m, isMap := requested.(map[string]any)
	if !isMap {
		return "", false, nil
	}
	raw, ok := m["OS-TRUST:trust"]
	if !ok {
		return "", false, nil
	}
	if len(m) > 1 {
		return "", true, api.BadField("auth.scope", "a token is scoped by a trust or by a project, domain or system, not both")
	}
	ref, _ := raw.(map[string]any)
	id, _ = ref["id"].(string)
	if id == "" {
		return "", true, api.BadField("auth.scope.OS-TRUST:trust.id", "'id' is a required property")
	}
	return id, true, nil
}

// scopeToTrust scopes c (the trustee authenticated) by a trust: the
// trust's project, the trust's roles; one of the trust's uses is taken,
// through the replicated state, before the token is issued. The token
// expires no later than the trust.
func (s *Service) scopeToTrust(r *http.Request, tx *memdb.Txn, c claims, expires time.Time, id string) (claims, time.Time, error) {
	t := store.Get[Trust](tx, tTrusts, id)
	if t == nil {
		return c, expires, notFoundErr("trust", id)
	}
	if err := s.trustUsable(tx, t, c.User); err != nil {
		return c, expires, err
	}
	if t.RemainingUses != nil && *t.RemainingUses <= 0 {
		return c, expires, &api.Error{Status: http.StatusForbidden, Msg: "You are not authorized to perform the requested action: no remaining uses for trust " + id + "."}
	}
	now := s.cfg.Now().UTC()
	if t.RemainingUses != nil {
		// An outcome unknown is not a use given back: the error goes to
		// the client, and the use may be spent.
		if _, err := s.cfg.Repl.Propose(r.Context(), cmdTrustConsume, trustConsumeCmd{ID: id, At: now}); err != nil {
			return c, expires, err
		}
	}
	if expires.IsZero() {
		expires = now.Add(s.cfg.TokenTTL)
	}
	if t.ExpiresAt != nil && t.ExpiresAt.Before(expires) {
		expires = *t.ExpiresAt
	}
	return claims{User: c.User, Methods: c.Methods, Audit: c.Audit, Project: t.ProjectID, Trust: t.ID}, expires, nil
}

// trustRequest is the body of a create, read field by field so that a
// bad one is named.
type trustRequest struct {
	TrustorID, TrusteeID, ProjectID string
	Impersonation                   bool
	ExpiresAt                       *time.Time
	RemainingUses                   *int
	Roles                           []map[string]any
	AllowRedelegation               bool
	RedelegationCount               *int
}

func readTrustRequest(r *http.Request) (*trustRequest, error) {
	var body map[string]any
	if err := api.DecodeLoose(r, &body); err != nil {
		return nil, err
	}
	in, ok := body["trust"].(map[string]any)
	if !ok {
		return nil, api.BadField("trust", "'trust' is a required property")
	}
	var req trustRequest
	str := func(field string, required bool) (string, error) {
		v, ok := in[field]
		if !ok || v == nil {
			if required {
				return "", api.BadField("trust."+field, "'%s' is a required property", field)
			}
			return "", nil
		}
		s, ok := v.(string)
		if !ok || (required && s == "") {
			return "", api.BadField("trust."+field, "must be a non-empty string")
		}
		return s, nil
	}
	boolean := func(field string, required bool) (bool, error) {
		v, ok := in[field]
		if !ok || v == nil {
			if required {
				return false, api.BadField("trust."+field, "'%s' is a required property", field)
			}
			return false, nil
		}
		b, ok := v.(bool)
		if !ok {
			return false, api.BadField("trust."+field, "must be a boolean")
		}
		return b, nil
	}
	count := func(field string, min int) (*int, error) {
		v, ok := in[field]
		if !ok || v == nil {
			return nil, nil
		}
		f, ok := v.(float64)
		if !ok || f != math.Trunc(f) || f < float64(min) || f > math.MaxInt32 {
			return nil, api.BadField("trust."+field, "must be an integer of at least %d, or null", min)
		}
		n := int(f)
		return &n, nil
	}
	var err error
	if req.TrustorID, err = str("trustor_user_id", true); err != nil {
		return nil, err
	}
	if req.TrusteeID, err = str("trustee_user_id", true); err != nil {
		return nil, err
	}
	if req.Impersonation, err = boolean("impersonation", true); err != nil {
		return nil, err
	}
	if req.ProjectID, err = str("project_id", false); err != nil {
		return nil, err
	}
	if req.AllowRedelegation, err = boolean("allow_redelegation", false); err != nil {
		return nil, err
	}
	if req.RemainingUses, err = count("remaining_uses", 1); err != nil {
		return nil, err
	}
	if req.RedelegationCount, err = count("redelegation_count", 0); err != nil {
		return nil, err
	}
	if v, ok := in["expires_at"]; ok && v != nil {
		s, _ := v.(string)
		t, ok := parseExpiry(s)
		if !ok {
			return nil, api.BadField("trust.expires_at", "must be an ISO 8601 time")
		}
		req.ExpiresAt = &t
	}
	if v, ok := in["roles"]; ok && v != nil {
		list, ok := v.([]any)
		if !ok {
			return nil, api.BadField("trust.roles", "must be a list of roles")
		}
		for _, e := range list {
			ref, ok := e.(map[string]any)
			if !ok || len(ref) != 1 {
				return nil, api.BadField("trust.roles", "each role is {\"id\": …} or {\"name\": …}")
			}
			req.Roles = append(req.Roles, ref)
		}
	}
	return &req, nil
}

// createTrust makes a trust. As Keystone: only the trustor makes it, for
// roles it holds on the project; a token scoped by a trust makes one only
// by redelegating a trust that allows it, and a token from a restricted
// application credential makes none.
func (s *Service) createTrust(w http.ResponseWriter, r *http.Request) error {
	req, err := readTrustRequest(r)
	if err != nil {
		return err
	}
	tx, c, err := s.unrestrictedCaller(r)
	if err != nil {
		return err
	}
	if req.ProjectID != "" && len(req.Roles) == 0 {
		return &api.Error{Status: http.StatusForbidden, Msg: "You are not authorized to perform the requested action: at least one role should be specified."}
	}
	if req.ProjectID == "" && len(req.Roles) > 0 {
		return api.BadField("trust.roles", "roles are delegated on a project: project_id is required with them")
	}
	if c.User != req.TrustorID {
		return &api.Error{Status: http.StatusForbidden, Msg: "You are not authorized to perform the requested action: the authenticated user should match the trustor."}
	}
	if !exists(tx, tUsers, req.TrusteeID) {
		return notFoundErr("user", req.TrusteeID)
	}
	if req.ProjectID != "" && !exists(tx, tProjects, req.ProjectID) {
		return notFoundErr("project", req.ProjectID)
	}
	t := Trust{ID: api.NewHexID(), TrustorID: req.TrustorID, TrusteeID: req.TrusteeID, ProjectID: req.ProjectID,
		Impersonation: req.Impersonation, ExpiresAt: req.ExpiresAt, RemainingUses: req.RemainingUses, Roles: []string{}}
	// The roles the trustor may delegate: those it holds on the project;
	// through a token that is itself delegated, no more than that token.
	var held []string
	if req.ProjectID != "" {
		held = effectiveRoles(tx, c.User, "project", req.ProjectID)
		if c.AppCred != "" || c.Trust != "" {
			held = nil
			if c.Project == req.ProjectID {
				held = s.tokenRoles(tx, c)
			}
		}
	}
	if len(req.Roles) > 0 {
		if t.Roles, err = trustRoleIDs(tx, req.Roles, held); err != nil {
			return err
		}
	}
	if req.AllowRedelegation && (req.RedelegationCount == nil || *req.RedelegationCount > 0) {
		if req.RemainingUses != nil {
			return api.BadField("trust.remaining_uses", "must not be set if redelegation is allowed")
		}
		t.RedelegationCount = maxRedelegation
		if req.RedelegationCount != nil {
			if *req.RedelegationCount > maxRedelegation {
				return &api.Error{Status: http.StatusForbidden, Msg: "You are not authorized to perform the requested action: requested redelegation depth is greater than the allowed " + strconv.Itoa(maxRedelegation) + "."}
			}
			t.RedelegationCount = *req.RedelegationCount
		}
	}
	if c.Trust != "" {
		if err := redelegate(tx, &t, c.Trust, req); err != nil {
			return err
		}
	}
	// Unlike other grants, the create waits until every node has the
	// trust: the trustee (Heat, say) uses it at once, through any node,
	// and the tokens it gets are checked by any node.
	raw, err := json.Marshal(&t)
	if err != nil {
		return err
	}
	if err := s.narrow(r.Context(), cmdPut, putCmd{Table: tTrusts, Create: true, Row: raw, At: s.cfg.Now().UTC()}); err != nil {
		return err
	}
	api.JSON(w, http.StatusCreated, map[string]any{"trust": s.trustView(r, tx, &t, true)})
	return nil
}

// redelegate checks t against the trust the caller's token is scoped by
// (and those that one came from), as Keystone: that trust must allow
// redelegation; the new one delegates no more roles, on the same
// project, for no longer, impersonating only if it does, with no use
// limit, and may be redelegated one time fewer.
func redelegate(tx *memdb.Txn, t *Trust, from string, req *trustRequest) error {
	forbid := func(msg string) error {
		return &api.Error{Status: http.StatusForbidden, Msg: "You are not authorized to perform the requested action: " + msg}
	}
	chain := trustChain(tx, from)
	if chain == nil {
		return notFoundErr("trust", from)
	}
	parent := chain[0]
	if parent.RedelegationCount <= 0 {
		return forbid("the trust this token is scoped by does not allow redelegation.")
	}
	if req.RemainingUses != nil {
		return forbid("remaining_uses must not be set to redelegate a trust.")
	}
	if req.RedelegationCount != nil && req.AllowRedelegation && *req.RedelegationCount != parent.RedelegationCount-1 {
		return forbid("modifying redelegation_count upon redelegation is forbidden.")
	}
	if t.ProjectID != parent.ProjectID {
		return forbid("a redelegated trust is on the project of the trust it comes from.")
	}
	t.RedelegatedFrom = parent.ID
	t.RedelegationCount = 0
	if req.AllowRedelegation {
		t.RedelegationCount = parent.RedelegationCount - 1
	}
	for _, p := range chain {
		if p.ExpiresAt != nil {
			if t.ExpiresAt == nil {
				e := *p.ExpiresAt
				t.ExpiresAt = &e
			} else if t.ExpiresAt.After(*p.ExpiresAt) {
				return forbid("requested expiration time is more than the redelegated trust can provide.")
			}
		}
		for _, id := range t.Roles {
			if !contains(p.Roles, id) {
				return forbid("some of the requested roles are not in the redelegated trust.")
			}
		}
		if t.Impersonation && !p.Impersonation {
			return forbid("impersonation is not allowed because the redelegated trust does not impersonate.")
		}
	}
	return nil
}

// trustRoleIDs resolves the roles asked for (by id, or a global role by
// name): a role that does not exist is 404, one the trustor does not
// hold on the project is 403.
func trustRoleIDs(tx *memdb.Txn, asked []map[string]any, held []string) ([]string, error) {
	set := map[string]bool{}
	for _, ref := range asked {
		var role *Role
		what := ""
		if id, ok := ref["id"].(string); ok && id != "" {
			role, what = store.Get[Role](tx, tRoles, id), id
		} else if name, ok := ref["name"].(string); ok && name != "" {
			what = name
			if raw, _ := tx.First(tRoles, "name", roleKey("", name)); raw != nil {
				role = raw.(*Role)
			}
		} else {
			return nil, api.BadField("trust.roles", "each role needs an id or a name")
		}
		if role == nil {
			return nil, notFoundErr("role", what)
		}
		if !contains(held, role.ID) {
			return nil, &api.Error{Status: http.StatusForbidden, Msg: "You are not authorized to perform the requested action: the trustor does not hold role " + what + " on the project, so it cannot delegate it."}
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

// trustView is Keystone's trust; a listing leaves out the roles.
func (s *Service) trustView(r *http.Request, tx *memdb.Txn, t *Trust, withRoles bool) api.View {
	var expires, uses, project, from any
	if t.ExpiresAt != nil {
		expires = t.ExpiresAt.UTC().Format(timeFormat)
	}
	if t.RemainingUses != nil {
		uses = *t.RemainingUses
	}
	if t.ProjectID != "" {
		project = t.ProjectID
	}
	if t.RedelegatedFrom != "" {
		from = t.RedelegatedFrom
	}
	self := s.baseURL(r) + "/identity/v3/OS-TRUST/trusts/" + t.ID
	v := api.View{
		"id": t.ID, "trustor_user_id": t.TrustorID, "trustee_user_id": t.TrusteeID, "project_id": project,
		"impersonation": t.Impersonation, "expires_at": expires, "remaining_uses": uses,
		"allow_redelegation": t.RedelegationCount > 0, "redelegation_count": t.RedelegationCount,
		"redelegated_trust_id": from, "deleted_at": nil,
		"links": map[string]any{"self": self},
	}
	if withRoles {
		v["roles"] = s.trustRoleViews(r, tx, t)
		v["roles_links"] = map[string]any{"self": self + "/roles", "next": nil, "previous": nil}
	}
	return v
}

func (s *Service) trustRoleViews(r *http.Request, tx *memdb.Txn, t *Trust) []api.View {
	out := []api.View{}
	for _, id := range t.Roles {
		if role := store.Get[Role](tx, tRoles, id); role != nil {
			out = append(out, s.roleView(r, role))
		}
	}
	return out
}

// trustCaller is the caller's user as trusts know it: the user who
// authenticated (the trustee, for a token scoped by a trust, even when
// it impersonates the trustor), and whether it is an admin.
func (s *Service) trustCaller(r *http.Request, tx *memdb.Txn) (string, bool, error) {
	p := api.PrincipalFrom(r.Context())
	c, err := s.callerClaims(tx, p)
	if err != nil {
		return "", false, err
	}
	return c.User, p.IsAdmin(), nil
}

// listTrusts lists the trusts the caller is trustor or trustee of (an
// admin: all), filtered by trustor_user_id and trustee_user_id. Asking
// for another user's trusts is 403 unless admin.
func (s *Service) listTrusts(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.local(r.Context())
	if err != nil {
		return err
	}
	user, admin, err := s.trustCaller(r, tx)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	trustor, trustee := q.Get("trustor_user_id"), q.Get("trustee_user_id")
	if !admin && ((trustor != "" && trustor != user) || (trustee != "" && trustee != user)) {
		return &api.Error{Status: http.StatusForbidden, Msg: "You are not authorized to perform the requested action: identity:list_trusts."}
	}
	out := []api.View{}
	for _, t := range store.All[Trust](tx, tTrusts, "id") {
		if (trustor != "" && t.TrustorID != trustor) || (trustee != "" && t.TrusteeID != trustee) {
			continue
		}
		if !admin && t.TrustorID != user && t.TrusteeID != user {
			continue
		}
		out = append(out, s.trustView(r, tx, t, false))
	}
	api.JSON(w, http.StatusOK, map[string]any{"trusts": out, "links": s.links(r)})
	return nil
}

// trustOf is the trust in the URL, for its trustor, its trustee or an
// admin (for trustOnly: the trustor or an admin).
func (s *Service) trustOf(r *http.Request, tx *memdb.Txn, trustorOnly bool) (*Trust, error) {
	id := chi.URLParam(r, "id")
	t := store.Get[Trust](tx, tTrusts, id)
	if t == nil {
		return nil, notFoundErr("trust", id)
	}
	user, admin, err := s.trustCaller(r, tx)
	if err != nil {
		return nil, err
	}
	if admin || user == t.TrustorID || (!trustorOnly && user == t.TrusteeID) {
		return t, nil
	}
	return nil, &api.Error{Status: http.StatusForbidden, Msg: "You are not authorized to perform the requested action: requested user has no relation to this trust."}
}

// trustInURL is the local state and the trust in the URL, for its
// trustor, its trustee or an admin.
func (s *Service) trustInURL(r *http.Request) (*memdb.Txn, *Trust, error) {
	tx, err := s.local(r.Context())
	if err != nil {
		return nil, nil, err
	}
	t, err := s.trustOf(r, tx, false)
	return tx, t, err
}

func (s *Service) showTrust(w http.ResponseWriter, r *http.Request) error {
	tx, t, err := s.trustInURL(r)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"trust": s.trustView(r, tx, t, true)})
	return nil
}

// deleteTrust removes a trust and the trusts redelegated from it; the
// tokens scoped by them die with them, on every node once the call
// returns (see remove).
func (s *Service) deleteTrust(w http.ResponseWriter, r *http.Request) error {
	tx, _, err := s.unrestrictedCaller(r)
	if err != nil {
		return err
	}
	t, err := s.trustOf(r, tx, true)
	if err != nil {
		return err
	}
	if err := s.remove(r, tTrusts, t.ID); err != nil {
		return err
	}
	return noContent(w)
}

func (s *Service) listTrustRoles(w http.ResponseWriter, r *http.Request) error {
	tx, t, err := s.trustInURL(r)
	if err != nil {
		return err
	}
	self := s.baseURL(r) + "/identity/v3/OS-TRUST/trusts/" + t.ID + "/roles"
	api.JSON(w, http.StatusOK, map[string]any{"roles": s.trustRoleViews(r, tx, t), "links": map[string]any{"self": self, "next": nil, "previous": nil}})
	return nil
}

func (s *Service) showTrustRole(w http.ResponseWriter, r *http.Request) error {
	tx, t, err := s.trustInURL(r)
	if err != nil {
		return err
	}
	id := chi.URLParam(r, "role")
	role := store.Get[Role](tx, tRoles, id)
	if role == nil || !contains(t.Roles, id) {
		return notFoundErr("role", id)
	}
	api.JSON(w, http.StatusOK, map[string]any{"role": s.roleView(r, role)})
	return nil
}

// deleteTrustsOf removes the trusts matched by index and args, with the
// trusts redelegated from them.
func deleteTrustsOf(tx *memdb.Txn, index string, args ...any) error {
	for _, t := range store.All[Trust](tx, tTrusts, index, args...) {
		if err := deleteTrustTree(tx, t.ID); err != nil {
			return err
		}
	}
	return nil
}

// deleteTrustTree removes a trust and every trust redelegated from it.
func deleteTrustTree(tx *memdb.Txn, id string) error {
	t := store.Get[Trust](tx, tTrusts, id)
	if t == nil {
		return nil // already gone with another branch
	}
	for _, child := range store.All[Trust](tx, tTrusts, "from", id) {
		if err := deleteTrustTree(tx, child.ID); err != nil {
			return err
		}
	}
	return tx.Delete(tTrusts, t)
}

// refuseTrustScoped refuses a token scoped by a trust the making of
// credentials (application credentials, EC2 and other credentials):
// they would outlive the trust and, made for an impersonated trustor,
// hold all its roles rather than those delegated.
func (s *Service) refuseTrustScoped(r *http.Request, what string) error {
	tx, err := s.local(r.Context())
	if err != nil {
		return err
	}
	c, err := s.callerClaims(tx, api.PrincipalFrom(r.Context()))
	if err != nil {
		return err
	}
	if c.Trust != "" {
		return &api.Error{Status: http.StatusForbidden, Msg: "You are not authorized to perform the requested action: a token scoped by a trust cannot create " + what + "."}
	}
	return nil
}
