package dataplane

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/dataplane/dataplanetest"
)

// l3Namespaces sets the routed fixture up with real traffic: guests a and
// d in namespaces of their own behind their ports, the dataplane's
// namespace playing the outside (172.24.4.1 on ext0's peer) and the
// metadata server (169.254.169.254 on meta0's peer).
func l3Namespaces(t *testing.T) (d *Dataplane, ga, gd string) {
	return l3NamespacesOn(t, false)
}

// l3NamespacesOn is l3Namespaces with the external network flat on the
// uplink (the outside on up0p) when onUplink.
func l3NamespacesOn(t *testing.T, onUplink bool) (d *Dataplane, ga, gd string) {
	d, ga, gd, _ = l3NamespacesState(t, onUplink)
	return d, ga, gd
}

// l3NamespacesState is l3NamespacesOn, also returning what it applied.
func l3NamespacesState(t *testing.T, onUplink bool) (d *Dataplane, ga, gd string, want Desired) {
	pfx := netip.MustParsePrefix
	d = openTest(t, "tapa", "tapd", "up0", "ext0", "meta0")
	ga = dataplanetest.Guest(t, d.cfg.Netns, "tapa", macA, pfx("10.0.0.10/24"), netip.MustParseAddr("10.0.0.1"))
	gd = dataplanetest.Guest(t, d.cfg.Netns, "tapd", macD, pfx("10.0.1.20/24"), netip.MustParseAddr("10.0.1.1"))
	dataplanetest.Addr(t, d.cfg.Netns, "meta0p", pfx("169.254.169.254/16"))
	want = l3State()
	dev := "ext0"
	if !onUplink {
		dataplanetest.Addr(t, d.cfg.Netns, "ext0p", pfx("172.24.4.1/24"))
	} else {
		// A VLAN of the uplink is TestExternalOnUplinkVLANNamespaces'.
		dev = "up0"
		dataplanetest.Addr(t, d.cfg.Netns, "up0p", pfx("172.24.4.1/24"))
		want.Externals[0].Device = "up0"
	}
	ext, err := d.nl.LinkByName(dev)
	if err != nil {
		t.Fatal(err)
	}
	want.Externals[0].MAC = ext.Attrs().HardwareAddr
	want.Routers[0].Gateway.SNAT = true
	// The outside reaches a's floating IP on its own ports.
	want.Rules = append(want.Rules, Rule{Group: "web", Ingress: true, Proto: 6, PortMin: 8000, PortMax: 8000, Remote: pfx("172.24.4.0/24")})
	if _, err := d.Apply(want); err != nil {
		t.Fatal(err)
	}
	return d, ga, gd, want
}

// ping runs ping in a namespace and returns its output.
func ping(t *testing.T, ns string, args ...string) (string, error) {
	t.Helper()
	args = append([]string{"netns", "exec", filepath.Base(ns), "ping", "-n", "-c", "2", "-i", "0.2", "-W", "2"}, args...)
	out, err := exec.Command("ip", args...).CombinedOutput()
	return string(out), err
}

// serveEcho listens on addr in namespace ns and answers each connection
// with the address it came from.
func serveEcho(t *testing.T, ns, addr string) {
	t.Helper()
	var ln net.Listener
	if err := dataplanetest.In(t, ns, func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s\n", c.RemoteAddr().(*net.TCPAddr).IP)
			c.Close()
		}
	}()
}

// dialFrom connects from namespace ns to addr and returns what the server
// said the connection came from.
func dialFrom(t *testing.T, ns, addr string) string {
	t.Helper()
	var c net.Conn
	if err := dataplanetest.In(t, ns, func() (err error) {
		c, err = net.DialTimeout("tcp", addr, 5*time.Second)
		return err
	}); err != nil {
		t.Fatalf("connect to %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read from %s: %v", addr, err)
	}
	return strings.TrimSpace(string(b))
}

