package network

import (
	"net/http"
	"sort"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

var routerAttrs = newAttrSpec(
	"name description admin_state_up external_gateway_info routes distributed",
	"tenant_id project_id availability_zone_hints flavor_id",
	"id status availability_zones created_at updated_at revision_number tags")

// routers is the routers collection: a project sees its own.
func (s *Service) routers(*memdb.Txn) api.Collection[Router] {
	return api.Collection[Router]{Table: tRouters, One: "router", Project: func(r *Router) string { return r.Project },
		View: s.routerView, NotFound: func(id string) error { return notFound("router", id) }, Listing: s.listing("routers")}
}

// routerStatus is ACTIVE only where the nodes' dataplanes forward for
// routers (Config.Forwarding): a router nothing forwards for is DOWN, and
// so is one whose gateway is on an external network the dataplanes do not
// reach (a VLAN one without Config.VLANExternals, made before such
// gateways were refused). admin_state_up does not change it: in Neutron a
// router's status is ACTIVE, ALLOCATING or ERROR, never DOWN for being
// disabled (clients check a disabled router is ACTIVE); its ports show
// that it forwards nothing (portStatus).
func (s *Service) routerStatus(tx *memdb.Txn, r *Router) string {
	if !s.cfg.Forwarding {
		return "DOWN"
	}
	if g := r.Gateway; g != nil {
		if n := store.Get[Network](tx, tNetworks, g.NetworkID); n == nil || s.checkGatewayReach(n) != nil {
			return "DOWN"
		}
	}
	return "ACTIVE"
}

// checkGatewayReach refuses a gateway on an external network no node's
// dataplane forwards for: a VLAN one where the nodes have no uplink to
// carry its VLAN (Config.VLANExternals). It would be shown, and never
// forwarded.
func (s *Service) checkGatewayReach(n *Network) error {
	if n.Flat != "" || s.cfg.VLANExternals {
		return nil
	}
	return store.Fault(store.KindInvalid, "BadRequest", "Bad router request: external network %s is VLAN %d of %s, "+
		"and no uplink carries VLANs to the outside here (rackd --uplink); router gateways are forwarded only on flat external networks without one.",
		n.ID, n.SegmentationID, physicalNetwork)
}

// readReachableGateway reads external_gateway_info and checks its
// network is one the dataplanes forward for.
func (s *Service) readReachableGateway(tx *memdb.Txn, rd *api.Input, p *api.Principal, action string) *gatewaySpec {
	g := readRouterGateway(rd, p, action)
	if g == nil || rd.Err != nil {
		return g
	}
	if n := store.Get[Network](tx, tNetworks, g.NetworkID); n != nil && n.External {
		if err := s.checkGatewayReach(n); err != nil {
			rd.Fail(err)
		}
	}
	return g
}

func (s *Service) routerView(tx *memdb.Txn, p *api.Principal, r *Router) api.View {
	routes := make([]map[string]any, 0, len(r.Routes))
	for _, rt := range r.Routes {
		routes = append(routes, map[string]any{"destination": rt.Destination, "nexthop": rt.Nexthop})
	}
	var gw any
	if g := r.Gateway; g != nil {
		ips := []map[string]any{}
		if pt := store.Get[Port](tx, tPorts, g.PortID); pt != nil {
			for _, f := range pt.FixedIPs {
				ips = append(ips, map[string]any{"subnet_id": f.SubnetID, "ip_address": f.IP})
			}
		}
		gw = map[string]any{"network_id": g.NetworkID, "enable_snat": g.SNAT, "external_fixed_ips": ips}
	}
	v := map[string]any{
		"id": r.ID, "name": r.Name, "description": r.Description, "tenant_id": r.Project, "project_id": r.Project,
		"admin_state_up": r.AdminStateUp, "status": s.routerStatus(tx, r), "external_gateway_info": gw, "routes": routes,
		"availability_zones": s.zoneNames(tx), "availability_zone_hints": hintList(r.AZHints), "flavor_id": nil,
		"created_at": timeText(r.CreatedAt), "updated_at": timeText(r.UpdatedAt), "revision_number": r.Revision, "tags": tagList(r.Tags),
	}
	// As in Neutron's default policy, only admins see how a router is
	// made: every router here is distributed (each node routes for its own
	// ports). There is no "ha" attribute: Neutron has one only with the
	// l3-ha extension, which is not listed here (no router is an HA pair).
	if p.IsAdmin() {
		v["distributed"] = true
	}
	return v
}

// readRouterGateway reads external_gateway_info: nil for none (absent,
// null, or {}, which is how the openstack client unsets it). Choosing enable_snat or the addresses is for admins, as in
// Neutron's default policy.
func readRouterGateway(rd *api.Input, p *api.Principal, action string) *gatewaySpec {
	o := rd.Object("external_gateway_info")
	if len(o) == 0 || rd.Err != nil {
		return nil
	}
	for k := range o {
		if k != "network_id" && k != "enable_snat" && k != "external_fixed_ips" {
			rd.Fail(badInput("external_gateway_info", "Unrecognized attribute(s) '%s'", k))
			return nil
		}
	}
	in := input(o)
	g := &gatewaySpec{NetworkID: in.Str("network_id", "", 64), SNAT: in.Bool("enable_snat", true), PortID: api.NewUUID()}
	if in.Err == nil && g.NetworkID == "" {
		in.Fail(badInput("external_gateway_info", "'network_id' is a required property"))
	}
	if in.Err == nil && in.Has("enable_snat") && !p.IsAdmin() {
		in.Fail(policyDenied(action + ":external_gateway_info:enable_snat"))
	}
	if in.Err == nil && in.Has("external_fixed_ips") {
		if !p.IsAdmin() {
			in.Fail(policyDenied(action + ":external_gateway_info:external_fixed_ips"))
		} else {
			ips := readFixedIPsOf(in, "external_fixed_ips")
			g.IPs = &ips
		}
	}
	if in.Err != nil {
		rd.Fail(in.Err)
		return nil
	}
	return g
}

// readFixedIPsOf reads a list of {subnet_id, ip_address} under field.
func readFixedIPsOf(rd *api.Input, field string) []ipRequest {
	rd.Obj = api.Object{"fixed_ips": rd.Obj[field]}
	return readFixedIPs(rd, true)
}

// readRouterRoutes reads a router's static routes.
func readRouterRoutes(rd *api.Input) *[]HostRoute {
	if !rd.Has("routes") {
		return nil
	}
	out := []HostRoute{}
	seen := map[HostRoute]bool{}
	for _, o := range rd.Objects("routes") {
		in := input(o)
		dst := in.Str("destination", "", 64)
		hop := in.Str("nexthop", "", 64)
		if in.Err != nil {
			rd.Fail(badInput("routes", "%v", in.Err))
			return nil
		}
		pfx, err := parseCIDROrIP(dst)
		if err != nil || dst == "" {
			rd.Fail(badInput("routes", "'%s' is not a valid IP subnet", dst))
			return nil
		}
		a, err := parseIP(hop)
		if err != nil {
			rd.Fail(badInput("routes", "'%s' is not a valid IP address", hop))
			return nil
		}
		rt := HostRoute{Destination: pfx.String(), Nexthop: a.String()}
		if seen[rt] {
			rd.Fail(badInput("routes", "Duplicate route %s via %s", rt.Destination, rt.Nexthop))
			return nil
		}
		seen[rt] = true
		out = append(out, rt)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Destination+out[i].Nexthop < out[j].Destination+out[j].Nexthop })
	return &out
}

