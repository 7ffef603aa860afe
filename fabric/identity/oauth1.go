package identity

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Keystone's OS-OAUTH1: delegated authentication for a program (a
// consumer) that a user lets act with some of its roles on one project,
// without the user's password.
//
//  1. An admin registers the consumer: its id (the OAuth consumer key)
//     and a secret shown once.
//  2. The consumer asks for a request token for a project (POST
//     /v3/OS-OAUTH1/request_token, signed with its secret).
//  3. The user authorizes it with roles it holds there (PUT
//     /v3/OS-OAUTH1/authorize/{id}) and hands the verifier back.
//  4. The consumer trades request token and verifier for an access token
//     (POST /v3/OS-OAUTH1/access_token, signed with both secrets): one
//     command that makes the access token and consumes the request token.
//  5. It authenticates (method "oauth1", signed with its secret and the
//     access token's): a token on the project holding the authorized
//     roles the user still holds, void once the access token, its
//     consumer, the user or the project is gone.
//
// Secrets (the consumer's, each token's, the verifier) are sealed with
// the cluster key before they are proposed, as credential blobs are: the
// log and its snapshots hold none in clear. A token from an access token
// cannot be rescoped, used to get another token, or used to delegate
// further (trusts, application credentials, more authorizations).
// Signatures are RFC 5849's (oauth1_sig.go); like Keystone (its oauthlib
// validator takes every nonce), nonces are not remembered: a request is
// taken within ten minutes of its timestamp.

const (
	tConsumers     = "oauth_consumers"
	tRequestTokens = "oauth_request_tokens"
	tAccessTokens  = "oauth_access_tokens"

	cmdOAuthAuthorize = "identity.oauth1.authorize"
	cmdOAuthExchange  = "identity.oauth1.exchange"

	// Keystone's [oauth1] request_token_duration and access_token_duration.
	requestTokenTTL = 8 * time.Hour
	accessTokenTTL  = 24 * time.Hour
)

// Consumer is an OAuth consumer; its id is the consumer key.
type Consumer struct {
	ID          string `json:"id"`
	Description string `json:"description"`
	Secret      string `json:"secret"` // sealed, the id bound in
}

// RequestToken is a consumer's request for a project, authorized (or
// not yet) by a user with some of its roles.
type RequestToken struct {
	ID                string    `json:"id"`
	Secret            string    `json:"secret"` // sealed
	ConsumerID        string    `json:"consumer_id"`
	ProjectID         string    `json:"project_id"`
	ExpiresAt         time.Time `json:"expires_at"`
	AuthorizingUserID string    `json:"authorizing_user_id,omitempty"`
	Roles             []string  `json:"roles,omitempty"`
	Verifier          string    `json:"verifier,omitempty"` // sealed
}

// AccessToken is what a consumer authenticates with.
type AccessToken struct {
	ID                string    `json:"id"`
	Secret            string    `json:"secret"` // sealed
	ConsumerID        string    `json:"consumer_id"`
	ProjectID         string    `json:"project_id"`
	AuthorizingUserID string    `json:"authorizing_user_id"`
	Roles             []string  `json:"roles"`
	ExpiresAt         time.Time `json:"expires_at"`
}

func oauthTables() []store.Table {
	opt := func(name, field string) *memdb.IndexSchema {
		return &memdb.IndexSchema{Name: name, AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: field}}
	}
	return []store.Table{
		store.NewTable(tConsumers, &Consumer{}),
		store.NewTable(tRequestTokens, &RequestToken{}, store.StringIndex("consumer", "ConsumerID", false), store.StringIndex("project", "ProjectID", false), opt("user", "AuthorizingUserID")),
		store.NewTable(tAccessTokens, &AccessToken{}, store.StringIndex("consumer", "ConsumerID", false), store.StringIndex("project", "ProjectID", false), store.StringIndex("user", "AuthorizingUserID", false)),
	}
}

