package dataplane

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rackstack/rackstack/bpf"
	"github.com/rackstack/rackstack/dataplane/dataplanetest"
)

// TestReopenKeepsNAT closes the dataplane as a rackd restart does and
// opens it again: an SNATed flow's reply still finds its port, the
// gateway's MAC is still known, the external and metadata devices keep
// their programs, and the same Apply writes nothing.
func TestReopenKeepsNAT(t *testing.T) {
	d := openTest(t, "tapa", "tapd", "up0", "ext0", "meta0")
	want := l3State()
	want.Routers[0].Gateway.SNAT = true
	if _, err := d.Apply(want); err != nil {
		t.Fatal(err)
	}
	d.run(t, d.objs.ExtIn, "ext0", frame{src: macG, dst: mac("ff:ff:ff:ff:ff:ff")}.arp("172.24.4.1", "172.24.4.2"))
	if r := d.run(t, d.objs.PortIn, "tapd", withChecksums(frame{src: macD, dst: macR2}.tcp("10.0.1.20", "8.8.8.8", 40000, 443))); r.String() != "REDIRECT [nat_out,snat_new]" {
		t.Fatalf("out: %s", r)
	}
	cfg := d.cfg
	d.Close()

	d2, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d2.Destroy() })
	for dev, prog := range map[string]string{"ext0": "ext_in", "meta0": "meta_in", "tapa": "port_in", "up0": "uplink_in"} {
		l, ok := d2.links[dev]
		if !ok {
			t.Errorf("link of %s not adopted", dev)
			continue
		}
		info, err := l.Info()
		if err != nil {
			t.Fatal(err)
		}
		if got := d2.progName(info.Program); got != prog {
			t.Errorf("%s runs %s after reopen, want %s", dev, got, prog)
		}
	}
	reply := withChecksums(frame{src: macG, dst: macExt}.tcp("8.8.8.8", "172.24.4.2", 443, 40000))
	if r := d2.run(t, d2.objs.ExtIn, "ext0", reply); r.String() != "REDIRECT [fwd_local,nat_in]" {
		t.Errorf("reply after reopen: %s", r)
	}
	if r := d2.run(t, d2.objs.PortIn, "tapd", withChecksums(frame{src: macD, dst: macR2}.tcp("10.0.1.20", "8.8.8.8", 40000, 443))); r.String() != "REDIRECT [nat_out]" {
		t.Errorf("the flow out after reopen: %s (a new port would move snat_new)", r)
	}
	if len(d2.cur.l3.routes) != len(d.cur.l3.routes) || len(d2.cur.l3.fipIn) != len(d.cur.l3.fipIn) || d2.cur.l3.meta != d.cur.l3.meta {
		t.Errorf("reopened routing maps differ: %d routes, %d fip_in", len(d2.cur.l3.routes), len(d2.cur.l3.fipIn))
	}
	if _, err := d2.Apply(want); err != nil {
		t.Fatal(err)
	}
	if drift, err := d2.Verify(); err != nil || drift.Total() != 0 {
		t.Errorf("verify after reopen and apply: drift %v, err %v", drift, err)
	}
}

