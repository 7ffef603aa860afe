package network

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/rackstack/rackstack/fabric/store"
)

func TestSubnetPoolCRUD(t *testing.T) {
	f := newFixture(t)
	sp := f.mk(alice, "subnetpools", "subnetpool", map[string]any{"name": "p", "prefixes": []string{"10.20.0.0/16", "10.20.5.0/24", "10.10.0.7/16"}})
	id := sp["id"].(string)
	// Host bits go, and a prefix inside another with them.
	if fmt.Sprint(sp["prefixes"]) != "[10.10.0.0/16 10.20.0.0/16]" || sp["ip_version"] != 4.0 ||
		sp["min_prefixlen"] != 8.0 || sp["max_prefixlen"] != 32.0 || sp["default_prefixlen"] != 8.0 ||
		sp["shared"] != false || sp["is_default"] != false || sp["address_scope_id"] != nil || sp["project_id"] != projA {
		t.Errorf("created %v", sp)
	}
	f.expect("GET", "/v2.0/subnetpools/"+id, alice, nil, 200, "")
	f.expect("GET", "/v2.0/subnetpools/"+id, bob, nil, 404, "SubnetPoolNotFound", id)
	body := f.expect("PUT", "/v2.0/subnetpools/"+id, alice, map[string]any{"subnetpool": map[string]any{"name": "p2", "default_prefixlen": 24}}, 200, "")
	if up := body["subnetpool"].(map[string]any); up["name"] != "p2" || up["default_prefixlen"] != 24.0 || up["revision_number"] != 1.0 {
		t.Errorf("updated %v", up)
	}
	f.expect("PUT", "/v2.0/subnetpools/"+id, bob, map[string]any{"subnetpool": map[string]any{"name": "x"}}, 404, "SubnetPoolNotFound")
	_, list := f.call("GET", "/v2.0/subnetpools?name=p2", alice, nil)
	if n := len(list["subnetpools"].([]any)); n != 1 {
		t.Errorf("list: %d pools, want 1", n)
	}
	_, list = f.call("GET", "/v2.0/subnetpools", bob, nil)
	if n := len(list["subnetpools"].([]any)); n != 0 {
		t.Errorf("bob lists %d pools, want 0", n)
	}
	f.expect("PUT", "/v2.0/subnetpools/"+id+"/tags/blue", alice, nil, 201, "")
	if tags := f.expect("GET", "/v2.0/subnetpools/"+id+"/tags", alice, nil, 200, "")["tags"]; fmt.Sprint(tags) != "[blue]" {
		t.Errorf("tags %v", tags)
	}
	f.expect("DELETE", "/v2.0/subnetpools/"+id, alice, nil, 204, "")
	f.expect("GET", "/v2.0/subnetpools/"+id, alice, nil, 404, "SubnetPoolNotFound")

	bad := map[string]struct {
		tok    string
		fields map[string]any
		status int
		typ    string
		msg    string
	}{
		"no prefixes":       {alice, map[string]any{"name": "x"}, 400, "HTTPBadRequest", "prefixes"},
		"empty prefixes":    {alice, map[string]any{"prefixes": []string{}}, 400, "HTTPBadRequest", "prefixes"},
		"bad prefix":        {alice, map[string]any{"prefixes": []string{"10.0.0.0/33"}}, 400, "HTTPBadRequest", "prefixes"},
		"mixed versions":    {alice, map[string]any{"prefixes": []string{"10.0.0.0/8", "2001:db8::/32"}}, 400, "HTTPBadRequest", "prefixes"},
		"min above max":     {alice, map[string]any{"prefixes": []string{"10.0.0.0/8"}, "min_prefixlen": 28, "max_prefixlen": 24}, 400, "InvalidInput", "min_prefixlen"},
		"default off range": {alice, map[string]any{"prefixes": []string{"10.0.0.0/8"}, "min_prefixlen": 16, "default_prefixlen": 12}, 400, "InvalidInput", "default_prefixlen"},
		"prefix past max":   {alice, map[string]any{"prefixes": []string{"10.0.0.0/26"}, "max_prefixlen": 24}, 400, "InvalidInput", "10.0.0.0/26"},
		"address scope":     {alice, map[string]any{"prefixes": []string{"10.0.0.0/8"}, "address_scope_id": "s"}, 404, "AddressScopeNotFound", "s"},
		"shared by member":  {alice, map[string]any{"prefixes": []string{"10.0.0.0/8"}, "shared": true}, 403, "PolicyNotAuthorized", "shared"},
		"default by member": {alice, map[string]any{"prefixes": []string{"10.0.0.0/8"}, "is_default": true}, 403, "PolicyNotAuthorized", "is_default"},
		"unknown attribute": {alice, map[string]any{"prefixes": []string{"10.0.0.0/8"}, "colour": "red"}, 400, "HTTPBadRequest", "colour"},
	}
	for name, tc := range bad {
		t.Run(name, func(t *testing.T) {
			f.expect("POST", "/v2.0/subnetpools", tc.tok, map[string]any{"subnetpool": tc.fields}, tc.status, tc.typ, tc.msg)
		})
	}
}

