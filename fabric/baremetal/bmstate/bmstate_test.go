package bmstate

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/provision/agentapi"
)

var t0 = time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)

func propose(t *testing.T, l *store.Local, typ string, body any) (store.Result, error) {
	t.Helper()
	return l.Propose(context.Background(), typ, body)
}

func TestDiscoverIsOneNodePerMachine(t *testing.T) {
	l, err := store.NewLocal(Schema())
	if err != nil {
		t.Fatal(err)
	}
	inv := &agentapi.Inventory{CPU: agentapi.CPU{Count: 2}}
	disc := DiscoverCmd{
		Node:  Node{ID: "n1", ProvisionState: StateEnroll, Inventory: inv, AutoDiscovered: true, CreatedAt: t0},
		Ports: []Port{{ID: "p1", Address: "52:54:00:00:00:01", PXEEnabled: true, CreatedAt: t0}},
	}
	if _, err := propose(t, l, CmdDiscover, disc); err != nil {
		t.Fatal(err)
	}
	// The same machine booting again (a new node id from its proposer)
	// updates the node its MAC belongs to.
	again := disc
	again.Node.ID, again.Ports = "n2", []Port{{ID: "p2", Address: "52:54:00:00:00:01"}}
	again.Node.Inventory = &agentapi.Inventory{CPU: agentapi.CPU{Count: 4}}
	if _, err := propose(t, l, CmdDiscover, again); err != nil {
		t.Fatal(err)
	}
	tx := l.Local()
	if n := NodeByMAC(tx, "52-54-00-00-00-01"); n == nil || n.ID != "n1" || n.Inventory.CPU.Count != 4 || n.Revision != 2 {
		t.Fatalf("node by mac = %+v", n)
	}
	if store.Get[Node](tx, NodeTable, "n2") != nil {
		t.Fatal("second discovery made a second node")
	}
}

func TestPutRefusesAStaleRevision(t *testing.T) {
	l, err := store.NewLocal(Schema())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := propose(t, l, CmdCreateNode, CreateNodeCmd{Row: Node{ID: "n1", Name: "a", ProvisionState: StateEnroll}}); err != nil {
		t.Fatal(err)
	}
	n, _ := LoadNode(l.Local(), "n1")
	n.ProvisionState = StateVerifying
	if _, err := propose(t, l, CmdPutNode, PutNodeCmd{Row: *n, Revision: 1}); err != nil {
		t.Fatal(err)
	}
	n.ProvisionState = StateManageable
	if _, err := propose(t, l, CmdPutNode, PutNodeCmd{Row: *n, Revision: 1}); !IsStale(err) {
		t.Fatalf("stale put: %v", err)
	}
	if _, err := propose(t, l, CmdCreateNode, CreateNodeCmd{Row: Node{ID: "n2", Name: "a"}}); err == nil {
		t.Fatal("a second node named a was created")
	}
}

func TestClaimTakesOnlyAFreeNodeOfTheClass(t *testing.T) {
	db, err := store.MemDB(Schema())
	if err != nil {
		t.Fatal(err)
	}
	tx := db.Txn(true) // a write transaction, as in an FSM handler
	defer tx.Abort()
	rows := []Node{
		{ID: "a", ResourceClass: "baremetal", ProvisionState: StateManageable},
		{ID: "b", ResourceClass: "other", ProvisionState: StateAvailable},
		{ID: "c", ResourceClass: "baremetal", ProvisionState: StateAvailable, Maintenance: true},
		{ID: "d", ResourceClass: "baremetal", ProvisionState: StateAvailable},
	}
	for i := range rows {
		if err := tx.Insert(NodeTable, &rows[i]); err != nil {
			t.Fatal(err)
		}
	}
	n, err := Claim(tx, "baremetal", "srv1", map[string]any{"image_source": "img"}, t0)
	if err != nil || n.ID != "d" || n.ProvisionState != StateDeploying || n.InstanceUUID != "srv1" {
		t.Fatalf("claim = %+v, %v", n, err)
	}
	if err := PutClaimed(tx, n); err != nil {
		t.Fatal(err)
	}
	if _, err := Claim(tx, "baremetal", "srv2", nil, t0); err == nil {
		t.Fatal("a second server claimed the only free node")
	}
}

func TestStateMachine(t *testing.T) {
	to, target, err := Next(StateEnroll, VerbManage)
	if err != nil || to != StateVerifying || target != StateManageable {
		t.Fatalf("enroll+manage = %s %s %v", to, target, err)
	}
	if _, _, err := Next(StateEnroll, VerbProvide); !errors.Is(err, ErrBadTransition) {
		t.Fatalf("enroll+provide: %v", err)
	}
	for _, s := range []string{StateVerifying, StateInspectWait, StateCleanWait, StateDeployWait, StateDeleting} {
		if !Working(s) || Failed(s) == s {
			t.Errorf("%s: working %v, failed %q", s, Working(s), Failed(s))
		}
	}
}

