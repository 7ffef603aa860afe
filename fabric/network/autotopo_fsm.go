package network

import (
	"fmt"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// AutoTopology is a project's auto-allocated topology
// (auto-allocated-topology): its network and the router that takes the
// network's subnets out through the default external network. One per
// project: the row's id is the project.
type AutoTopology struct {
	ID        string `json:"id"` // the project
	NetworkID string `json:"network_id"`
	// RouterID is "" once the router was deleted by hand (Neutron's
	// ON DELETE SET NULL); deleting the network forgets the row.
	RouterID string `json:"router_id,omitempty"`
}

const tAutoTopologies = "network_auto_topologies"

// autoTopologyTable is a table of its own, so a snapshot made before it
// existed restores into an empty one.
func autoTopologyTable() store.Table {
	return store.NewTable(tAutoTopologies, &AutoTopology{},
		store.StringIndex("network", "NetworkID", false))
}

const (
	cmdAutoTopology       = "network.auto_topology.allocate"
	cmdAutoTopologyDelete = "network.auto_topology.delete"
)

// Names Neutron gives what it allocates.
const (
	autoNetworkName = "auto_allocated_network"
	autoRouterName  = "auto_allocated_router"
)

// autoTopologyCmd allocates a project's topology, all in one apply, so
// that two requests racing for it end with one: the second finds the
// first's row and makes nothing. The proposer gives the ids and the
// time; the apply chooses the rest (VLAN, subnet ranges from the default
// pools, addresses) from the state it is applied to.
type autoTopologyCmd struct {
	Project          string            `json:"project"`
	NetworkID        string            `json:"network_id"`
	SubnetIDs        [2]string         `json:"subnet_ids"` // IPv4, IPv6
	RouterID         string            `json:"router_id"`
	GatewayPortID    string            `json:"gateway_port_id"`
	InterfacePortIDs [2]string         `json:"interface_port_ids"`
	VLANMin          int               `json:"vlan_min"`
	VLANMax          int               `json:"vlan_max"`
	Defaults         []defaultGroupCmd `json:"defaults,omitempty"`
	Now              time.Time         `json:"now"`
}

// autoAllocationFailure is Neutron's AutoAllocationFailure (409).
func autoAllocationFailure(reason string) error {
	return store.Fault(store.KindConflict, "AutoAllocationFailure", "Deployment error: %s.", reason)
}

// defaultExternal is the default external network, the one auto-allocated
// routers take their gateway on.
func defaultExternal(tx *memdb.Txn) (*Network, error) {
	for _, n := range store.All[Network](tx, tNetworks, "id") {
		if n.External && n.IsDefault {
			return n, nil
		}
	}
	return nil, autoAllocationFailure("No default router:external network")
}

// defaultSubnetPools are the default IPv4 and IPv6 pools there are.
func defaultSubnetPools(tx *memdb.Txn) ([]*SubnetPool, error) {
	var out []*SubnetPool
	for _, v := range []int{4, 6} {
		if sp := defaultPoolOf(tx, v); sp != nil {
			out = append(out, sp)
		}
	}
	if len(out) == 0 {
		return nil, autoAllocationFailure("No default subnetpools defined")
	}
	return out, nil
}

// checkOneDefault refuses a second default external network, as
// Neutron's DefaultExternalNetworkExists (409), checked where it is
// written so two made at once cannot both be the default.
func checkOneDefault(tx *memdb.Txn, n *Network) error {
	if !n.IsDefault {
		return nil
	}
	for _, o := range store.All[Network](tx, tNetworks, "id") {
		if o.ID != n.ID && o.External && o.IsDefault {
			return store.Fault(store.KindConflict, "DefaultExternalNetworkExists", "A default external network already exists: %s.", o.ID)
		}
	}
	return nil
}

func applyAutoTopology(tx *memdb.Txn, c autoTopologyCmd) (any, error) {
	if t := store.Get[AutoTopology](tx, tAutoTopologies, c.Project); t != nil {
		return *t, nil // allocated already, by an earlier or a racing request
	}
	ext, err := defaultExternal(tx)
	if err != nil {
		return nil, err
	}
	pools, err := defaultSubnetPools(tx)
	if err != nil {
		return nil, err
	}
	n := Network{ID: c.NetworkID, Project: c.Project, Name: autoNetworkName, MTU: 1500, AdminStateUp: true, PortSecurity: true,
		CreatedAt: c.Now, UpdatedAt: c.Now}
	if _, err := applyNetworkCreate(tx, networkCreateCmd{Networks: []Network{n}, VLANMin: c.VLANMin, VLANMax: c.VLANMax, Defaults: c.Defaults}); err != nil {
		return nil, unmet(networkReason, err)
	}
	var subnets []Subnet
	for _, sp := range pools {
		i := 0
		if sp.IPVersion == 6 {
			i = 1
		}
		sn := Subnet{ID: c.SubnetIDs[i], NetworkID: n.ID, Project: c.Project, Name: fmt.Sprintf("auto_allocated_subnet_v%d", sp.IPVersion),
			IPVersion: sp.IPVersion, SubnetPoolID: sp.ID, CreatedAt: c.Now, UpdatedAt: c.Now}
		rd := input(api.Object{})
		pfx, err := poolSubnetRange(tx, rd, sp, n.ID)
		if err != nil {
			return nil, unmet(networkReason, err)
		}
		sn.CIDR = pfx.String()
		if err := readHandedOut(rd, &sn, pfx, pickedGateway(pfx)); err != nil {
			return nil, unmet(networkReason, err)
		}
		if _, err := applySubnetCreate(tx, subnetCreateCmd{Subnets: []Subnet{sn}}); err != nil {
			return nil, unmet(networkReason, err)
		}
		subnets = append(subnets, sn)
	}
	r := Router{ID: c.RouterID, Project: c.Project, Name: autoRouterName, AdminStateUp: true, Routes: []HostRoute{},
		CreatedAt: c.Now, UpdatedAt: c.Now}
	gw := &gatewaySpec{NetworkID: ext.ID, SNAT: true, PortID: c.GatewayPortID}
	if _, err := applyRouterCreate(tx, routerCreateCmd{Routers: []routerSpec{{Router: r, Gateway: gw}}}); err != nil {
		return nil, unmet(routerReason, err)
	}
	for _, sn := range subnets {
		i := 0
		if sn.IPVersion == 6 {
			i = 1
		}
		if _, err := applyRouterAddInterface(tx, routerInterfaceCmd{RouterID: r.ID, SubnetID: sn.ID, NewPortID: c.InterfacePortIDs[i], Now: c.Now}); err != nil {
			return nil, unmet(routerReason, err)
		}
	}
	t := AutoTopology{ID: c.Project, NetworkID: n.ID, RouterID: r.ID}
	return t, tx.Insert(tAutoTopologies, &t)
}

// unmet is Neutron's answer to a step refused: AutoAllocationFailure
// (409, "Deployment error: reason") where the private network or its
// subnets could not be made (no free range or VLAN, a pool's quota) or
// the router refused a bad request, as Neutron's _build_topology turns
// them; a project over its quota hears OverQuota itself, as Neutron
// passes it on. Either way nothing is left half made: the apply's error
// aborts every row it wrote.
func unmet(reason string, err error) error {
	e, ok := err.(*store.ApplyError)
	if !ok || e.Fault == "OverQuota" || reason == routerReason && e.Kind != store.KindInvalid {
		return err
	}
	return autoAllocationFailure(reason)
}

const (
	networkReason = "Unable to provide tenant private network"
	routerReason  = "Unable to provide external connectivity"
)

// autoTopologyDeleteCmd removes a project's topology: the router's
// interfaces and gateway, the router, and the network with its subnets,
// as Neutron's delete does, in one apply. A topology whose network has
// ports in use stays whole (409 NetworkInUse).
type autoTopologyDeleteCmd struct {
	Project string    `json:"project"`
	Now     time.Time `json:"now"`
}

func applyAutoTopologyDelete(tx *memdb.Txn, c autoTopologyDeleteCmd) (any, error) {
	t := store.Get[AutoTopology](tx, tAutoTopologies, c.Project)
	if t == nil {
		return nil, nil // none: nothing to do, as in Neutron
	}
	if t.RouterID != "" && store.Get[Router](tx, tRouters, t.RouterID) != nil {
		for _, p := range store.All[Port](tx, tPorts, "network", t.NetworkID) {
			if p.DeviceOwner == routerInterfaceOwner && p.DeviceID == t.RouterID {
				if _, err := applyRouterRemoveInterface(tx, routerInterfaceCmd{RouterID: t.RouterID, PortID: p.ID, Now: c.Now}); err != nil {
					return nil, err
				}
			}
		}
		if _, err := applyRouterDelete(tx, idCmd{ID: t.RouterID, Admin: true, Now: c.Now}); err != nil {
			return nil, err
		}
	}
	if store.Get[Network](tx, tNetworks, t.NetworkID) != nil {
		if _, err := applyNetworkDelete(tx, idCmd{ID: t.NetworkID, Admin: true, Now: c.Now}); err != nil {
			return nil, err
		}
	}
	return nil, dropTopologyOfNetwork(tx, t.NetworkID)
}

// dropTopologyOfNetwork forgets the topology whose network is being
// deleted (Neutron's ON DELETE CASCADE): the next request allocates anew.
func dropTopologyOfNetwork(tx *memdb.Txn, network string) error {
	for _, t := range store.All[AutoTopology](tx, tAutoTopologies, "network", network) {
		if err := tx.Delete(tAutoTopologies, t); err != nil {
			return err
		}
	}
	return nil
}

// forgetTopologyRouter notes that a topology's router was deleted
// (Neutron's ON DELETE SET NULL).
func forgetTopologyRouter(tx *memdb.Txn, router string) error {
	for _, t := range store.All[AutoTopology](tx, tAutoTopologies, "id") {
		if t.RouterID == router {
			nt := *t
			nt.RouterID = ""
			if err := tx.Insert(tAutoTopologies, &nt); err != nil {
				return err
			}
		}
	}
	return nil
}
