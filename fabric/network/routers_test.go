package network

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

// l3World is a project's network behind a router whose gateway is on an
// admin's external network.
type l3World struct {
	ext, extSubnet, net, subnet, port, router string
}

// l3 builds an l3World for tok's project.
func (f *fixture) l3(tok string) l3World {
	f.t.Helper()
	var w l3World
	w.ext = f.network(admin, "public", "router:external", true, "provider:network_type", "flat", "provider:physical_network", "public")["id"].(string)
	w.extSubnet = f.subnet(admin, w.ext, "172.24.4.0/24")["id"].(string)
	w.net = f.network(tok, "private")["id"].(string)
	w.subnet = f.subnet(tok, w.net, "10.1.0.0/24")["id"].(string)
	w.port = f.port(tok, w.net)["id"].(string)
	w.router = f.mk(tok, "routers", "router", map[string]any{"name": "r1", "external_gateway_info": map[string]any{"network_id": w.ext}})["id"].(string)
	f.expect("PUT", "/v2.0/routers/"+w.router+"/add_router_interface", tok, map[string]any{"subnet_id": w.subnet}, 200, "")
	return w
}

func TestRouterLifecycle(t *testing.T) {
	f := newFixture(t)
	w := f.l3(alice)
	r := f.expect("GET", "/v2.0/routers/"+w.router, alice, nil, 200, "")["router"].(map[string]any)
	gw := r["external_gateway_info"].(map[string]any)
	if gw["network_id"] != w.ext || gw["enable_snat"] != true {
		t.Fatalf("gateway: %v", gw)
	}
	ips := gw["external_fixed_ips"].([]any)
	if len(ips) != 1 || ips[0].(map[string]any)["ip_address"] != "172.24.4.2" {
		t.Fatalf("gateway addresses: %v", ips)
	}
	// Nothing forwards for routers in this fixture (Config.Forwarding is
	// false): the router says so.
	if r["status"] != "DOWN" {
		t.Fatalf("status %v, want DOWN while nothing forwards", r["status"])
	}
	if _, ok := r["distributed"]; ok {
		t.Fatalf("a member sees how the router is made: %v", r)
	}
	ar := f.expect("GET", "/v2.0/routers/"+w.router, admin, nil, 200, "")["router"].(map[string]any)
	if _, ha := ar["ha"]; ar["distributed"] != true || ha { // no l3-ha extension here
		t.Fatalf("admin view: %v", ar)
	}
	f.expect("GET", "/v2.0/routers/"+w.router, bob, nil, 404, "RouterNotFound")

	// The interface is a port holding the subnet's gateway address.
	ports := f.expect("GET", "/v2.0/ports?device_id="+w.router+"&device_owner=network:router_interface", alice, nil, 200, "")["ports"].([]any)
	if len(ports) != 1 || ports[0].(map[string]any)["fixed_ips"].([]any)[0].(map[string]any)["ip_address"] != "10.1.0.1" {
		t.Fatalf("interface ports: %v", ports)
	}
	ifport := ports[0].(map[string]any)["id"].(string)
	f.expect("PUT", "/v2.0/routers/"+w.router+"/add_router_interface", alice, map[string]any{"subnet_id": w.subnet}, 400, "BadRequest", "already has a port")
	f.expect("PUT", "/v2.0/routers/"+w.router+"/add_router_interface", alice, map[string]any{}, 400, "BadRequest")
	f.expect("DELETE", "/v2.0/ports/"+ifport, alice, nil, 409, "ServicePortInUse")
	f.expect("DELETE", "/v2.0/routers/"+w.router, alice, nil, 409, "RouterInUse")
	f.expect("DELETE", "/v2.0/subnets/"+w.subnet, alice, nil, 409, "SubnetInUse")

	// Static routes need a next hop on one of the router's subnets.
	f.expect("PUT", "/v2.0/routers/"+w.router, alice, map[string]any{"router": map[string]any{"routes": []any{map[string]any{"destination": "10.9.0.0/16", "nexthop": "192.168.0.9"}}}}, 400, "InvalidRoutes", "not connected")
	// A next hop on the gateway's subnet, which Neutron takes, is refused
	// saying why: the dataplanes route only through interfaces.
	f.expect("PUT", "/v2.0/routers/"+w.router, alice, map[string]any{"router": map[string]any{"routes": []any{map[string]any{"destination": "10.9.0.0/16", "nexthop": "172.24.4.99"}}}}, 400, "InvalidRoutes", "external network", "not forwarded")
	f.expect("PUT", "/v2.0/routers/"+w.router, alice, map[string]any{"router": map[string]any{"routes": []any{map[string]any{"destination": "nonsense", "nexthop": "10.1.0.9"}}}}, 400, "HTTPBadRequest", "routes")
	r = f.expect("PUT", "/v2.0/routers/"+w.router, alice, map[string]any{"router": map[string]any{"routes": []any{map[string]any{"destination": "10.9.0.0/16", "nexthop": "10.1.0.9"}}}}, 200, "")["router"].(map[string]any)
	if rs := r["routes"].([]any); len(rs) != 1 || rs[0].(map[string]any)["nexthop"] != "10.1.0.9" {
		t.Fatalf("routes: %v", rs)
	}
	f.expect("PUT", "/v2.0/routers/"+w.router+"/remove_router_interface", alice, map[string]any{"subnet_id": w.subnet}, 409, "RouterInterfaceInUseByRoute")
	f.expect("PUT", "/v2.0/routers/"+w.router, alice, map[string]any{"router": map[string]any{"routes": []any{}}}, 200, "")

	// enable_snat is an admin's to choose; the address stays when it changes.
	f.expect("PUT", "/v2.0/routers/"+w.router, alice, map[string]any{"router": map[string]any{"external_gateway_info": map[string]any{"network_id": w.ext, "enable_snat": false}}}, 403, "PolicyNotAuthorized")
	r = f.expect("PUT", "/v2.0/routers/"+w.router, admin, map[string]any{"router": map[string]any{"external_gateway_info": map[string]any{"network_id": w.ext, "enable_snat": false}}}, 200, "")["router"].(map[string]any)
	gw = r["external_gateway_info"].(map[string]any)
	if gw["enable_snat"] != false || gw["external_fixed_ips"].([]any)[0].(map[string]any)["ip_address"] != "172.24.4.2" {
		t.Fatalf("gateway after enable_snat false: %v", gw)
	}
	// A gateway only on an external network.
	f.expect("PUT", "/v2.0/routers/"+w.router, alice, map[string]any{"router": map[string]any{"external_gateway_info": map[string]any{"network_id": w.net}}}, 400, "BadRequest", "not a valid external network")

	f.expect("PUT", "/v2.0/routers/"+w.router+"/remove_router_interface", alice, map[string]any{"subnet_id": w.subnet}, 200, "")
	f.expect("GET", "/v2.0/ports/"+ifport, alice, nil, 404, "PortNotFound")
	f.expect("PUT", "/v2.0/routers/"+w.router+"/remove_router_interface", alice, map[string]any{"subnet_id": w.subnet}, 404, "RouterInterfaceNotFoundForSubnet")
	// An interface by port: the port becomes the router's.
	out := f.expect("PUT", "/v2.0/routers/"+w.router+"/add_router_interface", alice, map[string]any{"port_id": w.port}, 200, "")
	if out["port_id"] != w.port || out["subnet_id"] != w.subnet {
		t.Fatalf("add by port: %v", out)
	}
	if pt := f.expect("GET", "/v2.0/ports/"+w.port, alice, nil, 200, "")["port"].(map[string]any); pt["device_owner"] != "network:router_interface" || pt["device_id"] != w.router {
		t.Fatalf("port after add: %v", pt)
	}
	f.expect("PUT", "/v2.0/routers/"+w.router+"/remove_router_interface", alice, map[string]any{"port_id": w.port}, 200, "")

	// Clearing the gateway frees its address and port.
	f.expect("PUT", "/v2.0/routers/"+w.router, alice, map[string]any{"router": map[string]any{"external_gateway_info": map[string]any{"enable_snat": true}}}, 400, "HTTPBadRequest", "network_id")
	// {} clears it, as `openstack router unset --external-gateway` sends.
	r = f.expect("PUT", "/v2.0/routers/"+w.router, alice, map[string]any{"router": map[string]any{"external_gateway_info": map[string]any{}}}, 200, "")["router"].(map[string]any)
	if r["external_gateway_info"] != nil {
		t.Fatalf("gateway after clear: %v", r["external_gateway_info"])
	}
	f.expect("PUT", "/v2.0/routers/"+w.router, alice, map[string]any{"router": map[string]any{"external_gateway_info": nil}}, 200, "")
	if ps := f.expect("GET", "/v2.0/ports?network_id="+w.ext, admin, nil, 200, "")["ports"].([]any); len(ps) != 0 {
		t.Fatalf("ports left on the external network: %v", ps)
	}
	f.expect("DELETE", "/v2.0/routers/"+w.router, alice, nil, 204, "")
}

