package dataplane

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rackstack/rackstack/dataplane/dataplanetest"
)

// TestRouterFragNeededNamespaces: d's network has MTU 1280 (its guest's
// device still says 1500, so only the router can tell a): a's ping bigger
// than that with DF set gets fragmentation needed with 1280 from a's
// gateway; one that fits, and a big one without DF (routed as it is),
// are answered.
func TestRouterFragNeededNamespaces(t *testing.T) {
	d, ga, _, want := l3NamespacesState(t, false)
	want.Routers[0].Interfaces[1].MTU = 1280 // d's network, IPv4
	if _, err := d.Apply(want); err != nil {
		t.Fatal(err)
	}
	// Without DF first: once a knows the path MTU its own stack
	// fragments (its later fragments pass d's groups by the first one's).
	if out, err := ping(t, ga, "-M", "dont", "-s", "1300", "10.0.1.20"); err != nil {
		t.Errorf("ping too big without DF, routed as it is: %v\n%s", err, out)
	}
	out, _ := ping(t, ga, "-M", "do", "-s", "1300", "10.0.1.20")
	if !strings.Contains(out, "From 10.0.0.1") || !strings.Contains(out, "Frag needed and DF set (mtu = 1280)") {
		t.Errorf("ping too big for d's network got no fragmentation needed from a's gateway:\n%s", out)
	}
	if out, err := ping(t, ga, "-M", "do", "-s", "1200", "10.0.1.20"); err != nil {
		t.Errorf("ping that fits d's network: %v\n%s", err, out)
	}
}

// TestRelatedICMPv4Namespaces: the outside (the dataplane's namespace,
// 172.24.4.1) forwards to a far network of MTU 1300 and refuses UDP on
// port 9. a (floating IP) and d (router SNAT) get its errors about their
// own packets, translated back through the NAT and let in as related
// although their groups let in no ICMP errors: fragmentation needed (path
// MTU discovery), time exceeded (ping -t 2: the router takes one, the
// outside the other) and port unreachable (a connected UDP socket's
// ECONNREFUSED).
func TestRelatedICMPv4Namespaces(t *testing.T) {
	d, ga, gd := l3Namespaces(t)
	if out, err := ipIn(d.cfg.Netns, "link", "add", "far0", "mtu", "1300", "type", "veth", "peer", "name", "far1", "mtu", "1300"); err != nil {
		t.Fatalf("far network: %v\n%s", err, out)
	}
	dataplanetest.Addr(t, d.cfg.Netns, "far0", netip.MustParsePrefix("10.99.0.1/24"))
	for _, dev := range []string{"far0", "far1"} {
		if out, err := ipIn(d.cfg.Netns, "link", "set", dev, "up"); err != nil {
			t.Fatalf("far network: %v\n%s", err, out)
		}
	}
	if err := dataplanetest.In(t, d.cfg.Netns, func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644)
	}); err != nil {
		t.Fatal(err)
	}
	for _, g := range []struct{ name, ns string }{{"a (floating IP)", ga}, {"d (SNAT)", gd}} {
		out, _ := ping(t, g.ns, "-M", "do", "-s", "1350", "10.99.0.2")
		if !strings.Contains(out, "From 172.24.4.1") || !strings.Contains(out, "mtu = 1300") {
			t.Errorf("%s: the outside's fragmentation needed did not reach it:\n%s", g.name, out)
		}
		out, _ = ping(t, g.ns, "-t", "2", "10.99.0.2")
		if !strings.Contains(out, "From 172.24.4.1") || !strings.Contains(strings.ToLower(out), "time to live exceeded") {
			t.Errorf("%s: the outside's time exceeded did not reach it:\n%s", g.name, out)
		}
		if err := udpRefused(t, g.ns, "172.24.4.1:9"); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("%s: UDP to a closed port outside: %v, want connection refused (port unreachable)", g.name, err)
		}
	}
}

// udpRefused sends a datagram from namespace ns to addr on a connected
// UDP socket and returns what reading the answer gives: ECONNREFUSED once
// an ICMP port unreachable about it has come back.
func udpRefused(t *testing.T, ns, addr string) error {
	t.Helper()
	var rerr error
	if err := dataplanetest.In(t, ns, func() error {
		c, err := net.Dial("udp4", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		buf := make([]byte, 16)
		for i := 0; i < 3; i++ { // the first may go while the outside resolves the NAT address
			if _, err := c.Write([]byte("x")); err != nil {
				rerr = err
				return nil
			}
			c.SetReadDeadline(time.Now().Add(time.Second))
			if _, rerr = c.Read(buf); !errors.Is(rerr, os.ErrDeadlineExceeded) {
				return nil
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return rerr
}

// TestPortUnreachableOutThroughSNATNamespaces: d (router SNAT) sends a
// datagram to the outside and closes its socket; the outside's reply gets
// d's kernel's port unreachable, which leaves from the gateway address
// quoting the gateway address and NAT port, so the outside's connected
// socket reads ECONNREFUSED. Without the translation the error was
// dropped (drop_no_route) and the outside heard nothing.
func TestPortUnreachableOutThroughSNATNamespaces(t *testing.T) {
	d, _, gd := l3Namespaces(t)
	var ln *net.UDPConn
	if err := dataplanetest.In(t, d.cfg.Netns, func() (err error) {
		ln, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(172, 24, 4, 1), Port: 7777})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// d's datagram, from a socket closed at once.
	if err := dataplanetest.In(t, gd, func() error {
		c, err := net.Dial("udp4", "172.24.4.1:7777")
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("hello"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	ln.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, from, err := ln.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("the outside did not hear d: %v", err)
	}
	if !from.IP.Equal(net.IPv4(172, 24, 4, 2)) {
		t.Fatalf("d's datagram came from %s, want the router's gateway address", from)
	}
	ln.Close()
	// The outside answers from the same address and port, connected to
	// the NAT address and port it saw.
	var rerr error
	if err := dataplanetest.In(t, d.cfg.Netns, func() error {
		c, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(172, 24, 4, 1), Port: 7777}, from)
		if err != nil {
			return err
		}
		defer c.Close()
		for i := 0; i < 3; i++ {
			if _, err := c.Write([]byte("reply")); err != nil {
				rerr = err
				return nil
			}
			c.SetReadDeadline(time.Now().Add(time.Second))
			if _, rerr = c.Read(buf); !errors.Is(rerr, os.ErrDeadlineExceeded) {
				return nil
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(rerr, syscall.ECONNREFUSED) {
		t.Errorf("the outside's reply to d's closed socket: %v, want connection refused (d's port unreachable through SNAT)", rerr)
	}
}