// TestSubnetsFromPool: subnets of one pool never overlap, whatever their
// networks, and a pool goes only when no subnet uses it.
func TestSubnetsFromPool(t *testing.T) {
	f := newFixture(t)
	pool := f.mk(alice, "subnetpools", "subnetpool", map[string]any{"name": "p", "prefixes": []string{"10.30.0.0/22"},
		"min_prefixlen": 23, "default_prefixlen": 24, "max_prefixlen": 28})["id"].(string)
	n1 := f.network(alice, "n1")["id"].(string)
	n2 := f.network(alice, "n2")["id"].(string)
	fromPool := func(net string, extra ...any) map[string]any {
		fields := map[string]any{"network_id": net, "ip_version": 4, "subnetpool_id": pool}
		for i := 0; i+1 < len(extra); i += 2 {
			fields[extra[i].(string)] = extra[i+1]
		}
		return fields
	}
	post := func(fields map[string]any, status int, typ string, msg ...string) map[string]any {
		t.Helper()
		return f.expect("POST", "/v2.0/subnets", alice, map[string]any{"subnet": fields}, status, typ, msg...)
	}
	a := post(fromPool(n1), 201, "")["subnet"].(map[string]any)
	if a["cidr"] != "10.30.0.0/24" || a["subnetpool_id"] != pool || a["gateway_ip"] != "10.30.0.1" {
		t.Errorf("first subnet %v", a)
	}
	b := post(fromPool(n2, "prefixlen", 28), 201, "")["subnet"].(map[string]any)
	if b["cidr"] != "10.30.1.0/28" {
		t.Errorf("second subnet %v, want 10.30.1.0/28 (another network, the same pool)", b["cidr"])
	}
	c := post(fromPool(n2, "prefixlen", 23), 201, "")["subnet"].(map[string]any)
	if c["cidr"] != "10.30.2.0/23" {
		t.Errorf("third subnet %v, want 10.30.2.0/23 (aligned past the /28)", c["cidr"])
	}
	bad := map[string]struct {
		fields map[string]any
		status int
		typ    string
		msg    string
	}{
		"exhausted":           {fromPool(n1, "prefixlen", 23), 409, "SubnetAllocationError", "/23"},
		"cidr overlaps pool":  {fromPool(n1, "cidr", "10.30.1.0/28"), 409, "SubnetAllocationError", "overlaps"},
		"cidr outside pool":   {fromPool(n1, "cidr", "10.31.0.0/24"), 400, "SubnetAllocationError", "10.31.0.0/24"},
		"cidr too long":       {fromPool(n1, "cidr", "10.30.1.128/29"), 400, "HTTPBadRequest", "cidr"},
		"prefixlen too short": {fromPool(n1, "prefixlen", 16), 400, "HTTPBadRequest", "prefixlen"},
		"cidr and prefixlen":  {fromPool(n1, "cidr", "10.30.1.64/28", "prefixlen", 28), 400, "InvalidInput", "prefixlen"},
		"wrong version":       {fromPool(n1, "ip_version", 6), 400, "InvalidInput", "IPv6"},
		"no default pool":     {map[string]any{"network_id": n1, "ip_version": 4, "use_default_subnetpool": true}, 400, "HTTPBadRequest", "use_default_subnetpool"},
	}
	for name, tc := range bad {
		t.Run(name, func(t *testing.T) { post(tc.fields, tc.status, tc.typ, tc.msg) })
	}
	// The explicit CIDR of a free range of the pool is the subnet's.
	d := post(fromPool(n1, "cidr", "10.30.1.16/28"), 201, "")["subnet"].(map[string]any)
	if d["cidr"] != "10.30.1.16/28" {
		t.Errorf("explicit cidr: %v", d["cidr"])
	}
	f.expect("DELETE", "/v2.0/subnetpools/"+pool, alice, nil, 409, "SubnetPoolInUse")
	// Prefixes grow, never shrink under the pool's subnets.
	f.expect("PUT", "/v2.0/subnetpools/"+pool, alice, map[string]any{"subnetpool": map[string]any{"prefixes": []string{"10.30.0.0/23"}}}, 400, "InvalidInput", "10.30.0.0/22")
	f.expect("PUT", "/v2.0/subnetpools/"+pool, alice, map[string]any{"subnetpool": map[string]any{"prefixes": []string{"10.30.0.0/21"}}}, 200, "")
	post(fromPool(n1, "prefixlen", 23), 201, "")
	for _, s := range []map[string]any{a, b, c, d} {
		f.expect("DELETE", "/v2.0/subnets/"+s["id"].(string), alice, nil, 204, "")
	}
	_, left := f.call("GET", "/v2.0/subnets", alice, nil)
	for _, s := range left["subnets"].([]any) {
		f.expect("DELETE", "/v2.0/subnets/"+s.(map[string]any)["id"].(string), alice, nil, 204, "")
	}
	f.expect("DELETE", "/v2.0/subnetpools/"+pool, alice, nil, 204, "")
}