func TestRouterRefusesWhatItCannotBe(t *testing.T) {
	f := newFixture(t)
	f.expect("POST", "/v2.0/routers", admin, map[string]any{"router": map[string]any{"ha": true}}, 400, "HTTPBadRequest", "Unrecognized attribute(s) 'ha'")
	f.expect("POST", "/v2.0/routers", admin, map[string]any{"router": map[string]any{"ha": false}}, 400, "HTTPBadRequest", "Unrecognized attribute(s) 'ha'")
	f.expect("POST", "/v2.0/routers", alice, map[string]any{"router": map[string]any{"distributed": true}}, 403, "PolicyNotAuthorized")
	f.expect("POST", "/v2.0/routers", alice, map[string]any{"router": map[string]any{"external_gateway_info": "x"}}, 400, "HTTPBadRequest", "external_gateway_info")
	f.expect("POST", "/v2.0/routers", alice, map[string]any{"router": map[string]any{"status": "ACTIVE"}}, 400, "")
	// Only admins make external networks.
	f.expect("POST", "/v2.0/networks", alice, map[string]any{"network": map[string]any{"router:external": true}}, 403, "PolicyNotAuthorized")
}

// TestRouterGatewayOnVLANExternalIsRefused: without uplinks the dataplanes
// forward only on flat external networks, so a gateway on a VLAN one would
// be shown ACTIVE and never forwarded.
func TestRouterGatewayOnVLANExternalIsRefused(t *testing.T) {
	f := newFixture(t)
	f.svc.cfg.Forwarding = true
	vlanExt := f.network(admin, "vlan-public", "router:external", true)["id"].(string)
	f.subnet(admin, vlanExt, "198.51.100.0/24")
	gw := map[string]any{"network_id": vlanExt}
	f.expect("POST", "/v2.0/routers", alice, map[string]any{"router": map[string]any{"name": "r", "external_gateway_info": gw}}, 400, "BadRequest", "VLAN", "flat")
	r := f.mk(alice, "routers", "router", map[string]any{"name": "r"})["id"].(string)
	f.expect("PUT", "/v2.0/routers/"+r, alice, map[string]any{"router": map[string]any{"external_gateway_info": gw}}, 400, "BadRequest", "VLAN", "--uplink")
	if st := f.expect("GET", "/v2.0/routers/"+r, alice, nil, 200, "")["router"].(map[string]any)["status"]; st != "ACTIVE" {
		t.Fatalf("a router without gateway is %v", st)
	}
	// Where the nodes' uplinks carry VLANs to the outside, it is taken.
	f.svc.cfg.VLANExternals = true
	out := f.expect("PUT", "/v2.0/routers/"+r, alice, map[string]any{"router": map[string]any{"external_gateway_info": gw}}, 200, "")["router"].(map[string]any)
	if out["status"] != "ACTIVE" || out["external_gateway_info"] == nil {
		t.Fatalf("a gateway on a VLAN external network with uplinks: %v", out)
	}
	// Were the uplinks gone (a node restarted without), it would not be
	// ACTIVE.
	f.svc.cfg.VLANExternals = false
	if st := f.expect("GET", "/v2.0/routers/"+r, alice, nil, 200, "")["router"].(map[string]any)["status"]; st != "DOWN" {
		t.Fatalf("a VLAN gateway without uplinks is %v", st)
	}
	f.expect("PUT", "/v2.0/routers/"+r, alice, map[string]any{"router": map[string]any{"external_gateway_info": nil}}, 200, "")
	// A flat external network works.
	w := f.l3(alice)
	if st := f.expect("GET", "/v2.0/routers/"+w.router, alice, nil, 200, "")["router"].(map[string]any)["status"]; st != "ACTIVE" {
		t.Fatalf("a router with a gateway on a flat network is %v", st)
	}
}

