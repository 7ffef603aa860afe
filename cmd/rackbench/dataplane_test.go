package main

import (
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"os"
	"strings"
	"testing"
)

func TestParseIperf3(t *testing.T) {
	cases := map[string]struct {
		file    string
		raw     string
		gbps    float64
		wantErr string
	}{
		"two streams summed": {file: "testdata/dataplane_iperf3_p2.json", gbps: 17.137802520516642},
		"connection refused": {file: "testdata/dataplane_iperf3_refused.json", wantErr: "unable to connect to server: Connection refused"},
		"not json":           {raw: "iperf3: error", wantErr: "parse report"},
		"no end":             {raw: `{"start":{},"intervals":[]}`, wantErr: "no received rate"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			raw := []byte(c.raw)
			if c.file != "" {
				var err error
				if raw, err = os.ReadFile(c.file); err != nil {
					t.Fatal(err)
				}
			}
			got, err := parseIperf3(raw)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got-c.gbps) > 1e-9 {
				t.Errorf("got %v Gbit/s, want %v", got, c.gbps)
			}
		})
	}
}

func TestListening(t *testing.T) {
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0200090A:1451 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0200090A:1452 0100090A:9C40 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
`
	if !listening(strings.NewReader(table), 5201) {
		t.Error("5201 listens")
	}
	if listening(strings.NewReader(table), 5202) {
		t.Error("5202 is an established connection, not a listener")
	}
	if listening(strings.NewReader(table), 0x51) {
		t.Error("a port must match whole, not as a suffix")
	}
}

// dpResults builds suite results with the given medians (one run each).
func dpResults(medians map[dpKey]float64) []Result {
	var rs []Result
	for k, m := range medians {
		p := map[string]any{"rules": k.rules}
		if k.metric == metricThroughput {
			p["streams"] = k.streams
		}
		rs = append(rs, newResult("dataplane", k.cas, p, k.metric, "", []float64{m}))
	}
	return rs
}

func TestDataplaneGoals(t *testing.T) {
	tp := func(cas string, rules, streams int) dpKey { return dpKey{cas, rules, metricThroughput, streams} }
	rs := dpResults(map[dpKey]float64{
		tp(caseVeth, 0, 1): 20, tp(caseVeth, 0, 4): 50,
		tp(caseLocal, 0, 1): 19.5, tp(caseLocal, 0, 4): 45, // 0.975 met, 0.9 not
		tp(caseLocal, 1000, 1): 19, tp(caseBridge, 1000, 1): 14, // 1.357 met
		tp(caseLocal, 1000, 4): 45, tp(caseBridge, 1000, 4): 40, // 1.125 not
		tp(caseLocal, 10000, 1):    18.4, // loss 5.6%: not met
		tp(caseLocal, 10000, 4):    44,   // loss 2.2%: met
		tp(caseVLAN, 0, 1):         16,   // 0.8 met (the bound is inclusive)
		{caseVeth, 0, metricRR, 0}: 40000, {caseLocal, 0, metricRR, 0}: 39200,
		{caseLocal, 0, metricConnRate, 0}: 10000, {caseLocal, 10000, metricConnRate, 0}: 9600, // loss 4%: met
		{caseBridge, 10000, metricConnRate, 0}: 3500,                                         // 2.74×: not met
		tp(caseRouted, 0, 1):                   18,                                           // loss 7.7%: met
		{caseFIP, 0, metricConnRate, 0}:        9000, {caseDNAT, 0, metricConnRate, 0}: 6500, // 1.38×: not met
		{caseVeth, 0, metricConnRate, 0}: 7000, // ceiling 1.08×
	})
	got := map[string]goalCheck{}
	for _, c := range dataplaneGoals(rs) {
		got[fmt.Sprintf("%s/%s/%d", c.goal.label, c.metric, c.streams)] = c
	}
	cases := map[string]struct {
		key      string
		found    bool
		ratio    float64
		met      bool
		contains string
	}{
		"local vs veth, 1 stream":         {"(a) rackstack-local vs (d) veth, rules=0/throughput/1", true, 0.975, true, "target ≥0.95×: met"},
		"local vs veth, 4 streams":        {"(a) rackstack-local vs (d) veth, rules=0/throughput/4", true, 0.9, false, "not met"},
		"local vs bridge, 1 stream":       {"(a) rackstack-local vs (c) bridge-iptables, rules=1000/throughput/1", true, 19.0 / 14, true, ": met"},
		"local vs bridge, 4 streams":      {"(a) rackstack-local vs (c) bridge-iptables, rules=1000/throughput/4", true, 1.125, false, "not met"},
		"rule loss, 1 stream":             {"(a) rackstack-local, rules=10000 vs rules=0/throughput/1", true, 18.4 / 19.5, false, "loss 5.6% (0.94×), target loss ≤5%: not met"},
		"rule loss, 4 streams":            {"(a) rackstack-local, rules=10000 vs rules=0/throughput/4", true, 44.0 / 45, true, "loss 2.2%"},
		"vlan vs veth, 1 stream":          {"(b) rackstack-vlan vs (d) veth, rules=0/throughput/1", true, 0.8, true, ": met"},
		"vlan vs veth, 4 not measured":    {"(b) rackstack-vlan vs (d) veth, rules=0/throughput/4", false, 0, false, "not measured"},
		"rr is informational":             {"(a) rackstack-local vs (d) veth, rules=0/rr/0", true, 0.98, true, "rr (for information): 0.98×, target ≥0.95×: would be met"},
		"conn rate rule loss":             {"(e) rackstack-local, rules=10000 vs rules=0/conn_rate/0", true, 0.96, true, "conn_rate: loss 4.0% (0.96×), target loss ≤5%: met"},
		"conn rate vs iptables":           {"(e) rackstack-local vs (c) bridge-iptables, rules=10000/conn_rate/0", true, 9600.0 / 3500, false, "target ≥3.00×: not met"},
		"routed vs switched":              {"(f) rackstack-routed vs (a) rackstack-local, rules=0/throughput/1", true, 18 / 19.5, true, "loss 7.7% (0.92×), target loss ≤10%: met"},
		"fip vs iptables dnat":            {"(g) rackstack-fip vs iptables-dnat/conn_rate/0", true, 9000.0 / 6500, false, "target ≥1.50×: not met"},
		"filter ceiling is informational": {"(e) ceiling: veth (no filter) vs (c) bridge-iptables, rules=10000/conn_rate/0", true, 7000.0 / 3500, false, "conn_rate: 2.00× (for information: the most any filter could reach against target ≥3.00×)"},
		"nat ceiling is informational":    {"(g) ceiling: veth (no NAT, no filter) vs iptables-dnat/conn_rate/0", true, 7000.0 / 6500, false, "conn_rate: 1.08× (for information: the most any NAT could reach against target ≥1.50×)"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			g, ok := got[c.key]
			if !ok {
				t.Fatalf("no check %q", c.key)
			}
			if g.found != c.found || math.Abs(g.ratio-c.ratio) > 1e-9 || g.met() != c.met {
				t.Errorf("found %v ratio %v met %v, want %v %v %v", g.found, g.ratio, g.met(), c.found, c.ratio, c.met)
			}
			if !strings.Contains(g.String(), c.contains) {
				t.Errorf("line %q does not contain %q", g.String(), c.contains)
			}
		})
	}
	if n := len(dataplaneGoals(rs)); n != (len(dpGoals)-5)*3+5 {
		t.Errorf("%d checks, want %d (throughput 1 and 4 streams, rr, per goal; conn_rate alone for the five connection lines)", n, (len(dpGoals)-5)*3+5)
	}
}

// TestDataplaneGoalsFromJSON checks the goals read results as -o json
// prints them, where numbers come back as float64.
func TestDataplaneGoalsFromJSON(t *testing.T) {
	raw, err := json.Marshal(dpResults(map[dpKey]float64{
		{caseVeth, 0, metricThroughput, 4}: 50, {caseVLAN, 0, metricThroughput, 4}: 45,
	}))
	if err != nil {
		t.Fatal(err)
	}
	var rs []Result
	if err := json.Unmarshal(raw, &rs); err != nil {
		t.Fatal(err)
	}
	for _, c := range dataplaneGoals(rs) {
		if c.goal.den.cas == caseVeth && c.goal.num.cas == caseVLAN && c.streams == 4 {
			if !c.found || c.ratio != 0.9 || !c.met() {
				t.Errorf("vlan vs veth from JSON: %s", c)
			}
			return
		}
	}
	t.Error("no vlan vs veth check for 4 streams")
}

func TestBenchPolicies(t *testing.T) {
	a, b := benchPorts()
	for _, n := range []int{0, 100, 10000} {
		d := benchDesired(n, "up0", a, b)
		if len(d.Rules) != n+4 {
			t.Errorf("rules=%d: %d dataplane rules, want %d (fillers + egress + 3 ingress)", n, len(d.Rules), n+4)
		}
		seen := map[netip.Prefix]bool{}
		block := netip.MustParsePrefix("172.16.0.0/12")
		for _, r := range d.Rules[:n] {
			if !block.Contains(r.Remote.Addr()) || r.Remote.Bits() != 32 || seen[r.Remote] {
				t.Fatalf("filler remote %s: want distinct /32s in %s", r.Remote, block)
			}
			seen[r.Remote] = true
			if r.PortMin != r.PortMax || r.PortMin < 10000 || r.PortMin >= 30000 || r.PortMin == iperfPort || r.PortMin == rrPort || r.PortMin == connPort {
				t.Fatalf("filler port %d-%d", r.PortMin, r.PortMax)
			}
		}

		rules := iptablesRuleset([]bridgePort{{"ta", clientIP, clientMAC}, {"tb", serverIP, serverMAC}}, n)
		lines := strings.Split(strings.TrimSpace(rules), "\n")
		if lines[0] != "*filter" || lines[len(lines)-1] != "COMMIT" {
			t.Errorf("rules=%d: not an iptables-restore table", n)
		}
		fillers := strings.Count(rules, "-s 172.")
		if fillers != 2*n {
			t.Errorf("rules=%d: %d filler rules, want %d (n per port chain)", n, fillers, 2*n)
		}
		for _, want := range []string{
			"-A FORWARD -m physdev --physdev-out tb --physdev-is-bridged -j rb-sg-chain",
			"-A rb-i-tb -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
			"-A rb-i-tb -s 10.9.0.0/24 -p tcp -m tcp --dport 5201 -j RETURN",
			"-A rb-i-tb -s 10.9.0.0/24 -p tcp -m tcp --dport 5202 -j RETURN",
			"-A rb-i-tb -s 10.9.0.0/24 -p tcp -m tcp --dport 5204 -j RETURN",
			"-A rb-s-ta -s 10.9.0.1/32 -m mac --mac-source fa:16:3e:09:00:01 -j RETURN",
			"-A rb-sg-fallback -j DROP",
		} {
			if !strings.Contains(rules, want+"\n") {
				t.Errorf("rules=%d: missing %q", n, want)
			}
		}
		// The admitting rules come after the fillers, the fallback last.
		last := strings.Index(rules, "--dport 5202")
		if n > 0 && strings.LastIndex(rules[:last], "-A rb-i-ta -s 172.") < 0 {
			t.Errorf("rules=%d: fillers do not precede the benchmark's rules", n)
		}
	}
}

// TestMeasureOrder checks every path is measured once per metric and the
// paths each goal compares are measured one right after the other.
func TestMeasureOrder(t *testing.T) {
	var paths []*dpPath
	paths = append(paths, &dpPath{cas: caseVeth})
	for _, cas := range []string{caseBridge, caseLocal, caseVLAN} {
		for _, n := range dpRuleCounts {
			paths = append(paths, &dpPath{cas: cas, rules: n})
		}
	}
	for _, cas := range []string{caseRouted, caseFIP, caseDNAT} {
		paths = append(paths, &dpPath{cas: cas})
	}
	order := measureOrder(paths)
	if len(order) != len(paths) {
		t.Fatalf("%d paths in the order, want %d", len(order), len(paths))
	}
	pos := map[dpKey]int{}
	for i, p := range order {
		k := dpKey{cas: p.cas, rules: p.rules}
		if _, dup := pos[k]; dup {
			t.Fatalf("%s rules=%d twice", p.cas, p.rules)
		}
		pos[k] = i
	}
	for _, g := range dpGoals {
		a, b := pos[dpKey{cas: g.num.cas, rules: g.num.rules}], pos[dpKey{cas: g.den.cas, rules: g.den.rules}]
		if d := max(a-b, b-a); d < 1 || d > 1+g.apart {
			t.Errorf("%s: measured at %d and %d, not within %d of each other", g.label, a, b, 1+g.apart)
		}
	}
}
