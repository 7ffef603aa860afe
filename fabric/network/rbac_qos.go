package network

import (
	"fmt"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// RBAC for QoS policies: an access_as_shared policy lets its target
// project (or every project, for "*") see a QoS policy and name it on its
// ports and networks, as the policy's shared flag does for all; writing
// the policy stays an admin's. As for address groups, a "*" policy is a
// row like the others. Taking a sharing away (deleting or moving the RBAC
// policy, unsetting shared) is refused in its apply while a port or
// network of a project that would lose it names the policy (409), and a
// port's or network's apply checks the sharing again, so none slips in
// between.

const rbacQoS = "qos_policy"

// qosSharedWith says whether project may see and use q.
func qosSharedWith(tx *memdb.Txn, q *QoSPolicy, project string) bool {
	if q.Shared || project != "" && q.Project == project {
		return true
	}
	for _, r := range store.All[RBACPolicy](tx, tRBAC, "object", q.ID) {
		if r.Action == actShared && (r.Target == rbacWildcard || project != "" && r.Target == project) {
			return true
		}
	}
	return false
}

// qosToShare checks that p may make RBAC policies on QoS policy id: its
// project (or an admin). One it only sees shared is refused with 400, as
// Neutron does; one it does not see with 404.
func (s *Service) qosToShare(tx *memdb.Txn, p *api.Principal, id string) error {
	q, err := s.qosPolicies(tx).Get(tx, p, id)
	if err != nil {
		return err
	}
	if !p.CanWrite(q.Project) {
		return badInput("object_id", "QoS policy %s is not owned by project %s, so it cannot share it", id, p.ProjectID)
	}
	return nil
}

// checkQoSStillAllowed runs after a sharing of QoS policy id went or
// moved: every port and network naming it must still be allowed it.
func checkQoSStillAllowed(tx *memdb.Txn, id string) error {
	q := store.Get[QoSPolicy](tx, tQoSPolicies, id)
	if q == nil {
		return nil
	}
	if kind, user := qosUser(tx, q); kind != "" {
		return rbacInUse(id, fmt.Sprintf("%s %s uses QoS policy %s", kind, user, id))
	}
	return nil
}

// qosUser is a port or network naming q whose project may no longer use
// it: its kind and id, or "" for none.
func qosUser(tx *memdb.Txn, q *QoSPolicy) (string, string) {
	for _, n := range store.All[Network](tx, tNetworks, "id") {
		if n.QoSPolicyID == q.ID && !qosSharedWith(tx, q, n.Project) {
			return "network", n.ID
		}
	}
	for _, p := range store.All[Port](tx, tPorts, "id") {
		if p.QoSPolicyID == q.ID && !qosSharedWith(tx, q, p.Project) {
			return "port", p.ID
		}
	}
	return "", ""
}

// qosAnyUser is a port or network naming policy at all.
func qosAnyUser(tx *memdb.Txn, policy string) (string, string) {
	for _, n := range store.All[Network](tx, tNetworks, "id") {
		if n.QoSPolicyID == policy {
			return "network", n.ID
		}
	}
	for _, p := range store.All[Port](tx, tPorts, "id") {
		if p.QoSPolicyID == policy {
			return "port", p.ID
		}
	}
	return "", ""
}
