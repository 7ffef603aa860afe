// Package identity is Rackstack's Keystone v3: domains, projects, users,
// groups, roles and assignments, the service catalog, credentials (EC2 for
// S3), application credentials, trusts (OS-TRUST), and tokens any node
// can verify without a Raft round trip.
//
// It keeps its state in the replicated store and never does I/O in a
// command handler; passwords are hashed (bcrypt) before a command is
// proposed, and no handler or log line ever sees a clear-text secret.
//
// # Revocation is effective everywhere when the call returns
//
// Tokens and EC2 signatures are checked against the answering node's own
// state, without a Raft round trip. A call that takes access away — token
// revoke (DELETE /v3/auth/tokens), a password change, a user disabled or
// deleted, a role grant, group membership, role, project or domain
// removed, a credential deleted or changed — answers only after its write
// is applied on every member of the cluster, or after every member that
// did not confirm it (frozen, partitioned, dead) has lost its state lease:
// a node checks tokens from local state only for a short lease (3 s by
// default) after it last caught up with the leader, and must catch up
// again, past the revocation, before its next check. So a request that
// starts after the revoking call returned is refused on every node; one
// already running may finish. While a member is unreachable, such calls
// take one lease longer; a node cut off from the leader refuses tokens
// (503) rather than trust old state. Single-process stores (tests) have
// one state and nothing to wait for.
package identity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"
	"golang.org/x/crypto/bcrypt"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// CatalogService is one service in the catalog. Path may hold
// "{project_id}", replaced by the token's project.
// Path is appended to the base URL, or used as it is when it is an
// absolute URL (a service on its own listener).
type CatalogService struct{ Type, Name, Path string }

// Config configures the identity service.
type Config struct {
	Repl      store.Replicated
	Log       *slog.Logger
	Now       func() time.Time
	TokenTTL  time.Duration // default 1h
	Region    string        // default RegionOne
	PublicURL string        // base of catalog URLs; default: the URL the client used
	Services  []CatalogService
	IsLeader  func() bool
	// RotateEvery is how often the signing key changes (default 24h).
	RotateEvery time.Duration
	// BcryptCost defaults to bcrypt.DefaultCost.
	BcryptCost int
	// Secrets seals credential blobs before they are proposed (the
	// cluster key). Nil keeps them in clear: for single-process tests.
	Secrets Sealer
}

// Sealer encrypts secrets bound to the id of the row that holds them;
// Open passes a value stored in clear by an older build through as is.
type Sealer interface {
	Seal(plain, aad []byte) (string, error)
	Open(value string, aad []byte) ([]byte, error)
}

// Service serves Keystone v3 and validates tokens for every other service.
type Service struct {
	cfg      Config
	log      *slog.Logger
	throttle *loginThrottle
	// ec2CatchUps shares the catch-ups of refused EC2 keys (ec2current.go).
	ec2CatchUps catchUps
}

