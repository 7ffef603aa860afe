package dataplane

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
)

func ipv6(nh uint8, src, dst string, payload []byte) []byte {
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	h := []byte{0x60, 0, 0, 0, 0, 0, nh, 64}
	binary.BigEndian.PutUint16(h[4:], uint16(len(payload)))
	h = append(h, s[:]...)
	h = append(h, d[:]...)
	return append(h, payload...)
}

func tcpHeader(sport, dport uint16) []byte {
	l4 := make([]byte, 20)
	binary.BigEndian.PutUint16(l4[0:], sport)
	binary.BigEndian.PutUint16(l4[2:], dport)
	l4[12] = 5 << 4
	return l4
}

func (f frame) tcp6(src, dst string, sport, dport uint16) []byte {
	return f.eth(0x86dd, ipv6(6, src, dst, tcpHeader(sport, dport)))
}

// tcp6HopByHop is tcp6 behind a hop-by-hop options header (8 bytes of
// padding), as MLD reports carry one.
func (f frame) tcp6HopByHop(src, dst string, sport, dport uint16) []byte {
	hbh := []byte{6, 0, 1, 4, 0, 0, 0, 0} // next TCP, length 0 (8 bytes), PadN
	return f.eth(0x86dd, ipv6(0, src, dst, append(hbh, tcpHeader(sport, dport)...)))
}

func (f frame) udp6(src, dst string, sport, dport uint16) []byte {
	l4 := make([]byte, 8+16)
	binary.BigEndian.PutUint16(l4[0:], sport)
	binary.BigEndian.PutUint16(l4[2:], dport)
	binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
	return f.eth(0x86dd, ipv6(17, src, dst, l4))
}

func (f frame) icmp6(src, dst string, typ, code uint8, id uint16) []byte {
	l4 := make([]byte, 8+16)
	l4[0], l4[1] = typ, code
	binary.BigEndian.PutUint16(l4[4:], id)
	return f.eth(0x86dd, ipv6(58, src, dst, l4))
}

// nd6 is a neighbour solicitation (135) or advertisement (136) about
// target.
func (f frame) nd6(typ uint8, src, dst, target string) []byte {
	l4 := make([]byte, 8)
	l4[0] = typ
	tg := netip.MustParseAddr(target).As16()
	return f.eth(0x86dd, ipv6(58, src, dst, append(l4, tg[:]...)))
}

