package network

import (
	"crypto/sha256"
	"fmt"
	"sort"
	"strings"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// RBAC policies (extension rbac-policies) give other projects a network:
// access_as_shared to see it and put ports on it, access_as_external to
// take router gateways and floating IPs on it.
//
// A policy for one project is a row of tRBAC. A policy for every project
// ("*") is not a row: it is the network's flag, as Neutron keeps them
// equal (shared=True is the "*" access_as_shared policy, router:external
// the "*" access_as_external one unless the network is ExternalScoped).
// So the networks written before RBAC, with only their flags, show their
// wildcard policies without any migration, and the flag and the policy
// cannot disagree. A wildcard policy's id is derived from its network
// and action.

const (
	tRBAC = "network_rbac_policies"

	rbacNetwork  = "network"
	actShared    = "access_as_shared"
	actExternal  = "access_as_external"
	rbacWildcard = "*"
)

// RBACPolicy is one project's access to one network.
type RBACPolicy struct {
	ID         string `json:"id"`
	Project    string `json:"project"` // who made it
	ObjectType string `json:"object_type"`
	ObjectID   string `json:"object_id"`
	Action     string `json:"action"`
	Target     string `json:"target"` // a project; never "*" in a row
}

func rbacTable() store.Table {
	return store.NewTable(tRBAC, &RBACPolicy{}, store.StringIndex("project", "Project", false), store.StringIndex("object", "ObjectID", false))
}

// wildcardID is the id of network's "*" policy for action.
func wildcardID(network, action string) string {
	h := sha256.Sum256([]byte("rbac/" + network + "/" + action))
	h[6] = h[6]&0x0f | 0x50 // a name-based UUID
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// wildcards are n's "*" policies, as its flags say.
func wildcards(n *Network) []RBACPolicy {
	var out []RBACPolicy
	if n.Shared {
		out = append(out, RBACPolicy{ID: wildcardID(n.ID, actShared), Project: n.Project, ObjectType: rbacNetwork, ObjectID: n.ID, Action: actShared, Target: rbacWildcard})
	}
	if n.External && !n.ExternalScoped {
		out = append(out, RBACPolicy{ID: wildcardID(n.ID, actExternal), Project: n.Project, ObjectType: rbacNetwork, ObjectID: n.ID, Action: actExternal, Target: rbacWildcard})
	}
	return out
}

// allPolicies is every policy, rows and wildcards, in id order.
func allPolicies(tx *memdb.Txn) []RBACPolicy {
	var out []RBACPolicy
	for _, r := range store.All[RBACPolicy](tx, tRBAC, "id") {
		out = append(out, *r)
	}
	for _, n := range store.All[Network](tx, tNetworks, "id") {
		out = append(out, wildcards(n)...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// findPolicy is the policy id, row or wildcard, or nil.
func findPolicy(tx *memdb.Txn, id string) *RBACPolicy {
	if r := store.Get[RBACPolicy](tx, tRBAC, id); r != nil {
		return r
	}
	for _, p := range allPolicies(tx) {
		if p.ID == id {
			return &p
		}
	}
	return nil
}

// hasPolicy says whether a row gives project action on network.
func hasPolicy(tx *memdb.Txn, network, action, project string) bool {
	if project == "" {
		return false
	}
	for _, r := range store.All[RBACPolicy](tx, tRBAC, "object", network) {
		if r.Action == action && r.Target == project {
			return true
		}
	}
	return false
}

// sharedWith says whether project may see n and put ports on it: its
// own, shared with all, or with project by a policy.
func sharedWith(tx *memdb.Txn, n *Network, project string) bool {
	return n.Shared || (project != "" && n.Project == project) || hasPolicy(tx, n.ID, actShared, project)
}

// externalFor says whether project may take router gateways and
// floating IPs on n.
func externalFor(tx *memdb.Txn, n *Network, project string) bool {
	if !n.External {
		return false
	}
	return !n.ExternalScoped || (project != "" && n.Project == project) || hasPolicy(tx, n.ID, actExternal, project)
}

// networkUsers are the projects other than n's own using it by action:
// for access_as_shared those with ports (not a router's or DHCP's) or
// subnets on it, for access_as_external those with router gateways or
// floating IPs on it.
func networkUsers(tx *memdb.Txn, n *Network, action string) []string {
	seen := map[string]bool{}
	if action == actShared {
		for _, p := range store.All[Port](tx, tPorts, "network", n.ID) {
			if !strings.HasPrefix(p.DeviceOwner, "network:") {
				seen[p.Project] = true
			}
		}
		for _, s := range store.All[Subnet](tx, tSubnets, "network", n.ID) {
			seen[s.Project] = true
		}
	} else {
		for _, r := range store.All[Router](tx, tRouters, "id") {
			if r.Gateway != nil && r.Gateway.NetworkID == n.ID {
				seen[r.Project] = true
			}
		}
		for _, f := range store.All[FloatingIP](tx, tFloatingIPs, "id") {
			if f.NetworkID == n.ID {
				seen[f.Project] = true
			}
		}
	}
	delete(seen, n.Project)
	delete(seen, "")
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// checkStillAllowed runs after a change of policies or flags: every
// project using the network must still have the access it uses.
func checkStillAllowed(tx *memdb.Txn, networkID, policyObject, action string) error {
	if store.Get[AddressGroup](tx, tAddressGroups, networkID) != nil {
		return checkAddrGroupStillAllowed(tx, networkID)
	}
	if store.Get[SecurityGroup](tx, tGroups, networkID) != nil {
		return checkGroupStillAllowed(tx, networkID)
	}
	if store.Get[QoSPolicy](tx, tQoSPolicies, networkID) != nil {
		return checkQoSStillAllowed(tx, networkID)
	}
	n := store.Get[Network](tx, tNetworks, networkID)
	if n == nil {
		return nil
	}
	allowed := sharedWith
	if action == actExternal {
		allowed = externalFor
	}
	for _, u := range networkUsers(tx, n, action) {
		if !allowed(tx, n, u) {
			return rbacInUse(policyObject, fmt.Sprintf("project %s still uses network %s by %s", u, n.ID, action))
		}
	}
	return nil
}

func rbacInUse(object, details string) error {
	return store.Fault(store.KindConflict, "RbacPolicyInUse",
		"RBAC policy on object %s cannot be removed because other objects depend on it.\nDetails: %s", object, details)
}

func rbacNotFound(id string) error {
	return store.Fault(store.KindNotFound, "RbacPolicyNotFound", "RBAC policy of type network with ID %s not found", id)
}

type rbacCreateCmd struct {
	Policy RBACPolicy `json:"policy"`
}

// grant gives p's access on its network: a row, or the network's flag for
// "*". It refuses a policy that exists.
func grant(tx *memdb.Txn, p RBACPolicy) (RBACPolicy, error) {
	switch p.ObjectType {
	case rbacAddrGroup:
		return grantAddrGroup(tx, p)
	case rbacSecGroup:
		return grantObject(tx, p, store.Get[SecurityGroup](tx, tGroups, p.ObjectID) != nil)
	case rbacQoS:
		return grantObject(tx, p, store.Get[QoSPolicy](tx, tQoSPolicies, p.ObjectID) != nil)
	}
	n := store.Get[Network](tx, tNetworks, p.ObjectID)
	if n == nil {
		return p, notFound("network", p.ObjectID)
	}
	dup := store.Fault(store.KindConflict, "DuplicateRbacPolicy", "An RBAC policy already exists with those values.")
	nn := *n
	if p.Target == rbacWildcard {
		switch {
		case p.Action == actShared && n.Shared, p.Action == actExternal && n.External && !n.ExternalScoped:
			return p, dup
		case p.Action == actShared:
			nn.Shared = true
		default:
			nn.External, nn.ExternalScoped = true, false
		}
		p.ID, p.Project = wildcardID(n.ID, p.Action), n.Project
		return p, tx.Insert(tNetworks, &nn)
	}
	if hasPolicy(tx, n.ID, p.Action, p.Target) {
		return p, dup
	}
	if store.Get[RBACPolicy](tx, tRBAC, p.ID) != nil {
		return p, store.Conflictf("rbac policy %s exists", p.ID)
	}
	if p.Action == actExternal && !n.External {
		// As in Neutron, a policy making a network external to a project
		// makes it external, to the projects of its policies only.
		nn.External, nn.ExternalScoped = true, true
		if err := tx.Insert(tNetworks, &nn); err != nil {
			return p, err
		}
	}
	if err := tx.Insert(tRBAC, &p); err != nil {
		return p, err
	}
	return p, checkQuota(tx, p.Project, "rbac_policy")
}

// revoke takes p's access away: its row, or the network's flag. The
// caller checks nobody still uses it (checkStillAllowed).
func revoke(tx *memdb.Txn, p RBACPolicy) error {
	if p.ObjectType == rbacAddrGroup || p.ObjectType == rbacSecGroup || p.ObjectType == rbacQoS {
		return tx.Delete(tRBAC, &p)
	}
	n := store.Get[Network](tx, tNetworks, p.ObjectID)
	if n == nil {
		return nil
	}
	nn := *n
	if p.Target == rbacWildcard {
		if p.Action == actShared {
			nn.Shared = false
		} else {
			nn.ExternalScoped = true
		}
	} else if err := tx.Delete(tRBAC, &p); err != nil {
		return err
	}
	if p.Action == actExternal && nn.External && nn.ExternalScoped && !anyPolicy(tx, n.ID, actExternal) {
		// The last access_as_external policy gone, the network is no
		// longer external, as in Neutron: nothing of another project's
		// may be left on it, and none of its own owner's either.
		for _, pt := range store.All[Port](tx, tPorts, "network", n.ID) {
			if pt.DeviceOwner == routerGatewayOwner || pt.DeviceOwner == floatingIPOwner {
				return rbacInUse(p.ObjectID, "network "+n.ID+" still has router gateways or floating IPs, and would no longer be external")
			}
		}
		nn.External, nn.ExternalScoped = false, false
	}
	return tx.Insert(tNetworks, &nn)
}

func anyPolicy(tx *memdb.Txn, network, action string) bool {
	for _, r := range store.All[RBACPolicy](tx, tRBAC, "object", network) {
		if r.Action == action {
			return true
		}
	}
	return false
}

func applyRBACCreate(tx *memdb.Txn, c rbacCreateCmd) (any, error) {
	return grant(tx, c.Policy)
}

type rbacUpdateCmd struct {
	ID     string `json:"id"`
	Target string `json:"target"`
	// NewID is the row's id where a wildcard becomes one project's.
	NewID string `json:"new_id"`
}

// applyRBACUpdate moves a policy to another target in one step: the new
// target's access comes, then the old one's goes (refused while a project
// of it still uses it). A row keeps its id; a wildcard's is its
// network's.
func applyRBACUpdate(tx *memdb.Txn, c rbacUpdateCmd) (any, error) {
	old := findPolicy(tx, c.ID)
	if old == nil {
		return nil, rbacNotFound(c.ID)
	}
	if old.Target == c.Target {
		return *old, nil
	}
	p := *old
	p.Target = c.Target
	rowOnly := old.ObjectType == rbacAddrGroup || old.ObjectType == rbacSecGroup || old.ObjectType == rbacQoS // their "*" is a row too
	if old.Target == rbacWildcard && !rowOnly {
		p.ID = c.NewID
	}
	if rowOnly || old.Target != rbacWildcard && c.Target != rbacWildcard {
		// The row itself changes: take the old one out first, so the
		// new one may keep its id.
		if err := tx.Delete(tRBAC, old); err != nil {
			return nil, err
		}
		p, err := grant(tx, p)
		if err != nil {
			return nil, err
		}
		return p, checkStillAllowed(tx, p.ObjectID, p.ObjectID, p.Action)
	}
	p, err := grant(tx, p)
	if err != nil {
		return nil, err
	}
	if err := revoke(tx, *old); err != nil {
		return nil, err
	}
	return p, checkStillAllowed(tx, p.ObjectID, p.ObjectID, p.Action)
}

func applyRBACDelete(tx *memdb.Txn, c idCmd) (any, error) {
	p := findPolicy(tx, c.ID)
	if p == nil {
		return nil, rbacNotFound(c.ID)
	}
	if err := revoke(tx, *p); err != nil {
		return nil, err
	}
	return nil, checkStillAllowed(tx, p.ObjectID, p.ObjectID, p.Action)
}

// dropNetworkPolicies deletes a deleted network's policy rows.
func dropNetworkPolicies(tx *memdb.Txn, network string) error {
	for _, r := range store.All[RBACPolicy](tx, tRBAC, "object", network) {
		if err := tx.Delete(tRBAC, r); err != nil {
			return err
		}
	}
	return nil
}