func (s *Service) oauthRoutes() []api.Route {
	return []api.Route{
		route("POST", "/v3/OS-OAUTH1/consumers", api.Admin, "identity:create_consumer", s.createConsumer),
		route("GET", "/v3/OS-OAUTH1/consumers", api.Admin, "identity:list_consumers", s.listConsumers),
		route("GET", "/v3/OS-OAUTH1/consumers/{id}", api.Admin, "identity:get_consumer", s.showConsumer),
		route("PATCH", "/v3/OS-OAUTH1/consumers/{id}", api.Admin, "identity:update_consumer", s.updateConsumer),
		route("DELETE", "/v3/OS-OAUTH1/consumers/{id}", api.Admin, "identity:delete_consumer", s.deleteRow(tConsumers)),
		// The signature is the authentication.
		route("POST", "/v3/OS-OAUTH1/request_token", api.Public, "", s.createRequestToken),
		route("POST", "/v3/OS-OAUTH1/access_token", api.Public, "", s.createAccessToken),
		route("PUT", "/v3/OS-OAUTH1/authorize/{id}", api.Authenticated, "identity:authorize_request_token", s.authorizeRequestToken),
		route("GET", "/v3/users/{id}/OS-OAUTH1/access_tokens", api.Authenticated, "identity:list_access_tokens", selfOrAdmin(s.listAccessTokens)),
		route("GET", "/v3/users/{id}/OS-OAUTH1/access_tokens/{token}", api.Authenticated, "identity:get_access_token", selfOrAdmin(s.showAccessToken)),
		route("DELETE", "/v3/users/{id}/OS-OAUTH1/access_tokens/{token}", api.Authenticated, "identity:delete_access_token", selfOrAdmin(s.deleteAccessToken)),
		route("GET", "/v3/users/{id}/OS-OAUTH1/access_tokens/{token}/roles", api.Authenticated, "identity:list_access_token_roles", selfOrAdmin(s.listAccessTokenRoles)),
		route("GET", "/v3/users/{id}/OS-OAUTH1/access_tokens/{token}/roles/{role}", api.Authenticated, "identity:get_access_token_role", selfOrAdmin(s.showAccessTokenRole)),
	}
}

// newOAuthSecret is a token's or consumer's secret.
func newOAuthSecret() string { return newAppCredSecret()[:32] }

// newVerifier is eight letters and digits, as Keystone's.
func newVerifier() string {
	const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 8)
	for i := range b {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(chars))))
		if err != nil {
			panic(err) // crypto/rand does not fail on Linux
		}
		b[i] = chars[n.Int64()]
	}
	return string(b)
}

func (s *Service) consumerView(r *http.Request, c *Consumer) api.View {
	return api.View{"id": c.ID, "description": c.Description, "links": s.self(r, "OS-OAUTH1/consumers", c.ID)}
}

func (s *Service) createConsumer(w http.ResponseWriter, r *http.Request) error {
	in, err := body(r, "consumer")
	if err != nil {
		return err
	}
	if in.Has("secret") || in.Has("id") {
		return api.BadField("consumer", "a consumer's id and secret are made by the server")
	}
	c := Consumer{ID: api.NewHexID(), Description: str(in, "description", "")}
	if in.Err != nil {
		return in.Err
	}
	secret := newOAuthSecret()
	if c.Secret, err = s.sealBlob(c.ID, secret); err != nil {
		return err
	}
	if err := s.put(r, tConsumers, true, &c); err != nil {
		return err
	}
	v := s.consumerView(r, &c)
	v["secret"] = secret // shown once
	api.JSON(w, http.StatusCreated, map[string]any{"consumer": v})
	return nil
}

func (s *Service) listConsumers(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.local(r.Context())
	if err != nil {
		return err
	}
	out := []api.View{}
	for _, c := range store.All[Consumer](tx, tConsumers, "id") {
		out = append(out, s.consumerView(r, c))
	}
	api.JSON(w, http.StatusOK, map[string]any{"consumers": out, "links": s.links(r)})
	return nil
}

