package dataplane

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
)

// udpData is a UDP datagram of 8+64 bytes whose payload starts with what
// would read as ports 22 -> 22 in a later fragment, checksums filled in.
func (f frame) udpData(src, dst string, sport, dport uint16) []byte {
	l4 := make([]byte, 8+64)
	binary.BigEndian.PutUint16(l4[0:], sport)
	binary.BigEndian.PutUint16(l4[2:], dport)
	binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
	for i := 8; i < len(l4); i++ {
		l4[i] = byte(i)
	}
	copy(l4[24:], []byte{0, 22, 0, 22}) // the later fragment's first bytes
	return withChecksums(f.eth(0x0800, ipv4(17, src, dst, l4)))
}

// fragments splits an untagged IPv4 frame into a first fragment carrying
// cut bytes of its L4 part (a multiple of 8) and the later one with the
// rest, both of IP identification id.
func fragments(pkt []byte, id uint16, cut int) (first, later []byte) {
	ip := pkt[14:]
	l4 := ip[20:]
	mk := func(off int, part []byte, more bool) []byte {
		h := append([]byte{}, ip[:20]...)
		binary.BigEndian.PutUint16(h[2:], uint16(20+len(part)))
		binary.BigEndian.PutUint16(h[4:], id)
		fo := uint16(off / 8)
		if more {
			fo |= 0x2000
		}
		binary.BigEndian.PutUint16(h[6:], fo)
		binary.BigEndian.PutUint16(h[10:], 0)
		binary.BigEndian.PutUint16(h[10:], ^uint16(sum16(h, 0)))
		return append(append(append([]byte{}, pkt[:14]...), h...), part...)
	}
	return mk(0, l4[:cut], true), mk(cut, l4[cut:], false)
}

// tagged inserts an 802.1Q tag into an untagged frame.
func tagged(pkt []byte, vlan uint16) []byte {
	out := append([]byte{}, pkt[:12]...)
	out = binary.BigEndian.AppendUint16(out, 0x8100)
	out = binary.BigEndian.AppendUint16(out, vlan)
	return append(out, pkt[12:]...)
}

// reassembled checks two fragments as they left the dataplane: the IP
// header checksums, the same addresses on both, and the L4 checksum of the
// datagram they make again; it returns the datagram's L4 part.
func reassembled(first, later []byte) ([]byte, error) {
	a, b := first[14:], later[14:]
	for _, h := range [][]byte{a, b} {
		if s := sum16(h[:20], 0); s != 0xffff {
			return nil, fmt.Errorf("IP checksum off by %#x", s)
		}
	}
	if !bytes.Equal(a[12:20], b[12:20]) {
		return nil, fmt.Errorf("first fragment %s, later one %s: addresses differ", parseIP(first), parseIP(later))
	}
	la := a[20:binary.BigEndian.Uint16(a[2:])]
	lb := b[20:binary.BigEndian.Uint16(b[2:])]
	whole := append(append([]byte{}, a[:20]...), la...)
	whole = append(whole, lb...)
	binary.BigEndian.PutUint16(whole[2:], uint16(len(whole)))
	if s := l4Sum(whole); s != 0xffff {
		return nil, fmt.Errorf("reassembled protocol %d checksum off by %#x", whole[9], s)
	}
	return whole[20:], nil
}

