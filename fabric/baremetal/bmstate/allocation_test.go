package bmstate

import (
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/store"
)

func allocWorld(t *testing.T, nodes ...Node) *store.Local {
	t.Helper()
	l, err := store.NewLocal(Schema())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if _, err := propose(t, l, CmdCreateNode, CreateNodeCmd{Row: n}); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

func allocation(t *testing.T, l *store.Local, a Allocation) Allocation {
	t.Helper()
	if _, err := propose(t, l, CmdCreateAllocation, CreateAllocationCmd{Row: a}); err != nil {
		t.Fatal(err)
	}
	if _, err := propose(t, l, CmdProcessAllocation, ProcessAllocationCmd{ID: a.ID, Now: t0}); err != nil {
		t.Fatal(err)
	}
	return *store.Get[Allocation](l.Local(), AllocationTable, a.ID)
}

func TestAllocationPicksAMatchingFreeNode(t *testing.T) {
	free := func(id, class string, traits ...string) Node {
		return Node{ID: id, ResourceClass: class, Traits: traits, ProvisionState: StateAvailable, PowerState: PowerOff}
	}
	busy := free("a-busy", "gold")
	busy.InstanceUUID = "someone"
	unpowered := free("b-unknown-power", "gold")
	unpowered.PowerState = ""
	maint := free("c-maint", "gold")
	maint.Maintenance = true
	l := allocWorld(t, busy, unpowered, maint, free("d-silver", "silver"), free("e-gold", "gold"), free("f-gpu", "gold", "CUSTOM_GPU"))

	a := allocation(t, l, Allocation{ID: "x1", ResourceClass: "gold"})
	if a.State != AllocActive || a.NodeID != "e-gold" || a.LastError != "" {
		t.Fatalf("allocation %+v, want active on e-gold", a)
	}
	n, _ := LoadNode(l.Local(), "e-gold")
	if n.AllocationID != "x1" || n.InstanceUUID != "x1" {
		t.Fatalf("node %s: allocation %q instance %q", n.ID, n.AllocationID, n.InstanceUUID)
	}
	// The node is taken: the next goes to the one with the trait asked.
	a = allocation(t, l, Allocation{ID: "x2", ResourceClass: "gold", Traits: []string{"CUSTOM_GPU"}})
	if a.State != AllocActive || a.NodeID != "f-gpu" {
		t.Fatalf("allocation with trait: %+v", a)
	}
	if n, _ := LoadNode(l.Local(), "f-gpu"); n.InstanceInfo["traits"] == nil {
		t.Fatalf("instance_info traits not set: %v", n.InstanceInfo)
	}
	for name, tc := range map[string]struct {
		a    Allocation
		want string
	}{
		"no node left":    {Allocation{ID: "y1", ResourceClass: "gold"}, "no available nodes match the resource class gold"},
		"missing trait":   {Allocation{ID: "y2", ResourceClass: "silver", Traits: []string{"CUSTOM_NONE"}}, "no suitable nodes have the requested traits CUSTOM_NONE"},
		"wrong candidate": {Allocation{ID: "y3", ResourceClass: "gold", CandidateNodes: []string{"d-silver"}}, "none of the requested nodes"},
	} {
		a := allocation(t, l, tc.a)
		if a.State != AllocError || !strings.Contains(a.LastError, tc.want) || a.NodeID != "" {
			t.Errorf("%s: %+v, want error %q", name, a, tc.want)
		}
	}
	// Processing again changes nothing.
	if _, err := propose(t, l, CmdProcessAllocation, ProcessAllocationCmd{ID: "x1", Now: t0}); err != nil {
		t.Fatal(err)
	}
	if a := store.Get[Allocation](l.Local(), AllocationTable, "x1"); a.NodeID != "e-gold" || a.Revision != 2 {
		t.Fatalf("reprocessed: %+v", a)
	}
}

func TestDeletingAnAllocationFreesItsNode(t *testing.T) {
	l := allocWorld(t, Node{ID: "n1", ResourceClass: "gold", ProvisionState: StateAvailable, PowerState: PowerOff})
	// A failed allocation holds no node.
	if a := allocation(t, l, Allocation{ID: "x1", ResourceClass: "gold", Traits: []string{"CUSTOM_A"}}); a.State != AllocError {
		t.Fatalf("allocation %+v", a)
	}
	if _, err := propose(t, l, CmdDeleteAllocation, DeleteAllocationCmd{ID: "x1", Now: t0}); err != nil {
		t.Fatal(err)
	}
	allocation(t, l, Allocation{ID: "x2", ResourceClass: "gold"})
	n, _ := LoadNode(l.Local(), "n1")
	rev := n.Revision
	n.ProvisionState = StateActive
	if _, err := propose(t, l, CmdPutNode, PutNodeCmd{Row: *n, Revision: rev}); err != nil {
		t.Fatal(err)
	}
	if _, err := propose(t, l, CmdDeleteAllocation, DeleteAllocationCmd{ID: "x2", Now: t0}); err == nil || !strings.Contains(err.Error(), "undeploy") {
		t.Fatalf("delete from an active node: %v", err)
	}
	// Undeployed (the conductor clears instance_uuid): the allocation goes
	// with it.
	n, _ = LoadNode(l.Local(), "n1")
	n.ProvisionState, n.InstanceUUID = StateAvailable, ""
	n.AllocationID = "" // a writer cannot drop it by itself
	if _, err := propose(t, l, CmdPutNode, PutNodeCmd{Row: *n, Revision: n.Revision}); err != nil {
		t.Fatal(err)
	}
	if a := store.Get[Allocation](l.Local(), AllocationTable, "x2"); a != nil {
		t.Fatalf("allocation survived the undeploy: %+v", a)
	}
	// A fresh allocation, deleted: the node is free again.
	allocation(t, l, Allocation{ID: "x3", ResourceClass: "gold"})
	if _, err := propose(t, l, CmdDeleteAllocation, DeleteAllocationCmd{ID: "x3", Now: t0}); err != nil {
		t.Fatal(err)
	}
	if n, _ := LoadNode(l.Local(), "n1"); n.AllocationID != "" || n.InstanceUUID != "" {
		t.Fatalf("node not freed: %+v", n)
	}
}

func TestBackfillTakesADeployedNode(t *testing.T) {
	l := allocWorld(t,
		Node{ID: "n1", ResourceClass: "gold", ProvisionState: StateActive, PowerState: PowerOn},
		Node{ID: "n2", ResourceClass: "gold", ProvisionState: StateAvailable, PowerState: PowerOn})
	if _, err := propose(t, l, CmdCreateAllocation, CreateAllocationCmd{Row: Allocation{ID: "b1", NodeID: "n2"}}); err == nil {
		t.Fatal("backfilled an available node")
	}
	if _, err := propose(t, l, CmdCreateAllocation, CreateAllocationCmd{Row: Allocation{ID: "b1", NodeID: "n1", ResourceClass: "silver"}}); err == nil {
		t.Fatal("backfilled a node of another class")
	}
	if _, err := propose(t, l, CmdCreateAllocation, CreateAllocationCmd{Row: Allocation{ID: "b1", NodeID: "n1"}}); err != nil {
		t.Fatal(err)
	}
	a := store.Get[Allocation](l.Local(), AllocationTable, "b1")
	n, _ := LoadNode(l.Local(), "n1")
	if a.State != AllocActive || a.ResourceClass != "gold" || n.AllocationID != "b1" || n.InstanceUUID != "b1" {
		t.Fatalf("backfill: %+v, node allocation %q instance %q", a, n.AllocationID, n.InstanceUUID)
	}
	if _, err := propose(t, l, CmdCreateAllocation, CreateAllocationCmd{Row: Allocation{ID: "b2", NodeID: "n1"}}); err == nil {
		t.Fatal("a second allocation for one node")
	}
}

func TestRecordsAreUnique(t *testing.T) {
	l := allocWorld(t, Node{ID: "n1"}, Node{ID: "n2"})
	if _, err := propose(t, l, CmdPutDeployTemplate, PutDeployTemplateCmd{Row: DeployTemplate{ID: "t1", Name: "CUSTOM_A"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := propose(t, l, CmdPutDeployTemplate, PutDeployTemplateCmd{Row: DeployTemplate{ID: "t2", Name: "CUSTOM_A"}}); err == nil {
		t.Fatal("two templates named CUSTOM_A")
	}
	if _, err := propose(t, l, CmdPutVolumeConnector, PutVolumeConnectorCmd{Row: VolumeConnector{ID: "c1", NodeID: "n1", Type: "iqn", ConnectorID: "x"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := propose(t, l, CmdPutVolumeConnector, PutVolumeConnectorCmd{Row: VolumeConnector{ID: "c2", NodeID: "n2", Type: "iqn", ConnectorID: "x"}}); err == nil {
		t.Fatal("two connectors with one type and id")
	}
	if _, err := propose(t, l, CmdPutVolumeTarget, PutVolumeTargetCmd{Row: VolumeTarget{ID: "v1", NodeID: "n1", BootIndex: 0}}); err != nil {
		t.Fatal(err)
	}
	if _, err := propose(t, l, CmdPutVolumeTarget, PutVolumeTargetCmd{Row: VolumeTarget{ID: "v2", NodeID: "n1", BootIndex: 0}}); err == nil {
		t.Fatal("two targets at one boot index of a node")
	}
	if _, err := propose(t, l, CmdPutVolumeTarget, PutVolumeTargetCmd{Row: VolumeTarget{ID: "v2", NodeID: "n2", BootIndex: 0}}); err != nil {
		t.Fatalf("boot index 0 of another node: %v", err)
	}
	// Deleting a node deletes its volume records.
	if _, err := propose(t, l, CmdDeleteNode, DeleteNodeCmd{ID: "n1", Revision: 1}); err != nil {
		t.Fatal(err)
	}
	if len(VolumeConnectors(l.Local(), "n1")) != 0 || len(VolumeTargets(l.Local(), "n1")) != 0 {
		t.Fatal("a deleted node's volume records stayed")
	}
}
