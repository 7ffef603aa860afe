package compute

import (
	"encoding/json"
	"slices"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// Command handlers. They run in the FSM on every node: deterministic, no
// clock, no I/O, no randomness. Ids and times come in the command. Quotas
// and placement are decided here, from the state alone, so two requests
// can never both take the last of a quota or of a host's capacity.

type idCmd struct {
	ID  string    `json:"id"`
	Now time.Time `json:"now"`
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// Flavors.

type flavorCreateCmd struct {
	Flavor Flavor `json:"flavor"`
}

// applyFlavorCreate creates a flavor; its log index is its integer id.
func applyFlavorCreate(tx *memdb.Txn, index uint64, body json.RawMessage) (any, error) {
	var c flavorCreateCmd
	if err := store.DecodeBody(body, &c); err != nil {
		return nil, err
	}
	c.Flavor.Seq = index
	if store.Get[Flavor](tx, tFlavors, c.Flavor.ID) != nil {
		return nil, conflict("Flavor with ID %s already exists.", c.Flavor.ID)
	}
	for _, f := range store.All[Flavor](tx, tFlavors, "id") {
		if f.Name == c.Flavor.Name {
			return nil, conflict("Flavor with name %s already exists.", c.Flavor.Name)
		}
	}
	return c.Flavor, tx.Insert(tFlavors, &c.Flavor)
}

type flavorUpdateCmd struct {
	ID          string  `json:"id"`
	Description *string `json:"description,omitempty"`
}

func applyFlavorUpdate(tx *memdb.Txn, c flavorUpdateCmd) (any, error) {
	old := store.Get[Flavor](tx, tFlavors, c.ID)
	if old == nil {
		return nil, flavorNotFound(c.ID)
	}
	f := *old
	set(&f.Description, c.Description)
	return f, tx.Insert(tFlavors, &f)
}

func applyFlavorDelete(tx *memdb.Txn, c idCmd) (any, error) {
	f := store.Get[Flavor](tx, tFlavors, c.ID)
	if f == nil {
		return nil, flavorNotFound(c.ID)
	}
	for _, a := range store.All[FlavorAccess](tx, tAccess, "flavor", c.ID) {
		if err := tx.Delete(tAccess, a); err != nil {
			return nil, err
		}
	}
	return nil, tx.Delete(tFlavors, f)
}

type flavorSpecsCmd struct {
	ID    string            `json:"id"`
	Set   map[string]string `json:"set,omitempty"`
	Unset string            `json:"unset,omitempty"`
}

func applyFlavorSpecs(tx *memdb.Txn, c flavorSpecsCmd) (any, error) {
	old := store.Get[Flavor](tx, tFlavors, c.ID)
	if old == nil {
		return nil, flavorNotFound(c.ID)
	}
	f := *old
	f.ExtraSpecs = map[string]string{}
	for k, v := range old.ExtraSpecs {
		f.ExtraSpecs[k] = v
	}
	for k, v := range c.Set {
		f.ExtraSpecs[k] = v
	}
	if c.Unset != "" {
		if _, ok := f.ExtraSpecs[c.Unset]; !ok {
			return nil, notFound("Flavor %s has no extra specs with key %s.", c.ID, c.Unset)
		}
		delete(f.ExtraSpecs, c.Unset)
	}
	if len(f.ExtraSpecs) == 0 {
		f.ExtraSpecs = nil
	}
	return f, tx.Insert(tFlavors, &f)
}

type flavorAccessCmd struct {
	ID      string `json:"id"`
	Project string `json:"project"`
	Add     bool   `json:"add"`
	// PublicConflict refuses access to a public flavor (microversion 2.7).
	PublicConflict bool `json:"public_conflict,omitempty"`
}

func applyFlavorAccess(tx *memdb.Txn, c flavorAccessCmd) (any, error) {
	f := store.Get[Flavor](tx, tFlavors, c.ID)
	if f == nil {
		return nil, flavorNotFound(c.ID)
	}
	id := c.ID + "/" + c.Project
	cur := store.Get[FlavorAccess](tx, tAccess, id)
	if !c.Add {
		if cur == nil {
			return nil, notFound("Flavor access not found for %s flavor %s project combination.", c.ID, c.Project)
		}
		return nil, tx.Delete(tAccess, cur)
	}
	if f.Public && c.PublicConflict {
		return nil, conflict("Can not add access to a public flavor.")
	}
	if cur != nil {
		return nil, conflict("Flavor access already exists for flavor %s and project %s combination.", c.ID, c.Project)
	}
	return nil, tx.Insert(tAccess, &FlavorAccess{ID: id, FlavorID: c.ID, Project: c.Project})
}

// Keypairs.

type keypairCreateCmd struct {
	Keypair Keypair `json:"keypair"`
	// Project is the owner's project, whose key_pairs quota applies.
	Project string `json:"project"`
}

func applyKeypairCreate(tx *memdb.Txn, index uint64, body json.RawMessage) (any, error) {
	var c keypairCreateCmd
	if err := store.DecodeBody(body, &c); err != nil {
		return nil, err
	}
	k := c.Keypair
	k.ID = k.UserID + "/" + k.Name
	k.Seq = index
	if store.Get[Keypair](tx, tKeypairs, k.ID) != nil {
		return nil, conflict("Key pair '%s' already exists.", k.Name)
	}
	if limit := quotaLimit(tx, c.Project, "key_pairs"); limit >= 0 && len(store.All[Keypair](tx, tKeypairs, "user", k.UserID))+1 > limit {
		return nil, overQuota("Quota exceeded, too many key pairs.")
	}
	return k, tx.Insert(tKeypairs, &k)
}

type keypairDeleteCmd struct {
	UserID string `json:"user_id"`
	Name   string `json:"name"`
}

func applyKeypairDelete(tx *memdb.Txn, c keypairDeleteCmd) (any, error) {
	k := store.Get[Keypair](tx, tKeypairs, c.UserID+"/"+c.Name)
	if k == nil {
		return nil, keypairNotFound(c.UserID, c.Name)
	}
	return nil, tx.Delete(tKeypairs, k)
}

// Server groups.

type groupCreateCmd struct {
	Group ServerGroup `json:"group"`
}

func applyGroupCreate(tx *memdb.Txn, c groupCreateCmd) (any, error) {
	if store.Get[ServerGroup](tx, tGroups, c.Group.ID) != nil {
		return nil, store.Conflictf("server group %s exists", c.Group.ID)
	}
	if limit := quotaLimit(tx, c.Group.Project, "server_groups"); limit >= 0 && len(store.All[ServerGroup](tx, tGroups, "project", c.Group.Project))+1 > limit {
		return nil, overQuota("Quota exceeded, too many server groups.")
	}
	if c.Group.Members == nil {
		c.Group.Members = []string{}
	}
	return c.Group, tx.Insert(tGroups, &c.Group)
}

func applyGroupDelete(tx *memdb.Txn, c idCmd) (any, error) {
	g := store.Get[ServerGroup](tx, tGroups, c.ID)
	if g == nil {
		return nil, groupNotFound(c.ID)
	}
	return nil, tx.Delete(tGroups, g)
}

func leaveGroup(tx *memdb.Txn, s *Server) error {
	if s.Group == "" {
		return nil
	}
	g := store.Get[ServerGroup](tx, tGroups, s.Group)
	if g == nil || !slices.Contains(g.Members, s.ID) {
		return nil
	}
	ng := *g
	ng.Members = slices.DeleteFunc(slices.Clone(g.Members), func(id string) bool { return id == s.ID })
	return tx.Insert(tGroups, &ng)
}
