package network

import (
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// defaultGroupCmd makes a project's default security group when it has
// none yet; the proposer picks the ids.
type defaultGroupCmd struct {
	Project string    `json:"project"`
	GroupID string    `json:"group_id"`
	RuleIDs [4]string `json:"rule_ids"`
	Now     time.Time `json:"now"`
}

func defaultGroupOf(tx *memdb.Txn, project string) *SecurityGroup {
	for _, g := range store.All[SecurityGroup](tx, tGroups, "project", project) {
		if g.Default {
			return g
		}
	}
	return nil
}

func ensureDefaults(tx *memdb.Txn, ds []defaultGroupCmd) error {
	for _, d := range ds {
		if d.Project == "" || defaultGroupOf(tx, d.Project) != nil {
			continue
		}
		g := SecurityGroup{ID: d.GroupID, Project: d.Project, Name: "default", Description: "Default security group",
			Default: true, CreatedAt: d.Now, UpdatedAt: d.Now}
		if err := tx.Insert(tGroups, &g); err != nil {
			return err
		}
		i := 0
		for _, dir := range []string{"egress", "ingress"} {
			for _, et := range []string{"IPv4", "IPv6"} {
				r := SecurityGroupRule{ID: d.RuleIDs[i], GroupID: g.ID, Project: g.Project, Direction: dir, EtherType: et,
					CreatedAt: d.Now, UpdatedAt: d.Now}
				if dir == "ingress" {
					r.RemoteGroupID = g.ID
				}
				if err := tx.Insert(tRules, &r); err != nil {
					return err
				}
				i++
			}
		}
	}
	return nil
}

func applyGroupDefault(tx *memdb.Txn, c defaultGroupCmd) (any, error) {
	return nil, ensureDefaults(tx, []defaultGroupCmd{c})
}

type groupCreateCmd struct {
	Group    SecurityGroup       `json:"group"`
	Rules    []SecurityGroupRule `json:"rules"`
	Defaults []defaultGroupCmd   `json:"defaults,omitempty"`
}

func applyGroupCreate(tx *memdb.Txn, c groupCreateCmd) (any, error) {
	if err := ensureDefaults(tx, c.Defaults); err != nil {
		return nil, err
	}
	if store.Get[SecurityGroup](tx, tGroups, c.Group.ID) != nil {
		return nil, store.Conflictf("security group %s exists", c.Group.ID)
	}
	if err := tx.Insert(tGroups, &c.Group); err != nil {
		return nil, err
	}
	if err := checkQuota(tx, c.Group.Project, "security_group"); err != nil {
		return nil, err
	}
	for _, r := range c.Rules {
		if err := tx.Insert(tRules, &r); err != nil {
			return nil, err
		}
	}
	if err := checkQuota(tx, c.Group.Project, "security_group_rule"); err != nil {
		return nil, err
	}
	return c.Group, nil
}

// groupBulkCmd is a bulk create: each group as its own create would make
// it, in order, in one transaction, so that a failure of any (a quota)
// makes none.
type groupBulkCmd struct {
	Groups []groupCreateCmd `json:"groups"`
}

func applyGroupBulk(tx *memdb.Txn, c groupBulkCmd) (any, error) {
	out := make([]SecurityGroup, 0, len(c.Groups))
	for _, g := range c.Groups {
		if _, err := applyGroupCreate(tx, g); err != nil {
			return nil, err
		}
		out = append(out, g.Group)
	}
	return out, nil
}

type groupUpdateCmd struct {
	ifMatch
	ID          string    `json:"id"`
	Name        *string   `json:"name,omitempty"`
	Description *string   `json:"description,omitempty"`
	Stateless   *bool     `json:"stateless,omitempty"`
	Now         time.Time `json:"now"`
}

func applyGroupUpdate(tx *memdb.Txn, c groupUpdateCmd) (any, error) {
	old, err := current(tx, tGroups, "security_group", c.ID, c.ifMatch, func(r *SecurityGroup) int { return r.Revision })
	if err != nil {
		return nil, err
	}
	g := *old
	if old.Default && c.Name != nil && *c.Name != old.Name {
		return nil, store.Fault(store.KindConflict, "SecurityGroupCannotUpdateDefault", "Updating default security group not allowed.")
	}
	set(&g.Name, c.Name)
	set(&g.Description, c.Description)
	if c.Stateless != nil && *c.Stateless != old.Stateless {
		// The ports' dataplanes would have to drop or start tracking
		// their flows mid-connection: Neutron refuses it too.
		if raw, _ := tx.First(tPorts, "group", g.ID); raw != nil {
			return nil, store.Fault(store.KindConflict, "SecurityGroupInUse",
				"Security Group %s in use. Cannot change the stateful attribute of a security group in use by ports.", g.ID)
		}
		g.Stateless = *c.Stateless
	}
	touch(&g.UpdatedAt, &g.Revision, c.Now)
	return g, tx.Insert(tGroups, &g)
}

func applyGroupDelete(tx *memdb.Txn, c idCmd) (any, error) {
	g, err := current(tx, tGroups, "security_group", c.ID, c.ifMatch, func(r *SecurityGroup) int { return r.Revision })
	if err != nil {
		return nil, err
	}
	if g.Default && !c.Admin {
		return nil, store.Fault(store.KindConflict, "SecurityGroupCannotRemoveDefault", "Insufficient rights for removing default security group.")
	}
	if raw, _ := tx.First(tPorts, "group", g.ID); raw != nil {
		return nil, store.Fault(store.KindConflict, "SecurityGroupInUse", "Security Group %s in use.", g.ID)
	}
	rules := store.All[SecurityGroupRule](tx, tRules, "group", g.ID)
	rules = append(rules, store.All[SecurityGroupRule](tx, tRules, "remote_group", g.ID)...)
	for _, r := range rules {
		if raw, _ := tx.First(tRules, "id", r.ID); raw == nil {
			continue // a rule of this group that refers to itself
		}
		if err := tx.Delete(tRules, r); err != nil {
			return nil, err
		}
	}
	if err := dropNetworkPolicies(tx, g.ID); err != nil {
		return nil, err
	}
	return nil, tx.Delete(tGroups, g)
}
