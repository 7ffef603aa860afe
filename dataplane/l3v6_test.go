package dataplane

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/dataplane/dataplanetest"
)

// The IPv6 routed fixture: router r6 joins network 101 (2001:db8:1::/64,
// SLAAC, port a) and network 102 (2001:db8:2::/64, no router
// advertisements, port d, and a port n on another node, the next hop of
// a static route).
var slaacA = netip.MustParseAddr("2001:db8:1::f816:3eff:fe00:a") // a's address from macA

func l3v6State() Desired {
	pfx := netip.MustParsePrefix
	ip := netip.MustParseAddr
	return Desired{
		Uplink: "up0",
		Rules: []Rule{
			{Group: "g6", IPv6: true, PortMin: -1, PortMax: -1},
			{Group: "g6", Ingress: true, IPv6: true, Proto: 6, PortMin: 22, PortMax: 22, Remote: pfx("::/0")},
			{Group: "g6", Ingress: true, IPv6: true, Proto: 58, PortMin: 128, PortMax: -1, Remote: pfx("::/0")},
		},
		Ports: []Port{
			{ID: "a", Device: "tapa", VLAN: 101, MAC: macA, Security: true, Groups: []string{"g6"}, Addrs: []netip.Prefix{netip.PrefixFrom(slaacA, 128)}},
			{ID: "d", Device: "tapd", VLAN: 102, MAC: macD, Security: true, Groups: []string{"g6"}, Addrs: []netip.Prefix{pfx("2001:db8:2::20/128")}},
		},
		Routers: []Router{{
			ID: "r6",
			Interfaces: []RouterInterface{
				{VLAN: 101, MAC: macR1, IP: pfx("2001:db8:1::1/64"), RAMode: "slaac", MTU: 1450},
				{VLAN: 102, MAC: macR2, IP: pfx("2001:db8:2::1/64")},
			},
			Routes: []Route{{Dst: pfx("2001:db8:50::/48"), Nexthop: ip("2001:db8:2::30")}},
		}},
		Neighbors: []Neighbor{{VLAN: 102, IP: ip("2001:db8:2::30"), MAC: macN}},
	}
}

// icmp6SumOK checks the ICMPv6 checksum of an untagged IPv6 frame.
func icmp6SumOK(pkt []byte) error {
	ip := pkt[14:]
	n := int(binary.BigEndian.Uint16(ip[4:]))
	s := sum16(ip[8:40], 0)
	s = sum16([]byte{0, 0, byte(n >> 8), byte(n), 0, 0, 0, 58}, s)
	if s = sum16(ip[40:40+n], s); s != 0xffff {
		return fmt.Errorf("ICMPv6 checksum off by %#x", s)
	}
	return nil
}

type ip6Info struct {
	src, dst netip.Addr
	hops     uint8
	l4       []byte
}

func parseIP6(pkt []byte) ip6Info {
	ip := pkt[14:]
	n := int(binary.BigEndian.Uint16(ip[4:]))
	return ip6Info{src: netip.AddrFrom16([16]byte(ip[8:24])), dst: netip.AddrFrom16([16]byte(ip[24:40])), hops: ip[7], l4: ip[40 : 40+n]}
}

