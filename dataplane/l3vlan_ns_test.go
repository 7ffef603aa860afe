package dataplane

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/rackstack/rackstack/dataplane/dataplanetest"
)

// TestExternalOnUplinkVLANNamespaces runs the external network on VLAN
// 300 of the uplink with real traffic: the outside is a namespace whose
// only way to the uplink's wire is a VLAN 300 sub-interface of its far
// end (up0p), as a provider network's router sees it. Beside it on the
// same wire sit a host on VLAN 301 and one untagged, with addresses of
// the same subnet: neither reaches a's floating IP, and neither is
// reached from behind the router.
func TestExternalOnUplinkVLANNamespaces(t *testing.T) {
	pfx := netip.MustParsePrefix
	d := openTest(t, "tapa", "tapd", "up0", "meta0")
	ga := dataplanetest.Guest(t, d.cfg.Netns, "tapa", macA, pfx("10.0.0.10/24"), netip.MustParseAddr("10.0.0.1"))
	gd := dataplanetest.Guest(t, d.cfg.Netns, "tapd", macD, pfx("10.0.1.20/24"), netip.MustParseAddr("10.0.1.1"))
	dataplanetest.Addr(t, d.cfg.Netns, "meta0p", pfx("169.254.169.254/16"))
	// The wire: up0's far end in a namespace of its own, where a host
	// sits untagged.
	wire := dataplanetest.Guest(t, d.cfg.Netns, "up0", mac("52:54:00:00:03:03"), pfx("172.24.4.3/24"), netip.Addr{})
	outside := dataplanetest.Netns(t)
	dataplanetest.VLAN(t, wire, "up0p", 300, outside, "out300", pfx("172.24.4.1/24"))
	other := dataplanetest.Netns(t)
	dataplanetest.VLAN(t, wire, "up0p", 301, other, "out301", pfx("172.24.4.4/24"))

	want := l3State()
	up, err := d.nl.LinkByName("up0")
	if err != nil {
		t.Fatal(err)
	}
	want.Externals[0].Device, want.Externals[0].VLAN, want.Externals[0].MAC = "up0", 300, up.Attrs().HardwareAddr
	want.Routers[0].Gateway.SNAT = true
	want.Rules = append(want.Rules, Rule{Group: "web", Ingress: true, Proto: 6, PortMin: 8000, PortMax: 8000, Remote: pfx("172.24.4.0/24")})
	if _, err := d.Apply(want); err != nil {
		t.Fatal(err)
	}

	// In to a's floating IP from VLAN 300, and a out through it.
	serveEcho(t, ga, "10.0.0.10:8000")
	if got := dialFrom(t, outside, "172.24.4.10:8000"); got != "172.24.4.1" {
		t.Errorf("a saw the outside's connection to its floating IP from %q, want 172.24.4.1", got)
	}
	serveEcho(t, outside, "172.24.4.1:9000")
	if got := dialFrom(t, ga, "172.24.4.1:9000"); got != "172.24.4.10" {
		t.Errorf("the outside saw a's connection from %q, want its floating IP 172.24.4.10", got)
	}
	// d has no floating IP: SNAT to the router's gateway address.
	if got := dialFrom(t, gd, "172.24.4.1:9000"); got != "172.24.4.2" {
		t.Errorf("the outside saw d's connection from %q, want the router's 172.24.4.2", got)
	}
	if out, err := ping(t, outside, "172.24.4.10"); err != nil {
		t.Errorf("ping from the outside to a's floating IP: %v\n%s", err, out)
	}
	if out, err := ping(t, gd, "172.24.4.1"); err != nil {
		t.Errorf("ping from d to the outside through SNAT: %v\n%s", err, out)
	}

	// The wrong VLAN and the untagged wire: nothing either way.
	for _, c := range []struct{ name, ns, addr string }{
		{"VLAN 301", other, "172.24.4.4"},
		{"untagged", wire, "172.24.4.3"},
	} {
		if out, err := ping(t, c.ns, "172.24.4.10"); err == nil {
			t.Errorf("a host %s (%s) pinged a's floating IP:\n%s", c.name, c.addr, out)
		}
		if err := dialErr(t, c.ns, "172.24.4.10:8000"); err == nil {
			t.Errorf("a host %s (%s) reached a's floating IP", c.name, c.addr)
		}
		serveEcho(t, c.ns, c.addr+":9000")
		for _, g := range []struct{ name, ns string }{{"a", ga}, {"d", gd}} {
			if err := dialErr(t, g.ns, c.addr+":9000"); err == nil {
				t.Errorf("%s reached the host %s (%s)", g.name, c.name, c.addr)
			}
		}
	}
	// The VLAN 300 side still works after the others' attempts.
	if got := dialFrom(t, outside, "172.24.4.10:8000"); got != "172.24.4.1" {
		t.Errorf("a saw the outside's second connection from %q, want 172.24.4.1", got)
	}
}

