package network

import (
	"fmt"
	"testing"
)

func TestAddressScopeCRUD(t *testing.T) {
	f := newFixture(t)
	sc := f.mk(alice, "address-scopes", "address_scope", map[string]any{"name": "s", "ip_version": 4})
	id := sc["id"].(string)
	if sc["ip_version"] != 4.0 || sc["shared"] != false || sc["project_id"] != projA || sc["name"] != "s" {
		t.Errorf("created %v", sc)
	}
	f.expect("GET", "/v2.0/address-scopes/"+id, bob, nil, 404, "AddressScopeNotFound", id)
	f.expect("PUT", "/v2.0/address-scopes/"+id, alice, map[string]any{"address_scope": map[string]any{"shared": true}}, 403, "PolicyNotAuthorized", "update_address_scope:shared")
	up := f.expect("PUT", "/v2.0/address-scopes/"+id, admin, map[string]any{"address_scope": map[string]any{"shared": true, "name": "s2"}}, 200, "")["address_scope"].(map[string]any)
	if up["shared"] != true || up["name"] != "s2" || up["revision_number"] != 1.0 {
		t.Errorf("updated %v", up)
	}
	f.expect("GET", "/v2.0/address-scopes/"+id, bob, nil, 200, "")
	f.expect("PUT", "/v2.0/address-scopes/"+id, admin, map[string]any{"address_scope": map[string]any{"shared": false}}, 400, "AddressScopeUpdateError", "unshared")
	f.expect("PUT", "/v2.0/address-scopes/"+id, alice, map[string]any{"address_scope": map[string]any{"ip_version": 6}}, 400, "HTTPBadRequest", "ip_version")

	// A pool in the scope keeps it; pools of one scope never overlap.
	pool := f.mk(alice, "subnetpools", "subnetpool", map[string]any{"prefixes": []string{"10.50.0.0/16"}, "address_scope_id": id})
	if pool["address_scope_id"] != id {
		t.Errorf("pool %v", pool)
	}
	f.expect("POST", "/v2.0/subnetpools", bob, map[string]any{"subnetpool": map[string]any{"prefixes": []string{"10.50.128.0/20"}, "address_scope_id": id}}, 409, "AddressScopePrefixConflict")
	other := f.mk(bob, "subnetpools", "subnetpool", map[string]any{"prefixes": []string{"10.50.128.0/20"}})["id"].(string)
	f.expect("PUT", "/v2.0/subnetpools/"+other, bob, map[string]any{"subnetpool": map[string]any{"address_scope_id": id}}, 409, "AddressScopePrefixConflict")
	f.expect("DELETE", "/v2.0/address-scopes/"+id, alice, nil, 409, "AddressScopeInUse")
	f.expect("PUT", "/v2.0/subnetpools/"+pool["id"].(string), alice, map[string]any{"subnetpool": map[string]any{"address_scope_id": nil}}, 200, "")
	f.expect("DELETE", "/v2.0/address-scopes/"+id, alice, nil, 204, "")

	v6 := f.mk(alice, "address-scopes", "address_scope", map[string]any{"ip_version": 6})["id"].(string)
	private := f.mk(bob, "address-scopes", "address_scope", map[string]any{"ip_version": 4})["id"].(string)
	bad := map[string]struct {
		tok    string
		path   string
		body   map[string]any
		status int
		typ    string
		msg    string
	}{
		"no ip_version":      {alice, "address-scopes", map[string]any{"address_scope": map[string]any{"name": "x"}}, 400, "HTTPBadRequest", "ip_version"},
		"ip_version 5":       {alice, "address-scopes", map[string]any{"address_scope": map[string]any{"ip_version": 5}}, 400, "HTTPBadRequest", "ip_version"},
		"shared by member":   {alice, "address-scopes", map[string]any{"address_scope": map[string]any{"ip_version": 4, "shared": true}}, 403, "PolicyNotAuthorized", "create_address_scope:shared"},
		"pool version":       {alice, "subnetpools", map[string]any{"subnetpool": map[string]any{"prefixes": []string{"10.0.0.0/8"}, "address_scope_id": v6}}, 400, "IllegalSubnetPoolIpVersionAssociationToAddressScope", v6},
		"other's scope":      {alice, "subnetpools", map[string]any{"subnetpool": map[string]any{"prefixes": []string{"10.0.0.0/8"}, "address_scope_id": private}}, 404, "AddressScopeNotFound", private},
		"unknown scope":      {alice, "subnetpools", map[string]any{"subnetpool": map[string]any{"prefixes": []string{"10.0.0.0/8"}, "address_scope_id": "nope"}}, 404, "AddressScopeNotFound", "nope"},
		"unknown attribute":  {alice, "address-scopes", map[string]any{"address_scope": map[string]any{"ip_version": 4, "colour": "red"}}, 400, "HTTPBadRequest", "colour"},
		"read-only on a net": {alice, "networks", map[string]any{"network": map[string]any{"ipv4_address_scope": v6}}, 400, "HTTPBadRequest", "ipv4_address_scope"},
	}
	for name, tc := range bad {
		t.Run(name, func(t *testing.T) {
			f.expect("POST", "/v2.0/"+tc.path, tc.tok, tc.body, tc.status, tc.typ, tc.msg)
		})
	}
}

