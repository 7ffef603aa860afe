package dataplane

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/rackstack/rackstack/dataplane/dataplanetest"
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

// TestRoutingStaysInAddressScope: a router routes between its subnets only
// within one address scope (no scope being one of them), and out of its
// gateway as they are only the addresses of the gateway's scope: crossing
// scopes takes NAT, as in Neutron.
func TestRoutingStaysInAddressScope(t *testing.T) {
	d := openTest(t, "tapa", "tapd", "up0", "ext0", "meta0")
	in := d.objs.PortIn
	toR1, dToR2 := frame{src: macA, dst: macR1}, frame{src: macD, dst: macR2}
	cases := []struct {
		name       string
		scopeA     string // network 101's
		scopeD     string // network 102's, IPv6 and IPv4
		dev        string
		pkt        []byte
		verdict    string
		viaGateway bool // needs the external gateway's MAC learnt
	}{
		{"a to d, both in s1", "s1", "s1", "tapa", toR1.tcp("10.0.0.10", "10.0.1.20", 40000, 22), "REDIRECT [fwd_local,fwd_routed]", false},
		{"a in s1 to d in s2", "s1", "s2", "tapa", toR1.tcp("10.0.0.10", "10.0.1.20", 40000, 22), "SHOT [drop_scope]", false},
		{"d in s2 to a in s1", "s1", "s2", "tapd", dToR2.tcp("10.0.1.20", "10.0.0.10", 40000, 22), "SHOT [drop_scope]", false},
		{"a in no scope to d in s2", "", "s2", "tapa", toR1.tcp("10.0.0.10", "10.0.1.20", 40000, 22), "SHOT [drop_scope]", false},
		{"a in s1 by a static route into s2", "s1", "s2", "tapa", toR1.tcp("10.0.0.10", "192.168.50.7", 40000, 22), "SHOT [drop_scope]", false},
		{"a in s2 by a static route into s2", "s2", "s2", "tapa", toR1.tcp("10.0.0.10", "192.168.50.7", 40000, 22), "REDIRECT [fwd_routed,fwd_uplink]", false},
		{"a pings the router's address in another scope", "s1", "s2", "tapa", toR1.icmp("10.0.0.10", "10.0.1.1", 8, 0, 9), "REDIRECT [icmp_reply]", false},
		{"a in s1 out by its floating IP", "s1", "s2", "tapa", toR1.tcp("10.0.0.10", "8.8.8.8", 40000, 443), "REDIRECT [nat_out]", true},
		// r1 has enable_snat off and its gateway no scope.
		{"d in no scope out as it is", "s1", "", "tapd", dToR2.tcp("10.0.1.20", "8.8.8.8", 40000, 443), "REDIRECT [nat_out]", true},
		{"d in s2 out as it is: another scope than the gateway's", "s1", "s2", "tapd", dToR2.tcp("10.0.1.20", "8.8.8.8", 40000, 443), "SHOT [drop_no_route]", true},
		{"in to d in s2 as it is", "s1", "s2", "ext0", frame{src: macG, dst: macExt}.tcp("8.8.8.8", "10.0.1.20", 443, 40000), "OK []", true},
		{"v6: d in s1 to a in s1", "s1", "s1", "tapd", dToR2.tcp6("fd00::20", "fd01::10", 40000, 22), "REDIRECT [fwd_local,fwd_routed]", false},
		{"v6: d in s2 to a in s1", "s1", "s2", "tapd", dToR2.tcp6("fd00::20", "fd01::10", 40000, 22), "SHOT [drop_scope]", false},
	}
	for _, c := range cases {
		want := l3State()
		want.Ports[0].Addrs = append(want.Ports[0].Addrs, netip.MustParsePrefix("fd01::10/128"))
		want.Ports[1].Addrs = append(want.Ports[1].Addrs, netip.MustParsePrefix("fd00::20/128"))
		r := &want.Routers[0]
		r.Interfaces = append(r.Interfaces, RouterInterface{VLAN: 101, MAC: macR1, IP: netip.MustParsePrefix("fd01::1/64")})
		for i := range r.Interfaces {
			r.Interfaces[i].Scope = map[uint16]string{101: c.scopeA, 102: c.scopeD}[r.Interfaces[i].VLAN]
		}
		want.Rules = append(want.Rules, Rule{Group: "web", IPv6: true, PortMin: -1, PortMax: -1},
			Rule{Group: "web", Ingress: true, IPv6: true, Proto: 6, PortMin: 22, PortMax: 22, Remote: netip.MustParsePrefix("::/0")})
		if _, err := d.Apply(want); err != nil {
			t.Fatal(err)
		}
		if c.viaGateway {
			d.run(t, d.objs.ExtIn, "ext0", frame{src: macG, dst: mac("ff:ff:ff:ff:ff:ff")}.arp("172.24.4.1", "172.24.4.2"))
		}
		pkt := c.pkt
		if pkt[12] == 0x08 {
			pkt = withChecksums(pkt)
		}
		prog := in
		if c.dev == "ext0" {
			prog = d.objs.ExtIn
		}
		if r := d.run(t, prog, c.dev, pkt); r.String() != c.verdict {
			t.Errorf("%s: %s, want %s", c.name, r, c.verdict)
		}
	}
}

// TestAddressScopesNamespaces: with a's and d's subnets in different
// address scopes their guests no longer reach each other across r1, while
// d still reaches the outside through SNAT; in one scope they do again.
func TestAddressScopesNamespaces(t *testing.T) {
	d, ga, gd, want := l3NamespacesState(t, false)
	apply := func(scopeA, scopeD string) {
		t.Helper()
		w := want
		w.Routers = []Router{want.Routers[0]}
		w.Routers[0].Interfaces = append([]RouterInterface(nil), want.Routers[0].Interfaces...)
		for i := range w.Routers[0].Interfaces {
			w.Routers[0].Interfaces[i].Scope = map[uint16]string{101: scopeA, 102: scopeD}[w.Routers[0].Interfaces[i].VLAN]
		}
		if _, err := d.Apply(w); err != nil {
			t.Fatal(err)
		}
	}
	apply("s1", "s2")
	if out, err := ping(t, ga, "10.0.1.20"); err == nil {
		t.Errorf("a in s1 pinged d in s2 across the router:\n%s", out)
	}
	serveEcho(t, gd, "10.0.1.20:22")
	err := dataplanetest.In(t, ga, func() error {
		c, err := net.DialTimeout("tcp4", "10.0.1.20:22", time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	if err == nil {
		t.Errorf("a in s1 connected to d in s2 across the router")
	}
	serveEcho(t, d.cfg.Netns, "172.24.4.1:9000")
	if got := dialFrom(t, gd, "172.24.4.1:9000"); got != "172.24.4.2" {
		t.Errorf("the outside saw d's connection from %q, want the router's 172.24.4.2 (SNAT crosses scopes)", got)
	}
	apply("s1", "s1")
	if out, err := ping(t, ga, "10.0.1.20"); err != nil {
		t.Errorf("ping from a to d, both in s1: %v\n%s", err, out)
	}
	if got := dialFrom(t, ga, "10.0.1.20:22"); got != "10.0.0.10" {
		t.Errorf("d saw a's connection from %q, want 10.0.0.10", got)
	}
}