func TestServiceProvidersAreTheDataplanes(t *testing.T) {
	f := newFixture(t)
	if got := f.expect("GET", "/v2.0/service-providers", alice, nil, 200, "")["service_providers"].([]any); len(got) != 0 {
		t.Fatalf("without forwarding: %v", got)
	}
	f.svc.cfg.Forwarding = true
	got := f.expect("GET", "/v2.0/service-providers", alice, nil, 200, "")["service_providers"].([]any)
	if len(got) != 1 || got[0].(map[string]any)["service_type"] != "L3_ROUTER_NAT" {
		t.Fatalf("with forwarding: %v", got)
	}
}

func TestOverlappingSubnetsOnOneRouter(t *testing.T) {
	f := newFixture(t)
	w := f.l3(alice)
	n2 := f.network(alice, "other")["id"].(string)
	s2 := f.subnet(alice, n2, "10.1.0.0/25")["id"].(string)
	f.expect("PUT", "/v2.0/routers/"+w.router+"/add_router_interface", alice, map[string]any{"subnet_id": s2}, 400, "BadRequest", "overlaps")
	f.expect("PUT", "/v2.0/routers/"+w.router+"/add_router_interface", alice, map[string]any{"subnet_id": w.extSubnet}, 404, "SubnetNotFound")
	f.expect("PUT", "/v2.0/routers/"+w.router+"/add_router_interface", admin, map[string]any{"subnet_id": w.extSubnet}, 400, "BadRequest", "external")
}