// TestNetworkAddressScope: a network is in a scope when every subnet of
// that IP version comes from a pool of it.
func TestNetworkAddressScope(t *testing.T) {
	f := newFixture(t)
	scope := f.mk(alice, "address-scopes", "address_scope", map[string]any{"ip_version": 4})["id"].(string)
	pool := f.mk(alice, "subnetpools", "subnetpool", map[string]any{"prefixes": []string{"10.60.0.0/16"}, "default_prefixlen": 24, "address_scope_id": scope})["id"].(string)
	nid := f.network(alice, "n")["id"].(string)
	scopes := func() string {
		n := f.expect("GET", "/v2.0/networks/"+nid, alice, nil, 200, "")["network"].(map[string]any)
		return fmt.Sprint(n["ipv4_address_scope"], " ", n["ipv6_address_scope"])
	}
	if got := scopes(); got != "<nil> <nil>" {
		t.Errorf("no subnet: %s", got)
	}
	f.mk(alice, "subnets", "subnet", map[string]any{"network_id": nid, "ip_version": 4, "subnetpool_id": pool})
	if got := scopes(); got != scope+" <nil>" {
		t.Errorf("pool subnet: %s, want %s <nil>", got, scope)
	}
	f.subnet(alice, nid, "192.168.9.0/24")
	if got := scopes(); got != "<nil> <nil>" {
		t.Errorf("with a subnet of no pool: %s", got)
	}
}

