package bmstate

import (
	"net"
	"net/url"
	"strings"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/provision/agentapi"
)

// bmcHost is the host of a driver_info BMC address: an IP or name,
// bracketed IPv6, host:port, or a Redfish URL.
func bmcHost(addr string) string {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return ""
	}
	if strings.Contains(addr, "://") {
		if u, err := url.Parse(addr); err == nil {
			return strings.ToLower(u.Hostname())
		}
	}
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return strings.ToLower(h)
	}
	return strings.ToLower(strings.Trim(addr, "[]"))
}

// nodeByBMC returns the one node whose ipmi_address or redfish_address is
// the inventory's BMC address, or nil (none, or several: an ambiguous
// address enrols a new node rather than guess).
func nodeByBMC(tx *memdb.Txn, inv *agentapi.Inventory) *Node {
	if inv == nil {
		return nil
	}
	want := bmcHost(inv.BMCAddress)
	if want == "" || want == "0.0.0.0" || want == "::" {
		return nil
	}
	var found *Node
	for _, n := range store.All[Node](tx, NodeTable, "id") {
		if bmcHost(n.DriverInfo["ipmi_address"]) != want && bmcHost(n.DriverInfo["redfish_address"]) != want {
			continue
		}
		if found != nil {
			return nil
		}
		found = n
	}
	return found
}

// inspectedByBMC records a discovery boot on the node its BMC address
// found: the inventory, the properties it lacks, and a port for each NIC
// whose MAC no node holds.
func inspectedByBMC(tx *memdb.Txn, cur *Node, c DiscoverCmd) (any, error) {
	row := cur.Clone()
	row.Inventory = c.Node.Inventory
	row.InspectedAt = c.Node.InspectedAt
	row.UpdatedAt = c.Node.UpdatedAt
	if len(c.Node.Properties) > 0 && row.Properties == nil {
		row.Properties = map[string]any{}
	}
	for k, v := range c.Node.Properties {
		if _, ok := row.Properties[k]; !ok {
			row.Properties[k] = v
		}
	}
	if row.Conductor == "" {
		row.Conductor = c.Node.Conductor
	}
	for _, ev := range c.Node.History {
		row.Record(ev)
	}
	row.Revision = cur.Revision + 1
	if err := tx.Insert(NodeTable, row); err != nil {
		return nil, err
	}
	for _, p := range c.Ports {
		if raw, _ := tx.First(PortTable, "address", p.Address); raw != nil {
			continue
		}
		p.NodeID = row.ID
		p.Revision = 1
		if err := tx.Insert(PortTable, &p); err != nil {
			return nil, err
		}
	}
	return *row, nil
}
