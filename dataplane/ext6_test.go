package dataplane

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/dataplane/dataplanetest"
)

// ext6State is l3v6State with r6's gateway on the external network
// "public" (device ext0), which has the IPv6 subnet 2001:db8:ff::/64 whose
// gateway, the outside, is 2001:db8:ff::1; r6's gateway address there is
// 2001:db8:ff::2.
func ext6State(extMAC net.HardwareAddr) Desired {
	pfx := netip.MustParsePrefix
	ip := netip.MustParseAddr
	want := l3v6State()
	want.Externals = []External{{ID: "public", Device: "ext0", Gateway: ip("172.24.4.1"), Prefix: pfx("172.24.4.0/24"), MAC: extMAC,
		Prefix6: pfx("2001:db8:ff::/64"), Gateway6: ip("2001:db8:ff::1")}}
	want.Routers[0].Gateway = &RouterGateway{External: "public", IP: ip("172.24.4.2"), SNAT: true, IP6: ip("2001:db8:ff::2")}
	return want
}

// TestExternalIPv6Namespaces: the outside (ext0p, 2001:db8:ff::1, routing
// d's subnet to r6's gateway address) reaches d's IPv6 address as it is,
// on what d's groups allow; d reaches the outside as itself; a packet too
// big for the outside gets d packet too big.
func TestExternalIPv6Namespaces(t *testing.T) {
	pfx := netip.MustParsePrefix
	d := openTest(t, "tapa", "tapd", "up0", "ext0")
	gd := dataplanetest.Guest(t, d.cfg.Netns, "tapd", macD, pfx("10.0.1.20/24"), netip.Addr{})
	ext, err := d.nl.LinkByName("ext0")
	if err != nil {
		t.Fatal(err)
	}
	dataplanetest.IPv6(t, d.cfg.Netns, "ext0p", pfx("2001:db8:ff::1/64"))
	if out, err := ipIn(d.cfg.Netns, "-6", "route", "add", "2001:db8:2::/64", "via", "2001:db8:ff::2", "dev", "ext0p"); err != nil {
		t.Fatalf("the outside's route to d's subnet: %v\n%s", err, out)
	}
	if _, err := d.Apply(ext6State(ext.Attrs().HardwareAddr)); err != nil {
		t.Fatal(err)
	}
	dataplanetest.IPv6(t, gd, "tapdp", pfx("2001:db8:2::20/64"))
	if out, err := ipIn(gd, "-6", "route", "add", "default", "via", "2001:db8:2::1"); err != nil {
		t.Fatalf("default route in d: %v\n%s", err, out)
	}

	if out, err := ping(t, d.cfg.Netns, "-6", "2001:db8:ff::2"); err != nil {
		t.Errorf("the outside pinged r6's gateway address: %v\n%s", err, out)
	}
	if out, err := ping(t, d.cfg.Netns, "-6", "2001:db8:2::20"); err != nil {
		t.Errorf("the outside pinged d through r6's gateway: %v\n%s", err, out)
	}
	serveEcho(t, gd, "[2001:db8:2::20]:22")
	if got := dialFrom(t, d.cfg.Netns, "[2001:db8:2::20]:22"); got != "2001:db8:ff::1" {
		t.Errorf("d saw the outside's connection from %q, want 2001:db8:ff::1 (no NAT)", got)
	}
	serveEcho(t, gd, "[2001:db8:2::20]:80")
	err = dataplanetest.In(t, d.cfg.Netns, func() error {
		c, err := net.DialTimeout("tcp6", "[2001:db8:2::20]:80", time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	if err == nil {
		t.Errorf("the outside connected to d's port 80, which d's groups do not allow")
	}
	serveEcho(t, d.cfg.Netns, "[2001:db8:ff::1]:9000")
	if got := dialFrom(t, gd, "[2001:db8:ff::1]:9000"); got != "2001:db8:2::20" {
		t.Errorf("the outside saw d's connection from %q, want 2001:db8:2::20 (no NAT)", got)
	}

	// A smaller MTU outside: d learns it from its gateway.
	if err := d.nl.LinkSetMTU(ext, 1400); err != nil {
		t.Fatal(err)
	}
	out, _ := ping(t, gd, "-6", "-M", "do", "-s", "1450", "2001:db8:ff::1")
	if !strings.Contains(out, "mtu = 1400") && !strings.Contains(out, "mtu=1400") {
		t.Errorf("ping too big for the outside learnt no MTU:\n%s", out)
	}
	if out, err := ping(t, gd, "-6", "-M", "do", "-s", "1300", "2001:db8:ff::1"); err != nil {
		t.Errorf("ping that fits: %v\n%s", err, out)
	}

	// Beyond the outside, a network of MTU 1300: the outside's own packet
	// too big reaches d as related to d's ping, which d's groups do not
	// otherwise let in.
	if out, err := ipIn(d.cfg.Netns, "link", "add", "far0", "mtu", "1300", "type", "veth", "peer", "name", "far1", "mtu", "1300"); err != nil {
		t.Fatalf("far network: %v\n%s", err, out)
	}
	dataplanetest.IPv6(t, d.cfg.Netns, "far0", pfx("2001:db8:77::1/64"))
	for _, dev := range []string{"far0", "far1"} {
		if out, err := ipIn(d.cfg.Netns, "link", "set", dev, "up"); err != nil {
			t.Fatalf("far network: %v\n%s", err, out)
		}
	}
	if err := dataplanetest.In(t, d.cfg.Netns, func() error {
		return os.WriteFile("/proc/sys/net/ipv6/conf/all/forwarding", []byte("1"), 0o644)
	}); err != nil {
		t.Fatal(err)
	}
	out, _ = ping(t, gd, "-6", "-M", "do", "-s", "1350", "2001:db8:77::2")
	if !strings.Contains(out, "mtu = 1300") && !strings.Contains(out, "mtu=1300") {
		t.Errorf("the outside's packet too big did not reach d:\n%s", out)
	}
}

// TestExternalIPv6: r6's IPv6 through its gateway, packet by packet.
func TestExternalIPv6(t *testing.T) {
	d := openTest(t, "tapa", "tapd", "up0", "ext0")
	want := ext6State(macExt)
	if _, err := d.Apply(want); err != nil {
		t.Fatal(err)
	}
	fromG := frame{src: macG, dst: macExt}
	dToR2 := frame{src: macD, dst: macR2}
	run := func(name, dev string, pkt []byte, verdict, sent string) {
		t.Helper()
		prog := d.objs.PortIn
		if dev == "ext0" {
			prog = d.objs.ExtIn
		}
		r := d.run(t, prog, dev, pkt)
		if r.String() != verdict {
			t.Errorf("%s: %s, want %s", name, r, verdict)
			return
		}
		if sent == "" {
			return
		}
		p := parseIP6(r.out)
		got := fmt.Sprintf("%s %s > %s hops %d", macsOf(r.out), p.src, p.dst, p.hops)
		if r.out[14+6] == 58 {
			got += fmt.Sprintf(" type %d", p.l4[0])
		}
		if got != sent {
			t.Errorf("%s: sent %s, want %s", name, got, sent)
		}
	}
	run("d out before the outside's MAC is known", "tapd", dToR2.tcp6("2001:db8:2::20", "2001:db8:ff::1", 40000, 443), "SHOT [drop_no_neigh]", "")
	// The outside asks for r6's gateway address: answered, and learnt.
	run("solicitation for the gateway address", "ext0", frame{src: macG, dst: mac("33:33:ff:00:00:02")}.nd6(135, "2001:db8:ff::1", "ff02::1:ff00:2", "2001:db8:ff::2"),
		"REDIRECT [arp_reply]", "fa:16:3e:00:02:01 > 52:54:00:00:02:fe 2001:db8:ff::2 > 2001:db8:ff::1 hops 255 type 136")
	run("solicitation for another address", "ext0", frame{src: macG, dst: mac("33:33:ff:00:00:09")}.nd6(135, "2001:db8:ff::1", "ff02::1:ff00:9", "2001:db8:ff::9"), "OK []", "")
	run("d out to the outside", "tapd", dToR2.tcp6("2001:db8:2::20", "2001:db8:ff::1", 40000, 443),
		"REDIRECT [fwd_routed]", "fa:16:3e:00:02:01 > 52:54:00:00:02:fe 2001:db8:2::20 > 2001:db8:ff::1 hops 63")
	run("d out beyond, by the outside's gateway", "tapd", dToR2.tcp6("2001:db8:2::20", "2001:db8:99::1", 40000, 443),
		"REDIRECT [fwd_routed]", "fa:16:3e:00:02:01 > 52:54:00:00:02:fe 2001:db8:2::20 > 2001:db8:99::1 hops 63")
	hop1 := dToR2.tcp6("2001:db8:2::20", "2001:db8:99::1", 40000, 443)
	hop1[14+7] = 1
	run("d out with hop limit 1", "tapd", hop1, "REDIRECT [icmp_reply]", "fa:16:3e:00:01:02 > fa:16:3e:00:00:0d 2001:db8:2::1 > 2001:db8:2::20 hops 64 type 3")
	run("in to d's ssh", "ext0", fromG.tcp6("2001:db8:99::1", "2001:db8:2::20", 40000, 22),
		"REDIRECT [fwd_local,fwd_routed]", "fa:16:3e:00:01:02 > fa:16:3e:00:00:0d 2001:db8:99::1 > 2001:db8:2::20 hops 63")
	run("in to d's http: its groups say no", "ext0", fromG.tcp6("2001:db8:99::1", "2001:db8:2::20", 40000, 80), "SHOT [drop_sg_ingress]", "")
	// ICMPv6 errors about d's flow out get in as related, whatever d's
	// groups say of ICMPv6; one about a flow d never had does not.
	tooBig := func(quoted []byte) []byte {
		l4 := append([]byte{2, 0, 0, 0, 0, 0, 0x05, 0x00}, quoted[14:]...)
		return fromG.eth(0x86dd, ipv6(58, "2001:db8:99::9", "2001:db8:2::20", l4))
	}
	run("packet too big about d's flow", "ext0", tooBig(dToR2.tcp6("2001:db8:2::20", "2001:db8:ff::1", 40000, 443)), "REDIRECT [fwd_local,fwd_routed]", "")
	run("packet too big about a flow d never had", "ext0", tooBig(dToR2.tcp6("2001:db8:2::20", "2001:db8:ff::1", 40001, 443)), "SHOT [drop_sg_ingress]", "")
	run("in to an address no port here has", "ext0", fromG.tcp6("2001:db8:99::1", "2001:db8:2::99", 40000, 22), "OK []", "")
	run("ping r6's gateway address", "ext0", fromG.icmp6("2001:db8:99::1", "2001:db8:ff::2", 128, 0, 7), "REDIRECT [icmp_reply]", "")

	// d's subnet in another scope than the gateway's: neither way.
	for i := range want.Routers[0].Interfaces {
		if want.Routers[0].Interfaces[i].VLAN == 102 {
			want.Routers[0].Interfaces[i].Scope = "s2"
		}
	}
	if _, err := d.Apply(want); err != nil {
		t.Fatal(err)
	}
	run("d in s2 out", "tapd", dToR2.tcp6("2001:db8:2::20", "2001:db8:ff::1", 40000, 443), "SHOT [drop_scope]", "")
	run("in to d in s2", "ext0", fromG.tcp6("2001:db8:99::1", "2001:db8:2::20", 40000, 22), "OK []", "")
}