// New builds the service.
func New(cfg Config) (*Service, error) {
	if cfg.Repl == nil {
		return nil, errors.New("identity: Config.Repl is required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = time.Hour
	}
	if cfg.TokenTTL > maxTokenTTL {
		return nil, fmt.Errorf("identity: token ttl %s exceeds the maximum %s", cfg.TokenTTL, maxTokenTTL)
	}
	if cfg.Region == "" {
		cfg.Region = "RegionOne"
	}
	if cfg.IsLeader == nil {
		cfg.IsLeader = func() bool { return true }
	}
	if cfg.RotateEvery <= 0 {
		cfg.RotateEvery = 24 * time.Hour
	}
	if cfg.BcryptCost == 0 {
		cfg.BcryptCost = bcrypt.DefaultCost
	}
	return &Service{cfg: cfg, log: cfg.Log, throttle: newLoginThrottle()}, nil
}

// local reads this node's state without a round trip while the node's
// state lease holds: it sees every revocation whose call has returned.
func (s *Service) local(ctx context.Context) (*memdb.Txn, error) {
	return store.Current(ctx, s.cfg.Repl)
}

// current reads this node's state caught up with every write
// acknowledged anywhere before the call (on a follower, one round trip to
// the leader), and under the node's lease as local is. A grant, user or
// project made through another node less than a lease ago may be missing
// from local's state; a check that would refuse for want of it reads
// current before it refuses.
func (s *Service) current(ctx context.Context) (*memdb.Txn, error) {
	if _, err := s.cfg.Repl.Read(ctx); err != nil {
		return nil, err
	}
	// The state only moves forward: this read holds all Read caught up
	// with, and local's lease keeps revocations effective.
	return s.local(ctx)
}

// recheckWithin is how recently a token must have been issued for a
// refusal from local state to be checked again against current state: a
// token is issued only with the grants it needs, so one issued long ago
// that this node refuses is refused for good, and bad or forged tokens
// never cost a round trip. It is far longer than any state lease.
const recheckWithin = time.Minute

// validateCurrent validates tok against tx, a local read, and refuses
// only once current state agrees if the token was issued recently: it may
// have been issued by a node that saw a grant (or its user, or project)
// this node has not applied yet. It returns the read it decided on.
func (s *Service) validateCurrent(ctx context.Context, tx *memdb.Txn, tok string) (*memdb.Txn, *api.Principal, claims, error) {
	p, c, err := s.validate(tx, tok)
	if err == nil {
		return tx, p, c, nil
	}
	pc, perr := parse(tx, tok)
	if perr != nil || s.cfg.Now().Sub(pc.issued()) > recheckWithin {
		return tx, p, c, err
	}
	fresh, ferr := s.current(ctx)
	if ferr != nil {
		return tx, p, c, err
	}
	p, c, err = s.validate(fresh, tok)
	return fresh, p, c, err
}

// narrow proposes a write that takes access away (a revocation, a
// disabled or deleted user, a removed grant or credential) and returns
// only once no node will accept what it took away: see the package doc.
func (s *Service) narrow(ctx context.Context, typ string, body any) error {
	res, err := s.cfg.Repl.Propose(ctx, typ, body)
	if err != nil {
		return err
	}
	return store.AwaitEverywhere(ctx, s.cfg.Repl, res.Index)
}

// Bootstrap creates the default domain, the admin, member and reader roles,
// the admin and service projects, the admin user (with password, only when
// it does not exist yet), the first signing key and the catalog of the
// services this build runs. It is idempotent.
func (s *Service) Bootstrap(ctx context.Context, adminPassword string) error {
	hash, err := bcrypt.GenerateFromPassword([]byte(adminPassword), s.cfg.BcryptCost)
	if err != nil {
		return fmt.Errorf("hash admin password: %w", err)
	}
	now := s.cfg.Now().UTC()
	c := bootstrapCmd{
		AdminProject: Project{ID: api.NewHexID(), Name: "admin", DomainID: "default", ParentID: "default", Description: "Bootstrap project for initializing the cloud.", Enabled: true, Tags: []string{}},
		Service:      Project{ID: api.NewHexID(), Name: "service", DomainID: "default", ParentID: "default", Description: "Project for service users.", Enabled: true, Tags: []string{}},
		Admin:        User{ID: api.NewHexID(), Name: "admin", DomainID: "default", Enabled: true, PasswordHash: hash},
		Key:          newKey(now),
	}
	for _, r := range []string{"admin", "member", "reader"} {
		c.Roles = append(c.Roles, Role{ID: api.NewHexID(), Name: r})
	}
	if _, err := s.cfg.Repl.Propose(ctx, cmdBootstrap, c); err != nil {
		return err
	}
	return s.SeedCatalog(ctx)
}

// Run rotates the signing key while this node leads, and seeds the
// catalog once; it returns when ctx ends.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	flush := time.NewTicker(flushEvery)
	defer flush.Stop()
	// Once per start, the leader adds the services of this build missing
	// from the catalog (a cluster bootstrapped by an older build has none).
	seeded, sealed := false, false
	for {
		if !seeded && s.cfg.IsLeader() {
			if err := s.SeedCatalog(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("seed the service catalog", "err", err)
			} else {
				seeded = true
			}
		}
		if !sealed && s.cfg.IsLeader() {
			if err := s.sealPlaintextCredentials(ctx); err != nil && ctx.Err() == nil {
				s.log.Debug("seal credentials stored in clear", "err", err)
			} else {
				sealed = true
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-flush.C:
			if err := s.flushFailures(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("record failed logins", "err", err)
			}
			continue
		case <-t.C:
		}
		if err := s.rotateIfDue(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("rotate signing key", "err", err)
		}
	}
}

func (s *Service) rotateIfDue(ctx context.Context) error {
	if !s.cfg.IsLeader() {
		return nil
	}
	tx, err := s.local(ctx)
	if err != nil {
		return err
	}
	now := s.cfg.Now().UTC()
	k := newestKey(tx)
	if k == nil || now.Sub(k.CreatedAt) < s.cfg.RotateEvery {
		return nil
	}
	// Keep every key a live token may still be signed with: the one in use
	// until now signed tokens up to TokenTTL ago.
	_, err = s.cfg.Repl.Propose(ctx, cmdRotateKeys, rotateCmd{Key: newKey(now), PruneBefore: k.CreatedAt, Now: now})
	if err == nil {
		s.log.Info("rotated token signing key")
	}
	return err
}

// Validate implements api.Authenticator from this node's state alone.
func (s *Service) Validate(ctx context.Context, tok string) (*api.Principal, error) {
	tx, err := s.local(ctx)
	if err != nil {
		return nil, err
	}
	_, p, _, err := s.validateCurrent(ctx, tx, tok)
	return p, err
}

// validate checks a token and builds its principal.
func (s *Service) validate(tx *memdb.Txn, tok string) (*api.Principal, claims, error) {
	c, err := parse(tx, tok)
	if err != nil {
		return nil, c, err
	}
	if !s.cfg.Now().Before(c.expires()) || revoked(tx, c) {
		return nil, c, errBadToken
	}
	u := store.Get[User](tx, tUsers, c.User)
	if u == nil || !u.Enabled {
		return nil, c, errBadToken
	}
	d := store.Get[Domain](tx, tDomains, u.DomainID)
	if d == nil || !d.Enabled {
		return nil, c, errBadToken
	}
	if (c.AppCred != "" || c.OAuth != "") && c.Project == "" || c.OAuth != "" && (c.AppCred != "" || c.Trust != "") {
		return nil, c, errBadToken // never issued: such tokens are project-scoped, and from one delegation
	}
	if c.Trust != "" {
		// Scoped by a trust: User is its trustee, the project is the
		// trust's, and the trust must still be usable by it.
		t := store.Get[Trust](tx, tTrusts, c.Trust)
		if t == nil || c.AppCred != "" || c.Domain != "" || c.System || t.ProjectID != c.Project || s.trustUsable(tx, t, c.User) != nil {
			return nil, c, errBadToken
		}
		if t.Impersonation {
			// As Keystone, the token then stands for the trustor.
			u = store.Get[User](tx, tUsers, t.TrustorID)
		}
	}
	p := &api.Principal{
		UserID: u.ID, UserName: u.Name, UserDomainID: u.DomainID, Token: tok, AuditID: c.Audit[0],
		ExpiresAt: c.expires(), IssuedAt: c.issued(), Methods: c.Methods,
	}
	switch {
	case c.Project != "":
		pr := store.Get[Project](tx, tProjects, c.Project)
		if pr == nil || !pr.Enabled {
			return nil, c, errBadToken
		}
		p.ProjectID, p.ProjectName, p.DomainID = pr.ID, pr.Name, pr.DomainID
		p.Roles = roleNames(tx, s.tokenRoles(tx, c))
		if len(p.Roles) == 0 {
			return nil, c, errBadToken
		}
		if c.AppCred != "" {
			if a := store.Get[AppCred](tx, tAppCreds, c.AppCred); a != nil {
				p.AccessRules = a.AccessRules
			}
		}
	case c.Domain != "":
		dd := store.Get[Domain](tx, tDomains, c.Domain)
		if dd == nil || !dd.Enabled {
			return nil, c, errBadToken
		}
		p.DomainID = dd.ID
		p.Roles = roleNames(tx, s.tokenRoles(tx, c))
		if len(p.Roles) == 0 {
			return nil, c, errBadToken
		}
	case c.System:
		// As for a project, a system token holds the roles the user holds
		// there now, and is void once it holds none.
		p.System = true
		p.Roles = roleNames(tx, s.tokenRoles(tx, c))
		if len(p.Roles) == 0 {
			return nil, c, errBadToken
		}
	}
	return p, c, nil
}

// effectiveRoles are the role ids a user holds on a scope, directly or
// through groups, on a project also those inherited from its domain and
// the projects above it, with the roles they imply (by default admin >
// member > reader) added and domain-specific roles left out.
func effectiveRoles(tx *memdb.Txn, user, scopeType, scope string) []string {
	from := map[string]bool{} // "type/id" of the scopes a project inherits from
	if scopeType == "project" {
		for _, s := range inheritsFrom(tx, scope) {
			from[s] = true
		}
	}
	holds := func(a *Assignment) bool {
		if a.Inherited {
			return from[a.ScopeType+"/"+a.ScopeID]
		}
		return a.ScopeType == scopeType && a.ScopeID == scope
	}
	set := map[string]bool{}
	for _, a := range store.All[Assignment](tx, tAssignments, "actor", "user", user) {
		if holds(a) {
			set[a.RoleID] = true
		}
	}
	for _, m := range store.All[Membership](tx, tMembers, "user", user) {
		for _, a := range store.All[Assignment](tx, tAssignments, "actor", "group", m.GroupID) {
			if holds(a) {
				set[a.RoleID] = true
			}
		}
	}
	for id := range set {
		for im := range impliedBy(tx, id) {
			set[im] = true
		}
	}
	out := make([]string, 0, len(set))
	for id := range set {
		// As in Keystone, a domain-specific role is never held as such:
		// it stands for the global roles it implies.
		if !domainSpecific(tx, id) {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

func roleNames(tx *memdb.Txn, ids []string) []string {
	var out []string
	for _, id := range ids {
		if r := store.Get[Role](tx, tRoles, id); r != nil {
			out = append(out, r.Name)
		}
	}
	return out
}

// EC2Credential finds the EC2 credential with access key access, for the
// S3 API's signature check. A key this node does not know yet is looked
// for again in state caught up with the leader (ec2Again).
func (s *Service) EC2Credential(ctx context.Context, access string) (userID, projectID, secret string, err error) {
	var c *Credential
	err = s.ec2Again(ctx, func() error {
		tx, err := s.local(ctx)
		if err != nil {
			return err
		}
		c, secret, err = s.ec2Credential(tx, access)
		return err
	})
	if err != nil {
		return "", "", "", err
	}
	return c.UserID, c.ProjectID, secret, nil
}

func (s *Service) ec2Credential(tx *memdb.Txn, access string) (*Credential, string, error) {
	raw, _ := tx.First(tCredentials, "access", access)
	c, _ := raw.(*Credential)
	if c == nil || c.Type != "ec2" {
		return nil, "", fmt.Errorf("ec2 credential %s: %w", access, store.ErrNotFound)
	}
	plain, err := s.openBlob(c)
	if err != nil {
		return nil, "", err
	}
	blob, err := parseEC2Blob(plain)
	if err != nil {
		return nil, "", err
	}
	u := store.Get[User](tx, tUsers, c.UserID)
	if u == nil || !u.Enabled {
		return nil, "", fmt.Errorf("ec2 credential %s: user disabled: %w", access, store.ErrNotFound)
	}
	return c, blob.Secret, nil
}

// EC2Principal resolves an EC2 access key into the secret to check a
// signature with and the principal the request acts as: the credential's
// user on its project, with the roles the user holds there now. A key
// this node would refuse (unknown, or its user without a role on its
// project) is looked for again in state caught up with the leader
// (ec2Again): it may have been made or granted through another node a
// moment ago.
func (s *Service) EC2Principal(ctx context.Context, access string) (p *api.Principal, secret string, err error) {
	err = s.ec2Again(ctx, func() error {
		p, secret, err = s.ec2Principal(ctx, access)
		return err
	})
	return p, secret, err
}

func (s *Service) ec2Principal(ctx context.Context, access string) (*api.Principal, string, error) {
	tx, err := s.local(ctx)
	if err != nil {
		return nil, "", err
	}
	c, secret, err := s.ec2Credential(tx, access)
	if err != nil {
		return nil, "", err
	}
	u := store.Get[User](tx, tUsers, c.UserID)
	pr := store.Get[Project](tx, tProjects, c.ProjectID)
	if pr == nil || !pr.Enabled {
		return nil, "", fmt.Errorf("ec2 credential %s: project unavailable: %w", access, store.ErrNotFound)
	}
	p := &api.Principal{
		UserID: u.ID, UserName: u.Name, UserDomainID: u.DomainID,
		ProjectID: pr.ID, ProjectName: pr.Name, DomainID: pr.DomainID,
		Roles: roleNames(tx, effectiveRoles(tx, u.ID, "project", pr.ID)), Methods: []string{"ec2"},
	}
	if len(p.Roles) == 0 {
		return nil, "", fmt.Errorf("ec2 credential %s: the user has no role on the project: %w", access, store.ErrForbidden)
	}
	return p, secret, nil
}

// ec2CredentialID is Keystone's id for an EC2 credential: sha256(access).
func ec2CredentialID(access string) string {
	h := sha256.Sum256([]byte(access))
	return hex.EncodeToString(h[:])
}

// issue signs claims with the newest key; expires zero means now + TTL.
func (s *Service) issue(tx *memdb.Txn, c claims, expires time.Time) (string, error) {
	k := newestKey(tx)
	if k == nil {
		return "", fmt.Errorf("no signing key yet: %w", store.ErrNoLeader)
	}
	now := s.cfg.Now().UTC()
	if expires.IsZero() {
		expires = now.Add(s.cfg.TokenTTL)
	}
	c.IssuedAt = now.UnixMicro()
	c.Expires = expires.UnixMicro()
	c.Audit = append([]string{newAuditID()}, c.Audit...)
	return sign(c, k)
}

// checkPassword authenticates an attempt from source on user (its id, or
// the name asked for when no such user exists: u is nil), throttled per
// (source, user).
func (s *Service) checkPassword(tx *memdb.Txn, source, user string, u *User, password string) error {
	now := s.cfg.Now().UTC()
	if err := s.throttle.check(tx, source, user, now); err != nil {
		return err
	}
	if u == nil || !u.Enabled || len(u.PasswordHash) == 0 || bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(password)) != nil {
		s.throttle.fail(source, user, now)
		return api.ErrUnauthorized
	}
	s.throttle.succeed(tx, source, user, now)
	return nil
}

// writeError writes Keystone's error body.
var writeError api.ErrorWriter = api.JSONError

// baseURL is where this cloud is reached: the configured public URL, or the
// scheme and host the client used.
func (s *Service) baseURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return strings.TrimRight(s.cfg.PublicURL, "/")
	}
	return api.BaseURL(r, "")
}

// ProjectID is the id of the project name in domain.
func (s *Service) ProjectID(ctx context.Context, domain, name string) (string, error) {
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return "", fmt.Errorf("find project %s: %w", name, err)
	}
	raw, err := tx.First(tProjects, "name", domain, name)
	if err != nil || raw == nil {
		return "", fmt.Errorf("find project %s: %w", name, store.ErrNotFound)
	}
	return raw.(*Project).ID, nil
}