// TestVerifyRepairsRouting removes routing and NAT entries and a pin
// behind the dataplane's back: Verify counts and restores them.
func TestVerifyRepairsRouting(t *testing.T) {
	d := l3Fixture(t)
	var rk bpf.DataplaneFdbKey
	for k := range d.cur.l3.rmacs {
		if k.Vlan == 101 {
			rk = k
		}
	}
	if err := d.objs.Rmacs.Delete(rk); err != nil {
		t.Fatal(err)
	}
	if err := d.objs.FipIn.Delete(bpf.DataplaneNatKey{Ifindex: d.ifindex(t, "ext0"), Ip: [4]byte{172, 24, 4, 10}}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(d.cfg.PinDir, bpf.DataplaneMapSnat)); err != nil {
		t.Fatal(err)
	}
	ssh := withChecksums(frame{src: macA, dst: macR1}.tcp("10.0.0.10", "10.0.1.20", 40000, 22))
	if r := d.run(t, d.objs.PortIn, "tapa", ssh); r.String() == "REDIRECT [fwd_local,fwd_routed]" {
		t.Fatalf("routed with the router's MAC gone: %s", r)
	}
	drift, err := d.Verify()
	if err != nil {
		t.Fatal(err)
	}
	if want := (Drift{bpf.DataplaneMapRmacs: 1, bpf.DataplaneMapFipIn: 1, "pins": 1}); drift.String() != want.String() {
		t.Errorf("drift %s, want %s", drift, want)
	}
	if r := d.run(t, d.objs.PortIn, "tapa", ssh); r.String() != "REDIRECT [fwd_local,fwd_routed]" {
		t.Errorf("routed after the repair: %s", r)
	}
	if _, err := os.Stat(filepath.Join(d.cfg.PinDir, bpf.DataplaneMapSnat)); err != nil {
		t.Errorf("snat pin not restored: %v", err)
	}
}

// TestNATFlowSurvivesRestart keeps a TCP connection open from d through
// router SNAT, and one in to a's floating IP, while the dataplane closes
// (as rackd does when killed: the pins stay) and opens again: both carry
// data before, between and after.
func TestNATFlowSurvivesRestart(t *testing.T) {
	d, ga, gd := l3Namespaces(t)
	echoLines := func(ns, addr string) {
		var ln net.Listener
		if err := dataplanetest.In(t, ns, func() (err error) {
			ln, err = net.Listen("tcp4", addr)
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
				go func() {
					defer c.Close()
					s := bufio.NewScanner(c)
					for s.Scan() {
						fmt.Fprintf(c, "%s from %s\n", s.Text(), c.RemoteAddr().(*net.TCPAddr).IP)
					}
				}()
			}
		}()
	}
	echoLines(d.cfg.Netns, "172.24.4.1:9100")
	echoLines(ga, "10.0.0.10:8000")
	dial := func(ns, addr string) (net.Conn, *bufio.Reader) {
		var c net.Conn
		if err := dataplanetest.In(t, ns, func() (err error) {
			c, err = net.DialTimeout("tcp4", addr, 5*time.Second)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c, bufio.NewReader(c)
	}
	out, outR := dial(gd, "172.24.4.1:9100")
	in, inR := dial(d.cfg.Netns, "172.24.4.10:8000")
	say := func(when string) {
		t.Helper()
		for _, c := range []struct {
			conn net.Conn
			r    *bufio.Reader
			want string
		}{{out, outR, "from 172.24.4.2"}, {in, inR, "from 172.24.4.1"}} {
			c.conn.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprintf(c.conn, "%s\n", when)
			line, err := c.r.ReadString('\n')
			if err != nil || line != when+" "+c.want+"\n" {
				t.Fatalf("%s: %q, %v; want %q", when, line, err, when+" "+c.want)
			}
		}
	}
	say("before")
	cfg := d.cfg
	want := l3State()
	d.Close()
	say("while-closed")
	d2, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d2.Destroy() })
	say("reopened")
	ext, _ := d2.nl.LinkByName("ext0")
	want.Externals[0].MAC = ext.Attrs().HardwareAddr
	want.Routers[0].Gateway.SNAT = true
	want.Rules = append(want.Rules, Rule{Group: "web", Ingress: true, Proto: 6, PortMin: 8000, PortMax: 8000, Remote: netip.MustParsePrefix("172.24.4.0/24")})
	if _, err := d2.Apply(want); err != nil {
		t.Fatal(err)
	}
	say("applied")
	if c, err := d2.counters(); err != nil || c["snat_new"] != 1 {
		t.Errorf("snat_new %d (%v), want 1: the flow kept its port", c["snat_new"], err)
	}
}
