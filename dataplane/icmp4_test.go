package dataplane

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
)

// icmpErr is an ICMP error of type typ and code from src to dst quoting
// the IP packet of frame quoted (its checksums already filled in).
func (f frame) icmpErr(src, dst string, typ, code uint8, quoted []byte) []byte {
	l4 := append([]byte{typ, code, 0, 0, 0, 0, 0, 0}, quoted[14:]...)
	return withChecksums(f.eth(0x0800, ipv4(1, src, dst, l4)))
}

// quoteOf is what the ICMP error pkt (untagged, IP without options)
// quotes: its inner IP packet, the checksums of which checksumsOK checks
// as a frame of its own.
func quoteOf(pkt []byte) []byte {
	return append(append([]byte{}, pkt[:14]...), pkt[14+20+8:]...)
}

// icmpSummary says who sent an ICMP error to whom and what it quotes.
func icmpSummary(pkt []byte) string {
	q := quoteOf(pkt)
	outer, inner := parseIP(pkt), parseIP(q)
	if q[14+9] == 1 { // an echo: its id
		id := binary.BigEndian.Uint16(q[14+20+4:])
		inner.sport, inner.dport = id, id
	}
	return fmt.Sprintf("%s > %s type %d code %d quoting %s:%d > %s:%d", outer.src, outer.dst, pkt[34], pkt[35], inner.src, inner.sport, inner.dst, inner.dport)
}

// TestRouterFragNeededIPv4: network 102 has MTU 1280; a's packets to d
// bigger than that with DF set get ICMP fragmentation needed with 1280
// from a's gateway, quoting them as sent; without DF, or fitting, they
// are routed; TTL 1 still gets time exceeded first.
func TestRouterFragNeededIPv4(t *testing.T) {
	d := openTest(t, "tapa", "tapd", "up0", "ext0", "meta0")
	want := l3State()
	want.Routers[0].Interfaces[1].MTU = 1280 // d's network, IPv4
	if _, err := d.Apply(want); err != nil {
		t.Fatal(err)
	}
	aToR1 := frame{src: macA, dst: macR1}
	udp := func(size int, df bool, ttl uint8) []byte {
		l4 := make([]byte, size-20)
		binary.BigEndian.PutUint16(l4[0:], 5000)
		binary.BigEndian.PutUint16(l4[2:], 53)
		binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
		pkt := aToR1.eth(0x0800, ipv4(17, "10.0.0.10", "10.0.1.20", l4))
		if df {
			pkt[14+6] = 0x40
		}
		pkt[14+8] = ttl
		return withChecksums(pkt)
	}
	big := udp(1300, true, 64)
	r := d.run(t, d.objs.PortIn, "tapa", append([]byte{}, big...))
	if r.String() != "REDIRECT [icmp_reply]" {
		t.Fatalf("too big with DF: %s", r)
	}
	out := r.out[:14+20+8+28]
	if got := macsOf(out) + " " + icmpSummary(out); got != "fa:16:3e:00:01:01 > fa:16:3e:00:00:0a 10.0.0.1 > 10.0.0.10 type 3 code 4 quoting 10.0.0.10:5000 > 10.0.1.20:53" {
		t.Errorf("too big with DF sent %s", got)
	}
	if mtu := binary.BigEndian.Uint16(out[40:]); mtu != 1280 {
		t.Errorf("next-hop MTU %d, want 1280 (network 102's)", mtu)
	}
	if err := checksumsOK(out); err != nil {
		t.Error(err)
	}
	if q := out[42:]; string(q) != string(big[14:14+28]) {
		t.Errorf("quote:\n got %x\nwant %x", q, big[14:14+28])
	}
	for _, c := range []struct {
		name string
		pkt  []byte
		want string
	}{
		{"too big without DF: routed as it is", udp(1300, false, 64), "REDIRECT [fwd_local,fwd_routed]"},
		{"fits with DF", udp(1280, true, 64), "REDIRECT [fwd_local,fwd_routed]"},
		{"too big with TTL 1", udp(1300, true, 1), "REDIRECT [icmp_reply]"},
	} {
		r := d.run(t, d.objs.PortIn, "tapa", c.pkt)
		if r.String() != c.want {
			t.Errorf("%s: %s, want %s", c.name, r, c.want)
		}
		if c.name == "too big with TTL 1" && r.out[34] != 11 {
			t.Errorf("%s: ICMP type %d, want 11 (time exceeded)", c.name, r.out[34])
		}
	}
	// An interface without an MTU checks nothing: d's big packets to a.
	back := withChecksums(frame{src: macD, dst: macR2}.eth(0x0800, ipv4(17, "10.0.1.20", "10.0.0.10", make([]byte, 1400))))
	back[14+6] = 0x40
	if r := d.run(t, d.objs.PortIn, "tapd", withChecksums(back)); r.String() == "REDIRECT [icmp_reply]" {
		t.Errorf("d to a's network of no MTU: %s", r)
	}
}

