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
			return store.Fault(store.KindConflict, "IpAddressAlreadyAllocated", "IP address %s already allocated in subnet %s", ip, s.ID)
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
				return nil, store.Fault(store.KindConflict, "IpAddressGenerationFailure", "No more IP addresses available on network %s.", n.ID)
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
						return nil, store.Fault(store.KindInvalid, "InvalidIpForSubnet", "IP address %s is not a valid IP for the specified subnet.", rq.IP)
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
					return nil, store.Fault(store.KindInvalid, "InvalidIpForNetwork", "IP address %s is not a valid IP for any of the subnets on the specified network.", rq.IP)
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
					return nil, store.Fault(store.KindInvalid, "InvalidIpForSubnet", "IP address %s is not a valid IP for the specified subnet.", rq.IP)
				}
				if ip.String() == s.GatewayIP && !strings.HasPrefix(p.DeviceOwner, "network:router") {
					return nil, store.Fault(store.KindConflict, "IpAddressAlreadyAllocated", "IP address %s already allocated in subnet %s", ip, s.ID)
				}
			default:
				a, ok := lowestFree(tx, n.ID, s)
				if !ok {
					return nil, store.Fault(store.KindConflict, "IpAddressGenerationFailure", "No more IP addresses available for subnet %s.", s.ID)
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
