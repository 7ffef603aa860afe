package netstate

import "github.com/rackstack/rackstack/fabric/store"

// PortForwarding is one of a floating IP's port forwardings (Neutron's
// floating-ip-port-forwarding): what arrives for the floating IP's
// address on Protocol/ExternalPort goes to InternalIP:InternalPort of
// InternalPortID, and its replies leave from the floating IP's address
// and ExternalPort. A floating IP with forwardings is associated with no
// port; RouterID on the floating IP is the router its forwardings use.
type PortForwarding struct {
	ID           string `json:"id"`
	FloatingIPID string `json:"floatingip_id"`
	// Project is the floating IP's: a forwarding is its floating IP's
	// owner's alone.
	Project        string `json:"project"`
	Protocol       string `json:"protocol"` // tcp or udp
	ExternalPort   int    `json:"external_port"`
	InternalPort   int    `json:"internal_port"`
	InternalIP     string `json:"internal_ip"`
	InternalPortID string `json:"internal_port_id"`
	Description    string `json:"description,omitempty"`
	// Ports is how many consecutive ports from ExternalPort go to as
	// many from InternalPort (floating-ip-port-forwarding-port-ranges);
	// 0 (as rows from before ranges have) is one. Count reads it.
	Ports int `json:"ports,omitempty"`
}

// Count is how many ports the forwarding forwards: 1 unless a range.
func (pf *PortForwarding) Count() int {
	if pf.Ports < 1 {
		return 1
	}
	return pf.Ports
}

// TablePortForwardings holds the port forwardings.
const TablePortForwardings = "network_port_forwardings"

// portForwardingTable is the table with its indexes: by floating IP and
// by internal port.
func portForwardingTable() store.Table {
	return store.NewTable(TablePortForwardings, &PortForwarding{},
		store.StringIndex("fip", "FloatingIPID", false), store.StringIndex("port", "InternalPortID", false))
}
