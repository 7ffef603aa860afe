package network

import (
	"fmt"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// RBAC for address groups (extension rbac-address-group): an
// access_as_shared policy lets its target project (or every project, for
// "*", an admin's) see the group and name it in its security group rules;
// only the owner changes or deletes it. Unlike a network's, an address
// group's "*" policy is a row like the others: the group has no flag it
// could be.

const rbacAddrGroup = "address_group"

// addrGroupSharedWith says whether project may see and use ag.
func addrGroupSharedWith(tx *memdb.Txn, ag *AddressGroup, project string) bool {
	if project != "" && ag.Project == project {
		return true
	}
	for _, r := range store.All[RBACPolicy](tx, tRBAC, "object", ag.ID) {
		if r.Action == actShared && (r.Target == rbacWildcard || (project != "" && r.Target == project)) {
			return true
		}
	}
	return false
}

// grantAddrGroup records p, an access_as_shared policy on an address
// group, refusing one that exists.
func grantAddrGroup(tx *memdb.Txn, p RBACPolicy) (RBACPolicy, error) {
	return grantObject(tx, p, store.Get[AddressGroup](tx, tAddressGroups, p.ObjectID) != nil)
}

// checkAddrGroupStillAllowed runs after a policy on an address group went
// or moved: every other project whose rules name the group must still
// have it shared.
func checkAddrGroupStillAllowed(tx *memdb.Txn, id string) error {
	ag := store.Get[AddressGroup](tx, tAddressGroups, id)
	if ag == nil {
		return nil
	}
	for _, r := range store.All[SecurityGroupRule](tx, tRules, "remote_address_group", id) {
		if !addrGroupSharedWith(tx, ag, r.Project) {
			return rbacInUse(id, fmt.Sprintf("security group rule %s of project %s uses address group %s", r.ID, r.Project, id))
		}
	}
	return nil
}

// dropAddrGroupPolicies deletes a deleted address group's policies.
func dropAddrGroupPolicies(tx *memdb.Txn, id string) error {
	return dropNetworkPolicies(tx, id)
}
