package dataplane

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/prometheus/client_golang/prometheus"
)

func mapLen(t *testing.T, m *ebpf.Map) int {
	t.Helper()
	n := 0
	it := m.Iterate()
	var k, v []byte
	for it.Next(&k, &v) {
		n++
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// meterState is the routed fixture with SNAT and two labels on r1: "web"
// counts what goes to 8.0.0.0/8 but 8.8.4.0/24, and everything coming in;
// "subnet" counts what d's subnet (10.0.1.0/24) sends anywhere.
func meterState() Desired {
	pfx := netip.MustParsePrefix
	want := l3State()
	want.Routers[0].Gateway.SNAT = true
	want.Meters = []Meter{
		{Label: "web", Project: "p1", Routers: []string{"r1"}, Rules: []MeterRule{
			{Egress: true, Remote: pfx("8.0.0.0/8")},
			{Egress: true, Remote: pfx("8.8.4.0/24"), Excluded: true},
			{Remote: pfx("0.0.0.0/0")},
			{Remote: pfx("fd00::/8")}, // IPv6: left out
		}},
		{Label: "subnet", Project: "p2", Routers: []string{"r1", "no-such-router"}, Rules: []MeterRule{
			{Egress: true, Local: pfx("10.0.1.0/24")},
		}},
	}
	return want
}

// counts is every label's count as "label/direction packets bytes".
func counts(t *testing.T, d *Dataplane) string {
	t.Helper()
	cs, err := d.MeterCounts()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range cs {
		dir := "in"
		if c.Egress {
			dir = "out"
		}
		out = append(out, fmt.Sprintf("%s/%s %d %d", c.Label, dir, c.Packets, c.Bytes))
	}
	return strings.Join(out, ", ")
}

func TestMeteringCounts(t *testing.T) {
	d := openTest(t, "tapa", "tapd", "up0", "ext0", "meta0")
	if _, err := d.Apply(meterState()); err != nil {
		t.Fatal(err)
	}
	bcast := mac("ff:ff:ff:ff:ff:ff")
	if r := d.run(t, d.objs.ExtIn, "ext0", frame{src: macG, dst: bcast}.arp("172.24.4.1", "172.24.4.2")); r.String() != "REDIRECT [arp_reply]" {
		t.Fatalf("ARP for the router's gateway address: %s", r)
	}
	if got := counts(t, d); got != "subnet/in 0 0, subnet/out 0 0, web/in 0 0, web/out 0 0" {
		t.Fatalf("before any traffic: %s", got)
	}
	toR2, toR1, fromG := frame{src: macD, dst: macR2}, frame{src: macA, dst: macR1}, frame{src: macG, dst: macExt}
	steps := []struct {
		name, prog, dev string
		pkt             []byte
		verdict, counts string
	}{
		// A TCP segment without options is 40 bytes of IP.
		{"d out through SNAT to a counted address", "port_in", "tapd", toR2.tcp("10.0.1.20", "8.8.8.8", 40000, 443), "REDIRECT [nat_out,snat_new]",
			"subnet/in 0 0, subnet/out 1 40, web/in 0 0, web/out 1 40"},
		{"d out to an excluded address", "port_in", "tapd", toR2.tcp("10.0.1.20", "8.8.4.4", 40000, 443), "REDIRECT [nat_out,snat_new]",
			"subnet/in 0 0, subnet/out 2 80, web/in 0 0, web/out 1 40"},
		{"d out to an address no rule names", "port_in", "tapd", toR2.tcp("10.0.1.20", "9.9.9.9", 40000, 443), "REDIRECT [nat_out,snat_new]",
			"subnet/in 0 0, subnet/out 3 120, web/in 0 0, web/out 1 40"},
		{"the reply to d, in through SNAT", "ext_in", "ext0", fromG.tcp("8.8.8.8", "172.24.4.2", 443, 40000), "REDIRECT [fwd_local,nat_in]",
			"subnet/in 0 0, subnet/out 3 120, web/in 1 40, web/out 1 40"},
		{"a out by its floating IP", "port_in", "tapa", toR1.tcp("10.0.0.10", "8.8.8.8", 40000, 443), "REDIRECT [nat_out]",
			"subnet/in 0 0, subnet/out 3 120, web/in 1 40, web/out 2 80"},
		{"in to a's floating IP", "ext_in", "ext0", fromG.tcp("8.8.8.8", "172.24.4.10", 443, 40000), "REDIRECT [fwd_local,nat_in]",
			"subnet/in 0 0, subnet/out 3 120, web/in 2 80, web/out 2 80"},
		{"routed between subnets: no gateway, no count", "port_in", "tapa", toR1.icmp("10.0.0.10", "10.0.1.20", 8, 0, 1), "REDIRECT [fwd_local,fwd_routed]",
			"subnet/in 0 0, subnet/out 3 120, web/in 2 80, web/out 2 80"},
		{"dropped in: not counted", "ext_in", "ext0", fromG.tcp("1.2.3.4", "172.24.4.2", 5555, 22), "SHOT [drop_no_route]",
			"subnet/in 0 0, subnet/out 3 120, web/in 2 80, web/out 2 80"},
	}
	progs := map[string]string{"port_in": "PortIn", "ext_in": "ExtIn"}
	for _, s := range steps {
		prog := d.objs.PortIn
		if progs[s.prog] == "ExtIn" {
			prog = d.objs.ExtIn
		}
		if r := d.run(t, prog, s.dev, withChecksums(s.pkt)); r.String() != s.verdict {
			t.Fatalf("%s: %s, want %s", s.name, r, s.verdict)
		}
		if got := counts(t, d); got != s.counts {
			t.Fatalf("%s: counts %s, want %s", s.name, got, s.counts)
		}
	}

	// The counts are the metrics, by label, project and direction.
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(d.Metrics())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if !strings.Contains(mf.GetName(), "metering") {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			got[fmt.Sprintf("%s{%s,%s,%s}", mf.GetName(), l["label"], l["project"], l["direction"])] = m.GetCounter().GetValue()
		}
	}
	for k, v := range map[string]float64{
		"rackstack_dataplane_metering_bytes_total{web,p1,egress}":      80,
		"rackstack_dataplane_metering_packets_total{web,p1,ingress}":   2,
		"rackstack_dataplane_metering_packets_total{subnet,p2,egress}": 3,
		"rackstack_dataplane_metering_bytes_total{subnet,p2,ingress}":  0,
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}

	// Verify puts back a router's rules that something removed, and the
	// counts stay.
	if err := d.objs.Meters.Delete(routerID("r1")); err != nil {
		t.Fatal(err)
	}
	if drift, err := d.Verify(); err != nil || drift.String() != (Drift{"meters": 1}).String() {
		t.Fatalf("verify after the rules went: drift %s, err %v", drift, err)
	}
	if got := counts(t, d); got != "subnet/in 0 0, subnet/out 3 120, web/in 2 80, web/out 2 80" {
		t.Fatalf("after verify: %s", got)
	}

	// A label that goes takes its counts with it; one that comes starts
	// from zero, though it may have the old one's slot; the one that
	// stays keeps its counts, across a reopen too.
	want := meterState()
	want.Meters[0].Label = "web2"
	if _, err := d.Apply(want); err != nil {
		t.Fatal(err)
	}
	if got := counts(t, d); got != "subnet/in 0 0, subnet/out 3 120, web2/in 0 0, web2/out 0 0" {
		t.Fatalf("after web became web2: %s", got)
	}
	cfg := d.cfg
	d.Close()
	d, err = Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Destroy() })
	if got := counts(t, d); got != "subnet/in 0 0, subnet/out 3 120, web2/in 0 0, web2/out 0 0" {
		t.Fatalf("after a reopen: %s", got)
	}
	if _, err := d.Apply(want); err != nil {
		t.Fatal(err)
	}
	if r := d.run(t, d.objs.PortIn, "tapd", withChecksums(toR2.tcp("10.0.1.20", "8.8.8.8", 40000, 443))); r.String() != "REDIRECT [nat_out]" {
		t.Fatalf("after a reopen, d out: %s", r)
	}
	if got := counts(t, d); got != "subnet/in 0 0, subnet/out 4 160, web2/in 0 0, web2/out 1 40" {
		t.Fatalf("after a reopen and one more packet: %s", got)
	}
	// No label, no router metered: nothing left in the maps.
	want.Meters = nil
	if _, err := d.Apply(want); err != nil {
		t.Fatal(err)
	}
	if got := counts(t, d); got != "" {
		t.Fatalf("with no labels: %s", got)
	}
	for name, n := range map[string]int{"meters": mapLen(t, d.objs.Meters), "meter_addrs": mapLen(t, d.objs.MeterAddrs), "meter_labels": mapLen(t, d.objs.MeterLabels)} {
		if n != 0 {
			t.Errorf("%s holds %d entries with no labels", name, n)
		}
	}
}

