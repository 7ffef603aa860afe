package network

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/api/apitest"
	"github.com/rackstack/rackstack/fabric/events/eventstate"
	"github.com/rackstack/rackstack/fabric/store"
)

const (
	admin    = "admin-token"
	alice    = "alice-token" // member of project A
	bob      = "bob-token"   // member of project B
	carol    = "carol-token" // reader of project A
	projA    = "project-a"
	projB    = "project-b"
	projAdm  = "project-admin"
	vlanLow  = 100
	vlanHigh = 104
)

type fixture struct {
	t     *testing.T
	svc   *Service
	local *store.Local
	srv   *httptest.Server
	now   time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	local, err := store.NewLocal(Schema(), eventstate.Schema())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, local: local, now: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	auth := apitest.Tokens{
		admin: {UserID: "u-admin", ProjectID: projAdm, Roles: []string{"admin", "member", "reader"}},
		alice: {UserID: "u-alice", ProjectID: projA, Roles: []string{"member", "reader"}},
		bob:   {UserID: "u-bob", ProjectID: projB, Roles: []string{"member", "reader"}},
		carol: {UserID: "u-reader", ProjectID: projA, Roles: []string{"reader"}},
	}
	f.svc, err = New(Config{Repl: local, Auth: auth, VLANMin: vlanLow, VLANMax: vlanHigh, Now: func() time.Time { return f.now }, Flat: []string{"public"}})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = apitest.Serve(t, "/network", f.svc.Handler())
	return f
}

// call makes a request and returns the status and the decoded body.
func (f *fixture) call(method, path, tok string, body any) (int, map[string]any) {
	f.t.Helper()
	res := apitest.Call(f.t, method, f.srv.URL+"/network"+path, tok, body)
	return res.Code, res.Body
}

// mk creates a resource (POST /v2.0/<coll> {key: fields}) and returns it.
func (f *fixture) mk(tok, coll, key string, fields map[string]any) map[string]any {
	f.t.Helper()
	code, body := f.call("POST", "/v2.0/"+coll, tok, map[string]any{key: fields})
	if code != 201 {
		f.t.Fatalf("create %s: %d %v", coll, code, body)
	}
	return body[key].(map[string]any)
}

// expect checks a request's status and, for errors, that the Neutron
// error body carries the type (and names the field, when given).
func (f *fixture) expect(method, path, tok string, body any, status int, typ string, inMsg ...string) map[string]any {
	f.t.Helper()
	code, out := f.call(method, path, tok, body)
	if code != status {
		f.t.Fatalf("%s %s: status %d, want %d: %v", method, path, code, status, out)
	}
	if status >= 400 {
		ne, ok := out["NeutronError"].(map[string]any)
		if !ok {
			f.t.Fatalf("%s %s: no NeutronError body: %v", method, path, out)
		}
		if typ != "" && ne["type"] != typ {
			f.t.Fatalf("%s %s: error type %v, want %s (%v)", method, path, ne["type"], typ, ne["message"])
		}
		for _, s := range inMsg {
			if !strings.Contains(ne["message"].(string), s) {
				f.t.Fatalf("%s %s: message %q lacks %q", method, path, ne["message"], s)
			}
		}
	}
	return out
}

func (f *fixture) network(tok, name string, extra ...any) map[string]any {
	fields := map[string]any{"name": name}
	for i := 0; i+1 < len(extra); i += 2 {
		fields[extra[i].(string)] = extra[i+1]
	}
	return f.mk(tok, "networks", "network", fields)
}

func (f *fixture) subnet(tok, netID, cidr string, extra ...any) map[string]any {
	fields := map[string]any{"network_id": netID, "cidr": cidr, "ip_version": 4}
	if strings.Contains(cidr, ":") {
		fields["ip_version"] = 6
	}
	for i := 0; i+1 < len(extra); i += 2 {
		fields[extra[i].(string)] = extra[i+1]
	}
	return f.mk(tok, "subnets", "subnet", fields)
}

func (f *fixture) port(tok, netID string, extra ...any) map[string]any {
	fields := map[string]any{"network_id": netID}
	for i := 0; i+1 < len(extra); i += 2 {
		fields[extra[i].(string)] = extra[i+1]
	}
	return f.mk(tok, "ports", "port", fields)
}

func ips(port map[string]any) []string {
	var out []string
	for _, x := range port["fixed_ips"].([]any) {
		out = append(out, x.(map[string]any)["ip_address"].(string))
	}
	return out
}

func names(list []any) []string {
	var out []string
	for _, x := range list {
		out = append(out, x.(map[string]any)["name"].(string))
	}
	return out
}