func TestEveryCommandSurvivesSnapshot(t *testing.T) {
	l, err := store.NewLocal(Schema())
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		typ  string
		body any
	}{
		{CmdCreateNode, CreateNodeCmd{Row: Node{ID: "n1", Name: "one", ProvisionState: StateEnroll, CreatedAt: t0}}},
		{CmdCreateNode, CreateNodeCmd{Row: Node{ID: "n2", ProvisionState: StateEnroll, CreatedAt: t0}}},
		{CmdPutNode, PutNodeCmd{Row: Node{ID: "n1", Name: "one", ProvisionState: StateManageable, CreatedAt: t0}, Revision: 1}},
		{CmdCreatePort, CreatePortCmd{Row: Port{ID: "p1", NodeID: "n1", Address: "52:54:00:00:00:01"}}},
		{CmdPutPort, PutPortCmd{Row: Port{ID: "p1", NodeID: "n1", Address: "52:54:00:00:00:02"}, Revision: 1}},
		{CmdCreatePort, CreatePortCmd{Row: Port{ID: "p2", NodeID: "n2", Address: "52:54:00:00:00:03"}}},
		{CmdDeletePort, DeletePortCmd{ID: "p2"}},
		{CmdDeleteNode, DeleteNodeCmd{ID: "n2", Revision: 1}},
		{CmdDiscover, DiscoverCmd{Node: Node{ID: "n3", ProvisionState: StateEnroll, AutoDiscovered: true}, Ports: []Port{{ID: "p3", Address: "52:54:00:00:00:04"}}}},
		{CmdPutConductor, PutConductorCmd{Row: Conductor{ID: "node-a", Interface: "prov0", Address: "10.9.0.1"}}},
		{CmdPutConductor, PutConductorCmd{Row: Conductor{ID: "node-b"}}},
		{CmdDropConductor, DropConductorCmd{ID: "node-b"}},
		{CmdCreateChassis, CreateChassisCmd{Row: Chassis{ID: "c1", Description: "rack 1", CreatedAt: t0}}},
		{CmdPutChassis, PutChassisCmd{Row: Chassis{ID: "c1", Description: "rack one", CreatedAt: t0}, Revision: 1}},
		{CmdCreateChassis, CreateChassisCmd{Row: Chassis{ID: "c2", CreatedAt: t0}}},
		{CmdDeleteChassis, DeleteChassisCmd{ID: "c2"}},
		{CmdCreateNode, CreateNodeCmd{Row: Node{ID: "n4", ChassisID: "c1", ProvisionState: StateEnroll, CreatedAt: t0}}},
		{CmdCreatePortgroup, CreatePortgroupCmd{Row: Portgroup{ID: "g1", NodeID: "n1", Address: "52:54:00:00:01:00", CreatedAt: t0}}},
		{CmdPutPortgroup, PutPortgroupCmd{Row: Portgroup{ID: "g1", NodeID: "n1", Name: "bond0", CreatedAt: t0}, Revision: 1}},
		{CmdPutPort, PutPortCmd{Row: Port{ID: "p1", NodeID: "n1", Address: "52:54:00:00:00:02", PortgroupID: "g1"}, Revision: 2}},
		{CmdCreatePortgroup, CreatePortgroupCmd{Row: Portgroup{ID: "g2", NodeID: "n1", CreatedAt: t0}}},
		{CmdDeletePortgroup, DeletePortgroupCmd{ID: "g2"}},
		{CmdCreateNode, CreateNodeCmd{Row: Node{ID: "n5", ResourceClass: "gold", ProvisionState: StateAvailable, PowerState: PowerOff, CreatedAt: t0}}},
		{CmdCreateAllocation, CreateAllocationCmd{Row: Allocation{ID: "a1", Name: "first", ResourceClass: "gold", CreatedAt: t0}}},
		{CmdProcessAllocation, ProcessAllocationCmd{ID: "a1", Now: t0}},
		{CmdPutAllocation, PutAllocationCmd{Row: Allocation{ID: "a1", Name: "renamed"}, Revision: 2}},
		{CmdCreateAllocation, CreateAllocationCmd{Row: Allocation{ID: "a2", ResourceClass: "gold", CreatedAt: t0}}},
		{CmdDeleteAllocation, DeleteAllocationCmd{ID: "a2", Now: t0}},
		{CmdPutDeployTemplate, PutDeployTemplateCmd{Row: DeployTemplate{ID: "t1", Name: "CUSTOM_A", Steps: []map[string]any{{"interface": "bios", "step": "apply_configuration", "args": map[string]any{}, "priority": 10}}}}},
		{CmdPutDeployTemplate, PutDeployTemplateCmd{Row: DeployTemplate{ID: "t1", Name: "CUSTOM_B"}, Revision: 1}},
		{CmdPutDeployTemplate, PutDeployTemplateCmd{Row: DeployTemplate{ID: "t2", Name: "CUSTOM_C"}}},
		{CmdDeleteDeployTemplate, DeleteRecordCmd{ID: "t2"}},
		{CmdPutVolumeConnector, PutVolumeConnectorCmd{Row: VolumeConnector{ID: "vc1", NodeID: "n1", Type: "iqn", ConnectorID: "iqn.2026-12.org:one"}}},
		{CmdPutVolumeConnector, PutVolumeConnectorCmd{Row: VolumeConnector{ID: "vc2", NodeID: "n1", Type: "wwpn", ConnectorID: "wwpn1"}}},
		{CmdDeleteVolumeConnector, DeleteRecordCmd{ID: "vc2"}},
		{CmdPutVolumeTarget, PutVolumeTargetCmd{Row: VolumeTarget{ID: "vt1", NodeID: "n1", VolumeType: "iscsi", VolumeID: "v1"}}},
		{CmdPutVolumeTarget, PutVolumeTargetCmd{Row: VolumeTarget{ID: "vt1", NodeID: "n1", VolumeType: "iscsi", VolumeID: "v2", BootIndex: 1}, Revision: 1}},
		{CmdPutVolumeTarget, PutVolumeTargetCmd{Row: VolumeTarget{ID: "vt2", NodeID: "n1", VolumeType: "iscsi", VolumeID: "v3"}}},
		{CmdDeleteVolumeTarget, DeleteRecordCmd{ID: "vt2"}},
	}
	for _, s := range steps {
		if _, err := propose(t, l, s.typ, s.body); err != nil {
			t.Fatalf("%s: %v", s.typ, err)
		}
	}
	store.EveryCommandSurvivesSnapshot(t, l, Schema())
}

