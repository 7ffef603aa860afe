package identity

import (
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/events/eventstate"
	"github.com/rackstack/rackstack/fabric/store"
)

// Rows of the identity tables. A row is never changed after insert: a
// handler copies it, changes the copy and inserts that.

type Domain struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Enabled     bool   `json:"enabled"`
}

type Project struct {
	ID          string         `json:"id"`
	Name        string         `json:"name"`
	DomainID    string         `json:"domain_id"`
	ParentID    string         `json:"parent_id"`
	Description string         `json:"description"`
	Enabled     bool           `json:"enabled"`
	Tags        []string       `json:"tags"`
	Extra       map[string]any `json:"extra,omitempty"`
}

type User struct {
	ID               string         `json:"id"`
	Name             string         `json:"name"`
	DomainID         string         `json:"domain_id"`
	Enabled          bool           `json:"enabled"`
	PasswordHash     []byte         `json:"password_hash,omitempty"`
	DefaultProjectID string         `json:"default_project_id,omitempty"`
	Description      string         `json:"description,omitempty"`
	Email            string         `json:"email,omitempty"`
	Extra            map[string]any `json:"extra,omitempty"`
	// Options are Keystone's user options (useroptions.go).
	Options map[string]any `json:"options,omitempty"`
}

type Role struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	DomainID    string `json:"domain_id"` // "" for a global role
	Description string `json:"description"`
	// NameKey is DomainID + "/" + Name: role names are unique per domain,
	// and global roles have no domain. Set by the handler.
	NameKey string         `json:"name_key"`
	Extra   map[string]any `json:"extra,omitempty"`
}

func roleKey(domain, name string) string { return domain + "/" + name }

// Implication is a role inference rule: holding Prior implies Implied.
type Implication struct {
	ID      string `json:"id"` // prior/implied
	Prior   string `json:"prior"`
	Implied string `json:"implied"`
}

type Group struct {
	ID          string         `json:"id"`
	Name        string         `json:"name"`
	DomainID    string         `json:"domain_id"`
	Description string         `json:"description"`
	Extra       map[string]any `json:"extra,omitempty"`
}

// Assignment grants a role to a user or group on a project, a domain or
// the system (scope type "system", scope id systemAll). An inherited one
// (Keystone's OS-INHERIT) grants the role not on its domain or project
// but on every project below it, now and later.
type Assignment struct {
	ID        string `json:"id"`         // actorType/actor/scopeType/scope/role[/inherited]
	ActorType string `json:"actor_type"` // user, group
	ActorID   string `json:"actor_id"`
	ScopeType string `json:"scope_type"` // project, domain, system
	ScopeID   string `json:"scope_id"`
	RoleID    string `json:"role_id"`
	Inherited bool   `json:"inherited_to_projects,omitempty"`
}

// systemAll is the scope id of the system: Keystone has one, "all".
const systemAll = "all"

func assignmentID(actorType, actor, scopeType, scope, role string) string {
	return actorType + "/" + actor + "/" + scopeType + "/" + scope + "/" + role
}

// inheritedID is the id of the inherited assignment of the same grant:
// it and the direct one may both exist.
func inheritedID(actorType, actor, scopeType, scope, role string) string {
	return assignmentID(actorType, actor, scopeType, scope, role) + "/inherited"
}

type Membership struct {
	ID      string `json:"id"` // group/user
	GroupID string `json:"group_id"`
	UserID  string `json:"user_id"`
}

type Region struct {
	ID             string `json:"id"`
	Description    string `json:"description"`
	ParentRegionID string `json:"parent_region_id"`
}

