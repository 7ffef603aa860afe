package network

import (
	"fmt"
	"testing"
)

// TestAddressGroups: create (addresses normalized and deduplicated),
// project scoping, add_addresses / remove_addresses with Neutron's
// errors, bad input naming the field, rules naming a group, and the 409
// for deleting a group a rule uses.
func TestAddressGroups(t *testing.T) {
	f := newFixture(t)
	ag := f.mk(alice, "address-groups", "address_group", map[string]any{"name": "office", "description": "d",
		"addresses": []string{"10.1.2.3/24", "192.168.0.5/32", "10.1.2.0/24", "2001:db8::1/32"}})
	id := ag["id"].(string)
	if fmt.Sprint(ag["addresses"]) != "[10.1.2.0/24 192.168.0.5/32 2001:db8::/32]" || ag["project_id"] != projA ||
		ag["name"] != "office" || ag["description"] != "d" || ag["revision_number"] != 0.0 {
		t.Fatalf("created %v", ag)
	}
	f.expect("GET", "/v2.0/address-groups/"+id, bob, nil, 404, "AddressGroupNotFound", id)
	f.expect("PUT", "/v2.0/address-groups/"+id+"/add_addresses", bob, map[string]any{"addresses": []string{"10.9.0.0/16"}}, 404, "AddressGroupNotFound")
	f.expect("GET", "/v2.0/address-groups/"+id, admin, nil, 200, "")
	f.expect("GET", "/v2.0/address-groups/"+id, carol, nil, 200, "")
	f.expect("PUT", "/v2.0/address-groups/"+id, carol, map[string]any{"address_group": map[string]any{"name": "x"}}, 403, "PolicyNotAuthorized")
	if l := f.expect("GET", "/v2.0/address-groups", bob, nil, 200, "")["address_groups"].([]any); len(l) != 0 {
		t.Errorf("bob lists %v", l)
	}
	if l := f.expect("GET", "/v2.0/address-groups?name=office", alice, nil, 200, "")["address_groups"].([]any); len(l) != 1 {
		t.Errorf("alice lists %v", l)
	}

	up := f.expect("PUT", "/v2.0/address-groups/"+id, alice, map[string]any{"address_group": map[string]any{"name": "hq"}}, 200, "")["address_group"].(map[string]any)
	if up["name"] != "hq" || up["revision_number"] != 1.0 {
		t.Errorf("updated %v", up)
	}
	got := f.expect("PUT", "/v2.0/address-groups/"+id+"/add_addresses", alice, map[string]any{"addresses": []string{"10.9.0.1/16"}}, 200, "")["address_group"].(map[string]any)
	if fmt.Sprint(got["addresses"]) != "[10.1.2.0/24 10.9.0.0/16 192.168.0.5/32 2001:db8::/32]" {
		t.Errorf("after add: %v", got["addresses"])
	}
	// The body wrapped as an update would be is read the same.
	got = f.expect("PUT", "/v2.0/address-groups/"+id+"/remove_addresses", alice,
		map[string]any{"address_group": map[string]any{"addresses": []string{"192.168.0.5", "2001:db8::/32"}}}, 200, "")["address_group"].(map[string]any)
	if fmt.Sprint(got["addresses"]) != "[10.1.2.0/24 10.9.0.0/16]" {
		t.Errorf("after remove: %v", got["addresses"])
	}
	f.expect("PUT", "/v2.0/address-groups/"+id+"/add_addresses", alice, map[string]any{"addresses": []string{"10.9.0.0/16"}}, 400, "AddressesAlreadyExist", "10.9.0.0/16")
	f.expect("PUT", "/v2.0/address-groups/"+id+"/remove_addresses", alice, map[string]any{"addresses": []string{"10.8.0.0/16"}}, 404, "AddressesNotFound", "10.8.0.0/16")

	bad := map[string]struct {
		path   string
		method string
		body   map[string]any
		status int
		typ    string
		msg    string
	}{
		"a bare address":    {"", "POST", map[string]any{"address_group": map[string]any{"addresses": []string{"10.20.30.40"}}}, 400, "HTTPBadRequest", "10.20.30.40/32"},
		"not a CIDR":        {"", "POST", map[string]any{"address_group": map[string]any{"addresses": []string{"10.0.0.0/33"}}}, 400, "HTTPBadRequest", "addresses"},
		"not a list":        {"", "POST", map[string]any{"address_group": map[string]any{"addresses": "10.0.0.0/8"}}, 400, "HTTPBadRequest", "addresses"},
		"not strings":       {"", "POST", map[string]any{"address_group": map[string]any{"addresses": []any{7}}}, 400, "HTTPBadRequest", "addresses"},
		"unknown attribute": {"", "POST", map[string]any{"address_group": map[string]any{"colour": "red"}}, 400, "HTTPBadRequest", "colour"},
		"addresses by PUT":  {"/" + id, "PUT", map[string]any{"address_group": map[string]any{"addresses": []string{"10.0.0.0/8"}}}, 400, "HTTPBadRequest", "addresses"},
		"add no addresses":  {"/" + id + "/add_addresses", "PUT", map[string]any{"address": []string{"10.0.0.0/8"}}, 400, "HTTPBadRequest", "address"},
		"add a bad one":     {"/" + id + "/add_addresses", "PUT", map[string]any{"addresses": []string{"nope"}}, 400, "HTTPBadRequest", "addresses"},
		"remove null":       {"/" + id + "/remove_addresses", "PUT", map[string]any{"addresses": nil}, 400, "HTTPBadRequest", "addresses"},
	}
	for name, tc := range bad {
		t.Run(name, func(t *testing.T) {
			f.expect(tc.method, "/v2.0/address-groups"+tc.path, alice, tc.body, tc.status, tc.typ, tc.msg)
		})
	}
	if got := f.expect("GET", "/v2.0/address-groups/"+id, alice, nil, 200, "")["address_group"].(map[string]any); fmt.Sprint(got["addresses"]) != "[10.1.2.0/24 10.9.0.0/16]" {
		t.Errorf("refused requests changed the addresses: %v", got["addresses"])
	}

	// Rules: remote_address_group_id is shown back, exclusive with the
	// other remotes, and keeps the group from being deleted.
	g := f.mk(alice, "security-groups", "security_group", map[string]any{"name": "g"})["id"].(string)
	rule := func(extra map[string]any) map[string]any {
		m := map[string]any{"security_group_id": g, "direction": "ingress", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22}
		for k, v := range extra {
			m[k] = v
		}
		return map[string]any{"security_group_rule": m}
	}
	f.expect("POST", "/v2.0/security-group-rules", alice, rule(map[string]any{"remote_address_group_id": id, "remote_ip_prefix": "10.0.0.0/8"}), 400, "SecurityGroupMultipleRemoteEntites", "remote_address_group_id")
	f.expect("POST", "/v2.0/security-group-rules", alice, rule(map[string]any{"remote_address_group_id": id, "remote_group_id": g}), 400, "SecurityGroupMultipleRemoteEntites", "remote_group_id")
	f.expect("POST", "/v2.0/security-group-rules", bob, rule(map[string]any{"remote_address_group_id": id}), 404, "")
	r := f.expect("POST", "/v2.0/security-group-rules", alice, rule(map[string]any{"remote_address_group_id": id}), 201, "")["security_group_rule"].(map[string]any)
	if r["remote_address_group_id"] != id || r["remote_ip_prefix"] != nil || r["remote_group_id"] != nil {
		t.Errorf("rule %v", r)
	}
	f.expect("POST", "/v2.0/security-group-rules", alice, rule(map[string]any{"remote_address_group_id": id}), 409, "SecurityGroupRuleExists")
	// Another remote: not the same rule.
	f.expect("POST", "/v2.0/security-group-rules", alice, rule(map[string]any{"remote_ip_prefix": "10.0.0.0/8"}), 201, "")
	f.expect("DELETE", "/v2.0/address-groups/"+id, alice, nil, 409, "AddressGroupInUse", id)
	f.expect("DELETE", "/v2.0/security-group-rules/"+r["id"].(string), alice, nil, 204, "")
	f.expect("DELETE", "/v2.0/address-groups/"+id, bob, nil, 404, "AddressGroupNotFound")
	f.expect("DELETE", "/v2.0/address-groups/"+id, alice, nil, 204, "")
	f.expect("GET", "/v2.0/address-groups/"+id, alice, nil, 404, "AddressGroupNotFound")
	// An admin makes one for another project.
	other := f.mk(admin, "address-groups", "address_group", map[string]any{"project_id": projB})
	if other["project_id"] != projB || fmt.Sprint(other["addresses"]) != "[]" {
		t.Errorf("admin's group for B: %v", other)
	}
	f.expect("GET", "/v2.0/address-groups/"+other["id"].(string), bob, nil, 200, "")
}

