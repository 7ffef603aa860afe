package identity

import (
	"encoding/json"
	"time"

	memdb "github.com/hashicorp/go-memdb"

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

// Assignment grants a role to a user or group on a project or domain.
type Assignment struct {
	ID        string `json:"id"`         // actorType/actor/scopeType/scope/role
	ActorType string `json:"actor_type"` // user, group
	ActorID   string `json:"actor_id"`
	ScopeType string `json:"scope_type"` // project, domain
	ScopeID   string `json:"scope_id"`
	RoleID    string `json:"role_id"`
}

func assignmentID(actorType, actor, scopeType, scope, role string) string {
	return actorType + "/" + actor + "/" + scopeType + "/" + scope + "/" + role
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
)

func pairIdx(name, a, b string, unique bool) *memdb.IndexSchema {
	return &memdb.IndexSchema{Name: name, Unique: unique, Indexer: &memdb.CompoundIndex{Indexes: []memdb.Indexer{
		&memdb.StringFieldIndex{Field: a}, &memdb.StringFieldIndex{Field: b},
	}, AllowMissing: true}}
}

// Schema is the identity service's part of the replicated state.
func Schema() store.Schema {
	return store.Schema{
		Tables: []store.Table{
			store.NewTable(tDomains, &Domain{}, store.StringIndex("name", "Name", true)),
			store.NewTable(tProjects, &Project{}, pairIdx("name", "DomainID", "Name", true), store.StringIndex("domain", "DomainID", false)),
			store.NewTable(tUsers, &User{}, pairIdx("name", "DomainID", "Name", true), store.StringIndex("domain", "DomainID", false)),
			store.NewTable(tRoles, &Role{}, store.StringIndex("name", "NameKey", true)),
			store.NewTable(tImplies, &Implication{}, store.StringIndex("prior", "Prior", false), store.StringIndex("implied", "Implied", false)),
			store.NewTable(tGroups, &Group{}, pairIdx("name", "DomainID", "Name", true)),
			store.NewTable(tAssignments, &Assignment{}, pairIdx("actor", "ActorType", "ActorID", false), pairIdx("scope", "ScopeType", "ScopeID", false), store.StringIndex("role", "RoleID", false)),
			store.NewTable(tMembers, &Membership{}, store.StringIndex("group", "GroupID", false), store.StringIndex("user", "UserID", false)),
			store.NewTable(tRegions, &Region{}),
			store.NewTable(tServices, &ServiceRow{}),
			store.NewTable(tEndpoints, &Endpoint{}, store.StringIndex("service", "ServiceID", false)),
			store.NewTable(tCredentials, &Credential{}, store.StringIndex("user", "UserID", false), &memdb.IndexSchema{Name: "access", AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "Access"}}),
			store.NewTable(tKeys, &SigningKey{}),
			store.NewTable(tRevocations, &Revocation{}, &memdb.IndexSchema{Name: "user", AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "UserID"}}),
		},
		Handlers: map[string]store.Handler{
			cmdBootstrap:   applyBootstrap,
			cmdPut:         applyPut,
			cmdDelete:      applyDelete,
			cmdRotateKeys:  applyRotateKeys,
			cmdRevoke:      applyRevoke,
			cmdSetPassword: applySetPassword,
		},
	}
}

func invalid(format string, args ...any) error { return store.Invalidf(format, args...) }

func first(tx *memdb.Txn, table, index string, args ...any) (any, error) {
	raw, err := tx.First(table, index, args...)
	if err != nil {
		return nil, err
	}
	return raw, nil
}

func exists(tx *memdb.Txn, table, id string) bool {
	raw, _ := tx.First(table, "id", id)
	return raw != nil
}

// putCmd carries one row for one table.
type putCmd struct {
	Table  string          `json:"table"`
	Create bool            `json:"create"` // refuse if the id exists
	Row    json.RawMessage `json:"row"`
}

// rowOf decodes a row of table t.
func rowOf(t string, raw json.RawMessage) (any, error) {
	var v any
	switch t {
	case tDomains:
		v = &Domain{}
	case tProjects:
		v = &Project{}
	case tUsers:
		v = &User{}
	case tRoles:
		v = &Role{}
	case tGroups:
		v = &Group{}
	case tAssignments:
		v = &Assignment{}
	case tMembers:
		v = &Membership{}
	case tRegions:
		v = &Region{}
	case tServices:
		v = &ServiceRow{}
	case tEndpoints:
		v = &Endpoint{}
	case tCredentials:
		v = &Credential{}
	case tImplies:
		v = &Implication{}
	default:
		return nil, invalid("table %q cannot be written with %s", t, cmdPut)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return nil, invalid("decode %s row: %v", t, err)
	}
	return v, nil
}

