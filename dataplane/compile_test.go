package dataplane

import (
	"net/netip"
	"testing"
)

// TestRangePrefixesCoverExactly checks, for ranges of every shape, that
// the prefixes cover each port of the range once and nothing else.
func TestRangePrefixesCoverExactly(t *testing.T) {
	ranges := [][2]uint32{{0, 65535}, {22, 22}, {1000, 2000}, {1, 65535}, {1024, 65535}, {0, 0}, {65535, 65535}, {8000, 8080}, {3, 4}}
	for _, r := range ranges {
		pp := rangePrefixes(r[0], r[1])
		if len(pp) > 30 {
			t.Errorf("%v: %d prefixes, want at most 30", r, len(pp))
		}
		covered := make([]int, 65536)
		for _, p := range pp {
			size := uint32(1) << (16 - p.bits)
			if uint32(p.value)%size != 0 {
				t.Errorf("%v: prefix %d/%d not aligned", r, p.value, p.bits)
			}
			for port := uint32(p.value); port < uint32(p.value)+size; port++ {
				covered[port]++
			}
		}
		for port, n := range covered {
			in := uint32(port) >= r[0] && uint32(port) <= r[1]
			if (in && n != 1) || (!in && n != 0) {
				t.Fatalf("%v: port %d covered %d times", r, port, n)
			}
		}
	}
}

func TestCompilePolicy(t *testing.T) {
	pfx := netip.MustParsePrefix
	rules := []Rule{
		{Group: "g", Ingress: true, Proto: 6, PortMin: 1000, PortMax: 2000, Remote: pfx("10.1.2.3/16")},
		{Group: "g", Ingress: true, Proto: 1, PortMin: 8, PortMax: 0},
		{Group: "g", Ingress: true, Proto: 17, PortMin: -1, PortMax: -1, RemoteGroup: "peers"},
		{Group: "g", Proto: 0, PortMin: -1, PortMax: -1},
		{Group: "g", Ingress: true, IPv6: true, PortMin: -1, PortMax: -1},
		{Group: "g", Ingress: true, IPv6: true, Proto: 6, PortMin: 443, PortMax: 443, Remote: pfx("2001:db8:1:2::5/48")},
		{Group: "g", Ingress: true, IPv6: true, Proto: 58, PortMin: 128, PortMax: -1, RemoteGroup: "peers"},
		{Group: "g", Ingress: true, IPv6: true, Proto: 6, PortMin: 80, PortMax: 80, Remote: pfx("10.0.0.0/8")}, // family mismatch: matches nothing
		{Group: "other", Ingress: true, Proto: 6, PortMin: 22, PortMax: 22},
	}
	members := map[string][]netip.Prefix{"peers": {pfx("10.0.0.1/32"), pfx("10.0.0.2/32"), pfx("fd00::1/128")}}
	cp := compilePolicy(7, []string{"g"}, rules, members, nil)
	// 1000-2000 is 8 prefixes (1000/13 1008/12 1024/7 1536/8 1792/9 1920/10
	// 1984/12 2000/16); ICMP 8/0 one; UDP from 2 IPv4 peers two; any-proto
	// egress one. IPv6: any from anywhere one, 443 from a /48 one, echo
	// requests from the one IPv6 peer one.
	if len(cp.keys) != 8+1+2+1+3 {
		t.Errorf("%d keys, want 15", len(cp.keys))
	}
	v6 := 0
	for k := range cp.keys {
		if k.Policy != 7 {
			t.Errorf("key of policy %d", k.Policy)
		}
		if k.V6 == 1 {
			v6++
		}
		if k.Proto == 6 && k.V6 == 0 && (k.Ip != [16]byte{10, 1, 0, 0} || k.Prefixlen != ruleExactBits+16) {
			t.Errorf("TCP rule remote %v/%d, want 10.1.0.0/16 (masked)", k.Ip, k.Prefixlen-ruleExactBits)
		}
		if k.Proto == 6 && k.V6 == 1 && (netip.AddrFrom16(k.Ip) != netip.MustParseAddr("2001:db8:1::") || k.Prefixlen != ruleExactBits+48) {
			t.Errorf("IPv6 TCP rule remote %v/%d, want 2001:db8:1::/48 (masked)", netip.AddrFrom16(k.Ip), k.Prefixlen-ruleExactBits)
		}
		if k.Proto == 58 && (netip.AddrFrom16(k.Ip) != netip.MustParseAddr("fd00::1") || k.Plen != 8 || k.Port != [2]byte{128, 0}) {
			t.Errorf("ICMPv6 rule %v/%d type %v/%d, want fd00::1 echo request", netip.AddrFrom16(k.Ip), k.Prefixlen-ruleExactBits, k.Port, k.Plen)
		}
	}
	if v6 != 3 {
		t.Errorf("%d IPv6 keys, want 3", v6)
	}
	if cp.lens[dirOut] != 1<<lenAnyProto {
		t.Errorf("egress lens %b, want only any-protocol", cp.lens[dirOut])
	}
	if cp.lens[dirIn]&(1<<16) == 0 || cp.lens[dirIn]&1 == 0 {
		t.Errorf("ingress lens %b lack /16 (ICMP type+code) or /0 (any UDP port)", cp.lens[dirIn])
	}
	if policyID([]string{"a", "b"}) != policyID([]string{"b", "a"}) || policyID([]string{"a"}) == policyID([]string{"b"}) {
		t.Error("policy ids must name the set of groups, whatever their order")
	}
}