// TestStatelessGroups: stateful: false is kept and shown, and changing
// stateful is refused while a port uses the group.
func TestStatelessGroups(t *testing.T) {
	f := newFixture(t)
	g := f.mk(alice, "security-groups", "security_group", map[string]any{"name": "sl", "stateful": false})
	id := g["id"].(string)
	if g["stateful"] != false {
		t.Fatalf("created %v", g)
	}
	if got := f.expect("GET", "/v2.0/security-groups/"+id, alice, nil, 200, "")["security_group"].(map[string]any); got["stateful"] != false {
		t.Errorf("shown %v", got)
	}
	if l := f.expect("GET", "/v2.0/security-groups?stateful=false", alice, nil, 200, "")["security_groups"].([]any); len(l) != 1 {
		t.Errorf("stateful=false lists %d groups, want 1", len(l))
	}
	f.expect("PUT", "/v2.0/security-groups/"+id, alice, map[string]any{"security_group": map[string]any{"stateful": true}}, 200, "")
	f.expect("PUT", "/v2.0/security-groups/"+id, alice, map[string]any{"security_group": map[string]any{"stateful": false}}, 200, "")
	f.expect("PUT", "/v2.0/security-groups/"+id, alice, map[string]any{"security_group": map[string]any{"stateful": nil}}, 400, "HTTPBadRequest", "stateful")
	n := f.network(alice, "n")["id"].(string)
	f.subnet(alice, n, "10.0.0.0/24")
	p := f.port(alice, n, "security_groups", []string{id})["id"].(string)
	f.expect("PUT", "/v2.0/security-groups/"+id, alice, map[string]any{"security_group": map[string]any{"stateful": true}}, 409, "SecurityGroupInUse", id)
	// Naming it again, or changing something else, is fine.
	f.expect("PUT", "/v2.0/security-groups/"+id, alice, map[string]any{"security_group": map[string]any{"stateful": false, "description": "x"}}, 200, "")
	f.expect("DELETE", "/v2.0/ports/"+p, alice, nil, 204, "")
	if got := f.expect("PUT", "/v2.0/security-groups/"+id, alice, map[string]any{"security_group": map[string]any{"stateful": true}}, 200, "")["security_group"].(map[string]any); got["stateful"] != true {
		t.Errorf("after the port went: %v", got)
	}
}