func TestDefaultSubnetPool(t *testing.T) {
	f := newFixture(t)
	def := f.mk(admin, "subnetpools", "subnetpool", map[string]any{"name": "default", "prefixes": []string{"2001:db8::/48"}, "shared": true, "is_default": true})["id"].(string)
	f.expect("POST", "/v2.0/subnetpools", admin, map[string]any{"subnetpool": map[string]any{"prefixes": []string{"2001:db9::/48"}, "is_default": true}}, 409, "InvalidInput", def)
	other := f.mk(admin, "subnetpools", "subnetpool", map[string]any{"prefixes": []string{"2001:dba::/48"}})["id"].(string)
	f.expect("PUT", "/v2.0/subnetpools/"+other, admin, map[string]any{"subnetpool": map[string]any{"is_default": true}}, 409, "InvalidInput", def)
	n := f.network(alice, "n")["id"].(string)
	// Alice sees the shared default pool, and takes a /64 from it.
	f.expect("GET", "/v2.0/subnetpools/"+def, alice, nil, 200, "")
	s := f.expect("POST", "/v2.0/subnets", alice, map[string]any{"subnet": map[string]any{"network_id": n, "ip_version": 6, "use_default_subnetpool": true}}, 201, "")["subnet"].(map[string]any)
	if s["cidr"] != "2001:db8::/64" || s["subnetpool_id"] != def {
		t.Errorf("subnet from the default pool: %v", s)
	}
	// But she may not change it.
	f.expect("PUT", "/v2.0/subnetpools/"+def, alice, map[string]any{"subnetpool": map[string]any{"name": "mine"}}, 403, "PolicyNotAuthorized")
	f.expect("PUT", "/v2.0/subnetpools/"+def, admin, map[string]any{"subnetpool": map[string]any{"is_default": false}}, 200, "")
	f.expect("POST", "/v2.0/subnets", alice, map[string]any{"subnet": map[string]any{"network_id": n, "ip_version": 6, "use_default_subnetpool": true}}, 400, "HTTPBadRequest", "use_default_subnetpool")
}

func TestFreePrefix(t *testing.T) {
	pfx := func(ss ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	cases := map[string]struct {
		pool []netip.Prefix
		bits int
		used []netip.Prefix
		want string // "": none
	}{
		"empty pool":             {pfx("10.0.0.0/16"), 24, nil, "10.0.0.0/24"},
		"after a used one":       {pfx("10.0.0.0/16"), 24, pfx("10.0.0.0/24"), "10.0.1.0/24"},
		"past a larger one":      {pfx("10.0.0.0/16"), 24, pfx("10.0.0.0/20"), "10.0.16.0/24"},
		"past a smaller one":     {pfx("10.0.0.0/16"), 20, pfx("10.0.3.0/28"), "10.0.16.0/20"},
		"a gap between":          {pfx("10.0.0.0/16"), 24, pfx("10.0.0.0/24", "10.0.2.0/24"), "10.0.1.0/24"},
		"the next pool prefix":   {pfx("10.0.0.0/24", "10.1.0.0/24"), 24, pfx("10.0.0.0/24"), "10.1.0.0/24"},
		"prefix too small":       {pfx("10.0.0.0/25", "10.1.0.0/24"), 24, nil, "10.1.0.0/24"},
		"exhausted":              {pfx("10.0.0.0/23"), 24, pfx("10.0.0.0/24", "10.0.1.0/24"), ""},
		"top of the space":       {pfx("255.255.255.0/24"), 25, pfx("255.255.255.0/25"), "255.255.255.128/25"},
		"top exhausted":          {pfx("255.255.255.0/24"), 25, pfx("255.255.255.0/24"), ""},
		"ipv6 past many":         {pfx("2001:db8::/32"), 64, pfx("2001:db8::/48"), "2001:db8:1::/64"},
		"ipv6 whole pool is one": {pfx("2001:db8::/64"), 64, nil, "2001:db8::/64"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, ok := freePrefix(tc.pool, tc.bits, tc.used)
			if tc.want == "" {
				if ok {
					t.Errorf("got %s, want none", got)
				}
				return
			}
			if !ok || got.String() != tc.want {
				t.Errorf("got %v %v, want %s", got, ok, tc.want)
			}
		})
	}
}

