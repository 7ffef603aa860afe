package identity

import (
	"encoding/json"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// The state machine's writes of one row: checked references and unique
// names.

// putCmd carries one row for one table.
type putCmd struct {
	Table  string          `json:"table"`
	Create bool            `json:"create"` // refuse if the id exists
	Row    json.RawMessage `json:"row"`
	// At is when the write was made: disabling a user revokes the tokens
	// issued up to then. Zero in commands from before it was carried.
	At time.Time `json:"at,omitempty"`
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
	case tAppCreds:
		v = &AppCred{}
	case tTrusts:
		v = &Trust{}
	case tPolicies:
		v = &Policy{}
	case tEndpointGroups:
		v = &EndpointGroup{}
	case tEndpointAssocs:
		v = &EndpointAssoc{}
	case tRegisteredLimits:
		v = &RegisteredLimit{}
	case tLimits:
		v = &Limit{}
	case tConsumers:
		v = &Consumer{}
	case tRequestTokens:
		v = &RequestToken{}
	case tAccessTokens:
		v = &AccessToken{}
	default:
		return nil, invalid("table %q cannot be written with %s", t, cmdPut)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return nil, invalid("decode %s row: %v", t, err)
	}
	return v, nil
}

// applyPut checks references and uniqueness, then writes the row.
func applyPut(tx *memdb.Txn, c putCmd) (any, error) {
	row, err := rowOf(c.Table, c.Row)
	if err != nil {
		return nil, err
	}
	id := rowID(row)
	if id == "" {
		return nil, invalid("%s row needs an id", c.Table)
	}
	old, _ := tx.First(c.Table, "id", id)
	if old != nil {
		if c.Create {
			return nil, conflict("Conflict occurred attempting to store %s - Duplicate entry.", singular(c.Table))
		}
	} else if !c.Create {
		return nil, notFound("Could not find %s: %s.", singular(c.Table), id)
	}
	if err := checkRow(tx, row); err != nil {
		return nil, err
	}
	if err := checkRegisteredLimitChange(tx, old, row); err != nil {
		return nil, err
	}
	if err := revokeOnDisable(tx, old, row, c.At); err != nil {
		return nil, err
	}
	return nil, tx.Insert(c.Table, row)
}

