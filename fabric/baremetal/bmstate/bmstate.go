// Package bmstate is the bare-metal service's part of the replicated
// state: the node, port and conductor rows, Ironic's provision and power
// states, the tables and the commands that change them. The Ironic API
// (fabric/baremetal), the conductor agent (node/conductor) and the compute
// service (which claims an available node for a server) all read and
// change nodes through it; it knows nothing of HTTP.
//
// Changes follow the image service's pattern: a proposer reads a row,
// computes the new row (checking the state machine with Transition) and
// proposes PutNode naming the revision it read; the handler refuses a
// stale revision (IsStale) and the proposer reads again and retries. So
// the API and the conductor never lose each other's changes.
package bmstate

import (
	"encoding/json"
	"errors"
	"maps"
	"net"
	"slices"
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/provision/agentapi"
)

// Ironic's provision states (ironic/common/states.py), as the API shows
// them.
const (
	StateEnroll      = "enroll"
	StateVerifying   = "verifying"
	StateManageable  = "manageable"
	StateInspecting  = "inspecting"
	StateInspectWait = "inspect wait"
	StateInspectFail = "inspect failed"
	StateCleaning    = "cleaning"
	StateCleanWait   = "clean wait"
	StateCleanFail   = "clean failed"
	StateAvailable   = "available"
	StateDeploying   = "deploying"
	StateDeployWait  = "wait call-back"
	StateDeployFail  = "deploy failed"
	StateActive      = "active"
	StateDeleting    = "deleting"
	StateError       = "error" // a failed undeploy (Ironic's tear-down failure)
	StateAdopting    = "adopting"
	StateAdoptFail   = "adopt failed"
)

// Power states.
const (
	PowerOn   = "power on"
	PowerOff  = "power off"
	Rebooting = "rebooting" // only as a target
	SoftOff   = "soft power off"
	SoftBoot  = "soft rebooting"
)

// Verbs of PUT /v1/nodes/{node}/states/provision.
const (
	VerbManage   = "manage"
	VerbProvide  = "provide"
	VerbInspect  = "inspect"
	VerbClean    = "clean"
	VerbDeploy   = "deploy" // also "active"
	VerbActive   = "active"
	VerbDeleted  = "deleted" // also "undeploy"
	VerbUndeploy = "undeploy"
	VerbRebuild  = "rebuild"
	VerbAbort    = "abort"
	VerbAdopt    = "adopt"
)

// Transition is the state machine: from a stable or failed state, a verb
// leads to a working state whose target is given. The conductor moves a
// node on from a working state (verifying, inspecting, cleaning,
// deploying, deleting) to its wait state, then to the target or the
// matching failure.
type Transition struct {
	From, Verb  string
	To, Target  string
	Description string
}

// CleanedTo is where a node goes when its cleaning ends: its target,
// available when it has none, but manageable for a retired node, which
// Ironic never makes available again (it waits there to be removed).
func CleanedTo(n *Node) string {
	to := n.TargetProvisionState
	if to == "" {
		to = StateAvailable
	}
	if to == StateAvailable && n.Retired {
		to = StateManageable
	}
	return to
}

// Transitions are those the API accepts.
var transitions = []Transition{
	{StateEnroll, VerbManage, StateVerifying, StateManageable, "verify the BMC credentials"},
	{StateManageable, VerbManage, StateManageable, "", "already manageable"},
	{StateManageable, VerbProvide, StateCleaning, StateAvailable, "clean, then make available"},
	{StateManageable, VerbInspect, StateInspecting, StateManageable, "boot the agent and record the inventory"},
	{StateManageable, VerbClean, StateCleaning, StateManageable, "clean (manual)"},
	{StateManageable, VerbAdopt, StateAdopting, StateActive, "take over a deployed machine"},
	{StateInspectFail, VerbManage, StateManageable, "", "give up on the inspection"},
	{StateInspectFail, VerbInspect, StateInspecting, StateManageable, "retry the inspection"},
	{StateCleanFail, VerbManage, StateManageable, "", "give up on the cleaning"},
	{StateAvailable, VerbManage, StateManageable, "", "take out of the pool"},
	{StateAvailable, VerbDeploy, StateDeploying, StateActive, "deploy instance_info's image"},
	{StateAvailable, VerbActive, StateDeploying, StateActive, "deploy instance_info's image"},
	{StateDeployFail, VerbDeploy, StateDeploying, StateActive, "retry the deploy"},
	{StateDeployFail, VerbActive, StateDeploying, StateActive, "retry the deploy"},
	{StateDeployFail, VerbDeleted, StateDeleting, StateAvailable, "tear down, clean, make available"},
	{StateDeployFail, VerbUndeploy, StateDeleting, StateAvailable, "tear down, clean, make available"},
	{StateActive, VerbDeleted, StateDeleting, StateAvailable, "tear down, clean, make available"},
	{StateActive, VerbUndeploy, StateDeleting, StateAvailable, "tear down, clean, make available"},
	{StateActive, VerbRebuild, StateDeploying, StateActive, "write the image again"},
	{StateError, VerbDeleted, StateDeleting, StateAvailable, "retry the tear-down"},
	{StateError, VerbUndeploy, StateDeleting, StateAvailable, "retry the tear-down"},
	{StateError, VerbRebuild, StateDeploying, StateActive, "write the image again"},
	{StateAdoptFail, VerbManage, StateManageable, "", "give up on the adoption"},
	{StateAdoptFail, VerbAdopt, StateAdopting, StateActive, "retry the adoption"},
	{StateInspectWait, VerbAbort, StateInspectFail, StateManageable, "abort the inspection"},
	{StateCleanWait, VerbAbort, StateCleanFail, StateManageable, "abort the cleaning"},
	{StateDeployWait, VerbAbort, StateDeployFail, StateActive, "abort the deploy"},
}

