package bmstate

import (
	"slices"
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// Allocation is Ironic's allocation (1.52): a request for one available
// node of a resource class, with traits and optionally a list of
// candidates. It is created "allocating"; ProcessAllocation picks the
// node inside the Raft apply (so two allocations never get one node) and
// makes it "active", or "error" with LastError when nothing matches.
type Allocation struct {
	ID             string         `json:"id"` // UUID
	Name           string         `json:"name,omitempty"`
	ResourceClass  string         `json:"resource_class,omitempty"`
	Traits         []string       `json:"traits,omitempty"`
	CandidateNodes []string       `json:"candidate_nodes,omitempty"` // node UUIDs
	Owner          string         `json:"owner,omitempty"`
	Extra          map[string]any `json:"extra,omitempty"`
	NodeID         string         `json:"node_uuid,omitempty"`
	State          string         `json:"state"`
	LastError      string         `json:"last_error,omitempty"`
	CreatedAt      time.Time      `json:"created_at"`
	UpdatedAt      time.Time      `json:"updated_at,omitzero"`
	Revision       int64          `json:"revision"`
}

// Allocation states.
const (
	AllocAllocating = "allocating"
	AllocActive     = "active"
	AllocError      = "error"
)

// AllocationTable holds allocations; the commands change them.
const (
	AllocationTable = "baremetal_allocations"

	CmdCreateAllocation  = "baremetal.allocation.create"
	CmdProcessAllocation = "baremetal.allocation.process"
	CmdPutAllocation     = "baremetal.allocation.put"
	CmdDeleteAllocation  = "baremetal.allocation.delete"
)

func allocationTable() store.Table {
	return store.NewTable(AllocationTable, &Allocation{},
		optional("name", "Name"),
		optional("node", "NodeID"))
}

// AllocationByNode returns the allocation holding node id, or nil.
func AllocationByNode(txn *memdb.Txn, node string) *Allocation {
	raw, _ := txn.First(AllocationTable, "node", node)
	if raw == nil {
		return nil
	}
	return raw.(*Allocation)
}

// CreateAllocationCmd inserts an allocation. With Row.NodeID set it is a
// backfill (1.58): the allocation of a node deployed without one, active
// at once.
type CreateAllocationCmd struct {
	Row Allocation `json:"row"`
}

func allocationNameFree(tx *memdb.Txn, name, id string) error {
	if name == "" {
		return nil
	}
	raw, _ := tx.First(AllocationTable, "name", name)
	if raw != nil && raw.(*Allocation).ID != id {
		return store.Conflictf("An allocation with name %s already exists.", name)
	}
	return nil
}

func applyCreateAllocation(tx *memdb.Txn, c CreateAllocationCmd) (any, error) {
	if store.Get[Allocation](tx, AllocationTable, c.Row.ID) != nil {
		return nil, store.Conflictf("An allocation with UUID %s already exists.", c.Row.ID)
	}
	if err := allocationNameFree(tx, c.Row.Name, c.Row.ID); err != nil {
		return nil, err
	}
	row := c.Row
	row.Revision = 1
	if row.NodeID == "" {
		row.State, row.LastError = AllocAllocating, ""
		return row, tx.Insert(AllocationTable, &row)
	}
	cur := store.Get[Node](tx, NodeTable, row.NodeID)
	if cur == nil {
		return nil, store.Fault(store.KindInvalid, "", "Node %s could not be found.", row.NodeID)
	}
	if cur.AllocationID != "" {
		return nil, store.Conflictf("Node %s already has an allocation %s.", cur.ID, cur.AllocationID)
	}
	if cur.InstanceUUID != "" && cur.InstanceUUID != row.ID {
		return nil, store.Conflictf("Node %s is associated with instance %s.", cur.ID, cur.InstanceUUID)
	}
	if other := NodeByInstance(tx, row.ID); other != nil && other.ID != cur.ID {
		return nil, store.Conflictf("Instance %s is already associated with node %s.", row.ID, other.ID)
	}
	if cur.ProvisionState != StateActive && cur.ProvisionState != StateDeploying && cur.ProvisionState != StateDeployWait {
		return nil, store.Fault(store.KindInvalid, "", "Cannot backfill an allocation for node %s in provision state %s: only a deployed (or deploying) node can be backfilled.", cur.ID, cur.ProvisionState)
	}
	if row.ResourceClass == "" {
		row.ResourceClass = cur.ResourceClass
	}
	if why := mismatch(&row, cur); why != "" {
		return nil, store.Fault(store.KindInvalid, "", "Failed to backfill allocation %s with node %s: %s.", row.ID, cur.ID, why)
	}
	row.State, row.LastError = AllocActive, ""
	if err := tx.Insert(AllocationTable, &row); err != nil {
		return nil, err
	}
	return row, attach(tx, cur, &row, row.CreatedAt)
}

// mismatch says why node n cannot hold allocation a ("" when it can).
func mismatch(a *Allocation, n *Node) string {
	if a.ResourceClass != "" && n.ResourceClass != a.ResourceClass {
		return "the node's resource class " + n.ResourceClass + " is not " + a.ResourceClass
	}
	if len(a.CandidateNodes) > 0 && !slices.Contains(a.CandidateNodes, n.ID) {
		return "the node is not one of the candidates"
	}
	for _, t := range a.Traits {
		if !slices.Contains(n.Traits, t) {
			return "the node lacks the trait " + t
		}
	}
	if a.Owner != "" && n.Owner != a.Owner {
		return "the node's owner is not " + a.Owner
	}
	return ""
}

// attach records allocation a on node n (as Ironic: the node's
// instance_uuid becomes the allocation's uuid and its instance_info
// carries the traits asked for).
func attach(tx *memdb.Txn, cur *Node, a *Allocation, now time.Time) error {
	n := cur.Clone()
	n.AllocationID = a.ID
	n.InstanceUUID = a.ID
	if len(a.Traits) > 0 {
		if n.InstanceInfo == nil {
			n.InstanceInfo = map[string]any{}
		}
		traits := make([]any, 0, len(a.Traits))
		for _, t := range a.Traits {
			traits = append(traits, t)
		}
		n.InstanceInfo["traits"] = traits
	}
	n.UpdatedAt = now
	n.Revision = cur.Revision + 1
	return tx.Insert(NodeTable, n)
}

// ProcessAllocationCmd picks a node for an allocation still allocating:
// the first (in id order, so every replica picks the same) available,
// powered (its power state known), unreserved node out of maintenance
// that matches. An allocation no longer allocating is left alone, so any
// conductor may propose it, any number of times.
type ProcessAllocationCmd struct {
	ID  string    `json:"id"`
	Now time.Time `json:"now"`
}

func applyProcessAllocation(tx *memdb.Txn, c ProcessAllocationCmd) (any, error) {
	cur := store.Get[Allocation](tx, AllocationTable, c.ID)
	if cur == nil {
		return nil, store.NotFoundf("Allocation %s could not be found.", c.ID)
	}
	if cur.State != AllocAllocating {
		return *cur, nil
	}
	a := *cur
	a.Revision, a.UpdatedAt = cur.Revision+1, c.Now
	var pool, traitless int
	for _, n := range store.All[Node](tx, NodeTable, "id") {
		if n.ProvisionState != StateAvailable || n.InstanceUUID != "" || n.AllocationID != "" ||
			n.Maintenance || n.Retired || n.PowerState == "" {
			continue
		}
		if n.ResourceClass != a.ResourceClass ||
			(len(a.CandidateNodes) > 0 && !slices.Contains(a.CandidateNodes, n.ID)) ||
			(a.Owner != "" && n.Owner != a.Owner) {
			continue
		}
		pool++
		if mismatch(&a, n) != "" {
			traitless++
			continue
		}
		a.State, a.NodeID, a.LastError = AllocActive, n.ID, ""
		if err := tx.Insert(AllocationTable, &a); err != nil {
			return nil, err
		}
		return a, attach(tx, n, &a, c.Now)
	}
	a.State = AllocError
	switch {
	case pool > 0:
		a.LastError = "Failed to process allocation " + a.ID + ": no suitable nodes have the requested traits " + strings.Join(a.Traits, ", ") + "."
	case len(a.CandidateNodes) > 0:
		a.LastError = "Failed to process allocation " + a.ID + ": none of the requested nodes are available and match the resource class " + a.ResourceClass + "."
	default:
		a.LastError = "Failed to process allocation " + a.ID + ": no available nodes match the resource class " + a.ResourceClass + "."
	}
	return a, tx.Insert(AllocationTable, &a)
}

// PutAllocationCmd replaces an allocation's name and extra (the fields
// PATCH may change, 1.57) at revision Revision.
type PutAllocationCmd struct {
	Row      Allocation `json:"row"`
	Revision int64      `json:"revision"`
}

func applyPutAllocation(tx *memdb.Txn, c PutAllocationCmd) (any, error) {
	cur := store.Get[Allocation](tx, AllocationTable, c.Row.ID)
	if cur == nil {
		return nil, store.NotFoundf("Allocation %s could not be found.", c.Row.ID)
	}
	if cur.Revision != c.Revision {
		return nil, stale("allocation", cur.ID, cur.Revision, c.Revision)
	}
	if err := allocationNameFree(tx, c.Row.Name, c.Row.ID); err != nil {
		return nil, err
	}
	row := *cur
	row.Name, row.Extra, row.UpdatedAt = c.Row.Name, c.Row.Extra, c.Row.UpdatedAt
	row.Revision = cur.Revision + 1
	return row, tx.Insert(AllocationTable, &row)
}

// DeleteAllocationCmd deletes an allocation and frees its node; not while
// the node is deployed or at work (undeploy it, or put it in maintenance,
// first), as Ironic.
type DeleteAllocationCmd struct {
	ID  string    `json:"id"`
	Now time.Time `json:"now"`
}

func applyDeleteAllocation(tx *memdb.Txn, c DeleteAllocationCmd) (any, error) {
	cur := store.Get[Allocation](tx, AllocationTable, c.ID)
	if cur == nil {
		return nil, store.NotFoundf("Allocation %s could not be found.", c.ID)
	}
	if n := store.Get[Node](tx, NodeTable, cur.NodeID); n != nil && n.AllocationID == cur.ID {
		if !n.Maintenance && (n.ProvisionState == StateActive || Working(n.ProvisionState)) {
			return nil, store.Conflictf("Cannot remove allocation %s from node %s in provision state %s: undeploy the node or put it in maintenance first.", cur.ID, n.ID, n.ProvisionState)
		}
		if err := detach(tx, n, c.Now); err != nil {
			return nil, err
		}
	}
	return *cur, tx.Delete(AllocationTable, cur)
}

// detach frees node cur of its allocation: the instance_uuid and traits
// the allocation put there go with it.
func detach(tx *memdb.Txn, cur *Node, now time.Time) error {
	n := cur.Clone()
	if n.InstanceUUID == n.AllocationID {
		n.InstanceUUID = ""
		delete(n.InstanceInfo, "traits")
	}
	n.AllocationID = ""
	n.UpdatedAt = now
	n.Revision = cur.Revision + 1
	return tx.Insert(NodeTable, n)
}

// keepAllocation carries the allocation over a PutNode: only the
// allocation commands set it, and a node whose instance_uuid is cleared
// (an undeploy, an operator's PATCH) loses its allocation with it, as in
// Ironic.
func keepAllocation(tx *memdb.Txn, cur *Node, row *Node) error {
	row.AllocationID = cur.AllocationID
	if row.AllocationID == "" {
		return nil
	}
	if row.InstanceUUID != "" {
		if row.InstanceUUID != cur.InstanceUUID {
			return store.Conflictf("Node %s has allocation %s: its instance_uuid cannot change to %s (delete the allocation first).", cur.ID, cur.AllocationID, row.InstanceUUID)
		}
		return nil
	}
	if a := store.Get[Allocation](tx, AllocationTable, row.AllocationID); a != nil {
		if err := tx.Delete(AllocationTable, a); err != nil {
			return err
		}
	}
	row.AllocationID = ""
	return nil
}