func (s *Service) readConsumer(r *http.Request) (*memdb.Txn, *Consumer, error) {
	tx, err := s.local(r.Context())
	if err != nil {
		return nil, nil, err
	}
	c := store.Get[Consumer](tx, tConsumers, chi.URLParam(r, "id"))
	if c == nil {
		return nil, nil, notFoundErr("consumer", chi.URLParam(r, "id"))
	}
	return tx, c, nil
}

func (s *Service) showConsumer(w http.ResponseWriter, r *http.Request) error {
	_, c, err := s.readConsumer(r)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"consumer": s.consumerView(r, c)})
	return nil
}

func (s *Service) updateConsumer(w http.ResponseWriter, r *http.Request) error {
	_, old, err := s.readConsumer(r)
	if err != nil {
		return err
	}
	in, err := body(r, "consumer")
	if err != nil {
		return err
	}
	if in.Has("secret") {
		return api.BadField("consumer.secret", "a consumer's secret cannot be changed")
	}
	if id := in.Str("id", old.ID, 0); id != old.ID {
		return api.BadField("consumer.id", "a consumer's id cannot be changed")
	}
	c := *old
	c.Description = str(in, "description", old.Description)
	if in.Err != nil {
		return in.Err
	}
	if err := s.put(r, tConsumers, false, &c); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"consumer": s.consumerView(r, &c)})
	return nil
}

// errOAuth is Keystone's answer to a request whose OAuth signature or
// tokens do not check out.
func errOAuth(msg string) error {
	return &api.Error{Status: http.StatusUnauthorized, Msg: "The request you have made requires authentication: " + msg}
}

// signedBy checks an OAuth-signed request against the consumer and, for
// the steps after the first, its token (table tRequestTokens or
// tAccessTokens). It returns the parsed request, the consumer and the
// token's row.
func (s *Service) signedBy(r *http.Request, tx *memdb.Txn, tokenTable string) (*oauthRequest, *Consumer, any, error) {
	o, err := parseOAuth(r)
	if err != nil {
		return nil, nil, nil, errOAuth(err.Error())
	}
	c := store.Get[Consumer](tx, tConsumers, o.params["oauth_consumer_key"])
	if c == nil {
		return nil, nil, nil, errOAuth("unknown consumer")
	}
	csecret, err := s.openSealed(c.ID, c.Secret)
	if err != nil {
		return nil, nil, nil, err
	}
	var row any
	tsecret := ""
	if tokenTable != "" {
		id := o.params["oauth_token"]
		var sealed string
		switch tokenTable {
		case tRequestTokens:
			if t := store.Get[RequestToken](tx, tRequestTokens, id); t != nil && t.ConsumerID == c.ID {
				row, sealed = t, t.Secret
			}
		case tAccessTokens:
			if t := store.Get[AccessToken](tx, tAccessTokens, id); t != nil && t.ConsumerID == c.ID {
				row, sealed = t, t.Secret
			}
		}
		if row == nil {
			return nil, nil, nil, errOAuth("unknown token for this consumer")
		}
		if tsecret, err = s.openSealed(id, sealed); err != nil {
			return nil, nil, nil, err
		}
	}
	if err := o.verify(csecret, tsecret, s.cfg.Now()); err != nil {
		return nil, nil, nil, errOAuth(err.Error())
	}
	return o, c, row, nil
}

// formAnswer writes an OAuth token answer, form-encoded as OAuth's are.
func formAnswer(w http.ResponseWriter, id, secret string, expires time.Time) {
	w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
	w.WriteHeader(http.StatusCreated)
	w.Write([]byte(url.Values{"oauth_token": {id}, "oauth_token_secret": {secret}, "oauth_expires_at": {expires.UTC().Format(timeFormat)}}.Encode()))
}