// applyPut checks references and uniqueness, then writes the row.
func applyPut(tx *memdb.Txn, _ uint64, body json.RawMessage) (any, error) {
	var c putCmd
	if err := store.DecodeBody(body, &c); err != nil {
		return nil, err
	}
	row, err := rowOf(c.Table, c.Row)
	if err != nil {
		return nil, err
	}
	id := rowID(row)
	if id == "" {
		return nil, invalid("%s row needs an id", c.Table)
	}
	if exists(tx, c.Table, id) {
		if c.Create {
			return nil, conflict("Conflict occurred attempting to store %s - Duplicate entry.", singular(c.Table))
		}
	} else if !c.Create {
		return nil, notFound("Could not find %s: %s.", singular(c.Table), id)
	}
	if err := checkRow(tx, row); err != nil {
		return nil, err
	}
	return nil, tx.Insert(c.Table, row)
}

func rowID(row any) string {
	switch r := row.(type) {
	case *Domain:
		return r.ID
	case *Project:
		return r.ID
	case *User:
		return r.ID
	case *Role:
		return r.ID
	case *Group:
		return r.ID
	case *Assignment:
		return r.ID
	case *Membership:
		return r.ID
	case *Region:
		return r.ID
	case *ServiceRow:
		return r.ID
	case *Endpoint:
		return r.ID
	case *Credential:
		return r.ID
	case *Implication:
		return r.ID
	}
	return ""
}

// sameName reports whether another row than id holds the unique name.
func sameName(tx *memdb.Txn, table, index, id string, args ...any) bool {
	raw, _ := tx.First(table, index, args...)
	return raw != nil && rowID(raw) != id
}

func conflict(format string, args ...any) error { return store.Conflictf(format, args...) }

func notFound(format string, args ...any) error { return store.NotFoundf(format, args...) }

// checkRow enforces referential integrity and unique names.
func checkRow(tx *memdb.Txn, row any) error {
	switch r := row.(type) {
	case *Domain:
		if sameName(tx, tDomains, "name", r.ID, r.Name) {
			return conflict("Conflict occurred attempting to store domain - Duplicate entry found with name %s.", r.Name)
		}
	case *Project:
		if !exists(tx, tDomains, r.DomainID) {
			return notFound("Could not find domain: %s.", r.DomainID)
		}
		if r.ParentID != r.DomainID {
			parent := store.Get[Project](tx, tProjects, r.ParentID)
			if parent == nil {
				return notFound("Could not find project: %s.", r.ParentID)
			}
			if parent.DomainID != r.DomainID {
				return invalid("Cannot create project, the parent (%s) is in a different domain.", r.ParentID)
			}
		}
		if sameName(tx, tProjects, "name", r.ID, r.DomainID, r.Name) {
			return conflict("Conflict occurred attempting to store project - Duplicate entry found with name %s at domain ID %s.", r.Name, r.DomainID)
		}
	case *User:
		if !exists(tx, tDomains, r.DomainID) {
			return notFound("Could not find domain: %s.", r.DomainID)
		}
		if sameName(tx, tUsers, "name", r.ID, r.DomainID, r.Name) {
			return conflict("Conflict occurred attempting to store user - Duplicate entry found with name %s at domain ID %s.", r.Name, r.DomainID)
		}
	case *Role:
		if r.DomainID != "" && !exists(tx, tDomains, r.DomainID) {
			return notFound("Could not find domain: %s.", r.DomainID)
		}
		r.NameKey = roleKey(r.DomainID, r.Name)
		if sameName(tx, tRoles, "name", r.ID, r.NameKey) {
			return conflict("Conflict occurred attempting to store role - Duplicate entry found with name %s.", r.Name)
		}
	case *Group:
		if !exists(tx, tDomains, r.DomainID) {
			return notFound("Could not find domain: %s.", r.DomainID)
		}
		if sameName(tx, tGroups, "name", r.ID, r.DomainID, r.Name) {
			return conflict("Conflict occurred attempting to store group - Duplicate entry found with name %s.", r.Name)
		}
	case *Assignment:
		actorTable := map[string]string{"user": tUsers, "group": tGroups}[r.ActorType]
		scopeTable := map[string]string{"project": tProjects, "domain": tDomains}[r.ScopeType]
		if actorTable == "" || scopeTable == "" {
			return invalid("bad assignment %s", r.ID)
		}
		if !exists(tx, actorTable, r.ActorID) {
			return notFound("Could not find %s: %s.", r.ActorType, r.ActorID)
		}
		if !exists(tx, scopeTable, r.ScopeID) {
			return notFound("Could not find %s: %s.", r.ScopeType, r.ScopeID)
		}
		if !exists(tx, tRoles, r.RoleID) {
			return notFound("Could not find role: %s.", r.RoleID)
		}
	case *Membership:
		if !exists(tx, tGroups, r.GroupID) {
			return notFound("Could not find group: %s.", r.GroupID)
		}
		if !exists(tx, tUsers, r.UserID) {
			return notFound("Could not find user: %s.", r.UserID)
		}
	case *Region:
		if r.ParentRegionID != "" && !exists(tx, tRegions, r.ParentRegionID) {
			return notFound("Could not find region: %s.", r.ParentRegionID)
		}
	case *Endpoint:
		if !exists(tx, tServices, r.ServiceID) {
			return notFound("Could not find service: %s.", r.ServiceID)
		}
		if r.RegionID != "" && !exists(tx, tRegions, r.RegionID) {
			// As Keystone does for endpoints, a region named by an endpoint
			// comes into being with it.
			if err := tx.Insert(tRegions, &Region{ID: r.RegionID}); err != nil {
				return err
			}
		}
	case *Credential:
		if !exists(tx, tUsers, r.UserID) {
			return notFound("Could not find user: %s.", r.UserID)
		}
	case *Implication:
		prior, implied := store.Get[Role](tx, tRoles, r.Prior), store.Get[Role](tx, tRoles, r.Implied)
		if prior == nil {
			return notFound("Could not find role: %s.", r.Prior)
		}
		if implied == nil {
			return notFound("Could not find role: %s.", r.Implied)
		}
		if implied.DomainID != "" {
			return store.Forbiddenf("%s is a domain-specific role and cannot be implied.", r.Implied)
		}
		if r.Prior == r.Implied || impliedBy(tx, r.Implied)[r.Prior] {
			return invalid("Implying role %s from %s would form a cycle.", r.Implied, r.Prior)
		}
	}
	return nil
}