// TestMeteringNamespaces meters real traffic on veths: a's connections out
// by its floating IP and back count for "a", whose rules exclude d's
// subnet; d's, SNATed, count only for "all".
func TestMeteringNamespaces(t *testing.T) {
	pfx := netip.MustParsePrefix
	d, ga, gd := l3Namespaces(t)
	// l3Namespaces's state, with the labels.
	want := l3State()
	ext, err := d.nl.LinkByName("ext0")
	if err != nil {
		t.Fatal(err)
	}
	want.Externals[0].MAC = ext.Attrs().HardwareAddr
	want.Routers[0].Gateway.SNAT = true
	want.Rules = append(want.Rules, Rule{Group: "web", Ingress: true, Proto: 6, PortMin: 8000, PortMax: 8000, Remote: pfx("172.24.4.0/24")})
	want.Meters = []Meter{
		{Label: "a", Project: "p1", Routers: []string{"r1"}, Rules: []MeterRule{
			{Egress: true, Remote: pfx("172.24.4.0/24")},
			{Egress: true, Local: pfx("10.0.1.0/24"), Excluded: true},
			{Remote: pfx("172.24.4.1/32")},
			{Local: pfx("10.0.1.20/32"), Excluded: true},
		}},
		{Label: "all", Project: "p1", Routers: []string{"r1"}, Rules: []MeterRule{{Egress: true}, {}}},
	}
	if _, err := d.Apply(want); err != nil {
		t.Fatal(err)
	}
	moved := func() map[string]uint64 {
		cs, err := d.MeterCounts()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]uint64{}
		for _, c := range cs {
			dir := "in"
			if c.Egress {
				dir = "out"
			}
			out[c.Label+"/"+dir] = c.Packets
		}
		return out
	}
	serveEcho(t, d.cfg.Netns, "172.24.4.1:9000")
	if got := dialFrom(t, gd, "172.24.4.1:9000"); got != "172.24.4.2" {
		t.Fatalf("the outside saw d's connection from %q, want the router's 172.24.4.2", got)
	}
	if out, err := ping(t, gd, "172.24.4.1"); err != nil {
		t.Fatalf("ping from d to the outside through SNAT: %v\n%s", err, out)
	}
	c := moved()
	if c["a/out"] != 0 || c["a/in"] != 0 {
		t.Errorf("d's traffic counted for a, whose rules exclude it: %v", c)
	}
	// A connection is at least 3 packets each way; the pings 2.
	if c["all/out"] < 5 || c["all/in"] < 5 {
		t.Errorf("d's connection and pings counted %v for all, want at least 5 each way", c)
	}
	if got := dialFrom(t, ga, "172.24.4.1:9000"); got != "172.24.4.10" {
		t.Fatalf("the outside saw a's connection from %q, want its floating IP", got)
	}
	serveEcho(t, ga, "10.0.0.10:8000")
	if got := dialFrom(t, d.cfg.Netns, "172.24.4.10:8000"); got != "172.24.4.1" {
		t.Fatalf("a saw the outside's connection from %q", got)
	}
	c2 := moved()
	if c2["a/out"] < 6 || c2["a/in"] < 6 {
		t.Errorf("a's two connections counted %v for a, want at least 6 each way", c2)
	}
	// d's last packets (its connection's closing) may still come after
	// the first reading: all grows by a's count at least.
	if c2["all/out"]-c["all/out"] < c2["a/out"] || c2["all/in"]-c["all/in"] < c2["a/in"] {
		t.Errorf("all grew by less than a's count: before %v, after %v", c, c2)
	}
}