// ErrBadTransition is what Next returns when verb is not allowed from the
// node's state; callers answer 400 with Ironic's wording.
var ErrBadTransition = errors.New("bad provision state transition")

// Next returns the working state and target a verb leads to from state.
func Next(state, verb string) (to, target string, err error) {
	for _, t := range transitions {
		if t.From == state && t.Verb == verb {
			return t.To, t.Target, nil
		}
	}
	return "", "", ErrBadTransition
}

// Transitions lists the state machine (for docs and tests).
func Transitions() []Transition { return slices.Clone(transitions) }

// Failed returns the failure state of a working or wait state: where the
// conductor puts a node whose operation failed or timed out.
func Failed(state string) string {
	switch state {
	case StateVerifying:
		return StateEnroll
	case StateInspecting, StateInspectWait:
		return StateInspectFail
	case StateCleaning, StateCleanWait:
		return StateCleanFail
	case StateDeploying, StateDeployWait:
		return StateDeployFail
	case StateDeleting:
		return StateError
	case StateAdopting:
		return StateAdoptFail
	}
	return state
}

// Working reports whether a node in state has an operation in progress:
// such a node is the conductor's, and the API refuses changes that would
// race it (409, as Ironic's NodeLocked).
func Working(state string) bool {
	switch state {
	case StateVerifying, StateInspecting, StateInspectWait, StateCleaning, StateCleanWait,
		StateDeploying, StateDeployWait, StateDeleting, StateAdopting:
		return true
	}
	return false
}