func (s *Service) createRequestToken(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.local(r.Context())
	if err != nil {
		return err
	}
	_, c, _, err := s.signedBy(r, tx, "")
	if err != nil {
		return err
	}
	// Clients send it as Requested-Project-Id or requested_project_id.
	project := r.Header.Get("Requested-Project-Id")
	if project == "" {
		project = r.Header.Get("Requested_project_id")
	}
	if project == "" {
		return api.BadField("Requested-Project-Id", "the header naming the project is required")
	}
	if p := store.Get[Project](tx, tProjects, project); p == nil || !p.Enabled {
		return notFoundErr("project", project)
	}
	t := RequestToken{ID: api.NewHexID(), ConsumerID: c.ID, ProjectID: project, ExpiresAt: s.cfg.Now().Add(requestTokenTTL).UTC()}
	secret := newOAuthSecret()
	if t.Secret, err = s.sealBlob(t.ID, secret); err != nil {
		return err
	}
	if err := s.put(r, tRequestTokens, true, &t); err != nil {
		return err
	}
	formAnswer(w, t.ID, secret, t.ExpiresAt)
	return nil
}

// oauthAuthorize authorizes a request token (cmdOAuthAuthorize).
type oauthAuthorize struct {
	ID       string    `json:"id"`
	UserID   string    `json:"user_id"`
	Roles    []string  `json:"roles"`
	Verifier string    `json:"verifier"` // sealed
	At       time.Time `json:"at"`
}

func (s *Service) authorizeRequestToken(w http.ResponseWriter, r *http.Request) error {
	tx, c, err := s.unrestrictedCaller(r)
	if err != nil {
		return err
	}
	if c.Trust != "" || c.OAuth != "" {
		return &api.Error{Status: http.StatusForbidden, Msg: "You are not authorized to perform the requested action: a delegated token cannot authorize a request token."}
	}
	var req struct {
		Roles []map[string]any `json:"roles"`
	}
	if err := api.DecodeLoose(r, &req); err != nil {
		return err
	}
	t := store.Get[RequestToken](tx, tRequestTokens, chi.URLParam(r, "id"))
	if t == nil {
		return notFoundErr("request token", chi.URLParam(r, "id"))
	}
	if !s.cfg.Now().Before(t.ExpiresAt) {
		return errOAuth("the request token has expired")
	}
	if t.AuthorizingUserID != "" {
		return &api.Error{Status: http.StatusUnauthorized, Msg: "The request token has already been authorized."}
	}
	if len(req.Roles) == 0 {
		return api.BadField("roles", "at least one role is required")
	}
	held := effectiveRoles(tx, c.User, "project", t.ProjectID)
	ids, err := trustRoleIDs(tx, req.Roles, held)
	if err != nil {
		return err
	}
	verifier := newVerifier()
	sealed, err := s.sealBlob(t.ID, verifier)
	if err != nil {
		return err
	}
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdOAuthAuthorize, oauthAuthorize{ID: t.ID, UserID: c.User, Roles: ids, Verifier: sealed, At: s.cfg.Now().UTC()}, nil); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"token": map[string]any{"oauth_verifier": verifier}})
	return nil
}

func applyOAuthAuthorize(tx *memdb.Txn, a oauthAuthorize) (any, error) {
	t := store.Get[RequestToken](tx, tRequestTokens, a.ID)
	if t == nil {
		return nil, notFound("Could not find request token: %s.", a.ID)
	}
	if t.AuthorizingUserID != "" {
		return nil, store.Conflictf("The request token has already been authorized.")
	}
	if !a.At.Before(t.ExpiresAt) {
		return nil, invalid("The request token has expired.")
	}
	if !exists(tx, tUsers, a.UserID) {
		return nil, notFound("Could not find user: %s.", a.UserID)
	}
	n := *t
	n.AuthorizingUserID, n.Roles, n.Verifier = a.UserID, a.Roles, a.Verifier
	return nil, tx.Insert(tRequestTokens, &n)
}

