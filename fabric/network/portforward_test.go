package network

import (
	"fmt"
	"strings"
	"testing"
)

func pfBody(fields map[string]any) map[string]any {
	return map[string]any{"port_forwarding": fields}
}

// pfWorld is an l3World with a floating IP of alice's, free of any port.
func (f *fixture) pfWorld() (l3World, string, string) {
	w := f.l3(alice)
	fip := f.mk(alice, "floatingips", "floatingip", map[string]any{"floating_network_id": w.ext})["id"].(string)
	ip := ips(f.expect("GET", "/v2.0/ports/"+w.port, alice, nil, 200, "")["port"].(map[string]any))[0]
	return w, fip, ip
}

// TestPortForwardingLifecycle covers the API as Neutron's reference
// words it: fields, create, list, show, update, delete, and the router
// the floating IP is set on while it has forwardings.
func TestPortForwardingLifecycle(t *testing.T) {
	f := newFixture(t)
	for _, ext := range []string{"floating-ip-port-forwarding", "floating-ip-port-forwarding-description", "expose-port-forwarding-in-fip"} {
		f.expect("GET", "/v2.0/extensions/"+ext, alice, nil, 200, "")
	}
	w, fip, ip := f.pfWorld()
	base := "/v2.0/floatingips/" + fip + "/port_forwardings"
	pf := f.expect("POST", base, alice, pfBody(map[string]any{"protocol": "tcp", "external_port": 2222, "internal_port": 22,
		"internal_port_id": w.port, "description": "ssh"}), 201, "")["port_forwarding"].(map[string]any)
	for k, want := range map[string]any{"protocol": "tcp", "external_port": 2222, "internal_port": 22, "internal_ip_address": ip,
		"internal_port_id": w.port, "description": "ssh"} {
		if fmt.Sprint(pf[k]) != fmt.Sprint(want) {
			t.Errorf("forwarding %s = %v, want %v", k, pf[k], want)
		}
	}
	id := pf["id"].(string)
	// The floating IP is now set on the router the forwarding goes through.
	got := f.expect("GET", "/v2.0/floatingips/"+fip, alice, nil, 200, "")["floatingip"].(map[string]any)
	if got["router_id"] != w.router || got["port_id"] != nil {
		t.Errorf("floating IP with a forwarding: router %v port %v", got["router_id"], got["port_id"])
	}
	// expose-port-forwarding-in-fip
	if fmt.Sprint(got["port_forwardings"]) != fmt.Sprintf("[map[external_port:2222 internal_ip_address:%s internal_port:22 protocol:tcp]]", ip) {
		t.Errorf("floating IP's port_forwardings: %v", got["port_forwardings"])
	}
	f.mk(alice, "floatingips/"+fip+"/port_forwardings", "port_forwarding", map[string]any{"protocol": "udp", "external_port": 2222, "internal_port": 53, "internal_port_id": w.port})
	list := f.expect("GET", base+"?protocol=tcp", alice, nil, 200, "")["port_forwardings"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["id"] != id {
		t.Errorf("list ?protocol=tcp: %v", list)
	}
	if all := f.expect("GET", base, alice, nil, 200, "")["port_forwardings"].([]any); len(all) != 2 {
		t.Errorf("list: %v", all)
	}
	got = f.expect("PUT", base+"/"+id, alice, pfBody(map[string]any{"external_port": 2200, "description": "d"}), 200, "")["port_forwarding"].(map[string]any)
	if fmt.Sprint(got["external_port"]) != "2200" || got["description"] != "d" || fmt.Sprint(got["internal_port"]) != "22" {
		t.Errorf("updated: %v", got)
	}
	if got := f.expect("GET", base+"/"+id, alice, nil, 200, "")["port_forwarding"].(map[string]any); fmt.Sprint(got["external_port"]) != "2200" {
		t.Errorf("show after update: %v", got)
	}
	f.expect("PUT", base+"/"+id, alice, pfBody(map[string]any{"id": "x"}), 400, "HTTPBadRequest", "id")
	f.expect("GET", base+"/nope", alice, nil, 404, "PortForwardingNotFound")
	for _, pf := range f.expect("GET", base, alice, nil, 200, "")["port_forwardings"].([]any) {
		f.expect("DELETE", base+"/"+pf.(map[string]any)["id"].(string), alice, nil, 204, "")
	}
	f.expect("GET", base+"/"+id, alice, nil, 404, "PortForwardingNotFound")
	// With none left the floating IP is free of the router again.
	if got := f.expect("GET", "/v2.0/floatingips/"+fip, alice, nil, 200, "")["floatingip"].(map[string]any); got["router_id"] != nil {
		t.Errorf("floating IP without forwardings: router %v", got["router_id"])
	}
}

// TestPortForwardingRules checks each of Neutron's rules, one request
// each.
func TestPortForwardingRules(t *testing.T) {
	f := newFixture(t)
	w, fip, ip := f.pfWorld()
	base := "/v2.0/floatingips/" + fip + "/port_forwardings"
	ok := map[string]any{"protocol": "tcp", "external_port": 8080, "internal_port": 80, "internal_port_id": w.port}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for a, b := range ok {
			m[a] = b
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return pfBody(m)
	}
	// Bad input: 400 naming the field.
	for field, v := range map[string]any{"external_port": 0, "internal_port": 65536} {
		f.expect("POST", base, alice, with(field, v), 400, "HTTPBadRequest", field)
	}
	f.expect("POST", base, alice, with("external_port", "x"), 400, "HTTPBadRequest", "external_port")
	f.expect("POST", base, alice, with("protocol", "icmp"), 400, "HTTPBadRequest", "protocol")
	f.expect("POST", base, alice, with("internal_ip_address", "10.1.0.999"), 400, "HTTPBadRequest", "internal_ip_address")
	for _, field := range []string{"protocol", "external_port", "internal_port", "internal_port_id"} {
		f.expect("POST", base, alice, with(field, nil), 400, "HTTPBadRequest", field)
	}
	f.expect("POST", base, alice, with("bogus", 1), 400, "HTTPBadRequest", "bogus")
	// The internal address must be the port's.
	f.expect("POST", base, alice, with("internal_ip_address", "10.1.0.200"), 400, "BadRequest", "not suitable")
	// Another project sees neither the floating IP nor its forwardings;
	// a reader of the project may not write.
	f.expect("POST", base, bob, pfBody(ok), 404, "FloatingIPNotFound")
	f.expect("GET", base, bob, nil, 404, "FloatingIPNotFound")
	f.expect("POST", base, carol, pfBody(ok), 403, "PolicyNotAuthorized")
	// The internal port must be on a subnet routed to the floating IP's
	// network.
	n2 := f.network(alice, "unrouted")["id"].(string)
	f.subnet(alice, n2, "10.2.0.0/24")
	p2 := f.port(alice, n2)["id"].(string)
	f.expect("POST", base, alice, with("internal_port_id", p2), 400, "BadRequest", "not reachable")

	pf := f.expect("POST", base, alice, pfBody(ok), 201, "")["port_forwarding"].(map[string]any)
	if pf["internal_ip_address"] != ip {
		t.Errorf("internal address %v, want the port's %s", pf["internal_ip_address"], ip)
	}
	// Duplicates: the floating IP's protocol and external port, the
	// internal socket's protocol and port.
	f.expect("POST", base, alice, with("internal_port", 81), 400, "BadRequest", "duplicate")
	f.expect("POST", base, alice, with("external_port", 8081), 400, "BadRequest", "duplicate")
	f.mk(alice, "floatingips/"+fip+"/port_forwardings", "port_forwarding", map[string]any{"protocol": "udp", "external_port": 8080, "internal_port": 80, "internal_port_id": w.port})
	second := f.mk(alice, "floatingips/"+fip+"/port_forwardings", "port_forwarding", map[string]any{"protocol": "tcp", "external_port": 8081, "internal_port": 81, "internal_port_id": w.port})
	f.expect("PUT", base+"/"+second["id"].(string), alice, pfBody(map[string]any{"external_port": 8080}), 400, "BadRequest", "duplicate")
	f.expect("PUT", base+"/"+second["id"].(string), alice, pfBody(map[string]any{"external_port": 0}), 400, "HTTPBadRequest", "external_port")
	// A reader of the project may see, not change.
	f.expect("GET", base+"/"+second["id"].(string), carol, nil, 200, "")
	f.expect("PUT", base+"/"+second["id"].(string), carol, pfBody(map[string]any{"description": "x"}), 403, "PolicyNotAuthorized")
	f.expect("DELETE", base+"/"+second["id"].(string), carol, nil, 403, "PolicyNotAuthorized")
	f.expect("DELETE", base+"/"+second["id"].(string), bob, nil, 404, "FloatingIPNotFound")

	// A floating IP with forwardings cannot be associated with a port.
	f.expect("PUT", "/v2.0/floatingips/"+fip, alice, map[string]any{"floatingip": map[string]any{"port_id": w.port}}, 409, "FipInUseByPortForwarding")
	// One associated with a port cannot get forwardings.
	p3 := f.port(alice, w.net)["id"].(string)
	bound := f.mk(alice, "floatingips", "floatingip", map[string]any{"floating_network_id": w.ext, "port_id": p3})["id"].(string)
	f.expect("POST", "/v2.0/floatingips/"+bound+"/port_forwardings", alice, with("internal_port_id", p3), 409, "FloatingIPPortAlreadyAssociated")
	// A port that has a floating IP of its own is not forwarded to.
	f.expect("POST", base, alice, pfBody(map[string]any{"protocol": "tcp", "external_port": 9000, "internal_port": 90, "internal_port_id": p3}), 409, "PortHasBindingFloatingIP")
}

// Forwardings go with their floating IP and with their internal port.
func TestPortForwardingCascades(t *testing.T) {
	f := newFixture(t)
	w, fip, _ := f.pfWorld()
	p2 := f.port(alice, w.net)["id"].(string)
	base := "/v2.0/floatingips/" + fip + "/port_forwardings"
	f.mk(alice, "floatingips/"+fip+"/port_forwardings", "port_forwarding", map[string]any{"protocol": "tcp", "external_port": 1, "internal_port": 1, "internal_port_id": p2})
	f.expect("DELETE", "/v2.0/ports/"+p2, alice, nil, 204, "")
	if got := f.expect("GET", base, alice, nil, 200, "")["port_forwardings"].([]any); len(got) != 0 {
		t.Errorf("forwardings to a deleted port: %v", got)
	}
	if got := f.expect("GET", "/v2.0/floatingips/"+fip, alice, nil, 200, "")["floatingip"].(map[string]any); got["router_id"] != nil {
		t.Errorf("floating IP keeps router %v with no forwardings", got["router_id"])
	}
	// A port that loses the forwarded address loses the forwarding.
	p3 := f.port(alice, w.net)["id"].(string)
	f.mk(alice, "floatingips/"+fip+"/port_forwardings", "port_forwarding", map[string]any{"protocol": "tcp", "external_port": 3, "internal_port": 3, "internal_port_id": p3})
	f.expect("PUT", "/v2.0/ports/"+p3, alice, map[string]any{"port": map[string]any{"fixed_ips": []any{map[string]any{"subnet_id": w.subnet, "ip_address": "10.1.0.99"}}}}, 200, "")
	if got := f.expect("GET", base, alice, nil, 200, "")["port_forwardings"].([]any); len(got) != 0 {
		t.Errorf("forwardings to an address the port no longer has: %v", got)
	}
	f.mk(alice, "floatingips/"+fip+"/port_forwardings", "port_forwarding", map[string]any{"protocol": "tcp", "external_port": 1, "internal_port": 1, "internal_port_id": w.port})
	// The router's interface and gateway stay while a forwarding uses them.
	f.expect("PUT", "/v2.0/routers/"+w.router+"/remove_router_interface", alice, map[string]any{"subnet_id": w.subnet}, 409, "RouterInterfaceInUseByFloatingIP")
	f.expect("PUT", "/v2.0/routers/"+w.router, alice, map[string]any{"router": map[string]any{"external_gateway_info": map[string]any{}}}, 409, "RouterExternalGatewayInUseByFloatingIp")
	f.expect("DELETE", "/v2.0/floatingips/"+fip, alice, nil, 204, "")
	v, err := Load(f.local.Local())
	if err != nil {
		t.Fatal(err)
	}
	if len(v.PortForwardings) != 0 {
		t.Errorf("forwardings of a deleted floating IP: %v", v.PortForwardings)
	}
	// The router is free to go now.
	f.expect("PUT", "/v2.0/routers/"+w.router+"/remove_router_interface", alice, map[string]any{"subnet_id": w.subnet}, 200, "")
}

// TestPortForwardingRanges covers floating-ip-port-forwarding-port-ranges:
// a range forwards as many ports, shows as ranges (single ports too), may
// not overlap another of the same floating IP or internal socket, and its
// sides are of one size.
func TestPortForwardingRanges(t *testing.T) {
	f := newFixture(t)
	f.expect("GET", "/v2.0/extensions/floating-ip-port-forwarding-port-ranges", alice, nil, 200, "")
	w, fip, _ := f.pfWorld()
	base := "/v2.0/floatingips/" + fip + "/port_forwardings"
	pf := f.expect("POST", base, alice, pfBody(map[string]any{"protocol": "tcp", "external_port_range": "1200:1299",
		"internal_port_range": "2200:2299", "internal_port_id": w.port}), 201, "")["port_forwarding"].(map[string]any)
	if pf["external_port_range"] != "1200:1299" || pf["internal_port_range"] != "2200:2299" || pf["external_port"] != nil || pf["internal_port"] != nil {
		t.Errorf("range forwarding: %v", pf)
	}
	id := pf["id"].(string)
	single := f.mk(alice, "floatingips/"+fip+"/port_forwardings", "port_forwarding", map[string]any{"protocol": "tcp", "external_port": 22,
		"internal_port": 22, "internal_port_id": w.port})
	if single["external_port_range"] != "22:22" || fmt.Sprint(single["external_port"]) != "22" {
		t.Errorf("single port forwarding: %v", single)
	}
	got := f.expect("GET", "/v2.0/floatingips/"+fip, alice, nil, 200, "")["floatingip"].(map[string]any)
	if !strings.Contains(fmt.Sprint(got["port_forwardings"]), "external_port_range:1200:1299") {
		t.Errorf("floating IP's port_forwardings: %v", got["port_forwardings"])
	}
	body := func(kv ...any) map[string]any {
		m := map[string]any{"protocol": "tcp", "internal_port_id": w.port}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return pfBody(m)
	}
	// Overlaps, on either side.
	f.expect("POST", base, alice, body("external_port_range", "1290:1300", "internal_port_range", "3290:3300"), 400, "BadRequest", "duplicate")
	f.expect("POST", base, alice, body("external_port", 1250, "internal_port", 80), 400, "BadRequest", "duplicate")
	f.expect("POST", base, alice, body("external_port", 80, "internal_port", 2299), 400, "BadRequest", "duplicate")
	// Bad input: 400 naming the field.
	for field, b := range map[string]map[string]any{
		"internal_port_range": body("external_port_range", "3000:3009", "internal_port_range", "4000:4004"),
		"external_port_range": body("external_port", 3000, "external_port_range", "3000:3001", "internal_port", 1),
	} {
		f.expect("POST", base, alice, b, 400, "HTTPBadRequest", field)
	}
	for _, bad := range []any{"x", "5:3", "0:10", "1:2000", "65535:65536", 7} {
		f.expect("POST", base, alice, body("external_port_range", bad, "internal_port_range", "1:10"), 400, "HTTPBadRequest", "external_port_range")
	}
	f.expect("POST", base, alice, body("internal_port", 1), 400, "HTTPBadRequest", "external_port")
	// An update moves a range, keeping its size.
	got = f.expect("PUT", base+"/"+id, alice, pfBody(map[string]any{"external_port_range": "5000:5099"}), 200, "")["port_forwarding"].(map[string]any)
	if got["external_port_range"] != "5000:5099" || got["internal_port_range"] != "2200:2299" {
		t.Errorf("updated range: %v", got)
	}
	f.expect("PUT", base+"/"+id, alice, pfBody(map[string]any{"external_port": 5000}), 400, "HTTPBadRequest", "external_port")
	// Ranges of one port are single ports again.
	got = f.expect("PUT", base+"/"+id, alice, pfBody(map[string]any{"external_port_range": "6000", "internal_port_range": "6000:6000"}), 200, "")["port_forwarding"].(map[string]any)
	if fmt.Sprint(got["external_port"]) != "6000" || fmt.Sprint(got["internal_port"]) != "6000" {
		t.Errorf("range of one port: %v", got)
	}
}
