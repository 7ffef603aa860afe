package network

import (
	"context"
	"testing"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

func storeGetSubnet(tx *memdb.Txn, id string) *Subnet { return store.Get[Subnet](tx, tSubnets, id) }

func TestNetworkIPAvailability(t *testing.T) {
	f := newFixture(t)
	n := f.network(alice, "n")["id"].(string)
	s4 := f.subnet(alice, n, "10.7.0.0/24")["id"].(string) // pool .2-.254: 253
	s6 := f.subnet(alice, n, "fd00:7::/64", "ip_version", 6)["id"].(string)
	f.port(alice, n)
	f.port(alice, n)
	empty := f.network(alice, "empty")["id"].(string)

	f.expect("GET", "/v2.0/network-ip-availabilities", alice, nil, 403, "PolicyNotAuthorized")
	f.expect("GET", "/v2.0/network-ip-availabilities/"+n, alice, nil, 403, "PolicyNotAuthorized")
	a := f.expect("GET", "/v2.0/network-ip-availabilities/"+n, admin, nil, 200, "")["network_ip_availability"].(map[string]any)
	if a["network_id"] != n || a["network_name"] != "n" || a["project_id"] != projA {
		t.Fatalf("availability: %v", a)
	}
	subs := map[string]map[string]any{}
	for _, s := range a["subnet_ip_availability"].([]any) {
		subs[s.(map[string]any)["subnet_id"].(string)] = s.(map[string]any)
	}
	// Each port took one address of each subnet.
	if s := subs[s4]; s["total_ips"] != 253.0 || s["used_ips"] != 2.0 || s["cidr"] != "10.7.0.0/24" || s["ip_version"] != 4.0 {
		t.Fatalf("IPv4 subnet: %v", s)
	}
	// A /64's pool is 2^64-2 addresses (::1 is the gateway): more than an
	// int64 holds, sent as a number all the same.
	if s := subs[s6]; s["total_ips"] != 18446744073709551614.0 || s["used_ips"] != 2.0 {
		t.Fatalf("IPv6 subnet: %v", s)
	}
	tx, _ := f.local.Read(context.Background())
	if sn := storeGetSubnet(tx, s6); poolTotal(sn).String() != "18446744073709551614" {
		t.Fatalf("IPv6 pool total %s", poolTotal(sn))
	}
	if a["used_ips"] != 4.0 {
		t.Fatalf("network used: %v", a["used_ips"])
	}
	f.expect("GET", "/v2.0/network-ip-availabilities/nope", admin, nil, 404, "NetworkNotFound")

	list := f.expect("GET", "/v2.0/network-ip-availabilities", admin, nil, 200, "")["network_ip_availabilities"].([]any)
	if len(list) != 2 {
		t.Fatalf("list: %v", list)
	}
	got := f.expect("GET", "/v2.0/network-ip-availabilities?network_id="+empty, admin, nil, 200, "")["network_ip_availabilities"].([]any)
	if len(got) != 1 || got[0].(map[string]any)["total_ips"] != 0.0 || len(got[0].(map[string]any)["subnet_ip_availability"].([]any)) != 0 {
		t.Fatalf("a network without subnets: %v", got)
	}
	if got := f.expect("GET", "/v2.0/network-ip-availabilities?ip_version=6", admin, nil, 200, "")["network_ip_availabilities"].([]any); len(got) != 1 {
		t.Fatalf("ip_version=6: %v", got)
	}
	// Freed addresses are available again.
	for _, p := range f.expect("GET", "/v2.0/ports?network_id="+n, alice, nil, 200, "")["ports"].([]any) {
		f.expect("DELETE", "/v2.0/ports/"+p.(map[string]any)["id"].(string), alice, nil, 204, "")
	}
	if a := f.expect("GET", "/v2.0/network-ip-availabilities/"+n, admin, nil, 200, "")["network_ip_availability"].(map[string]any); a["used_ips"] != 0.0 {
		t.Fatalf("after deleting the ports: %v", a)
	}
}