func TestRouterIPv6(t *testing.T) {
	d := openTest(t, "tapa", "tapd", "up0")
	if _, err := d.Apply(l3v6State()); err != nil {
		t.Fatal(err)
	}
	in := d.objs.PortIn
	a, llA := slaacA.String(), linkLocal(macA).Addr().String()
	llR1 := linkLocal(macR1).Addr()

	// Neighbour solicitations for the router's addresses on a's network
	// are answered on the node, from the router's MAC.
	for _, target := range []string{"2001:db8:1::1", llR1.String()} {
		r := d.run(t, in, "tapa", frame{src: macA, dst: mac("33:33:ff:00:00:01")}.nd6(135, a, "ff02::1:ff00:1", target))
		if r.String() != "REDIRECT [arp_reply]" {
			t.Fatalf("solicitation for %s: %s", target, r)
		}
		na := parseIP6(r.out)
		if got := macsOf(r.out); got != "fa:16:3e:00:01:01 > fa:16:3e:00:00:0a" {
			t.Errorf("advertisement of %s: MACs %s", target, got)
		}
		if na.src.String() != target || na.dst.String() != a || na.hops != 255 || na.l4[0] != 136 ||
			na.l4[4] != 0xe0 || netip.AddrFrom16([16]byte(na.l4[8:24])).String() != target ||
			!bytes.Equal(na.l4[24:32], append([]byte{2, 1}, macR1...)) {
			t.Errorf("advertisement of %s: %s > %s hops %d, %x", target, na.src, na.dst, na.hops, na.l4)
		}
		if err := icmp6SumOK(r.out); err != nil {
			t.Errorf("advertisement of %s: %v", target, err)
		}
	}
	// The router's address on the other network is not a's to ask for.
	if r := d.run(t, in, "tapa", frame{src: macA, dst: mac("33:33:ff:00:00:01")}.nd6(135, a, "ff02::1:ff00:1", "2001:db8:2::1")); r.String() != "REDIRECT [flood,fwd_uplink]" {
		t.Errorf("solicitation for the other network's gateway: %s", r)
	}

	// A router solicitation on a's network gets the SLAAC advertisement.
	r := d.run(t, in, "tapa", frame{src: macA, dst: mac("33:33:00:00:00:02")}.icmp6(llA, "ff02::2", 133, 0, 0))
	if r.String() != "REDIRECT [icmp_reply]" {
		t.Fatalf("router solicitation: %s", r)
	}
	ra := parseIP6(r.out)
	if ra.src != llR1 || ra.dst.String() != llA || ra.hops != 255 || ra.l4[0] != 134 || ra.l4[5] != 0 {
		t.Errorf("advertisement %s > %s hops %d type %d flags %#x", ra.src, ra.dst, ra.hops, ra.l4[0], ra.l4[5])
	}
	pi := ra.l4[16:48]
	if pi[0] != 3 || pi[2] != 64 || pi[3] != 0xc0 || netip.AddrFrom16([16]byte(pi[16:32])).String() != "2001:db8:1::" {
		t.Errorf("prefix information %x, want 2001:db8:1::/64 on-link and autonomous", pi)
	}
	if !bytes.Equal(ra.l4[48:56], append([]byte{1, 1}, macR1...)) || !bytes.Equal(ra.l4[56:64], []byte{5, 1, 0, 0, 0, 0, 0x05, 0xaa}) {
		t.Errorf("options %x, want the router's MAC and MTU 1450", ra.l4[48:])
	}
	if err := icmp6SumOK(r.out); err != nil {
		t.Errorf("advertisement: %v", err)
	}
	// Solicited from ::, the advertisement goes to all nodes.
	r = d.run(t, in, "tapa", frame{src: macA, dst: mac("33:33:00:00:00:02")}.icmp6("::", "ff02::2", 133, 0, 0))
	if ra := parseIP6(r.out); r.String() != "REDIRECT [icmp_reply]" || ra.dst.String() != "ff02::1" || macsOf(r.out) != "fa:16:3e:00:01:01 > 33:33:00:00:00:01" || ra.l4[0] != 134 {
		t.Errorf("router solicitation from ::: %s, %s > %s", r, macsOf(r.out), ra.dst)
	}
	// d's network has no ipv6_ra_mode: its solicitations go their way.
	if r := d.run(t, in, "tapd", frame{src: macD, dst: mac("33:33:00:00:00:02")}.icmp6(linkLocal(macD).Addr().String(), "ff02::2", 133, 0, 0)); r.String() != "REDIRECT [flood,fwd_uplink]" {
		t.Errorf("router solicitation without advertisements: %s", r)
	}

	toR1 := frame{src: macA, dst: macR1}
	hop1 := toR1.tcp6(a, "2001:db8:2::20", 40000, 22)
	hop1[14+7] = 1
	cases := []struct {
		name string
		pkt  []byte
		want string
		out  string // the routed packet's MACs, addresses and hop limit
	}{
		{"ssh to d across the router", toR1.tcp6(a, "2001:db8:2::20", 40000, 22), "REDIRECT [fwd_local,fwd_routed]",
			"fa:16:3e:00:01:02 > fa:16:3e:00:00:0d " + a + " > 2001:db8:2::20 hops 63"},
		{"http to d: its groups say no", toR1.tcp6(a, "2001:db8:2::20", 40000, 80), "SHOT [drop_sg_ingress,fwd_routed]", ""},
		{"static route to another node's port by the uplink", toR1.tcp6(a, "2001:db8:50::7", 40000, 22), "REDIRECT [fwd_routed,fwd_uplink]",
			"fa:16:3e:00:01:02 > fa:16:3e:00:00:1e " + a + " > 2001:db8:50::7 hops 63"},
		{"an address no port has", toR1.tcp6(a, "2001:db8:2::99", 40000, 22), "SHOT [drop_no_neigh]", ""},
		{"nowhere", toR1.tcp6(a, "2001:db8:99::1", 40000, 22), "SHOT [drop_no_route]", ""},
		{"a link-local destination", toR1.tcp6(a, "fe80::1", 40000, 22), "SHOT [drop_no_route]", ""},
		{"spoofed source to the router", toR1.tcp6("2001:db8:1::99", "2001:db8:2::20", 40000, 22), "SHOT [drop_spoof_ip]", ""},
	}
	for _, c := range cases {
		r := d.run(t, in, "tapa", c.pkt)
		if r.String() != c.want {
			t.Errorf("%s: got %s, want %s", c.name, r, c.want)
			continue
		}
		if c.out == "" {
			continue
		}
		p := parseIP6(r.out)
		if got := fmt.Sprintf("%s %s > %s hops %d", macsOf(r.out), p.src, p.dst, p.hops); got != c.out {
			t.Errorf("%s: sent %s, want %s", c.name, got, c.out)
		}
	}

	// Hop limit 1: time exceeded, from the router's address on a's
	// network, quoting the packet.
	r = d.run(t, in, "tapa", hop1)
	if r.String() != "REDIRECT [icmp_reply]" {
		t.Fatalf("hop limit 1: %s", r)
	}
	if p := parseIP6(r.out); p.src.String() != "2001:db8:1::1" || p.dst.String() != a || p.l4[0] != 3 || p.l4[1] != 0 ||
		!bytes.Equal(p.l4[8:56], hop1[14:62]) || macsOf(r.out) != "fa:16:3e:00:01:01 > fa:16:3e:00:00:0a" {
		t.Errorf("time exceeded %s %s > %s type %d code %d, quote %x", macsOf(r.out), p.src, p.dst, p.l4[0], p.l4[1], p.l4[8:])
	}
	if err := icmp6SumOK(r.out); err != nil {
		t.Errorf("time exceeded: %v", err)
	}
	// ... but never about an ICMPv6 error.
	te := toR1.icmp6(a, "2001:db8:2::20", 3, 0, 0)
	te[14+7] = 1
	if r := d.run(t, in, "tapa", te); r.String() != "SHOT [drop_no_route]" {
		t.Errorf("an ICMPv6 error with hop limit 1: %s", r)
	}

	// A ping to the gateway is answered by it.
	echo := toR1.icmp6(a, "2001:db8:1::1", 128, 0, 7)
	binary.BigEndian.PutUint16(echo[14+40+2:], 0)
	binary.BigEndian.PutUint16(echo[14+40+2:], ^uint16(func() uint32 {
		s := sum16(echo[14+8:14+40], 0)
		s = sum16([]byte{0, 0, 0, byte(len(echo) - 54), 0, 0, 0, 58}, s)
		return sum16(echo[54:], s)
	}()))
	r = d.run(t, in, "tapa", echo)
	if r.String() != "REDIRECT [icmp_reply]" {
		t.Fatalf("ping the gateway: %s", r)
	}
	if p := parseIP6(r.out); p.src.String() != "2001:db8:1::1" || p.dst.String() != a || p.l4[0] != 129 || macsOf(r.out) != "fa:16:3e:00:01:01 > fa:16:3e:00:00:0a" {
		t.Errorf("echo reply %s %s > %s type %d", macsOf(r.out), p.src, p.dst, p.l4[0])
	}
	if err := icmp6SumOK(r.out[:len(echo)]); err != nil {
		t.Errorf("echo reply: %v", err)
	}
}