// revokeOnDisable revokes a user's tokens when a write disables it, so
// that enabling the user again does not revive them.
func revokeOnDisable(tx *memdb.Txn, old, row any, at time.Time) error {
	before, _ := old.(*User)
	after, _ := row.(*User)
	if before == nil || after == nil || !before.Enabled || after.Enabled || at.IsZero() {
		return nil
	}
	return revokeUser(tx, after.ID, at)
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
	case *AppCred:
		return r.ID
	case *Trust:
		return r.ID
	case *Policy:
		return r.ID
	case *EndpointGroup:
		return r.ID
	case *EndpointAssoc:
		return r.ID
	case *RegisteredLimit:
		return r.ID
	case *Limit:
		return r.ID
	case *Consumer:
		return r.ID
	case *RequestToken:
		return r.ID
	case *AccessToken:
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
	case *RequestToken:
		if !exists(tx, tConsumers, r.ConsumerID) {
			return notFound("Could not find consumer: %s.", r.ConsumerID)
		}
		if !exists(tx, tProjects, r.ProjectID) {
			return notFound("Could not find project: %s.", r.ProjectID)
		}
	case *AccessToken:
		if !exists(tx, tConsumers, r.ConsumerID) {
			return notFound("Could not find consumer: %s.", r.ConsumerID)
		}
		if !exists(tx, tProjects, r.ProjectID) {
			return notFound("Could not find project: %s.", r.ProjectID)
		}
		if !exists(tx, tUsers, r.AuthorizingUserID) {
			return notFound("Could not find user: %s.", r.AuthorizingUserID)
		}
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
		scopeTable, knownScope := map[string]string{"project": tProjects, "domain": tDomains, "system": ""}[r.ScopeType]
		if actorTable == "" || !knownScope {
			return invalid("bad assignment %s", r.ID)
		}
		if !exists(tx, actorTable, r.ActorID) {
			return notFound("Could not find %s: %s.", r.ActorType, r.ActorID)
		}
		// The system has no row: Keystone's one system is "all".
		if r.ScopeType == "system" && r.ScopeID != systemAll {
			return invalid("Invalid system scope %q; the only system is all.", r.ScopeID)
		}
		if scopeTable != "" && !exists(tx, scopeTable, r.ScopeID) {
			return notFound("Could not find %s: %s.", r.ScopeType, r.ScopeID)
		}
		if !exists(tx, tRoles, r.RoleID) {
			return notFound("Could not find role: %s.", r.RoleID)
		}
		want := assignmentID(r.ActorType, r.ActorID, r.ScopeType, r.ScopeID, r.RoleID)
		if r.Inherited {
			if r.ScopeType == "system" {
				return invalid("A role on the system is not inherited.")
			}
			want = inheritedID(r.ActorType, r.ActorID, r.ScopeType, r.ScopeID, r.RoleID)
		}
		if r.ID != want {
			return invalid("assignment id %q does not match %q", r.ID, want)
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
	case *AppCred:
		if !exists(tx, tUsers, r.UserID) {
			return notFound("Could not find user: %s.", r.UserID)
		}
		if !exists(tx, tProjects, r.ProjectID) {
			return notFound("Could not find project: %s.", r.ProjectID)
		}
		if r.NameKey != appCredKey(r.UserID, r.Name) {
			return invalid("application credential %s: name key %q does not match", r.ID, r.NameKey)
		}
		if sameName(tx, tAppCreds, "name", r.ID, r.NameKey) {
			return conflict("Conflict occurred attempting to store application_credential - Duplicate entry found with name %s.", r.Name)
		}
	case *Trust:
		for _, u := range []string{r.TrustorID, r.TrusteeID} {
			if !exists(tx, tUsers, u) {
				return notFound("Could not find user: %s.", u)
			}
		}
		if r.ProjectID != "" && !exists(tx, tProjects, r.ProjectID) {
			return notFound("Could not find project: %s.", r.ProjectID)
		}
		for _, id := range r.Roles {
			if !exists(tx, tRoles, id) {
				return notFound("Could not find role: %s.", id)
			}
		}
		// A trust redelegated from one deleted meanwhile would outlive it.
		if r.RedelegatedFrom != "" && !exists(tx, tTrusts, r.RedelegatedFrom) {
			return notFound("Could not find trust: %s.", r.RedelegatedFrom)
		}
	case *EndpointAssoc:
		target := map[string]string{"endpoint": tEndpoints, "group": tEndpointGroups}[r.Kind]
		if target == "" || r.ID != endpointAssocID(r.Kind, r.ProjectID, r.TargetID) {
			return invalid("bad endpoint association %s", r.ID)
		}
		if !exists(tx, tProjects, r.ProjectID) {
			return notFound("Could not find project: %s.", r.ProjectID)
		}
		if !exists(tx, target, r.TargetID) {
			return notFound("Could not find %s: %s.", singular(target), r.TargetID)
		}
	case *RegisteredLimit:
		return checkRegisteredLimit(tx, r)
	case *Limit:
		return checkLimit(tx, r)
	case *Implication:
		prior, implied := store.Get[Role](tx, tRoles, r.Prior), store.Get[Role](tx, tRoles, r.Implied)
		if prior == nil {
			return notFound("Could not find role: %s.", r.Prior)
		}
		if implied == nil {
			return notFound("Could not find role: %s.", r.Implied)
		}
		// As Keystone: a global role may not imply a domain-specific one
		// (it would leak a domain's role into every domain); a
		// domain-specific role may imply any.
		if prior.DomainID == "" && implied.DomainID != "" {
			return store.Forbiddenf("%s is a domain-specific role and cannot be implied.", r.Implied)
		}
		if r.Prior == r.Implied || impliedBy(tx, r.Implied)[r.Prior] {
			return invalid("Implying role %s from %s would form a cycle.", r.Implied, r.Prior)
		}
	}
	return nil
}

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
