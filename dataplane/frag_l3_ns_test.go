package dataplane

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rackstack/rackstack/dataplane/dataplanetest"
)

// TestFragmentedPingToRouterNamespaces: a guest's 3000-byte ping to its
// gateway and to the router's address on another network, which the
// guest's kernel sends in three fragments, is answered: the reply comes
// back in fragments the guest reassembles.
func TestFragmentedPingToRouterNamespaces(t *testing.T) {
	_, ga, _ := l3Namespaces(t)
	for _, to := range []string{"10.0.0.1", "10.0.1.1"} {
		out, err := ping(t, ga, "-s", "3000", to)
		if err != nil || !strings.Contains(out, "3008 bytes from "+to) {
			t.Errorf("3000-byte ping to the router's %s: %v\n%s", to, err, out)
		}
	}
}

// TestFragmentedICMPErrorsNamespaces: a far host (10.99.0.2, in a
// namespace of its own behind the outside, which forwards) refuses UDP on
// port 9. Its port unreachable about a 1000-byte datagram is 576 bytes
// (Linux quotes up to there), sent without DF, and the outside forwards
// it to a's floating IP and to the router's gateway address by routes of
// MTU 400: in two fragments. (Linux cuts its own errors to the route's
// MTU, so only a forwarded one arrives in fragments.) a (floating IP) and
// d (router SNAT) read ECONNREFUSED on their connected sockets, which
// takes the error's later fragment through the NAT by its first one's
// flow, though their groups let in no ICMP errors.
func TestFragmentedICMPErrorsNamespaces(t *testing.T) {
	d, ga, gd := l3Namespaces(t)
	far := dataplanetest.Netns(t)
	if out, err := ipIn(d.cfg.Netns, "link", "add", "far0", "type", "veth", "peer", "name", "far1", "netns", strings.TrimPrefix(far, "/run/netns/")); err != nil {
		t.Fatalf("far host: %v\n%s", err, out)
	}
	dataplanetest.Addr(t, d.cfg.Netns, "far0", netip.MustParsePrefix("10.99.0.1/24"))
	dataplanetest.Addr(t, far, "far1", netip.MustParsePrefix("10.99.0.2/24"))
	for _, c := range []struct {
		ns   string
		args []string
	}{
		{d.cfg.Netns, []string{"link", "set", "far0", "up"}},
		{far, []string{"link", "set", "far1", "up"}},
		{far, []string{"route", "add", "default", "via", "10.99.0.1"}},
		{d.cfg.Netns, []string{"route", "add", "172.24.4.10/32", "dev", "ext0p", "mtu", "lock", "400"}},
		{d.cfg.Netns, []string{"route", "add", "172.24.4.2/32", "dev", "ext0p", "mtu", "lock", "400"}},
	} {
		if out, err := ipIn(c.ns, c.args...); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(c.args, " "), err, out)
		}
	}
	if err := dataplanetest.In(t, d.cfg.Netns, func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644)
	}); err != nil {
		t.Fatal(err)
	}
	for _, g := range []struct{ name, ns string }{{"a (floating IP)", ga}, {"d (SNAT)", gd}} {
		if err := udpRefusedSize(t, g.ns, "10.99.0.2:9", 1000); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("%s: 1000 bytes of UDP to a closed port beyond the outside: %v, want connection refused (a port unreachable in fragments)", g.name, err)
		}
	}
}

