package network

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// Command handlers. They run in the FSM on every node: deterministic, no
// clock, no I/O, no randomness. Ids and times come in the command; VLAN
// ids, MACs and addresses are chosen here from the state alone, so that
// two concurrent requests can never get the same one.

// defaultGroupCmd makes a project's default security group when it has
// none yet; the proposer picks the ids.
type defaultGroupCmd struct {
	Project string    `json:"project"`
	GroupID string    `json:"group_id"`
	RuleIDs [4]string `json:"rule_ids"`
	Now     time.Time `json:"now"`
}

func defaultGroupOf(tx *memdb.Txn, project string) *SecurityGroup {
	for _, g := range store.All[SecurityGroup](tx, tGroups, "project", project) {
		if g.Default {
			return g
		}
	}
	return nil
}

func ensureDefaults(tx *memdb.Txn, ds []defaultGroupCmd) error {
	for _, d := range ds {
		if d.Project == "" || defaultGroupOf(tx, d.Project) != nil {
			continue
		}
		g := SecurityGroup{ID: d.GroupID, Project: d.Project, Name: "default", Description: "Default security group",
			Default: true, CreatedAt: d.Now, UpdatedAt: d.Now}
		if err := tx.Insert(tGroups, &g); err != nil {
			return err
		}
		i := 0
		for _, dir := range []string{"egress", "ingress"} {
			for _, et := range []string{"IPv4", "IPv6"} {
				r := SecurityGroupRule{ID: d.RuleIDs[i], GroupID: g.ID, Project: g.Project, Direction: dir, EtherType: et,
					CreatedAt: d.Now, UpdatedAt: d.Now}
				if dir == "ingress" {
					r.RemoteGroupID = g.ID
				}
				if err := tx.Insert(tRules, &r); err != nil {
					return err
				}
				i++
			}
		}
	}
	return nil
}

func applyGroupDefault(tx *memdb.Txn, _ uint64, body json.RawMessage) (any, error) {
	var c defaultGroupCmd
	if err := store.DecodeBody(body, &c); err != nil {
		return nil, err
	}
	return nil, ensureDefaults(tx, []defaultGroupCmd{c})
}

// Quotas.

// Default quotas, as Neutron ships them.
var defaultQuotas = map[string]int{"network": 100, "subnet": 100, "port": 500, "security_group": 10, "security_group_rule": 100}

// quotaTables maps each quota resource to the table it counts.
var quotaTables = map[string]string{"network": tNetworks, "subnet": tSubnets, "port": tPorts, "security_group": tGroups, "security_group_rule": tRules}

func quotaLimit(tx *memdb.Txn, project, resource string) int {
	if q := store.Get[Quota](tx, tQuotas, project); q != nil {
		if v, ok := q.Limits[resource]; ok {
			return v
		}
	}
	return defaultQuotas[resource]
}

func usage(tx *memdb.Txn, project, resource string) int {
	it, err := tx.Get(quotaTables[resource], "project", project)
	if err != nil {
		return 0
	}
	n := 0
	for raw := it.Next(); raw != nil; raw = it.Next() {
		n++
	}
	return n
}

// checkQuota runs after the insert: the count includes the new row.
func checkQuota(tx *memdb.Txn, project, resource string) error {
	limit := quotaLimit(tx, project, resource)
	if limit >= 0 && usage(tx, project, resource) > limit {
		return apiError(http.StatusConflict, "OverQuota", "Quota exceeded for resources: ['%s'].", resource)
	}
	return nil
}

type quotaSetCmd struct {
	Project string         `json:"project"`
	Limits  map[string]int `json:"limits"`
}

func applyQuotaSet(tx *memdb.Txn, _ uint64, body json.RawMessage) (any, error) {
	var c quotaSetCmd
	if err := store.DecodeBody(body, &c); err != nil {
		return nil, err
	}
	q := Quota{ID: c.Project, Limits: map[string]int{}}
	if old := store.Get[Quota](tx, tQuotas, c.Project); old != nil {
		for k, v := range old.Limits {
			q.Limits[k] = v
		}
	}
	for k, v := range c.Limits {
		if _, ok := defaultQuotas[k]; !ok {
			return nil, badInput("quota", "unknown resource %s", k)
		}
		q.Limits[k] = v
	}
	return nil, tx.Insert(tQuotas, &q)
}

type idCmd struct {
	ID    string    `json:"id"`
	Admin bool      `json:"admin,omitempty"`
	Now   time.Time `json:"now"`
}

func applyQuotaDelete(tx *memdb.Txn, _ uint64, body json.RawMessage) (any, error) {
	var c idCmd
	if err := store.DecodeBody(body, &c); err != nil {
		return nil, err
	}
	if q := store.Get[Quota](tx, tQuotas, c.ID); q != nil {
		return nil, tx.Delete(tQuotas, q)
	}
	return nil, nil
}

// Networks.

