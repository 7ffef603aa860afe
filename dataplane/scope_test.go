package dataplane

import (
	"net/netip"
	"testing"
)

// TestSameScopeRoutedWithoutSNAT: r1 SNATs, but d's subnet is in the
// gateway's address scope: d's address goes out and comes back in as it
// is, while a's second address (no floating IP, another scope) is SNATed.
func TestSameScopeRoutedWithoutSNAT(t *testing.T) {
	d := openTest(t, "tapa", "tapd", "up0", "ext0", "meta0")
	want := l3State()
	want.Routers[0].Gateway.SNAT = true
	want.Routers[0].Interfaces[1].NoSNAT = true
	want.Ports[0].Addrs = append(want.Ports[0].Addrs, netip.MustParsePrefix("10.0.0.11/32"))
	if _, err := d.Apply(want); err != nil {
		t.Fatal(err)
	}
	d.run(t, d.objs.ExtIn, "ext0", frame{src: macG, dst: mac("ff:ff:ff:ff:ff:ff")}.arp("172.24.4.1", "172.24.4.2"))
	cases := []struct {
		name, prog, dev string
		pkt             []byte
		verdict, sent   string
	}{
		{"d out, same scope", "port_in", "tapd", frame{src: macD, dst: macR2}.tcp("10.0.1.20", "8.8.8.8", 40000, 443),
			"REDIRECT [nat_out]", "10.0.1.20:40000 > 8.8.8.8:443 ttl 63"},
		{"in to d's own address", "ext_in", "ext0", frame{src: macG, dst: macExt}.tcp("8.8.8.8", "10.0.1.20", 443, 40000),
			"REDIRECT [fwd_local,nat_in]", "8.8.8.8:443 > 10.0.1.20:40000 ttl 63"},
		{"a's second address, another scope: SNAT", "port_in", "tapa", frame{src: macA, dst: macR1}.tcp("10.0.0.11", "8.8.8.8", 40000, 443),
			"REDIRECT [nat_out,snat_new]", "172.24.4.2:40000 > 8.8.8.8:443 ttl 63"},
		{"in to a's second address: not routed", "ext_in", "ext0", frame{src: macG, dst: macExt}.tcp("8.8.8.8", "10.0.0.11", 443, 40000),
			"OK []", ""},
	}
	for _, c := range cases {
		prog := d.objs.PortIn
		if c.prog == "ext_in" {
			prog = d.objs.ExtIn
		}
		r := d.run(t, prog, c.dev, withChecksums(c.pkt))
		if r.String() != c.verdict {
			t.Errorf("%s: %s, want %s", c.name, r, c.verdict)
			continue
		}
		if c.sent != "" && parseIP(r.out).String() != c.sent {
			t.Errorf("%s: sent %s, want %s", c.name, parseIP(r.out), c.sent)
		}
	}
}
