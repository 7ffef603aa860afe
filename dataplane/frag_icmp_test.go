package dataplane

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

// bigErr is an ICMP error from src to dst quoting the IP packet of frame
// quoted and more: 4 bytes of padding, the quoted packet once again and
// 100 bytes beyond.
// Cut after 64 bytes (fragments), the first fragment holds the ICMP header
// and the quote's headers, and the later one's bytes from its 8th read as
// a quote of the same flow: what a later fragment must not be taken for.
func (f frame) bigErr(src, dst string, typ, code uint8, quoted []byte) []byte {
	q := quoted[14:]
	l4 := append([]byte{typ, code, 0, 0, 0, 0, 0, 0}, q...)
	l4 = append(l4, make([]byte, 72-len(l4))...)
	l4 = append(l4, q...)
	l4 = append(l4, bytes.Repeat([]byte{0xab}, 100)...)
	return withChecksums(f.eth(0x0800, ipv4(1, src, dst, l4)))
}

// TestFragmentedICMPErrors: an ICMP error that arrives in fragments (one
// quoting more than the first fragment holds) reaches the port through
// its floating IP and through router SNAT: the first fragment by the flow
// it quotes, its quote translated; a later one, which quotes nothing, by
// its first fragment's flow (frag.h), its bytes left as they are even
// where they read as a quote. Without that, web's rules (echo requests
// only) drop it, and SNAT finds no flow for it. The port's own fragmented
// error about what came in to its floating IP leaves the same way. An
// error's later fragment whose first never came goes nowhere.
func TestFragmentedICMPErrors(t *testing.T) {
	d := openTest(t, "tapa", "tapd", "up0", "ext0", "meta0")
	want := l3State()
	want.Routers[0].Gateway.SNAT = true
	if _, err := d.Apply(want); err != nil {
		t.Fatal(err)
	}
	d.run(t, d.objs.ExtIn, "ext0", frame{src: macG, dst: mac("ff:ff:ff:ff:ff:ff")}.arp("172.24.4.1", "172.24.4.2"))
	aToR1, dToR2, fromG := frame{src: macA, dst: macR1}, frame{src: macD, dst: macR2}, frame{src: macG, dst: macExt}

	// through sends an error's two fragments into prog on dev, checks
	// both verdicts, and returns the reassembled ICMP message.
	through := func(name string, prog string, dev string, pkt []byte, id uint16, verdict string) []byte {
		t.Helper()
		f1, f2 := fragments(pkt, id, 64)
		p := d.objs.ExtIn
		if prog == "port" {
			p = d.objs.PortIn
		}
		r1 := d.run(t, p, dev, f1)
		r2 := d.run(t, p, dev, f2)
		if r1.String() != verdict || r2.String() != verdict {
			t.Errorf("%s: first fragment %s, later one %s, want %s for both", name, r1, r2, verdict)
			return nil
		}
		msg, err := reassembled(r1.out[:len(f1)], r2.out[:len(f2)])
		if err != nil {
			t.Errorf("%s: %v", name, err)
			return nil
		}
		orig := pkt[14+20:]
		if !bytes.Equal(msg[72:], orig[72:]) {
			t.Errorf("%s: the error's bytes past its quote changed:\n got %x\nwant %x", name, msg[72:], orig[72:])
		}
		return append(append([]byte{}, r1.out[:34]...), msg...)
	}
	// quoting says what a reassembled error (as a frame) quotes, and
	// checks the quote's checksums.
	quoting := func(name string, pkt []byte, sent string) {
		t.Helper()
		if pkt == nil {
			return
		}
		if got := icmpSummary(pkt); got != sent {
			t.Errorf("%s: sent %s, want %s", name, got, sent)
		}
		if err := checksumsOK(quoteOf(pkt)); err != nil {
			t.Errorf("%s: the quote's %v", name, err)
		}
	}

	// Out of a's floating IP, and a big port unreachable back.
	r := d.run(t, d.objs.PortIn, "tapa", withChecksums(aToR1.udp("10.0.0.10", "8.8.8.8", 5000, 53)))
	if r.String() != "REDIRECT [nat_out]" {
		t.Fatalf("a out of its floating IP: %s", r)
	}
	sent := append([]byte{}, r.out[:14+60]...)
	msg := through("port unreachable to the floating IP", "ext", "ext0", fromG.bigErr("8.8.8.8", "172.24.4.10", 3, 3, sent), 301, "REDIRECT [fwd_local,nat_in]")
	quoting("port unreachable to the floating IP", msg, "8.8.8.8 > 10.0.0.10 type 3 code 3 quoting 10.0.0.10:5000 > 8.8.8.8:53")
	_, stray := fragments(fromG.bigErr("8.8.8.8", "172.24.4.10", 3, 3, sent), 302, 64)
	if r := d.run(t, d.objs.ExtIn, "ext0", stray); r.String() != "SHOT [drop_sg_ingress,frag_orphan]" {
		t.Errorf("a later fragment of an error whose first never came, to the floating IP: %s", r)
	}
	other := withChecksums(fromG.udp("172.24.4.10", "8.8.8.8", 5001, 53))
	o1, o2 := fragments(fromG.bigErr("8.8.8.8", "172.24.4.10", 3, 3, other), 303, 64)
	for i, f := range [][]byte{o1, o2} {
		if r := d.run(t, d.objs.ExtIn, "ext0", f); r.String() != "SHOT [drop_sg_ingress]" {
			t.Errorf("fragment %d of an error about no flow of a's: %s", i+1, r)
		}
	}

	// a's own big error about what came in to its floating IP.
	in := d.run(t, d.objs.ExtIn, "ext0", withChecksums(fromG.tcp("1.2.3.4", "172.24.4.10", 5555, 1500)))
	if in.String() != "REDIRECT [fwd_local,nat_in]" {
		t.Fatalf("in to the floating IP: %s", in)
	}
	msg = through("a's error about it", "port", "tapa", aToR1.bigErr("10.0.0.10", "1.2.3.4", 3, 3, append([]byte{}, in.out[:14+40]...)), 304, "REDIRECT [nat_out]")
	quoting("a's error about it", msg, "172.24.4.10 > 1.2.3.4 type 3 code 3 quoting 1.2.3.4:5555 > 172.24.4.10:1500")

	// d has no floating IP: SNATed, and a big frag needed back.
	r = d.run(t, d.objs.PortIn, "tapd", withChecksums(dToR2.udp("10.0.1.20", "8.8.8.8", 5000, 53)))
	if r.String() != "REDIRECT [nat_out,snat_new]" {
		t.Fatalf("d SNATed: %s", r)
	}
	sent = append([]byte{}, r.out[:14+60]...)
	natPort := parseIP(sent).sport
	msg = through("frag needed to the gateway address", "ext", "ext0", fromG.bigErr("172.24.4.1", "172.24.4.2", 3, 4, sent), 305, "REDIRECT [fwd_local,nat_in]")
	quoting("frag needed to the gateway address", msg, "172.24.4.1 > 10.0.1.20 type 3 code 4 quoting 10.0.1.20:5000 > 8.8.8.8:53")
	_, stray = fragments(fromG.bigErr("172.24.4.1", "172.24.4.2", 3, 4, sent), 306, 64)
	if r := d.run(t, d.objs.ExtIn, "ext0", stray); r.String() != "SHOT [drop_no_route,frag_orphan]" {
		t.Errorf("a later fragment of an error whose first never came, to the gateway address: %s", r)
	}
	other = withChecksums(fromG.udp("172.24.4.2", "9.9.9.9", natPort, 53))
	o1, o2 = fragments(fromG.bigErr("9.9.9.9", "172.24.4.2", 3, 3, other), 307, 64)
	for i, f := range [][]byte{o1, o2} {
		if r := d.run(t, d.objs.ExtIn, "ext0", f); r.String() != "SHOT [drop_no_route]" {
			t.Errorf("fragment %d of an error about no SNAT flow: %s", i+1, r)
		}
	}
}

