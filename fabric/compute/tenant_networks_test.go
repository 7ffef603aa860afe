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

// os-networks lists and shows the networks the caller sees with id and
// label, nova-network's other fields null (and its admin fields for an
// admin), to 2.35; what was nova-network's alone is gone (410).
func TestOSNetworks(t *testing.T) {
	f := newFixture(t)
	l := f.expect("GET", "/v2.1/os-networks", alice, "", nil, 200, "")["networks"].([]any)
	if len(l) != 1 {
		t.Fatalf("alice's networks %v", l)
	}
	n := l[0].(map[string]any)
	if n["id"] != netA || n["label"] != "net-a" || n["cidr"] != nil {
		t.Fatalf("network %v", n)
	}
	if _, has := n["project_id"]; has {
		t.Fatalf("a member sees an admin field: %v", n)
	}
	if _, has := n["netmask_v6"]; !has {
		t.Fatalf("network without netmask_v6: %v", n)
	}
	shown := f.expect("GET", "/v2.1/os-networks/"+netA, alice, "2.35", nil, 200, "")["network"]
	if !reflect.DeepEqual(shown, n) {
		t.Fatalf("show %v, list %v", shown, n)
	}
	if a := f.expect("GET", "/v2.1/os-networks/"+netA, admin, "", nil, 200, "")["network"].(map[string]any); a["label"] != "net-a" {
		t.Fatalf("admin's view %v", a)
	} else if v, has := a["project_id"]; !has || v != nil {
		t.Fatalf("admin's view without nova-network's admin fields (null): %v", a)
	}
	f.expect("GET", "/v2.1/os-networks/"+netA, bob, "", nil, 404, "itemNotFound", "Network not found")
	f.expect("GET", "/v2.1/os-networks", alice, "2.36", nil, 404, "itemNotFound")
	f.expect("GET", "/v2.1/os-networks/"+netA, alice, "2.36", nil, 404, "itemNotFound")
	f.expect("POST", "/v2.1/os-networks", alice, "", map[string]any{"network": map[string]any{"label": "x"}}, 410, "", "nova-network")
	f.expect("POST", "/v2.1/os-networks/add", alice, "", map[string]any{"id": netA}, 410, "", "nova-network")
	f.expect("DELETE", "/v2.1/os-networks/"+netA, alice, "", nil, 410, "", "nova-network")
	f.expect("POST", "/v2.1/os-networks/"+netA+"/action", alice, "2.40", map[string]any{"disassociate": nil}, 410, "", "nova-network")
	f.expect("GET", "/v2.1/extensions/os-networks", alice, "", nil, 200, "")
}