// Node is one bare-metal server. A row is never changed after insert: a
// command replaces it whole (Clone, change, PutNode).
type Node struct {
	ID   string `json:"id"` // UUID
	Name string `json:"name,omitempty"`
	// Driver is the hardware type: ipmi, redfish or fake-hardware.
	Driver string `json:"driver"`
	// DriverInfo holds the BMC address and user; passwords are never
	// here: Secrets holds each one sealed (fabric/secrets) under the same
	// key, and the API shows "******" in its place.
	DriverInfo map[string]string `json:"driver_info,omitempty"`
	Secrets    map[string]string `json:"secrets,omitempty"`
	// Properties are Ironic's node properties (cpus, memory_mb,
	// local_gb, cpu_arch, capabilities, root_device, ...).
	Properties    map[string]any `json:"properties,omitempty"`
	ResourceClass string         `json:"resource_class,omitempty"`
	Description   string         `json:"description,omitempty"`
	Owner         string         `json:"owner,omitempty"`
	Lessee        string         `json:"lessee,omitempty"`
	Extra         map[string]any `json:"extra,omitempty"`
	Traits        []string       `json:"traits,omitempty"`
	// Interfaces are Ironic's per-node interface choices (boot_interface,
	// deploy_interface, power_interface, ...), as set or defaulted.
	Interfaces map[string]string `json:"interfaces,omitempty"`

	Maintenance       bool   `json:"maintenance"`
	MaintenanceReason string `json:"maintenance_reason,omitempty"`
	Protected         bool   `json:"protected,omitempty"`
	ProtectedReason   string `json:"protected_reason,omitempty"`
	Retired           bool   `json:"retired,omitempty"`
	RetiredReason     string `json:"retired_reason,omitempty"`

	ProvisionState       string    `json:"provision_state"`
	TargetProvisionState string    `json:"target_provision_state,omitempty"`
	ProvisionUpdatedAt   time.Time `json:"provision_updated_at,omitzero"`
	PowerState           string    `json:"power_state,omitempty"` // "" is unknown (null)
	TargetPowerState     string    `json:"target_power_state,omitempty"`
	// PowerSeq counts power requests, so the conductor acts on each
	// once even when two ask for the same target.
	PowerSeq int `json:"power_seq,omitempty"`
	// BootDevice is the boot device asked for through the management
	// API, applied by the conductor (which then clears BootDeviceSeq's
	// pending flag by recording BootDeviceDone = BootDeviceSeq).
	BootDevice           string `json:"boot_device,omitempty"`
	BootDevicePersistent bool   `json:"boot_device_persistent,omitempty"`
	// TargetRAIDConfig is the RAID configuration asked for (Ironic's
	// target_raid_config); only the fake RAID interface takes one, and
	// nothing builds it.
	TargetRAIDConfig map[string]any `json:"target_raid_config,omitempty"`
	// ConsoleEnabled is the console state asked for; only the fake
	// console interface (fake-hardware) has one to enable.
	ConsoleEnabled bool   `json:"console_enabled,omitempty"`
	BootDeviceSeq  int    `json:"boot_device_seq,omitempty"`
	BootDeviceDone int    `json:"boot_device_done,omitempty"`
	LastError      string `json:"last_error,omitempty"`
	// Fault is why the conductor put the node in maintenance by itself
	// (Ironic's fault: "power failure", "clean failure", ...); cleared
	// with the maintenance.
	Fault string `json:"fault,omitempty"`

	// InstanceUUID is the compute server deployed (or being deployed) on
	// the node; InstanceInfo is Ironic's instance_info (image_source,
	// root_gb, image_checksum, configdrive, ...).
	InstanceUUID string `json:"instance_uuid,omitempty"`
	// AllocationID is the allocation holding the node (Ironic's
	// allocation_uuid); only the allocation commands change it.
	AllocationID string         `json:"allocation_uuid,omitempty"`
	InstanceInfo map[string]any `json:"instance_info,omitempty"`
	// DriverInternalInfo is Ironic's driver_internal_info: what the
	// conductor keeps for itself, shown read-only.
	DriverInternalInfo map[string]any `json:"driver_internal_info,omitempty"`

	// Conductor is the rackd node whose provisioning services and BMC
	// access drive this node.
	Conductor      string `json:"conductor"`
	AutoDiscovered bool   `json:"auto_discovered,omitempty"`
	// ChassisID is the chassis (Ironic's grouping of nodes) the node is
	// in, if any.
	ChassisID string `json:"chassis_uuid,omitempty"`
	// Inventory is what the agent last reported; InspectedAt when.
	Inventory           *agentapi.Inventory `json:"inventory,omitempty"`
	InspectionStartedAt time.Time           `json:"inspection_started_at,omitzero"`
	InspectedAt         time.Time           `json:"inspection_finished_at,omitzero"`

	// Agent is the operation the ramdisk is booted for, while one is.
	Agent *AgentBoot `json:"agent,omitempty"`

	History   []HistoryEvent `json:"history,omitempty"`
	CreatedAt time.Time      `json:"created_at"`
	UpdatedAt time.Time      `json:"updated_at,omitzero"`
	// Revision counts the row's versions (see the package comment).
	Revision int64 `json:"revision"`
}

// AgentBoot is one boot of the ramdisk for a node: its token (only the
// SHA-256 is kept), what it is for, the command it is to run, and the
// deadline by which it must call back or heartbeat.
type AgentBoot struct {
	// ID names this boot: the conductor derives the boot's token from
	// the node id and it (HMAC under its key), so a restarted rackd gives
	// a rebooting machine the same token without ever storing it.
	ID          string           `json:"id,omitempty"`
	TokenSHA256 string           `json:"token_sha256"`
	Op          string           `json:"op"` // inspect, clean, deploy
	Command     agentapi.Command `json:"command"`
	Started     time.Time        `json:"started"`
	// LastHeartbeat is when the agent last called; Deadline when the
	// conductor fails the node if it has not called again.
	LastHeartbeat time.Time `json:"last_heartbeat,omitzero"`
	Deadline      time.Time `json:"deadline"`
	Progress      string    `json:"progress,omitempty"`
	// Done is set when the agent reported the command's Result.
	Done   bool             `json:"done,omitempty"`
	Result *agentapi.Result `json:"result,omitempty"`
}

// HistoryEvent is one entry of the node's history (Ironic's
// /v1/nodes/{node}/history): errors and state changes worth keeping.
type HistoryEvent struct {
	ID        string    `json:"uuid"`
	CreatedAt time.Time `json:"created_at"`
	Severity  string    `json:"severity"` // INFO, ERROR
	EventType string    `json:"event_type"`
	Event     string    `json:"event"`
	Conductor string    `json:"conductor,omitempty"`
	User      string    `json:"user,omitempty"`
}

