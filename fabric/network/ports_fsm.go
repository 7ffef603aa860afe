package network

import (
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

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
	// BySharing says the port goes on another project's network only
	// because it is shared with the port's project: the apply refuses it
	// if that sharing (flag or RBAC policy) is gone by then.
	BySharing bool `json:"by_sharing,omitempty"`
}

type portCreateCmd struct {
	Ports    []portSpec        `json:"ports"`
	Defaults []defaultGroupCmd `json:"defaults,omitempty"`
}

func applyPortCreate(tx *memdb.Txn, c portCreateCmd) (any, error) {
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
	if n == nil || sp.BySharing && !sharedWith(tx, n, p.Project) {
		return nil, notFound("network", p.NetworkID)
	}
	if store.Get[Port](tx, tPorts, p.ID) != nil {
		return nil, store.Conflictf("port %s exists", p.ID)
	}
	if sp.MACGiven {
		if macInUse(tx, n.ID, p.MAC) {
			return nil, store.Fault(store.KindConflict, "MacAddressInUse", "Unable to complete operation for network %s. The mac address %s is in use.", n.ID, p.MAC)
		}
	} else {
		p.MAC = ""
		for i := 0; i < 1000 && p.MAC == ""; i++ {
			if m := derivedMAC(p.ID, i); !macInUse(tx, n.ID, m) {
				p.MAC = m
			}
		}
		if p.MAC == "" {
			return nil, store.Fault(store.KindConflict, "MacAddressGenerationFailure", "Unable to generate unique mac on network %s.", n.ID)
		}
	}
	p.PortSecurity = n.PortSecurity
	set(&p.PortSecurity, sp.PortSecurity)
	trusted := strings.HasPrefix(p.DeviceOwner, "network:")
	switch {
	case !p.PortSecurity && len(p.SecurityGroups) > 0:
		return nil, store.Fault(store.KindInvalid, "PortSecurityAndIPRequiredForSecurityGroups", "Port security must be enabled and port must have an IP address in order to use security groups.")
	case !p.PortSecurity && len(p.AllowedAddressPairs) > 0:
		return nil, store.Fault(store.KindConflict, "AddressPairAndPortSecurityRequired", "Port Security must be enabled in order to have allowed address pairs on a port.")
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
	if err := checkQoSUse(tx, p.Project, p.QoSPolicyID); err != nil {
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

// checkGroups checks that every group exists and belongs to project or
// is shared with it (rbac-security-groups), checked here so that a port
// cannot slip in between a policy's deletion and its check.
func checkGroups(tx *memdb.Txn, project string, groups []string) error {
	for _, id := range groups {
		g := store.Get[SecurityGroup](tx, tGroups, id)
		if g == nil || !groupSharedWith(tx, g, project) {
			return notFound("security_group", id)
		}
	}
	return nil
}

type portUpdateCmd struct {
	ifMatch
	ID          string  `json:"id"`
	Name        *string `json:"name,omitempty"`
	Description *string `json:"description,omitempty"`
	DeviceID    *string `json:"device_id,omitempty"`
	DeviceOwner *string `json:"device_owner,omitempty"`
	HostID      *string `json:"host_id,omitempty"`
	// BindingProfile replaces binding:profile; empty clears it.
	BindingProfile *map[string]any `json:"binding_profile,omitempty"`
	AdminStateUp   *bool           `json:"admin_state_up,omitempty"`
	PortSecurity   *bool           `json:"port_security,omitempty"`
	IPs            *[]ipRequest    `json:"ips,omitempty"`
	Groups         *[]string       `json:"groups,omitempty"`
	Pairs          *[]AddressPair  `json:"pairs,omitempty"`
	MAC            *string         `json:"mac_address,omitempty"` // valid, lowercase; only admins change it
	DHCPOpts       []dhcpOptChange `json:"dhcp_opts,omitempty"`
	Now            time.Time       `json:"now"`
	// QoSPolicy sets qos_policy_id ("": none); nil leaves it.
	QoSPolicy *string `json:"qos_policy,omitempty"`
}

func applyPortUpdate(tx *memdb.Txn, c portUpdateCmd) (any, error) {
	old, err := current(tx, tPorts, "port", c.ID, c.ifMatch, func(r *Port) int { return r.Revision })
	if err != nil {
		return nil, err
	}
	p := *old
	set(&p.Name, c.Name)
	set(&p.Description, c.Description)
	set(&p.DeviceID, c.DeviceID)
	set(&p.DeviceOwner, c.DeviceOwner)
	set(&p.HostID, c.HostID)
	if c.BindingProfile != nil {
		p.BindingProfile = nil
		if len(*c.BindingProfile) > 0 {
			p.BindingProfile = *c.BindingProfile
		}
	}
	set(&p.AdminStateUp, c.AdminStateUp)
	set(&p.PortSecurity, c.PortSecurity)
	if c.Groups != nil {
		if len(*c.Groups) > 0 && !p.PortSecurity {
			return nil, store.Fault(store.KindInvalid, "PortSecurityAndIPRequiredForSecurityGroups", "Port security must be enabled and port must have an IP address in order to use security groups.")
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
	if c.QoSPolicy != nil {
		if err := checkQoSUse(tx, p.Project, *c.QoSPolicy); err != nil {
			return nil, err
		}
		p.QoSPolicyID = *c.QoSPolicy
	}
	if len(c.DHCPOpts) > 0 {
		p.ExtraDHCPOpts = mergeDHCPOpts(p.ExtraDHCPOpts, c.DHCPOpts)
		if len(p.ExtraDHCPOpts) > maxDHCPOpts {
			return nil, badInput("extra_dhcp_opts", "a port has at most %d extra DHCP options", maxDHCPOpts)
		}
	}
	if !p.PortSecurity {
		if len(p.SecurityGroups) > 0 {
			return nil, store.Fault(store.KindConflict, "PortSecurityPortHasSecurityGroup", "Port has security group associated. Cannot disable port security or IP address until security group is removed.")
		}
		if len(p.AllowedAddressPairs) > 0 {
			return nil, store.Fault(store.KindConflict, "AddressPairAndPortSecurityRequired", "Port Security must be enabled in order to have allowed address pairs on a port.")
		}
	}
	macChanged := c.MAC != nil && *c.MAC != old.MAC
	if macChanged {
		if err := checkMACChange(tx, old, *c.MAC); err != nil {
			return nil, err
		}
		p.MAC = *c.MAC
	}
	if c.IPs != nil || macChanged {
		n := store.Get[Network](tx, tNetworks, p.NetworkID)
		if n == nil {
			return nil, notFound("network", p.NetworkID)
		}
		reqs := sameAddresses(tx, old.FixedIPs)
		if c.IPs != nil {
			reqs = keepRequested(*c.IPs, old.FixedIPs)
		}
		ips, err := assignIPs(tx, n, &p, &reqs, old.FixedIPs)
		if err != nil {
			return nil, err
		}
		p.FixedIPs = ips
		if err := dropPortForwardings(tx, p.ID, p.FixedIPs, c.Now); err != nil {
			return nil, err
		}
	}
	touch(&p.UpdatedAt, &p.Revision, c.Now)
	if p.HostID != old.HostID {
		if err := followTrunkParent(tx, &p, c.Now); err != nil {
			return nil, err
		}
	}
	return p, tx.Insert(tPorts, &p)
}

// checkMACChange refuses a new MAC for port old as Neutron does: not while
// the port is bound to a host (the host's device has the old MAC), and
// not one another port of the network has.
func checkMACChange(tx *memdb.Txn, old *Port, mac string) error {
	if old.HostID != "" {
		return store.Fault(store.KindConflict, "PortBound",
			"Unable to complete operation on port %s, port is already bound, port type: tap, old_mac %s, new_mac %s.", old.ID, old.MAC, mac)
	}
	if macInUse(tx, old.NetworkID, mac) {
		return store.Fault(store.KindConflict, "MacAddressInUse", "Unable to complete operation for network %s. The mac address %s is in use.", old.NetworkID, mac)
	}
	return nil
}

// sameAddresses asks again for a port's addresses when its MAC changes:
// the same address on an ordinary subnet, and on a SLAAC subnet the one
// the new MAC makes.
func sameAddresses(tx *memdb.Txn, cur []FixedIP) []ipRequest {
	out := make([]ipRequest, 0, len(cur))
	for _, f := range cur {
		if s := store.Get[Subnet](tx, tSubnets, f.SubnetID); s != nil && autoAddress(s) {
			out = append(out, ipRequest{SubnetID: f.SubnetID})
			continue
		}
		out = append(out, ipRequest{SubnetID: f.SubnetID, IP: f.IP})
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

func applyPortDelete(tx *memdb.Txn, c idCmd) (any, error) {
	p, err := current(tx, tPorts, "port", c.ID, c.ifMatch, func(r *Port) int { return r.Revision })
	if err != nil {
		return nil, err
	}
	if err := checkTrunkPortDelete(tx, p.ID); err != nil {
		return nil, err
	}
	if servesL3(tx, p) {
		return nil, store.Fault(store.KindConflict, "ServicePortInUse", "Port %s cannot be deleted directly via the port API: has device owner %s.", p.ID, p.DeviceOwner)
	}
	if err := releaseFloatingIPs(tx, p.ID, c.Now); err != nil {
		return nil, err
	}
	if err := dropPortForwardings(tx, p.ID, nil, c.Now); err != nil {
		return nil, err
	}
	return nil, deletePort(tx, p)
}

type portStatusCmd struct {
	ID     string    `json:"id"`
	Status string    `json:"status"`
	Now    time.Time `json:"now"`
}

func applyPortStatus(tx *memdb.Txn, c portStatusCmd) (any, error) {
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

// servesL3 reports a port a router or floating IP holds: it goes with
// them (remove_router_interface, the gateway, the floating IP), never by
// itself.
func servesL3(tx *memdb.Txn, p *Port) bool {
	switch p.DeviceOwner {
	case routerInterfaceOwner, routerGatewayOwner:
		return store.Get[Router](tx, tRouters, p.DeviceID) != nil
	case floatingIPOwner:
		return store.Get[FloatingIP](tx, tFloatingIPs, p.DeviceID) != nil
	}
	return false
}