// TestRoutedIPv6Namespaces routes real IPv6 between guests in namespaces
// of their own: a forms its address by SLAAC from the router's
// advertisement and routes by the router's link-local address, as a
// guest does; d has a static address and its gateway's.
func TestRoutedIPv6Namespaces(t *testing.T) {
	pfx := netip.MustParsePrefix
	d := openTest(t, "tapa", "tapd", "up0")
	ga := dataplanetest.Guest(t, d.cfg.Netns, "tapa", macA, pfx("10.0.0.10/24"), netip.Addr{})
	gd := dataplanetest.Guest(t, d.cfg.Netns, "tapd", macD, pfx("10.0.1.20/24"), netip.Addr{})
	want := l3v6State()
	want.Routers[0].Interfaces[1].MTU = 1280 // d's network
	if _, err := d.Apply(want); err != nil {
		t.Fatal(err)
	}
	dataplanetest.IPv6(t, gd, "tapdp", pfx("2001:db8:2::20/64"))
	if out, err := ipIn(gd, "-6", "route", "add", "default", "via", "2001:db8:2::1"); err != nil {
		t.Fatalf("default route in d: %v\n%s", err, out)
	}
	dataplanetest.IPv6(t, ga, "tapap")

	// SLAAC: a solicits, gets the advertisement, forms its address.
	var addrs string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		addrs, _ = ipIn(ga, "-6", "addr", "show", "dev", "tapap")
		if bytes.Contains([]byte(addrs), []byte(slaacA.String())) {
			break
		}
	}
	if !bytes.Contains([]byte(addrs), []byte(slaacA.String())) {
		t.Fatalf("a formed no address from the router's advertisement:\n%s", addrs)
	}
	if out, err := ping(t, ga, "-6", "2001:db8:2::20"); err != nil {
		t.Errorf("IPv6 ping from a to d across the router: %v\n%s", err, out)
	}
	if out, err := ping(t, ga, "-6", "2001:db8:1::1"); err != nil {
		t.Errorf("IPv6 ping of a's gateway: %v\n%s", err, out)
	}
	// 3000 bytes: in fragments, answered one by one.
	for _, to := range []string{"2001:db8:1::1", "2001:db8:2::1"} {
		if out, err := ping(t, ga, "-6", "-s", "3000", to); err != nil || !strings.Contains(out, "3008 bytes from "+to) {
			t.Errorf("3000-byte IPv6 ping of the router's %s: %v\n%s", to, err, out)
		}
	}
	serveEcho(t, gd, "[2001:db8:2::20]:22")
	if got := dialFrom(t, ga, "[2001:db8:2::20]:22"); got != slaacA.String() {
		t.Errorf("d saw a's routed connection from %q, want %s", got, slaacA)
	}
	// Hop limit 1: the router does not forward it, and says so.
	out, _ := ping(t, ga, "-6", "-t", "1", "2001:db8:2::20")
	if !strings.Contains(out, "From 2001:db8:1::1") || !strings.Contains(strings.ToLower(out), "time exceeded") {
		t.Errorf("ping with hop limit 1 got no time exceeded from the gateway:\n%s", out)
	}
	// Too big for d's network: a learns its MTU from the router.
	out, _ = ping(t, ga, "-6", "-M", "do", "-s", "1300", "2001:db8:2::20")
	if !strings.Contains(out, "mtu = 1280") && !strings.Contains(out, "mtu=1280") {
		t.Errorf("ping too big for d's network learnt no MTU:\n%s", out)
	}
}

