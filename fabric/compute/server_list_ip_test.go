package compute

import (
	"testing"
)

func TestServerListIPFilters(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	first := f.server(alice, "first")   // 10.0.0.2
	second := f.server(alice, "second") // 10.0.0.3
	v6 := f.server(alice, "v6", "networks", []any{map[string]any{"uuid": netA, "fixed_ip": "2001:db8::5"}})
	ids := func(query, version string) []string {
		t.Helper()
		var out []string
		for _, s := range f.expect("GET", "/v2.1/servers?"+query, alice, version, nil, 200, "")["servers"].([]any) {
			out = append(out, s.(map[string]any)["id"].(string))
		}
		return out
	}
	for query, want := range map[string][]string{
		"ip=10.0.0.3":                 {second},
		`ip=10%5C.0%5C.0%5C.%5B23%5D`: {first, second},
		"ip=10.0":                     {first, second},
		"ip=0.0.3":                    nil, // matched at the start, as Python's re.match
		"ip=2001":                     nil, // ip is for IPv4 addresses
		"ip=10.0.0.3&name=first":      nil,
	} {
		if got := ids(query, ""); !sameSet(got, want) {
			t.Errorf("?%s: %v, want %v", query, got, want)
		}
	}
	if got := ids("ip6=2001:db8::", "2.5"); !sameSet(got, []string{v6}) {
		t.Errorf("?ip6 at 2.5: %v", got)
	}
	// Before 2.5 ip6 is an admin's filter only; others' is ignored.
	if got := ids("ip6=2001:db8::", "2.4"); len(got) != 3 {
		t.Errorf("?ip6 at 2.4 for a member: %v", got)
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, x := range a {
		seen[x]++
	}
	for _, x := range b {
		if seen[x] == 0 {
			return false
		}
		seen[x]--
	}
	return true
}
