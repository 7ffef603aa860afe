package dataplane

import (
	"net/netip"
	"testing"
)

// TestCompileAddressGroup: a rule naming an address group compiles one
// key per CIDR of its own family (masked), and none for an empty or
// unknown group, so such a rule lets nothing through.
func TestCompileAddressGroup(t *testing.T) {
	pfx := netip.MustParsePrefix
	rules := []Rule{
		{Group: "g", Ingress: true, Proto: 6, PortMin: 22, PortMax: 22, RemoteAddressGroup: "office"},
		{Group: "g", Ingress: true, IPv6: true, Proto: 6, PortMin: 22, PortMax: 22, RemoteAddressGroup: "office"},
		{Group: "g", Ingress: true, Proto: 6, PortMin: 80, PortMax: 80, RemoteAddressGroup: "empty"},
		{Group: "g", Ingress: true, Proto: 6, PortMin: 443, PortMax: 443, RemoteAddressGroup: "unknown"},
	}
	groups := map[string][]netip.Prefix{
		"office": {pfx("10.1.2.3/24"), pfx("192.168.0.0/16"), pfx("2001:db8::/32")},
		"empty":  {},
	}
	cp := compilePolicy(3, []string{"g"}, rules, nil, groups)
	got := map[string]bool{}
	for k := range cp.keys {
		if k.Port != [2]byte{0, 22} {
			t.Errorf("key for port %v: only the office rules should compile", k.Port)
		}
		a := netip.AddrFrom16(k.Ip)
		if k.V6 == 0 {
			a = netip.AddrFrom4([4]byte(k.Ip[:4]))
		}
		got[netip.PrefixFrom(a, int(k.Prefixlen-ruleExactBits)).String()] = true
	}
	for _, want := range []string{"10.1.2.0/24", "192.168.0.0/16", "2001:db8::/32"} {
		if !got[want] {
			t.Errorf("no key for %s; keys %v", want, got)
		}
	}
	if len(got) != 3 {
		t.Errorf("%d keys, want 3: %v", len(got), got)
	}
}

// TestCompileStateless: a stateless port's entry carries the flag the
// program skips conntrack by; a stateful one's does not.
func TestCompileStateless(t *testing.T) {
	d := fixtureState()
	d.Ports[3].Stateless = true // e
	devs := map[string]device{"tapa": {ifindex: 1}, "tape": {ifindex: 4}}
	tb, err := compile(d, devs)
	if err != nil {
		t.Fatal(err)
	}
	if tb.ports[4].Flags&flagStateless == 0 {
		t.Errorf("e's flags %b lack stateless", tb.ports[4].Flags)
	}
	if tb.ports[1].Flags&flagStateless != 0 {
		t.Errorf("a's flags %b have stateless", tb.ports[1].Flags)
	}
}
