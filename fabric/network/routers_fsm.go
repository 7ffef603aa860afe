package network

import (
	"net/netip"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// Device owners of the ports routers and floating IPs hold. They start
// with "network:", so they get no default security group and may take a
// subnet's gateway address.
const (
	routerInterfaceOwner = "network:router_interface"
	routerGatewayOwner   = "network:router_gateway"
	floatingIPOwner      = "network:floatingip"
)

// gatewaySpec is a router's external gateway as asked for: PortID is the
// id its gateway port gets; IPs nil lets the network choose.
type gatewaySpec struct {
	NetworkID string       `json:"network_id"`
	SNAT      bool         `json:"snat"`
	IPs       *[]ipRequest `json:"ips,omitempty"`
	PortID    string       `json:"port_id"`
}

type routerCreateCmd struct {
	Routers []routerSpec `json:"routers"`
}

type routerSpec struct {
	Router  Router       `json:"router"`
	Gateway *gatewaySpec `json:"gateway,omitempty"`
}

func applyRouterCreate(tx *memdb.Txn, c routerCreateCmd) (any, error) {
	out := make([]Router, 0, len(c.Routers))
	for _, sp := range c.Routers {
		r := sp.Router
		if store.Get[Router](tx, tRouters, r.ID) != nil {
			return nil, store.Conflictf("router %s exists", r.ID)
		}
		if sp.Gateway != nil {
			if err := setGateway(tx, &r, *sp.Gateway); err != nil {
				return nil, err
			}
		}
		if err := checkRoutes(tx, &r); err != nil {
			return nil, err
		}
		if err := tx.Insert(tRouters, &r); err != nil {
			return nil, err
		}
		if err := checkQuota(tx, r.Project, "router"); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// externalNetwork is the network id if it is external to project, else
// the BadRequest Neutron answers for resource. A network project does not
// see (another's, or external only to other projects by their
// access_as_external policies) is not found.
func externalNetwork(tx *memdb.Txn, id, project, resource string) (*Network, error) {
	n := store.Get[Network](tx, tNetworks, id)
	if n == nil || !externalFor(tx, n, project) && !sharedWith(tx, n, project) {
		return nil, notFound("network", id)
	}
	if !externalFor(tx, n, project) {
		return nil, badRequest(resource, "Network %s is not a valid external network", id)
	}
	return n, nil
}

// setGateway gives r a gateway port on an external network.
func setGateway(tx *memdb.Txn, r *Router, g gatewaySpec) error {
	n, err := externalNetwork(tx, g.NetworkID, r.Project, "router")
	if err != nil {
		return err
	}
	ips := g.IPs
	if ips == nil {
		// One IPv4 address: SNAT and floating IPs are IPv4. An external
		// network without an IPv4 subnet gives none, as in Neutron (the
		// gateway port is made without it, and the router sends nothing
		// out over IPv4 until it gets one).
		req := []ipRequest{}
		if v4 := firstSubnet(tx, n.ID, routerGatewayOwner, 4); v4 != "" {
			req = append(req, ipRequest{SubnetID: v4})
		}
		// And one IPv6 address, as Neutron gives: the router routes its
		// IPv6 subnets out by it, without NAT.
		if v6 := firstSubnet(tx, n.ID, routerGatewayOwner, 6); v6 != "" {
			req = append(req, ipRequest{SubnetID: v6})
		}
		ips = &req
	}
	off := false
	_, err = createPort(tx, portSpec{
		Port: Port{ID: g.PortID, NetworkID: n.ID, DeviceOwner: routerGatewayOwner, DeviceID: r.ID, AdminStateUp: true,
			Status: "DOWN", VNICType: "normal", CreatedAt: r.UpdatedAt, UpdatedAt: r.UpdatedAt},
		IPs: ips, PortSecurity: &off, GroupsGiven: true,
	})
	if err != nil {
		return err
	}
	r.Gateway = &RouterGateway{NetworkID: n.ID, PortID: g.PortID, SNAT: g.SNAT}
	return nil
}

// firstSubnet is the subnet of network of IP version v a port of owner
// gets its address on (service types first, then the oldest), "" if none.
func firstSubnet(tx *memdb.Txn, network, owner string, v int) string {
	a := newAllocator(tx, &Network{ID: network}, &Port{DeviceOwner: owner})
	for _, s := range a.subnets {
		if s.IPVersion == v {
			return s.ID
		}
	}
	return ""
}

// clearGateway removes r's gateway port, unless floating IPs need it.
func clearGateway(tx *memdb.Txn, r *Router) error {
	if r.Gateway == nil {
		return nil
	}
	if raw, _ := tx.First(tFloatingIPs, "router", r.ID); raw != nil {
		return store.Fault(store.KindConflict, "RouterExternalGatewayInUseByFloatingIp",
			"Gateway cannot be updated for router %s, since a gateway to external network %s is required by one or more floating IPs.", r.ID, r.Gateway.NetworkID)
	}
	if p := store.Get[Port](tx, tPorts, r.Gateway.PortID); p != nil {
		if err := deletePort(tx, p); err != nil {
			return err
		}
	}
	r.Gateway = nil
	return nil
}

// routerSubnets are the subnets r has an interface on, with the port that
// holds each.
func routerSubnets(tx *memdb.Txn, routerID string) map[string]*Port {
	out := map[string]*Port{}
	for _, p := range store.All[Port](tx, tPorts, "device", routerID) {
		if p.DeviceOwner != routerInterfaceOwner {
			continue
		}
		for _, f := range p.FixedIPs {
			out[f.SubnetID] = p
		}
	}
	return out
}

// checkRoutes refuses a static route whose next hop is on none of the
// router's subnets: the router could not reach it.
func checkRoutes(tx *memdb.Txn, r *Router) error {
	var on []netip.Prefix
	for id := range routerSubnets(tx, r.ID) {
		if s := store.Get[Subnet](tx, tSubnets, id); s != nil {
			if pfx, err := netip.ParsePrefix(s.CIDR); err == nil {
				on = append(on, pfx)
			}
		}
	}
	for _, rt := range r.Routes {
		hop, _ := netip.ParseAddr(rt.Nexthop)
		ok := false
		for _, pfx := range on {
			ok = ok || pfx.Contains(hop)
		}
		if !ok && onGatewaySubnet(tx, r, hop) {
			// Neutron takes a next hop on the gateway's subnets too; the
			// dataplanes route only through the router's interfaces, so
			// such a route would be shown and never forwarded.
			return store.Fault(store.KindInvalid, "InvalidRoutes", "Invalid format for routes: %s, the nexthop is on the router's external network, and routes through the external network are not forwarded here (only through the router's interfaces).", routeText(rt))
		}
		if !ok {
			return store.Fault(store.KindInvalid, "InvalidRoutes", "Invalid format for routes: %s, the nexthop is not connected with router.", routeText(rt))
		}
	}
	return nil
}

// onGatewaySubnet reports whether hop is on a subnet r's gateway port has
// an address on.
func onGatewaySubnet(tx *memdb.Txn, r *Router, hop netip.Addr) bool {
	if r.Gateway == nil {
		return false
	}
	gw := store.Get[Port](tx, tPorts, r.Gateway.PortID)
	if gw == nil {
		return false
	}
	for _, f := range gw.FixedIPs {
		if s := store.Get[Subnet](tx, tSubnets, f.SubnetID); s != nil {
			if pfx, err := netip.ParsePrefix(s.CIDR); err == nil && pfx.Contains(hop) {
				return true
			}
		}
	}
	return false
}

func routeText(rt HostRoute) string {
	return "[{'destination': '" + rt.Destination + "', 'nexthop': '" + rt.Nexthop + "'}]"
}

type routerUpdateCmd struct {
	ifMatch
	ID           string       `json:"id"`
	Name         *string      `json:"name,omitempty"`
	Description  *string      `json:"description,omitempty"`
	AdminStateUp *bool        `json:"admin_state_up,omitempty"`
	Routes       *[]HostRoute `json:"routes,omitempty"`
	// AddRoutes and RemoveRoutes change the routes the router has when
	// the command is applied (extraroute-atomic).
	AddRoutes    []HostRoute `json:"add_routes,omitempty"`
	RemoveRoutes []HostRoute `json:"remove_routes,omitempty"`
	// Gateway is applied when SetGateway: nil removes the gateway.
	SetGateway bool         `json:"set_gateway,omitempty"`
	Gateway    *gatewaySpec `json:"gateway,omitempty"`
	Now        time.Time    `json:"now"`
}

func applyRouterUpdate(tx *memdb.Txn, c routerUpdateCmd) (any, error) {
	old, err := current(tx, tRouters, "router", c.ID, c.ifMatch, func(r *Router) int { return r.Revision })
	if err != nil {
		return nil, err
	}
	r := *old
	set(&r.Name, c.Name)
	set(&r.Description, c.Description)
	set(&r.AdminStateUp, c.AdminStateUp)
	set(&r.Routes, c.Routes)
	if len(c.AddRoutes)+len(c.RemoveRoutes) > 0 {
		r.Routes = mergeRoutes(r.Routes, c.AddRoutes, c.RemoveRoutes)
	}
	touch(&r.UpdatedAt, &r.Revision, c.Now)
	if c.SetGateway {
		g := c.Gateway
		switch {
		case g != nil && r.Gateway != nil && g.NetworkID == r.Gateway.NetworkID && g.IPs == nil:
			// Same network: only enable_snat changes; the address stays.
			gw := *r.Gateway
			gw.SNAT = g.SNAT
			r.Gateway = &gw
		default:
			if err := clearGateway(tx, &r); err != nil {
				return nil, err
			}
			if g != nil {
				if err := setGateway(tx, &r, *g); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := checkRoutes(tx, &r); err != nil {
		return nil, err
	}
	return r, tx.Insert(tRouters, &r)
}

func applyRouterDelete(tx *memdb.Txn, c idCmd) (any, error) {
	r, err := current(tx, tRouters, "router", c.ID, c.ifMatch, func(r *Router) int { return r.Revision })
	if err != nil {
		return nil, err
	}
	if len(routerSubnets(tx, r.ID)) > 0 {
		return nil, store.Fault(store.KindConflict, "RouterInUse", "Router %s still has ports", r.ID)
	}
	nr := *r
	if err := clearGateway(tx, &nr); err != nil {
		return nil, err
	}
	if err := forgetTopologyRouter(tx, r.ID); err != nil {
		return nil, err
	}
	return nil, tx.Delete(tRouters, r)
}

// routerInterfaceCmd adds or removes an interface: by subnet (a new port,
// NewPortID, with the subnet's gateway address) or by an existing port.
type routerInterfaceCmd struct {
	RouterID  string    `json:"router_id"`
	SubnetID  string    `json:"subnet_id,omitempty"`
	PortID    string    `json:"port_id,omitempty"`
	NewPortID string    `json:"new_port_id,omitempty"`
	Now       time.Time `json:"now"`
}

// routerInterface is what add/remove_router_interface answer.
type routerInterface struct {
	RouterID  string   `json:"id"`
	Project   string   `json:"project"`
	PortID    string   `json:"port_id"`
	NetworkID string   `json:"network_id"`
	SubnetIDs []string `json:"subnet_ids"`
}

func interfaceOf(r *Router, p *Port) routerInterface {
	out := routerInterface{RouterID: r.ID, Project: r.Project, PortID: p.ID, NetworkID: p.NetworkID, SubnetIDs: []string{}}
	for _, f := range p.FixedIPs {
		out.SubnetIDs = append(out.SubnetIDs, f.SubnetID)
	}
	return out
}

func applyRouterAddInterface(tx *memdb.Txn, c routerInterfaceCmd) (any, error) {
	old := store.Get[Router](tx, tRouters, c.RouterID)
	if old == nil {
		return nil, notFound("router", c.RouterID)
	}
	attached := routerSubnets(tx, old.ID)
	var port *Port
	if c.SubnetID != "" {
		s := store.Get[Subnet](tx, tSubnets, c.SubnetID)
		if s == nil {
			return nil, notFound("subnet", c.SubnetID)
		}
		if s.GatewayIP == "" {
			return nil, badRequest("router", "Subnet for router interface must have a gateway IP")
		}
		if err := checkAttachable(tx, old, attached, []string{s.ID}); err != nil {
			return nil, err
		}
		off := false
		p, err := createPort(tx, portSpec{
			Port: Port{ID: c.NewPortID, NetworkID: s.NetworkID, Project: old.Project, DeviceOwner: routerInterfaceOwner, DeviceID: old.ID,
				AdminStateUp: true, Status: "DOWN", VNICType: "normal", CreatedAt: c.Now, UpdatedAt: c.Now},
			IPs: &[]ipRequest{{SubnetID: s.ID, IP: s.GatewayIP}}, PortSecurity: &off, GroupsGiven: true,
		})
		if err != nil {
			return nil, err
		}
		port = p
	} else {
		p := store.Get[Port](tx, tPorts, c.PortID)
		if p == nil {
			return nil, notFound("port", c.PortID)
		}
		if p.DeviceOwner != "" || p.DeviceID != "" {
			return nil, store.Fault(store.KindConflict, "PortInUse", "Unable to complete operation on port %s for network %s. Port already has an attached device %s.", p.ID, p.NetworkID, p.DeviceID)
		}
		if len(p.FixedIPs) == 0 {
			return nil, badRequest("router", "Router port must have at least one fixed IP")
		}
		var subs []string
		for _, f := range p.FixedIPs {
			subs = append(subs, f.SubnetID)
		}
		if err := checkAttachable(tx, old, attached, subs); err != nil {
			return nil, err
		}
		np := *p
		np.DeviceOwner, np.DeviceID = routerInterfaceOwner, old.ID
		touch(&np.UpdatedAt, &np.Revision, c.Now)
		if err := tx.Insert(tPorts, &np); err != nil {
			return nil, err
		}
		port = &np
	}
	r := *old
	touch(&r.UpdatedAt, &r.Revision, c.Now)
	return interfaceOf(&r, port), tx.Insert(tRouters, &r)
}

// checkAttachable refuses subnets a router cannot take: one it is on, or
// one overlapping one it is on, or one of an external network.
func checkAttachable(tx *memdb.Txn, r *Router, attached map[string]*Port, subnets []string) error {
	for _, id := range subnets {
		s := store.Get[Subnet](tx, tSubnets, id)
		if s == nil {
			return notFound("subnet", id)
		}
		if n := store.Get[Network](tx, tNetworks, s.NetworkID); n != nil && n.External {
			return badRequest("router", "Router interfaces cannot be on external network %s", n.ID)
		}
		if _, ok := attached[id]; ok {
			return badRequest("router", "Router already has a port on subnet %s", id)
		}
		pfx, _ := netip.ParsePrefix(s.CIDR)
		for oid := range attached {
			o := store.Get[Subnet](tx, tSubnets, oid)
			if o == nil {
				continue
			}
			if op, err := netip.ParsePrefix(o.CIDR); err == nil && op.Overlaps(pfx) {
				return badRequest("router", "Cidr %s of subnet %s overlaps with cidr %s of subnet %s", s.CIDR, s.ID, o.CIDR, o.ID)
			}
		}
	}
	return nil
}

func applyRouterRemoveInterface(tx *memdb.Txn, c routerInterfaceCmd) (any, error) {
	old := store.Get[Router](tx, tRouters, c.RouterID)
	if old == nil {
		return nil, notFound("router", c.RouterID)
	}
	var port *Port
	if c.PortID != "" {
		p := store.Get[Port](tx, tPorts, c.PortID)
		if p == nil || p.DeviceOwner != routerInterfaceOwner || p.DeviceID != old.ID {
			return nil, store.Fault(store.KindNotFound, "RouterInterfaceNotFound", "Router %s does not have an interface with id %s", old.ID, c.PortID)
		}
		if c.SubnetID != "" && !holdsSubnet(p, c.SubnetID) {
			return nil, store.Fault(store.KindConflict, "SubnetMismatchForPort", "Subnet %s does not match the subnets of port %s", c.SubnetID, p.ID)
		}
		port = p
	} else {
		port = routerSubnets(tx, old.ID)[c.SubnetID]
		if port == nil {
			return nil, store.Fault(store.KindNotFound, "RouterInterfaceNotFoundForSubnet", "Router %s has no interface on subnet %s", old.ID, c.SubnetID)
		}
	}
	for _, f := range port.FixedIPs {
		if err := interfaceInUse(tx, old, f.SubnetID); err != nil {
			return nil, err
		}
	}
	result := interfaceOf(old, port)
	if err := deletePort(tx, port); err != nil {
		return nil, err
	}
	r := *old
	touch(&r.UpdatedAt, &r.Revision, c.Now)
	return result, tx.Insert(tRouters, &r)
}

func holdsSubnet(p *Port, subnet string) bool {
	for _, f := range p.FixedIPs {
		if f.SubnetID == subnet {
			return true
		}
	}
	return false
}

// interfaceInUse refuses to take r off a subnet that floating IPs or
// static routes of r reach through.
func interfaceInUse(tx *memdb.Txn, r *Router, subnet string) error {
	s := store.Get[Subnet](tx, tSubnets, subnet)
	if s == nil {
		return nil
	}
	pfx, err := netip.ParsePrefix(s.CIDR)
	if err != nil {
		return nil
	}
	for _, f := range store.All[FloatingIP](tx, tFloatingIPs, "router", r.ID) {
		if a, err := netip.ParseAddr(f.FixedIP); err == nil && pfx.Contains(a) {
			return store.Fault(store.KindConflict, "RouterInterfaceInUseByFloatingIP",
				"Router interface for subnet %s on router %s cannot be deleted, as it is required by one or more floating IPs.", subnet, r.ID)
		}
	}
	if err := pfInterfaceInUse(tx, r, subnet, pfx); err != nil {
		return err
	}
	for _, rt := range r.Routes {
		if a, err := netip.ParseAddr(rt.Nexthop); err == nil && pfx.Contains(a) {
			return store.Fault(store.KindConflict, "RouterInterfaceInUseByRoute",
				"Router interface for subnet %s on router %s cannot be deleted, as it is required by one or more routes.", subnet, r.ID)
		}
	}
	return nil
}
