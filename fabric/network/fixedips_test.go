package network

import "testing"

// A port may ask for its subnet's gateway address, as in Neutron: a port
// of one's own holding the gateway address is the usual way to give a
// router an interface by port (Terraform's router_interface with
// port_id). The address is still never handed out unasked, and once a
// port holds it a router interface by subnet cannot take it.
func TestPortMayHoldTheGatewayAddress(t *testing.T) {
	f := newFixture(t)
	nid := f.network(alice, "n")["id"].(string)
	sid := f.subnet(alice, nid, "192.168.199.0/24")["id"].(string)
	if got := ips(f.port(alice, nid)); len(got) != 1 || got[0] == "192.168.199.1" {
		t.Fatalf("an automatic address is the gateway's: %v", got)
	}
	gw := f.port(alice, nid, "fixed_ips", []map[string]any{{"subnet_id": sid, "ip_address": "192.168.199.1"}})
	if got := ips(gw); len(got) != 1 || got[0] != "192.168.199.1" {
		t.Fatalf("port asking for the gateway address got %v", got)
	}
	// A second port cannot have it, nor a router interface by subnet.
	f.expect("POST", "/v2.0/ports", alice, map[string]any{"port": map[string]any{"network_id": nid,
		"fixed_ips": []map[string]any{{"ip_address": "192.168.199.1"}}}}, 409, "IpAddressAlreadyAllocated")
	r := f.mk(alice, "routers", "router", map[string]any{"name": "r"})["id"].(string)
	f.expect("PUT", "/v2.0/routers/"+r+"/add_router_interface", alice, map[string]any{"subnet_id": sid}, 409, "IpAddressAlreadyAllocated")
	// The port becomes the router's interface, keeping its address.
	f.expect("PUT", "/v2.0/routers/"+r+"/add_router_interface", alice, map[string]any{"port_id": gw["id"]}, 200, "")
	p := f.expect("GET", "/v2.0/ports/"+gw["id"].(string), alice, nil, 200, "")["port"].(map[string]any)
	if p["device_id"] != r || ips(p)[0] != "192.168.199.1" {
		t.Fatalf("interface port: %v", p)
	}
}

// A fixed IP naming a subnet that does not exist is 404 SubnetNotFound,
// as in Neutron (which looks the subnet up before saying it is another
// network's): clients trying subnets in turn, such as a router's or a
// floating IP's list of external subnets, take a 404 as "try the next"
// and stop at a 400. A subnet that exists on another network stays 400.
func TestFixedIPOnMissingSubnetIsNotFound(t *testing.T) {
	f := newFixture(t)
	w := f.l3(alice)
	f.expect("POST", "/v2.0/ports", alice, map[string]any{"port": map[string]any{"network_id": w.net,
		"fixed_ips": []map[string]any{{"subnet_id": w.ext}}}}, 404, "SubnetNotFound", w.ext)
	f.expect("POST", "/v2.0/ports", alice, map[string]any{"port": map[string]any{"network_id": w.net,
		"fixed_ips": []map[string]any{{"subnet_id": w.extSubnet}}}}, 400, "InvalidInput", "invalid subnet")
	f.expect("POST", "/v2.0/routers", admin, map[string]any{"router": map[string]any{"name": "r2",
		"external_gateway_info": map[string]any{"network_id": w.ext, "external_fixed_ips": []map[string]any{{"subnet_id": w.ext}}}}}, 404, "SubnetNotFound")
	f.expect("POST", "/v2.0/floatingips", alice, map[string]any{"floatingip": map[string]any{"floating_network_id": w.ext,
		"subnet_id": w.ext}}, 404, "SubnetNotFound")
	// The one that exists is taken.
	f.mk(alice, "floatingips", "floatingip", map[string]any{"floating_network_id": w.ext, "subnet_id": w.extSubnet})
}

// binding:profile is kept as given and shown back; only an admin sets
// one that is not empty (Neutron's policy), {} or null clears it, and
// what is not a dictionary or is too long is 400 naming the field.
func TestPortBindingProfile(t *testing.T) {
	f := newFixture(t)
	nid := f.network(admin, "n")["id"].(string)
	prof := map[string]any{"local_link_information": []any{map[string]any{"switch_id": "12:34:56:78:9A:BC", "port_id": "Ethernet3/4"}}, "vlan_type": "allowed"}
	pt := f.port(admin, nid, "binding:host_id", "localhost", "binding:profile", prof)
	id := pt["id"].(string)
	got := f.expect("GET", "/v2.0/ports/"+id, admin, nil, 200, "")["port"].(map[string]any)["binding:profile"].(map[string]any)
	if got["vlan_type"] != "allowed" || len(got["local_link_information"].([]any)) != 1 {
		t.Fatalf("profile read back: %v", got)
	}
	f.expect("PUT", "/v2.0/ports/"+id, admin, map[string]any{"port": map[string]any{"binding:profile": map[string]any{"a": "b"}}}, 200, "")
	got = f.expect("GET", "/v2.0/ports/"+id, admin, nil, 200, "")["port"].(map[string]any)["binding:profile"].(map[string]any)
	if len(got) != 1 || got["a"] != "b" {
		t.Fatalf("profile after update: %v", got)
	}
	f.expect("PUT", "/v2.0/ports/"+id, admin, map[string]any{"port": map[string]any{"binding:profile": map[string]any{}}}, 200, "")
	got = f.expect("GET", "/v2.0/ports/"+id, admin, nil, 200, "")["port"].(map[string]any)["binding:profile"].(map[string]any)
	if len(got) != 0 {
		t.Fatalf("profile after clearing: %v", got)
	}
	f.expect("PUT", "/v2.0/ports/"+id, admin, map[string]any{"port": map[string]any{"binding:profile": "x"}}, 400, "HTTPBadRequest", "binding:profile")
	long := map[string]any{"k": string(make([]byte, 5000))}
	f.expect("PUT", "/v2.0/ports/"+id, admin, map[string]any{"port": map[string]any{"binding:profile": long}}, 400, "HTTPBadRequest", "binding:profile")
	own := f.network(alice, "mine")["id"].(string)
	f.expect("POST", "/v2.0/ports", alice, map[string]any{"port": map[string]any{"network_id": own, "binding:profile": map[string]any{"a": 1}}}, 403, "PolicyNotAuthorized")
	f.port(alice, own, "binding:profile", map[string]any{})
}

// A port's fixed_ips are listed ordered by address, then subnet, as
// Neutron lists them, not in the order they were asked for.
func TestPortFixedIPsOrdered(t *testing.T) {
	f := newFixture(t)
	nid := f.network(alice, "n")["id"].(string)
	sid := f.subnet(alice, nid, "192.168.199.0/24")["id"].(string)
	pt := f.port(alice, nid, "fixed_ips", []map[string]any{{"subnet_id": sid, "ip_address": "192.168.199.24"}, {"subnet_id": sid, "ip_address": "192.168.199.23"}})
	if got := ips(pt); len(got) != 2 || got[0] != "192.168.199.23" || got[1] != "192.168.199.24" {
		t.Fatalf("fixed_ips %v, want .23 then .24", got)
	}
	got := f.expect("GET", "/v2.0/ports?id="+pt["id"].(string), alice, nil, 200, "")["ports"].([]any)
	if l := ips(got[0].(map[string]any)); l[0] != "192.168.199.23" {
		t.Fatalf("listed fixed_ips %v", l)
	}
}