// HistoryLimit bounds a node's history: the oldest events go first.
const HistoryLimit = 100

// Record appends an event to the node's history, keeping HistoryLimit.
func (n *Node) Record(ev HistoryEvent) {
	n.History = append(n.History, ev)
	if over := len(n.History) - HistoryLimit; over > 0 {
		n.History = slices.Delete(n.History, 0, over)
	}
}

// Clone copies the row deeply enough that changing the copy leaves the
// stored row alone.
func (n *Node) Clone() *Node {
	c := *n
	c.DriverInfo = maps.Clone(n.DriverInfo)
	c.Secrets = maps.Clone(n.Secrets)
	c.Properties = deepMap(n.Properties)
	c.Extra = deepMap(n.Extra)
	c.Traits = slices.Clone(n.Traits)
	c.Interfaces = maps.Clone(n.Interfaces)
	c.InstanceInfo = deepMap(n.InstanceInfo)
	c.DriverInternalInfo = deepMap(n.DriverInternalInfo)
	if n.Inventory != nil {
		inv := *n.Inventory
		inv.Interfaces = slices.Clone(n.Inventory.Interfaces)
		inv.Disks = slices.Clone(n.Inventory.Disks)
		inv.CPU.Flags = slices.Clone(n.Inventory.CPU.Flags)
		c.Inventory = &inv
	}
	if n.Agent != nil {
		a := *n.Agent
		c.Agent = &a
	}
	c.History = slices.Clone(n.History)
	return &c
}

// deepMap copies a JSON-shaped map through JSON, so nested maps and
// slices are not shared.
func deepMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return maps.Clone(m)
	}
	var out map[string]any
	if json.Unmarshal(b, &out) != nil {
		return maps.Clone(m)
	}
	return out
}

// Port is one NIC of a node, by MAC (Ironic's port).
type Port struct {
	ID                  string            `json:"id"` // UUID
	Address             string            `json:"address"`
	NodeID              string            `json:"node_uuid"`
	PXEEnabled          bool              `json:"pxe_enabled"`
	LocalLinkConnection map[string]string `json:"local_link_connection,omitempty"`
	PhysicalNetwork     string            `json:"physical_network,omitempty"`
	Extra               map[string]any    `json:"extra,omitempty"`
	IsSmartNIC          bool              `json:"is_smartnic,omitempty"`
	// PortgroupID is the port group (a bond) the port is in, if any.
	PortgroupID string    `json:"portgroup_uuid,omitempty"`
	Name        string    `json:"name,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at,omitzero"`
	Revision    int64     `json:"revision"`
}

// Chassis is Ironic's chassis: a named group of nodes (a blade
// enclosure, a rack), with no behaviour of its own.
type Chassis struct {
	ID          string         `json:"id"` // UUID
	Description string         `json:"description,omitempty"`
	Extra       map[string]any `json:"extra,omitempty"`
	CreatedAt   time.Time      `json:"created_at"`
	UpdatedAt   time.Time      `json:"updated_at,omitzero"`
	Revision    int64          `json:"revision"`
}

// Conductor is a rackd node with provisioning services: where its
// DHCP/TFTP/HTTP answer and how agents reach it.
type Conductor struct {
	ID        string    `json:"id"` // the rackd node name
	Interface string    `json:"interface"`
	Address   string    `json:"address"`  // the interface's IPv4
	BootURL   string    `json:"boot_url"` // http://IP:PORT
	DHCPMode  string    `json:"dhcp_mode"`
	Drivers   []string  `json:"drivers"`
	Updated   time.Time `json:"updated"`
}

// IsSecretKey reports whether a driver_info key holds a password: the
// API seals its value into Node.Secrets and shows "******" in its place.
func IsSecretKey(key string) bool {
	return key == "password" || strings.HasSuffix(key, "_password")
}

// SecretAAD is what a node's sealed secrets are bound to (the
// additional data of secrets.Seal): the node's id, so a sealed password
// copied to another node does not open.
func SecretAAD(nodeID string) []byte { return []byte(nodeID) }

// NormalizeMAC returns mac lower-cased with colons, the form ports and
// lookups use; "" when mac is not a MAC.
func NormalizeMAC(mac string) string {
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) != 6 {
		return ""
	}
	return hw.String()
}