// readShape refuses what a router here cannot be: a centralized router.
// Reading or setting "distributed" is for admins. Neutron makes a
// centralized router only where an L3 agent in legacy or dvr_snat mode can
// host it; every node's L3 agent here is in dvr mode, so none can, and
// accepting distributed=false would show a router routed otherwise than it
// says. (An HA pair is refused before this, as Neutron without the l3-ha
// extension refuses it: "ha" is an unrecognized attribute.)
func readShape(rd *api.Input, p *api.Principal, action string) {
	const f = "distributed"
	if !rd.Has(f) || rd.Err != nil {
		return
	}
	if !p.IsAdmin() {
		rd.Fail(policyDenied(action + ":" + f))
		return
	}
	if v := rd.Bool(f, false); rd.Err == nil && !v {
		rd.Fail(badInput(f, "a centralized router needs an L3 agent in legacy or dvr_snat mode to host it, and every L3 agent here is in dvr mode: each node routes for its own ports"))
	}
}

func (s *Service) parseRouter(tx *memdb.Txn, p *api.Principal, o api.Object) (routerSpec, error) {
	if err := routerAttrs.check(o, http.MethodPost); err != nil {
		return routerSpec{}, err
	}
	rd := input(o)
	now := s.now()
	r := Router{ID: api.NewUUID(), Routes: []HostRoute{}, CreatedAt: now, UpdatedAt: now}
	r.Name = rd.Str("name", "", 255)
	r.Description = rd.Str("description", "", 255)
	r.AdminStateUp = rd.Bool("admin_state_up", true)
	r.Project = readProject(rd, p)
	readShape(rd, p, "create_router")
	r.AZHints = s.readAZHints(tx, rd)
	if rd.Has("flavor_id") && !rd.IsNull("flavor_id") {
		rd.Fail(badInput("flavor_id", "router flavors are not supported"))
	}
	if rd.Has("routes") {
		rd.Fail(badInput("routes", "a new router has no interfaces, so no route's next hop is reachable"))
	}
	gw := s.readReachableGateway(tx, rd, p, "create_router")
	return routerSpec{Router: r, Gateway: gw}, rd.Err
}

