package network

import (
	"fmt"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// RBAC for security groups (extension rbac-security-groups): an
// access_as_shared policy lets its target project (or every project, for
// "*", an admin's) see the group, put its ports in it and name it as the
// remote group of its own rules; only the owner changes the group, its
// rules or its policies. A policy cannot go while a project it shares the
// group with still uses it, nor can the group while any port is in it. As
// for address groups, a "*" policy is a row like the others.

const rbacSecGroup = "security_group"

// groupSharedWith says whether project may see and use g: its own, or
// shared with it (or with everyone) by a policy.
func groupSharedWith(tx *memdb.Txn, g *SecurityGroup, project string) bool {
	if project != "" && g.Project == project {
		return true
	}
	return groupSharedByPolicy(tx, g.ID, project)
}

// groupSharedByPolicy says whether a policy shares group id with project
// (or with every project).
func groupSharedByPolicy(tx *memdb.Txn, id, project string) bool {
	for _, r := range store.All[RBACPolicy](tx, tRBAC, "object", id) {
		if r.Action == actShared && (r.Target == rbacWildcard || (project != "" && r.Target == project)) {
			return true
		}
	}
	return false
}

// grantObject records p, an access_as_shared policy on an object whose
// only state is its policy rows (an address or security group), refusing
// a duplicate.
func grantObject(tx *memdb.Txn, p RBACPolicy, exists bool) (RBACPolicy, error) {
	if !exists {
		return p, notFound(p.ObjectType, p.ObjectID)
	}
	for _, r := range store.All[RBACPolicy](tx, tRBAC, "object", p.ObjectID) {
		if r.Action == p.Action && r.Target == p.Target && r.ID != p.ID {
			return p, store.Fault(store.KindConflict, "DuplicateRbacPolicy", "An RBAC policy already exists with those values.")
		}
	}
	if store.Get[RBACPolicy](tx, tRBAC, p.ID) != nil {
		return p, store.Conflictf("rbac policy %s exists", p.ID)
	}
	if err := tx.Insert(tRBAC, &p); err != nil {
		return p, err
	}
	return p, checkQuota(tx, p.Project, "rbac_policy")
}

// checkGroupStillAllowed runs after a policy on a security group went or
// moved: every other project with a port in the group, or a rule naming
// it as remote group, must still have it shared.
func checkGroupStillAllowed(tx *memdb.Txn, id string) error {
	g := store.Get[SecurityGroup](tx, tGroups, id)
	if g == nil {
		return nil
	}
	for _, pt := range store.All[Port](tx, tPorts, "group", id) {
		if !groupSharedWith(tx, g, pt.Project) {
			return rbacInUse(id, fmt.Sprintf("port %s of project %s is in security group %s", pt.ID, pt.Project, id))
		}
	}
	for _, r := range store.All[SecurityGroupRule](tx, tRules, "remote_group", id) {
		if !groupSharedWith(tx, g, r.Project) {
			return rbacInUse(id, fmt.Sprintf("security group rule %s of project %s uses security group %s", r.ID, r.Project, id))
		}
	}
	return nil
}

// groupToShare checks that p may make RBAC policies on security group id:
// the owner (or an admin). A project it is only shared with is refused
// with 400, as Neutron does; one that does not see it with 404.
func (s *Service) groupToShare(tx *memdb.Txn, p *api.Principal, id string) error {
	g, err := s.groups(tx).Get(tx, p, id)
	if err != nil {
		return err
	}
	if !p.CanWrite(g.Project) {
		return badInput("object_id", "security group %s is not owned by project %s, so it cannot share it", id, p.ProjectID)
	}
	return nil
}
