package dhcp

import (
	"context"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// segment is a provisioning network of the test's own: the server's end
// of a veth pair (srvIf, with srvIP/24) in one network namespace, the
// clients' end (cliIf) in another, so that packets really cross the wire
// and nothing leaves the test. The namespaces are unnamed and go away with
// their last handle and socket.
type segment struct {
	srv, cli     netns.NsHandle
	srvIf, cliIf string
	srvIP        netip.Addr
}

func newSegment(t *testing.T) *segment {
	t.Helper()
	testenv.RequireRoot(t, "create network namespaces and send DHCP packets in them")
	seg := &segment{srvIf: "prov0", cliIf: "node0", srvIP: netip.MustParseAddr("10.9.0.1")}
	seg.srv, seg.cli = newNetns(t), newNetns(t)
	seg.makeLink(t)
	return seg
}

// makeLink makes seg's veth pair between its namespaces, the server's end
// with srvIP/24.
func (seg *segment) makeLink(t *testing.T) {
	t.Helper()
	h, err := netlink.NewHandleAt(seg.srv)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: seg.srvIf}, PeerName: seg.cliIf}
	if err := h.LinkAdd(veth); err != nil {
		t.Fatalf("add veth: %v", err)
	}
	peer, err := h.LinkByName(seg.cliIf)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetNsFd(peer, int(seg.cli)); err != nil {
		t.Fatalf("move %s: %v", seg.cliIf, err)
	}
	srvLink, err := h.LinkByName(seg.srvIf)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := netlink.ParseAddr(seg.srvIP.String() + "/24")
	if err := h.AddrAdd(srvLink, a); err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(srvLink); err != nil {
		t.Fatal(err)
	}
	hc, err := netlink.NewHandleAt(seg.cli)
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	cliLink, err := hc.LinkByName(seg.cliIf)
	if err != nil {
		t.Fatal(err)
	}
	if err := hc.LinkSetUp(cliLink); err != nil {
		t.Fatal(err)
	}
}

func newNetns(t *testing.T) netns.NsHandle {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.New() // moves this thread into it
	if err != nil {
		t.Fatal(err)
	}
	if err := netns.Set(orig); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

// in runs fn on a thread in ns: what fn opens (sockets, interface
// look-ups) belongs to ns, and stays there once fn returns.
func in(t *testing.T, ns netns.NsHandle, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			panic(err) // a thread left in the test namespace must not run other goroutines
		}
	}()
	fn()
}

// serve runs a server with cfg (Interface filled in) on the segment until
// the returned stop, or the test's end.
func (seg *segment) serve(t *testing.T, cfg Config) (stop func()) {
	t.Helper()
	cfg.Interface = seg.srvIf
	if cfg.ScriptURL == nil {
		cfg.ScriptURL = scriptURL
	}
	cfg.Log = testLogger(t)
	var s *Server
	var err error
	in(t, seg.srv, func() { s, err = New(cfg) })
	if err != nil {
		t.Fatalf("new dhcp server: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("serve did not return after its context ended")
		}
	}
	t.Cleanup(stop)
	return stop
}

// client is a DHCP client with its own MAC on the segment's client end,
// sending from 0.0.0.0 as firmware does.
type testClient struct {
	*nclient4.Client
	mac  net.HardwareAddr
	conn net.PacketConn
}

func (seg *segment) client(t *testing.T, mac string) *testClient {
	t.Helper()
	hw, err := net.ParseMAC(mac)
	if err != nil {
		t.Fatal(err)
	}
	c := &testClient{mac: hw}
	in(t, seg.cli, func() {
		c.conn, err = nclient4.NewRawUDPConn(seg.cliIf, dhcpv4.ClientPort)
		if err != nil {
			return
		}
		c.Client, err = nclient4.NewWithConn(c.conn, hw, nclient4.WithTimeout(time.Second), nclient4.WithRetry(3))
	})
	if err != nil {
		t.Fatalf("dhcp client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// exchange sends p and returns the first reply of type want.
func (c *testClient) exchange(t *testing.T, p *dhcpv4.DHCPv4, want dhcpv4.MessageType) *dhcpv4.DHCPv4 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.SendAndRead(ctx, nclient4.DefaultServers, p, nclient4.IsMessageType(want))
	if err != nil {
		t.Fatalf("%s from %s: no %s: %v", p.MessageType(), c.mac, want, err)
	}
	return resp
}

// silence sends p and fails the test if anything answers it within a
// couple of seconds (the wait is what a real client would give up after;
// the tests pair every silence with an answer from the same server).
func (c *testClient) silence(t *testing.T, p *dhcpv4.DHCPv4) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := c.SendAndRead(ctx, nclient4.DefaultServers, p, nil)
	if err == nil {
		t.Fatalf("%s from %s was answered, want silence: %s", p.MessageType(), c.mac, resp.Summary())
	}
}

// send sends p and waits for nothing (RELEASE, DECLINE).
func (c *testClient) send(t *testing.T, p *dhcpv4.DHCPv4) {
	t.Helper()
	if _, err := c.conn.WriteTo(p.ToBytes(), nclient4.DefaultServers); err != nil {
		t.Fatal(err)
	}
}