// TestFragmentVerdicts: a later fragment carries no ports, so it takes its
// first fragment's, and with them the first fragment's verdict, in the
// zone (port, uplink VLAN) where the first was seen; one whose first was
// never seen is dropped by a secured port.
func TestFragmentVerdicts(t *testing.T) {
	d := fixture(t)
	ab := frame{src: macA, dst: macB}
	dns := ab.udpData("10.0.0.10", "10.0.0.11", 5353, 53) // b lets DNS in from its group
	dns1, dns2 := fragments(dns, 100, 24)
	other := ab.udpData("10.0.0.10", "10.0.0.11", 5353, 54) // no rule for 54
	other1, other2 := fragments(other, 101, 24)
	_, orphan := fragments(dns, 102, 24)
	ping := withChecksums(ab.icmp("10.0.0.10", "10.0.0.11", 8, 0, 9))
	ping1, ping2 := fragments(ping, 103, 8)
	cases := []struct {
		name string
		dev  string
		pkt  []byte
		want string
	}{
		{"a later fragment before its first", "tapa", dns2, "SHOT [drop_sg_egress,frag_orphan]"},
		{"first fragment of DNS", "tapa", dns1, "REDIRECT [fwd_local]"},
		{"its later fragment", "tapa", dns2, "REDIRECT [fwd_local]"},
		{"first fragment to a port without a rule", "tapa", other1, "SHOT [drop_sg_ingress]"},
		{"its later fragment, though it reads as port 22", "tapa", other2, "SHOT [drop_sg_ingress]"},
		{"a later fragment of another datagram", "tapa", orphan, "SHOT [drop_sg_egress,frag_orphan]"},
		{"first fragment of a big ping", "tapa", ping1, "REDIRECT [fwd_local]"},
		{"the rest of the ping", "tapa", ping2, "REDIRECT [fwd_local]"},
	}
	for _, c := range cases {
		if got := d.run(t, d.objs.PortIn, c.dev, c.pkt).String(); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
	// Through the uplink: the first fragment seen on port a vouches for
	// nothing there, as another tenant's datagram could carry the same
	// addresses and identification.
	x := frame{src: macX, dst: macB}
	if r := d.run(t, d.objs.UplinkIn, "up0", tagged(dns2, 101)); r.String() != "SHOT [drop_sg_ingress,frag_orphan,from_uplink]" {
		t.Errorf("a's later fragment, from the uplink: %s", r)
	}
	tcp1, tcp2 := fragments(withChecksums(x.tcp("10.0.0.50", "10.0.0.11", 40000, 1500)), 7, 16)
	for _, c := range []struct {
		name, want string
		pkt        []byte
	}{
		{"first fragment of a TCP segment to b's port range", "REDIRECT [from_uplink,fwd_local]", tagged(tcp1, 101)},
		{"its later fragment", "REDIRECT [from_uplink,fwd_local]", tagged(tcp2, 101)},
		{"the same later fragment on another VLAN", "SHOT [drop_no_fdb,frag_orphan,from_uplink]", tagged(tcp2, 102)},
	} {
		if got := d.run(t, d.objs.UplinkIn, "up0", c.pkt).String(); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
}

// TestFragmentsThroughSNAT: a fragmented datagram leaves through router
// SNAT and its reply comes back, each later fragment by the NAT entry of
// its first: the addresses rewritten, the NAT port only in the first
// fragment (the later one's payload is left as it is), and the datagram's
// UDP checksum right once reassembled.
func TestFragmentsThroughSNAT(t *testing.T) {
	d := openTest(t, "tapa", "tapd", "up0", "ext0", "meta0")
	want := l3State()
	want.Routers[0].Gateway.SNAT = true
	want.Ports[1].Addrs = append(want.Ports[1].Addrs, netip.MustParsePrefix("10.0.1.21/32"))
	if _, err := d.Apply(want); err != nil {
		t.Fatal(err)
	}
	if r := d.run(t, d.objs.ExtIn, "ext0", frame{src: macG, dst: mac("ff:ff:ff:ff:ff:ff")}.arp("172.24.4.1", "172.24.4.2")); r.String() != "REDIRECT [arp_reply]" {
		t.Fatalf("ARP for the router's gateway address: %s", r)
	}
	toR2 := frame{src: macD, dst: macR2}
	// 10.0.1.20 takes NAT port 7000, so 10.0.1.21's datagram from 7000
	// gets another: its first fragment's port is rewritten.
	if r := d.run(t, d.objs.PortIn, "tapd", toR2.udpData("10.0.1.20", "8.8.8.8", 7000, 53)); r.String() != "REDIRECT [nat_out,snat_new]" {
		t.Fatalf("a datagram that takes port 7000: %s", r)
	}
	orig := toR2.udpData("10.0.1.21", "8.8.8.8", 7000, 53)
	f1, f2 := fragments(orig, 555, 24)
	r1 := d.run(t, d.objs.PortIn, "tapd", f1)
	r2 := d.run(t, d.objs.PortIn, "tapd", f2)
	if r1.String() != "REDIRECT [nat_out,snat_new]" || r2.String() != "REDIRECT [nat_out]" {
		t.Fatalf("fragments out: %s, then %s", r1, r2)
	}
	out1, out2 := r1.out[:len(f1)], r2.out[:len(f2)]
	l4, err := reassembled(out1, out2)
	if err != nil {
		t.Fatal(err)
	}
	natPort := binary.BigEndian.Uint16(l4)
	if o := parseIP(out1); o.src != netip.MustParseAddr("172.24.4.2") || natPort == 7000 {
		t.Fatalf("first fragment left as %s: want the gateway address and another port than 7000", o)
	}
	if o := orig[34:]; !bytes.Equal(l4[2:6], o[2:6]) || !bytes.Equal(l4[8:], o[8:]) {
		t.Errorf("the datagram changed beyond its source port and checksum:\n got %x\nwant %x", l4, o)
	}

	// The reply, fragmented by the outside.
	fromG := frame{src: macG, dst: macExt}
	reply := fromG.udpData("8.8.8.8", "172.24.4.2", 53, natPort)
	g1, g2 := fragments(reply, 999, 24)
	_, stray := fragments(reply, 998, 24)
	if r := d.run(t, d.objs.ExtIn, "ext0", stray); r.String() != "SHOT [drop_no_route,frag_orphan]" {
		t.Errorf("a later fragment of a reply whose first never came: %s", r)
	}
	i1 := d.run(t, d.objs.ExtIn, "ext0", g1)
	i2 := d.run(t, d.objs.ExtIn, "ext0", g2)
	if i1.String() != "REDIRECT [fwd_local,nat_in]" || i2.String() != "REDIRECT [fwd_local,nat_in]" {
		t.Fatalf("reply fragments in: %s, then %s", i1, i2)
	}
	in1, in2 := i1.out[:len(g1)], i2.out[:len(g2)]
	back, err := reassembled(in1, in2)
	if err != nil {
		t.Fatal(err)
	}
	if o := parseIP(in1); o.dst != netip.MustParseAddr("10.0.1.21") || o.dport != 7000 {
		t.Errorf("reply's first fragment went in as %s, want to 10.0.1.21:7000", o)
	}
	if o := reply[34:]; !bytes.Equal(back[:2], o[:2]) || !bytes.Equal(back[4:6], o[4:6]) || !bytes.Equal(back[8:], o[8:]) {
		t.Errorf("the reply changed beyond its destination port and checksum:\n got %x\nwant %x", back, o)
	}
}

// frag6 is an IPv6 fragment from src to dst behind a fragment header
// (identification id, offset off bytes, more) carrying part of a datagram
// of upper-layer protocol nh.
func (f frame) frag6(src, dst string, nh uint8, id uint32, off int, more bool, part []byte) []byte {
	fh := []byte{nh, 0, 0, 0, 0, 0, 0, 0}
	fo := uint16(off/8) << 3
	if more {
		fo |= 1
	}
	binary.BigEndian.PutUint16(fh[2:], fo)
	binary.BigEndian.PutUint32(fh[4:], id)
	return f.eth(0x86dd, ipv6(44, src, dst, append(fh, part...)))
}

// TestFragmentVerdictsIPv6: IPv6 fragments take their first fragment's
// ports from behind the fragment header as IPv4 ones do.
func TestFragmentVerdictsIPv6(t *testing.T) {
	d := fixture6(t)
	ab := frame{src: macA, dst: macB}
	ssh := tcpHeader(40000, 22) // b lets ssh in from the subnet
	http := tcpHeader(40000, 80)
	rest := []byte{0, 22, 0, 22, 1, 2, 3, 4}
	cases := []struct {
		name string
		pkt  []byte
		want string
	}{
		{"a later fragment before its first", ab.frag6("2001:db8::10", "2001:db8::11", 6, 7, 24, false, rest), "SHOT [drop_sg_egress,frag_orphan]"},
		{"first fragment of ssh", ab.frag6("2001:db8::10", "2001:db8::11", 6, 7, 0, true, append(ssh, 0, 0, 0, 0)), "REDIRECT [fwd_local]"},
		{"its later fragment", ab.frag6("2001:db8::10", "2001:db8::11", 6, 7, 24, false, rest), "REDIRECT [fwd_local]"},
		{"first fragment of http: no rule", ab.frag6("2001:db8::10", "2001:db8::11", 6, 8, 0, true, append(http, 0, 0, 0, 0)), "SHOT [drop_sg_ingress]"},
		{"its later fragment, though it reads as port 22", ab.frag6("2001:db8::10", "2001:db8::11", 6, 8, 24, false, rest), "SHOT [drop_sg_ingress]"},
	}
	for _, c := range cases {
		if got := d.run(t, d.objs.PortIn, "tapa", c.pkt).String(); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
}