type deleteCmd struct {
	Table string    `json:"table"`
	ID    string    `json:"id"`
	At    time.Time `json:"at"` // for the revocation a user deletion implies
}

// applyDelete removes a row and what depends on it, so no assignment,
// membership or credential outlives its user, group, project or role.
func applyDelete(tx *memdb.Txn, _ uint64, body json.RawMessage) (any, error) {
	var c deleteCmd
	if err := store.DecodeBody(body, &c); err != nil {
		return nil, err
	}
	raw, err := tx.First(c.Table, "id", c.ID)
	if err != nil {
		return nil, invalid("table %q: %v", c.Table, err)
	}
	if raw == nil {
		return nil, notFound("Could not find %s: %s.", singular(c.Table), c.ID)
	}
	switch c.Table {
	case tDomains:
		d := raw.(*Domain)
		if d.Enabled {
			return nil, store.Forbiddenf("Cannot delete a domain that is enabled, please disable it first.")
		}
		if d.ID == "default" {
			return nil, store.Forbiddenf("The default domain cannot be deleted.")
		}
		// Like Keystone, a domain takes its projects, users and groups
		// (and everything that hangs off them) with it.
		for _, p := range store.All[Project](tx, tProjects, "domain", c.ID) {
			if err := deleteProject(tx, p); err != nil {
				return nil, err
			}
		}
		for _, u := range store.All[User](tx, tUsers, "domain", c.ID) {
			if err := deleteUser(tx, u, c.At); err != nil {
				return nil, err
			}
		}
		for _, g := range store.All[Group](tx, tGroups, "id") {
			if g.DomainID == c.ID {
				if err := deleteGroup(tx, g); err != nil {
					return nil, err
				}
			}
		}
		if err := deleteWhere(tx, tAssignments, "scope", "domain", c.ID); err != nil {
			return nil, err
		}
	case tProjects:
		if err := deleteWhere(tx, tAssignments, "scope", "project", c.ID); err != nil {
			return nil, err
		}
	case tUsers:
		for _, step := range []struct {
			t, idx string
			args   []any
		}{
			{tAssignments, "actor", []any{"user", c.ID}},
			{tMembers, "user", []any{c.ID}},
			{tCredentials, "user", []any{c.ID}},
		} {
			if err := deleteWhere(tx, step.t, step.idx, step.args...); err != nil {
				return nil, err
			}
		}
		if err := tx.Insert(tRevocations, &Revocation{ID: "user/" + c.ID + "/" + c.At.Format(time.RFC3339Nano), UserID: c.ID, IssuedBefore: c.At, ExpiresAt: c.At.Add(maxTokenTTL)}); err != nil {
			return nil, err
		}
	case tGroups:
		if err := deleteWhere(tx, tAssignments, "actor", "group", c.ID); err != nil {
			return nil, err
		}
		if err := deleteWhere(tx, tMembers, "group", c.ID); err != nil {
			return nil, err
		}
	case tRoles:
		if err := deleteWhere(tx, tAssignments, "role", c.ID); err != nil {
			return nil, err
		}
		if err := deleteWhere(tx, tImplies, "prior", c.ID); err != nil {
			return nil, err
		}
		if err := deleteWhere(tx, tImplies, "implied", c.ID); err != nil {
			return nil, err
		}
	case tServices:
		if err := deleteWhere(tx, tEndpoints, "service", c.ID); err != nil {
			return nil, err
		}
	case tRegions:
		for _, r := range store.All[Region](tx, tRegions, "id") {
			if r.ParentRegionID == c.ID {
				return nil, conflict("region %s has child regions", c.ID)
			}
		}
	case tAssignments, tMembers, tEndpoints, tCredentials, tImplies:
	default:
		return nil, invalid("table %q cannot be deleted from", c.Table)
	}
	return nil, tx.Delete(c.Table, raw)
}