// The IPv6 fixture: network 101 with ports a and b (group g6) and e
// (group closed6: no egress rules), c on network 102, and an uplink. The
// groups hold IPv4 rules too, which must keep matching IPv4 only.
func fixture6State() Desired {
	pfx := netip.MustParsePrefix
	return Desired{
		Uplink: "up0",
		Rules: []Rule{
			{Group: "g6", PortMin: -1, PortMax: -1},                                                                           // egress IPv4 anywhere
			{Group: "g6", IPv6: true, PortMin: -1, PortMax: -1},                                                               // egress IPv6 anywhere
			{Group: "g6", Ingress: true, IPv6: true, Proto: 58, PortMin: 128, PortMax: -1, RemoteGroup: "g6"},                 // echo requests from the group
			{Group: "g6", Ingress: true, IPv6: true, Proto: 6, PortMin: 22, PortMax: 22, Remote: pfx("2001:db8::/64")},        // ssh from the subnet
			{Group: "g6", Ingress: true, Proto: 6, PortMin: 8080, PortMax: 8080, Remote: pfx("0.0.0.0/0")},                    // IPv4 only
			{Group: "g6", Ingress: true, IPv6: true, Proto: 6, PortMin: 9000, PortMax: 9000, Remote: pfx("10.0.0.0/8")},       // a mismatched family matches nothing
			{Group: "closed6", Ingress: true, IPv6: true, Proto: 6, PortMin: 80, PortMax: 80, Remote: pfx("::/0")},            // no egress rule
			{Group: "g6", Ingress: true, IPv6: true, Proto: 17, PortMin: 5000, PortMax: 5001, Remote: pfx("2001:db8:9::/48")}, // from a's address pair
		},
		Ports: []Port{
			{ID: "a", Device: "tapa", VLAN: 101, MAC: macA, Security: true, Groups: []string{"g6"},
				Addrs: []netip.Prefix{pfx("10.0.0.10/32"), pfx("2001:db8::10/128"), pfx("2001:db8:9::/64")}, MACs: []net.HardwareAddr{mac("fa:16:3e:00:00:aa")}},
			{ID: "b", Device: "tapb", VLAN: 101, MAC: macB, Security: true, Groups: []string{"g6"}, Addrs: []netip.Prefix{pfx("10.0.0.11/32"), pfx("2001:db8::11/128")}},
			{ID: "c", Device: "tapc", VLAN: 102, MAC: macC, Security: true, Groups: []string{"g6"}, Addrs: []netip.Prefix{pfx("2001:db8:2::12/128")}},
			{ID: "e", Device: "tape", VLAN: 101, MAC: macE, Security: true, Groups: []string{"closed6"}, Addrs: []netip.Prefix{pfx("2001:db8::14/128")}},
		},
		Members: map[string][]netip.Prefix{"g6": {pfx("10.0.0.10/32"), pfx("2001:db8::10/128"), pfx("10.0.0.11/32"), pfx("2001:db8::11/128"), pfx("2001:db8:2::12/128")}},
	}
}