// dialErr connects from namespace ns to addr, giving up after two
// seconds, and returns why it could not.
func dialErr(t *testing.T, ns, addr string) error {
	t.Helper()
	return dataplanetest.In(t, ns, func() error {
		c, err := net.DialTimeout("tcp4", addr, 2*time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
}

// TestExternalIPv6OnUplinkVLANNamespaces is ext6State's IPv6 through the
// gateway with the external network on VLAN 300 of the uplink: the
// outside (2001:db8:ff::1, routing d's subnet to r6's gateway address)
// sits behind a VLAN 300 sub-interface of the uplink's far end and pings
// the gateway address and d, which pings it back, all without NAT; a host
// on VLAN 301 with an address of the same subnet reaches neither.
func TestExternalIPv6OnUplinkVLANNamespaces(t *testing.T) {
	pfx := netip.MustParsePrefix
	d := openTest(t, "tapa", "tapd", "up0")
	gd := dataplanetest.Guest(t, d.cfg.Netns, "tapd", macD, pfx("10.0.1.20/24"), netip.Addr{})
	dataplanetest.IPv6(t, gd, "tapdp", pfx("2001:db8:2::20/64"))
	if out, err := ipIn(gd, "-6", "route", "add", "default", "via", "2001:db8:2::1"); err != nil {
		t.Fatalf("default route in d: %v\n%s", err, out)
	}
	wire := dataplanetest.Guest(t, d.cfg.Netns, "up0", mac("52:54:00:00:03:03"), pfx("172.24.4.3/24"), netip.Addr{})
	outside := dataplanetest.Netns(t)
	dataplanetest.VLAN(t, wire, "up0p", 300, outside, "out300", pfx("172.24.4.1/24"))
	dataplanetest.IPv6(t, outside, "out300", pfx("2001:db8:ff::1/64"))
	other := dataplanetest.Netns(t)
	dataplanetest.VLAN(t, wire, "up0p", 301, other, "out301", pfx("172.24.4.4/24"))
	dataplanetest.IPv6(t, other, "out301", pfx("2001:db8:ff::4/64"))
	for _, ns := range []string{outside, other} {
		if out, err := ipIn(ns, "-6", "route", "add", "2001:db8:2::/64", "via", "2001:db8:ff::2"); err != nil {
			t.Fatalf("the outside's route to d's subnet: %v\n%s", err, out)
		}
	}
	up, err := d.nl.LinkByName("up0")
	if err != nil {
		t.Fatal(err)
	}
	want := ext6State(up.Attrs().HardwareAddr)
	want.Externals[0].Device, want.Externals[0].VLAN = "up0", 300
	if _, err := d.Apply(want); err != nil {
		t.Fatal(err)
	}

	if out, err := ping(t, outside, "-6", "2001:db8:ff::2"); err != nil {
		t.Errorf("the outside pinged r6's gateway address on VLAN 300: %v\n%s", err, out)
	}
	if out, err := ping(t, outside, "-6", "2001:db8:2::20"); err != nil {
		t.Errorf("the outside pinged d through r6's gateway on VLAN 300: %v\n%s", err, out)
	}
	if out, err := ping(t, gd, "-6", "2001:db8:ff::1"); err != nil {
		t.Errorf("d pinged the outside on VLAN 300: %v\n%s", err, out)
	}
	// TCP, whose checksum d's veth leaves to offload: the VLAN stand-in
	// fills it in for IPv6 as for IPv4.
	serveEcho(t, outside, "[2001:db8:ff::1]:9000")
	if got := dialFrom(t, gd, "[2001:db8:ff::1]:9000"); got != "2001:db8:2::20" {
		t.Errorf("the outside saw d's TCP from %q, want 2001:db8:2::20 (no NAT)", got)
	}
	for _, to := range []string{"2001:db8:ff::2", "2001:db8:2::20"} {
		if out, err := ping(t, other, "-6", to); err == nil {
			t.Errorf("a host on VLAN 301 pinged %s:\n%s", to, out)
		}
	}
}