type networkCreateCmd struct {
	// Networks with SegmentationID 0 get the lowest free VLAN of
	// [VLANMin, VLANMax].
	Networks []Network         `json:"networks"`
	VLANMin  int               `json:"vlan_min"`
	VLANMax  int               `json:"vlan_max"`
	Defaults []defaultGroupCmd `json:"defaults,omitempty"`
}

func applyNetworkCreate(tx *memdb.Txn, _ uint64, body json.RawMessage) (any, error) {
	var c networkCreateCmd
	if err := store.DecodeBody(body, &c); err != nil {
		return nil, err
	}
	if err := ensureDefaults(tx, c.Defaults); err != nil {
		return nil, err
	}
	out := make([]Network, 0, len(c.Networks))
	for _, n := range c.Networks {
		if n.SegmentationID == 0 {
			vlan, ok := lowestFreeVLAN(tx, c.VLANMin, c.VLANMax)
			if !ok {
				return nil, apiError(http.StatusConflict, "NoNetworkAvailable", "Unable to create the network. No tenant network is available for allocation.")
			}
			n.SegmentationID = vlan
		} else if raw, _ := tx.First(tNetworks, "vlan", n.SegmentationID); raw != nil {
			return nil, apiError(http.StatusConflict, "VlanIdInUse", "Unable to create the network. The VLAN %d on physical network %s is in use.", n.SegmentationID, physicalNetwork)
		}
		if store.Get[Network](tx, tNetworks, n.ID) != nil {
			return nil, store.Conflictf("network %s exists", n.ID)
		}
		if err := tx.Insert(tNetworks, &n); err != nil {
			return nil, err
		}
		if err := checkQuota(tx, n.Project, "network"); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

func lowestFreeVLAN(tx *memdb.Txn, lo, hi int) (int, bool) {
	used := map[int]bool{}
	for _, n := range store.All[Network](tx, tNetworks, "id") {
		used[n.SegmentationID] = true
	}
	for v := lo; v <= hi; v++ {
		if !used[v] {
			return v, true
		}
	}
	return 0, false
}

type networkUpdateCmd struct {
	ID           string    `json:"id"`
	Name         *string   `json:"name,omitempty"`
	Description  *string   `json:"description,omitempty"`
	AdminStateUp *bool     `json:"admin_state_up,omitempty"`
	Shared       *bool     `json:"shared,omitempty"`
	PortSecurity *bool     `json:"port_security,omitempty"`
	Now          time.Time `json:"now"`
}

func applyNetworkUpdate(tx *memdb.Txn, _ uint64, body json.RawMessage) (any, error) {
	var c networkUpdateCmd
	if err := store.DecodeBody(body, &c); err != nil {
		return nil, err
	}
	old := store.Get[Network](tx, tNetworks, c.ID)
	if old == nil {
		return nil, notFound("network", c.ID)
	}
	n := *old
	set(&n.Name, c.Name)
	set(&n.Description, c.Description)
	set(&n.AdminStateUp, c.AdminStateUp)
	set(&n.PortSecurity, c.PortSecurity)
	if c.Shared != nil && !*c.Shared && old.Shared {
		for _, p := range store.All[Port](tx, tPorts, "network", n.ID) {
			if p.Project != n.Project && !strings.HasPrefix(p.DeviceOwner, "network:") {
				return nil, apiError(http.StatusConflict, "InvalidSharedSetting", "Unable to reconfigure sharing settings for network %s. Multiple tenants are using it.", n.ID)
			}
		}
		for _, s := range store.All[Subnet](tx, tSubnets, "network", n.ID) {
			if s.Project != n.Project {
				return nil, apiError(http.StatusConflict, "InvalidSharedSetting", "Unable to reconfigure sharing settings for network %s. Multiple tenants are using it.", n.ID)
			}
		}
	}
	set(&n.Shared, c.Shared)
	touch(&n.UpdatedAt, &n.Revision, c.Now)
	return n, tx.Insert(tNetworks, &n)
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func touch(updated *time.Time, rev *int, now time.Time) {
	*updated = now
	*rev++
}

// dhcpOwner is the device_owner of ports the network itself owns: they
// go with the network and never keep it or its subnets in use.
const dhcpOwner = "network:dhcp"

func applyNetworkDelete(tx *memdb.Txn, _ uint64, body json.RawMessage) (any, error) {
	var c idCmd
	if err := store.DecodeBody(body, &c); err != nil {
		return nil, err
	}
	n := store.Get[Network](tx, tNetworks, c.ID)
	if n == nil {
		return nil, notFound("network", c.ID)
	}
	ports := store.All[Port](tx, tPorts, "network", n.ID)
	for _, p := range ports {
		if p.DeviceOwner != dhcpOwner {
			return nil, apiError(http.StatusConflict, "NetworkInUse", "Unable to complete operation on network %s. There are one or more ports still in use on the network.", n.ID)
		}
	}
	for _, p := range ports {
		if err := deletePort(tx, p); err != nil {
			return nil, err
		}
	}
	for _, s := range store.All[Subnet](tx, tSubnets, "network", n.ID) {
		if err := tx.Delete(tSubnets, s); err != nil {
			return nil, err
		}
	}
	return nil, tx.Delete(tNetworks, n)
}

// Subnets.

type subnetCreateCmd struct {
	Subnets []Subnet `json:"subnets"`
}

func applySubnetCreate(tx *memdb.Txn, _ uint64, body json.RawMessage) (any, error) {
	var c subnetCreateCmd
	if err := store.DecodeBody(body, &c); err != nil {
		return nil, err
	}
	out := make([]Subnet, 0, len(c.Subnets))
	for _, s := range c.Subnets {
		if store.Get[Network](tx, tNetworks, s.NetworkID) == nil {
			return nil, notFound("network", s.NetworkID)
		}
		p, err := parsePrefix(s.CIDR)
		if err != nil {
			return nil, badInput("cidr", "%v", err)
		}
		for _, o := range store.All[Subnet](tx, tSubnets, "network", s.NetworkID) {
			if op, err := netip.ParsePrefix(o.CIDR); err == nil && op.Overlaps(p) {
				return nil, invalidInput("Requested subnet with cidr: %s for network: %s overlaps with another subnet", s.CIDR, s.NetworkID)
			}
		}
		if store.Get[Subnet](tx, tSubnets, s.ID) != nil {
			return nil, store.Conflictf("subnet %s exists", s.ID)
		}
		if err := tx.Insert(tSubnets, &s); err != nil {
			return nil, err
		}
		if err := checkQuota(tx, s.Project, "subnet"); err != nil {
			return nil, err
		}
		if autoAddress(&s) {
			if err := addAutoAddresses(tx, &s, p); err != nil {
				return nil, err
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// addAutoAddresses gives every port of the network its SLAAC address on a
// new subnet, as Neutron does (router ports excepted).
func addAutoAddresses(tx *memdb.Txn, s *Subnet, pfx netip.Prefix) error {
	for _, p := range store.All[Port](tx, tPorts, "network", s.NetworkID) {
		if strings.HasPrefix(p.DeviceOwner, "network:router") {
			continue
		}
		ip, ok := eui64(pfx, p.MAC)
		if !ok {
			continue
		}
		id := allocationID(s.NetworkID, ip.String())
		if store.Get[IPAllocation](tx, tAllocations, id) != nil {
			return apiError(http.StatusConflict, "IpAddressAlreadyAllocated", "IP address %s already allocated in subnet %s", ip, s.ID)
		}
		if err := tx.Insert(tAllocations, &IPAllocation{ID: id, NetworkID: s.NetworkID, SubnetID: s.ID, PortID: p.ID, IP: ip.String()}); err != nil {
			return err
		}
		np := *p
		np.FixedIPs = append(append([]FixedIP{}, p.FixedIPs...), FixedIP{SubnetID: s.ID, IP: ip.String()})
		touch(&np.UpdatedAt, &np.Revision, s.CreatedAt)
		if err := tx.Insert(tPorts, &np); err != nil {
			return err
		}
	}
	return nil
}

type subnetUpdateCmd struct {
	ID              string       `json:"id"`
	Name            *string      `json:"name,omitempty"`
	Description     *string      `json:"description,omitempty"`
	GatewayIP       *string      `json:"gateway_ip,omitempty"` // "" removes the gateway
	AllocationPools *[]Pool      `json:"allocation_pools,omitempty"`
	DNSNameservers  *[]string    `json:"dns_nameservers,omitempty"`
	HostRoutes      *[]HostRoute `json:"host_routes,omitempty"`
	EnableDHCP      *bool        `json:"enable_dhcp,omitempty"`
	Now             time.Time    `json:"now"`
}

func applySubnetUpdate(tx *memdb.Txn, _ uint64, body json.RawMessage) (any, error) {
	var c subnetUpdateCmd
	if err := store.DecodeBody(body, &c); err != nil {
		return nil, err
	}
	old := store.Get[Subnet](tx, tSubnets, c.ID)
	if old == nil {
		return nil, notFound("subnet", c.ID)
	}
	s := *old
	set(&s.Name, c.Name)
	set(&s.Description, c.Description)
	set(&s.DNSNameservers, c.DNSNameservers)
	set(&s.HostRoutes, c.HostRoutes)
	set(&s.EnableDHCP, c.EnableDHCP)
	set(&s.AllocationPools, c.AllocationPools)
	p, err := parsePrefix(s.CIDR)
	if err != nil {
		return nil, err
	}
	if c.GatewayIP != nil && *c.GatewayIP != old.GatewayIP {
		s.GatewayIP = *c.GatewayIP
		if s.GatewayIP != "" {
			gw, _ := parseIP(s.GatewayIP)
			if a := store.Get[IPAllocation](tx, tAllocations, allocationID(s.NetworkID, gw.String())); a != nil {
				return nil, apiError(http.StatusConflict, "GatewayIpInUse", "Current gateway ip %s already in use by port %s. Unable to update.", s.GatewayIP, a.PortID)
			}
		}
	}
	if c.GatewayIP != nil || c.AllocationPools != nil {
		pools, err := validatePools(p, s.AllocationPools, s.GatewayIP)
		if err != nil {
			return nil, err
		}
		s.AllocationPools = pools
	}
	touch(&s.UpdatedAt, &s.Revision, c.Now)
	return s, tx.Insert(tSubnets, &s)
}

func applySubnetDelete(tx *memdb.Txn, _ uint64, body json.RawMessage) (any, error) {
	var c idCmd
	if err := store.DecodeBody(body, &c); err != nil {
		return nil, err
	}
	s := store.Get[Subnet](tx, tSubnets, c.ID)
	if s == nil {
		return nil, notFound("subnet", c.ID)
	}
	allocs := store.All[IPAllocation](tx, tAllocations, "subnet", s.ID)
	for _, a := range allocs {
		if p := store.Get[Port](tx, tPorts, a.PortID); p != nil && p.DeviceOwner != dhcpOwner && !autoAddress(s) {
			return nil, apiError(http.StatusConflict, "SubnetInUse", "Unable to complete operation on subnet %s: One or more ports have an IP allocation from this subnet.", s.ID)
		}
	}
	// The network's own ports, and every port of a SLAAC subnet, just
	// lose their address on the subnet.
	for _, a := range allocs {
		p := store.Get[Port](tx, tPorts, a.PortID)
		if p != nil {
			np := *p
			np.FixedIPs = nil
			for _, f := range p.FixedIPs {
				if f.SubnetID != s.ID {
					np.FixedIPs = append(np.FixedIPs, f)
				}
			}
			if np.FixedIPs == nil {
				np.FixedIPs = []FixedIP{}
			}
			touch(&np.UpdatedAt, &np.Revision, c.Now)
			if err := tx.Insert(tPorts, &np); err != nil {
				return nil, err
			}
		}
		if err := tx.Delete(tAllocations, a); err != nil {
			return nil, err
		}
	}
	return nil, tx.Delete(tSubnets, s)
}

// Ports.

// ipRequest is one entry of a port's fixed_ips as the client gave it: a
// subnet, an address, or both.
type ipRequest struct {
	SubnetID string `json:"subnet_id,omitempty"`
	IP       string `json:"ip_address,omitempty"`
}

type portSpec struct {
	// Port is the row to insert; an empty MAC is derived here, FixedIPs
	// come from IPs.
	Port Port `json:"port"`
	// IPs nil means "one address of each IP version, automatically".
	IPs *[]ipRequest `json:"ips,omitempty"`
	// PortSecurity nil inherits the network's.
	PortSecurity *bool `json:"port_security,omitempty"`
	// GroupsGiven is false when the client named no security groups: the
	// port gets its project's default group.
	GroupsGiven bool `json:"groups_given"`
	MACGiven    bool `json:"mac_given"`
}

type portCreateCmd struct {
	Ports    []portSpec        `json:"ports"`
	Defaults []defaultGroupCmd `json:"defaults,omitempty"`
}

func applyPortCreate(tx *memdb.Txn, _ uint64, body json.RawMessage) (any, error) {
	var c portCreateCmd
	if err := store.DecodeBody(body, &c); err != nil {
		return nil, err
	}
	if err := ensureDefaults(tx, c.Defaults); err != nil {
		return nil, err
	}
	out := make([]Port, 0, len(c.Ports))
	for _, sp := range c.Ports {
		p, err := createPort(tx, sp)
		if err != nil {
			return nil, err
		}
		out = append(out, *p)
	}
	return out, nil
}

func createPort(tx *memdb.Txn, sp portSpec) (*Port, error) {
	p := sp.Port
	n := store.Get[Network](tx, tNetworks, p.NetworkID)
	if n == nil {
		return nil, notFound("network", p.NetworkID)
	}
	if store.Get[Port](tx, tPorts, p.ID) != nil {
		return nil, store.Conflictf("port %s exists", p.ID)
	}
	if sp.MACGiven {
		if macInUse(tx, n.ID, p.MAC) {
			return nil, apiError(http.StatusConflict, "MacAddressInUse", "Unable to complete operation for network %s. The mac address %s is in use.", n.ID, p.MAC)
		}
	} else {
		p.MAC = ""
		for i := 0; i < 1000 && p.MAC == ""; i++ {
			if m := derivedMAC(p.ID, i); !macInUse(tx, n.ID, m) {
				p.MAC = m
			}
		}
		if p.MAC == "" {
			return nil, apiError(http.StatusConflict, "MacAddressGenerationFailure", "Unable to generate unique mac on network %s.", n.ID)
		}
	}
	p.PortSecurity = n.PortSecurity
	set(&p.PortSecurity, sp.PortSecurity)
	trusted := strings.HasPrefix(p.DeviceOwner, "network:")
	switch {
	case !p.PortSecurity && len(p.SecurityGroups) > 0:
		return nil, apiError(http.StatusBadRequest, "PortSecurityAndIPRequiredForSecurityGroups", "Port security must be enabled and port must have an IP address in order to use security groups.")
	case !p.PortSecurity && len(p.AllowedAddressPairs) > 0:
		return nil, apiError(http.StatusConflict, "AddressPairAndPortSecurityRequired", "Port Security must be enabled in order to have allowed address pairs on a port.")
	case p.PortSecurity && !sp.GroupsGiven && !trusted:
		if g := defaultGroupOf(tx, p.Project); g != nil {
			p.SecurityGroups = []string{g.ID}
		}
	}
	if p.SecurityGroups == nil {
		p.SecurityGroups = []string{}
	}
	if err := checkGroups(tx, p.Project, p.SecurityGroups); err != nil {
		return nil, err
	}
	for i := range p.AllowedAddressPairs {
		if p.AllowedAddressPairs[i].MAC == "" {
			p.AllowedAddressPairs[i].MAC = p.MAC
		}
	}
	if p.AllowedAddressPairs == nil {
		p.AllowedAddressPairs = []AddressPair{}
	}
	ips, err := assignIPs(tx, n, &p, sp.IPs, nil)
	if err != nil {
		return nil, err
	}
	p.FixedIPs = ips
	if err := tx.Insert(tPorts, &p); err != nil {
		return nil, err
	}
	if err := checkQuota(tx, p.Project, "port"); err != nil {
		return nil, err
	}
	return &p, nil
}

func macInUse(tx *memdb.Txn, network, mac string) bool {
	raw, _ := tx.First(tPorts, "mac", network, mac)
	return raw != nil
}

// checkGroups checks that every group exists and belongs to project.
func checkGroups(tx *memdb.Txn, project string, groups []string) error {
	for _, id := range groups {
		g := store.Get[SecurityGroup](tx, tGroups, id)
		if g == nil || g.Project != project {
			return notFound("security_group", id)
		}
	}
	return nil
}

// assignIPs resolves a port's requested addresses on network n, keeping
// the addresses of old (the port's current ones, on update) that are
// asked for again, and records the allocations. reqs nil asks for one
// address of each IP version (and every SLAAC address).
func assignIPs(tx *memdb.Txn, n *Network, p *Port, reqs *[]ipRequest, old []FixedIP) ([]FixedIP, error) {
	subnets := store.All[Subnet](tx, tSubnets, "network", n.ID)
	sort.SliceStable(subnets, func(i, j int) bool {
		if !subnets[i].CreatedAt.Equal(subnets[j].CreatedAt) {
			return subnets[i].CreatedAt.Before(subnets[j].CreatedAt)
		}
		return subnets[i].ID < subnets[j].ID
	})
	byID := map[string]*Subnet{}
	for _, s := range subnets {
		byID[s.ID] = s
	}
	// Release what the port holds now; what is asked for again is taken
	// back below, so its address stays the same.
	for _, f := range old {
		if a := store.Get[IPAllocation](tx, tAllocations, allocationID(n.ID, f.IP)); a != nil && a.PortID == p.ID {
			if err := tx.Delete(tAllocations, a); err != nil {
				return nil, err
			}
		}
	}
	var out []FixedIP
	take := func(s *Subnet, ip netip.Addr) error {
		id := allocationID(n.ID, ip.String())
		if store.Get[IPAllocation](tx, tAllocations, id) != nil {
			return apiError(http.StatusConflict, "IpAddressAlreadyAllocated", "IP address %s already allocated in subnet %s", ip, s.ID)
		}
		out = append(out, FixedIP{SubnetID: s.ID, IP: ip.String()})
		return tx.Insert(tAllocations, &IPAllocation{ID: id, NetworkID: n.ID, SubnetID: s.ID, PortID: p.ID, IP: ip.String()})
	}
	if reqs == nil {
		var v4, v6 bool
		for _, s := range subnets {
			if autoAddress(s) {
				pfx, _ := netip.ParsePrefix(s.CIDR)
				if ip, ok := eui64(pfx, p.MAC); ok {
					if err := take(s, ip); err != nil {
						return nil, err
					}
				}
				continue
			}
			if s.IPVersion == 4 && v4 || s.IPVersion == 6 && v6 {
				continue
			}
			if ip, ok := lowestFree(tx, n.ID, s); ok {
				if err := take(s, ip); err != nil {
					return nil, err
				}
				if s.IPVersion == 4 {
					v4 = true
				} else {
					v6 = true
				}
			}
		}
		for _, s := range subnets {
			if !autoAddress(s) && (s.IPVersion == 4 && !v4 || s.IPVersion == 6 && !v6) {
				return nil, apiError(http.StatusConflict, "IpAddressGenerationFailure", "No more IP addresses available on network %s.", n.ID)
			}
		}
	} else {
		for _, rq := range *reqs {
			var s *Subnet
			var ip netip.Addr
			if rq.IP != "" {
				a, err := parseIP(rq.IP)
				if err != nil {
					return nil, badInput("fixed_ips", "%v", err)
				}
				ip = a
			}
			switch {
			case rq.SubnetID != "":
				s = byID[rq.SubnetID]
				if s == nil {
					return nil, invalidInput("Failed to create port on network %s, because fixed_ips included invalid subnet %s", n.ID, rq.SubnetID)
				}
				if ip.IsValid() {
					if pfx, _ := netip.ParsePrefix(s.CIDR); !pfx.Contains(ip) {
						return nil, apiError(http.StatusBadRequest, "InvalidIpForSubnet", "IP address %s is not a valid IP for the specified subnet.", rq.IP)
					}
				}
			default:
				for _, c := range subnets {
					if pfx, _ := netip.ParsePrefix(c.CIDR); pfx.Contains(ip) {
						s = c
						break
					}
				}
				if s == nil {
					return nil, apiError(http.StatusBadRequest, "InvalidIpForNetwork", "IP address %s is not a valid IP for any of the subnets on the specified network.", rq.IP)
				}
			}
			pfx, _ := netip.ParsePrefix(s.CIDR)
			switch {
			case autoAddress(s) && ip.IsValid() && !strings.HasPrefix(p.DeviceOwner, "network:"):
				return nil, invalidInput("IPv6 address %s cannot be directly assigned to a port on subnet %s since the subnet is configured for automatic addresses", rq.IP, s.ID)
			case autoAddress(s):
				a, ok := eui64(pfx, p.MAC)
				if !ok {
					return nil, invalidInput("no SLAAC address for MAC %s", p.MAC)
				}
				ip = a
			case ip.IsValid():
				if reserved(pfx, ip) {
					return nil, apiError(http.StatusBadRequest, "InvalidIpForSubnet", "IP address %s is not a valid IP for the specified subnet.", rq.IP)
				}
				if ip.String() == s.GatewayIP && !strings.HasPrefix(p.DeviceOwner, "network:router") {
					return nil, apiError(http.StatusConflict, "IpAddressAlreadyAllocated", "IP address %s already allocated in subnet %s", ip, s.ID)
				}
			default:
				a, ok := lowestFree(tx, n.ID, s)
				if !ok {
					return nil, apiError(http.StatusConflict, "IpAddressGenerationFailure", "No more IP addresses available for subnet %s.", s.ID)
				}
				ip = a
			}
			if err := take(s, ip); err != nil {
				return nil, err
			}
		}
	}
	if out == nil {
		out = []FixedIP{}
	}
	return out, nil
}

// autoAddress reports an IPv6 subnet whose ports get SLAAC addresses.
func autoAddress(s *Subnet) bool {
	return s.IPVersion == 6 && (s.IPv6AddressMode == "slaac" || s.IPv6AddressMode == "dhcpv6-stateless")
}

// lowestFree is the lowest address of the subnet's pools that no port of
// the network holds.
func lowestFree(tx *memdb.Txn, network string, s *Subnet) (netip.Addr, bool) {
	pools := append([]Pool(nil), s.AllocationPools...)
	sort.Slice(pools, func(i, j int) bool {
		a, _ := parseIP(pools[i].Start)
		b, _ := parseIP(pools[j].Start)
		return a.Less(b)
	})
	for _, pl := range pools {
		start, end, err := poolRange(pl)
		if err != nil {
			continue
		}
		for a := start; a.IsValid() && !end.Less(a); a = a.Next() {
			if a.String() == s.GatewayIP {
				continue
			}
			if raw, _ := tx.First(tAllocations, "id", allocationID(network, a.String())); raw == nil {
				return a, true
			}
		}
	}
	return netip.Addr{}, false
}

type portUpdateCmd struct {
	ID           string         `json:"id"`
	Name         *string        `json:"name,omitempty"`
	Description  *string        `json:"description,omitempty"`
	DeviceID     *string        `json:"device_id,omitempty"`
	DeviceOwner  *string        `json:"device_owner,omitempty"`
	HostID       *string        `json:"host_id,omitempty"`
	AdminStateUp *bool          `json:"admin_state_up,omitempty"`
	PortSecurity *bool          `json:"port_security,omitempty"`
	IPs          *[]ipRequest   `json:"ips,omitempty"`
	Groups       *[]string      `json:"groups,omitempty"`
	Pairs        *[]AddressPair `json:"pairs,omitempty"`
	Now          time.Time      `json:"now"`
}

func applyPortUpdate(tx *memdb.Txn, _ uint64, body json.RawMessage) (any, error) {
	var c portUpdateCmd
	if err := store.DecodeBody(body, &c); err != nil {
		return nil, err
	}
	old := store.Get[Port](tx, tPorts, c.ID)
	if old == nil {
		return nil, notFound("port", c.ID)
	}
	p := *old
	set(&p.Name, c.Name)
	set(&p.Description, c.Description)
	set(&p.DeviceID, c.DeviceID)
	set(&p.DeviceOwner, c.DeviceOwner)
	set(&p.HostID, c.HostID)
	set(&p.AdminStateUp, c.AdminStateUp)
	set(&p.PortSecurity, c.PortSecurity)
	if c.Groups != nil {
		if len(*c.Groups) > 0 && !p.PortSecurity {
			return nil, apiError(http.StatusBadRequest, "PortSecurityAndIPRequiredForSecurityGroups", "Port security must be enabled and port must have an IP address in order to use security groups.")
		}
		if err := checkGroups(tx, p.Project, *c.Groups); err != nil {
			return nil, err
		}
		p.SecurityGroups = append([]string{}, *c.Groups...)
	}
	if c.Pairs != nil {
		p.AllowedAddressPairs = append([]AddressPair{}, *c.Pairs...)
		for i := range p.AllowedAddressPairs {
			if p.AllowedAddressPairs[i].MAC == "" {
				p.AllowedAddressPairs[i].MAC = p.MAC
			}
		}
	}
	if !p.PortSecurity {
		if len(p.SecurityGroups) > 0 {
			return nil, apiError(http.StatusConflict, "PortSecurityPortHasSecurityGroup", "Port has security group associated. Cannot disable port security or IP address until security group is removed.")
		}
		if len(p.AllowedAddressPairs) > 0 {
			return nil, apiError(http.StatusConflict, "AddressPairAndPortSecurityRequired", "Port Security must be enabled in order to have allowed address pairs on a port.")
		}
	}
	if c.IPs != nil {
		n := store.Get[Network](tx, tNetworks, p.NetworkID)
		if n == nil {
			return nil, notFound("network", p.NetworkID)
		}
		reqs := keepRequested(*c.IPs, old.FixedIPs)
		ips, err := assignIPs(tx, n, &p, &reqs, old.FixedIPs)
		if err != nil {
			return nil, err
		}
		p.FixedIPs = ips
	}
	touch(&p.UpdatedAt, &p.Revision, c.Now)
	return p, tx.Insert(tPorts, &p)
}

// keepRequested turns a request for "an address on subnet S" into the
// address the port already holds on S, as Neutron keeps it on update.
func keepRequested(reqs []ipRequest, cur []FixedIP) []ipRequest {
	named := map[string]bool{}
	for _, r := range reqs {
		if r.IP != "" {
			named[r.IP] = true
		}
	}
	used := map[string]bool{}
	out := make([]ipRequest, 0, len(reqs))
	for _, r := range reqs {
		if r.IP == "" && r.SubnetID != "" {
			for _, f := range cur {
				if f.SubnetID == r.SubnetID && !named[f.IP] && !used[f.IP] {
					r.IP = f.IP
					break
				}
			}
			used[r.IP] = true
		}
		out = append(out, r)
	}
	return out
}

func deletePort(tx *memdb.Txn, p *Port) error {
	for _, a := range store.All[IPAllocation](tx, tAllocations, "port", p.ID) {
		if err := tx.Delete(tAllocations, a); err != nil {
			return err
		}
	}
	return tx.Delete(tPorts, p)
}

func applyPortDelete(tx *memdb.Txn, _ uint64, body json.RawMessage) (any, error) {
	var c idCmd
	if err := store.DecodeBody(body, &c); err != nil {
		return nil, err
	}
	p := store.Get[Port](tx, tPorts, c.ID)
	if p == nil {
		return nil, notFound("port", c.ID)
	}
	return nil, deletePort(tx, p)
}

type portStatusCmd struct {
	ID     string    `json:"id"`
	Status string    `json:"status"`
	Now    time.Time `json:"now"`
}

func applyPortStatus(tx *memdb.Txn, _ uint64, body json.RawMessage) (any, error) {
	var c portStatusCmd
	if err := store.DecodeBody(body, &c); err != nil {
		return nil, err
	}
	old := store.Get[Port](tx, tPorts, c.ID)
	if old == nil {
		return nil, notFound("port", c.ID)
	}
	if old.Status == c.Status {
		return nil, nil
	}
	p := *old
	p.Status = c.Status
	touch(&p.UpdatedAt, &p.Revision, c.Now)
	return nil, tx.Insert(tPorts, &p)
}

// Security groups.

type groupCreateCmd struct {
	Group    SecurityGroup       `json:"group"`
	Rules    []SecurityGroupRule `json:"rules"`
	Defaults []defaultGroupCmd   `json:"defaults,omitempty"`
}

func applyGroupCreate(tx *memdb.Txn, _ uint64, body json.RawMessage) (any, error) {
	var c groupCreateCmd
	if err := store.DecodeBody(body, &c); err != nil {
		return nil, err
	}
	if err := ensureDefaults(tx, c.Defaults); err != nil {
		return nil, err
	}
	if store.Get[SecurityGroup](tx, tGroups, c.Group.ID) != nil {
		return nil, store.Conflictf("security group %s exists", c.Group.ID)
	}
	if err := tx.Insert(tGroups, &c.Group); err != nil {
		return nil, err
	}
	if err := checkQuota(tx, c.Group.Project, "security_group"); err != nil {
		return nil, err
	}
	for _, r := range c.Rules {
		if err := tx.Insert(tRules, &r); err != nil {
			return nil, err
		}
	}
	if err := checkQuota(tx, c.Group.Project, "security_group_rule"); err != nil {
		return nil, err
	}
	return c.Group, nil
}

type groupUpdateCmd struct {
	ID          string    `json:"id"`
	Name        *string   `json:"name,omitempty"`
	Description *string   `json:"description,omitempty"`
	Now         time.Time `json:"now"`
}

func applyGroupUpdate(tx *memdb.Txn, _ uint64, body json.RawMessage) (any, error) {
	var c groupUpdateCmd
	if err := store.DecodeBody(body, &c); err != nil {
		return nil, err
	}
	old := store.Get[SecurityGroup](tx, tGroups, c.ID)
	if old == nil {
		return nil, notFound("security_group", c.ID)
	}
	g := *old
	if old.Default && c.Name != nil && *c.Name != old.Name {
		return nil, apiError(http.StatusConflict, "SecurityGroupCannotUpdateDefault", "Updating default security group not allowed.")
	}
	set(&g.Name, c.Name)
	set(&g.Description, c.Description)
	touch(&g.UpdatedAt, &g.Revision, c.Now)
	return g, tx.Insert(tGroups, &g)
}

func applyGroupDelete(tx *memdb.Txn, _ uint64, body json.RawMessage) (any, error) {
	var c idCmd
	if err := store.DecodeBody(body, &c); err != nil {
		return nil, err
	}
	g := store.Get[SecurityGroup](tx, tGroups, c.ID)
	if g == nil {
		return nil, notFound("security_group", c.ID)
	}
	if g.Default && !c.Admin {
		return nil, apiError(http.StatusConflict, "SecurityGroupCannotRemoveDefault", "Insufficient rights for removing default security group.")
	}
	if raw, _ := tx.First(tPorts, "group", g.ID); raw != nil {
		return nil, apiError(http.StatusConflict, "SecurityGroupInUse", "Security Group %s in use.", g.ID)
	}
	rules := store.All[SecurityGroupRule](tx, tRules, "group", g.ID)
	rules = append(rules, store.All[SecurityGroupRule](tx, tRules, "remote_group", g.ID)...)
	for _, r := range rules {
		if raw, _ := tx.First(tRules, "id", r.ID); raw == nil {
			continue // a rule of this group that refers to itself
		}
		if err := tx.Delete(tRules, r); err != nil {
			return nil, err
		}
	}
	return nil, tx.Delete(tGroups, g)
}

type ruleCreateCmd struct {
	Rules []SecurityGroupRule `json:"rules"`
}

func applyRuleCreate(tx *memdb.Txn, _ uint64, body json.RawMessage) (any, error) {
	var c ruleCreateCmd
	if err := store.DecodeBody(body, &c); err != nil {
		return nil, err
	}
	out := make([]SecurityGroupRule, 0, len(c.Rules))
	for _, r := range c.Rules {
		g := store.Get[SecurityGroup](tx, tGroups, r.GroupID)
		if g == nil {
			return nil, notFound("security_group", r.GroupID)
		}
		r.Project = g.Project
		if r.RemoteGroupID != "" && store.Get[SecurityGroup](tx, tGroups, r.RemoteGroupID) == nil {
			return nil, notFound("security_group", r.RemoteGroupID)
		}
		for _, o := range store.All[SecurityGroupRule](tx, tRules, "group", r.GroupID) {
			if sameRule(o, &r) {
				return nil, apiError(http.StatusConflict, "SecurityGroupRuleExists", "Security group rule already exists. Rule id is %s.", o.ID)
			}
		}
		if err := tx.Insert(tRules, &r); err != nil {
			return nil, err
		}
		if err := checkQuota(tx, r.Project, "security_group_rule"); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func sameRule(a, b *SecurityGroupRule) bool {
	return a.Direction == b.Direction && a.EtherType == b.EtherType && a.Protocol == b.Protocol &&
		intEq(a.PortMin, b.PortMin) && intEq(a.PortMax, b.PortMax) && a.RemoteGroupID == b.RemoteGroupID &&
		anyPrefix(a.RemoteIPPrefix) == anyPrefix(b.RemoteIPPrefix)
}

// anyPrefix treats 0.0.0.0/0 and ::/0 as no prefix, as Neutron does when it
// looks for duplicate rules.
func anyPrefix(p string) string {
	if p == "0.0.0.0/0" || p == "::/0" {
		return ""
	}
	return p
}

func intEq(a, b *int) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

func applyRuleDelete(tx *memdb.Txn, _ uint64, body json.RawMessage) (any, error) {
	var c idCmd
	if err := store.DecodeBody(body, &c); err != nil {
		return nil, err
	}
	r := store.Get[SecurityGroupRule](tx, tRules, c.ID)
	if r == nil {
		return nil, notFound("security_group_rule", c.ID)
	}
	return nil, tx.Delete(tRules, r)
}