// Table and command names.
const (
	NodeTable      = "baremetal_nodes"
	PortTable      = "baremetal_ports"
	ConductorTable = "baremetal_conductors"
	ChassisTable   = "baremetal_chassis"

	CmdCreateNode    = "baremetal.node.create"
	CmdPutNode       = "baremetal.node.put"
	CmdDeleteNode    = "baremetal.node.delete"
	CmdCreatePort    = "baremetal.port.create"
	CmdPutPort       = "baremetal.port.put"
	CmdDeletePort    = "baremetal.port.delete"
	CmdDiscover      = "baremetal.discover"
	CmdPutConductor  = "baremetal.conductor.put"
	CmdDropConductor = "baremetal.conductor.delete"
	CmdCreateChassis = "baremetal.chassis.create"
	CmdPutChassis    = "baremetal.chassis.put"
	CmdDeleteChassis = "baremetal.chassis.delete"
)

// Schema is the bare-metal service's part of the replicated state.
func Schema() store.Schema {
	return store.Schema{
		Tables: []store.Table{
			store.NewTable(NodeTable, &Node{},
				optional("name", "Name"),
				optional("instance", "InstanceUUID"),
				optional("conductor", "Conductor"),
				optional("chassis", "ChassisID")),
			store.NewTable(PortTable, &Port{},
				store.StringIndex("address", "Address", true),
				store.StringIndex("node", "NodeID", false)),
			store.NewTable(ConductorTable, &Conductor{}),
			store.NewTable(ChassisTable, &Chassis{}),
			portgroupTable(),
			allocationTable(),
			deployTemplateTable(), volumeConnectorTable(), volumeTargetTable(),
		},
		Handlers: map[string]store.Handler{
			CmdCreateNode:    store.Typed(applyCreateNode),
			CmdPutNode:       store.Typed(applyPutNode),
			CmdDeleteNode:    store.Typed(applyDeleteNode),
			CmdCreatePort:    store.Typed(applyCreatePort),
			CmdPutPort:       store.Typed(applyPutPort),
			CmdDeletePort:    store.Typed(applyDeletePort),
			CmdDiscover:      store.Typed(applyDiscover),
			CmdPutConductor:  store.Typed(applyPutConductor),
			CmdDropConductor: store.Typed(applyDropConductor),
			CmdCreateChassis: store.Typed(applyCreateChassis),
			CmdPutChassis:    store.Typed(applyPutChassis),
			CmdDeleteChassis: store.Typed(applyDeleteChassis),

			CmdCreatePortgroup: store.Typed(applyCreatePortgroup),
			CmdPutPortgroup:    store.Typed(applyPutPortgroup),
			CmdDeletePortgroup: store.Typed(applyDeletePortgroup),

			CmdCreateAllocation:  store.Typed(applyCreateAllocation),
			CmdProcessAllocation: store.Typed(applyProcessAllocation),
			CmdPutAllocation:     store.Typed(applyPutAllocation),
			CmdDeleteAllocation:  store.Typed(applyDeleteAllocation),

			CmdPutDeployTemplate:     store.Typed(applyPutDeployTemplate),
			CmdDeleteDeployTemplate:  store.Typed(deleteRecord[DeployTemplate](DeployTemplateTable, "deploy template")),
			CmdPutVolumeConnector:    store.Typed(applyPutVolumeConnector),
			CmdDeleteVolumeConnector: store.Typed(deleteRecord[VolumeConnector](VolumeConnectorTable, "volume connector")),
			CmdPutVolumeTarget:       store.Typed(applyPutVolumeTarget),
			CmdDeleteVolumeTarget:    store.Typed(deleteRecord[VolumeTarget](VolumeTargetTable, "volume target")),
		},
	}
}

// optional indexes a string field that may be empty (a node without a
// name, an instance or a conductor).
func optional(name, field string) *memdb.IndexSchema {
	ix := store.StringIndex(name, field, false)
	ix.AllowMissing = true
	return ix
}

// TableNames lists the tables, so a watcher can watch them.
func TableNames() []string {
	return []string{NodeTable, PortTable, ConductorTable, ChassisTable, PortgroupTable,
		AllocationTable, DeployTemplateTable, VolumeConnectorTable, VolumeTargetTable}
}

// LoadNode returns a copy of node id (a UUID), or an error matching
// store.ErrNotFound.
func LoadNode(txn *memdb.Txn, id string) (*Node, error) {
	n := store.Get[Node](txn, NodeTable, id)
	if n == nil {
		return nil, store.NotFoundf("Node %s could not be found.", id)
	}
	return n.Clone(), nil
}

// NodeByMAC returns the node owning a port with mac, or nil.
func NodeByMAC(txn *memdb.Txn, mac string) *Node {
	raw, _ := txn.First(PortTable, "address", NormalizeMAC(mac))
	if raw == nil {
		return nil
	}
	n := store.Get[Node](txn, NodeTable, raw.(*Port).NodeID)
	if n == nil {
		return nil
	}
	return n.Clone()
}

