package bmstate

import (
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// What the compute service does to nodes inside its own FSM handlers (a
// server created, deleted, stopped, started or rebooted): each helper
// reads the node from the caller's transaction, changes a copy and
// inserts it with the next revision, so a proposer holding the old
// revision sees IsStale and reads again.

// NormalizeResourceClass is the form two resource classes are compared
// in: Nova's flavor names the class as placement does
// (CUSTOM_BAREMETAL_SMALL), Ironic's node as the operator typed it
// (baremetal-small, baremetal_small, BAREMETAL_SMALL): upper case, "-"
// as "_", without the CUSTOM_ prefix.
func NormalizeResourceClass(class string) string {
	c := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(class), "-", "_"))
	return strings.TrimPrefix(c, "CUSTOM_")
}

// ClaimClass is Claim with the resource class compared as
// NormalizeResourceClass compares it, so a flavor's
// resources:CUSTOM_BAREMETAL_SMALL finds a node whose resource_class is
// baremetal-small. Nodes are tried in id order (deterministic on every
// replica); the error is Claim's FaultNoNode conflict when none is free.
func ClaimClass(tx *memdb.Txn, resourceClass, server string, info map[string]any, now time.Time) (*Node, error) {
	want := NormalizeResourceClass(resourceClass)
	for _, n := range store.All[Node](tx, NodeTable, "id") {
		if want == "" || NormalizeResourceClass(n.ResourceClass) != want {
			continue
		}
		// Claim takes the first free node of the node's exact class.
		if c, err := Claim(tx, n.ResourceClass, server, info, now); err == nil {
			return c, nil
		}
	}
	return nil, store.Fault(store.KindConflict, FaultNoNode,
		"no available bare-metal node of resource class %s", resourceClass)
}

// Allocate records the Ironic allocation (1.52) of node n, a copy Claim
// or ClaimClass returned for server, before PutClaimed stores it: what
// `openstack baremetal allocation list` shows of a node Nova holds. The
// allocation's uuid is the server's, as the node's instance_uuid is the
// allocation's in Ironic; it is active on the node from the start (the
// claim was the pick). It goes when the server lets the node go: the
// conductor clearing instance_uuid after cleaning (PutNode drops it with
// it), or Unclaim.
func Allocate(tx *memdb.Txn, n *Node, server string, now time.Time) error {
	if store.Get[Allocation](tx, AllocationTable, server) != nil {
		return store.Conflictf("An allocation with UUID %s already exists.", server)
	}
	a := Allocation{ID: server, ResourceClass: n.ResourceClass, NodeID: n.ID, State: AllocActive, CreatedAt: now, Revision: 1}
	n.AllocationID = a.ID
	return tx.Insert(AllocationTable, &a)
}

// put inserts a changed copy of a node with the next revision.
func put(tx *memdb.Txn, n *Node, now time.Time) (*Node, error) {
	n.UpdatedAt = now
	if err := PutClaimed(tx, n); err != nil {
		return nil, err
	}
	return store.Get[Node](tx, NodeTable, n.ID).Clone(), nil
}

// Release starts the tear-down of the node a deleted server is on: the
// node goes to deleting (target available), and the conductor powers it
// off, cleans it, makes it available and then reports the server Gone.
// A deploy still in progress is abandoned (its agent boot is dropped, so
// the ramdisk's token no longer answers); a failed tear-down (error) is
// tried again. A node past that (deleting, cleaning, available again,
// or taken over by an operator) is left as it is. Release returns nil,
// nil when no node holds the server (the server can go at once).
func Release(tx *memdb.Txn, server string, now time.Time) (*Node, error) {
	cur := NodeByInstance(tx, server)
	if cur == nil {
		return nil, nil
	}
	switch cur.ProvisionState {
	case StateActive, StateDeploying, StateDeployWait, StateDeployFail, StateError:
	default:
		return cur, nil
	}
	n := cur.Clone()
	n.ProvisionState, n.TargetProvisionState = StateDeleting, StateAvailable
	n.ProvisionUpdatedAt = now
	n.LastError = ""
	if n.Agent != nil && n.Agent.Op == "deploy" {
		n.Agent = nil
	}
	return put(tx, n, now)
}

// RequestPower asks the conductor to bring the node a server is on to
// target (PowerOn, PowerOff or Rebooting), counting the request in
// PowerSeq so the conductor acts on each once. It is an error matching
// store.ErrNotFound when no node holds the server.
func RequestPower(tx *memdb.Txn, server, target string, now time.Time) (*Node, error) {
	cur := NodeByInstance(tx, server)
	if cur == nil {
		return nil, store.NotFoundf("No bare-metal node holds instance %s.", server)
	}
	n := cur.Clone()
	n.TargetPowerState = target
	n.PowerSeq++
	return put(tx, n, now)
}

// Unclaim forgets a server on the node that held it, once the server is
// gone: InstanceUUID and InstanceInfo are cleared and the allocation
// Allocate recorded is deleted (the conductor normally did it already
// when cleaning finished; then nothing changes).
func Unclaim(tx *memdb.Txn, server string, now time.Time) error {
	if a := store.Get[Allocation](tx, AllocationTable, server); a != nil {
		if err := tx.Delete(AllocationTable, a); err != nil {
			return err
		}
	}
	cur := NodeByInstance(tx, server)
	if cur == nil {
		return nil
	}
	n := cur.Clone()
	n.InstanceUUID, n.InstanceInfo = "", nil
	if n.AllocationID == server {
		n.AllocationID = ""
	}
	_, err := put(tx, n, now)
	return err
}

// Rebuild deploys the node a server is on again (Ironic's rebuild, as
// Nova's rebuild asks it): from active, or a failed deploy or tear-down,
// to deploying (target active) with info's keys (the new image_source,
// ...) replacing instance_info's. A node in maintenance or protected is
// refused, as Ironic refuses it.
func Rebuild(tx *memdb.Txn, server string, info map[string]any, now time.Time) (*Node, error) {
	cur := NodeByInstance(tx, server)
	if cur == nil {
		return nil, store.NotFoundf("No bare-metal node holds instance %s.", server)
	}
	if _, _, err := Next(cur.ProvisionState, VerbRebuild); err != nil {
		return nil, store.Conflictf("Bare-metal node %s of server %s is %s: it can be rebuilt only when active or failed.", cur.ID, server, cur.ProvisionState)
	}
	switch {
	case cur.Maintenance:
		return nil, store.Conflictf("Bare-metal node %s of server %s is in maintenance: it cannot be rebuilt.", cur.ID, server)
	case cur.Protected:
		return nil, store.Forbiddenf("Node %s is protected and cannot be undeployed, rebuilt or deleted.", cur.ID)
	}
	n := cur.Clone()
	n.ProvisionState, n.TargetProvisionState = StateDeploying, StateActive
	n.ProvisionUpdatedAt = now
	n.LastError = ""
	n.Agent = nil
	if n.InstanceInfo == nil {
		n.InstanceInfo = map[string]any{}
	}
	for k, v := range deepMap(info) {
		n.InstanceInfo[k] = v
	}
	return put(tx, n, now)
}