func TestFloatingIPLifecycle(t *testing.T) {
	f := newFixture(t)
	w := f.l3(alice)
	// Everyone sees an external network, nobody else's project writes it.
	if n := f.expect("GET", "/v2.0/networks/"+w.ext, bob, nil, 200, "")["network"].(map[string]any); n["router:external"] != true {
		t.Fatalf("external network as bob sees it: %v", n)
	}
	// …but not its subnets, unless it is shared.
	f.expect("GET", "/v2.0/subnets/"+w.extSubnet, bob, nil, 404, "SubnetNotFound")
	if subs := f.expect("GET", "/v2.0/subnets?network_id="+w.ext, bob, nil, 200, "")["subnets"].([]any); len(subs) != 0 {
		t.Fatalf("bob lists the external network's subnets: %v", subs)
	}
	f.expect("POST", "/v2.0/floatingips", alice, map[string]any{"floatingip": map[string]any{"floating_network_id": w.net}}, 400, "BadRequest", "not a valid external network")
	f.expect("POST", "/v2.0/floatingips", alice, map[string]any{"floatingip": map[string]any{"floating_network_id": w.ext, "floating_ip_address": "172.24.4.50"}}, 403, "PolicyNotAuthorized")
	fip := f.mk(alice, "floatingips", "floatingip", map[string]any{"floating_network_id": w.ext})
	if fip["floating_ip_address"] != "172.24.4.3" || fip["port_id"] != nil || fip["status"] != "DOWN" || fip["router_id"] != nil {
		t.Fatalf("new floating IP: %v", fip)
	}
	id := fip["id"].(string)
	f.expect("GET", "/v2.0/floatingips/"+id, bob, nil, 404, "FloatingIPNotFound")
	f.expect("PUT", "/v2.0/floatingips/"+id, bob, map[string]any{"floatingip": map[string]any{"port_id": w.port}}, 404, "FloatingIPNotFound")

	fip = f.expect("PUT", "/v2.0/floatingips/"+id, alice, map[string]any{"floatingip": map[string]any{"port_id": w.port}}, 200, "")["floatingip"].(map[string]any)
	if fip["port_id"] != w.port || fip["fixed_ip_address"] != "10.1.0.2" || fip["router_id"] != w.router {
		t.Fatalf("associated: %v", fip)
	}
	if d := fip["port_details"].(map[string]any); d["network_id"] != w.net {
		t.Fatalf("port details: %v", d)
	}
	// Still DOWN: no node has said it forwards the address.
	if fip["status"] != "DOWN" {
		t.Fatalf("status %v before any node reported", fip["status"])
	}
	if err := f.svc.SetFloatingIPStatus(context.Background(), id, "ACTIVE"); err != nil {
		t.Fatal(err)
	}
	if st := f.expect("GET", "/v2.0/floatingips/"+id, alice, nil, 200, "")["floatingip"].(map[string]any)["status"]; st != "ACTIVE" {
		t.Fatalf("status after the node's report: %v", st)
	}
	// The router's gateway and interface carry the floating IP now.
	f.expect("PUT", "/v2.0/routers/"+w.router+"/remove_router_interface", alice, map[string]any{"subnet_id": w.subnet}, 409, "RouterInterfaceInUseByFloatingIP")
	f.expect("PUT", "/v2.0/routers/"+w.router, alice, map[string]any{"router": map[string]any{"external_gateway_info": nil}}, 409, "RouterExternalGatewayInUseByFloatingIp")
	// One floating IP per fixed address and external network.
	f.expect("POST", "/v2.0/floatingips", alice, map[string]any{"floatingip": map[string]any{"floating_network_id": w.ext, "port_id": w.port}}, 409, "FloatingIPPortAlreadyAssociated")
	// A port going away takes its association with it.
	f.now = f.now.Add(time.Second)
	f.expect("DELETE", "/v2.0/ports/"+w.port, alice, nil, 204, "")
	fip = f.expect("GET", "/v2.0/floatingips/"+id, alice, nil, 200, "")["floatingip"].(map[string]any)
	if fip["port_id"] != nil || fip["status"] != "DOWN" || fip["router_id"] != nil {
		t.Fatalf("after its port went: %v", fip)
	}
	// A port the router does not reach cannot have one.
	n2 := f.network(alice, "unrouted")["id"].(string)
	f.subnet(alice, n2, "10.2.0.0/24")
	p2 := f.port(alice, n2)["id"].(string)
	f.expect("PUT", "/v2.0/floatingips/"+id, alice, map[string]any{"floatingip": map[string]any{"port_id": p2}}, 404, "ExternalGatewayForFloatingIPNotFound")
	// The router's gateway keeps the external network in use.
	f.expect("DELETE", "/v2.0/networks/"+w.ext, admin, nil, 409, "NetworkInUse")
	f.expect("DELETE", "/v2.0/floatingips/"+id, alice, nil, 204, "")
	f.expect("GET", "/v2.0/floatingips/"+id, alice, nil, 404, "FloatingIPNotFound")
	if q := f.expect("GET", "/v2.0/quotas/"+projA+"/details", alice, nil, 200, "")["quota"].(map[string]any); q["floatingip"].(map[string]any)["used"] != 0.0 || q["router"].(map[string]any)["used"] != 1.0 {
		t.Fatalf("quota usage: %v", q)
	}
}

