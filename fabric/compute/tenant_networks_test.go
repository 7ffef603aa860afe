package compute

import (
	"reflect"
	"testing"
)

// os-tenant-networks lists and shows the networks the caller may attach
// servers to, to 2.35; another project's network is 404, creating and
// deleting are gone (410), and from 2.36 the API is 404.
func TestTenantNetworks(t *testing.T) {
	f := newFixture(t)
	f.ports.addNetwork(netA2, "shared", projB, true)
	l := f.expect("GET", "/v2.1/os-tenant-networks", alice, "", nil, 200, "")["networks"].([]any)
	want := []any{
		map[string]any{"id": netA, "label": "net-a", "cidr": nil},
		map[string]any{"id": netA2, "label": "shared", "cidr": nil},
	}
	if !reflect.DeepEqual(l, want) {
		t.Fatalf("alice's tenant networks %v, want %v", l, want)
	}
	if got := ids(f.expect("GET", "/v2.1/os-tenant-networks", bob, "2.35", nil, 200, "")["networks"].([]any)); !reflect.DeepEqual(got, []string{netA2, netB}) {
		t.Fatalf("bob's tenant networks %v", got)
	}
	n := f.expect("GET", "/v2.1/os-tenant-networks/"+netA, alice, "", nil, 200, "")["network"]
	if !reflect.DeepEqual(n, want[0]) {
		t.Fatalf("show %v", n)
	}
	f.expect("GET", "/v2.1/os-tenant-networks/"+netA, bob, "", nil, 404, "itemNotFound", "Network not found")
	f.expect("GET", "/v2.1/os-tenant-networks/nope", alice, "", nil, 404, "itemNotFound")
	f.expect("POST", "/v2.1/os-tenant-networks", alice, "", map[string]any{"network": map[string]any{"label": "x"}}, 410, "", "nova-network")
	f.expect("DELETE", "/v2.1/os-tenant-networks/"+netA, alice, "", nil, 410, "", "nova-network")
	f.expect("GET", "/v2.1/os-tenant-networks", alice, "2.36", nil, 404, "itemNotFound")
	f.expect("GET", "/v2.1/os-tenant-networks/"+netA, alice, "2.36", nil, 404, "itemNotFound")
	f.expect("GET", "/v2.1/extensions/os-tenant-networks", alice, "", nil, 200, "")
}
