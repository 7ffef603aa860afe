package identity

import (
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

type deleteCmd struct {
	Table string    `json:"table"`
	ID    string    `json:"id"`
	At    time.Time `json:"at"` // for the revocation a user deletion implies
}

// applyDelete removes a row and what depends on it, so no assignment,
// membership or credential outlives its user, group, project or role.
func applyDelete(tx *memdb.Txn, c deleteCmd) (any, error) {
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
		if err := deleteWhere(tx, tLimits, "domain", c.ID); err != nil {
			return nil, err
		}
		if dc := store.Get[DomainConfig](tx, tDomainConfigs, c.ID); dc != nil {
			if err := tx.Delete(tDomainConfigs, dc); err != nil {
				return nil, err
			}
		}
	case tProjects:
		return nil, deleteProject(tx, raw.(*Project))
	case tUsers:
		return nil, deleteUser(tx, raw.(*User), c.At)
	case tGroups:
		return nil, deleteGroup(tx, raw.(*Group))
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
		if err := refusedIfLimited(tx, "service_id", c.ID); err != nil {
			return nil, err
		}
		for _, e := range store.All[Endpoint](tx, tEndpoints, "service", c.ID) {
			if err := deleteWhere(tx, tEndpointAssocs, "target", e.ID); err != nil {
				return nil, err
			}
		}
		if err := deleteWhere(tx, tEndpoints, "service", c.ID); err != nil {
			return nil, err
		}
	case tEndpoints, tEndpointGroups:
		// Their projects' associations go with them.
		if err := deleteWhere(tx, tEndpointAssocs, "target", c.ID); err != nil {
			return nil, err
		}
	case tRegions:
		if err := refusedIfLimited(tx, "region_id", c.ID); err != nil {
			return nil, err
		}
		for _, r := range store.All[Region](tx, tRegions, "id") {
			if r.ParentRegionID == c.ID {
				return nil, conflict("region %s has child regions", c.ID)
			}
		}
	case tAssignments:
		// As Keystone, a user's role removed on a project takes the
		// user's application credentials on that project with it: a
		// grant given again later does not bring them back.
		if a := raw.(*Assignment); a.ActorType == "user" && a.ScopeType == "project" && !a.Inherited {
			for _, ac := range store.All[AppCred](tx, tAppCreds, "user", a.ActorID) {
				if ac.ProjectID != a.ScopeID {
					continue
				}
				if err := tx.Delete(tAppCreds, ac); err != nil {
					return nil, err
				}
			}
		}
	case tTrusts:
		// As Keystone, the trusts redelegated from a trust go with it.
		return nil, deleteTrustTree(tx, c.ID)
	case tRegisteredLimits:
		if err := refusedIfOverridden(tx, c.ID); err != nil {
			return nil, err
		}
	case tConsumers:
		// A consumer's tokens, and so the tokens issued from them, go
		// with it.
		if err := deleteWhere(tx, tRequestTokens, "consumer", c.ID); err != nil {
			return nil, err
		}
		if err := deleteWhere(tx, tAccessTokens, "consumer", c.ID); err != nil {
			return nil, err
		}
	case tMembers, tCredentials, tImplies, tAppCreds, tPolicies, tEndpointAssocs, tLimits, tAccessTokens, tRequestTokens:
	case tAccessRules:
		// Refused while a credential names it (checked here too, so a
		// credential made meanwhile keeps its rule).
		rule := raw.(*AccessRuleRow)
		if ruleInUse(tx, rule.UserID, rule.ID) {
			return nil, store.Forbiddenf("access rule %s is in use by an application credential", rule.ID)
		}
	default:
		return nil, invalid("table %q cannot be deleted from", c.Table)
	}
	return nil, tx.Delete(c.Table, raw)
}

func deleteProject(tx *memdb.Txn, p *Project) error {
	if err := deleteWhere(tx, tAssignments, "scope", "project", p.ID); err != nil {
		return err
	}
	// As Keystone, a project takes the application credentials on it.
	if err := deleteWhere(tx, tAppCreds, "project", p.ID); err != nil {
		return err
	}
	if err := deleteWhere(tx, tEndpointAssocs, "project", p.ID); err != nil {
		return err
	}
	// As Keystone, a project's limits go with it, and the OAuth tokens
	// for it.
	for _, t := range []string{tLimits, tRequestTokens, tAccessTokens} {
		if err := deleteWhere(tx, t, "project", p.ID); err != nil {
			return err
		}
	}
	// ...and the trusts delegating roles on it.
	if err := deleteTrustsOf(tx, "project", p.ID); err != nil {
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
		{tAppCreds, "user", []any{u.ID}},
		{tAccessTokens, "user", []any{u.ID}},
		{tAccessRules, "user", []any{u.ID}},
		{tRequestTokens, "user", []any{u.ID}},
	} {
		if err := deleteWhere(tx, step.t, step.idx, step.args...); err != nil {
			return err
		}
	}
	// As Keystone, the trusts a user gave or was given go with it.
	for _, idx := range []string{"trustor", "trustee"} {
		if err := deleteTrustsOf(tx, idx, u.ID); err != nil {
			return err
		}
	}
	if err := revokeUser(tx, u.ID, at); err != nil {
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
	case tAppCreds:
		return "application credential"
	case tTrusts:
		return "trust"
	case tPolicies:
		return "policy"
	case tEndpointGroups:
		return "endpoint group"
	case tEndpointAssocs:
		return "endpoint association"
	case tRegisteredLimits:
		return "registered limit"
	case tConsumers:
		return "consumer"
	case tRequestTokens:
		return "request token"
	case tAccessTokens:
		return "access token"
	case tAccessRules:
		return "access rule"
	}
	if len(table) > 1 && table[len(table)-1] == 's' {
		return table[:len(table)-1]
	}
	return table
}

// revokeUser revokes every token of user issued up to at.
func revokeUser(tx *memdb.Txn, user string, at time.Time) error {
	return tx.Insert(tRevocations, &Revocation{ID: "user/" + user + "/" + at.Format(time.RFC3339Nano), UserID: user, IssuedBefore: at, ExpiresAt: at.Add(maxTokenTTL)})
}