type ServiceRow struct {
	ID          string `json:"id"`
	Type        string `json:"type"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Enabled     bool   `json:"enabled"`
}

type Endpoint struct {
	ID        string `json:"id"`
	ServiceID string `json:"service_id"`
	Interface string `json:"interface"`
	URL       string `json:"url"`
	RegionID  string `json:"region_id"`
	Enabled   bool   `json:"enabled"`
	// Extra holds attributes Keystone keeps without knowing them (a
	// "description").
	Extra map[string]any `json:"extra,omitempty"`
}

// Credential is a stored credential; for type "ec2" Blob is JSON with
// "access" and "secret", and ID is derived from the access key.
type Credential struct {
	ID        string `json:"id"`
	UserID    string `json:"user_id"`
	ProjectID string `json:"project_id"`
	Type      string `json:"type"`
	Blob      string `json:"blob"`
	Access    string `json:"access,omitempty"`
}

// SigningKey signs tokens; any node verifies with the same replicated keys.
type SigningKey struct {
	ID        string    `json:"id"`
	Secret    []byte    `json:"secret"`
	CreatedAt time.Time `json:"created_at"`
}

// Revocation invalidates tokens by audit id, or all tokens of a user issued
// before a time.
type Revocation struct {
	ID           string    `json:"id"`
	AuditID      string    `json:"audit_id,omitempty"`
	UserID       string    `json:"user_id,omitempty"`
	IssuedBefore time.Time `json:"issued_before"`
	ExpiresAt    time.Time `json:"expires_at"`
}

// Command types.
const (
	cmdBootstrap   = "identity.bootstrap"
	cmdPut         = "identity.put"    // create or update one row of one table
	cmdDelete      = "identity.delete" // delete one row, with its dependants
	cmdRotateKeys  = "identity.keys.rotate"
	cmdRevoke      = "identity.revoke"
	cmdSetPassword = "identity.user.password"
	cmdSeedCatalog = "identity.catalog.seed"
	// cmdTrustConsume takes one use of a trust with a use limit.
	cmdTrustConsume = "identity.trust.consume"
	// cmdPutAll creates rows of one table, all or none (a batch of limits).
	cmdPutAll = "identity.put.all"
)

// Table names.
const (
	tDomains     = "domains"
	tProjects    = "projects"
	tUsers       = "users"
	tRoles       = "roles"
	tGroups      = "groups"
	tAssignments = "role_assignments"
	tMembers     = "group_members"
	tRegions     = "regions"
	tImplies     = "role_implications"
	tServices    = "services"
	tEndpoints   = "endpoints"
	tCredentials = "credentials"
	tKeys        = "signing_keys"
	tRevocations = "revocations"
	tAppCreds    = "application_credentials"
	tTrusts      = "trusts"
	tPolicies    = "policies"
	// OS-EP-FILTER
	tEndpointGroups = "endpoint_groups"
	tEndpointAssocs = "project_endpoints"
	// Unified limits
	tRegisteredLimits = "registered_limits"
	tLimits           = "limits"
)

func pairIdx(name, a, b string, unique bool) *memdb.IndexSchema {
	return &memdb.IndexSchema{Name: name, Unique: unique, Indexer: &memdb.CompoundIndex{Indexes: []memdb.Indexer{
		&memdb.StringFieldIndex{Field: a}, &memdb.StringFieldIndex{Field: b},
	}, AllowMissing: true}}
}

// Schema is the identity service's part of the replicated state.
func Schema() store.Schema {
	return store.Schema{
		Tables: append([]store.Table{
			store.NewTable(tDomains, &Domain{}, store.StringIndex("name", "Name", true)),
			store.NewTable(tProjects, &Project{}, pairIdx("name", "DomainID", "Name", true), store.StringIndex("domain", "DomainID", false)),
			store.NewTable(tUsers, &User{}, pairIdx("name", "DomainID", "Name", true), store.StringIndex("domain", "DomainID", false)),
			store.NewTable(tRoles, &Role{}, store.StringIndex("name", "NameKey", true)),
			store.NewTable(tImplies, &Implication{}, store.StringIndex("prior", "Prior", false), store.StringIndex("implied", "Implied", false)),
			store.NewTable(tGroups, &Group{}, pairIdx("name", "DomainID", "Name", true)),
			store.NewTable(tAssignments, &Assignment{}, pairIdx("actor", "ActorType", "ActorID", false), pairIdx("scope", "ScopeType", "ScopeID", false), store.StringIndex("role", "RoleID", false)),
			store.NewTable(tMembers, &Membership{}, store.StringIndex("group", "GroupID", false), store.StringIndex("user", "UserID", false)),
			store.NewTable(tRegions, &Region{}),
			store.NewTable(tServices, &ServiceRow{}, store.StringIndex("type", "Type", false)),
			store.NewTable(tEndpoints, &Endpoint{}, store.StringIndex("service", "ServiceID", false)),
			store.NewTable(tCredentials, &Credential{}, store.StringIndex("user", "UserID", false), &memdb.IndexSchema{Name: "access", AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "Access"}}),
			store.NewTable(tKeys, &SigningKey{}),
			store.NewTable(tRevocations, &Revocation{}, &memdb.IndexSchema{Name: "user", AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "UserID"}}),
			store.NewTable(tLoginFailures, &LoginFailures{}),
			store.NewTable(tAppCreds, &AppCred{}, store.StringIndex("name", "NameKey", true), store.StringIndex("user", "UserID", false), store.StringIndex("project", "ProjectID", false)),
			store.NewTable(tAccessRules, &AccessRuleRow{}, store.StringIndex("user", "UserID", false)),
			store.NewTable(tTrusts, &Trust{}, store.StringIndex("trustor", "TrustorID", false), store.StringIndex("trustee", "TrusteeID", false),
				&memdb.IndexSchema{Name: "project", AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "ProjectID"}},
				&memdb.IndexSchema{Name: "from", AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "RedelegatedFrom"}}),
			store.NewTable(tPolicies, &Policy{}),
			store.NewTable(tDomainConfigs, &DomainConfig{}),
			store.NewTable(tEndpointGroups, &EndpointGroup{}),
			store.NewTable(tEndpointAssocs, &EndpointAssoc{}, store.StringIndex("project", "ProjectID", false), store.StringIndex("target", "TargetID", false)),
			store.NewTable(tRegisteredLimits, &RegisteredLimit{}, store.StringIndex("key", "Key", true), store.StringIndex("service_id", "ServiceID", false),
				&memdb.IndexSchema{Name: "region_id", AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "RegionID"}}),
			store.NewTable(tLimits, &Limit{}, store.StringIndex("key", "Key", true), store.StringIndex("registered", "RegisteredLimitID", false),
				&memdb.IndexSchema{Name: "project", AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "ProjectID"}},
				&memdb.IndexSchema{Name: "domain", AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "DomainID"}}),
		}, oauthTables()...),
		Handlers: map[string]store.Handler{
			cmdBootstrap:      store.Typed(applyBootstrap),
			cmdPut:            store.Typed(applyPut),
			cmdDelete:         store.Typed(applyDelete),
			cmdRotateKeys:     store.Typed(applyRotateKeys),
			cmdRevoke:         applyRevoke,
			cmdSetPassword:    store.Typed(applySetPassword),
			cmdSeedCatalog:    store.Typed(applySeedCatalog),
			cmdLoginFailures:  store.Typed(applyLoginFailures),
			cmdTrustConsume:   store.Typed(applyTrustConsume),
			cmdPutAll:         store.Typed(applyPutAll),
			cmdOAuthAuthorize: store.Typed(applyOAuthAuthorize),
			cmdOAuthExchange:  store.Typed(applyOAuthExchange),
			cmdAppCredCreate:  store.Typed(applyAppCredCreate),
			cmdDomainConfig:   store.Typed(applyDomainConfig),
		},
		Observers: []store.Observer{eventstate.Observe(eventResources()...)},
	}
}

func invalid(format string, args ...any) error { return store.Invalidf(format, args...) }

func exists(tx *memdb.Txn, table, id string) bool {
	raw, _ := tx.First(table, "id", id)
	return raw != nil
}

// maxTokenTTL bounds how long a revocation must be remembered.
const maxTokenTTL = 7 * 24 * time.Hour
