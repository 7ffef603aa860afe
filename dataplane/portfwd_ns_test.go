package dataplane

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/rackstack/rackstack/dataplane/dataplanetest"
)

// dialFails reports whether a TCP connection from namespace ns to addr
// fails (nothing forwards it).
func dialFails(t *testing.T, ns, addr string) bool {
	t.Helper()
	err := dataplanetest.In(t, ns, func() error {
		c, err := net.DialTimeout("tcp4", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	return err != nil
}

// TestPortForwardNamespaces forwards TCP port 2222 of floating IP
// 172.24.4.20, associated with no port, to d's 10.0.1.20:5000 on real
// veths: the outside (172.24.4.1) connects to 172.24.4.20:2222 and d's
// server answers it (the handshake completes only if the replies come
// back from 172.24.4.20:2222), while the floating IP's other ports, and
// d's own connections out, are not forwarded.
func TestPortForwardNamespaces(t *testing.T) {
	d, _, gd, want := l3NamespacesState(t, false)
	pfx := netip.MustParsePrefix
	ip := netip.MustParseAddr
	for _, port := range []int{5000, 5001, 5002} {
		want.Rules = append(want.Rules, Rule{Group: "web", Ingress: true, Proto: 6, PortMin: port, PortMax: port, Remote: pfx("172.24.4.0/24")})
	}
	want.Rules = append(want.Rules, Rule{Group: "web", Ingress: true, Proto: 17, PortMin: 5000, PortMax: 5000, Remote: pfx("172.24.4.0/24")})
	want.PortForwards = []PortForward{
		{IP: ip("172.24.4.20"), Protocol: "tcp", ExternalPort: 2222, Internal: ip("10.0.1.20"), InternalPort: 5000, Port: "d", Router: "r1", External: "public"},
		// a port range: 7000 goes to 5001, 7001 to 5002
		{IP: ip("172.24.4.20"), Protocol: "tcp", ExternalPort: 7000, Internal: ip("10.0.1.20"), InternalPort: 5001, Ports: 2, Port: "d", Router: "r1", External: "public"},
		{IP: ip("172.24.4.20"), Protocol: "udp", ExternalPort: 5353, Internal: ip("10.0.1.20"), InternalPort: 5000, Port: "d", Router: "r1", External: "public"},
	}
	if _, err := d.Apply(want); err != nil {
		t.Fatal(err)
	}
	serveEcho(t, gd, "10.0.1.20:5000")
	serveEcho(t, gd, "10.0.1.20:5001")
	serveEcho(t, gd, "10.0.1.20:5002")
	serveEcho(t, d.cfg.Netns, "172.24.4.1:9000")

	if got := dialFrom(t, d.cfg.Netns, "172.24.4.20:2222"); got != "172.24.4.1" {
		t.Errorf("d saw the outside's connection to 172.24.4.20:2222 from %q, want 172.24.4.1", got)
	}
	// Each port of the range is forwarded (7000 to 5001, 7001 to 5002),
	// its replies leaving from the range's own port; those beside the
	// range are not.
	for _, addr := range []string{"172.24.4.20:7000", "172.24.4.20:7001"} {
		if got := dialFrom(t, d.cfg.Netns, addr); got != "172.24.4.1" {
			t.Errorf("d saw the outside's connection to %s from %q, want 172.24.4.1", addr, got)
		}
	}
	for _, addr := range []string{"172.24.4.20:5000", "172.24.4.20:5001", "172.24.4.20:2223", "172.24.4.20:6999", "172.24.4.20:7002"} {
		if !dialFails(t, d.cfg.Netns, addr) {
			t.Errorf("a connection to %s got in: only 2222 and 7000-7001 are forwarded", addr)
		}
	}
	// UDP: the outside's datagram to 172.24.4.20:5353 reaches d's 5000,
	// and the answer comes back from 172.24.4.20:5353 (a connected socket
	// takes nothing else) with a good checksum.
	udpEcho(t, gd, "10.0.1.20:5000")
	if got := udpAsk(t, d.cfg.Netns, "172.24.4.20:5353"); got != "172.24.4.1" {
		t.Errorf("d's UDP server saw the outside's datagram from %q, want 172.24.4.1", got)
	}
	// d's own connections leave by router SNAT, not from the floating IP.
	if got := dialFrom(t, gd, "172.24.4.1:9000"); got != "172.24.4.2" {
		t.Errorf("the outside saw d's own connection from %q, want the router's 172.24.4.2", got)
	}

	// The forwarding gone, so is the way in.
	want.PortForwards = nil
	if _, err := d.Apply(want); err != nil {
		t.Fatal(err)
	}
	if !dialFails(t, d.cfg.Netns, "172.24.4.20:2222") {
		t.Errorf("a connection to 172.24.4.20:2222 got in after the forwarding was removed")
	}
}

// udpEcho answers each datagram to addr in namespace ns with the address
// it came from.
func udpEcho(t *testing.T, ns, addr string) {
	t.Helper()
	var c *net.UDPConn
	if err := dataplanetest.In(t, ns, func() error {
		ua, err := net.ResolveUDPAddr("udp4", addr)
		if err == nil {
			c, err = net.ListenUDP("udp4", ua)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		b := make([]byte, 1500)
		for {
			_, from, err := c.ReadFromUDP(b)
			if err != nil {
				return
			}
			c.WriteToUDP([]byte(from.IP.String()), from)
		}
	}()
}

// udpAsk sends a datagram from namespace ns to addr on a connected socket
// and returns the answer ("" for none within a few tries).
func udpAsk(t *testing.T, ns, addr string) string {
	t.Helper()
	var c net.Conn
	if err := dataplanetest.In(t, ns, func() (err error) {
		c, err = net.Dial("udp4", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b := make([]byte, 1500)
	for i := 0; i < 5; i++ {
		c.Write([]byte("who"))
		c.SetReadDeadline(time.Now().Add(time.Second))
		if n, err := c.Read(b); err == nil {
			return string(b[:n])
		}
	}
	return ""
}
