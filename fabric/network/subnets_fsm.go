package network

import (
	"net/netip"
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

type subnetCreateCmd struct {
	Subnets []Subnet `json:"subnets"`
}

func applySubnetCreate(tx *memdb.Txn, c subnetCreateCmd) (any, error) {
	out := make([]Subnet, 0, len(c.Subnets))
	for _, s := range c.Subnets {
		n := store.Get[Network](tx, tNetworks, s.NetworkID)
		if n == nil {
			return nil, notFound("network", s.NetworkID)
		}
		if s.IPVersion == 6 && n.MTU < minMTU6 {
			return nil, invalidInput("IPv6 subnet on network %s needs an MTU of at least %d; the network's is %d", n.ID, minMTU6, n.MTU)
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
		if s.SubnetPoolID != "" {
			if err := checkPoolSubnet(tx, &s, p); err != nil {
				return nil, err
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
		if err := bumpNetwork(tx, s.NetworkID, s.CreatedAt); err != nil {
			return nil, err
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
			return store.Fault(store.KindConflict, "IpAddressAlreadyAllocated", "IP address %s already allocated in subnet %s", ip, s.ID)
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
	ifMatch
	ID              string       `json:"id"`
	Name            *string      `json:"name,omitempty"`
	Description     *string      `json:"description,omitempty"`
	GatewayIP       *string      `json:"gateway_ip,omitempty"` // "" removes the gateway
	AllocationPools *[]Pool      `json:"allocation_pools,omitempty"`
	DNSNameservers  *[]string    `json:"dns_nameservers,omitempty"`
	HostRoutes      *[]HostRoute `json:"host_routes,omitempty"`
	EnableDHCP      *bool        `json:"enable_dhcp,omitempty"`
	ServiceTypes    *[]string    `json:"service_types,omitempty"`
	Now             time.Time    `json:"now"`
}

func applySubnetUpdate(tx *memdb.Txn, c subnetUpdateCmd) (any, error) {
	old, err := current(tx, tSubnets, "subnet", c.ID, c.ifMatch, func(r *Subnet) int { return r.Revision })
	if err != nil {
		return nil, err
	}
	s := *old
	set(&s.Name, c.Name)
	set(&s.Description, c.Description)
	set(&s.DNSNameservers, c.DNSNameservers)
	set(&s.HostRoutes, c.HostRoutes)
	set(&s.EnableDHCP, c.EnableDHCP)
	set(&s.ServiceTypes, c.ServiceTypes)
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
				return nil, store.Fault(store.KindConflict, "GatewayIpInUse", "Current gateway ip %s already in use by port %s. Unable to update.", s.GatewayIP, a.PortID)
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

func applySubnetDelete(tx *memdb.Txn, c idCmd) (any, error) {
	s, err := current(tx, tSubnets, "subnet", c.ID, c.ifMatch, func(r *Subnet) int { return r.Revision })
	if err != nil {
		return nil, err
	}
	allocs := store.All[IPAllocation](tx, tAllocations, "subnet", s.ID)
	for _, a := range allocs {
		if p := store.Get[Port](tx, tPorts, a.PortID); p != nil && p.DeviceOwner != dhcpOwner && !autoAddress(s) {
			return nil, store.Fault(store.KindConflict, "SubnetInUse", "Unable to complete operation on subnet %s: One or more ports have an IP allocation from this subnet.", s.ID)
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
	if err := tx.Delete(tSubnets, s); err != nil {
		return nil, err
	}
	return nil, bumpNetwork(tx, s.NetworkID, c.Now)
}

// bumpNetwork counts a subnet coming or going as a change of its network,
// whose view lists its subnets (Neutron bumps the network's
// revision_number). A command logged without a time keeps updated_at.
func bumpNetwork(tx *memdb.Txn, id string, now time.Time) error {
	old := store.Get[Network](tx, tNetworks, id)
	if old == nil {
		return nil
	}
	n := *old
	if now.IsZero() {
		now = n.UpdatedAt
	}
	touch(&n.UpdatedAt, &n.Revision, now)
	return tx.Insert(tNetworks, &n)
}
