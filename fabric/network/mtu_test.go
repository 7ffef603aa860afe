package network

import (
	"context"
	"testing"
)

func TestNetworkMTUWritable(t *testing.T) {
	f := newFixture(t)
	n := f.mk(alice, "networks", "network", map[string]any{"name": "n", "mtu": 1440})
	if n["mtu"] != 1440.0 {
		t.Fatalf("created: %v", n)
	}
	id := n["id"].(string)
	out := f.expect("PUT", "/v2.0/networks/"+id, alice, map[string]any{"network": map[string]any{"mtu": 1350, "description": ""}}, 200, "")["network"].(map[string]any)
	if out["mtu"] != 1350.0 {
		t.Fatalf("updated: %v", out)
	}
	// What the dataplane compiles follows it.
	tx, _ := f.local.Read(context.Background())
	v, err := Load(tx)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Networks) != 1 || v.Networks[0].MTU != 1350 {
		t.Fatalf("the dataplane's view: %+v", v.Networks)
	}
	f.expect("PUT", "/v2.0/networks/"+id, alice, map[string]any{"network": map[string]any{"mtu": 1501}}, 400, "HTTPBadRequest", "mtu", "too big")
	f.expect("PUT", "/v2.0/networks/"+id, alice, map[string]any{"network": map[string]any{"mtu": 67}}, 400, "HTTPBadRequest", "mtu")
	f.expect("PUT", "/v2.0/networks/"+id, alice, map[string]any{"network": map[string]any{"mtu": "big"}}, 400, "HTTPBadRequest", "mtu")
	// IPv6 needs 1280.
	f.subnet(alice, id, "fd00:9::/64", "ip_version", 6)
	f.expect("PUT", "/v2.0/networks/"+id, alice, map[string]any{"network": map[string]any{"mtu": 1200}}, 400, "InvalidInput", "1280")
	small := f.mk(alice, "networks", "network", map[string]any{"name": "small", "mtu": 1200})["id"].(string)
	f.expect("POST", "/v2.0/subnets", alice, map[string]any{"subnet": map[string]any{"network_id": small, "ip_version": 6, "cidr": "fd00:8::/64"}}, 400, "InvalidInput", "1280")
	f.subnet(alice, small, "10.8.0.0/24")
	if got := f.expect("GET", "/v2.0/networks/"+id, alice, nil, 200, "")["network"].(map[string]any)["mtu"]; got != 1350.0 {
		t.Fatalf("refused updates changed the MTU: %v", got)
	}
	f.expect("PUT", "/v2.0/networks/"+id, bob, map[string]any{"network": map[string]any{"mtu": 1400}}, 404, "NetworkNotFound")
}