func fixture6(t *testing.T) *Dataplane {
	d := openTest(t, "tapa", "tapb", "tapc", "tape", "up0")
	if _, err := d.Apply(fixture6State()); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestLinkLocalFromMAC(t *testing.T) {
	// The address Linux forms on a device with this MAC (addr_gen_mode eui64).
	if got := linkLocal(mac("fa:16:3e:00:00:0a")); got != netip.MustParsePrefix("fe80::f816:3eff:fe00:a/128") {
		t.Errorf("link-local of fa:16:3e:00:00:0a: %s", got)
	}
}

func TestPortVerdictsIPv6(t *testing.T) {
	d := fixture6(t)
	in := d.objs.PortIn
	ab := frame{src: macA, dst: macB}
	ba := frame{src: macB, dst: macA}
	ae := frame{src: macA, dst: macE}
	llA, llB := linkLocal(macA).Addr().String(), linkLocal(macB).Addr().String()
	snmB := mac("33:33:ff:00:00:11") // solicited-node multicast of 2001:db8::11
	dhcpMcast := mac("33:33:00:01:00:02")

	cases := []struct {
		name string
		dev  string
		pkt  []byte
		want string
	}{
		{"ping b from a group member", "tapa", ab.icmp6("2001:db8::10", "2001:db8::11", 128, 0, 7), "REDIRECT [fwd_local]"},
		{"b's echo reply: tracked", "tapb", ba.icmp6("2001:db8::11", "2001:db8::10", 129, 0, 7), "REDIRECT [fwd_local]"},
		{"an echo reply nobody asked for", "tapb", ba.icmp6("2001:db8::11", "2001:db8::10", 129, 0, 8), "SHOT [drop_sg_ingress]"},
		{"ssh from the subnet", "tapa", ab.tcp6("2001:db8::10", "2001:db8::11", 40000, 22), "REDIRECT [fwd_local]"},
		{"reply of the ssh flow", "tapb", ba.tcp6("2001:db8::11", "2001:db8::10", 22, 40000), "REDIRECT [fwd_local]"},
		{"http to b: no rule", "tapa", ab.tcp6("2001:db8::10", "2001:db8::11", 40000, 80), "SHOT [drop_sg_ingress]"},
		{"8080 has an IPv4 rule only", "tapa", ab.tcp6("2001:db8::10", "2001:db8::11", 40000, 8080), "SHOT [drop_sg_ingress]"},
		{"IPv4 8080 still opens", "tapa", ab.tcp("10.0.0.10", "10.0.0.11", 40000, 8080), "REDIRECT [fwd_local]"},
		{"IPv4 ssh: the IPv6 rule's port is not IPv4's", "tapa", ab.tcp("10.0.0.10", "10.0.0.11", 40000, 22), "SHOT [drop_sg_ingress]"},
		{"an IPv6 rule with an IPv4 remote matches nothing", "tapa", ab.tcp6("2001:db8::10", "2001:db8::11", 40000, 9000), "SHOT [drop_sg_ingress]"},
		{"ssh behind a hop-by-hop header", "tapa", ab.tcp6HopByHop("2001:db8::10", "2001:db8::11", 40001, 22), "REDIRECT [fwd_local]"},
		{"http behind a hop-by-hop header", "tapa", ab.tcp6HopByHop("2001:db8::10", "2001:db8::11", 40001, 80), "SHOT [drop_sg_ingress]"},
		{"from a's address pair prefix", "tapa", ab.udp6("2001:db8:9::77", "2001:db8::11", 40000, 5001), "REDIRECT [fwd_local]"},
		{"from a's link-local address", "tapa", ab.tcp6(llA, llB, 40000, 22), "SHOT [drop_sg_ingress]"},
		{"spoofed source", "tapa", ab.tcp6("2001:db8::99", "2001:db8::11", 40000, 22), "SHOT [drop_spoof_ip]"},
		{"b's address as source", "tapa", ab.tcp6("2001:db8::11", "2001:db8::11", 40000, 22), "SHOT [drop_spoof_ip]"},
		{"another MAC's link-local address", "tapa", ab.tcp6(llB, "2001:db8::11", 40000, 22), "SHOT [drop_spoof_ip]"},
		{"the pair MAC's link-local address", "tapa", frame{src: mac("fa:16:3e:00:00:aa"), dst: macB}.icmp6(linkLocal(mac("fa:16:3e:00:00:aa")).Addr().String(), "2001:db8::11", 128, 0, 9), "SHOT [drop_sg_ingress]"},
		{"neighbour solicitation floods", "tapa", frame{src: macA, dst: snmB}.nd6(135, "2001:db8::10", "ff02::1:ff00:11", "2001:db8::11"), "REDIRECT [flood,fwd_uplink]"},
		{"duplicate address detection from ::", "tapa", frame{src: macA, dst: snmB}.nd6(135, "::", "ff02::1:ff00:10", "2001:db8::10"), "REDIRECT [flood,fwd_uplink]"},
		{":: for anything else", "tapa", ab.tcp6("::", "2001:db8::11", 40000, 22), "SHOT [drop_spoof_ip]"},
		{"neighbour advertisement of its own address", "tapa", ab.nd6(136, "2001:db8::10", "2001:db8::11", "2001:db8::10"), "REDIRECT [fwd_local]"},
		{"neighbour advertisement of b's address", "tapa", ab.nd6(136, "2001:db8::10", "2001:db8::11", "2001:db8::11"), "SHOT [drop_spoof_ip]"},
		{"neighbour advertisement to the closed port", "tapa", ae.nd6(136, llA, "2001:db8::14", llA), "REDIRECT [fwd_local]"},
		{"the closed port solicits: no rule needed", "tape", frame{src: macE, dst: macA}.nd6(135, "2001:db8::14", "2001:db8::10", "2001:db8::10"), "REDIRECT [fwd_local]"},
		{"the closed port's TCP: no egress rule", "tape", frame{src: macE, dst: macA}.tcp6("2001:db8::14", "2001:db8::10", 40000, 22), "SHOT [drop_sg_egress]"},
		{"to the closed port's open port", "tapa", ae.tcp6("2001:db8::10", "2001:db8::14", 40000, 80), "REDIRECT [fwd_local]"},
		{"a guest's router advertisement", "tapa", frame{src: macA, dst: mac("33:33:00:00:00:01")}.icmp6(llA, "ff02::1", 134, 0, 0), "SHOT [drop_dhcp_server]"},
		{"a guest's router solicitation", "tapa", frame{src: macA, dst: mac("33:33:00:00:00:02")}.icmp6(llA, "ff02::2", 133, 0, 0), "REDIRECT [flood,fwd_uplink]"},
		{"DHCPv6 solicit", "tapa", frame{src: macA, dst: dhcpMcast}.udp6(llA, "ff02::1:2", 546, 547), "REDIRECT [flood,fwd_uplink]"},
		{"a guest answering DHCPv6", "tapa", ab.udp6(llA, llB, 547, 546), "SHOT [drop_dhcp_server]"},
		{"other multicast", "tapa", frame{src: macA, dst: mac("33:33:00:00:00:fb")}.udp6("2001:db8::10", "ff02::fb", 5353, 5353), "SHOT [drop_broadcast]"},
		{"other network's MAC leaves by the uplink", "tapa", frame{src: macA, dst: macC}.tcp6("2001:db8::10", "2001:db8:2::12", 40000, 22), "REDIRECT [fwd_uplink]"},
		{"not IPv6 inside", "tapa", ab.eth(0x86dd, make([]byte, 40)), "SHOT [drop_malformed]"},
	}
	for _, c := range cases {
		if got := d.run(t, in, c.dev, c.pkt).String(); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
}

func TestUplinkVerdictsIPv6(t *testing.T) {
	d := fixture6(t)
	up := d.objs.UplinkIn
	tagged := frame{src: macX, dst: macB, vlan: 101}
	cases := []struct {
		name string
		pkt  []byte
		want string
	}{
		{"ssh from the subnet", tagged.tcp6("2001:db8::50", "2001:db8::11", 40000, 22), "REDIRECT [from_uplink,fwd_local]"},
		{"ssh from elsewhere", tagged.tcp6("2001:db8:5::50", "2001:db8::11", 40000, 22), "SHOT [drop_sg_ingress,from_uplink]"},
		{"neighbour advertisement", tagged.nd6(136, "2001:db8::50", "2001:db8::11", "2001:db8::50"), "REDIRECT [from_uplink,fwd_local]"},
		{"neighbour solicitation floods locally", frame{src: macX, dst: mac("33:33:ff:00:00:11"), vlan: 101}.nd6(135, "2001:db8::50", "ff02::1:ff00:11", "2001:db8::11"), "SHOT [flood,from_uplink]"},
	}
	for _, c := range cases {
		if got := d.run(t, up, "up0", c.pkt).String(); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
}

// TestRemovedRuleStopsFlowsIPv6 checks that removing an IPv6 rule forgets
// the IPv6 flows it allowed, which are tracked apart from IPv4's.
func TestRemovedRuleStopsFlowsIPv6(t *testing.T) {
	d := fixture6(t)
	ssh := frame{src: macA, dst: macB}.tcp6("2001:db8::10", "2001:db8::11", 40000, 22)
	if r := d.run(t, d.objs.PortIn, "tapa", ssh); r.String() != "REDIRECT [fwd_local]" {
		t.Fatalf("ssh: %s", r)
	}
	want := fixture6State()
	var kept []Rule
	for _, r := range want.Rules {
		if !(r.IPv6 && r.Proto == 6 && r.PortMin == 22) {
			kept = append(kept, r)
		}
	}
	want.Rules = kept
	if _, err := d.Apply(want); err != nil {
		t.Fatal(err)
	}
	if r := d.run(t, d.objs.PortIn, "tapa", ssh); r.String() != "SHOT [drop_sg_ingress]" {
		t.Errorf("established IPv6 ssh after its rule went: %s", r)
	}
}
