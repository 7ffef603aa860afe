// Package netstate is the networking service's replicated state as the
// node agents read it: the rows of networks, subnets, ports and security
// groups, the table names and schema, and Load, which reads them all in
// one transaction. It holds no HTTP handler and no command: the network
// service (fabric/network) writes these tables, agents only read them.
package netstate

import (
	"slices"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// Rows of the networking tables. A row is never changed after insert: a
// writer copies it, changes the copy and inserts that. The dataplane reads
// these types (through Load), so their Go field names are a contract.

// Network is a tenant network: one VLAN on the physical network.
type Network struct {
	ID             string `json:"id"`
	Project        string `json:"project"`
	Name           string `json:"name"`
	Description    string `json:"description"`
	SegmentationID int    `json:"segmentation_id"` // the VLAN id
	Shared         bool   `json:"shared"`
	PortSecurity   bool   `json:"port_security"`
	AdminStateUp   bool   `json:"admin_state_up"`
	MTU            int    `json:"mtu"`
	// External marks a network routers take their gateway on and
	// floating IPs come from (router:external).
	External bool `json:"external,omitempty"`
	// ExternalScoped says an external network is external only to the
	// projects of its access_as_external RBAC policies (and its own),
	// with no policy for every project ("*"); false with External is
	// external to all, as every external network was before RBAC.
	ExternalScoped bool `json:"external_scoped,omitempty"`
	// Flat names the physical network a flat (untagged) network is; ""
	// is a VLAN (SegmentationID) on the one tenant physical network.
	Flat string `json:"flat,omitempty"`
	// DHCPOn and DHCPOff are the nodes whose DHCP agent an admin added
	// the network to or removed it from (dhcp_agent_scheduler): by
	// default every node's DHCP agent serves a network with a
	// DHCP-enabled subnet, to the ports it hosts. See DHCPHostedOn.
	DHCPOn    []string  `json:"dhcp_on,omitempty"`
	DHCPOff   []string  `json:"dhcp_off,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Revision  int       `json:"revision"`
	// Tags are the resource's standard-attribute tags, sorted.
	Tags []string `json:"tags,omitempty"`
	// QoSPolicyID is the network's QoS policy (qos_policy_id): its
	// compute ports' unless they name their own. "": none.
	QoSPolicyID string `json:"qos_policy_id,omitempty"`
	// IsDefault marks the one external network auto-allocated topologies
	// take their router gateway on (is_default, auto-allocated-topology).
	IsDefault bool `json:"is_default,omitempty"`
	// AZHints are the availability zones asked for
	// (availability_zone_hints), each a zone that existed when asked.
	AZHints []string `json:"az_hints,omitempty"`
}

// DHCPHostedOn says whether node's DHCP agent serves the network:
// unless an admin removed it there, where the network has a DHCP-enabled
// subnet or an admin added it.
func (n Network) DHCPHostedOn(node string, dhcpSubnet bool) bool {
	if slices.Contains(n.DHCPOff, node) {
		return false
	}
	return dhcpSubnet || slices.Contains(n.DHCPOn, node)
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
	// SubnetPoolID is the pool the range was allocated from ("": none).
	SubnetPoolID string `json:"subnetpool_id,omitempty"`
	// ServiceTypes are the device owners ("compute:nova",
	// "network:floatingip") whose ports get their addresses here
	// (subnet-service-types); empty: any port's.
	ServiceTypes []string  `json:"service_types,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	Revision     int       `json:"revision"`
	// Tags are the resource's standard-attribute tags, sorted.
	Tags []string `json:"tags,omitempty"`
}

// SubnetPool is a set of prefixes subnets are allocated from (Neutron's
// subnetpools): no two subnets of one pool overlap, whatever their
// networks.
type SubnetPool struct {
	ID          string   `json:"id"`
	Project     string   `json:"project"`
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Prefixes    []string `json:"prefixes"` // normalized CIDRs, sorted, none inside another
	IPVersion   int      `json:"ip_version"`
	// MinPrefixlen, MaxPrefixlen bound the subnets' prefix lengths;
	// DefaultPrefixlen is what a subnet gets that asks for none.
	MinPrefixlen     int `json:"min_prefixlen"`
	MaxPrefixlen     int `json:"max_prefixlen"`
	DefaultPrefixlen int `json:"default_prefixlen"`
	// AddressScopeID is the address scope the pool's prefixes belong to
	// ("": none).
	AddressScopeID string `json:"address_scope_id,omitempty"`
	Shared         bool   `json:"shared,omitempty"`
	IsDefault      bool   `json:"is_default,omitempty"`
	// DefaultQuota caps, per project, the address space its subnets take
	// from the pool: in /32s (IPv4) or /64s (IPv6); nil or 0, no cap.
	DefaultQuota *int      `json:"default_quota,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	Revision     int       `json:"revision"`
	// Tags are the resource's standard-attribute tags, sorted.
	Tags []string `json:"tags,omitempty"`
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

// DHCPOption is an extra DHCP option of a port: a dnsmasq option name (or
// number) and its value, for DHCPv4 (IPVersion 4) or DHCPv6 (6).
type DHCPOption struct {
	Name      string `json:"opt_name"`
	Value     string `json:"opt_value"`
	IPVersion int    `json:"ip_version"`
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
	// BindingProfile is binding:profile, kept as given for the back-end
	// that reads it (e.g. a bare-metal port's local_link_information);
	// nothing here interprets it.
	BindingProfile map[string]any `json:"binding_profile,omitempty"`
	// ExtraDHCPOpts are the options the port's DHCP answers carry besides
	// the ones its subnet gives (extra_dhcp_opt).
	ExtraDHCPOpts []DHCPOption `json:"extra_dhcp_opts,omitempty"`
	CreatedAt     time.Time    `json:"created_at"`
	UpdatedAt     time.Time    `json:"updated_at"`
	Revision      int          `json:"revision"`
	// Tags are the resource's standard-attribute tags, sorted.
	Tags []string `json:"tags,omitempty"`
	// QoSPolicyID is the port's own QoS policy (qos_policy_id), which
	// wins over its network's (see EffectiveQoS). "": none.
	QoSPolicyID string `json:"qos_policy_id,omitempty"`
}

// SecurityGroup is a named set of rules ports reference.
type SecurityGroup struct {
	ID          string `json:"id"`
	Project     string `json:"project"`
	Name        string `json:"name"`
	Description string `json:"description"`
	// Default marks the project's "default" group, made on first use.
	Default bool `json:"default"`
	// Stateless says its rules are evaluated on every packet without
	// connection tracking (stateful: false): replies get through only by
	// rules of their own. Rows written before it existed are stateful.
	Stateless bool      `json:"stateless,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Revision  int       `json:"revision"`
	// Tags are the resource's standard-attribute tags, sorted.
	Tags []string `json:"tags,omitempty"`
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
	Protocol       string `json:"protocol"`
	ProtocolName   string `json:"protocol_name,omitempty"`
	PortMin        *int   `json:"port_min,omitempty"`
	PortMax        *int   `json:"port_max,omitempty"`
	RemoteIPPrefix string `json:"remote_ip_prefix,omitempty"` // normalized CIDR
	// RemoteIPPrefixGiven is the range as the client gave it, when it
	// had host bits (10.2.3.124/24): shown back to API clients, as
	// Neutron keeps it; RemoteIPPrefix is what is enforced.
	RemoteIPPrefixGiven string `json:"remote_ip_prefix_given,omitempty"`
	RemoteGroupID       string `json:"remote_group_id,omitempty"`
	// RemoteAddressGroupID is the address group whose CIDRs are the
	// rule's remote (remote_address_group_id).
	RemoteAddressGroupID string    `json:"remote_address_group_id,omitempty"`
	Description          string    `json:"description"`
	CreatedAt            time.Time `json:"created_at"`
	UpdatedAt            time.Time `json:"updated_at"`
	Revision             int       `json:"revision"`
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

// Router connects subnets (through its interface ports, device_owner
// network:router_interface, device_id the router) and, through its
// gateway port, an external network.
type Router struct {
	ID           string         `json:"id"`
	Project      string         `json:"project"`
	Name         string         `json:"name"`
	Description  string         `json:"description"`
	AdminStateUp bool           `json:"admin_state_up"`
	Gateway      *RouterGateway `json:"gateway,omitempty"`
	Routes       []HostRoute    `json:"routes"`
	CreatedAt    time.Time      `json:"created_at"`
	UpdatedAt    time.Time      `json:"updated_at"`
	Revision     int            `json:"revision"`
	// Tags are the resource's standard-attribute tags, sorted.
	Tags []string `json:"tags,omitempty"`
	// AZHints are the availability zones asked for
	// (availability_zone_hints).
	AZHints []string `json:"az_hints,omitempty"`
}

// RouterGateway is a router's leg on an external network: its port there
// (device_owner network:router_gateway) holds the address SNAT uses.
type RouterGateway struct {
	NetworkID string `json:"network_id"`
	PortID    string `json:"port_id"`
	SNAT      bool   `json:"snat"`
}

// FloatingIP is an address of an external network, held by its own port
// there (device_owner network:floatingip), forwarded to a fixed address of
// a port (FixedPortID) behind a router.
type FloatingIP struct {
	ID          string `json:"id"`
	Project     string `json:"project"`
	Description string `json:"description"`
	NetworkID   string `json:"network_id"` // the external network
	PortID      string `json:"port_id"`    // the port holding IP
	IP          string `json:"ip"`
	// FixedPortID, FixedIP and RouterID are empty when not associated.
	FixedPortID string `json:"fixed_port_id,omitempty"`
	FixedIP     string `json:"fixed_ip,omitempty"`
	RouterID    string `json:"router_id,omitempty"`
	// Status is DOWN until a node reports the address forwarded.
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Revision  int       `json:"revision"`
	// Tags are the resource's standard-attribute tags, sorted.
	Tags []string `json:"tags,omitempty"`
}

// Quota holds a project's limits that differ from the defaults.
type Quota struct {
	ID     string         `json:"id"` // project id
	Limits map[string]int `json:"limits"`
}

// Table names.
const (
	TableNetworks    = "network_networks"
	TableSubnets     = "network_subnets"
	TablePorts       = "network_ports"
	TableGroups      = "network_security_groups"
	TableRules       = "network_security_group_rules"
	TableAllocations = "network_ip_allocations"
	TableQuotas      = "network_quotas"
	TableRouters     = "network_routers"
	TableFloatingIPs = "network_floating_ips"
	TableSubnetPools = "network_subnetpools"
)

func optStringIndex(name, field string) *memdb.IndexSchema {
	return &memdb.IndexSchema{Name: name, AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: field}}
}

// Tables are the networking tables with their indexes. A port's MAC is
// unique per network ("mac"), a VLAN id per cloud ("vlan").
func Tables() []store.Table {
	return append([]store.Table{
		store.NewTable(TableNetworks, &Network{}, store.StringIndex("project", "Project", false),
			&memdb.IndexSchema{Name: "vlan", Unique: true, Indexer: &memdb.IntFieldIndex{Field: "SegmentationID"}}),
		store.NewTable(TableSubnets, &Subnet{}, store.StringIndex("network", "NetworkID", false), store.StringIndex("project", "Project", false),
			optStringIndex("subnetpool", "SubnetPoolID")),
		// Ports of routers' gateways and of floating IPs belong to no
		// project, as in Neutron.
		store.NewTable(TablePorts, &Port{}, store.StringIndex("network", "NetworkID", false), optStringIndex("project", "Project"),
			&memdb.IndexSchema{Name: "mac", Unique: true, Indexer: &memdb.CompoundIndex{Indexes: []memdb.Indexer{
				&memdb.StringFieldIndex{Field: "NetworkID"}, &memdb.StringFieldIndex{Field: "MAC", Lowercase: true},
			}}},
			&memdb.IndexSchema{Name: "group", AllowMissing: true, Indexer: &memdb.StringSliceFieldIndex{Field: "SecurityGroups"}},
			optStringIndex("device", "DeviceID")),
		store.NewTable(TableGroups, &SecurityGroup{}, store.StringIndex("project", "Project", false)),
		store.NewTable(TableRules, &SecurityGroupRule{}, store.StringIndex("group", "GroupID", false), store.StringIndex("project", "Project", false),
			optStringIndex("remote_group", "RemoteGroupID"), optStringIndex("remote_address_group", "RemoteAddressGroupID")),
		store.NewTable(TableAllocations, &IPAllocation{}, store.StringIndex("port", "PortID", false), store.StringIndex("subnet", "SubnetID", false)),
		store.NewTable(TableQuotas, &Quota{}),
		store.NewTable(TableRouters, &Router{}, store.StringIndex("project", "Project", false)),
		store.NewTable(TableFloatingIPs, &FloatingIP{}, store.StringIndex("project", "Project", false),
			optStringIndex("fixed_port", "FixedPortID"), optStringIndex("router", "RouterID")),
		store.NewTable(TableSubnetPools, &SubnetPool{}, store.StringIndex("project", "Project", false),
			optStringIndex("address_scope", "AddressScopeID")),
		store.NewTable(TableAddressScopes, &AddressScope{}, store.StringIndex("project", "Project", false)),
		store.NewTable(TableMeteringLabels, &MeteringLabel{}, store.StringIndex("project", "Project", false)),
		store.NewTable(TableMeteringRules, &MeteringRule{}, store.StringIndex("label", "LabelID", false)),
		store.NewTable(TableAddressGroups, &AddressGroup{}, store.StringIndex("project", "Project", false)),
	}, append(append(qosTables(), trunkTables()...), portForwardingTable())...)
}

// Schema is the networking tables without their command handlers: enough
// for an agent's tests to hold networking state. The network service's
// own Schema adds the handlers that write them.
func Schema() store.Schema {
	return store.Schema{Tables: Tables()}
}

// View is every networking row, read in one transaction: what the
// dataplane compiles into its maps.
type View struct {
	Networks []Network
	Subnets  []Subnet
	Ports    []Port
	Groups   []SecurityGroup
	Rules    []SecurityGroupRule
	Routers  []Router
	Floating []FloatingIP
	// Pools and Scopes say which address scope each subnet is in.
	Pools  []SubnetPool
	Scopes []AddressScope
	// Labels and Meters are the metering labels and their rules.
	Labels []MeteringLabel
	Meters []MeteringRule
	// AddressGroups are the CIDR sets rules name as their remote.
	AddressGroups []AddressGroup
	// QoSPolicies and QoSRules are what ports' qos_policy_id name.
	QoSPolicies []QoSPolicy
	QoSRules    []QoSRule
	// Trunks are the trunks: their parents' devices carry their subports.
	Trunks []Trunk
	// PortForwardings are the floating IPs' port forwardings.
	PortForwardings []PortForwarding
}

// TableNames lists the tables Load reads, so a watcher can watch them.
func TableNames() []string {
	return []string{TableNetworks, TableSubnets, TablePorts, TableGroups, TableRules, TableRouters, TableFloatingIPs,
		TableSubnetPools, TableAddressScopes, TableMeteringLabels, TableMeteringRules, TableAddressGroups,
		TableQoSPolicies, TableQoSRules, TableTrunks, TablePortForwardings}
}

// Load reads every networking row from txn, each table in id order.
func Load(txn *memdb.Txn) (*View, error) {
	v := &View{}
	if err := loadInto(txn, TableNetworks, &v.Networks); err != nil {
		return nil, err
	}
	if err := loadInto(txn, TableSubnets, &v.Subnets); err != nil {
		return nil, err
	}
	if err := loadInto(txn, TablePorts, &v.Ports); err != nil {
		return nil, err
	}
	if err := loadInto(txn, TableGroups, &v.Groups); err != nil {
		return nil, err
	}
	if err := loadInto(txn, TableRules, &v.Rules); err != nil {
		return nil, err
	}
	if err := loadInto(txn, TableRouters, &v.Routers); err != nil {
		return nil, err
	}
	if err := loadInto(txn, TableFloatingIPs, &v.Floating); err != nil {
		return nil, err
	}
	for _, err := range []error{loadInto(txn, TableSubnetPools, &v.Pools), loadInto(txn, TableAddressScopes, &v.Scopes),
		loadInto(txn, TableMeteringLabels, &v.Labels), loadInto(txn, TableMeteringRules, &v.Meters),
		loadInto(txn, TableAddressGroups, &v.AddressGroups),
		loadInto(txn, TableQoSPolicies, &v.QoSPolicies), loadInto(txn, TableQoSRules, &v.QoSRules),
		loadInto(txn, TableTrunks, &v.Trunks), loadInto(txn, TablePortForwardings, &v.PortForwardings)} {
		if err != nil {
			return nil, err
		}
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