// TestRelatedICMPv4: ICMP errors about a port's flows reach it as
// related whatever its groups say of ICMP (web lets in only echo
// requests): between tenant networks as they are, and from outside
// through its floating IP and router SNAT with the quote translated back
// to the port's own address and port; an error about no flow of the
// port's does not get in. The port's own error about what came in to its
// floating IP leaves quoting the floating IP.
func TestRelatedICMPv4(t *testing.T) {
	d := openTest(t, "tapa", "tapd", "up0", "ext0", "meta0")
	want := l3State()
	want.Routers[0].Gateway.SNAT = true
	if _, err := d.Apply(want); err != nil {
		t.Fatal(err)
	}
	d.run(t, d.objs.ExtIn, "ext0", frame{src: macG, dst: mac("ff:ff:ff:ff:ff:ff")}.arp("172.24.4.1", "172.24.4.2"))
	aToR1, dToR2, fromG := frame{src: macA, dst: macR1}, frame{src: macD, dst: macR2}, frame{src: macG, dst: macExt}
	check := func(name string, r result, verdict, sent string) {
		t.Helper()
		if r.String() != verdict {
			t.Errorf("%s: %s, want %s", name, r, verdict)
			return
		}
		if sent == "" {
			return
		}
		if got := icmpSummary(r.out); got != sent {
			t.Errorf("%s: sent %s, want %s", name, got, sent)
		}
		if err := checksumsOK(r.out); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if err := checksumsOK(quoteOf(r.out)); err != nil {
			t.Errorf("%s: the quote's %v", name, err)
		}
	}

	// Between tenant networks: a's DNS to d, d's port unreachable back.
	aToD := withChecksums(aToR1.udp("10.0.0.10", "10.0.1.20", 5000, 53))
	check("a to d", d.run(t, d.objs.PortIn, "tapa", aToD), "REDIRECT [fwd_local,fwd_routed]", "")
	check("d's port unreachable about it", d.run(t, d.objs.PortIn, "tapd", dToR2.icmpErr("10.0.1.20", "10.0.0.10", 3, 3, aToD)),
		"REDIRECT [fwd_local,fwd_routed]", "10.0.1.20 > 10.0.0.10 type 3 code 3 quoting 10.0.0.10:5000 > 10.0.1.20:53")
	check("d's port unreachable about a flow a never had", d.run(t, d.objs.PortIn, "tapd",
		dToR2.icmpErr("10.0.1.20", "10.0.0.10", 3, 3, withChecksums(aToR1.udp("10.0.0.10", "10.0.1.20", 5001, 53)))), "SHOT [drop_sg_ingress,fwd_routed]", "")

	// Out of a's floating IP, and the errors back.
	r := d.run(t, d.objs.PortIn, "tapa", withChecksums(aToR1.udp("10.0.0.10", "8.8.8.8", 5000, 53)))
	check("a out of its floating IP", r, "REDIRECT [nat_out]", "")
	sent := append([]byte{}, r.out...)
	check("port unreachable to the floating IP", d.run(t, d.objs.ExtIn, "ext0", fromG.icmpErr("8.8.8.8", "172.24.4.10", 3, 3, sent)),
		"REDIRECT [fwd_local,nat_in]", "8.8.8.8 > 10.0.0.10 type 3 code 3 quoting 10.0.0.10:5000 > 8.8.8.8:53")
	check("time exceeded on the way to the floating IP", d.run(t, d.objs.ExtIn, "ext0", fromG.icmpErr("172.24.4.1", "172.24.4.10", 11, 0, sent)),
		"REDIRECT [fwd_local,nat_in]", "172.24.4.1 > 10.0.0.10 type 11 code 0 quoting 10.0.0.10:5000 > 8.8.8.8:53")
	check("an error about no flow of a's", d.run(t, d.objs.ExtIn, "ext0",
		fromG.icmpErr("8.8.8.8", "172.24.4.10", 3, 3, withChecksums(fromG.udp("172.24.4.10", "8.8.8.8", 5001, 53)))), "SHOT [drop_sg_ingress]", "")

	// d has no floating IP: SNAT to the router's gateway address, on a
	// port of its own when a's flow has d's source port already.
	want.Floating = nil
	if _, err := d.Apply(want); err != nil {
		t.Fatal(err)
	}
	check("a SNATed", d.run(t, d.objs.PortIn, "tapa", withChecksums(aToR1.udp("10.0.0.10", "8.8.8.8", 40000, 53))), "REDIRECT [nat_out,snat_new]", "")
	r = d.run(t, d.objs.PortIn, "tapd", withChecksums(dToR2.udp("10.0.1.20", "8.8.8.8", 40000, 53)))
	check("d SNATed", r, "REDIRECT [nat_out,snat_new]", "")
	sent = append([]byte{}, r.out...)
	if p := parseIP(sent); p.src != netip.MustParseAddr("172.24.4.2") || p.sport == 40000 {
		t.Fatalf("d SNATed to %s:%d, want 172.24.4.2 and a port not a's", p.src, p.sport)
	}
	check("port unreachable to the gateway address", d.run(t, d.objs.ExtIn, "ext0", fromG.icmpErr("8.8.8.8", "172.24.4.2", 3, 3, sent)),
		"REDIRECT [fwd_local,nat_in]", "8.8.8.8 > 10.0.1.20 type 3 code 3 quoting 10.0.1.20:40000 > 8.8.8.8:53")
	check("frag needed on the way", d.run(t, d.objs.ExtIn, "ext0", fromG.icmpErr("172.24.4.1", "172.24.4.2", 3, 4, sent)),
		"REDIRECT [fwd_local,nat_in]", "172.24.4.1 > 10.0.1.20 type 3 code 4 quoting 10.0.1.20:40000 > 8.8.8.8:53")
	r = d.run(t, d.objs.PortIn, "tapd", withChecksums(dToR2.icmp("10.0.1.20", "8.8.8.8", 8, 0, 77)))
	check("d's ping SNATed", r, "REDIRECT [nat_out,snat_new]", "")
	ttl := append([]byte{}, r.out...)
	ttl[14+8] = 1 // as the router that answers saw it
	check("time exceeded about d's ping", d.run(t, d.objs.ExtIn, "ext0", fromG.icmpErr("172.24.4.1", "172.24.4.2", 11, 0, withChecksums(ttl))),
		"REDIRECT [fwd_local,nat_in]", "172.24.4.1 > 10.0.1.20 type 11 code 0 quoting 10.0.1.20:77 > 8.8.8.8:77")
	check("an error about no SNAT flow", d.run(t, d.objs.ExtIn, "ext0",
		fromG.icmpErr("8.8.8.8", "172.24.4.2", 3, 3, withChecksums(fromG.udp("172.24.4.2", "9.9.9.9", 40000, 53)))), "SHOT [drop_no_route]", "")

	// d's own port unreachable about a reply that came back through SNAT
	// (its socket closed since): out from the gateway address, quoting
	// the gateway address and NAT port the outside knows.
	natPort := parseIP(sent).sport
	back := d.run(t, d.objs.ExtIn, "ext0", withChecksums(fromG.udp("8.8.8.8", "172.24.4.2", 53, natPort)))
	check("the reply to d", back, "REDIRECT [fwd_local,nat_in]", "")
	check("d's port unreachable about it", d.run(t, d.objs.PortIn, "tapd", dToR2.icmpErr("10.0.1.20", "8.8.8.8", 3, 3, withChecksums(append([]byte{}, back.out[:len(sent)]...)))),
		"REDIRECT [nat_out]", fmt.Sprintf("172.24.4.2 > 8.8.8.8 type 3 code 3 quoting 8.8.8.8:53 > 172.24.4.2:%d", natPort))
	check("d's error about a flow it never had", d.run(t, d.objs.PortIn, "tapd", dToR2.icmpErr("10.0.1.20", "9.9.9.9", 3, 3, withChecksums(fromG.udp("9.9.9.9", "10.0.1.20", 53, 40000)))),
		"SHOT [drop_no_route]", "")

	// a's own error about what came in to its floating IP.
	want.Floating = l3State().Floating
	if _, err := d.Apply(want); err != nil {
		t.Fatal(err)
	}
	in := d.run(t, d.objs.ExtIn, "ext0", withChecksums(fromG.tcp("1.2.3.4", "172.24.4.10", 5555, 1500)))
	check("in to the floating IP", in, "REDIRECT [fwd_local,nat_in]", "")
	check("a's error about it", d.run(t, d.objs.PortIn, "tapa", aToR1.icmpErr("10.0.0.10", "1.2.3.4", 3, 3, withChecksums(append([]byte{}, in.out...)))),
		"REDIRECT [nat_out]", "172.24.4.10 > 1.2.3.4 type 3 code 3 quoting 1.2.3.4:5555 > 172.24.4.10:1500")
}
