package network

import (
	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"

	memdb "github.com/hashicorp/go-memdb"
)

// Extension net-mtu-writable: a network's MTU is set on create and
// update. The nodes' dataplanes follow it: DHCP's interface-MTU option,
// IPv6 router advertisements and the routers' fragmentation and
// packet-too-big limits are compiled from Network.MTU, and recompiled
// when it changes.

const (
	// maxMTU is the physical network's MTU, Neutron's default
	// global_physnet_mtu: VLANs add no overhead to the tenant's frames.
	maxMTU = 1500
	// minMTU4 and minMTU6 are the least MTUs IPv4 and IPv6 allow.
	minMTU4, minMTU6 = 68, 1280
)

// readMTU reads mtu: nil when absent.
func readMTU(rd *api.Input) *int {
	if !rd.Has("mtu") {
		return nil
	}
	v := integer(rd, "mtu")
	if rd.Err != nil || v == nil {
		return nil
	}
	if *v > maxMTU {
		rd.Fail(badInput("mtu", "Requested MTU is too big, maximum is %d", maxMTU))
		return nil
	}
	if *v < minMTU4 {
		rd.Fail(badInput("mtu", "%d is smaller than the least MTU IPv4 allows, %d", *v, minMTU4))
		return nil
	}
	return v
}

// checkMTU6 refuses an MTU below IPv6's least on a network with an IPv6
// subnet, as Neutron does.
func checkMTU6(tx *memdb.Txn, n *Network) error {
	if n.MTU >= minMTU6 {
		return nil
	}
	for _, s := range store.All[Subnet](tx, tSubnets, "network", n.ID) {
		if s.IPVersion == 6 {
			return invalidInput("IPv6 subnet %s on network %s needs an MTU of at least %d; the network's is %d", s.ID, n.ID, minMTU6, n.MTU)
		}
	}
	return nil
}