// A pool's default_quota caps each project's share of it, in /32s for
// IPv4 and /64s for IPv6 (Neutron's units); 0 or null is no cap; it is
// read, changed and cleared like any attribute.
func TestSubnetPoolQuota(t *testing.T) {
	f := newFixture(t)
	pool := f.mk(admin, "subnetpools", "subnetpool", map[string]any{"name": "p", "prefixes": []string{"10.40.0.0/16"},
		"default_prefixlen": 26, "default_quota": 128, "shared": true})
	if pool["default_quota"] != float64(128) {
		t.Fatalf("default_quota %v, want 128", pool["default_quota"])
	}
	id := pool["id"].(string)
	subnet := func(tok, net string, plen int, status int, typ string) {
		t.Helper()
		f.expect("POST", "/v2.0/subnets", tok, map[string]any{"subnet": map[string]any{"network_id": net, "ip_version": 4,
			"subnetpool_id": id, "prefixlen": plen}}, status, typ)
	}
	na := f.network(alice, "a")["id"].(string)
	nb := f.network(bob, "b")["id"].(string)
	subnet(alice, na, 26, 201, "")                        // 64 of 128
	subnet(alice, na, 25, 409, "SubnetPoolQuotaExceeded") // 64+128 > 128
	subnet(alice, na, 26, 201, "")                        // 128 of 128
	subnet(alice, na, 32, 409, "SubnetPoolQuotaExceeded") // one more /32 is over
	subnet(bob, nb, 25, 201, "")                          // bob's share is his own
	f.expect("PUT", "/v2.0/subnetpools/"+id, admin, map[string]any{"subnetpool": map[string]any{"default_quota": -1}}, 400, "HTTPBadRequest", "default_quota")
	f.expect("POST", "/v2.0/subnetpools", alice, map[string]any{"subnetpool": map[string]any{"prefixes": []string{"10.50.0.0/16"},
		"default_quota": "x"}}, 400, "HTTPBadRequest", "default_quota")
	got := f.expect("PUT", "/v2.0/subnetpools/"+id, admin, map[string]any{"subnetpool": map[string]any{"default_quota": 0}}, 200, "")["subnetpool"].(map[string]any)
	if got["default_quota"] != float64(0) {
		t.Fatalf("default_quota after setting 0: %v", got["default_quota"])
	}
	subnet(alice, na, 26, 201, "") // 0 is no cap
	f.expect("PUT", "/v2.0/subnetpools/"+id, admin, map[string]any{"subnetpool": map[string]any{"default_quota": 192}}, 200, "")
	subnet(alice, na, 26, 409, "SubnetPoolQuotaExceeded") // 192 used
	got = f.expect("PUT", "/v2.0/subnetpools/"+id, admin, map[string]any{"subnetpool": map[string]any{"default_quota": nil}}, 200, "")["subnetpool"].(map[string]any)
	if got["default_quota"] != nil {
		t.Fatalf("default_quota after clearing: %v", got["default_quota"])
	}
	subnet(alice, na, 26, 201, "")
	// IPv6 counts /64s.
	p6 := f.mk(alice, "subnetpools", "subnetpool", map[string]any{"prefixes": []string{"2001:db8::/48"}, "default_prefixlen": 64, "default_quota": 2})["id"].(string)
	v6 := func(status int, typ string) {
		t.Helper()
		f.expect("POST", "/v2.0/subnets", alice, map[string]any{"subnet": map[string]any{"network_id": na, "ip_version": 6,
			"subnetpool_id": p6}}, status, typ)
	}
	v6(201, "")
	v6(201, "")
	v6(409, "SubnetPoolQuotaExceeded")
}

// racingRepl lets another subnet of the pool take, just before the first
// subnet create is proposed, the very range that create picked: two
// clients making subnets of one pool at once (Terraform does).
type racingRepl struct {
	*store.Local
	otherNet string
	raced    bool
}

