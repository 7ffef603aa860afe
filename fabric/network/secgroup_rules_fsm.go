package network

import (
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

type ruleCreateCmd struct {
	Rules []SecurityGroupRule `json:"rules"`
}

func applyRuleCreate(tx *memdb.Txn, c ruleCreateCmd) (any, error) {
	out := make([]SecurityGroupRule, 0, len(c.Rules))
	for _, r := range c.Rules {
		g := store.Get[SecurityGroup](tx, tGroups, r.GroupID)
		if g == nil {
			return nil, notFound("security_group", r.GroupID)
		}
		r.Project = g.Project
		if rg := store.Get[SecurityGroup](tx, tGroups, r.RemoteGroupID); r.RemoteGroupID != "" &&
			(rg == nil || !groupSharedWith(tx, rg, r.Project)) {
			return nil, notFound("security_group", r.RemoteGroupID)
		}
		// The group's project must own the address group or have it
		// shared, checked here so that a rule cannot slip in between a
		// policy's deletion and its check (as a port's BySharing).
		if ag := store.Get[AddressGroup](tx, tAddressGroups, r.RemoteAddressGroupID); r.RemoteAddressGroupID != "" &&
			(ag == nil || !addrGroupSharedWith(tx, ag, r.Project)) {
			return nil, notFound("address_group", r.RemoteAddressGroupID)
		}
		for _, o := range store.All[SecurityGroupRule](tx, tRules, "group", r.GroupID) {
			if sameRule(o, &r) {
				return nil, store.Fault(store.KindConflict, "SecurityGroupRuleExists", "Security group rule already exists. Rule id is %s.", o.ID)
			}
		}
		if err := tx.Insert(tRules, &r); err != nil {
			return nil, err
		}
		if err := checkQuota(tx, r.Project, "security_group_rule"); err != nil {
			return nil, err
		}
		if err := bumpGroup(tx, r.GroupID, r.CreatedAt); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func sameRule(a, b *SecurityGroupRule) bool {
	return a.Direction == b.Direction && a.EtherType == b.EtherType && a.Protocol == b.Protocol &&
		intEq(a.PortMin, b.PortMin) && intEq(a.PortMax, b.PortMax) && a.RemoteGroupID == b.RemoteGroupID &&
		a.RemoteAddressGroupID == b.RemoteAddressGroupID &&
		anyPrefix(a.RemoteIPPrefix) == anyPrefix(b.RemoteIPPrefix)
}

// anyPrefix treats 0.0.0.0/0 and ::/0 as no prefix, as Neutron does when it
// looks for duplicate rules.
func anyPrefix(p string) string {
	if p == "0.0.0.0/0" || p == "::/0" {
		return ""
	}
	return p
}

func intEq(a, b *int) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

func applyRuleDelete(tx *memdb.Txn, c idCmd) (any, error) {
	r, err := current(tx, tRules, "security_group_rule", c.ID, c.ifMatch, func(r *SecurityGroupRule) int { return r.Revision })
	if err != nil {
		return nil, err
	}
	if err := tx.Delete(tRules, r); err != nil {
		return nil, err
	}
	return nil, bumpGroup(tx, r.GroupID, c.Now)
}

// bumpGroup counts a change of a group's rules as a change of the group,
// which shows them (Neutron bumps the parent's revision_number): a
// client holding the group's revision learns its rules moved. A command
// logged without a time keeps updated_at.
func bumpGroup(tx *memdb.Txn, id string, now time.Time) error {
	old := store.Get[SecurityGroup](tx, tGroups, id)
	if old == nil {
		return nil
	}
	g := *old
	if now.IsZero() {
		now = g.UpdatedAt
	}
	touch(&g.UpdatedAt, &g.Revision, now)
	return tx.Insert(tGroups, &g)
}