func TestFloatingIPQuota(t *testing.T) {
	f := newFixture(t)
	w := f.l3(alice)
	f.expect("PUT", "/v2.0/quotas/"+projA, admin, map[string]any{"quota": map[string]any{"floatingip": 1, "router": 1}}, 200, "")
	f.mk(alice, "floatingips", "floatingip", map[string]any{"floating_network_id": w.ext})
	f.expect("POST", "/v2.0/floatingips", alice, map[string]any{"floatingip": map[string]any{"floating_network_id": w.ext}}, 409, "OverQuota", "floatingip")
	f.expect("POST", "/v2.0/routers", alice, map[string]any{"router": map[string]any{"name": "second"}}, 409, "OverQuota", "router")
}

type agentHosts []AgentHost

func (a agentHosts) AgentHosts(context.Context) ([]AgentHost, error) { return a, nil }

func TestAgentsAreTheNodes(t *testing.T) {
	f := newFixture(t)
	f.svc.cfg.Agents = agentHosts{{Name: "node2", Up: false}, {Name: "node1", Up: true}}
	agents := f.expect("GET", "/v2.0/agents", admin, nil, 200, "")["agents"].([]any)
	if len(agents) != 4 {
		t.Fatalf("agents: %v", agents)
	}
	first := agents[0].(map[string]any)
	if first["host"] != "node1" || first["alive"] != true || first["agent_type"] != "Open vSwitch agent" {
		t.Fatalf("first agent: %v", first)
	}
	for _, a := range agents {
		if a.(map[string]any)["agent_type"] == "L3 agent" {
			t.Fatalf("an L3 agent is listed while nothing forwards: %v", a)
		}
	}
	down := f.expect("GET", "/v2.0/agents?alive=false", admin, nil, 200, "")["agents"].([]any)
	if len(down) != 2 || down[0].(map[string]any)["host"] != "node2" {
		t.Fatalf("dead agents: %v", down)
	}
	id := first["id"].(string)
	if a := f.expect("GET", "/v2.0/agents/"+id, admin, nil, 200, "")["agent"].(map[string]any); a["id"] != id {
		t.Fatalf("show: %v", a)
	}
	f.expect("GET", "/v2.0/agents/nope", admin, nil, 404, "AgentNotFound")
	// A member sees none, as in Neutron, and finds none by id.
	if agents := f.expect("GET", "/v2.0/agents", alice, nil, 200, "")["agents"].([]any); len(agents) != 0 {
		t.Fatalf("a member sees agents: %v", agents)
	}
	f.expect("GET", "/v2.0/agents/"+id, alice, nil, 404, "AgentNotFound")
	f.svc.cfg.Forwarding = true
	if agents := f.expect("GET", "/v2.0/agents?agent_type=L3+agent", admin, nil, 200, "")["agents"].([]any); len(agents) != 2 {
		t.Fatalf("L3 agents where the dataplane forwards: %v", agents)
	}
}

