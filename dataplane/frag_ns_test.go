package dataplane

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/rackstack/rackstack/dataplane/dataplanetest"
)

// TestFragmentsNamespaces sends real fragmented datagrams between guests
// in namespaces: a 3000-byte UDP datagram over IPv4 and IPv6 and a
// 3000-byte ping, which the guest's kernel fragments for the veth's 1500
// bytes, to a port whose groups open only UDP 9999 and echo requests.
// Refused while the rule names another port; delivered whole once it names
// 9999, which needs the later fragments to pass by their first one's port.
func TestFragmentsNamespaces(t *testing.T) {
	pfx := netip.MustParsePrefix
	d := openTest(t, "tapa", "tape")
	ga := dataplanetest.Guest(t, d.cfg.Netns, "tapa", macA, pfx("10.0.0.10/24"), netip.Addr{})
	ge := dataplanetest.Guest(t, d.cfg.Netns, "tape", macE, pfx("10.0.0.14/24"), netip.Addr{})
	dataplanetest.IPv6(t, ga, "tapap", pfx("2001:db8::10/64"))
	dataplanetest.IPv6(t, ge, "tapep", pfx("2001:db8::14/64"))
	state := func(udpPort int, echo bool) Desired {
		rules := append(neutronDefault("default"),
			Rule{Group: "closed", PortMin: -1, PortMax: -1},
			Rule{Group: "closed", IPv6: true, PortMin: -1, PortMax: -1},
			Rule{Group: "closed", Ingress: true, Proto: 17, PortMin: udpPort, PortMax: udpPort, Remote: pfx("10.0.0.0/24")},
			Rule{Group: "closed", Ingress: true, IPv6: true, Proto: 17, PortMin: udpPort, PortMax: udpPort, Remote: pfx("2001:db8::/64")})
		if echo {
			rules = append(rules, Rule{Group: "closed", Ingress: true, Proto: 1, PortMin: 8, PortMax: -1, Remote: pfx("10.0.0.0/24")})
		}
		return Desired{
			Rules: rules,
			Ports: []Port{
				{ID: "a", Device: "tapa", VLAN: 101, MAC: macA, Security: true, Groups: []string{"default"}, Addrs: []netip.Prefix{pfx("10.0.0.10/32"), pfx("2001:db8::10/128")}},
				{ID: "e", Device: "tape", VLAN: 101, MAC: macE, Security: true, Groups: []string{"closed"}, Addrs: []netip.Prefix{pfx("10.0.0.14/32"), pfx("2001:db8::14/128")}},
			},
			Members: map[string][]netip.Prefix{
				"default": {pfx("10.0.0.10/32"), pfx("2001:db8::10/128")},
				"closed":  {pfx("10.0.0.14/32"), pfx("2001:db8::14/128")},
			},
		}
	}

	var srv4, srv6 *net.UDPConn
	if err := dataplanetest.In(t, ge, func() (err error) {
		if srv4, err = net.ListenUDP("udp4", &net.UDPAddr{Port: 9999}); err != nil {
			return err
		}
		srv6, err = net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6unspecified, Port: 9999})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv4.Close(); srv6.Close() })
	payload := bytes.Repeat([]byte("fragment"), 375) // 3000 bytes
	// delivered sends the datagram from a to e up to three times and says
	// whether e received it whole.
	delivered := func(srv *net.UDPConn, to string) bool {
		t.Helper()
		var c net.Conn
		if err := dataplanetest.In(t, ga, func() (err error) {
			c, err = net.Dial("udp", to)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		buf := make([]byte, 4096)
		for try := 0; try < 3; try++ {
			if _, err := c.Write(payload); err != nil {
				t.Fatalf("send to %s: %v", to, err)
			}
			srv.SetReadDeadline(time.Now().Add(time.Second))
			n, _, err := srv.ReadFromUDP(buf)
			if err == nil {
				return bytes.Equal(buf[:n], payload)
			}
		}
		return false
	}

	// The rule opens another port: the datagram's first fragment is
	// refused, and its later ones with it.
	if _, err := d.Apply(state(9998, false)); err != nil {
		t.Fatal(err)
	}
	before, err := d.counters()
	if err != nil {
		t.Fatal(err)
	}
	if delivered(srv4, "10.0.0.14:9999") {
		t.Errorf("a 3000-byte datagram to UDP 9999 got through a rule for 9998")
	}
	if delivered(srv6, "[2001:db8::14]:9999") {
		t.Errorf("a 3000-byte IPv6 datagram to UDP 9999 got through a rule for 9998")
	}
	if out, err := ping(t, ga, "-s", "3000", "10.0.0.14"); err == nil {
		t.Errorf("a 3000-byte ping got through without an echo rule:\n%s", out)
	}
	after, err := d.counters()
	if err != nil {
		t.Fatal(err)
	}
	if after["drop_sg_ingress"] == before["drop_sg_ingress"] {
		t.Errorf("nothing was dropped by e's ingress groups")
	}

	if _, err := d.Apply(state(9999, true)); err != nil {
		t.Fatal(err)
	}
	if !delivered(srv4, "10.0.0.14:9999") {
		t.Errorf("a 3000-byte datagram to UDP 9999 did not arrive whole through the rule for 9999")
	}
	if !delivered(srv6, "[2001:db8::14]:9999") {
		t.Errorf("a 3000-byte IPv6 datagram to UDP 9999 did not arrive whole through the rule for 9999")
	}
	if out, err := ping(t, ga, "-s", "3000", "10.0.0.14"); err != nil {
		t.Errorf("a 3000-byte ping through the echo rule: %v\n%s", err, out)
	}
}