// oauthExchange makes an access token from a request token, which it
// consumes (cmdOAuthExchange): both or neither.
type oauthExchange struct {
	RequestID string      `json:"request_id"`
	Access    AccessToken `json:"access"`
	At        time.Time   `json:"at"`
}

func (s *Service) createAccessToken(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.local(r.Context())
	if err != nil {
		return err
	}
	o, c, row, err := s.signedBy(r, tx, tRequestTokens)
	if err != nil {
		return err
	}
	rt := row.(*RequestToken)
	if !s.cfg.Now().Before(rt.ExpiresAt) {
		return errOAuth("the request token has expired")
	}
	if rt.AuthorizingUserID == "" {
		return errOAuth("the request token has not been authorized")
	}
	want, err := s.openSealed(rt.ID, rt.Verifier)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(o.params["oauth_verifier"])) != 1 {
		return errOAuth("the verifier does not match the request token's")
	}
	at := AccessToken{ID: api.NewHexID(), ConsumerID: c.ID, ProjectID: rt.ProjectID, AuthorizingUserID: rt.AuthorizingUserID,
		Roles: rt.Roles, ExpiresAt: s.cfg.Now().Add(accessTokenTTL).UTC()}
	secret := newOAuthSecret()
	if at.Secret, err = s.sealBlob(at.ID, secret); err != nil {
		return err
	}
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdOAuthExchange, oauthExchange{RequestID: rt.ID, Access: at, At: s.cfg.Now().UTC()}, nil); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return errOAuth("the request token was used already")
		}
		return err
	}
	formAnswer(w, at.ID, secret, at.ExpiresAt)
	return nil
}

func applyOAuthExchange(tx *memdb.Txn, e oauthExchange) (any, error) {
	rt := store.Get[RequestToken](tx, tRequestTokens, e.RequestID)
	if rt == nil {
		return nil, notFound("Could not find request token: %s.", e.RequestID)
	}
	if rt.AuthorizingUserID == "" || rt.ConsumerID != e.Access.ConsumerID || rt.ProjectID != e.Access.ProjectID || rt.AuthorizingUserID != e.Access.AuthorizingUserID {
		return nil, invalid("The access token does not match its request token.")
	}
	if !e.At.Before(rt.ExpiresAt) {
		return nil, invalid("The request token has expired.")
	}
	a := e.Access
	if err := checkRow(tx, &a); err != nil {
		return nil, err
	}
	if err := tx.Delete(tRequestTokens, rt); err != nil {
		return nil, err
	}
	return nil, tx.Insert(tAccessTokens, &a)
}

// identifyOAuth authenticates a token request by an access token.
func (s *Service) identifyOAuth(r *http.Request, tx *memdb.Txn) (claims, time.Time, error) {
	_, _, row, err := s.signedBy(r, tx, tAccessTokens)
	if err != nil {
		return claims{}, time.Time{}, err
	}
	at := row.(*AccessToken)
	c := claims{User: at.AuthorizingUserID, Project: at.ProjectID, OAuth: at.ID, Methods: []string{"oauth1"}}
	if !s.cfg.Now().Before(at.ExpiresAt) || len(s.tokenRoles(tx, c)) == 0 {
		return claims{}, time.Time{}, errUnauthorized
	}
	expires := s.cfg.Now().Add(s.cfg.TokenTTL)
	if at.ExpiresAt.Before(expires) {
		expires = at.ExpiresAt
	}
	return c, expires, nil
}

// oauthRoles are the roles a token from an access token holds: the
// authorized ones (with what they imply) the user still holds there.
func (s *Service) oauthRoles(tx *memdb.Txn, c claims, held []string) []string {
	at := store.Get[AccessToken](tx, tAccessTokens, c.OAuth)
	if at == nil || at.AuthorizingUserID != c.User || at.ProjectID != c.Project || !s.cfg.Now().Before(at.ExpiresAt) {
		return nil
	}
	return delegatedRoles(tx, held, at.Roles)
}