func TestEnsureExternalIsIdempotent(t *testing.T) {
	f := newFixture(t)
	x := External{Name: "public", Project: projAdm, Physnet: "public", CIDR: netip.MustParsePrefix("172.24.4.0/24"), Gateway: netip.MustParseAddr("172.24.4.1")}
	id, err := f.svc.EnsureExternal(context.Background(), x)
	if err != nil {
		t.Fatal(err)
	}
	again, err := f.svc.EnsureExternal(context.Background(), x)
	if err != nil || again != id {
		t.Fatalf("second ensure: %q %v, want %q", again, err, id)
	}
	n := f.expect("GET", "/v2.0/networks/"+id, admin, nil, 200, "")["network"].(map[string]any)
	if n["router:external"] != true || n["provider:network_type"] != "flat" || n["provider:physical_network"] != "public" || len(n["subnets"].([]any)) != 1 {
		t.Fatalf("public: %v", n)
	}
	// A member routes through it and takes floating IPs from it.
	r := f.mk(alice, "routers", "router", map[string]any{"external_gateway_info": map[string]any{"network_id": id}})
	if ip := r["external_gateway_info"].(map[string]any)["external_fixed_ips"].([]any)[0].(map[string]any)["ip_address"]; ip != "172.24.4.2" {
		t.Fatalf("gateway address %v", ip)
	}
	// A second flat network on the same physical network cannot be.
	f.svc.cfg.Flat = []string{"public"}
	f.expect("POST", "/v2.0/networks", admin, map[string]any{"network": map[string]any{"provider:network_type": "flat", "provider:physical_network": "public"}}, 409, "FlatNetworkInUse")
	f.expect("POST", "/v2.0/networks", admin, map[string]any{"network": map[string]any{"provider:network_type": "flat", "provider:physical_network": "elsewhere"}}, 400, "InvalidInput")
}