// NodeByInstance returns the node a compute server is on, or nil.
func NodeByInstance(txn *memdb.Txn, server string) *Node {
	if server == "" {
		return nil
	}
	raw, _ := txn.First(NodeTable, "instance", server)
	if raw == nil {
		return nil
	}
	return raw.(*Node).Clone()
}

// Ports returns a node's ports.
func Ports(txn *memdb.Txn, node string) []*Port {
	return store.All[Port](txn, PortTable, "node", node)
}

// Claim picks an available, unclaimed node of resourceClass that is not
// in maintenance, and returns a copy with InstanceUUID set to server and
// the deploy started (deploying → active), stamped at now. It is meant
// to run inside a compute FSM handler, which inserts the result with
// PutClaimed in the same transaction, so two servers never claim one
// node. Nodes are tried in id order: the choice is deterministic on every
// replica. A node must have every trait info's "traits" asks for (a
// flavor's trait:<NAME>=required, as placement would match it).
func Claim(tx *memdb.Txn, resourceClass, server string, info map[string]any, now time.Time) (*Node, error) {
	want := InstanceTraits(&Node{InstanceInfo: info})
	for _, n := range store.All[Node](tx, NodeTable, "id") {
		if n.ResourceClass != resourceClass || n.ProvisionState != StateAvailable ||
			n.InstanceUUID != "" || n.Maintenance || n.Retired {
			continue
		}
		if slices.ContainsFunc(want, func(t string) bool { return !slices.Contains(n.Traits, t) }) {
			continue
		}
		c := n.Clone()
		c.InstanceUUID = server
		c.InstanceInfo = deepMap(info)
		c.ProvisionState, c.TargetProvisionState = StateDeploying, StateActive
		c.ProvisionUpdatedAt, c.UpdatedAt = now, now
		c.LastError = ""
		return c, nil
	}
	return nil, store.Fault(store.KindConflict, FaultNoNode,
		"no available bare-metal node of resource class %s", resourceClass)
}

// FaultNoNode names the conflict Claim returns when no node is free.
const FaultNoNode = "NoValidHost"

// PutClaimed stores a node Claim returned, in the caller's transaction.
func PutClaimed(tx *memdb.Txn, n *Node) error {
	cur := store.Get[Node](tx, NodeTable, n.ID)
	if cur == nil {
		return store.NotFoundf("Node %s could not be found.", n.ID)
	}
	row := *n
	row.Revision = cur.Revision + 1
	return tx.Insert(NodeTable, &row)
}

// Command handlers. They run in the FSM on every node: deterministic, no
// clock, no I/O. The proposer computes the new row from the revision it
// read; the handler only checks that nothing changed since.

const faultStale = "NodeStale"

// IsStale reports whether err is the conflict of a row that moved on
// since its proposer read it; the proposer reads again and retries.
func IsStale(err error) bool {
	var ae *store.ApplyError
	return errors.As(err, &ae) && ae.Kind == store.KindConflict && ae.Fault == faultStale
}

func stale(kind, id string, have, want int64) error {
	return store.Fault(store.KindConflict, faultStale, "%s %s changed concurrently: at revision %d, not %d", kind, id, have, want)
}

// CreateNodeCmd inserts a node. A name must be unique.
type CreateNodeCmd struct {
	Row Node `json:"row"`
}

func applyCreateNode(tx *memdb.Txn, c CreateNodeCmd) (any, error) {
	if store.Get[Node](tx, NodeTable, c.Row.ID) != nil {
		return nil, store.Conflictf("A node with UUID %s already exists.", c.Row.ID)
	}
	if err := nameFree(tx, c.Row.Name, c.Row.ID); err != nil {
		return nil, err
	}
	if err := chassisExists(tx, c.Row.ChassisID); err != nil {
		return nil, err
	}
	row := c.Row
	row.Revision = 1
	return row, tx.Insert(NodeTable, &row)
}

func nameFree(tx *memdb.Txn, name, id string) error {
	if name == "" {
		return nil
	}
	for _, other := range store.All[Node](tx, NodeTable, "name", name) {
		if other.ID != id {
			return store.Conflictf("A node with name %s already exists.", name)
		}
	}
	return nil
}

// PutNodeCmd replaces a node whose current revision is Revision.
type PutNodeCmd struct {
	Row      Node  `json:"row"`
	Revision int64 `json:"revision"`
}