func (s *Service) accessTokenView(r *http.Request, t *AccessToken) api.View {
	return api.View{"id": t.ID, "consumer_id": t.ConsumerID, "project_id": t.ProjectID, "authorizing_user_id": t.AuthorizingUserID,
		"expires_at": t.ExpiresAt.UTC().Format(timeFormat),
		"links":      s.self(r, "users/"+t.AuthorizingUserID+"/OS-OAUTH1/access_tokens", t.ID)}
}

// userAccessToken reads the access token {token} of user {id}.
func (s *Service) userAccessToken(r *http.Request) (*memdb.Txn, *AccessToken, error) {
	tx, err := s.local(r.Context())
	if err != nil {
		return nil, nil, err
	}
	t := store.Get[AccessToken](tx, tAccessTokens, chi.URLParam(r, "token"))
	if t == nil || t.AuthorizingUserID != chi.URLParam(r, "id") {
		return nil, nil, notFoundErr("access token", chi.URLParam(r, "token"))
	}
	return tx, t, nil
}

func (s *Service) listAccessTokens(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.local(r.Context())
	if err != nil {
		return err
	}
	out := []api.View{}
	for _, t := range store.All[AccessToken](tx, tAccessTokens, "user", chi.URLParam(r, "id")) {
		out = append(out, s.accessTokenView(r, t))
	}
	api.JSON(w, http.StatusOK, map[string]any{"access_tokens": out, "links": s.links(r)})
	return nil
}

func (s *Service) showAccessToken(w http.ResponseWriter, r *http.Request) error {
	_, t, err := s.userAccessToken(r)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"access_token": s.accessTokenView(r, t)})
	return nil
}

func (s *Service) deleteAccessToken(w http.ResponseWriter, r *http.Request) error {
	if _, _, err := s.userAccessToken(r); err != nil {
		return err
	}
	if err := s.remove(r, tAccessTokens, chi.URLParam(r, "token")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) accessTokenRoleView(r *http.Request, role *Role) api.View {
	v := api.View{"id": role.ID, "name": role.Name, "links": s.self(r, "roles", role.ID)}
	if role.DomainID != "" {
		v["domain_id"] = role.DomainID
	}
	return v
}

func (s *Service) listAccessTokenRoles(w http.ResponseWriter, r *http.Request) error {
	tx, t, err := s.userAccessToken(r)
	if err != nil {
		return err
	}
	out := []api.View{}
	for _, id := range t.Roles {
		if role := store.Get[Role](tx, tRoles, id); role != nil {
			out = append(out, s.accessTokenRoleView(r, role))
		}
	}
	api.JSON(w, http.StatusOK, map[string]any{"roles": out, "links": s.links(r)})
	return nil
}

func (s *Service) showAccessTokenRole(w http.ResponseWriter, r *http.Request) error {
	tx, t, err := s.userAccessToken(r)
	if err != nil {
		return err
	}
	id := chi.URLParam(r, "role")
	role := store.Get[Role](tx, tRoles, id)
	if role == nil || !slices.Contains(t.Roles, id) {
		return notFoundErr("role", id)
	}
	api.JSON(w, http.StatusOK, map[string]any{"role": s.accessTokenRoleView(r, role)})
	return nil
}

// oauthBody is the OS-OAUTH1 part of a token's body.
func oauthBody(tx *memdb.Txn, c claims) (map[string]any, bool) {
	if c.OAuth == "" {
		return nil, false
	}
	at := store.Get[AccessToken](tx, tAccessTokens, c.OAuth)
	if at == nil {
		return nil, false
	}
	return map[string]any{"access_token_id": at.ID, "consumer_id": at.ConsumerID}, true
}