func deleteProject(tx *memdb.Txn, p *Project) error {
	if err := deleteWhere(tx, tAssignments, "scope", "project", p.ID); err != nil {
		return err
	}
	return tx.Delete(tProjects, p)
}

// deleteUser removes a user with its grants, memberships and credentials,
// and revokes its tokens.
func deleteUser(tx *memdb.Txn, u *User, at time.Time) error {
	for _, step := range []struct {
		t, idx string
		args   []any
	}{
		{tAssignments, "actor", []any{"user", u.ID}},
		{tMembers, "user", []any{u.ID}},
		{tCredentials, "user", []any{u.ID}},
	} {
		if err := deleteWhere(tx, step.t, step.idx, step.args...); err != nil {
			return err
		}
	}
	if err := tx.Insert(tRevocations, &Revocation{ID: "user/" + u.ID + "/" + at.Format(time.RFC3339Nano), UserID: u.ID, IssuedBefore: at, ExpiresAt: at.Add(maxTokenTTL)}); err != nil {
		return err
	}
	return tx.Delete(tUsers, u)
}

func deleteGroup(tx *memdb.Txn, g *Group) error {
	if err := deleteWhere(tx, tAssignments, "actor", "group", g.ID); err != nil {
		return err
	}
	if err := deleteWhere(tx, tMembers, "group", g.ID); err != nil {
		return err
	}
	return tx.Delete(tGroups, g)
}

func deleteWhere(tx *memdb.Txn, table, index string, args ...any) error {
	_, err := tx.DeleteAll(table, index, args...)
	return err
}

func singular(table string) string {
	switch table {
	case tAssignments:
		return "role assignment"
	case tMembers:
		return "group membership"
	case tCredentials:
		return "credential"
	}
	if len(table) > 1 && table[len(table)-1] == 's' {
		return table[:len(table)-1]
	}
	return table
}

// bootstrapCmd creates the default domain, the standard roles, the admin
// project and user with the admin role, and the first signing key; rows that
// exist already (by name) are left alone, so bootstrap can be repeated.
type bootstrapCmd struct {
	Roles        []Role     `json:"roles"`
	AdminProject Project    `json:"admin_project"`
	Service      Project    `json:"service_project"`
	Admin        User       `json:"admin"`
	Key          SigningKey `json:"key"`
}