func TestPortgroupsHoldTheirPorts(t *testing.T) {
	l, err := store.NewLocal(Schema())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"n1", "n2"} {
		if _, err := propose(t, l, CmdCreateNode, CreateNodeCmd{Row: Node{ID: n}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := propose(t, l, CmdCreatePortgroup, CreatePortgroupCmd{Row: Portgroup{ID: "g0", NodeID: "missing"}}); store.KindOf(err) != store.KindInvalid {
		t.Fatalf("group on a missing node: %v", err)
	}
	if _, err := propose(t, l, CmdCreatePortgroup, CreatePortgroupCmd{Row: Portgroup{ID: "g1", NodeID: "n1", Name: "bond0", Address: "52:54:00:00:01:00"}}); err != nil {
		t.Fatal(err)
	}
	for _, dup := range []Portgroup{{ID: "g2", NodeID: "n1", Name: "bond0"}, {ID: "g2", NodeID: "n2", Address: "52:54:00:00:01:00"}} {
		if _, err := propose(t, l, CmdCreatePortgroup, CreatePortgroupCmd{Row: dup}); store.KindOf(err) != store.KindConflict {
			t.Fatalf("duplicate %+v: %v", dup, err)
		}
	}
	if _, err := propose(t, l, CmdCreatePort, CreatePortCmd{Row: Port{ID: "p1", NodeID: "n2", Address: "52:54:00:00:00:01", PortgroupID: "g1"}}); store.KindOf(err) != store.KindInvalid {
		t.Fatalf("port in another node's group: %v", err)
	}
	if _, err := propose(t, l, CmdCreatePort, CreatePortCmd{Row: Port{ID: "p1", NodeID: "n1", Address: "52:54:00:00:00:01", PortgroupID: "g1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := propose(t, l, CmdCreatePort, CreatePortCmd{Row: Port{ID: "p2", NodeID: "n1", Address: "52:54:00:00:00:02", PortgroupID: "g1", PhysicalNetwork: "physnet2"}}); store.KindOf(err) != store.KindConflict {
		t.Fatalf("port on another physical network than its group's: %v", err)
	}
	if _, err := propose(t, l, CmdDeletePortgroup, DeletePortgroupCmd{ID: "g1"}); store.KindOf(err) != store.KindConflict {
		t.Fatalf("delete of a group with a port: %v", err)
	}
	if _, err := propose(t, l, CmdDeleteNode, DeleteNodeCmd{ID: "n1", Revision: 1}); err != nil {
		t.Fatal(err)
	}
	if g := store.Get[Portgroup](l.Local(), PortgroupTable, "g1"); g != nil {
		t.Fatal("the deleted node's port group stayed")
	}
}

func TestChassisHoldsItsNodes(t *testing.T) {
	l, err := store.NewLocal(Schema())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := propose(t, l, CmdCreateNode, CreateNodeCmd{Row: Node{ID: "n1", ChassisID: "c1"}}); store.KindOf(err) != store.KindInvalid {
		t.Fatalf("node in a missing chassis: %v", err)
	}
	if _, err := propose(t, l, CmdCreateChassis, CreateChassisCmd{Row: Chassis{ID: "c1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := propose(t, l, CmdCreateNode, CreateNodeCmd{Row: Node{ID: "n1", ChassisID: "c1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := propose(t, l, CmdDeleteChassis, DeleteChassisCmd{ID: "c1"}); store.KindOf(err) != store.KindInvalid {
		t.Fatalf("delete of a chassis with a node: %v", err)
	}
	if _, err := propose(t, l, CmdDeleteNode, DeleteNodeCmd{ID: "n1", Revision: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := propose(t, l, CmdDeleteChassis, DeleteChassisCmd{ID: "c1"}); err != nil {
		t.Fatalf("delete of an empty chassis: %v", err)
	}
}