// TestSubnetServiceTypes: service types are validated and stored, and a
// port gets its address from the subnet whose service type is its device
// owner, never from a subnet of other service types.
func TestSubnetServiceTypes(t *testing.T) {
	f := newFixture(t)
	n := f.network(alice, "n")["id"].(string)
	for name, tc := range map[string]struct {
		v   any
		typ string
		msg string
	}{
		"not a device owner": {[]string{"nova"}, "InvalidSubnetServiceType", "nova"},
		"no owner":           {[]string{":nova"}, "InvalidSubnetServiceType", ":nova"},
		"not a string":       {[]any{5}, "HTTPBadRequest", "service_types"},
		"not a list":         {"compute:nova", "HTTPBadRequest", "service_types"},
	} {
		t.Run(name, func(t *testing.T) {
			f.expect("POST", "/v2.0/subnets", alice, map[string]any{"subnet": map[string]any{"network_id": n, "cidr": "10.9.0.0/24", "ip_version": 4, "service_types": tc.v}}, 400, tc.typ, tc.msg)
		})
	}
	if l := f.expect("GET", "/v2.0/subnets", alice, nil, 200, "")["subnets"].([]any); len(l) != 0 {
		t.Fatalf("refused subnets were made: %v", l)
	}

	// Only a subnet for Nova's ports: other ports get nothing from it.
	nova := f.subnet(alice, n, "10.0.0.0/24", "service_types", []string{"compute:nova", "compute:nova"})
	if fmt.Sprint(nova["service_types"]) != "[compute:nova]" {
		t.Fatalf("service types %v", nova["service_types"])
	}
	f.expect("POST", "/v2.0/ports", alice, map[string]any{"port": map[string]any{"network_id": n}}, 400, "IpAddressGenerationFailureNoMatchingSubnet", n)
	f.expect("POST", "/v2.0/ports", alice, map[string]any{"port": map[string]any{"network_id": n, "fixed_ips": []any{map[string]any{"subnet_id": nova["id"]}}}}, 400, "InvalidInput", nova["id"].(string))
	f.expect("POST", "/v2.0/ports", alice, map[string]any{"port": map[string]any{"network_id": n, "fixed_ips": []any{map[string]any{"ip_address": "10.0.0.50"}}}}, 400, "InvalidIpForNetwork")
	if got := ips(f.port(alice, n, "device_owner", "compute:nova")); fmt.Sprint(got) != "[10.0.0.2]" {
		t.Errorf("Nova's port: %v", got)
	}
	// A DHCP port gets an address of any subnet with DHCP on.
	if got := ips(f.port(admin, n, "device_owner", "network:dhcp", "project_id", projA)); fmt.Sprint(got) != "[10.0.0.3]" {
		t.Errorf("DHCP port: %v", got)
	}

	// Beside a subnet without service types: Nova's ports still go to
	// theirs, made later or not; the others to the plain one.
	f.subnet(alice, n, "10.1.0.0/24", "service_types", []string{})
	if got := ips(f.port(alice, n)); fmt.Sprint(got) != "[10.1.0.2]" {
		t.Errorf("plain port: %v", got)
	}
	if got := ips(f.port(alice, n, "device_owner", "compute:nova")); fmt.Sprint(got) != "[10.0.0.4]" {
		t.Errorf("Nova's port beside a plain subnet: %v", got)
	}
	if got := ips(f.port(alice, n, "device_owner", "compute:az1")); fmt.Sprint(got) != "[10.1.0.3]" {
		t.Errorf("another zone's Nova port: %v", got)
	}

	// Changed by PUT, and cleared.
	up := f.expect("PUT", "/v2.0/subnets/"+nova["id"].(string), alice, map[string]any{"subnet": map[string]any{"service_types": []string{"compute:az1", "network:router_gateway"}}}, 200, "")["subnet"].(map[string]any)
	if fmt.Sprint(up["service_types"]) != "[compute:az1 network:router_gateway]" {
		t.Errorf("updated %v", up["service_types"])
	}
	f.expect("PUT", "/v2.0/subnets/"+nova["id"].(string), alice, map[string]any{"subnet": map[string]any{"service_types": []string{"bad"}}}, 400, "InvalidSubnetServiceType", "bad")
	if got := ips(f.port(alice, n, "device_owner", "compute:az1")); fmt.Sprint(got) != "[10.0.0.5]" {
		t.Errorf("az1's port after the change: %v", got)
	}
	up = f.expect("PUT", "/v2.0/subnets/"+nova["id"].(string), alice, map[string]any{"subnet": map[string]any{"service_types": nil}}, 200, "")["subnet"].(map[string]any)
	if fmt.Sprint(up["service_types"]) != "[]" {
		t.Errorf("cleared %v", up["service_types"])
	}
}