func (s *Service) routerCreation() creation[routerSpec, Router] {
	return creation[routerSpec, Router]{one: "router", many: "routers", parse: s.parseRouter,
		command: func(_ *memdb.Txn, specs []routerSpec) (string, any) {
			return cmdRouterCreate, routerCreateCmd{Routers: specs}
		},
		view: s.routerView}
}

func (s *Service) writableRouter(tx *memdb.Txn, p *api.Principal, id, action string) (*Router, error) {
	r, err := s.routers(tx).Get(tx, p, id)
	if err != nil {
		return nil, err
	}
	if !p.CanWrite(r.Project) {
		return nil, policyDenied(action)
	}
	return r, nil
}

func (s *Service) updateRouter(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	ch, err := readChange(s, r, "router", routerAttrs, "update_router", s.writableRouter)
	if err != nil {
		return err
	}
	rt, rd := ch.row, ch.in
	c := routerUpdateCmd{ifMatch: ch.match, ID: rt.ID, Now: s.now()}
	c.Name = optStr(rd, "name", 255)
	c.Description = optStr(rd, "description", 255)
	c.AdminStateUp = optBool(rd, "admin_state_up", true)
	c.Routes = readRouterRoutes(rd)
	readShape(rd, p, "update_router")
	if rd.Has("external_gateway_info") {
		c.SetGateway = true
		c.Gateway = s.readReachableGateway(ch.tx, rd, p, "update_router")
		if g := c.Gateway; g != nil && rt.Gateway != nil && rd.Err == nil && !input(rd.Object("external_gateway_info")).Has("enable_snat") {
			// Not naming enable_snat keeps the router's.
			g.SNAT = rt.Gateway.SNAT
		}
	}
	if rd.Err != nil {
		return rd.Err
	}
	var row Router
	tx, err := api.Propose(r.Context(), s.cfg.Repl, cmdRouterUpdate, c, &row)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"router": s.routerView(tx, p, &row)})
	return nil
}

func (s *Service) deleteRouter(w http.ResponseWriter, r *http.Request) error {
	return remove(s, w, r, cmdRouterDelete, "delete_router", s.writableRouter)
}

// routerInterface answers add_router_interface and
// remove_router_interface: the body names a subnet_id or a port_id.
func (s *Service) routerInterface(add bool) api.HandlerFunc {
	typ, action := cmdRouterRemoveInterface, "remove_router_interface"
	if add {
		typ, action = cmdRouterAddInterface, "add_router_interface"
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		p := principal(r)
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		rt, err := s.writableRouter(tx, p, chi.URLParam(r, "id"), action)
		if err != nil {
			return err
		}
		o, err := api.ReadObject(r)
		if err != nil {
			return err
		}
		rd := input(o)
		c := routerInterfaceCmd{RouterID: rt.ID, SubnetID: rd.Str("subnet_id", "", 64), PortID: rd.Str("port_id", "", 64), Now: s.now()}
		if rd.Err != nil {
			return rd.Err
		}
		switch {
		case c.SubnetID == "" && c.PortID == "":
			return badRequest("router", "Either subnet_id or port_id must be specified")
		case add && c.SubnetID != "" && c.PortID != "":
			return badRequest("router", "Cannot specify both subnet-id and port-id")
		case c.PortID != "":
			if _, err := s.ports(tx).Get(tx, p, c.PortID); err != nil {
				return err
			}
		default:
			if _, err := s.subnets(tx).Get(tx, p, c.SubnetID); err != nil {
				return err
			}
			c.NewPortID = api.NewUUID()
		}
		var out routerInterface
		if _, err := api.Propose(r.Context(), s.cfg.Repl, typ, c, &out); err != nil {
			return err
		}
		sub := ""
		if len(out.SubnetIDs) > 0 {
			sub = out.SubnetIDs[0]
		}
		api.JSON(w, http.StatusOK, map[string]any{"id": out.RouterID, "tenant_id": out.Project, "project_id": out.Project,
			"port_id": out.PortID, "network_id": out.NetworkID, "subnet_id": sub, "subnet_ids": out.SubnetIDs})
		return nil
	}
}
