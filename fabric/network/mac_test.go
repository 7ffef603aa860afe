package network

import (
	"strings"
	"testing"
)

func TestAdminChangesAPortsMAC(t *testing.T) {
	f := newFixture(t)
	nid := f.network(alice, "n")["id"].(string)
	f.subnet(alice, nid, "10.0.0.0/24")
	f.subnet(alice, nid, "2001:db8::/64", "ipv6_address_mode", "slaac", "ipv6_ra_mode", "slaac")
	port := f.port(alice, nid)
	pid := port["id"].(string)
	other := f.port(alice, nid)["mac_address"].(string)
	bound := f.port(alice, nid, "binding:host_id", "node1")["id"].(string)
	setMAC := func(mac string) any { return map[string]any{"port": map[string]any{"mac_address": mac}} }

	tests := map[string]struct {
		tok, port, mac string
		status         int
		typ            string
	}{
		"a member may not":          {alice, pid, "fa:16:3e:00:00:01", 403, "PolicyNotAuthorized"},
		"not a MAC":                 {admin, pid, "fa:16:3e:00:00", 400, "HTTPBadRequest"},
		"multicast":                 {admin, pid, "01:00:5e:00:00:01", 400, "HTTPBadRequest"},
		"another port's MAC":        {admin, pid, other, 409, "MacAddressInUse"},
		"a port bound to a host":    {admin, bound, "fa:16:3e:00:00:02", 409, "PortBound"},
		"with a NUL in it":          {admin, pid, "fa:16:3e:00:00:01\x00", 400, "HTTPBadRequest"},
		"its own MAC, in uppercase": {admin, pid, strings.ToUpper(port["mac_address"].(string)), 200, ""},
	}
	for name, tc := range tests {
		f.run(t, name, func(t *testing.T) {
			f.expect("PUT", "/v2.0/ports/"+tc.port, tc.tok, setMAC(tc.mac), tc.status, tc.typ, "mac")
		})
	}
	if _, got := f.call("GET", "/v2.0/ports/"+pid, alice, nil); got["port"].(map[string]any)["mac_address"] != port["mac_address"] {
		t.Fatalf("a refused change moved the MAC: %v", got["port"])
	}

	out := f.expect("PUT", "/v2.0/ports/"+pid, admin, setMAC("FA:16:3E:12:34:56"), 200, "")["port"].(map[string]any)
	if out["mac_address"] != "fa:16:3e:12:34:56" {
		t.Fatalf("mac_address %v, want fa:16:3e:12:34:56", out["mac_address"])
	}
	// The IPv4 address stays; the SLAAC address is the new MAC's.
	v4, oldV6 := byVersion(ips(port))
	if gotV4, gotV6 := byVersion(ips(out)); gotV4 != v4 || gotV6 != "2001:db8::f816:3eff:fe12:3456" {
		t.Fatalf("addresses after the change: %v (before %v)", ips(out), ips(port))
	}
	// The old SLAAC address is free: the MAC's new owner can have it.
	if p := f.port(admin, nid, "mac_address", port["mac_address"]); !contains(ips(p), oldV6) {
		t.Fatalf("a port with the old MAC got %v, want %s among them", ips(p), oldV6)
	}
}

// byVersion splits a port's addresses (one of each version) into its
// IPv4 and its IPv6 one.
func byVersion(addrs []string) (v4, v6 string) {
	for _, a := range addrs {
		if strings.Contains(a, ":") {
			v6 = a
		} else {
			v4 = a
		}
	}
	return v4, v6
}