func applyBootstrap(tx *memdb.Txn, _ uint64, body json.RawMessage) (any, error) {
	var c bootstrapCmd
	if err := store.DecodeBody(body, &c); err != nil {
		return nil, err
	}
	if !exists(tx, tDomains, "default") {
		if err := tx.Insert(tDomains, &Domain{ID: "default", Name: "Default", Description: "The default domain", Enabled: true}); err != nil {
			return nil, err
		}
	}
	roleIDs := map[string]string{}
	for _, r := range c.Roles {
		r := r
		r.NameKey = roleKey("", r.Name)
		if raw, _ := tx.First(tRoles, "name", r.NameKey); raw != nil {
			roleIDs[r.Name] = raw.(*Role).ID
			continue
		}
		if err := tx.Insert(tRoles, &r); err != nil {
			return nil, err
		}
		roleIDs[r.Name] = r.ID
	}
	// Keystone's default hierarchy: admin implies member implies reader.
	for _, pair := range [][2]string{{"admin", "member"}, {"member", "reader"}} {
		p, i := roleIDs[pair[0]], roleIDs[pair[1]]
		if p != "" && i != "" && !exists(tx, tImplies, p+"/"+i) {
			if err := tx.Insert(tImplies, &Implication{ID: p + "/" + i, Prior: p, Implied: i}); err != nil {
				return nil, err
			}
		}
	}
	ensureProject := func(p Project) (string, error) {
		if raw, _ := tx.First(tProjects, "name", "default", p.Name); raw != nil {
			return raw.(*Project).ID, nil
		}
		return p.ID, tx.Insert(tProjects, &p)
	}
	adminProject, err := ensureProject(c.AdminProject)
	if err != nil {
		return nil, err
	}
	if _, err := ensureProject(c.Service); err != nil {
		return nil, err
	}
	adminUser := c.Admin.ID
	if raw, _ := tx.First(tUsers, "name", "default", c.Admin.Name); raw != nil {
		adminUser = raw.(*User).ID
	} else {
		u := c.Admin
		u.DefaultProjectID = adminProject
		if err := tx.Insert(tUsers, &u); err != nil {
			return nil, err
		}
	}
	a := assignmentID("user", adminUser, "project", adminProject, roleIDs["admin"])
	if !exists(tx, tAssignments, a) {
		if err := tx.Insert(tAssignments, &Assignment{ID: a, ActorType: "user", ActorID: adminUser, ScopeType: "project", ScopeID: adminProject, RoleID: roleIDs["admin"]}); err != nil {
			return nil, err
		}
	}
	if it, _ := tx.Get(tKeys, "id"); it == nil || it.Next() == nil {
		k := c.Key
		if err := tx.Insert(tKeys, &k); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

type rotateCmd struct {
	Key         SigningKey `json:"key"`
	PruneBefore time.Time  `json:"prune_before"` // keys created before this go, except the newest
	Now         time.Time  `json:"now"`          // expired revocations go too
}

func applyRotateKeys(tx *memdb.Txn, _ uint64, body json.RawMessage) (any, error) {
	var c rotateCmd
	if err := store.DecodeBody(body, &c); err != nil {
		return nil, err
	}
	for _, k := range store.All[SigningKey](tx, tKeys, "id") {
		if k.CreatedAt.Before(c.PruneBefore) {
			if err := tx.Delete(tKeys, k); err != nil {
				return nil, err
			}
		}
	}
	for _, r := range store.All[Revocation](tx, tRevocations, "id") {
		if r.ExpiresAt.Before(c.Now) {
			if err := tx.Delete(tRevocations, r); err != nil {
				return nil, err
			}
		}
	}
	k := c.Key
	return nil, tx.Insert(tKeys, &k)
}

func applyRevoke(tx *memdb.Txn, _ uint64, body json.RawMessage) (any, error) {
	var r Revocation
	if err := store.DecodeBody(body, &r); err != nil {
		return nil, err
	}
	if r.ID == "" {
		return nil, invalid("revocation needs an id")
	}
	return nil, tx.Insert(tRevocations, &r)
}

type passwordCmd struct {
	UserID string    `json:"user_id"`
	Hash   []byte    `json:"hash"`
	At     time.Time `json:"at"`
}

// applySetPassword changes a password and revokes the user's tokens.
func applySetPassword(tx *memdb.Txn, _ uint64, body json.RawMessage) (any, error) {
	var c passwordCmd
	if err := store.DecodeBody(body, &c); err != nil {
		return nil, err
	}
	u := store.Get[User](tx, tUsers, c.UserID)
	if u == nil {
		return nil, notFound("Could not find user: %s.", c.UserID)
	}
	n := *u
	n.PasswordHash = c.Hash
	if err := tx.Insert(tUsers, &n); err != nil {
		return nil, err
	}
	return nil, tx.Insert(tRevocations, &Revocation{ID: "user/" + c.UserID + "/" + c.At.Format(time.RFC3339Nano), UserID: c.UserID, IssuedBefore: c.At, ExpiresAt: c.At.Add(maxTokenTTL)})
}

// maxTokenTTL bounds how long a revocation must be remembered.
const maxTokenTTL = 7 * 24 * time.Hour

// impliedBy returns every role id that role implies, transitively.
func impliedBy(tx *memdb.Txn, role string) map[string]bool {
	out := map[string]bool{}
	queue := []string{role}
	for len(queue) > 0 && len(out) < 1000 {
		r := queue[0]
		queue = queue[1:]
		for _, im := range store.All[Implication](tx, tImplies, "prior", r) {
			if !out[im.Implied] {
				out[im.Implied] = true
				queue = append(queue, im.Implied)
			}
		}
	}
	return out
}