func (r *racingRepl) Propose(ctx context.Context, typ string, body any) (store.Result, error) {
	if c, ok := body.(subnetCreateCmd); ok && typ == cmdSubnetCreate && !r.raced {
		r.raced = true
		other := c.Subnets[0]
		other.ID, other.NetworkID = other.ID+"-racer", r.otherNet
		if _, err := r.Local.Propose(ctx, typ, subnetCreateCmd{Subnets: []Subnet{other}}); err != nil {
			return store.Result{}, err
		}
	}
	return r.Local.Propose(ctx, typ, body)
}

// A subnet whose range was picked from its pool picks again when another
// subnet took that range between the read and the apply, instead of
// failing with an overlap; a range the client gave is not picked again.
func TestPoolSubnetPickedRangeRaced(t *testing.T) {
	f := newFixture(t)
	pool := f.mk(alice, "subnetpools", "subnetpool", map[string]any{"name": "p", "prefixes": []string{"10.11.12.0/24"}, "default_prefixlen": 27})["id"].(string)
	n1 := f.network(alice, "n1")["id"].(string)
	n2 := f.network(alice, "n2")["id"].(string)
	race := &racingRepl{Local: f.local, otherNet: n2}
	f.svc.cfg.Repl = race
	got := f.mk(alice, "subnets", "subnet", map[string]any{"network_id": n1, "ip_version": 4, "subnetpool_id": pool, "prefixlen": 32})
	if !race.raced || got["cidr"] != "10.11.12.1/32" {
		t.Fatalf("raced subnet got %v (raced %v), want 10.11.12.1/32 next to the racer's 10.11.12.0/32", got["cidr"], race.raced)
	}
	race.raced = false
	race.otherNet = f.network(alice, "n3")["id"].(string)
	f.expect("POST", "/v2.0/subnets", alice, map[string]any{"subnet": map[string]any{"network_id": n1, "ip_version": 4, "subnetpool_id": pool,
		"cidr": "10.11.12.32/27"}}, 409, "SubnetAllocationError")
}

// TestPoolSubnetGateway: a range picked from a pool gets the address
// after its first as gateway, as Neutron's pool allocator gives it, even
// past a /32 (Terraform's prefix_length /32 subnet reads a null gateway
// as no_gateway and plans a change); a /32 given as a cidr keeps none.
func TestPoolSubnetGateway(t *testing.T) {
	f := newFixture(t)
	pool := f.mk(alice, "subnetpools", "subnetpool", map[string]any{"name": "p", "prefixes": []string{"10.11.12.0/24"}})["id"].(string)
	n := f.network(alice, "n")["id"].(string)
	post := func(fields map[string]any) map[string]any {
		t.Helper()
		fields["network_id"], fields["ip_version"], fields["enable_dhcp"] = n, 4, false
		return f.expect("POST", "/v2.0/subnets", alice, map[string]any{"subnet": fields}, 201, "")["subnet"].(map[string]any)
	}
	a := post(map[string]any{"subnetpool_id": pool, "prefixlen": 27})
	if a["cidr"] != "10.11.12.0/27" || a["gateway_ip"] != "10.11.12.1" {
		t.Errorf("/27 from the pool: %v %v", a["cidr"], a["gateway_ip"])
	}
	b := post(map[string]any{"subnetpool_id": pool, "prefixlen": 32})
	if b["cidr"] != "10.11.12.32/32" || b["gateway_ip"] != "10.11.12.33" {
		t.Errorf("/32 from the pool: %v gateway %v, want 10.11.12.32/32 gateway 10.11.12.33", b["cidr"], b["gateway_ip"])
	}
	if pools := fmt.Sprint(b["allocation_pools"]); pools != "[map[end:10.11.12.32 start:10.11.12.32]]" {
		t.Errorf("/32 from the pool: allocation pools %s", pools)
	}
	// A router cannot take a gateway past the subnet as its interface's
	// address (Neutron's answer too: the address is not the subnet's).
	r := f.mk(alice, "routers", "router", map[string]any{"name": "r"})["id"].(string)
	f.expect("PUT", "/v2.0/routers/"+r+"/add_router_interface", alice, map[string]any{"subnet_id": b["id"]}, 400, "InvalidIpForSubnet")
	c := post(map[string]any{"cidr": "10.9.9.9/32"})
	if c["gateway_ip"] != nil {
		t.Errorf("/32 given as a cidr: gateway %v, want none", c["gateway_ip"])
	}
}