func TestMeteringCRUD(t *testing.T) {
	f := newFixture(t)
	f.expect("POST", "/v2.0/metering/metering-labels", alice, map[string]any{"metering_label": map[string]any{"name": "x"}}, 403, "PolicyNotAuthorized", "create_metering_label")
	f.expect("GET", "/v2.0/metering/metering-labels", alice, nil, 403, "PolicyNotAuthorized")
	l := f.mk(admin, "metering/metering-labels", "metering_label", map[string]any{"name": "web", "description": "d", "tenant_id": projA, "shared": true})
	id := l["id"].(string)
	if l["name"] != "web" || l["description"] != "d" || l["shared"] != true || l["project_id"] != projA {
		t.Errorf("created %v", l)
	}
	f.expect("GET", "/v2.0/metering/metering-labels/"+id, admin, nil, 200, "")
	f.expect("PUT", "/v2.0/metering/metering-labels/"+id, admin, map[string]any{"metering_label": map[string]any{"name": "y"}}, 405, "")

	r := f.mk(admin, "metering/metering-label-rules", "metering_label_rule", map[string]any{"metering_label_id": id, "remote_ip_prefix": "10.0.0.7/16"})
	if r["remote_ip_prefix"] != "10.0.0.0/16" || r["direction"] != "ingress" || r["excluded"] != false || r["source_ip_prefix"] != nil || r["project_id"] != projA {
		t.Errorf("rule %v", r)
	}
	sd := f.mk(admin, "metering/metering-label-rules", "metering_label_rule", map[string]any{"metering_label_id": id, "direction": "egress",
		"source_ip_prefix": "192.168.0.0/24", "destination_ip_prefix": "0.0.0.0/0", "excluded": true})
	if sd["source_ip_prefix"] != "192.168.0.0/24" || sd["destination_ip_prefix"] != "0.0.0.0/0" || sd["remote_ip_prefix"] != nil || sd["excluded"] != true {
		t.Errorf("source/destination rule %v", sd)
	}
	f.mk(admin, "metering/metering-label-rules", "metering_label_rule", map[string]any{"metering_label_id": id, "remote_ip_prefix": "10.0.5.0/24", "excluded": true})
	_, list := f.call("GET", "/v2.0/metering/metering-label-rules?metering_label_id="+id, admin, nil)
	if n := len(list["metering_label_rules"].([]any)); n != 3 {
		t.Errorf("list: %d rules, want 3", n)
	}
	bad := map[string]struct {
		fields map[string]any
		status int
		typ    string
		msg    string
	}{
		"no label":            {map[string]any{"remote_ip_prefix": "10.0.0.0/8"}, 400, "HTTPBadRequest", "metering_label_id"},
		"unknown label":       {map[string]any{"metering_label_id": "nope", "remote_ip_prefix": "10.0.0.0/8"}, 404, "MeteringLabelNotFound", "nope"},
		"bad direction":       {map[string]any{"metering_label_id": id, "direction": "up", "remote_ip_prefix": "10.0.0.0/8"}, 400, "HTTPBadRequest", "direction"},
		"bad prefix":          {map[string]any{"metering_label_id": id, "remote_ip_prefix": "10.0.0.0/40"}, 400, "HTTPBadRequest", "remote_ip_prefix"},
		"no prefix":           {map[string]any{"metering_label_id": id}, 400, "HTTPBadRequest", "remote_ip_prefix"},
		"remote with source":  {map[string]any{"metering_label_id": id, "remote_ip_prefix": "10.0.0.0/8", "source_ip_prefix": "10.0.0.0/8"}, 400, "HTTPBadRequest", "remote_ip_prefix"},
		"overlap":             {map[string]any{"metering_label_id": id, "remote_ip_prefix": "10.0.128.0/17"}, 409, "MeteringLabelRuleOverlaps", "10.0.128.0/17"},
		"unknown attribute":   {map[string]any{"metering_label_id": id, "remote_ip_prefix": "10.1.0.0/16", "colour": "red"}, 400, "HTTPBadRequest", "colour"},
		"bad excluded":        {map[string]any{"metering_label_id": id, "remote_ip_prefix": "10.1.0.0/16", "excluded": "maybe"}, 400, "HTTPBadRequest", "excluded"},
		"another project's":   {map[string]any{"metering_label_id": id, "remote_ip_prefix": "10.1.0.0/16", "tenant_id": projB}, 400, "HTTPBadRequest", "project_id"},
		"bad destination pfx": {map[string]any{"metering_label_id": id, "destination_ip_prefix": "x"}, 400, "HTTPBadRequest", "destination_ip_prefix"},
	}
	for name, tc := range bad {
		t.Run(name, func(t *testing.T) {
			f.expect("POST", "/v2.0/metering/metering-label-rules", admin, map[string]any{"metering_label_rule": tc.fields}, tc.status, tc.typ, tc.msg)
		})
	}
	// Deleting a label deletes its rules.
	f.expect("DELETE", "/v2.0/metering/metering-labels/"+id, admin, nil, 204, "")
	f.expect("GET", "/v2.0/metering/metering-label-rules/"+r["id"].(string), admin, nil, 404, "MeteringLabelRuleNotFound")
	f.expect("DELETE", "/v2.0/metering/metering-labels/"+id, admin, nil, 404, "MeteringLabelNotFound")
	for _, ext := range []string{"metering", "metering_source_and_destination_fields", "address-scope"} {
		f.expect("GET", "/v2.0/extensions/"+ext, alice, nil, 200, "")
	}
}