func applyPutNode(tx *memdb.Txn, c PutNodeCmd) (any, error) {
	cur := store.Get[Node](tx, NodeTable, c.Row.ID)
	if cur == nil {
		return nil, store.NotFoundf("Node %s could not be found.", c.Row.ID)
	}
	if cur.Revision != c.Revision {
		return nil, stale("node", cur.ID, cur.Revision, c.Revision)
	}
	if err := nameFree(tx, c.Row.Name, c.Row.ID); err != nil {
		return nil, err
	}
	if c.Row.ChassisID != cur.ChassisID {
		if err := chassisExists(tx, c.Row.ChassisID); err != nil {
			return nil, err
		}
	}
	row := c.Row
	if err := keepAllocation(tx, cur, &row); err != nil {
		return nil, err
	}
	row.Revision = cur.Revision + 1
	return row, tx.Insert(NodeTable, &row)
}

// DeleteNodeCmd deletes a node whose current revision is Revision, with
// its ports.
type DeleteNodeCmd struct {
	ID       string `json:"id"`
	Revision int64  `json:"revision"`
}

func applyDeleteNode(tx *memdb.Txn, c DeleteNodeCmd) (any, error) {
	cur := store.Get[Node](tx, NodeTable, c.ID)
	if cur == nil {
		return nil, store.NotFoundf("Node %s could not be found.", c.ID)
	}
	if cur.Revision != c.Revision {
		return nil, stale("node", cur.ID, cur.Revision, c.Revision)
	}
	if cur.InstanceUUID != "" {
		return nil, store.Conflictf("Node %s is associated with instance %s.", cur.ID, cur.InstanceUUID)
	}
	if cur.Protected {
		return nil, store.Forbiddenf("Node %s is protected and cannot be undeployed, rebuilt or deleted.", cur.ID)
	}
	for _, p := range Ports(tx, cur.ID) {
		if err := tx.Delete(PortTable, p); err != nil {
			return nil, err
		}
	}
	for _, g := range Portgroups(tx, cur.ID) {
		if err := tx.Delete(PortgroupTable, g); err != nil {
			return nil, err
		}
	}
	if err := deleteNodeRecords(tx, cur.ID); err != nil {
		return nil, err
	}
	return cur, tx.Delete(NodeTable, cur)
}

// CreatePortCmd inserts a port; its MAC must be unused and its node must
// exist.
type CreatePortCmd struct {
	Row Port `json:"row"`
}

func applyCreatePort(tx *memdb.Txn, c CreatePortCmd) (any, error) {
	if store.Get[Port](tx, PortTable, c.Row.ID) != nil {
		return nil, store.Conflictf("A port with UUID %s already exists.", c.Row.ID)
	}
	if err := portFits(tx, &c.Row); err != nil {
		return nil, err
	}
	row := c.Row
	row.Revision = 1
	return row, tx.Insert(PortTable, &row)
}

func portFits(tx *memdb.Txn, p *Port) error {
	if store.Get[Node](tx, NodeTable, p.NodeID) == nil {
		return store.Fault(store.KindInvalid, "", "Node %s could not be found.", p.NodeID)
	}
	if err := portInGroup(tx, p); err != nil {
		return err
	}
	raw, _ := tx.First(PortTable, "address", p.Address)
	if raw != nil && raw.(*Port).ID != p.ID {
		return store.Conflictf("A port with MAC address %s already exists.", p.Address)
	}
	return nil
}

// PutPortCmd replaces a port whose current revision is Revision.
type PutPortCmd struct {
	Row      Port  `json:"row"`
	Revision int64 `json:"revision"`
}

func applyPutPort(tx *memdb.Txn, c PutPortCmd) (any, error) {
	cur := store.Get[Port](tx, PortTable, c.Row.ID)
	if cur == nil {
		return nil, store.NotFoundf("Port %s could not be found.", c.Row.ID)
	}
	if cur.Revision != c.Revision {
		return nil, stale("port", cur.ID, cur.Revision, c.Revision)
	}
	if err := portFits(tx, &c.Row); err != nil {
		return nil, err
	}
	row := c.Row
	row.Revision = cur.Revision + 1
	return row, tx.Insert(PortTable, &row)
}

// DeletePortCmd deletes a port.
type DeletePortCmd struct {
	ID string `json:"id"`
}

func applyDeletePort(tx *memdb.Txn, c DeletePortCmd) (any, error) {
	cur := store.Get[Port](tx, PortTable, c.ID)
	if cur == nil {
		return nil, store.NotFoundf("Port %s could not be found.", c.ID)
	}
	return cur, tx.Delete(PortTable, cur)
}

