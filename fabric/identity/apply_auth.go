package identity

import (
	"encoding/json"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// The state machine's bootstrap, signing keys, revocations and passwords.

// bootstrapCmd creates the default domain, the standard roles, the admin
// project and user with the admin role there and on the system, and the
// first signing key; rows that exist already (by name) are left alone, so
// bootstrap can be repeated.
type bootstrapCmd struct {
	Roles        []Role     `json:"roles"`
	AdminProject Project    `json:"admin_project"`
	Service      Project    `json:"service_project"`
	Admin        User       `json:"admin"`
	Key          SigningKey `json:"key"`
}

func applyBootstrap(tx *memdb.Txn, c bootstrapCmd) (any, error) {
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
	// As keystone-manage bootstrap, the admin holds admin on the admin
	// project and on the system.
	for _, sc := range [][2]string{{"project", adminProject}, {"system", systemAll}} {
		a := assignmentID("user", adminUser, sc[0], sc[1], roleIDs["admin"])
		if !exists(tx, tAssignments, a) {
			if err := tx.Insert(tAssignments, &Assignment{ID: a, ActorType: "user", ActorID: adminUser, ScopeType: sc[0], ScopeID: sc[1], RoleID: roleIDs["admin"]}); err != nil {
				return nil, err
			}
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

func applyRotateKeys(tx *memdb.Txn, c rotateCmd) (any, error) {
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
func applySetPassword(tx *memdb.Txn, c passwordCmd) (any, error) {
	u := store.Get[User](tx, tUsers, c.UserID)
	if u == nil {
		return nil, notFound("Could not find user: %s.", c.UserID)
	}
	n := *u
	n.PasswordHash = c.Hash
	if err := tx.Insert(tUsers, &n); err != nil {
		return nil, err
	}
	return nil, revokeUser(tx, c.UserID, c.At)
}