func TestVersionDiscoveryAndAuth(t *testing.T) {
	f := newFixture(t)
	code, body := f.call("GET", "/", "", nil)
	if code != 200 {
		t.Fatalf("versions: %d", code)
	}
	v := body["versions"].([]any)[0].(map[string]any)
	href := v["links"].([]any)[0].(map[string]any)["href"].(string)
	if v["id"] != "v2.0" || v["status"] != "CURRENT" || !strings.HasSuffix(href, "/network/v2.0/") {
		t.Fatalf("versions: %v", body)
	}
	f.expect("GET", "/v2.0/networks", "", nil, 401, "HTTPUnauthorized")
	f.expect("GET", "/v2.0/networks", "bogus", nil, 401, "")
	body = f.expect("GET", "/v2.0", admin, nil, 200, "")
	if len(body["resources"].([]any)) == 0 {
		t.Fatalf("resources: %v", body)
	}
	body = f.expect("GET", "/v2.0/extensions", alice, nil, 200, "")
	var aliases []string
	for _, e := range body["extensions"].([]any) {
		aliases = append(aliases, e.(map[string]any)["alias"].(string))
	}
	for _, want := range []string{"security-group", "port-security", "provider", "quotas", "allowed-address-pairs", "binding",
		"standard-attr-description", "project-id", "standard-attr-timestamp", "standard-attr-revisions", "net-mtu"} {
		if !contains(aliases, want) {
			t.Errorf("extension %s missing", want)
		}
	}
	f.expect("GET", "/v2.0/extensions/security-group", alice, nil, 200, "")
	f.expect("GET", "/v2.0/extensions/routers", alice, nil, 404, "")
	// Neutron's .json suffix.
	f.expect("GET", "/v2.0/networks.json", alice, nil, 200, "")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestNetworkLifecycle(t *testing.T) {
	f := newFixture(t)
	n := f.network(alice, "net1", "description", "d")
	id := n["id"].(string)
	for k, want := range map[string]any{"status": "ACTIVE", "mtu": 1500.0, "shared": false, "admin_state_up": true,
		"port_security_enabled": true, "router:external": false, "tenant_id": projA, "project_id": projA, "description": "d",
		"revision_number": 0.0, "created_at": "2026-11-24T12:00:00Z"} {
		if n[k] != want {
			t.Errorf("%s = %v, want %v", k, n[k], want)
		}
	}
	if _, ok := n["provider:segmentation_id"]; ok {
		t.Error("a member sees the provider mapping")
	}
	body := f.expect("GET", "/v2.0/networks/"+id, admin, nil, 200, "")
	an := body["network"].(map[string]any)
	if an["provider:network_type"] != "vlan" || an["provider:physical_network"] != "physnet1" || an["provider:segmentation_id"] != float64(vlanLow) {
		t.Fatalf("admin view: %v", an)
	}
	f.now = f.now.Add(time.Minute)
	body = f.expect("PUT", "/v2.0/networks/"+id, alice, map[string]any{"network": map[string]any{"name": "renamed", "admin_state_up": false}}, 200, "")
	un := body["network"].(map[string]any)
	if un["name"] != "renamed" || un["admin_state_up"] != false || un["revision_number"] != 1.0 || un["updated_at"] != "2026-11-24T12:01:00Z" {
		t.Fatalf("update: %v", un)
	}
	f.expect("PUT", "/v2.0/networks/"+id, alice, map[string]any{"network": map[string]any{"status": "DOWN"}}, 400, "HTTPBadRequest", "status")
	f.expect("PUT", "/v2.0/networks/"+id, alice, map[string]any{"network": map[string]any{"shared": true}}, 403, "PolicyNotAuthorized")
	f.expect("PUT", "/v2.0/networks/"+id, admin, map[string]any{"network": map[string]any{"provider:segmentation_id": 103}}, 400, "InvalidInput")
	f.expect("POST", "/v2.0/networks", alice, map[string]any{"network": map[string]any{"name": "x", "bogus": 1}}, 400, "HTTPBadRequest", "bogus")
	f.expect("POST", "/v2.0/networks", alice, map[string]any{"network": map[string]any{"name": 5}}, 400, "HTTPBadRequest", "name")
	f.expect("POST", "/v2.0/networks", alice, map[string]any{"network": map[string]any{"admin_state_up": "maybe"}}, 400, "HTTPBadRequest", "admin_state_up")
	f.expect("POST", "/v2.0/networks", alice, map[string]any{"network": map[string]any{"mtu": 9000}}, 400, "HTTPBadRequest", "mtu")
	// Another project's, by a non-admin: neutron-lib's 400, before policy.
	f.expect("POST", "/v2.0/networks", alice, map[string]any{"network": map[string]any{"tenant_id": projB}}, 400, "HTTPBadRequest", "requires admin")
	f.expect("POST", "/v2.0/ports", alice, map[string]any{"port": map[string]any{"network_id": f.network(alice, "pnet")["id"], "project_id": projB}}, 400, "HTTPBadRequest", "requires admin")
	f.expect("POST", "/v2.0/networks", alice, map[string]any{"network": map[string]any{"shared": true}}, 403, "PolicyNotAuthorized")
	f.expect("POST", "/v2.0/networks", alice, map[string]any{"network": map[string]any{"router:external": true}}, 403, "PolicyNotAuthorized")
	f.expect("POST", "/v2.0/networks", carol, map[string]any{"network": map[string]any{"name": "ro"}}, 403, "PolicyNotAuthorized")
	f.expect("POST", "/v2.0/networks", alice, `{"network": `, 400, "HTTPBadRequest")
	f.expect("POST", "/v2.0/networks", alice, map[string]any{"net": map[string]any{}}, 400, "HTTPBadRequest")
	f.expect("GET", "/v2.0/networks/nope", alice, nil, 404, "NetworkNotFound")
	f.expect("DELETE", "/v2.0/networks/"+id, alice, nil, 204, "")
	f.expect("GET", "/v2.0/networks/"+id, alice, nil, 404, "NetworkNotFound")
	f.expect("DELETE", "/v2.0/networks/"+id, alice, nil, 404, "NetworkNotFound")
}

func TestVLANAllocation(t *testing.T) {
	f := newFixture(t)
	vlan := func(n map[string]any) int {
		_, body := f.call("GET", "/v2.0/networks/"+n["id"].(string), admin, nil)
		return int(body["network"].(map[string]any)["provider:segmentation_id"].(float64))
	}
	a := f.network(alice, "a")
	b := f.network(bob, "b")
	if vlan(a) != 100 || vlan(b) != 101 {
		t.Fatalf("vlans %d %d", vlan(a), vlan(b))
	}
	// An admin picks one; taken ones and ones outside the range are refused.
	c := f.network(admin, "c", "provider:network_type", "vlan", "provider:segmentation_id", 103)
	if vlan(c) != 103 {
		t.Fatalf("requested vlan: %d", vlan(c))
	}
	f.expect("POST", "/v2.0/networks", admin, map[string]any{"network": map[string]any{"provider:segmentation_id": 103}}, 409, "VlanIdInUse")
	f.expect("POST", "/v2.0/networks", admin, map[string]any{"network": map[string]any{"provider:segmentation_id": 4000}}, 400, "HTTPBadRequest", "provider:segmentation_id")
	f.expect("POST", "/v2.0/networks", admin, map[string]any{"network": map[string]any{"provider:network_type": "vxlan"}}, 400, "InvalidInput")
	f.expect("POST", "/v2.0/networks", admin, map[string]any{"network": map[string]any{"provider:physical_network": "physnet9"}}, 400, "InvalidInput")
	f.expect("POST", "/v2.0/networks", alice, map[string]any{"network": map[string]any{"provider:segmentation_id": 102}}, 403, "PolicyNotAuthorized")
	// The lowest free one next, then the range is used up.
	d := f.network(alice, "d")
	e := f.network(alice, "e")
	if vlan(d) != 102 || vlan(e) != 104 {
		t.Fatalf("vlans %d %d", vlan(d), vlan(e))
	}
	f.expect("POST", "/v2.0/networks", alice, map[string]any{"network": map[string]any{"name": "full"}}, 409, "NoNetworkAvailable")
	// A deleted network frees its VLAN.
	f.expect("DELETE", "/v2.0/networks/"+b["id"].(string), bob, nil, 204, "")
	if g := f.network(bob, "g"); vlan(g) != 101 {
		t.Fatalf("reused vlan %d", vlan(g))
	}
	// Every network has its own VLAN.
	v, err := Load(f.local.Local())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, n := range v.Networks {
		if seen[n.SegmentationID] {
			t.Fatalf("vlan %d twice", n.SegmentationID)
		}
		seen[n.SegmentationID] = true
	}
}

func TestSubnets(t *testing.T) {
	f := newFixture(t)
	n := f.network(alice, "n")
	nid := n["id"].(string)
	s := f.subnet(alice, nid, "10.0.0.0/24", "name", "s", "dns_nameservers", []string{"8.8.8.8"},
		"host_routes", []map[string]any{{"destination": "192.168.0.0/16", "nexthop": "10.0.0.254"}})
	if s["gateway_ip"] != "10.0.0.1" || s["enable_dhcp"] != true || s["cidr"] != "10.0.0.0/24" {
		t.Fatalf("subnet: %v", s)
	}
	pools := s["allocation_pools"].([]any)
	if len(pools) != 1 || pools[0].(map[string]any)["start"] != "10.0.0.2" || pools[0].(map[string]any)["end"] != "10.0.0.254" {
		t.Fatalf("pools: %v", pools)
	}
	_, body := f.call("GET", "/v2.0/networks/"+nid, alice, nil)
	if subs := body["network"].(map[string]any)["subnets"].([]any); len(subs) != 1 || subs[0] != s["id"] {
		t.Fatalf("network subnets: %v", subs)
	}
	// No gateway: the pool is the whole range; a gateway inside the range
	// splits it.
	n2 := f.network(alice, "n2")["id"].(string)
	s2 := f.subnet(alice, n2, "10.1.0.0/29", "gateway_ip", nil)
	if s2["gateway_ip"] != nil || fmt.Sprint(s2["allocation_pools"]) != "[map[end:10.1.0.6 start:10.1.0.1]]" {
		t.Fatalf("no gateway: %v", s2)
	}
	s3 := f.subnet(alice, n2, "10.2.0.0/29", "gateway_ip", "10.2.0.3")
	if fmt.Sprint(s3["allocation_pools"]) != "[map[end:10.2.0.2 start:10.2.0.1] map[end:10.2.0.6 start:10.2.0.4]]" {
		t.Fatalf("split pools: %v", s3["allocation_pools"])
	}
	s6 := f.subnet(alice, n2, "2001:db8::/64", "ipv6_address_mode", "slaac", "ipv6_ra_mode", "slaac")
	if s6["ip_version"] != 6.0 || s6["gateway_ip"] != "2001:db8::1" || s6["ipv6_address_mode"] != "slaac" {
		t.Fatalf("v6: %v", s6)
	}
	bad := map[string]struct {
		fields map[string]any
		status int
		typ    string
		msg    string
	}{
		"no network":          {map[string]any{"cidr": "10.9.0.0/24", "ip_version": 4}, 400, "HTTPBadRequest", "network_id"},
		"unknown network":     {map[string]any{"network_id": "nope", "cidr": "10.9.0.0/24", "ip_version": 4}, 404, "NetworkNotFound", ""},
		"no ip_version":       {map[string]any{"network_id": nid, "cidr": "10.9.0.0/24"}, 400, "HTTPBadRequest", "ip_version"},
		"bad ip_version":      {map[string]any{"network_id": nid, "cidr": "10.9.0.0/24", "ip_version": 5}, 400, "HTTPBadRequest", "ip_version"},
		"bad cidr":            {map[string]any{"network_id": nid, "cidr": "10.9.0.0/33", "ip_version": 4}, 400, "HTTPBadRequest", "cidr"},
		"wrong version":       {map[string]any{"network_id": nid, "cidr": "10.9.0.0/24", "ip_version": 6}, 400, "InvalidInput", ""},
		"overlap":             {map[string]any{"network_id": nid, "cidr": "10.0.0.128/25", "ip_version": 4}, 400, "InvalidInput", "overlaps"},
		"gateway outside":     {map[string]any{"network_id": nid, "cidr": "10.9.0.0/24", "ip_version": 4, "gateway_ip": "10.8.0.1"}, 400, "InvalidInput", ""},
		"gateway bad":         {map[string]any{"network_id": nid, "cidr": "10.9.0.0/24", "ip_version": 4, "gateway_ip": "x"}, 400, "HTTPBadRequest", "gateway_ip"},
		"pool outside":        {map[string]any{"network_id": nid, "cidr": "10.9.0.0/24", "ip_version": 4, "allocation_pools": []map[string]any{{"start": "10.9.0.10", "end": "10.9.1.10"}}}, 400, "OutOfBoundsAllocationPool", ""},
		"pool reversed":       {map[string]any{"network_id": nid, "cidr": "10.9.0.0/24", "ip_version": 4, "allocation_pools": []map[string]any{{"start": "10.9.0.10", "end": "10.9.0.5"}}}, 400, "InvalidAllocationPool", ""},
		"pools overlap":       {map[string]any{"network_id": nid, "cidr": "10.9.0.0/24", "ip_version": 4, "allocation_pools": []map[string]any{{"start": "10.9.0.10", "end": "10.9.0.20"}, {"start": "10.9.0.15", "end": "10.9.0.30"}}}, 409, "OverlappingAllocationPools", ""},
		"pool has gateway":    {map[string]any{"network_id": nid, "cidr": "10.9.0.0/24", "ip_version": 4, "allocation_pools": []map[string]any{{"start": "10.9.0.1", "end": "10.9.0.20"}}}, 409, "GatewayConflictWithAllocationPools", ""},
		"pool no end":         {map[string]any{"network_id": nid, "cidr": "10.9.0.0/24", "ip_version": 4, "allocation_pools": []map[string]any{{"start": "10.9.0.1"}}}, 400, "HTTPBadRequest", "allocation_pools"},
		"bad dns":             {map[string]any{"network_id": nid, "cidr": "10.9.0.0/24", "ip_version": 4, "dns_nameservers": []string{"dns.example"}}, 400, "HTTPBadRequest", "dns_nameservers"},
		"dup dns":             {map[string]any{"network_id": nid, "cidr": "10.9.0.0/24", "ip_version": 4, "dns_nameservers": []string{"1.1.1.1", "1.1.1.1"}}, 400, "HTTPBadRequest", "dns_nameservers"},
		"bad route":           {map[string]any{"network_id": nid, "cidr": "10.9.0.0/24", "ip_version": 4, "host_routes": []map[string]any{{"destination": "x", "nexthop": "10.9.0.1"}}}, 400, "HTTPBadRequest", "host_routes"},
		"slaac needs /64":     {map[string]any{"network_id": nid, "cidr": "2001:db9::/80", "ip_version": 6, "ipv6_address_mode": "slaac"}, 400, "InvalidInput", ""},
		"v6 mode on v4":       {map[string]any{"network_id": nid, "cidr": "10.9.0.0/24", "ip_version": 4, "ipv6_address_mode": "slaac"}, 400, "InvalidInput", ""},
		"unknown subnet pool": {map[string]any{"network_id": nid, "ip_version": 4, "subnetpool_id": "p"}, 404, "SubnetPoolNotFound", "p"},
		"prefixlen, no pool":  {map[string]any{"network_id": nid, "ip_version": 4, "prefixlen": 24}, 400, "HTTPBadRequest", "prefixlen"},
		"zero prefix length":  {map[string]any{"network_id": nid, "cidr": "0.0.0.0/0", "ip_version": 4}, 400, "InvalidInput", ""},
	}
	for name, tc := range bad {
		t.Run(name, func(t *testing.T) {
			f.expect("POST", "/v2.0/subnets", alice, map[string]any{"subnet": tc.fields}, tc.status, tc.typ, tc.msg)
		})
	}
	// Host bits are dropped, as Neutron stores the network address.
	hb := f.mk(alice, "networks", "network", map[string]any{"name": "hostbits"})["id"].(string)
	if got := f.subnet(alice, hb, "10.99.99.5/16")["cidr"]; got != "10.99.0.0/16" {
		t.Errorf("cidr 10.99.99.5/16 stored as %v, want 10.99.0.0/16", got)
	}
	// Another project cannot add a subnet to the network.
	f.expect("POST", "/v2.0/subnets", bob, map[string]any{"subnet": map[string]any{"network_id": nid, "cidr": "10.7.0.0/24", "ip_version": 4}}, 404, "NetworkNotFound")
	// Update.
	sid := s["id"].(string)
	body = f.expect("PUT", "/v2.0/subnets/"+sid, alice, map[string]any{"subnet": map[string]any{"name": "s-renamed", "dns_nameservers": []string{},
		"allocation_pools": []map[string]any{{"start": "10.0.0.100", "end": "10.0.0.200"}}, "gateway_ip": "10.0.0.254"}}, 200, "")
	us := body["subnet"].(map[string]any)
	if us["name"] != "s-renamed" || us["gateway_ip"] != "10.0.0.254" || fmt.Sprint(us["allocation_pools"]) != "[map[end:10.0.0.200 start:10.0.0.100]]" || len(us["dns_nameservers"].([]any)) != 0 {
		t.Fatalf("updated subnet: %v", us)
	}
	f.expect("PUT", "/v2.0/subnets/"+sid, alice, map[string]any{"subnet": map[string]any{"gateway_ip": "10.0.0.150"}}, 409, "GatewayConflictWithAllocationPools")
	f.expect("PUT", "/v2.0/subnets/"+sid, alice, map[string]any{"subnet": map[string]any{"cidr": "10.0.0.0/16"}}, 400, "HTTPBadRequest", "cidr")
	f.expect("PUT", "/v2.0/subnets/"+sid, bob, map[string]any{"subnet": map[string]any{"name": "mine"}}, 404, "SubnetNotFound")
	// A port with an address keeps the subnet in use.
	p := f.port(alice, nid)
	if got := ips(p); len(got) != 1 || got[0] != "10.0.0.100" {
		t.Fatalf("port ips %v", got)
	}
	f.expect("DELETE", "/v2.0/subnets/"+sid, alice, nil, 409, "SubnetInUse")
	f.expect("DELETE", "/v2.0/ports/"+p["id"].(string), alice, nil, 204, "")
	f.expect("DELETE", "/v2.0/subnets/"+sid, alice, nil, 204, "")
	f.expect("GET", "/v2.0/subnets/"+sid, alice, nil, 404, "SubnetNotFound")
}

func TestPortAddressesAndMACs(t *testing.T) {
	f := newFixture(t)
	nid := f.network(alice, "n")["id"].(string)
	sid := f.subnet(alice, nid, "10.0.0.0/29")["id"].(string) // pool 10.0.0.2-6
	p1 := f.port(alice, nid)
	p2 := f.port(alice, nid, "fixed_ips", []map[string]any{{"subnet_id": sid}})
	p3 := f.port(alice, nid, "fixed_ips", []map[string]any{{"ip_address": "10.0.0.5"}})
	if ips(p1)[0] != "10.0.0.2" || ips(p2)[0] != "10.0.0.3" || ips(p3)[0] != "10.0.0.5" {
		t.Fatalf("ips %v %v %v", ips(p1), ips(p2), ips(p3))
	}
	mac := p1["mac_address"].(string)
	if !strings.HasPrefix(mac, "fa:16:3e:") || p1["status"] != "DOWN" || p1["binding:vnic_type"] != "normal" || p1["binding:vif_type"] != "unbound" {
		t.Fatalf("port: %v", p1)
	}
	bad := map[string]struct {
		fields map[string]any
		status int
		typ    string
		msg    string
	}{
		"ip in use":        {map[string]any{"fixed_ips": []map[string]any{{"ip_address": "10.0.0.5"}}}, 409, "IpAddressAlreadyAllocated", "10.0.0.5"},
		"ip is broadcast":  {map[string]any{"fixed_ips": []map[string]any{{"ip_address": "10.0.0.7"}}}, 400, "InvalidIpForSubnet", ""},
		"ip off network":   {map[string]any{"fixed_ips": []map[string]any{{"ip_address": "10.5.0.5"}}}, 400, "InvalidIpForNetwork", ""},
		"ip off subnet":    {map[string]any{"fixed_ips": []map[string]any{{"subnet_id": sid, "ip_address": "10.5.0.5"}}}, 400, "InvalidIpForSubnet", ""},
		"bad ip":           {map[string]any{"fixed_ips": []map[string]any{{"ip_address": "10.0.0.300"}}}, 400, "HTTPBadRequest", "fixed_ips"},
		"unknown subnet":   {map[string]any{"fixed_ips": []map[string]any{{"subnet_id": "nope"}}}, 404, "SubnetNotFound", ""},
		"mac in use":       {map[string]any{"mac_address": mac}, 409, "MacAddressInUse", mac},
		"bad mac":          {map[string]any{"mac_address": "fa:16:3e:zz:00:00"}, 400, "HTTPBadRequest", "mac_address"},
		"multicast mac":    {map[string]any{"mac_address": "01:00:5e:00:00:01"}, 400, "HTTPBadRequest", "mac_address"},
		"no network":       {map[string]any{"network_id": nil}, 400, "HTTPBadRequest", "network_id"},
		"unknown network":  {map[string]any{"network_id": "nope"}, 404, "NetworkNotFound", ""},
		"status read-only": {map[string]any{"status": "ACTIVE"}, 400, "HTTPBadRequest", "status"},
		"vnic type":        {map[string]any{"binding:vnic_type": "direct"}, 400, "HTTPBadRequest", "binding:vnic_type"},
		"pair without ip":  {map[string]any{"allowed_address_pairs": []map[string]any{{"mac_address": "fa:16:3e:00:00:01"}}}, 400, "AllowedAddressPairsMissingIP", ""},
		"pair bad ip":      {map[string]any{"allowed_address_pairs": []map[string]any{{"ip_address": "10.0.0.0/40"}}}, 400, "HTTPBadRequest", "allowed_address_pairs"},
	}
	for name, tc := range bad {
		t.Run(name, func(t *testing.T) {
			fields := map[string]any{"network_id": nid}
			for k, v := range tc.fields {
				if v == nil {
					delete(fields, k)
				} else {
					fields[k] = v
				}
			}
			f.expect("POST", "/v2.0/ports", alice, map[string]any{"port": fields}, tc.status, tc.typ, tc.msg)
		})
	}
	// The pool runs out: 10.0.0.4 and .6 are left.
	f.port(alice, nid)
	f.port(alice, nid)
	f.expect("POST", "/v2.0/ports", alice, map[string]any{"port": map[string]any{"network_id": nid}}, 409, "IpAddressGenerationFailure")
	// A deleted port's address and MAC are free again.
	f.expect("DELETE", "/v2.0/ports/"+p1["id"].(string), alice, nil, 204, "")
	p4 := f.port(alice, nid, "mac_address", strings.ToUpper(mac))
	if ips(p4)[0] != "10.0.0.2" || p4["mac_address"] != mac {
		t.Fatalf("reuse: %v %v", ips(p4), p4["mac_address"])
	}
	// Update: keep one address, swap the other; a taken one is refused and
	// changes nothing.
	body := f.expect("PUT", "/v2.0/ports/"+p3["id"].(string), alice, map[string]any{"port": map[string]any{"fixed_ips": []map[string]any{{"ip_address": "10.0.0.3"}}}}, 409, "IpAddressAlreadyAllocated")
	_ = body
	f.expect("DELETE", "/v2.0/ports/"+p2["id"].(string), alice, nil, 204, "")
	body = f.expect("PUT", "/v2.0/ports/"+p3["id"].(string), alice, map[string]any{"port": map[string]any{"fixed_ips": []map[string]any{{"subnet_id": sid}, {"ip_address": "10.0.0.3"}}, "name": "two"}}, 200, "")
	up := body["port"].(map[string]any)
	if got := ips(up); fmt.Sprint(got) != "[10.0.0.3 10.0.0.5]" || up["name"] != "two" || up["revision_number"] != 1.0 {
		t.Fatalf("updated port: %v %v", got, up)
	}
	// Addresses and MACs are unique in the network.
	v, _ := Load(f.local.Local())
	seenIP, seenMAC := map[string]bool{}, map[string]bool{}
	for _, p := range v.Ports {
		if seenMAC[p.MAC] {
			t.Fatalf("mac %s twice", p.MAC)
		}
		seenMAC[p.MAC] = true
		for _, ip := range p.FixedIPs {
			if seenIP[ip.IP] {
				t.Fatalf("ip %s twice", ip.IP)
			}
			seenIP[ip.IP] = true
		}
	}
	// The same MAC may live on another network.
	other := f.network(alice, "other")["id"].(string)
	f.port(alice, other, "mac_address", mac)
}

func TestPortIPv6AndNoSubnets(t *testing.T) {
	f := newFixture(t)
	nid := f.network(alice, "n")["id"].(string)
	p := f.port(alice, nid)
	if len(ips(p)) != 0 {
		t.Fatalf("ips without subnets: %v", ips(p))
	}
	f.subnet(alice, nid, "10.0.0.0/24")
	f.subnet(alice, nid, "2001:db8:1::/64")
	slaac := f.subnet(alice, nid, "2001:db8:2::/64", "ipv6_address_mode", "slaac")
	p = f.port(alice, nid, "mac_address", "fa:16:3e:11:22:33")
	got := ips(p)
	sort.Strings(got)
	if fmt.Sprint(got) != "[10.0.0.2 2001:db8:1::2 2001:db8:2:0:f816:3eff:fe11:2233]" {
		t.Fatalf("dual stack ips: %v", got)
	}
	f.expect("POST", "/v2.0/ports", alice, map[string]any{"port": map[string]any{"network_id": nid,
		"fixed_ips": []map[string]any{{"subnet_id": slaac["id"], "ip_address": "2001:db8:2::5"}}}}, 400, "InvalidInput")
	p = f.port(alice, nid, "fixed_ips", []map[string]any{})
	if len(ips(p)) != 0 {
		t.Fatalf("explicit no ips: %v", ips(p))
	}
	// A new SLAAC subnet gives every port its address; deleting it takes
	// them back, however many ports there are.
	pid := p["id"].(string)
	s2 := f.subnet(alice, nid, "2001:db8:3::/64", "ipv6_ra_mode", "slaac", "ipv6_address_mode", "slaac")["id"].(string)
	_, body := f.call("GET", "/v2.0/ports/"+pid, alice, nil)
	if got := ips(body["port"].(map[string]any)); len(got) != 1 || !strings.HasPrefix(got[0], "2001:db8:3:0:f816:3eff:fe") {
		t.Fatalf("auto address: %v", got)
	}
	f.expect("DELETE", "/v2.0/subnets/"+s2, alice, nil, 204, "")
	_, body = f.call("GET", "/v2.0/ports/"+pid, alice, nil)
	if got := ips(body["port"].(map[string]any)); len(got) != 0 {
		t.Fatalf("auto address kept: %v", got)
	}
	f.expect("DELETE", "/v2.0/networks/"+nid, alice, nil, 409, "NetworkInUse")
}

func TestPortSecurityAndGroups(t *testing.T) {
	f := newFixture(t)
	nid := f.network(alice, "n")["id"].(string)
	f.subnet(alice, nid, "10.0.0.0/24")
	_, body := f.call("GET", "/v2.0/security-groups?name=default", alice, nil)
	def := body["security_groups"].([]any)[0].(map[string]any)["id"].(string)
	p := f.port(alice, nid)
	if fmt.Sprint(p["security_groups"]) != "["+def+"]" || p["port_security_enabled"] != true {
		t.Fatalf("default group: %v", p)
	}
	web := f.mk(alice, "security-groups", "security_group", map[string]any{"name": "web"})["id"].(string)
	p = f.port(alice, nid, "security_groups", []string{web}, "allowed_address_pairs", []map[string]any{{"ip_address": "10.0.0.0/24"}})
	pairs := p["allowed_address_pairs"].([]any)
	if fmt.Sprint(p["security_groups"]) != "["+web+"]" || pairs[0].(map[string]any)["mac_address"] != p["mac_address"] {
		t.Fatalf("port: %v", p)
	}
	pid := p["id"].(string)
	f.expect("POST", "/v2.0/ports", alice, map[string]any{"port": map[string]any{"network_id": nid, "port_security_enabled": false, "security_groups": []string{web}}},
		400, "PortSecurityAndIPRequiredForSecurityGroups")
	f.expect("POST", "/v2.0/ports", alice, map[string]any{"port": map[string]any{"network_id": nid, "port_security_enabled": false,
		"allowed_address_pairs": []map[string]any{{"ip_address": "10.0.0.9"}}}}, 409, "AddressPairAndPortSecurityRequired")
	open := f.port(alice, nid, "port_security_enabled", false)
	if len(open["security_groups"].([]any)) != 0 {
		t.Fatalf("no port security, groups: %v", open["security_groups"])
	}
	// A network without port security gives its ports none.
	nps := f.network(alice, "nps", "port_security_enabled", false)["id"].(string)
	if p := f.port(alice, nps); p["port_security_enabled"] != false || len(p["security_groups"].([]any)) != 0 {
		t.Fatalf("inherited port security: %v", p)
	}
	f.expect("PUT", "/v2.0/ports/"+pid, alice, map[string]any{"port": map[string]any{"port_security_enabled": false}}, 409, "PortSecurityPortHasSecurityGroup")
	body = f.expect("PUT", "/v2.0/ports/"+pid, alice, map[string]any{"port": map[string]any{"port_security_enabled": false, "security_groups": []string{},
		"allowed_address_pairs": []any{}}}, 200, "")
	if body["port"].(map[string]any)["port_security_enabled"] != false {
		t.Fatalf("port security off: %v", body)
	}
	body = f.expect("PUT", "/v2.0/ports/"+pid, alice, map[string]any{"port": map[string]any{"port_security_enabled": true, "security_groups": []string{web, def},
		"binding:host_id": "node1", "device_id": "vm1", "device_owner": "compute:nova", "admin_state_up": false, "description": "d"}}, 200, "")
	up := body["port"].(map[string]any)
	if len(up["security_groups"].([]any)) != 2 || up["binding:host_id"] != "node1" || up["binding:vif_type"] != "tap" || up["device_id"] != "vm1" || up["admin_state_up"] != false {
		t.Fatalf("updated: %v", up)
	}
	// A group of another project cannot be used.
	bobs := f.mk(bob, "security-groups", "security_group", map[string]any{"name": "bobs"})["id"].(string)
	f.expect("PUT", "/v2.0/ports/"+pid, alice, map[string]any{"port": map[string]any{"security_groups": []string{bobs}}}, 404, "SecurityGroupNotFound")
	f.expect("POST", "/v2.0/ports", alice, map[string]any{"port": map[string]any{"network_id": nid, "security_groups": []string{"nope"}}}, 404, "SecurityGroupNotFound")
	// A group in use cannot go.
	f.expect("DELETE", "/v2.0/security-groups/"+web, alice, nil, 409, "SecurityGroupInUse")
	f.expect("PUT", "/v2.0/ports/"+pid, alice, map[string]any{"port": map[string]any{"network_id": "x"}}, 400, "HTTPBadRequest", "network_id")
	// Status comes from the dataplane.
	if err := f.svc.SetPortStatus(context.Background(), pid, "ACTIVE"); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.SetPortStatus(context.Background(), pid, "WEIRD"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("bad status: %v", err)
	}
	if err := f.svc.SetPortStatus(context.Background(), "nope", "ACTIVE"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown port: %v", err)
	}
	_, body = f.call("GET", "/v2.0/ports/"+pid, alice, nil)
	if body["port"].(map[string]any)["status"] != "ACTIVE" {
		t.Fatalf("status: %v", body)
	}
}

func TestDefaultSecurityGroup(t *testing.T) {
	f := newFixture(t)
	_, body := f.call("GET", "/v2.0/security-groups", alice, nil)
	groups := body["security_groups"].([]any)
	if len(groups) != 1 {
		t.Fatalf("groups: %v", groups)
	}
	g := groups[0].(map[string]any)
	if g["name"] != "default" || g["tenant_id"] != projA || g["stateful"] != true {
		t.Fatalf("default group: %v", g)
	}
	var rules []string
	for _, x := range g["security_group_rules"].([]any) {
		r := x.(map[string]any)
		remote := "any"
		if r["remote_group_id"] == g["id"] {
			remote = "self"
		}
		if r["protocol"] != nil || r["remote_ip_prefix"] != nil {
			t.Fatalf("default rule: %v", r)
		}
		rules = append(rules, fmt.Sprintf("%s/%s/%s", r["direction"], r["ethertype"], remote))
	}
	sort.Strings(rules)
	if fmt.Sprint(rules) != "[egress/IPv4/any egress/IPv6/any ingress/IPv4/self ingress/IPv6/self]" {
		t.Fatalf("default rules: %v", rules)
	}
	// Listing again makes no second one; creating a network in another
	// project makes that project's.
	_, body = f.call("GET", "/v2.0/security-groups", alice, nil)
	if len(body["security_groups"].([]any)) != 1 {
		t.Fatal("second default group")
	}
	f.network(bob, "b")
	v, _ := Load(f.local.Local())
	if len(v.Groups) != 2 || len(v.Rules) != 8 {
		t.Fatalf("groups %d rules %d", len(v.Groups), len(v.Rules))
	}
	gid := g["id"].(string)
	f.expect("PUT", "/v2.0/security-groups/"+gid, alice, map[string]any{"security_group": map[string]any{"name": "mine"}}, 409, "SecurityGroupCannotUpdateDefault")
	f.expect("PUT", "/v2.0/security-groups/"+gid, alice, map[string]any{"security_group": map[string]any{"description": "ok"}}, 200, "")
	f.expect("DELETE", "/v2.0/security-groups/"+gid, alice, nil, 409, "SecurityGroupCannotRemoveDefault")
	f.expect("POST", "/v2.0/security-groups", alice, map[string]any{"security_group": map[string]any{"name": "default"}}, 409, "SecurityGroupDefaultAlreadyExists")
	f.expect("DELETE", "/v2.0/security-groups/"+gid, admin, nil, 204, "")
}

func TestSecurityGroupsAndRules(t *testing.T) {
	f := newFixture(t)
	g := f.mk(alice, "security-groups", "security_group", map[string]any{"name": "web", "description": "web servers"})
	gid := g["id"].(string)
	if len(g["security_group_rules"].([]any)) != 2 {
		t.Fatalf("new group rules: %v", g["security_group_rules"])
	}
	other := f.mk(alice, "security-groups", "security_group", map[string]any{"name": "db"})["id"].(string)
	rule := func(fields map[string]any) map[string]any {
		fields["security_group_id"] = gid
		return fields
	}
	// A range with host bits is shown as given, as Neutron keeps it (its
	// network, 10.0.0.0/24, is what is enforced).
	r := f.mk(alice, "security-group-rules", "security_group_rule", rule(map[string]any{"direction": "ingress", "protocol": "tcp",
		"port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "10.0.0.1/24"}))
	if r["protocol"] != "tcp" || r["port_range_min"] != 22.0 || r["remote_ip_prefix"] != "10.0.0.1/24" || r["ethertype"] != "IPv4" || r["tenant_id"] != projA {
		t.Fatalf("rule: %v", r)
	}
	r2 := f.mk(alice, "security-group-rules", "security_group_rule", rule(map[string]any{"direction": "ingress", "protocol": "17", "remote_group_id": other}))
	r3 := f.mk(alice, "security-group-rules", "security_group_rule", rule(map[string]any{"direction": "ingress", "protocol": "icmp", "port_range_min": 8, "port_range_max": 0}))
	f.mk(alice, "security-group-rules", "security_group_rule", rule(map[string]any{"direction": "egress", "ethertype": "ipv6", "protocol": "icmp"}))
	if r2["protocol"] != "17" || r2["remote_group_id"] != other || r3["port_range_max"] != 0.0 {
		t.Fatalf("rules: %v %v", r2, r3)
	}
	// The rows carry the normalized protocol number.
	v, _ := Load(f.local.Local())
	protos := map[string]string{}
	for _, rl := range v.Rules {
		protos[rl.ID] = rl.Protocol
	}
	if protos[r["id"].(string)] != "6" || protos[r2["id"].(string)] != "17" || protos[r3["id"].(string)] != "1" {
		t.Fatalf("normalized protocols: %v", protos)
	}
	bad := map[string]struct {
		fields map[string]any
		status int
		typ    string
		msg    string
	}{
		"duplicate":             {map[string]any{"direction": "ingress", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "10.0.0.0/24"}, 409, "SecurityGroupRuleExists", r["id"].(string)},
		"duplicate by number":   {map[string]any{"direction": "ingress", "protocol": "6", "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "10.0.0.0/24"}, 409, "SecurityGroupRuleExists", ""},
		"no direction":          {map[string]any{"protocol": "tcp"}, 400, "HTTPBadRequest", "direction"},
		"bad direction":         {map[string]any{"direction": "sideways"}, 400, "HTTPBadRequest", "direction"},
		"bad ethertype":         {map[string]any{"direction": "ingress", "ethertype": "IPv5"}, 400, "HTTPBadRequest", "ethertype"},
		"unknown protocol":      {map[string]any{"direction": "ingress", "protocol": "bogus"}, 400, "SecurityGroupRuleInvalidProtocol", "bogus"},
		"protocol too big":      {map[string]any{"direction": "ingress", "protocol": 256}, 400, "SecurityGroupRuleInvalidProtocol", ""},
		"min above max":         {map[string]any{"direction": "ingress", "protocol": "tcp", "port_range_min": 30, "port_range_max": 20}, 400, "SecurityGroupInvalidPortRange", ""},
		"only min":              {map[string]any{"direction": "ingress", "protocol": "udp", "port_range_min": 30}, 400, "SecurityGroupInvalidPortRange", ""},
		"port zero":             {map[string]any{"direction": "ingress", "protocol": "tcp", "port_range_min": 0, "port_range_max": 20}, 400, "SecurityGroupInvalidPortValue", ""},
		"port too big":          {map[string]any{"direction": "ingress", "protocol": "tcp", "port_range_min": 1, "port_range_max": 70000}, 400, "HTTPBadRequest", "port_range_max"},
		"port not a number":     {map[string]any{"direction": "ingress", "protocol": "tcp", "port_range_min": "x", "port_range_max": 20}, 400, "HTTPBadRequest", "port_range_min"},
		"ports without proto":   {map[string]any{"direction": "ingress", "port_range_min": 1, "port_range_max": 20}, 400, "SecurityGroupProtocolRequiredWithPorts", ""},
		"ports for gre":         {map[string]any{"direction": "ingress", "protocol": "gre", "port_range_min": 1, "port_range_max": 20}, 400, "SecurityGroupInvalidProtocolForPort", ""},
		"icmp code no type":     {map[string]any{"direction": "ingress", "protocol": "icmp", "port_range_max": 0}, 400, "SecurityGroupMissingIcmpType", ""},
		"icmp type too big":     {map[string]any{"direction": "ingress", "protocol": "icmp", "port_range_min": 300}, 400, "SecurityGroupInvalidIcmpValue", ""},
		"icmpv6 on IPv4":        {map[string]any{"direction": "ingress", "protocol": "icmpv6"}, 400, "SecurityGroupEthertypeConflictWithProtocol", ""},
		"prefix family":         {map[string]any{"direction": "ingress", "remote_ip_prefix": "::/0"}, 400, "SecurityGroupRuleParameterConflict", ""},
		"bad prefix":            {map[string]any{"direction": "ingress", "remote_ip_prefix": "10.0.0.0/99"}, 400, "HTTPBadRequest", "remote_ip_prefix"},
		"prefix and group":      {map[string]any{"direction": "ingress", "remote_ip_prefix": "10.0.0.0/8", "remote_group_id": other}, 400, "SecurityGroupRemoteGroupAndRemoteIpPrefix", ""},
		"unknown remote":        {map[string]any{"direction": "ingress", "remote_group_id": "nope"}, 404, "SecurityGroupNotFound", ""},
		"unknown group":         {map[string]any{"direction": "ingress", "security_group_id": "nope"}, 404, "SecurityGroupNotFound", ""},
		"unknown address group": {map[string]any{"direction": "ingress", "remote_address_group_id": "x"}, 404, "AddressGroupNotFound", "x"},
		"unknown attribute":     {map[string]any{"direction": "ingress", "remote_address_grp": "x"}, 400, "HTTPBadRequest", "remote_address_grp"},
	}
	for name, tc := range bad {
		t.Run(name, func(t *testing.T) {
			fields := rule(map[string]any{})
			for k, v := range tc.fields {
				fields[k] = v
			}
			f.expect("POST", "/v2.0/security-group-rules", alice, map[string]any{"security_group_rule": fields}, tc.status, tc.typ, tc.msg)
		})
	}
	// Rules of another project's group: not visible, not addable.
	f.expect("POST", "/v2.0/security-group-rules", bob, map[string]any{"security_group_rule": rule(map[string]any{"direction": "ingress"})}, 404, "SecurityGroupNotFound")
	f.expect("GET", "/v2.0/security-group-rules/"+r["id"].(string), bob, nil, 404, "SecurityGroupRuleNotFound")
	f.expect("DELETE", "/v2.0/security-group-rules/"+r["id"].(string), bob, nil, 404, "SecurityGroupRuleNotFound")
	body := f.expect("GET", "/v2.0/security-group-rules?security_group_id="+gid+"&direction=ingress", alice, nil, 200, "")
	if n := len(body["security_group_rules"].([]any)); n != 3 {
		t.Fatalf("filtered rules: %d", n)
	}
	body = f.expect("PUT", "/v2.0/security-groups/"+gid, alice, map[string]any{"security_group": map[string]any{"name": "www", "description": "d2"}}, 200, "")
	// Four rules were added (each a revision of the group that shows
	// them, as in Neutron), then this update.
	if ug := body["security_group"].(map[string]any); ug["name"] != "www" || ug["revision_number"] != 5.0 {
		t.Fatalf("updated group: %v", ug)
	}
	f.expect("PUT", "/v2.0/security-groups/"+gid, alice, map[string]any{"security_group": map[string]any{"name": "Default"}}, 409, "SecurityGroupDefaultAlreadyExists")
	f.expect("POST", "/v2.0/security-groups", alice, map[string]any{"security_group": map[string]any{"name": "x", "stateful": "sometimes"}}, 400, "HTTPBadRequest", "stateful")
	f.expect("DELETE", "/v2.0/security-group-rules/"+r["id"].(string), alice, nil, 204, "")
	f.expect("GET", "/v2.0/security-group-rules/"+r["id"].(string), alice, nil, 404, "SecurityGroupRuleNotFound")
	// Deleting a group takes its rules and the rules that refer to it.
	f.expect("DELETE", "/v2.0/security-groups/"+other, alice, nil, 204, "")
	f.expect("GET", "/v2.0/security-group-rules/"+r2["id"].(string), alice, nil, 404, "SecurityGroupRuleNotFound")
	f.expect("DELETE", "/v2.0/security-groups/"+gid, alice, nil, 204, "")
	f.expect("GET", "/v2.0/security-groups/"+gid, alice, nil, 404, "SecurityGroupNotFound")
	v, _ = Load(f.local.Local())
	for _, rl := range v.Rules {
		if rl.GroupID == gid || rl.GroupID == other {
			t.Fatalf("rule %s outlived its group", rl.ID)
		}
	}
}

func TestProjectIsolation(t *testing.T) {
	f := newFixture(t)
	a := f.network(alice, "a-net")
	aid := a["id"].(string)
	asub := f.subnet(alice, aid, "10.0.0.0/24")["id"].(string)
	aport := f.port(alice, aid)["id"].(string)
	ag := f.mk(alice, "security-groups", "security_group", map[string]any{"name": "a-group"})["id"].(string)
	shared := f.network(admin, "shared", "shared", true)
	shid := shared["id"].(string)
	f.subnet(admin, shid, "10.10.0.0/24")
	f.network(bob, "b-net")

	_, body := f.call("GET", "/v2.0/networks", bob, nil)
	if got := fmt.Sprint(sortedNames(body["networks"].([]any))); got != "[b-net shared]" {
		t.Fatalf("bob sees %s", got)
	}
	_, body = f.call("GET", "/v2.0/networks", admin, nil)
	if n := len(body["networks"].([]any)); n != 3 {
		t.Fatalf("admin sees %d networks", n)
	}
	for _, path := range []string{"/v2.0/networks/" + aid, "/v2.0/subnets/" + asub, "/v2.0/ports/" + aport, "/v2.0/security-groups/" + ag} {
		code, _ := f.call("GET", path, bob, nil)
		if code != 404 {
			t.Errorf("bob GET %s: %d", path, code)
		}
		if code, _ := f.call("DELETE", path, bob, nil); code != 404 {
			t.Errorf("bob DELETE %s: %d", path, code)
		}
	}
	f.expect("PUT", "/v2.0/networks/"+aid, bob, map[string]any{"network": map[string]any{"name": "mine"}}, 404, "NetworkNotFound")
	f.expect("POST", "/v2.0/ports", bob, map[string]any{"port": map[string]any{"network_id": aid}}, 404, "NetworkNotFound")
	_, body = f.call("GET", "/v2.0/ports", bob, nil)
	if n := len(body["ports"].([]any)); n != 0 {
		t.Fatalf("bob sees %d ports", n)
	}
	// The shared network and its subnet are visible and take bob's ports,
	// but only the owner changes it, and bob may not pick addresses on it.
	f.expect("GET", "/v2.0/networks/"+shid, bob, nil, 200, "")
	_, body = f.call("GET", "/v2.0/subnets", bob, nil)
	if n := len(body["subnets"].([]any)); n != 1 {
		t.Fatalf("bob sees %d subnets", n)
	}
	bp := f.port(bob, shid)
	if bp["tenant_id"] != projB || len(ips(bp)) != 1 {
		t.Fatalf("bob's port: %v", bp)
	}
	f.expect("POST", "/v2.0/ports", bob, map[string]any{"port": map[string]any{"network_id": shid, "fixed_ips": []map[string]any{{"ip_address": "10.10.0.99"}}}}, 403, "PolicyNotAuthorized")
	f.expect("POST", "/v2.0/ports", bob, map[string]any{"port": map[string]any{"network_id": shid, "mac_address": "fa:16:3e:00:00:01"}}, 403, "PolicyNotAuthorized")
	f.expect("DELETE", "/v2.0/networks/"+shid, bob, nil, 403, "PolicyNotAuthorized")
	f.expect("PUT", "/v2.0/networks/"+shid, bob, map[string]any{"network": map[string]any{"name": "x"}}, 403, "PolicyNotAuthorized")
	f.expect("POST", "/v2.0/subnets", bob, map[string]any{"subnet": map[string]any{"network_id": shid, "cidr": "10.11.0.0/24", "ip_version": 4}}, 403, "PolicyNotAuthorized")
	// Unsharing a network other projects use is refused.
	f.expect("PUT", "/v2.0/networks/"+shid, admin, map[string]any{"network": map[string]any{"shared": false}}, 409, "InvalidSharedSetting")
	// The network owner sees bob's port on it; a reader only reads.
	f.expect("GET", "/v2.0/ports/"+bp["id"].(string), admin, nil, 200, "")
	f.expect("GET", "/v2.0/networks/"+aid, carol, nil, 200, "")
	f.expect("DELETE", "/v2.0/networks/"+aid, carol, nil, 403, "PolicyNotAuthorized")
	// Admins create in any project.
	n := f.network(admin, "for-b", "tenant_id", projB)
	f.expect("GET", "/v2.0/networks/"+n["id"].(string), bob, nil, 200, "")
	f.expect("POST", "/v2.0/networks", admin, map[string]any{"network": map[string]any{"tenant_id": projA, "project_id": projB}}, 400, "HTTPBadRequest", "project_id")
}

func sortedNames(list []any) []string {
	out := names(list)
	sort.Strings(out)
	return out
}

func TestNetworkDeleteCascades(t *testing.T) {
	f := newFixture(t)
	nid := f.network(alice, "n")["id"].(string)
	sid := f.subnet(alice, nid, "10.0.0.0/24")["id"].(string)
	sid2 := f.subnet(alice, nid, "10.0.1.0/24")["id"].(string)
	dhcp := f.port(alice, nid, "device_owner", "network:dhcp", "fixed_ips", []map[string]any{{"subnet_id": sid}, {"subnet_id": sid2}})
	if len(dhcp["security_groups"].([]any)) != 0 {
		t.Fatalf("a network port got a group: %v", dhcp)
	}
	vm := f.port(alice, nid, "device_owner", "compute:nova")
	f.expect("DELETE", "/v2.0/networks/"+nid, alice, nil, 409, "NetworkInUse")
	// A subnet the DHCP port alone uses can go; the port loses the address.
	f.expect("DELETE", "/v2.0/ports/"+vm["id"].(string), alice, nil, 204, "")
	f.expect("DELETE", "/v2.0/subnets/"+sid, alice, nil, 204, "")
	_, body := f.call("GET", "/v2.0/ports/"+dhcp["id"].(string), alice, nil)
	if got := ips(body["port"].(map[string]any)); fmt.Sprint(got) != "[10.0.1.2]" {
		t.Fatalf("dhcp port ips: %v", got)
	}
	f.expect("DELETE", "/v2.0/networks/"+nid, alice, nil, 204, "")
	v, _ := Load(f.local.Local())
	if len(v.Networks)+len(v.Subnets)+len(v.Ports) != 0 {
		t.Fatalf("left over: %+v", v)
	}
	tx := f.local.Local()
	if raw, _ := tx.First(tAllocations, "id"); raw != nil {
		t.Fatalf("allocation left: %+v", raw)
	}
}

func TestBulkCreateIsAllOrNothing(t *testing.T) {
	f := newFixture(t)
	code, body := f.call("POST", "/v2.0/networks", alice, map[string]any{"networks": []map[string]any{{"name": "x"}, {"name": "y"}}})
	if code != 201 || len(body["networks"].([]any)) != 2 {
		t.Fatalf("bulk: %d %v", code, body)
	}
	nid := body["networks"].([]any)[0].(map[string]any)["id"].(string)
	f.subnet(alice, nid, "10.0.0.0/24")
	// The second port's address is the first's: neither is created.
	f.expect("POST", "/v2.0/ports", alice, map[string]any{"ports": []map[string]any{
		{"network_id": nid, "fixed_ips": []map[string]any{{"ip_address": "10.0.0.9"}}},
		{"network_id": nid, "fixed_ips": []map[string]any{{"ip_address": "10.0.0.9"}}},
	}}, 409, "IpAddressAlreadyAllocated")
	_, body = f.call("GET", "/v2.0/ports", alice, nil)
	if n := len(body["ports"].([]any)); n != 0 {
		t.Fatalf("%d ports after a failed bulk create", n)
	}
	code, body = f.call("POST", "/v2.0/subnets", alice, map[string]any{"subnets": []map[string]any{
		{"network_id": nid, "cidr": "10.1.0.0/24", "ip_version": 4}, {"network_id": nid, "cidr": "10.1.0.0/25", "ip_version": 4},
	}})
	if code != 400 {
		t.Fatalf("overlapping bulk subnets: %d %v", code, body)
	}
	_, body = f.call("GET", "/v2.0/subnets", alice, nil)
	if n := len(body["subnets"].([]any)); n != 1 {
		t.Fatalf("%d subnets after a failed bulk create", n)
	}
}

func TestQuotas(t *testing.T) {
	f := newFixture(t)
	body := f.expect("GET", "/v2.0/quotas/"+projA, alice, nil, 200, "")
	q := body["quota"].(map[string]any)
	if q["network"] != 100.0 || q["subnet"] != 100.0 || q["port"] != 500.0 || q["security_group"] != 10.0 || q["security_group_rule"] != 100.0 {
		t.Fatalf("default quota: %v", q)
	}
	f.expect("GET", "/v2.0/quotas/"+projB, alice, nil, 403, "")
	f.expect("PUT", "/v2.0/quotas/"+projA, alice, map[string]any{"quota": map[string]any{"network": 1}}, 403, "PolicyNotAuthorized")
	f.expect("PUT", "/v2.0/quotas/"+projA, admin, map[string]any{"quota": map[string]any{"network": -2}}, 400, "HTTPBadRequest", "network")
	f.expect("PUT", "/v2.0/quotas/"+projA, admin, map[string]any{"quota": map[string]any{"loadbalancer": 2}}, 400, "HTTPBadRequest", "loadbalancer")
	body = f.expect("PUT", "/v2.0/quotas/"+projA, admin, map[string]any{"quota": map[string]any{"network": 1, "port": "2", "security_group": 1}}, 200, "")
	if q := body["quota"].(map[string]any); q["network"] != 1.0 || q["port"] != 2.0 || q["subnet"] != 100.0 {
		t.Fatalf("set quota: %v", q)
	}
	nid := f.network(alice, "one")["id"].(string)
	f.expect("POST", "/v2.0/networks", alice, map[string]any{"network": map[string]any{"name": "two"}}, 409, "OverQuota", "network")
	f.port(alice, nid)
	f.port(alice, nid)
	f.expect("POST", "/v2.0/ports", alice, map[string]any{"port": map[string]any{"network_id": nid}}, 409, "OverQuota", "port")
	// The default group counts: no room for another.
	f.expect("POST", "/v2.0/security-groups", alice, map[string]any{"security_group": map[string]any{"name": "x"}}, 409, "OverQuota", "security_group")
	body = f.expect("GET", "/v2.0/quotas/"+projA+"/details.json", alice, nil, 200, "")
	if d := body["quota"].(map[string]any)["network"].(map[string]any); d["used"] != 1.0 || d["limit"] != 1.0 {
		t.Fatalf("details: %v", d)
	}
	body = f.expect("GET", "/v2.0/quotas", admin, nil, 200, "")
	if qs := body["quotas"].([]any); len(qs) != 1 || qs[0].(map[string]any)["project_id"] != projA {
		t.Fatalf("quota list: %v", qs)
	}
	body = f.expect("GET", "/v2.0/quotas/"+projA+"/default", alice, nil, 200, "")
	if body["quota"].(map[string]any)["network"] != 100.0 {
		t.Fatalf("defaults: %v", body)
	}
	f.expect("DELETE", "/v2.0/quotas/"+projA, alice, nil, 403, "")
	f.expect("DELETE", "/v2.0/quotas/"+projA, admin, nil, 204, "")
	f.network(alice, "two")
	// Unlimited.
	f.expect("PUT", "/v2.0/quotas/"+projA, admin, map[string]any{"quota": map[string]any{"network": -1}}, 200, "")
	f.network(alice, "three")
}

func TestListFiltersSortingPaging(t *testing.T) {
	f := newFixture(t)
	for _, n := range []string{"c", "a", "b", "d"} {
		f.network(alice, n, "admin_state_up", n != "d")
	}
	f.network(alice, "a")
	get := func(q string) map[string]any {
		t.Helper()
		return f.expect("GET", "/v2.0/networks?"+q, alice, nil, 200, "")
	}
	if got := sortedNames(get("name=a&name=b")["networks"].([]any)); fmt.Sprint(got) != "[a a b]" {
		t.Fatalf("name filter: %v", got)
	}
	if got := names(get("admin_state_up=False")["networks"].([]any)); fmt.Sprint(got) != "[d]" {
		t.Fatalf("bool filter: %v", got)
	}
	if got := get("tenant_id=" + projB)["networks"].([]any); len(got) != 0 {
		t.Fatalf("tenant filter: %v", got)
	}
	if got := get("no_such_attribute=1")["networks"].([]any); len(got) != 5 {
		t.Fatalf("unknown filter is not ignored: %d", len(got))
	}
	fields := get("fields=id&fields=name")["networks"].([]any)[0].(map[string]any)
	if len(fields) != 2 || fields["name"] == nil || fields["id"] == nil {
		t.Fatalf("fields: %v", fields)
	}
	if got := names(get("sort_key=name&sort_dir=desc")["networks"].([]any)); fmt.Sprint(got) != "[d c b a a]" {
		t.Fatalf("sorted: %v", got)
	}
	f.expect("GET", "/v2.0/networks?sort_key=name&sort_dir=sideways", alice, nil, 400, "HTTPBadRequest", "sort_dir")
	f.expect("GET", "/v2.0/networks?sort_key=nope", alice, nil, 400, "HTTPBadRequest", "sort_key")
	f.expect("GET", "/v2.0/networks?limit=x", alice, nil, 400, "HTTPBadRequest", "limit")
	// Page through by name, two at a time.
	var all []string
	q := "sort_key=name&sort_dir=asc&limit=2"
	for i := 0; i < 5; i++ {
		body := get(q)
		page := body["networks"].([]any)
		all = append(all, names(page)...)
		next := ""
		links, _ := body["networks_links"].([]any)
		for _, l := range links {
			if l.(map[string]any)["rel"] == "next" {
				next = l.(map[string]any)["href"].(string)
			}
		}
		if next == "" {
			break
		}
		_, q, _ = strings.Cut(next, "?")
	}
	if fmt.Sprint(all) != "[a a b c d]" {
		t.Fatalf("paged: %v", all)
	}
	// Show honours fields too.
	id := get("name=c")["networks"].([]any)[0].(map[string]any)["id"].(string)
	body := f.expect("GET", "/v2.0/networks/"+id+"?fields=name", alice, nil, 200, "")
	if n := body["network"].(map[string]any); len(n) != 1 || n["name"] != "c" {
		t.Fatalf("show fields: %v", n)
	}
	// Ports by address.
	sid := f.subnet(alice, id, "10.0.0.0/24")["id"].(string)
	f.port(alice, id)
	p := f.port(alice, id, "name", "second")
	body = f.expect("GET", "/v2.0/ports?fixed_ips=ip_address%3D10.0.0.3&fixed_ips=subnet_id%3D"+sid, alice, nil, 200, "")
	if got := body["ports"].([]any); len(got) != 1 || got[0].(map[string]any)["id"] != p["id"] {
		t.Fatalf("fixed_ips filter: %v", got)
	}
}

func TestLoadView(t *testing.T) {
	f := newFixture(t)
	nid := f.network(alice, "n")["id"].(string)
	f.subnet(alice, nid, "10.0.0.0/24", "host_routes", []map[string]any{{"destination": "0.0.0.0/0", "nexthop": "10.0.0.1"}})
	g := f.mk(alice, "security-groups", "security_group", map[string]any{"name": "g"})["id"].(string)
	f.mk(alice, "security-group-rules", "security_group_rule", map[string]any{"security_group_id": g, "direction": "ingress", "protocol": "tcp", "port_range_min": 80, "port_range_max": 90})
	f.port(alice, nid, "security_groups", []string{g}, "binding:host_id", "node1", "allowed_address_pairs", []map[string]any{{"ip_address": "10.0.9.0/24", "mac_address": "fa:16:3e:aa:bb:cc"}})
	v, err := Load(f.local.Local())
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Networks) != 1 || len(v.Subnets) != 1 || len(v.Ports) != 1 || len(v.Groups) != 2 || len(v.Rules) != 7 {
		t.Fatalf("view sizes: %d %d %d %d %d", len(v.Networks), len(v.Subnets), len(v.Ports), len(v.Groups), len(v.Rules))
	}
	n, s, p := v.Networks[0], v.Subnets[0], v.Ports[0]
	if n.SegmentationID != vlanLow || n.MTU != 1500 || !n.PortSecurity || !n.AdminStateUp || n.Project != projA {
		t.Fatalf("network row: %+v", n)
	}
	if s.CIDR != "10.0.0.0/24" || s.GatewayIP != "10.0.0.1" || s.IPVersion != 4 || !s.EnableDHCP || s.HostRoutes[0] != (HostRoute{Destination: "0.0.0.0/0", Nexthop: "10.0.0.1"}) || s.AllocationPools[0] != (Pool{Start: "10.0.0.2", End: "10.0.0.254"}) {
		t.Fatalf("subnet row: %+v", s)
	}
	if p.HostID != "node1" || p.FixedIPs[0] != (FixedIP{SubnetID: s.ID, IP: "10.0.0.2"}) || p.SecurityGroups[0] != g || p.AllowedAddressPairs[0] != (AddressPair{IP: "10.0.9.0/24", MAC: "fa:16:3e:aa:bb:cc"}) || p.Status != "DOWN" {
		t.Fatalf("port row: %+v", p)
	}
	for _, r := range v.Rules {
		if r.Protocol == "6" && (r.PortMin == nil || *r.PortMin != 80 || *r.PortMax != 90) {
			t.Fatalf("rule row: %+v", r)
		}
	}
	if fmt.Sprint(TableNames()) != fmt.Sprint([]string{tNetworks, tSubnets, tPorts, tGroups, tRules, tRouters, tFloatingIPs, tSubnetPools, tAddressScopes, tMeteringLabels, tMeteringRules, tAddressGroups, tQoSPolicies, tQoSRules, tTrunks, tPortForwardings}) {
		t.Fatalf("table names: %v", TableNames())
	}
}

func TestNewValidatesConfig(t *testing.T) {
	local, _ := store.NewLocal(Schema())
	for name, cfg := range map[string]Config{
		"no repl":       {Auth: apitest.Tokens{}},
		"no auth":       {Repl: local},
		"vlan reversed": {Repl: local, Auth: apitest.Tokens{}, VLANMin: 200, VLANMax: 100},
		"vlan too high": {Repl: local, Auth: apitest.Tokens{}, VLANMin: 100, VLANMax: 4095},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestSnapshotRestoreEveryCommand applies every network command type and
// checks the state survives a snapshot and restore byte for byte.
func TestSnapshotRestoreEveryCommand(t *testing.T) {
	f := newFixture(t)
	nid := f.network(alice, "n")["id"].(string)
	f.expect("PUT", "/v2.0/networks/"+nid, alice, map[string]any{"network": map[string]any{"name": "n2"}}, 200, "")
	f.expect("PUT", "/v2.0/networks/"+nid+"/tags/red", alice, nil, 201, "")
	f.svc.cfg.Agents = agentHosts{{Name: "node1", Up: true}}
	f.expect("POST", "/v2.0/agents/"+agentID(dhcpAgentType, "node1")+"/dhcp-networks", admin, map[string]any{"network_id": nid}, 201, "")
	f.expect("PUT", "/v2.0/agents/"+agentID(dhcpAgentType, "node1"), admin, map[string]any{"agent": map[string]any{"description": "d"}}, 200, "")
	sid := f.subnet(alice, nid, "10.0.0.0/24")["id"].(string)
	f.expect("PUT", "/v2.0/subnets/"+sid, alice, map[string]any{"subnet": map[string]any{"name": "s2"}}, 200, "")
	pid := f.port(alice, nid)["id"].(string)
	f.expect("PUT", "/v2.0/ports/"+pid, alice, map[string]any{"port": map[string]any{"name": "p2"}}, 200, "")
	if err := f.svc.SetPortStatus(context.Background(), pid, "ACTIVE"); err != nil {
		t.Fatal(err)
	}
	f.call("GET", "/v2.0/security-groups", bob, nil) // the default group command
	g := f.mk(alice, "security-groups", "security_group", map[string]any{"name": "g"})["id"].(string)
	f.expect("PUT", "/v2.0/security-groups/"+g, alice, map[string]any{"security_group": map[string]any{"name": "g2"}}, 200, "")
	r := f.mk(alice, "security-group-rules", "security_group_rule", map[string]any{"security_group_id": g, "direction": "ingress", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22})
	f.mk(alice, "security-group-rules", "security_group_rule", map[string]any{"security_group_id": g, "direction": "ingress", "remote_ip_prefix": "10.0.0.0/8"})
	f.expect("PUT", "/v2.0/quotas/"+projB, admin, map[string]any{"quota": map[string]any{"port": 7}}, 200, "")
	f.expect("PUT", "/v2.0/quotas/"+projA, admin, map[string]any{"quota": map[string]any{"port": 7}}, 200, "")
	f.expect("DELETE", "/v2.0/quotas/"+projB, admin, nil, 204, "")
	f.expect("DELETE", "/v2.0/security-group-rules/"+r["id"].(string), alice, nil, 204, "")
	f.expect("POST", "/v2.0/security-groups", alice, map[string]any{"security_groups": []any{map[string]any{"name": "bulk1"}, map[string]any{"name": "bulk2"}}}, 201, "")
	g2 := f.mk(alice, "security-groups", "security_group", map[string]any{"name": "gone"})["id"].(string)
	f.expect("DELETE", "/v2.0/security-groups/"+g2, alice, nil, 204, "")
	n2 := f.network(alice, "gone")["id"].(string)
	s2 := f.subnet(alice, n2, "10.0.0.0/24")["id"].(string)
	p2 := f.port(alice, n2)["id"].(string)
	f.expect("DELETE", "/v2.0/ports/"+p2, alice, nil, 204, "")
	f.expect("DELETE", "/v2.0/subnets/"+s2, alice, nil, 204, "")
	f.expect("DELETE", "/v2.0/networks/"+n2, alice, nil, 204, "")
	l3 := f.l3(alice)
	fip := f.mk(alice, "floatingips", "floatingip", map[string]any{"floating_network_id": l3.ext, "port_id": l3.port})["id"].(string)
	if err := f.svc.SetFloatingIPStatus(context.Background(), fip, "ACTIVE"); err != nil {
		t.Fatal(err)
	}
	f.expect("PUT", "/v2.0/floatingips/"+fip, alice, map[string]any{"floatingip": map[string]any{"port_id": nil}}, 200, "")
	pfs := "/v2.0/floatingips/" + fip + "/port_forwardings"
	pf := f.mk(alice, "floatingips/"+fip+"/port_forwardings", "port_forwarding", map[string]any{"protocol": "tcp", "external_port": 2222, "internal_port": 22, "internal_port_id": l3.port})["id"].(string)
	f.expect("PUT", pfs+"/"+pf, alice, map[string]any{"port_forwarding": map[string]any{"description": "d"}}, 200, "")
	f.expect("DELETE", pfs+"/"+pf, alice, nil, 204, "")
	f.mk(alice, "floatingips/"+fip+"/port_forwardings", "port_forwarding", map[string]any{"protocol": "udp", "external_port": 53, "internal_port": 53, "internal_port_id": l3.port})
	f.expect("DELETE", "/v2.0/floatingips/"+fip, alice, nil, 204, "")
	f.expect("PUT", "/v2.0/routers/"+l3.router, alice, map[string]any{"router": map[string]any{"name": "r2"}}, 200, "")
	f.expect("PUT", "/v2.0/routers/"+l3.router+"/remove_router_interface", alice, map[string]any{"subnet_id": l3.subnet}, 200, "")
	f.expect("DELETE", "/v2.0/routers/"+l3.router, alice, nil, 204, "")
	pool := f.mk(alice, "subnetpools", "subnetpool", map[string]any{"name": "p", "prefixes": []string{"10.40.0.0/16"}, "default_prefixlen": 24})["id"].(string)
	f.expect("PUT", "/v2.0/subnetpools/"+pool, alice, map[string]any{"subnetpool": map[string]any{"name": "p2"}}, 200, "")
	f.mk(alice, "subnets", "subnet", map[string]any{"network_id": nid, "ip_version": 4, "subnetpool_id": pool})
	gone := f.mk(alice, "subnetpools", "subnetpool", map[string]any{"prefixes": []string{"10.41.0.0/16"}})["id"].(string)
	f.expect("DELETE", "/v2.0/subnetpools/"+gone, alice, nil, 204, "")
	scope := f.mk(alice, "address-scopes", "address_scope", map[string]any{"name": "s", "ip_version": 4})["id"].(string)
	f.expect("PUT", "/v2.0/address-scopes/"+scope, alice, map[string]any{"address_scope": map[string]any{"name": "s2"}}, 200, "")
	f.mk(alice, "subnetpools", "subnetpool", map[string]any{"prefixes": []string{"10.42.0.0/16"}, "address_scope_id": scope})
	goneScope := f.mk(alice, "address-scopes", "address_scope", map[string]any{"ip_version": 6})["id"].(string)
	f.expect("DELETE", "/v2.0/address-scopes/"+goneScope, alice, nil, 204, "")
	label := f.mk(admin, "metering/metering-labels", "metering_label", map[string]any{"name": "l"})["id"].(string)
	f.mk(admin, "metering/metering-label-rules", "metering_label_rule", map[string]any{"metering_label_id": label, "remote_ip_prefix": "10.9.0.0/16"})
	goneRule := f.mk(admin, "metering/metering-label-rules", "metering_label_rule", map[string]any{"metering_label_id": label, "remote_ip_prefix": "10.8.0.0/16"})["id"].(string)
	f.expect("DELETE", "/v2.0/metering/metering-label-rules/"+goneRule, admin, nil, 204, "")
	goneLabel := f.mk(admin, "metering/metering-labels", "metering_label", map[string]any{"name": "gone"})["id"].(string)
	f.expect("DELETE", "/v2.0/metering/metering-labels/"+goneLabel, admin, nil, 204, "")
	rbac := f.expect("POST", "/v2.0/rbac-policies", alice, rbacBody(nid, "access_as_shared", projB), 201, "")["rbac_policy"].(map[string]any)["id"].(string)
	f.expect("PUT", "/v2.0/rbac-policies/"+rbac, alice, map[string]any{"rbac_policy": map[string]any{"target_tenant": "project-c"}}, 200, "")
	goneRBAC := f.expect("POST", "/v2.0/rbac-policies", alice, rbacBody(nid, "access_as_shared", "project-d"), 201, "")["rbac_policy"].(map[string]any)["id"].(string)
	f.expect("DELETE", "/v2.0/rbac-policies/"+goneRBAC, alice, nil, 204, "")
	ag := f.mk(alice, "address-groups", "address_group", map[string]any{"name": "ag", "addresses": []string{"10.7.0.0/16"}})["id"].(string)
	f.expect("PUT", "/v2.0/address-groups/"+ag+"/add_addresses", alice, map[string]any{"addresses": []string{"10.6.0.0/16"}}, 200, "")
	f.mk(alice, "security-group-rules", "security_group_rule", map[string]any{"security_group_id": g, "direction": "ingress", "remote_address_group_id": ag})
	goneAG := f.mk(alice, "address-groups", "address_group", map[string]any{"name": "gone"})["id"].(string)
	f.expect("DELETE", "/v2.0/address-groups/"+goneAG, alice, nil, 204, "")
	f.mk(alice, "security-groups", "security_group", map[string]any{"name": "sl", "stateful": false})
	f.mk(alice, "subnets", "subnet", map[string]any{"network_id": nid, "cidr": "10.43.0.0/24", "ip_version": 4, "service_types": []string{"compute:nova"}})
	exerciseQoS(f, nid, pid)
	exerciseTrunks(f, nid)
	exerciseAutoTopology(f, l3.ext)
	first := store.EveryCommandSurvivesSnapshot(t, f.local, Schema(), eventstate.Schema())
	for _, want := range []string{`"t":"network_subnetpools"`, `"subnetpool_id":"` + pool + `"`, `"t":"network_networks"`, `"t":"network_ports"`, `"t":"network_ip_allocations"`, `"t":"network_quotas"`, `"name":"g2"`, `"remote_ip_prefix":"10.0.0.0/8"`, `"tags":["red"]`, `"dhcp_on":["node1"]`, `"address_scope_id":"` + scope + `"`, `"remote":"10.9.0.0/16"`, `"target":"project-c"`,
		`"remote_address_group_id":"` + ag + `"`, `"addresses":["10.6.0.0/16","10.7.0.0/16"]`, `"stateless":true`, `"service_types":["compute:nova"]`, `"t":"network_auto_topologies"`} {
		if !strings.Contains(string(first), want) {
			t.Errorf("snapshot lacks %s", want)
		}
	}
}

// An IPv6 subnet's first address (the subnet-router anycast) goes to a
// router's port or to a port of no owner yet (as Nova makes them), as
// Neutron's check_subnet_ip has it; a compute port asking for it is
// refused, and a server's port asking for it is made as Nova makes it
// (ownerless, then owned). A /128's one address is its pool, handed out
// to any port (Terraform's access_ip_v6 test gives a server one).
func TestIPv6SubnetRouterAnycast(t *testing.T) {
	f := newFixture(t)
	nid := f.mk(alice, "networks", "network", map[string]any{"name": "v6"})["id"].(string)
	sid := f.subnet(alice, nid, "2001:db8:5::/64", "enable_dhcp", false, "gateway_ip", nil)["id"].(string)
	want := []any{map[string]any{"subnet_id": sid, "ip_address": "2001:db8:5::"}}
	f.expect("POST", "/v2.0/ports", alice, map[string]any{"port": map[string]any{"network_id": nid, "device_owner": "compute:nova", "fixed_ips": want}}, 400, "InvalidIpForSubnet")
	p := f.mk(alice, "ports", "port", map[string]any{"network_id": nid, "fixed_ips": want})
	if ips := p["fixed_ips"].([]any); len(ips) != 1 || ips[0].(map[string]any)["ip_address"] != "2001:db8:5::" {
		t.Fatalf("fixed_ips %v", p["fixed_ips"])
	}
	f.expect("DELETE", "/v2.0/ports/"+p["id"].(string), alice, nil, 204, "")
	pa := &api.Principal{UserID: "u-alice", ProjectID: projA, Roles: []string{"member", "reader"}}
	pt, err := f.svc.ServerPorts().Create(context.Background(), pa, ServerPortRequest{NetworkID: nid, FixedIP: "2001:db8:5::", Project: projA, DeviceID: "server-1", DeviceOwner: "compute:nova"})
	if err != nil || pt.DeviceOwner != "compute:nova" || len(pt.FixedIPs) != 1 || pt.FixedIPs[0].IP != "2001:db8:5::" {
		t.Fatalf("server port on the anycast address: %+v %v", pt, err)
	}

	one := f.mk(alice, "networks", "network", map[string]any{"name": "v6-one"})["id"].(string)
	f.subnet(alice, one, "2001:db8:6::7/128", "enable_dhcp", false, "gateway_ip", nil)
	p = f.mk(alice, "ports", "port", map[string]any{"network_id": one, "device_owner": "compute:nova"})
	if ips := p["fixed_ips"].([]any); len(ips) != 1 || ips[0].(map[string]any)["ip_address"] != "2001:db8:6::7" {
		t.Fatalf("port on a /128: fixed_ips %v", p["fixed_ips"])
	}
}
