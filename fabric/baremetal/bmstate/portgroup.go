package bmstate

import (
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// Portgroup is Ironic's port group: a node's ports bonded into one link
// (a LAG). Rackstack records it for Ironic's API; the provisioning
// network boots machines by their ports' MACs, so nothing acts on it.
type Portgroup struct {
	ID                       string         `json:"id"` // UUID
	Name                     string         `json:"name,omitempty"`
	Address                  string         `json:"address,omitempty"` // MAC, optional
	NodeID                   string         `json:"node_uuid"`
	StandalonePortsSupported bool           `json:"standalone_ports_supported"`
	Mode                     string         `json:"mode,omitempty"`
	Properties               map[string]any `json:"properties,omitempty"`
	Extra                    map[string]any `json:"extra,omitempty"`
	CreatedAt                time.Time      `json:"created_at"`
	UpdatedAt                time.Time      `json:"updated_at,omitzero"`
	Revision                 int64          `json:"revision"`
}

// PortgroupTable holds port groups; the commands change them.
const (
	PortgroupTable = "baremetal_portgroups"

	CmdCreatePortgroup = "baremetal.portgroup.create"
	CmdPutPortgroup    = "baremetal.portgroup.put"
	CmdDeletePortgroup = "baremetal.portgroup.delete"
)

func portgroupTable() store.Table {
	return store.NewTable(PortgroupTable, &Portgroup{},
		optional("name", "Name"),
		optional("address", "Address"),
		store.StringIndex("node", "NodeID", false))
}

// Portgroups returns a node's port groups.
func Portgroups(txn *memdb.Txn, node string) []*Portgroup {
	return store.All[Portgroup](txn, PortgroupTable, "node", node)
}

// CreatePortgroupCmd inserts a port group on an existing node; its name
// and MAC, when given, must be unused.
type CreatePortgroupCmd struct {
	Row Portgroup `json:"row"`
}

func applyCreatePortgroup(tx *memdb.Txn, c CreatePortgroupCmd) (any, error) {
	if store.Get[Portgroup](tx, PortgroupTable, c.Row.ID) != nil {
		return nil, store.Conflictf("A port group with UUID %s already exists.", c.Row.ID)
	}
	if err := portgroupFits(tx, &c.Row); err != nil {
		return nil, err
	}
	row := c.Row
	row.Revision = 1
	return row, tx.Insert(PortgroupTable, &row)
}

func portgroupFits(tx *memdb.Txn, g *Portgroup) error {
	if store.Get[Node](tx, NodeTable, g.NodeID) == nil {
		return store.Fault(store.KindInvalid, "", "Node %s could not be found.", g.NodeID)
	}
	if g.Address != "" {
		raw, _ := tx.First(PortgroupTable, "address", g.Address)
		if raw != nil && raw.(*Portgroup).ID != g.ID {
			return store.Conflictf("A port group with MAC address %s already exists.", g.Address)
		}
	}
	if g.Name != "" {
		raw, _ := tx.First(PortgroupTable, "name", g.Name)
		if raw != nil && raw.(*Portgroup).ID != g.ID {
			return store.Conflictf("A port group with name %s already exists.", g.Name)
		}
	}
	return nil
}

// PutPortgroupCmd replaces a port group whose current revision is
// Revision. Its ports must stay on its node.
type PutPortgroupCmd struct {
	Row      Portgroup `json:"row"`
	Revision int64     `json:"revision"`
}

func applyPutPortgroup(tx *memdb.Txn, c PutPortgroupCmd) (any, error) {
	cur := store.Get[Portgroup](tx, PortgroupTable, c.Row.ID)
	if cur == nil {
		return nil, store.NotFoundf("Port group %s could not be found.", c.Row.ID)
	}
	if cur.Revision != c.Revision {
		return nil, stale("port group", cur.ID, cur.Revision, c.Revision)
	}
	if err := portgroupFits(tx, &c.Row); err != nil {
		return nil, err
	}
	if c.Row.NodeID != cur.NodeID && len(portgroupPorts(tx, cur.ID)) > 0 {
		return nil, store.Conflictf("Port group %s has ports: it cannot move to another node.", cur.ID)
	}
	row := c.Row
	row.Revision = cur.Revision + 1
	return row, tx.Insert(PortgroupTable, &row)
}

// DeletePortgroupCmd deletes a port group that holds no port.
type DeletePortgroupCmd struct {
	ID string `json:"id"`
}

func applyDeletePortgroup(tx *memdb.Txn, c DeletePortgroupCmd) (any, error) {
	cur := store.Get[Portgroup](tx, PortgroupTable, c.ID)
	if cur == nil {
		return nil, store.NotFoundf("Port group %s could not be found.", c.ID)
	}
	if len(portgroupPorts(tx, c.ID)) > 0 {
		return nil, store.Conflictf("Cannot complete the requested action because portgroup %s contains ports.", c.ID)
	}
	return cur, tx.Delete(PortgroupTable, cur)
}

// PortgroupPorts returns the ports in a port group.
func PortgroupPorts(txn *memdb.Txn, group string) []*Port { return portgroupPorts(txn, group) }

func portgroupPorts(txn *memdb.Txn, group string) []*Port {
	var out []*Port
	for _, p := range store.All[Port](txn, PortTable, "id") {
		if p.PortgroupID == group {
			out = append(out, p)
		}
	}
	return out
}

// portInGroup checks a port's group: it must exist and be on the port's
// node.
func portInGroup(tx *memdb.Txn, p *Port) error {
	if p.PortgroupID == "" {
		return nil
	}
	g := store.Get[Portgroup](tx, PortgroupTable, p.PortgroupID)
	if g == nil {
		return store.Fault(store.KindInvalid, "", "Port group %s could not be found.", p.PortgroupID)
	}
	if g.NodeID != p.NodeID {
		return store.Fault(store.KindInvalid, "", "Port group %s and port %s are not on the same node.", g.ID, p.ID)
	}
	// A bond's links are on one physical network, as Ironic requires.
	for _, q := range portgroupPorts(tx, g.ID) {
		if q.ID != p.ID && q.PhysicalNetwork != p.PhysicalNetwork {
			return store.Conflictf("Port group %s has ports on physical network %q: port %s cannot join it on %q.",
				g.ID, q.PhysicalNetwork, p.ID, p.PhysicalNetwork)
		}
	}
	return nil
}
