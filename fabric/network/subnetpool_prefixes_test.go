package network

import (
	"net/netip"
	"reflect"
	"testing"
)

func TestSubnetPoolPrefixOps(t *testing.T) {
	f := newFixture(t)
	pool := f.mk(alice, "subnetpools", "subnetpool", map[string]any{"name": "p", "prefixes": []string{"10.0.0.0/16"}, "default_prefixlen": 24})["id"].(string)
	path := "/v2.0/subnetpools/" + pool
	prefixes := func(out map[string]any) []string {
		var got []string
		for _, p := range out["prefixes"].([]any) {
			got = append(got, p.(string))
		}
		return got
	}
	out := f.expect("PUT", path+"/add_prefixes", alice, map[string]any{"prefixes": []string{"172.16.0.0/16", "192.168.0.0/16", "10.0.5.0/24"}}, 200, "")
	if got := prefixes(out); !reflect.DeepEqual(got, []string{"10.0.0.0/16", "172.16.0.0/16", "192.168.0.0/16"}) {
		t.Fatalf("after add: %v", got)
	}
	if got := prefixes(f.expect("GET", path, alice, nil, 200, "")["subnetpool"].(map[string]any)); len(got) != 3 {
		t.Fatalf("pool after add: %v", got)
	}
	// A subnet from the pool holds its prefix.
	n := f.network(alice, "n")["id"].(string)
	sub := f.mk(alice, "subnets", "subnet", map[string]any{"network_id": n, "ip_version": 4, "subnetpool_id": pool, "cidr": "192.168.3.0/24"})["id"].(string)
	f.expect("PUT", path+"/remove_prefixes", alice, map[string]any{"prefixes": []string{"192.168.0.0/16"}}, 400, "IllegalSubnetPoolPrefixUpdate", sub)
	f.expect("DELETE", "/v2.0/subnets/"+sub, alice, nil, 204, "")
	out = f.expect("PUT", path+"/remove_prefixes", alice, map[string]any{"prefixes": []string{"192.168.0.0/16", "10.0.128.0/17"}}, 200, "")
	if got := prefixes(out); !reflect.DeepEqual(got, []string{"10.0.0.0/17", "172.16.0.0/16"}) {
		t.Fatalf("after remove: %v", got)
	}
	// Bad input, other projects, and a pool left empty are refused.
	f.expect("PUT", path+"/add_prefixes", alice, map[string]any{"prefixes": []string{"nonsense"}}, 400, "HTTPBadRequest", "prefixes")
	f.expect("PUT", path+"/add_prefixes", alice, map[string]any{"prefixes": []string{"fd00::/48"}}, 400, "HTTPBadRequest", "IPv4")
	f.expect("PUT", path+"/add_prefixes", alice, map[string]any{}, 400, "HTTPBadRequest", "prefixes")
	f.expect("PUT", path+"/add_prefixes", alice, map[string]any{"prefixes": []string{"10.9.0.0/16"}, "name": "x"}, 400, "HTTPBadRequest", "name")
	f.expect("PUT", path+"/add_prefixes", bob, map[string]any{"prefixes": []string{"10.9.0.0/16"}}, 404, "SubnetPoolNotFound")
	f.expect("PUT", path+"/remove_prefixes", carol, map[string]any{"prefixes": []string{"10.0.0.0/17"}}, 403, "PolicyNotAuthorized")
	f.expect("PUT", path+"/remove_prefixes", alice, map[string]any{"prefixes": []string{"0.0.0.0/0"}}, 400, "IllegalSubnetPoolPrefixUpdate")
	if got := f.expect("GET", path, alice, nil, 200, "")["subnetpool"].(map[string]any)["prefixes"].([]any); len(got) != 2 {
		t.Fatalf("refused requests changed the pool: %v", got)
	}
}

func TestSubtractPrefix(t *testing.T) {
	pfx := netip.MustParsePrefix
	for _, c := range []struct {
		p, r string
		want []string
	}{
		{"10.0.0.0/16", "10.1.0.0/16", []string{"10.0.0.0/16"}},
		{"10.0.0.0/16", "10.0.0.0/8", nil},
		{"10.0.0.0/16", "10.0.0.0/16", nil},
		{"10.0.0.0/24", "10.0.0.128/25", []string{"10.0.0.0/25"}},
		{"10.0.0.0/24", "10.0.0.64/26", []string{"10.0.0.0/26", "10.0.0.128/25"}},
		{"fd00::/62", "fd00:0:0:1::/64", []string{"fd00::/64", "fd00:0:0:2::/63"}},
	} {
		var got []string
		for _, p := range subtractPrefix(pfx(c.p), pfx(c.r)) {
			got = append(got, p.String())
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s - %s = %v, want %v", c.p, c.r, got, c.want)
		}
	}
}