// TestFloatingIPServiceSubnet: floating IPs come from the external
// network's network:floatingip subnet, router gateways from the other.
func TestFloatingIPServiceSubnet(t *testing.T) {
	f := newFixture(t)
	w := f.l3(alice)
	f.subnet(admin, w.ext, "198.51.100.0/24", "service_types", []string{"network:floatingip"})
	fip := f.mk(alice, "floatingips", "floatingip", map[string]any{"floating_network_id": w.ext})
	if fip["floating_ip_address"] != "198.51.100.2" {
		t.Errorf("floating IP %v, want one of the floatingip subnet", fip["floating_ip_address"])
	}
	r := f.mk(alice, "routers", "router", map[string]any{"external_gateway_info": map[string]any{"network_id": w.ext}})
	gw := r["external_gateway_info"].(map[string]any)["external_fixed_ips"].([]any)[0].(map[string]any)
	if gw["subnet_id"] != w.extSubnet {
		t.Errorf("gateway on %v, want the plain subnet %s", gw, w.extSubnet)
	}
}

// TestNetgroupExtensions: the three extensions are listed.
func TestNetgroupExtensions(t *testing.T) {
	f := newFixture(t)
	for _, alias := range []string{"address-group", "security-groups-remote-address-group", "stateful-security-group", "subnet-service-types"} {
		f.expect("GET", "/v2.0/extensions/"+alias, alice, nil, 200, "")
	}
}

