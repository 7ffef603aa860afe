package network

import (
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// routerInterfaceDistributedOwner is the owner Neutron's DVR gives a
// distributed router's interface ports; none is made here (every
// interface is distributed and named network:router_interface), but a
// port given that owner is a router's port all the same.
const routerInterfaceDistributedOwner = "network:router_interface_distributed"

// isRouterPort says whether a port is one of a router's legs.
func isRouterPort(pt *Port) bool {
	switch pt.DeviceOwner {
	case routerInterfaceOwner, routerGatewayOwner, routerInterfaceDistributedOwner:
		return true
	}
	return false
}

// portStatus is the status a port shows. A VM's port has the status its
// node reported once its dataplane enforced it (SetPortStatus). A
// router's port has no node: routers are distributed, each node's
// dataplane routing for its own ports, so no one node plugs it and none
// reports it. It is forwarded as its router is, and shows what the
// router's status is made of (routerStatus), as Neutron's distributed and
// OVN routers show their ports ACTIVE once the router is realised:
//   - DOWN where nothing forwards for routers (Config.Forwarding), where
//     the port or its router is administratively down, or where the router
//     is gone;
//   - a gateway port is DOWN where its external network is not one the
//     dataplanes reach (checkGatewayReach), since nothing forwards there;
//   - ACTIVE otherwise.
//
// An interface keeps forwarding between the router's subnets while its
// gateway cannot be reached, so only the gateway port goes DOWN for that.
func (s *Service) portStatus(tx *memdb.Txn, pt *Port) string {
	if !isRouterPort(pt) {
		return pt.Status
	}
	if tx == nil || !s.cfg.Forwarding || !pt.AdminStateUp {
		return "DOWN"
	}
	r := store.Get[Router](tx, tRouters, pt.DeviceID)
	if r == nil || !r.AdminStateUp {
		return "DOWN"
	}
	if pt.DeviceOwner == routerGatewayOwner {
		if r.Gateway == nil || r.Gateway.PortID != pt.ID {
			return "DOWN"
		}
		if n := store.Get[Network](tx, tNetworks, pt.NetworkID); n == nil || s.checkGatewayReach(n) != nil {
			return "DOWN"
		}
	}
	return "ACTIVE"
}