// DiscoverCmd enrols a machine a discovery boot found: a new node with a
// port per NIC, unless one of its MACs already belongs to a node, in
// which case that node's inventory is updated instead (a machine that
// PXE-boots twice is one node), or its inventory's BMC address is the
// ipmi_address or redfish_address of exactly one node (enrolled by hand,
// without ports), which is then the node inspected: it gets the
// inventory and the ports. The result is the node's row.
type DiscoverCmd struct {
	Node  Node   `json:"node"`
	Ports []Port `json:"ports"`
}

func applyDiscover(tx *memdb.Txn, c DiscoverCmd) (any, error) {
	for _, p := range c.Ports {
		raw, _ := tx.First(PortTable, "address", p.Address)
		if raw == nil {
			continue
		}
		cur := store.Get[Node](tx, NodeTable, raw.(*Port).NodeID)
		if cur == nil {
			continue
		}
		row := cur.Clone()
		row.Inventory = c.Node.Inventory
		row.InspectedAt = c.Node.InspectedAt
		row.UpdatedAt = c.Node.UpdatedAt
		row.Revision = cur.Revision + 1
		return *row, tx.Insert(NodeTable, row)
	}
	if cur := nodeByBMC(tx, c.Node.Inventory); cur != nil {
		return inspectedByBMC(tx, cur, c)
	}
	if store.Get[Node](tx, NodeTable, c.Node.ID) != nil {
		return nil, store.Conflictf("A node with UUID %s already exists.", c.Node.ID)
	}
	row := c.Node
	row.Revision = 1
	if err := tx.Insert(NodeTable, &row); err != nil {
		return nil, err
	}
	for _, p := range c.Ports {
		p := p
		p.NodeID = row.ID
		p.Revision = 1
		if err := tx.Insert(PortTable, &p); err != nil {
			return nil, err
		}
	}
	return row, nil
}

// PutConductorCmd records (or refreshes) a conductor.
type PutConductorCmd struct {
	Row Conductor `json:"row"`
}

func applyPutConductor(tx *memdb.Txn, c PutConductorCmd) (any, error) {
	row := c.Row
	return row, tx.Insert(ConductorTable, &row)
}

// DropConductorCmd removes a conductor (its node left the cluster or
// stopped provisioning).
type DropConductorCmd struct {
	ID string `json:"id"`
}

func applyDropConductor(tx *memdb.Txn, c DropConductorCmd) (any, error) {
	cur := store.Get[Conductor](tx, ConductorTable, c.ID)
	if cur == nil {
		return nil, nil
	}
	return cur, tx.Delete(ConductorTable, cur)
}

func chassisExists(tx *memdb.Txn, id string) error {
	if id != "" && store.Get[Chassis](tx, ChassisTable, id) == nil {
		return store.Fault(store.KindInvalid, "", "Chassis %s could not be found.", id)
	}
	return nil
}

// CreateChassisCmd inserts a chassis.
type CreateChassisCmd struct {
	Row Chassis `json:"row"`
}

func applyCreateChassis(tx *memdb.Txn, c CreateChassisCmd) (any, error) {
	if store.Get[Chassis](tx, ChassisTable, c.Row.ID) != nil {
		return nil, store.Conflictf("A chassis with UUID %s already exists.", c.Row.ID)
	}
	row := c.Row
	row.Revision = 1
	return row, tx.Insert(ChassisTable, &row)
}

// PutChassisCmd replaces a chassis whose current revision is Revision.
type PutChassisCmd struct {
	Row      Chassis `json:"row"`
	Revision int64   `json:"revision"`
}

func applyPutChassis(tx *memdb.Txn, c PutChassisCmd) (any, error) {
	cur := store.Get[Chassis](tx, ChassisTable, c.Row.ID)
	if cur == nil {
		return nil, store.NotFoundf("Chassis %s could not be found.", c.Row.ID)
	}
	if cur.Revision != c.Revision {
		return nil, stale("chassis", cur.ID, cur.Revision, c.Revision)
	}
	row := c.Row
	row.Revision = cur.Revision + 1
	return row, tx.Insert(ChassisTable, &row)
}

// DeleteChassisCmd deletes a chassis that holds no node.
type DeleteChassisCmd struct {
	ID string `json:"id"`
}

func applyDeleteChassis(tx *memdb.Txn, c DeleteChassisCmd) (any, error) {
	cur := store.Get[Chassis](tx, ChassisTable, c.ID)
	if cur == nil {
		return nil, store.NotFoundf("Chassis %s could not be found.", c.ID)
	}
	if nodes := store.All[Node](tx, NodeTable, "chassis", c.ID); len(nodes) > 0 {
		return nil, store.Fault(store.KindInvalid, "", "Chassis %s contains nodes.", c.ID)
	}
	return cur, tx.Delete(ChassisTable, cur)
}
