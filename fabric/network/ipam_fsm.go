package network

import (
	"net/netip"
	"sort"
	"strings"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// ipRequest is one entry of a port's fixed_ips as the client gave it: a
// subnet, an address, or both.
type ipRequest struct {
	SubnetID string `json:"subnet_id,omitempty"`
	IP       string `json:"ip_address,omitempty"`
}

// assignIPs resolves a port's requested addresses on network n, keeping
// the addresses of old (the port's current ones, on update) that are
// asked for again, and records the allocations. reqs nil asks for one
// address of each IP version (and every SLAAC address).
func assignIPs(tx *memdb.Txn, n *Network, p *Port, reqs *[]ipRequest, old []FixedIP) ([]FixedIP, error) {
	a := newAllocator(tx, n, p)
	for _, f := range old {
		a.held[f.SubnetID] = true
	}
	// Release what the port holds now; what is asked for again is taken
	// back below, so its address stays the same.
	for _, f := range old {
		if al := store.Get[IPAllocation](tx, tAllocations, allocationID(n.ID, f.IP)); al != nil && al.PortID == p.ID {
			if err := tx.Delete(tAllocations, al); err != nil {
				return nil, err
			}
		}
	}
	var err error
	if reqs == nil {
		err = a.automatic()
	} else {
		err = a.requested(*reqs)
	}
	if err != nil {
		return nil, err
	}
	if a.out == nil {
		return []FixedIP{}, nil
	}
	return a.out, nil
}

// allocator gives one port its addresses on one network, inside an
// apply.
type allocator struct {
	tx *memdb.Txn
	n  *Network
	p  *Port
	// subnets are those that serve the port's device owner (see
	// forOwner): with service types first, then oldest first; the first
	// subnet of a version serves.
	subnets []*Subnet
	all     []*Subnet // every subnet of the network, oldest first
	byID    map[string]*Subnet
	// held are the subnets the port has addresses on already: it keeps
	// them whatever their service types say now.
	held map[string]bool
	out  []FixedIP
}

func newAllocator(tx *memdb.Txn, n *Network, p *Port) *allocator {
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
	return &allocator{tx: tx, n: n, p: p, subnets: forOwner(subnets, p.DeviceOwner), all: subnets, byID: byID, held: map[string]bool{}}
}

// take records that the port holds ip on s.
func (a *allocator) take(s *Subnet, ip netip.Addr) error {
	id := allocationID(a.n.ID, ip.String())
	if store.Get[IPAllocation](a.tx, tAllocations, id) != nil {
		return store.Fault(store.KindConflict, "IpAddressAlreadyAllocated", "IP address %s already allocated in subnet %s", ip, s.ID)
	}
	a.out = append(a.out, FixedIP{SubnetID: s.ID, IP: ip.String()})
	return a.tx.Insert(tAllocations, &IPAllocation{ID: id, NetworkID: a.n.ID, SubnetID: s.ID, PortID: a.p.ID, IP: ip.String()})
}

// automatic gives the port every SLAAC address and the lowest free
// address of the first subnet of each IP version that has one.
func (a *allocator) automatic() error {
	if len(a.subnets) == 0 && len(a.all) > 0 {
		return noMatchingSubnet(a.n.ID, a.p.DeviceOwner)
	}
	var v4, v6 bool
	for _, s := range a.subnets {
		if autoAddress(s) {
			pfx, _ := netip.ParsePrefix(s.CIDR)
			if ip, ok := eui64(pfx, a.p.MAC); ok {
				if err := a.take(s, ip); err != nil {
					return err
				}
			}
			continue
		}
		if s.IPVersion == 4 && v4 || s.IPVersion == 6 && v6 {
			continue
		}
		if ip, ok := lowestFree(a.tx, a.n.ID, s); ok {
			if err := a.take(s, ip); err != nil {
				return err
			}
			if s.IPVersion == 4 {
				v4 = true
			} else {
				v6 = true
			}
		}
	}
	for _, s := range a.subnets {
		if !autoAddress(s) && (s.IPVersion == 4 && !v4 || s.IPVersion == 6 && !v6) {
			return store.Fault(store.KindConflict, "IpAddressGenerationFailure", "No more IP addresses available on network %s.", a.n.ID)
		}
	}
	return nil
}

// requested gives the port the addresses asked for, in order.
func (a *allocator) requested(reqs []ipRequest) error {
	for _, rq := range reqs {
		s, ip, err := a.subnetOf(rq)
		if err != nil {
			return err
		}
		if ip, err = a.addressOn(s, rq, ip); err != nil {
			return err
		}
		if err := a.take(s, ip); err != nil {
			return err
		}
	}
	return nil
}

// subnetOf is the subnet a request names, or the one its address is in,
// with the address asked for (invalid when none was).
func (a *allocator) subnetOf(rq ipRequest) (*Subnet, netip.Addr, error) {
	var ip netip.Addr
	if rq.IP != "" {
		addr, err := parseIP(rq.IP)
		if err != nil {
			return nil, ip, badInput("fixed_ips", "%v", err)
		}
		ip = addr
	}
	if rq.SubnetID != "" {
		s := a.byID[rq.SubnetID]
		if s == nil && store.Get[Subnet](a.tx, tSubnets, rq.SubnetID) == nil {
			// Neutron looks the subnet up before it says it is not this
			// network's: a subnet that does not exist is 404, which is what
			// clients trying subnets in turn (a router's external_subnet_ids)
			// take as "try the next".
			return nil, ip, notFound("subnet", rq.SubnetID)
		}
		if s == nil || !a.held[s.ID] && !servesOwner(s, a.p.DeviceOwner) {
			return nil, ip, invalidInput("Failed to create port on network %s, because fixed_ips included invalid subnet %s", a.n.ID, rq.SubnetID)
		}
		if pfx, _ := netip.ParsePrefix(s.CIDR); ip.IsValid() && !pfx.Contains(ip) {
			return nil, ip, store.Fault(store.KindInvalid, "InvalidIpForSubnet", "IP address %s is not a valid IP for the specified subnet.", rq.IP)
		}
		return s, ip, nil
	}
	for _, s := range a.all {
		if pfx, _ := netip.ParsePrefix(s.CIDR); pfx.Contains(ip) && (a.held[s.ID] || servesOwner(s, a.p.DeviceOwner)) {
			return s, ip, nil
		}
	}
	return nil, ip, store.Fault(store.KindInvalid, "InvalidIpForNetwork", "IP address %s is not a valid IP for any of the subnets on the specified network.", rq.IP)
}

// addressOn is the address the port gets on s for a request: its SLAAC
// address, the address asked for if the port may hold it, or the lowest
// free one.
func (a *allocator) addressOn(s *Subnet, rq ipRequest, ip netip.Addr) (netip.Addr, error) {
	pfx, _ := netip.ParsePrefix(s.CIDR)
	switch {
	case autoAddress(s) && ip.IsValid() && !strings.HasPrefix(a.p.DeviceOwner, "network:"):
		return ip, invalidInput("IPv6 address %s cannot be directly assigned to a port on subnet %s since the subnet is configured for automatic addresses", rq.IP, s.ID)
	case autoAddress(s):
		addr, ok := eui64(pfx, a.p.MAC)
		if !ok {
			return ip, invalidInput("no SLAAC address for MAC %s", a.p.MAC)
		}
		return addr, nil
	case ip.IsValid():
		// An IPv6 subnet's first address (its subnet-router anycast) is
		// for routers, and for a port whose owner is not known yet (as
		// Nova makes ports), as Neutron's check_subnet_ip has it: the
		// only address of a /128.
		v6Anycast := pfx.Addr().Is6() && ip == pfx.Addr() && (a.p.DeviceOwner == "" || isRouterPort(a.p))
		if reserved(pfx, ip) && !v6Anycast {
			return ip, store.Fault(store.KindInvalid, "InvalidIpForSubnet", "IP address %s is not a valid IP for the specified subnet.", rq.IP)
		}
		// The gateway address is never handed out unasked (lowestFree
		// skips it), but any port may ask for it, as in Neutron: the usual
		// way to give a router an interface through a port of one's own is
		// a port holding the subnet's gateway address.
		return ip, nil
	}
	addr, ok := lowestFree(a.tx, a.n.ID, s)
	if !ok {
		return ip, store.Fault(store.KindConflict, "IpAddressGenerationFailure", "No more IP addresses available for subnet %s.", s.ID)
	}
	return addr, nil
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