// TestFragmentedPingToRouter: a ping to a router's own address too big
// for one frame is answered fragment by fragment, each sent back as the
// same fragment of the reply: the sender reassembles an echo reply of the
// request's data, its checksum right, whichever fragment comes first. A
// later fragment whose first was never seen is not answered, nor is the
// later fragment of a datagram that is no ping; TTL 1 on a later
// fragment that is routed gets no time exceeded (only first fragments
// are answered with errors, as Linux does).
func TestFragmentedPingToRouter(t *testing.T) {
	d := l3Fixture(t)
	toR1 := frame{src: macA, dst: macR1}
	echo := func(dst string, id uint16) []byte {
		l4 := make([]byte, 8+200)
		l4[0] = 8
		binary.BigEndian.PutUint16(l4[4:], id)
		binary.BigEndian.PutUint16(l4[6:], 1)
		for i := 8; i < len(l4); i++ {
			l4[i] = byte(i * 7)
		}
		return withChecksums(toR1.eth(0x0800, ipv4(1, "10.0.0.10", dst, l4)))
	}
	for _, c := range []struct {
		name, dst string
		later     bool // the later fragment first
	}{
		{"to a's gateway", "10.0.0.1", false},
		{"to the router's address on d's network", "10.0.1.1", false},
		{"to a's gateway, the later fragment first", "10.0.0.1", true},
	} {
		req := echo(c.dst, 77)
		id := uint16(400)
		if c.later {
			id = 401
		}
		f1, f2 := fragments(req, id, 96)
		if c.later {
			// Out of order, the later fragment is an orphan (nothing
			// reassembles here): the sender's retry, in order, is
			// answered.
			if r := d.run(t, d.objs.PortIn, "tapa", f2); r.String() != "SHOT [drop_sg_egress,frag_orphan]" {
				t.Errorf("%s: %s", c.name, r)
			}
		}
		r1 := d.run(t, d.objs.PortIn, "tapa", f1)
		r2 := d.run(t, d.objs.PortIn, "tapa", f2)
		if r1.String() != "REDIRECT [icmp_reply]" || r2.String() != "REDIRECT [icmp_reply]" {
			t.Errorf("%s: first fragment %s, later one %s, want both answered", c.name, r1, r2)
			continue
		}
		o1, o2 := r1.out[:len(f1)], r2.out[:len(f2)]
		for i, o := range [][]byte{o1, o2} {
			if got, want := macsOf(o), "fa:16:3e:00:01:01 > fa:16:3e:00:00:0a"; got != want {
				t.Errorf("%s: fragment %d sent %s, want %s", c.name, i+1, got, want)
			}
			if binary.BigEndian.Uint16(o[18:]) != id {
				t.Errorf("%s: fragment %d has identification %d, want the request's %d", c.name, i+1, binary.BigEndian.Uint16(o[18:]), id)
			}
		}
		if !bytes.Equal(o1[20:22], f1[20:22]) || !bytes.Equal(o2[20:22], f2[20:22]) {
			t.Errorf("%s: offsets and flags %x %x, want the request's %x %x", c.name, o1[20:22], o2[20:22], f1[20:22], f2[20:22])
		}
		msg, err := reassembled(o1, o2)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if p := parseIP(o1); p.src != netip.MustParseAddr(c.dst) || p.dst != netip.MustParseAddr("10.0.0.10") {
			t.Errorf("%s: reply from %s to %s", c.name, p.src, p.dst)
		}
		if reqMsg := req[34:]; msg[0] != 0 || msg[1] != 0 || !bytes.Equal(msg[4:], reqMsg[4:]) {
			t.Errorf("%s: reply\n %x\nis not the request's echo reply\n %x", c.name, msg, reqMsg)
		}
	}

	// A later fragment of a UDP datagram to the router: no ping's.
	udp := withChecksums(toR1.udpData("10.0.0.10", "10.0.0.1", 5000, 53))
	u1, u2 := fragments(udp, 402, 24)
	for i, f := range [][]byte{u1, u2} {
		if r := d.run(t, d.objs.PortIn, "tapa", f); r.String() != "SHOT [drop_no_neigh]" {
			t.Errorf("UDP fragment %d to the router: %s", i+1, r)
		}
	}

	// TTL 1: the first fragment gets time exceeded, the later one not.
	big := withChecksums(toR1.udpData("10.0.0.10", "10.0.1.20", 5000, 53))
	b1, b2 := fragments(big, 403, 24)
	for i, f := range [][]byte{b1, b2} {
		f[14+8] = 1
		binary.BigEndian.PutUint16(f[14+10:], 0)
		binary.BigEndian.PutUint16(f[14+10:], ^uint16(sum16(f[14:34], 0)))
		want := map[int]string{0: "REDIRECT [icmp_reply]", 1: "SHOT [drop_no_route]"}[i]
		if r := d.run(t, d.objs.PortIn, "tapa", f); r.String() != want {
			t.Errorf("routed fragment %d with TTL 1: %s, want %s", i+1, r, want)
		}
	}
}
