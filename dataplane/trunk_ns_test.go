package dataplane

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"

	"github.com/rackstack/rackstack/dataplane/dataplanetest"
)

// TestTrunkNamespaces drives a trunk with real traffic. Guest a's veth is
// a trunk's parent port (network VLAN 101, untagged) and carries on VLAN
// id 10 a subport of network VLAN 102: in a's namespace, sub10 is the
// VLAN 10 sub-interface of a's veth, as a guest configures a trunk. b is
// a port of network 102, c one of network 101. a reaches b only through
// the subport (tagged out, replies tagged back), b reaches the subport
// (its ARP flooded to the subport tagged), a's untagged frames stay the
// parent's and reach c, the subport's own anti-spoofing applies to what
// comes tagged, the router's answers to the subport go back tagged, and
// a tag no subport has is dropped.
func TestTrunkNamespaces(t *testing.T) {
	pfx := netip.MustParsePrefix
	d := openTest(t, "tapa", "tapb", "tapc")
	ga := dataplanetest.Guest(t, d.cfg.Netns, "tapa", macA, pfx("10.0.0.10/24"), netip.Addr{})
	gb := dataplanetest.Guest(t, d.cfg.Netns, "tapb", macB, pfx("10.1.0.11/24"), netip.Addr{})
	dataplanetest.Guest(t, d.cfg.Netns, "tapc", macC, pfx("10.0.0.12/24"), netip.Addr{})
	dataplanetest.VLAN(t, ga, "tapap", 10, ga, "sub10", pfx("10.1.0.10/24"))
	stray := dataplanetest.Netns(t)
	dataplanetest.VLAN(t, ga, "tapap", 99, stray, "sub99", pfx("10.1.0.99/24"))
	subMAC := mac(linkMAC(t, ga, "sub10"))

	all := []Rule{{Group: "g", Ingress: true, PortMin: -1, PortMax: -1}, {Group: "g", PortMin: -1, PortMax: -1}}
	port := func(id, dev string, vlan uint16, m net.HardwareAddr, addr string) Port {
		return Port{ID: id, Device: dev, VLAN: vlan, MAC: m, Addrs: []netip.Prefix{pfx(addr)}, Security: true, Groups: []string{"g"}}
	}
	sub := port("sub", "tapa", 102, subMAC, "10.1.0.10/32")
	sub.TrunkVID = 10
	sub.DHCP = &Lease{IP: pfx("10.1.0.10/24"), Gateway: netip.MustParseAddr("10.1.0.1"), MTU: 1400}
	// A router on the subport's network: its ARP and ping answers, made
	// by port_in itself, go back to the subport tagged.
	router := Router{ID: "r", Interfaces: []RouterInterface{{VLAN: 102, MAC: mac("fa:16:3e:00:01:02"), IP: pfx("10.1.0.1/24")}}}
	want := Desired{Rules: all, Routers: []Router{router}, Ports: []Port{
		port("a", "tapa", 101, macA, "10.0.0.10/32"), sub,
		port("b", "tapb", 102, macB, "10.1.0.11/32"), port("c", "tapc", 101, macC, "10.0.0.12/32"),
	}}
	plugged, err := d.Apply(want)
	if err != nil {
		t.Fatal(err)
	}
	if len(plugged) != 4 {
		t.Errorf("plugged %v, want a, b, c and the subport", plugged)
	}
	st, err := d.Status()
	if err != nil {
		t.Fatal(err)
	}
	shown := false
	for _, ps := range st.Ports {
		if ps.ID == "sub" {
			shown = ps.Device == "tapa/10" && ps.Attached && ps.VLAN == 102 && ps.MAC == subMAC.String()
			t.Logf("the subport's status: %+v", ps)
		}
	}
	if !shown {
		t.Errorf("the status shows no subport on tapa/10 (VLAN 102, its MAC)")
	}

	// The subport's DHCP, on sub10: its lease, answered tagged.
	var got *dhcpv4.DHCPv4
	if err := dataplanetest.In(t, ga, func() error {
		c, err := nclient4.New("sub10", nclient4.WithTimeout(3*time.Second), nclient4.WithRetry(2))
		if err != nil {
			return err
		}
		defer c.Close()
		l, err := c.Request(context.Background())
		if err == nil {
			got = l.ACK
		}
		return err
	}); err != nil {
		t.Errorf("DHCP on the subport: %v", err)
	} else if !got.YourIPAddr.Equal(net.ParseIP("10.1.0.10")) || !got.Router()[0].Equal(net.ParseIP("10.1.0.1")) {
		t.Errorf("the subport's DHCP ACK: %s", got.Summary())
	}

	// b first: its ARP for the subport's address reaches the subport
	// only as a flood's tagged copy.
	if out, err := ping(t, gb, "10.1.0.10"); err != nil {
		t.Errorf("b to a's subport: %v\n%s", err, out)
	}
	if out, err := ping(t, ga, "-I", "sub10", "10.1.0.11"); err != nil {
		t.Errorf("a through its subport to b: %v\n%s", err, out)
	}
	if out, err := ping(t, ga, "-I", "sub10", "10.1.0.1"); err != nil {
		t.Errorf("a through its subport to the router's address: %v\n%s", err, out)
	}
	if out, err := ping(t, ga, "-I", "tapap", "10.0.0.12"); err != nil {
		t.Errorf("a untagged (the parent) to c: %v\n%s", err, out)
	}
	// The parent's untagged frames are network 101's: b (102) is not
	// reached by them, whatever address a claims.
	if out, err := ipIn(ga, "addr", "add", "10.1.0.77/32", "dev", "tapap"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if out, err := ping(t, ga, "-I", "tapap", "10.1.0.11"); err == nil {
		t.Errorf("a's untagged frames reached network 102:\n%s", out)
	}
	if out, err := ipIn(ga, "addr", "del", "10.1.0.77/32", "dev", "tapap"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}

	// The subport's addresses are its own: another source address on
	// sub10 is spoofing.
	before := counter(t, d, "drop_spoof_ip")
	if out, err := ipIn(ga, "addr", "add", "10.1.0.50/24", "dev", "sub10"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if out, err := ping(t, ga, "-I", "10.1.0.50", "10.1.0.11"); err == nil {
		t.Errorf("a's subport sent from an address not its own:\n%s", out)
	}
	if counter(t, d, "drop_spoof_ip") == before {
		t.Errorf("drop_spoof_ip did not count the subport's spoofed frames")
	}

	// A tag no subport has: dropped.
	before = counter(t, d, "drop_no_port")
	if out, err := ping(t, stray, "10.1.0.11"); err == nil {
		t.Errorf("VLAN 99, no subport's, reached b:\n%s", out)
	}
	if counter(t, d, "drop_no_port") == before {
		t.Errorf("drop_no_port did not count VLAN 99's frames")
	}

	// Without the subport, VLAN 10 is such a tag too.
	want.Ports = append(want.Ports[:1], want.Ports[2:]...)
	if _, err := d.Apply(want); err != nil {
		t.Fatal(err)
	}
	if out, err := ping(t, ga, "-I", "sub10", "10.1.0.11"); err == nil {
		t.Errorf("a reached b through a subport that is gone:\n%s", out)
	}
	if out, err := ping(t, ga, "-I", "tapap", "10.0.0.12"); err != nil {
		t.Errorf("a untagged to c after the subport went: %v\n%s", err, out)
	}
}

// counter is one of the dataplane's counters.
func counter(t *testing.T, d *Dataplane, name string) uint64 {
	t.Helper()
	c, err := d.counters()
	if err != nil {
		t.Fatal(err)
	}
	return c[name]
}