// TestAddressGroupRBAC: an access_as_shared policy lets its target see a
// group and name it in rules, not change it; a project it is only shared
// with cannot share it on; the policy cannot go while the target's rules
// use the group; deleting the group takes its policies.
func TestAddressGroupRBAC(t *testing.T) {
	f := newFixture(t)
	ag := f.mk(alice, "address-groups", "address_group", map[string]any{"name": "office", "addresses": []string{"10.1.0.0/16"}})["id"].(string)
	share := func(tok, target string) map[string]any {
		return map[string]any{"rbac_policy": map[string]any{"object_type": "address_group", "object_id": ag, "action": "access_as_shared", "target_tenant": target}}
	}
	f.expect("GET", "/v2.0/address-groups/"+ag, bob, nil, 404, "AddressGroupNotFound")
	f.expect("POST", "/v2.0/rbac-policies", bob, share(bob, projB), 404, "AddressGroupNotFound")
	f.expect("POST", "/v2.0/rbac-policies", alice, map[string]any{"rbac_policy": map[string]any{"object_type": "address_group", "object_id": ag, "action": "access_as_external", "target_tenant": projB}}, 400, "InvalidActionForType")
	pol := f.expect("POST", "/v2.0/rbac-policies", alice, share(alice, projB), 201, "")["rbac_policy"].(map[string]any)
	f.expect("POST", "/v2.0/rbac-policies", alice, share(alice, projB), 409, "DuplicateRbacPolicy")
	f.expect("GET", "/v2.0/address-groups/"+ag, bob, nil, 200, "")
	f.expect("PUT", "/v2.0/address-groups/"+ag, bob, map[string]any{"address_group": map[string]any{"name": "x"}}, 404, "AddressGroupNotFound")
	f.expect("PUT", "/v2.0/address-groups/"+ag+"/add_addresses", bob, map[string]any{"addresses": []string{"10.2.0.0/16"}}, 404, "AddressGroupNotFound")
	f.expect("DELETE", "/v2.0/address-groups/"+ag, bob, nil, 404, "AddressGroupNotFound")
	f.expect("POST", "/v2.0/rbac-policies", bob, share(bob, "project-c"), 400, "HTTPBadRequest", "object_id")
	if l := f.expect("GET", "/v2.0/rbac-policies", bob, nil, 200, "")["rbac_policies"].([]any); len(l) != 0 {
		t.Errorf("bob sees policies %v", l)
	}

	g := f.mk(bob, "security-groups", "security_group", map[string]any{"name": "g"})["id"].(string)
	r := f.mk(bob, "security-group-rules", "security_group_rule", map[string]any{"security_group_id": g, "direction": "ingress", "remote_address_group_id": ag})["id"].(string)
	f.expect("DELETE", "/v2.0/rbac-policies/"+pol["id"].(string), alice, nil, 409, "RbacPolicyInUse", ag)
	f.expect("PUT", "/v2.0/rbac-policies/"+pol["id"].(string), alice, map[string]any{"rbac_policy": map[string]any{"target_tenant": "project-c"}}, 409, "RbacPolicyInUse")
	// A wildcard (an admin's) keeps bob's rule allowed while the
	// project's own policy goes.
	wild := f.expect("POST", "/v2.0/rbac-policies", admin, share(admin, "*"), 201, "")["rbac_policy"].(map[string]any)
	f.expect("DELETE", "/v2.0/rbac-policies/"+pol["id"].(string), alice, nil, 204, "")
	f.expect("GET", "/v2.0/address-groups/"+ag, bob, nil, 200, "")
	moved := f.expect("PUT", "/v2.0/rbac-policies/"+wild["id"].(string), admin, map[string]any{"rbac_policy": map[string]any{"target_tenant": projB}}, 200, "")["rbac_policy"].(map[string]any)
	if moved["id"] != wild["id"] || moved["target_tenant"] != projB {
		t.Errorf("moved %v, want %v's id targeting B", moved, wild["id"])
	}
	f.expect("DELETE", "/v2.0/security-group-rules/"+r, bob, nil, 204, "")
	f.expect("DELETE", "/v2.0/address-groups/"+ag, alice, nil, 204, "")
	f.expect("GET", "/v2.0/rbac-policies/"+wild["id"].(string), admin, nil, 404, "RbacPolicyNotFound")
}

// TestAddressGroupRuleApplyChecksSharing: the rule's apply refuses an
// address group its project neither owns nor has shared, whatever the
// handler saw: an admin's rule in bob's group naming alice's group.
func TestAddressGroupRuleApplyChecksSharing(t *testing.T) {
	f := newFixture(t)
	ag := f.mk(alice, "address-groups", "address_group", map[string]any{"addresses": []string{"10.1.0.0/16"}})["id"].(string)
	g := f.mk(bob, "security-groups", "security_group", map[string]any{"name": "g"})["id"].(string)
	body := map[string]any{"security_group_rule": map[string]any{"security_group_id": g, "direction": "ingress", "remote_address_group_id": ag, "project_id": projB}}
	f.expect("POST", "/v2.0/security-group-rules", admin, body, 404, "AddressGroupNotFound", ag)
	f.expect("POST", "/v2.0/rbac-policies", alice, map[string]any{"rbac_policy": map[string]any{"object_type": "address_group", "object_id": ag, "action": "access_as_shared", "target_tenant": projB}}, 201, "")
	f.expect("POST", "/v2.0/security-group-rules", admin, body, 201, "")
}
