package network

import (
	"fmt"
	"slices"
	"testing"
)

func optsOf(port map[string]any) []string {
	var out []string
	for _, o := range port["extra_dhcp_opts"].([]any) {
		m := o.(map[string]any)
		out = append(out, fmt.Sprintf("%v=%v/%v", m["opt_name"], m["opt_value"], m["ip_version"]))
	}
	slices.Sort(out)
	return out
}

func TestPortExtraDHCPOptions(t *testing.T) {
	f := newFixture(t)
	n := f.network(alice, "n")["id"].(string)
	f.subnet(alice, n, "10.0.0.0/24")
	pt := f.port(alice, n, "extra_dhcp_opts", []any{
		map[string]any{"opt_name": "bootfile-name", "opt_value": "pxelinux.0"},
		map[string]any{"opt_name": "tftp-server", "opt_value": "10.0.0.9"},
		map[string]any{"opt_name": "dns-server", "opt_value": "2001:db8::1", "ip_version": 6},
		map[string]any{"opt_name": "gone", "opt_value": nil},
	})
	if got := optsOf(pt); !slices.Equal(got, []string{"bootfile-name=pxelinux.0/4", "dns-server=2001:db8::1/6", "tftp-server=10.0.0.9/4"}) {
		t.Fatalf("created with %v", got)
	}
	id := pt["id"].(string)
	// An update merges: same name and version replaced, null removes,
	// the rest is added; what it does not name stays.
	out := f.expect("PUT", "/v2.0/ports/"+id, alice, map[string]any{"port": map[string]any{"extra_dhcp_opts": []any{
		map[string]any{"opt_name": "bootfile-name", "opt_value": "ipxe.efi"},
		map[string]any{"opt_name": "tftp-server", "opt_value": nil},
		map[string]any{"opt_name": "server-ip-address", "opt_value": "10.0.0.8", "ip_version": 4},
	}}}, 200, "")["port"].(map[string]any)
	want := []string{"bootfile-name=ipxe.efi/4", "dns-server=2001:db8::1/6", "server-ip-address=10.0.0.8/4"}
	if got := optsOf(out); !slices.Equal(got, want) {
		t.Fatalf("updated to %v, want %v", got, want)
	}
	if got := optsOf(f.expect("GET", "/v2.0/ports/"+id, alice, nil, 200, "")["port"].(map[string]any)); !slices.Equal(got, want) {
		t.Fatalf("shown as %v", got)
	}
	for name, opts := range map[string]any{
		"unknown key":   []any{map[string]any{"opt_name": "a", "opt_value": "b", "colour": "red"}},
		"no name":       []any{map[string]any{"opt_value": "b"}},
		"bad version":   []any{map[string]any{"opt_name": "a", "opt_value": "b", "ip_version": 5}},
		"empty value":   []any{map[string]any{"opt_name": "a", "opt_value": " "}},
		"duplicate":     []any{map[string]any{"opt_name": "a", "opt_value": "b"}, map[string]any{"opt_name": "a", "opt_value": "c"}},
		"not a list":    "tftp-server",
		"not an object": []any{"tftp-server"},
	} {
		t.Run(name, func(t *testing.T) {
			f.expect("PUT", "/v2.0/ports/"+id, alice, map[string]any{"port": map[string]any{"extra_dhcp_opts": opts}}, 400, "", "extra_dhcp_opts")
		})
	}
}