// udpRefusedSize is udpRefused with datagrams of size bytes.
func udpRefusedSize(t *testing.T, ns, addr string, size int) error {
	t.Helper()
	var rerr error
	if err := dataplanetest.In(t, ns, func() error {
		c, err := net.Dial("udp4", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		buf := make([]byte, 16)
		for i := 0; i < 3; i++ {
			if _, err := c.Write(bytes.Repeat([]byte("x"), size)); err != nil {
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

// TestFragmentedMetadataNamespaces: a guest's request to the metadata
// service that arrives in fragments is answered. The guest namespace
// routes for an application namespace behind it (a's address, on a link
// of MTU 9000, path MTU discovery off there, so its TCP segments leave
// without DF), as a guest routing for a container would; the metadata
// server's link takes 9000 bytes too, so the application's segments are
// up to that big and the guest's kernel fragments them for the port's
// 1500. A 20,000-byte POST reaches the server whole, from a's metadata
// address, and its answer comes back.
func TestFragmentedMetadataNamespaces(t *testing.T) {
	d, ga, _ := l3Namespaces(t)
	app := dataplanetest.Netns(t)
	run := func(ns string, args ...string) {
		t.Helper()
		if out, err := ipIn(ns, args...); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	sysctl := func(ns, path, v string) {
		t.Helper()
		if err := dataplanetest.In(t, ns, func() error { return os.WriteFile(path, []byte(v), 0o644) }); err != nil {
			t.Fatal(err)
		}
	}
	for _, dev := range []string{"meta0", "meta0p"} {
		run(d.cfg.Netns, "link", "set", dev, "mtu", "9000")
	}
	// The guest gives a's address to the application behind it and
	// forwards: to the port's network (where 169.254.169.254 is the
	// router's neighbour, as the dataplane answers its ARP) and back.
	run(ga, "addr", "flush", "dev", "tapap")
	run(ga, "link", "add", "app1", "mtu", "9000", "type", "veth", "peer", "name", "app0", "mtu", "9000", "netns", strings.TrimPrefix(app, "/run/netns/"))
	run(ga, "link", "set", "app1", "up")
	run(app, "link", "set", "app0", "up")
	run(app, "addr", "add", "10.0.0.10/32", "dev", "app0")
	appMAC := linkMAC(t, app, "app0")
	gaMAC := linkMAC(t, ga, "app1")
	run(app, "route", "add", "default", "dev", "app0")
	run(app, "neigh", "add", "169.254.169.254", "lladdr", gaMAC, "dev", "app0", "nud", "permanent")
	run(ga, "route", "add", "10.0.0.10/32", "dev", "app1")
	run(ga, "neigh", "add", "10.0.0.10", "lladdr", appMAC, "dev", "app1", "nud", "permanent")
	run(ga, "route", "add", "169.254.169.254/32", "dev", "tapap")
	run(ga, "neigh", "add", "169.254.169.254", "lladdr", macR1.String(), "dev", "tapap", "nud", "permanent")
	sysctl(ga, "/proc/sys/net/ipv4/ip_forward", "1")
	sysctl(app, "/proc/sys/net/ipv4/ip_no_pmtu_disc", "1")

	var ln net.Listener
	if err := dataplanetest.In(t, d.cfg.Netns, func() (err error) {
		ln, err = net.Listen("tcp4", "169.254.169.254:80")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%s %d %x", host, len(b), sha256.Sum256(b))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	before := mapLen(t, d.objs.Frags)
	body := bytes.Repeat([]byte("metadata"), 2500)
	var c net.Conn
	if err := dataplanetest.In(t, app, func() (err error) {
		c, err = net.DialTimeout("tcp4", "169.254.169.254:80", 3*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	cl := &http.Client{Transport: &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) { return c, nil }}}
	resp, err := cl.Post("http://169.254.169.254/openstack/latest/password", "text/plain", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST to the metadata service: %v", err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("169.254.0.5 %d %x", len(body), sha256.Sum256(body)); string(got) != want {
		t.Errorf("the metadata server answered %q, want %q", got, want)
	}
	if after := mapLen(t, d.objs.Frags); after <= before {
		t.Errorf("frags has %d entries, %d before: the request did not come in fragments", after, before)
	}
}

// linkMAC is the MAC of dev in namespace ns.
func linkMAC(t *testing.T, ns, dev string) string {
	t.Helper()
	var mac string
	if err := dataplanetest.In(t, ns, func() error {
		i, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		mac = i.HardwareAddr.String()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return mac
}