func TestRoutedNamespaces(t *testing.T) {
	d, ga, gd := l3Namespaces(t)

	if out, err := ping(t, ga, "10.0.1.20"); err != nil {
		t.Errorf("ping from a to d across the router: %v\n%s", err, out)
	}
	if out, err := ping(t, ga, "10.0.0.1"); err != nil {
		t.Errorf("ping a's gateway: %v\n%s", err, out)
	}
	out, _ := ping(t, ga, "-t", "1", "10.0.1.20")
	if !strings.Contains(out, "From 10.0.0.1") || !strings.Contains(strings.ToLower(out), "time to live exceeded") {
		t.Errorf("ping with TTL 1 got no time exceeded from the gateway:\n%s", out)
	}

	// Outside in to a's floating IP, and a out: seen as the floating IP.
	serveEcho(t, ga, "10.0.0.10:8000")
	if got := dialFrom(t, d.cfg.Netns, "172.24.4.10:8000"); got != "172.24.4.1" {
		t.Errorf("a saw the outside's connection to its floating IP from %q, want 172.24.4.1", got)
	}
	serveEcho(t, d.cfg.Netns, "172.24.4.1:9000")
	if got := dialFrom(t, ga, "172.24.4.1:9000"); got != "172.24.4.10" {
		t.Errorf("the outside saw a's connection from %q, want its floating IP 172.24.4.10", got)
	}
	// d has no floating IP: SNAT to the router's gateway address.
	if got := dialFrom(t, gd, "172.24.4.1:9000"); got != "172.24.4.2" {
		t.Errorf("the outside saw d's connection from %q, want the router's 172.24.4.2", got)
	}
	if out, err := ping(t, gd, "172.24.4.1"); err != nil {
		t.Errorf("ping from d to the outside through SNAT: %v\n%s", err, out)
	}
	// A smaller MTU outside: d learns it from its gateway.
	ext, err := d.nl.LinkByName("ext0")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.nl.LinkSetMTU(ext, 1400); err != nil {
		t.Fatal(err)
	}
	out, _ = ping(t, gd, "-M", "do", "-s", "1450", "172.24.4.1")
	if !strings.Contains(out, "mtu = 1400") && !strings.Contains(out, "mtu=1400") {
		t.Errorf("ping too big for the outside learnt no MTU:\n%s", out)
	}
	if out, err := ping(t, gd, "-M", "do", "-s", "1300", "172.24.4.1"); err != nil {
		t.Errorf("ping that fits: %v\n%s", err, out)
	}
	// Nobody inside asked: the router's address takes no connection in.
	err = dataplanetest.In(t, d.cfg.Netns, func() error {
		c, err := net.DialTimeout("tcp4", "172.24.4.2:8000", time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	if err == nil {
		t.Errorf("a connection to the router's gateway address got in")
	}
}

func TestMetadataNamespaces(t *testing.T) {
	d, ga, gd := l3Namespaces(t)
	var ln net.Listener
	if err := dataplanetest.In(t, d.cfg.Netns, func() (err error) {
		ln, err = net.Listen("tcp4", "169.254.169.254:80")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprintf(w, "%s %s", host, r.URL.Path)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	get := func(ns string) (string, error) {
		var c net.Conn
		if err := dataplanetest.In(t, ns, func() (err error) {
			c, err = net.DialTimeout("tcp4", "169.254.169.254:80", 3*time.Second)
			return err
		}); err != nil {
			return "", err
		}
		cl := &http.Client{Transport: &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) { return c, nil }}}
		resp, err := cl.Get("http://169.254.169.254/openstack/latest/meta_data.json")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	got, err := get(ga)
	if err != nil {
		t.Fatal(err)
	}
	if got != "169.254.0.5 /openstack/latest/meta_data.json" {
		t.Errorf("the metadata server saw %q, want a's metadata address 169.254.0.5", got)
	}
	if got, err := get(gd); err == nil {
		t.Errorf("d, without a metadata address, reached the server: %q", got)
	}
}

// TestExternalOnUplinkNamespaces runs the outside flat on the uplink,
// beside the tagged tenant traffic uplink_in carries: in to a's floating
// IP, out through it and through router SNAT.
func TestExternalOnUplinkNamespaces(t *testing.T) {
	d, ga, gd := l3NamespacesOn(t, true)
	serveEcho(t, ga, "10.0.0.10:8000")
	if got := dialFrom(t, d.cfg.Netns, "172.24.4.10:8000"); got != "172.24.4.1" {
		t.Errorf("a saw the outside's connection to its floating IP from %q, want 172.24.4.1", got)
	}
	serveEcho(t, d.cfg.Netns, "172.24.4.1:9000")
	if got := dialFrom(t, ga, "172.24.4.1:9000"); got != "172.24.4.10" {
		t.Errorf("the outside saw a's connection from %q, want its floating IP 172.24.4.10", got)
	}
	if got := dialFrom(t, gd, "172.24.4.1:9000"); got != "172.24.4.2" {
		t.Errorf("the outside saw d's connection from %q, want the router's 172.24.4.2", got)
	}
	if out, err := ping(t, gd, "172.24.4.1"); err != nil {
		t.Errorf("ping from d to the outside through SNAT: %v\n%s", err, out)
	}
}
