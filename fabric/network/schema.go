package network

import (
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// Rows of the networking tables. A row is never changed after insert: a
// handler copies it, changes the copy and inserts that. The dataplane reads
// these types (through Load), so their Go field names are a contract.

// Network is a tenant network: one VLAN on the physical network.
type Network struct {
	ID             string    `json:"id"`
	Project        string    `json:"project"`
	Name           string    `json:"name"`
	Description    string    `json:"description"`
	SegmentationID int       `json:"segmentation_id"` // the VLAN id
	Shared         bool      `json:"shared"`
	PortSecurity   bool      `json:"port_security"`
	AdminStateUp   bool      `json:"admin_state_up"`
	MTU            int       `json:"mtu"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	Revision       int       `json:"revision"`
}

// HostRoute is a static route a subnet hands to its ports by DHCP.
type HostRoute struct {
	Destination string `json:"destination"` // CIDR
	Nexthop     string `json:"nexthop"`
}

// Pool is an inclusive range of addresses ports are given from.
type Pool struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// Subnet is an IP range on a network.
type Subnet struct {
	ID              string      `json:"id"`
	NetworkID       string      `json:"network_id"`
	Project         string      `json:"project"`
	Name            string      `json:"name"`
	Description     string      `json:"description"`
	CIDR            string      `json:"cidr"`       // normalized, host bits zero
	GatewayIP       string      `json:"gateway_ip"` // "" when the subnet has no gateway
	IPVersion       int         `json:"ip_version"`
	EnableDHCP      bool        `json:"enable_dhcp"`
	DNSNameservers  []string    `json:"dns_nameservers"`
	HostRoutes      []HostRoute `json:"host_routes"`
	AllocationPools []Pool      `json:"allocation_pools"`
	IPv6RAMode      string      `json:"ipv6_ra_mode,omitempty"`
	IPv6AddressMode string      `json:"ipv6_address_mode,omitempty"`
	CreatedAt       time.Time   `json:"created_at"`
	UpdatedAt       time.Time   `json:"updated_at"`
	Revision        int         `json:"revision"`
}

// FixedIP is an address a port holds on one subnet.
type FixedIP struct {
	SubnetID string `json:"subnet_id"`
	IP       string `json:"ip_address"`
}

// AddressPair is an extra (IP or CIDR, MAC) a port may send from.
type AddressPair struct {
	IP  string `json:"ip_address"` // an address or a CIDR
	MAC string `json:"mac_address"`
}

// Port is a virtual NIC on a network.
type Port struct {
	ID                  string        `json:"id"`
	NetworkID           string        `json:"network_id"`
	Project             string        `json:"project"`
	Name                string        `json:"name"`
	Description         string        `json:"description"`
	MAC                 string        `json:"mac_address"`
	DeviceID            string        `json:"device_id"`
	DeviceOwner         string        `json:"device_owner"`
	HostID              string        `json:"host_id"`
	Status              string        `json:"status"` // DOWN until a node reports it
	FixedIPs            []FixedIP     `json:"fixed_ips"`
	PortSecurity        bool          `json:"port_security"`
	SecurityGroups      []string      `json:"security_groups"`
	AllowedAddressPairs []AddressPair `json:"allowed_address_pairs"`
	AdminStateUp        bool          `json:"admin_state_up"`
	VNICType            string        `json:"vnic_type"`
	CreatedAt           time.Time     `json:"created_at"`
	UpdatedAt           time.Time     `json:"updated_at"`
	Revision            int           `json:"revision"`
}

// SecurityGroup is a named set of rules ports reference.
type SecurityGroup struct {
	ID          string `json:"id"`
	Project     string `json:"project"`
	Name        string `json:"name"`
	Description string `json:"description"`
	// Default marks the project's "default" group, made on first use.
	Default   bool      `json:"default"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Revision  int       `json:"revision"`
}

// SecurityGroupRule lets traffic in or out of the ports of its group.
type SecurityGroupRule struct {
	ID        string `json:"id"`
	GroupID   string `json:"group_id"`
	Project   string `json:"project"`
	Direction string `json:"direction"` // ingress, egress
	EtherType string `json:"ethertype"` // IPv4, IPv6
	// Protocol is "" for any, else the IP protocol number in decimal
	// ("6", "17", "1"). ProtocolName is what the client gave ("tcp" or
	// "6"), shown back to API clients as Neutron does.
	Protocol       string    `json:"protocol"`
	ProtocolName   string    `json:"protocol_name,omitempty"`
	PortMin        *int      `json:"port_min,omitempty"`
	PortMax        *int      `json:"port_max,omitempty"`
	RemoteIPPrefix string    `json:"remote_ip_prefix,omitempty"` // normalized CIDR
	RemoteGroupID  string    `json:"remote_group_id,omitempty"`
	Description    string    `json:"description"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	Revision       int       `json:"revision"`
}

// IPAllocation records that a port holds an address on a network; its id
// makes an address unique per network.
type IPAllocation struct {
	ID        string `json:"id"` // network/ip
	NetworkID string `json:"network_id"`
	SubnetID  string `json:"subnet_id"`
	PortID    string `json:"port_id"`
	IP        string `json:"ip"`
}

func allocationID(network, ip string) string { return network + "/" + ip }

// Quota holds a project's limits that differ from the defaults.
type Quota struct {
	ID     string         `json:"id"` // project id
	Limits map[string]int `json:"limits"`
}

// Table names.
const (
	tNetworks    = "network_networks"
	tSubnets     = "network_subnets"
	tPorts       = "network_ports"
	tGroups      = "network_security_groups"
	tRules       = "network_security_group_rules"
	tAllocations = "network_ip_allocations"
	tQuotas      = "network_quotas"
)

// Command types.
const (
	cmdNetworkCreate = "network.network.create"
	cmdNetworkUpdate = "network.network.update"
	cmdNetworkDelete = "network.network.delete"
	cmdSubnetCreate  = "network.subnet.create"
	cmdSubnetUpdate  = "network.subnet.update"
	cmdSubnetDelete  = "network.subnet.delete"
	cmdPortCreate    = "network.port.create"
	cmdPortUpdate    = "network.port.update"
	cmdPortDelete    = "network.port.delete"
	cmdPortStatus    = "network.port.status"
	cmdGroupCreate   = "network.secgroup.create"
	cmdGroupUpdate   = "network.secgroup.update"
	cmdGroupDelete   = "network.secgroup.delete"
	cmdGroupDefault  = "network.secgroup.default"
	cmdRuleCreate    = "network.secgroup_rule.create"
	cmdRuleDelete    = "network.secgroup_rule.delete"
	cmdQuotaSet      = "network.quota.set"
	cmdQuotaDelete   = "network.quota.delete"
)

func optStringIndex(name, field string) *memdb.IndexSchema {
	return &memdb.IndexSchema{Name: name, AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: field}}
}

// Schema is the networking service's part of the replicated state.
func Schema() store.Schema {
	return store.Schema{
		Tables: []store.Table{
			store.NewTable(tNetworks, &Network{}, store.StringIndex("project", "Project", false),
				&memdb.IndexSchema{Name: "vlan", Unique: true, Indexer: &memdb.IntFieldIndex{Field: "SegmentationID"}}),
			store.NewTable(tSubnets, &Subnet{}, store.StringIndex("network", "NetworkID", false), store.StringIndex("project", "Project", false)),
			store.NewTable(tPorts, &Port{}, store.StringIndex("network", "NetworkID", false), store.StringIndex("project", "Project", false),
				&memdb.IndexSchema{Name: "mac", Unique: true, Indexer: &memdb.CompoundIndex{Indexes: []memdb.Indexer{
					&memdb.StringFieldIndex{Field: "NetworkID"}, &memdb.StringFieldIndex{Field: "MAC", Lowercase: true},
				}}},
				&memdb.IndexSchema{Name: "group", AllowMissing: true, Indexer: &memdb.StringSliceFieldIndex{Field: "SecurityGroups"}}),
			store.NewTable(tGroups, &SecurityGroup{}, store.StringIndex("project", "Project", false)),
			store.NewTable(tRules, &SecurityGroupRule{}, store.StringIndex("group", "GroupID", false), store.StringIndex("project", "Project", false),
				optStringIndex("remote_group", "RemoteGroupID")),
			store.NewTable(tAllocations, &IPAllocation{}, store.StringIndex("port", "PortID", false), store.StringIndex("subnet", "SubnetID", false)),
			store.NewTable(tQuotas, &Quota{}),
		},
		Handlers: map[string]store.Handler{
			cmdNetworkCreate: applyNetworkCreate,
			cmdNetworkUpdate: applyNetworkUpdate,
			cmdNetworkDelete: applyNetworkDelete,
			cmdSubnetCreate:  applySubnetCreate,
			cmdSubnetUpdate:  applySubnetUpdate,
			cmdSubnetDelete:  applySubnetDelete,
			cmdPortCreate:    applyPortCreate,
			cmdPortUpdate:    applyPortUpdate,
			cmdPortDelete:    applyPortDelete,
			cmdPortStatus:    applyPortStatus,
			cmdGroupCreate:   applyGroupCreate,
			cmdGroupUpdate:   applyGroupUpdate,
			cmdGroupDelete:   applyGroupDelete,
			cmdGroupDefault:  applyGroupDefault,
			cmdRuleCreate:    applyRuleCreate,
			cmdRuleDelete:    applyRuleDelete,
			cmdQuotaSet:      applyQuotaSet,
			cmdQuotaDelete:   applyQuotaDelete,
		},
	}
}

// View is every networking row, read in one transaction: what the
// dataplane compiles into its maps.
type View struct {
	Networks []Network
	Subnets  []Subnet
	Ports    []Port
	Groups   []SecurityGroup
	Rules    []SecurityGroupRule
}

// TableNames lists the tables Load reads, so a watcher can watch them.
func TableNames() []string {
	return []string{tNetworks, tSubnets, tPorts, tGroups, tRules}
}

// Load reads every networking row from txn, each table in id order.
func Load(txn *memdb.Txn) (*View, error) {
	v := &View{}
	if err := loadInto(txn, tNetworks, &v.Networks); err != nil {
		return nil, err
	}
	if err := loadInto(txn, tSubnets, &v.Subnets); err != nil {
		return nil, err
	}
	if err := loadInto(txn, tPorts, &v.Ports); err != nil {
		return nil, err
	}
	if err := loadInto(txn, tGroups, &v.Groups); err != nil {
		return nil, err
	}
	if err := loadInto(txn, tRules, &v.Rules); err != nil {
		return nil, err
	}
	return v, nil
}

func loadInto[T any](txn *memdb.Txn, table string, out *[]T) error {
	it, err := txn.Get(table, "id")
	if err != nil {
		return err
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		*out = append(*out, *raw.(*T))
	}
	return nil
}