// TestExternalNetworkGoesWithItsUnusedFloatingIPs: an external network
// with floating IPs nothing uses can be deleted, and they go with it; one
// associated to a port keeps it.
func TestExternalNetworkGoesWithItsUnusedFloatingIPs(t *testing.T) {
	f := newFixture(t)
	w := f.l3(alice)
	used := f.mk(alice, "floatingips", "floatingip", map[string]any{"floating_network_id": w.ext, "port_id": w.port})["id"].(string)
	ext2 := f.network(admin, "public2", "router:external", true)["id"].(string)
	f.subnet(admin, ext2, "172.25.0.0/24")
	unused := f.mk(admin, "floatingips", "floatingip", map[string]any{"floating_network_id": ext2})["id"].(string)
	f.expect("DELETE", "/v2.0/networks/"+ext2, admin, nil, 204, "")
	f.expect("GET", "/v2.0/floatingips/"+unused, admin, nil, 404, "FloatingIPNotFound")
	f.expect("PUT", "/v2.0/routers/"+w.router, alice, map[string]any{"router": map[string]any{"external_gateway_info": nil}}, 409, "RouterExternalGatewayInUseByFloatingIp")
	f.expect("DELETE", "/v2.0/floatingips/"+used, alice, nil, 204, "")
}

// TestRouterGatewayTakesAnIPv6Address: on an external network with an
// IPv6 subnet the gateway port holds an address of it beside the IPv4
// one, as Neutron gives: the router routes its IPv6 subnets out by it.
func TestRouterGatewayTakesAnIPv6Address(t *testing.T) {
	f := newFixture(t)
	ext := f.network(admin, "public", "router:external", true, "provider:network_type", "flat", "provider:physical_network", "public")["id"].(string)
	f.subnet(admin, ext, "172.24.4.0/24")
	f.subnet(admin, ext, "2001:db8:ff::/64")
	r := f.mk(alice, "routers", "router", map[string]any{"name": "r6", "external_gateway_info": map[string]any{"network_id": ext}})
	var got []string
	for _, ip := range r["external_gateway_info"].(map[string]any)["external_fixed_ips"].([]any) {
		got = append(got, ip.(map[string]any)["ip_address"].(string))
	}
	if len(got) != 2 || got[0] != "172.24.4.2" || !netip.MustParsePrefix("2001:db8:ff::/64").Contains(netip.MustParseAddr(got[1])) {
		t.Fatalf("gateway addresses %v, want 172.24.4.2 and one of 2001:db8:ff::/64", got)
	}
}

// A router's gateway on an external network with no subnet is made
// without an address, as Neutron makes it, and cleared like any other;
// a floating IP there is still refused (it needs an IPv4 subnet).
func TestRouterGatewayOnExternalNetworkWithoutSubnet(t *testing.T) {
	f := newFixture(t)
	ext := f.network(admin, "bare-ext", "router:external", true, "provider:network_type", "flat", "provider:physical_network", "public")["id"].(string)
	r := f.mk(admin, "routers", "router", map[string]any{"name": "r", "external_gateway_info": map[string]any{"network_id": ext}})
	gw, _ := r["external_gateway_info"].(map[string]any)
	if gw == nil || gw["network_id"] != ext || len(gw["external_fixed_ips"].([]any)) != 0 {
		t.Fatalf("router with a gateway on a network without subnets: %v", r)
	}
	ports := f.expect("GET", "/v2.0/ports?device_owner=network:router_gateway&network_id="+ext, admin, nil, 200, "")["ports"].([]any)
	if len(ports) != 1 || len(ports[0].(map[string]any)["fixed_ips"].([]any)) != 0 {
		t.Fatalf("gateway ports: %v", ports)
	}
	f.expect("POST", "/v2.0/floatingips", admin, map[string]any{"floatingip": map[string]any{"floating_network_id": ext}}, 400, "BadRequest", "No IPv4 subnet")
	id := r["id"].(string)
	f.expect("PUT", "/v2.0/routers/"+id, admin, map[string]any{"router": map[string]any{"external_gateway_info": map[string]any{}}}, 200, "")
	if ports := f.expect("GET", "/v2.0/ports?network_id="+ext, admin, nil, 200, "")["ports"].([]any); len(ports) != 0 {
		t.Fatalf("ports left after clearing the gateway: %v", ports)
	}
	f.expect("DELETE", "/v2.0/routers/"+id, admin, nil, 204, "")
}
