package bmstate

import (
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// DeployTemplate is Ironic's deploy template (1.55): deploy steps named
// by a trait (CUSTOM_...), meant to run when a node is deployed with
// that trait among its instance traits; DeploySteps plans them.
type DeployTemplate struct {
	ID        string           `json:"id"` // UUID
	Name      string           `json:"name"`
	Steps     []map[string]any `json:"steps"`
	Extra     map[string]any   `json:"extra,omitempty"`
	CreatedAt time.Time        `json:"created_at"`
	UpdatedAt time.Time        `json:"updated_at,omitzero"`
	Revision  int64            `json:"revision"`
}

// VolumeConnector is Ironic's volume connector (1.32): how a node
// reaches remote volumes (an iSCSI initiator IQN, a WWPN, ...).
type VolumeConnector struct {
	ID          string         `json:"id"` // UUID
	NodeID      string         `json:"node_uuid"`
	Type        string         `json:"type"`
	ConnectorID string         `json:"connector_id"`
	Extra       map[string]any `json:"extra,omitempty"`
	CreatedAt   time.Time      `json:"created_at"`
	UpdatedAt   time.Time      `json:"updated_at,omitzero"`
	Revision    int64          `json:"revision"`
}

// VolumeTarget is Ironic's volume target (1.32): a remote volume a node
// uses, boot_index 0 being the one it boots from.
type VolumeTarget struct {
	ID         string         `json:"id"` // UUID
	NodeID     string         `json:"node_uuid"`
	VolumeType string         `json:"volume_type"`
	VolumeID   string         `json:"volume_id"`
	BootIndex  int            `json:"boot_index"`
	Properties map[string]any `json:"properties,omitempty"`
	Extra      map[string]any `json:"extra,omitempty"`
	CreatedAt  time.Time      `json:"created_at"`
	UpdatedAt  time.Time      `json:"updated_at,omitzero"`
	Revision   int64          `json:"revision"`
}

// Tables and commands of the records above.
const (
	DeployTemplateTable  = "baremetal_deploy_templates"
	VolumeConnectorTable = "baremetal_volume_connectors"
	VolumeTargetTable    = "baremetal_volume_targets"

	CmdPutDeployTemplate     = "baremetal.deploy_template.put"
	CmdDeleteDeployTemplate  = "baremetal.deploy_template.delete"
	CmdPutVolumeConnector    = "baremetal.volume_connector.put"
	CmdDeleteVolumeConnector = "baremetal.volume_connector.delete"
	CmdPutVolumeTarget       = "baremetal.volume_target.put"
	CmdDeleteVolumeTarget    = "baremetal.volume_target.delete"
)

func deployTemplateTable() store.Table {
	return store.NewTable(DeployTemplateTable, &DeployTemplate{}, store.StringIndex("name", "Name", true))
}

func volumeConnectorTable() store.Table {
	return store.NewTable(VolumeConnectorTable, &VolumeConnector{}, store.StringIndex("node", "NodeID", false))
}

func volumeTargetTable() store.Table {
	return store.NewTable(VolumeTargetTable, &VolumeTarget{}, store.StringIndex("node", "NodeID", false))
}

// VolumeConnectors returns a node's volume connectors.
func VolumeConnectors(txn *memdb.Txn, node string) []*VolumeConnector {
	return store.All[VolumeConnector](txn, VolumeConnectorTable, "node", node)
}

// VolumeTargets returns a node's volume targets.
func VolumeTargets(txn *memdb.Txn, node string) []*VolumeTarget {
	return store.All[VolumeTarget](txn, VolumeTargetTable, "node", node)
}

// PutDeployTemplateCmd inserts a deploy template (Revision 0) or replaces
// one at Revision. Its name must be unused.
type PutDeployTemplateCmd struct {
	Row      DeployTemplate `json:"row"`
	Revision int64          `json:"revision"`
}

func applyPutDeployTemplate(tx *memdb.Txn, c PutDeployTemplateCmd) (any, error) {
	cur := store.Get[DeployTemplate](tx, DeployTemplateTable, c.Row.ID)
	if err := checkRevision("deploy template", c.Row.ID, cur != nil, revisionOf(cur), c.Revision); err != nil {
		return nil, err
	}
	raw, _ := tx.First(DeployTemplateTable, "name", c.Row.Name)
	if raw != nil && raw.(*DeployTemplate).ID != c.Row.ID {
		return nil, store.Conflictf("A deploy template with name %s already exists.", c.Row.Name)
	}
	row := c.Row
	row.Revision = c.Revision + 1
	return row, tx.Insert(DeployTemplateTable, &row)
}

func revisionOf[T interface{ rev() int64 }](row T) int64 {
	var zero T
	if any(row) == any(zero) {
		return 0
	}
	return row.rev()
}

func (t *DeployTemplate) rev() int64  { return t.Revision }
func (c *VolumeConnector) rev() int64 { return c.Revision }
func (t *VolumeTarget) rev() int64    { return t.Revision }

// checkRevision checks a put: a create (want 0) needs the row absent, an
// update the row at revision want.
func checkRevision(kind, id string, exists bool, have, want int64) error {
	switch {
	case want == 0 && exists:
		return store.Conflictf("A %s with UUID %s already exists.", kind, id)
	case want != 0 && !exists:
		return store.NotFoundf("The %s %s could not be found.", kind, id)
	case have != want:
		return stale(kind, id, have, want)
	}
	return nil
}

// DeleteRecordCmd deletes a deploy template, volume connector or volume
// target by id.
type DeleteRecordCmd struct {
	ID string `json:"id"`
}

func deleteRecord[T any](table, kind string) func(tx *memdb.Txn, c DeleteRecordCmd) (any, error) {
	return func(tx *memdb.Txn, c DeleteRecordCmd) (any, error) {
		cur := store.Get[T](tx, table, c.ID)
		if cur == nil {
			return nil, store.NotFoundf("The %s %s could not be found.", kind, c.ID)
		}
		return cur, tx.Delete(table, cur)
	}
}

// PutVolumeConnectorCmd inserts (Revision 0) or replaces a volume
// connector; its node must exist and its type and connector id be
// unused.
type PutVolumeConnectorCmd struct {
	Row      VolumeConnector `json:"row"`
	Revision int64           `json:"revision"`
}

func applyPutVolumeConnector(tx *memdb.Txn, c PutVolumeConnectorCmd) (any, error) {
	cur := store.Get[VolumeConnector](tx, VolumeConnectorTable, c.Row.ID)
	if err := checkRevision("volume connector", c.Row.ID, cur != nil, revisionOf(cur), c.Revision); err != nil {
		return nil, err
	}
	if store.Get[Node](tx, NodeTable, c.Row.NodeID) == nil {
		return nil, store.Fault(store.KindInvalid, "", "Node %s could not be found.", c.Row.NodeID)
	}
	for _, o := range store.All[VolumeConnector](tx, VolumeConnectorTable, "id") {
		if o.ID != c.Row.ID && o.Type == c.Row.Type && o.ConnectorID == c.Row.ConnectorID {
			return nil, store.Conflictf("A volume connector with connector ID %s of type %s already exists.", c.Row.ConnectorID, c.Row.Type)
		}
	}
	row := c.Row
	row.Revision = c.Revision + 1
	return row, tx.Insert(VolumeConnectorTable, &row)
}

// PutVolumeTargetCmd inserts (Revision 0) or replaces a volume target;
// its node must exist and have no other target at its boot index.
type PutVolumeTargetCmd struct {
	Row      VolumeTarget `json:"row"`
	Revision int64        `json:"revision"`
}

func applyPutVolumeTarget(tx *memdb.Txn, c PutVolumeTargetCmd) (any, error) {
	cur := store.Get[VolumeTarget](tx, VolumeTargetTable, c.Row.ID)
	if err := checkRevision("volume target", c.Row.ID, cur != nil, revisionOf(cur), c.Revision); err != nil {
		return nil, err
	}
	if store.Get[Node](tx, NodeTable, c.Row.NodeID) == nil {
		return nil, store.Fault(store.KindInvalid, "", "Node %s could not be found.", c.Row.NodeID)
	}
	for _, o := range VolumeTargets(tx, c.Row.NodeID) {
		if o.ID != c.Row.ID && o.BootIndex == c.Row.BootIndex {
			return nil, store.Conflictf("A volume target with boot index '%d' for the same node already exists.", c.Row.BootIndex)
		}
	}
	row := c.Row
	row.Revision = c.Revision + 1
	return row, tx.Insert(VolumeTargetTable, &row)
}

// deleteNodeRecords deletes what hangs off a node being deleted: its
// volume connectors and targets, and its allocation.
func deleteNodeRecords(tx *memdb.Txn, node string) error {
	for _, v := range VolumeConnectors(tx, node) {
		if err := tx.Delete(VolumeConnectorTable, v); err != nil {
			return err
		}
	}
	for _, v := range VolumeTargets(tx, node) {
		if err := tx.Delete(VolumeTargetTable, v); err != nil {
			return err
		}
	}
	if a := AllocationByNode(tx, node); a != nil {
		return tx.Delete(AllocationTable, a)
	}
	return nil
}