// ipIn runs ip in a namespace.
func ipIn(ns string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"-n", filepath.Base(ns)}, args...)...).CombinedOutput()
	return string(out), err
}

// TestRouterIPv6PacketTooBig: network 102 has MTU 1280 (r6's interface
// there says so): what a routes onto it bigger gets ICMPv6 packet too
// big with that MTU from a's gateway, quoting it; what fits is routed.
func TestRouterIPv6PacketTooBig(t *testing.T) {
	d := openTest(t, "tapa", "tapd", "up0")
	want := l3v6State()
	want.Routers[0].Interfaces[1].MTU = 1280
	if _, err := d.Apply(want); err != nil {
		t.Fatal(err)
	}
	toR1 := frame{src: macA, dst: macR1}
	big := toR1.icmp6(slaacA.String(), "2001:db8:2::20", 128, 0, 7)
	big = append(big, make([]byte, 1300)...)
	binary.BigEndian.PutUint16(big[14+4:], uint16(len(big)-54))
	r := d.run(t, d.objs.PortIn, "tapa", big)
	if r.String() != "REDIRECT [icmp_reply]" {
		t.Fatalf("1354 bytes onto a 1280 network: %s", r)
	}
	p := parseIP6(r.out)
	if p.src.String() != "2001:db8:1::1" || p.dst != slaacA || p.l4[0] != 2 || binary.BigEndian.Uint32(p.l4[4:]) != 1280 || !bytes.Equal(p.l4[8:56], big[14:62]) {
		t.Errorf("packet too big %s > %s type %d mtu %d quote %x", p.src, p.dst, p.l4[0], binary.BigEndian.Uint32(p.l4[4:]), p.l4[8:])
	}
	if err := icmp6SumOK(r.out); err != nil {
		t.Error(err)
	}
	fits := toR1.icmp6(slaacA.String(), "2001:db8:2::20", 128, 0, 7)
	fits = append(fits, make([]byte, 1280-40-24)...)
	binary.BigEndian.PutUint16(fits[14+4:], uint16(len(fits)-54))
	if r := d.run(t, d.objs.PortIn, "tapa", fits); r.String() != "REDIRECT [fwd_local,fwd_routed]" {
		t.Errorf("1280 bytes onto a 1280 network: %s", r)
	}
}
