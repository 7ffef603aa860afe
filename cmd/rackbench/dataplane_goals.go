package main

import (
	"fmt"
	"io"
)

// dpKey names one measured figure of the dataplane suite; streams is 0
// for the request/response metric.
type dpKey struct {
	cas     string
	rules   int
	metric  string
	streams int
}

func (k dpKey) label() string {
	switch k.metric {
	case metricRR:
		return "rr"
	case metricConnRate:
		return "conn_rate"
	}
	return fmt.Sprintf("streams=%d", k.streams)
}

func (k dpKey) unit() string {
	switch k.metric {
	case metricRR:
		return "transactions/s"
	case metricConnRate:
		return "connections/s"
	}
	return "Gbit/s"
}

// dpGoal is one of the dataplane's targets: the median of num over the
// median of den must reach min.
type dpGoal struct {
	label    string
	num, den dpKey // metric and streams are filled in per comparison
	min      float64
	loss     bool // show as a loss from den to num
	conn     bool // a goal on conn_rate alone, not on throughput
	// ceiling marks a line shown for information beside the goal it
	// follows: what no dataplane could beat on this machine, of what
	// (a filter, a NAT) ceilingOf says.
	ceiling   bool
	ceilingOf string
	// apart is how many paths measureOrder puts between the two (0: side
	// by side); local-0 has neighbours of three goals already.
	apart int
}

var dpGoals = []dpGoal{
	{label: "(a) rackstack-local vs (d) veth, rules=0", num: dpKey{cas: caseLocal}, den: dpKey{cas: caseVeth}, min: 0.95},
	{label: "(a) rackstack-local vs (c) bridge-iptables, rules=1000", num: dpKey{cas: caseLocal, rules: 1000}, den: dpKey{cas: caseBridge, rules: 1000}, min: 1.3},
	{label: "(a) rackstack-local, rules=10000 vs rules=0", num: dpKey{cas: caseLocal, rules: 10000}, den: dpKey{cas: caseLocal}, min: 0.95, loss: true},
	{label: "(b) rackstack-vlan vs (d) veth, rules=0", num: dpKey{cas: caseVLAN}, den: dpKey{cas: caseVeth}, min: 0.8},
	// Issue 13: new connections per second must not fall with the rules,
	// and beat OpenStack's hybrid iptables firewall where it falls most.
	{label: "(e) rackstack-local, rules=10000 vs rules=0", num: dpKey{cas: caseLocal, rules: 10000}, den: dpKey{cas: caseLocal}, min: 0.95, loss: true, conn: true},
	{label: "(e) rackstack-local vs (c) bridge-iptables, rules=10000", num: dpKey{cas: caseLocal, rules: 10000}, den: dpKey{cas: caseBridge, rules: 10000}, min: 3, conn: true},
	// The ceiling of (e): the plain veth pair, no filter at all, against
	// the same baseline. Where this ratio is under (e)'s target, no
	// filter, however cheap its 10,000 rules, can meet it here.
	{label: "(e) ceiling: veth (no filter) vs (c) bridge-iptables, rules=10000", num: dpKey{cas: caseVeth}, den: dpKey{cas: caseBridge, rules: 10000}, min: 3, conn: true, ceiling: true, ceilingOf: "filter", apart: 2},
	// Issue 13: routing costs little over switching, and the floating
	// IP's 1:1 NAT beats a router namespace's iptables DNAT.
	{label: "(f) rackstack-routed vs (a) rackstack-local, rules=0", num: dpKey{cas: caseRouted}, den: dpKey{cas: caseLocal}, min: 0.9, loss: true, apart: 2},
	{label: "(g) rackstack-fip vs iptables-dnat", num: dpKey{cas: caseFIP}, den: dpKey{cas: caseDNAT}, min: 1.5, conn: true},
	// The ceiling of (g): one veth pair between client and server, no NAT,
	// no filter, no hop. A connection's cost is mostly the two TCP stacks
	// and the client and server loops, which both cases pay alike; where
	// this ratio is under (g)'s target, no NAT can meet it here.
	{label: "(g) ceiling: veth (no NAT, no filter) vs iptables-dnat", num: dpKey{cas: caseVeth}, den: dpKey{cas: caseDNAT}, min: 1.5, conn: true, ceiling: true, ceilingOf: "NAT", apart: 2},
}

// goalCheck is a goal evaluated on one metric.
type goalCheck struct {
	goal     dpGoal
	metric   string
	streams  int
	ratio    float64
	found    bool
	informal bool // request/response: shown beside the goals, not one of them
}

func (c goalCheck) met() bool { return c.found && c.ratio >= c.goal.min }

func (c goalCheck) String() string {
	what := fmt.Sprintf("%s, streams=%d", c.metric, c.streams)
	switch c.metric {
	case metricRR:
		what = "rr (for information)"
	case metricConnRate:
		what = "conn_rate"
	}
	target := fmt.Sprintf("≥%.2f×", c.goal.min)
	if c.goal.loss {
		target = fmt.Sprintf("loss ≤%.0f%%", (1-c.goal.min)*100)
	}
	if !c.found {
		return fmt.Sprintf("%s, %s: target %s: not measured", c.goal.label, what, target)
	}
	got := fmt.Sprintf("%.2f×", c.ratio)
	if c.goal.loss {
		got = fmt.Sprintf("loss %.1f%% (%.2f×)", (1-c.ratio)*100, c.ratio)
	}
	if c.goal.ceiling {
		return fmt.Sprintf("%s, %s: %s (for information: the most any %s could reach against target %s)", c.goal.label, what, got, c.goal.ceilingOf, target)
	}
	verdict := "not met"
	if c.met() {
		verdict = "met"
	}
	if c.informal {
		verdict = "would be " + verdict
	}
	return fmt.Sprintf("%s, %s: %s, target %s: %s", c.goal.label, what, got, target, verdict)
}

// dataplaneGoals evaluates every goal on throughput with 1 and 4 streams,
// and shows the same ratios for request/response; the connection goals
// on conn_rate alone.
func dataplaneGoals(rs []Result) []goalCheck {
	medians := map[dpKey]float64{}
	for _, r := range rs {
		if r.Suite != "dataplane" {
			continue
		}
		k := dpKey{cas: r.Case, rules: paramInt(r.Params, "rules"), metric: r.Metric, streams: paramInt(r.Params, "streams")}
		medians[k] = r.Median
	}
	var out []goalCheck
	type slot struct {
		metric  string
		streams int
	}
	for _, g := range dpGoals {
		slots := []slot{{metricThroughput, 1}, {metricThroughput, 4}, {metricRR, 0}}
		if g.conn {
			slots = []slot{{metricConnRate, 0}}
		}
		for _, m := range slots {
			num, den := g.num, g.den
			num.metric, num.streams = m.metric, m.streams
			den.metric, den.streams = m.metric, m.streams
			c := goalCheck{goal: g, metric: m.metric, streams: m.streams, informal: m.metric == metricRR || g.ceiling}
			a, ok1 := medians[num]
			b, ok2 := medians[den]
			if ok1 && ok2 && b > 0 {
				c.ratio, c.found = a/b, true
			}
			out = append(out, c)
		}
	}
	return out
}

// paramInt reads an integer parameter as the suite stores it (int) or as
// JSON gives it back (float64); absent: 0.
func paramInt(p map[string]any, name string) int {
	switch v := p[name].(type) {
	case int:
		return v
	case float64:
		return int(v)
	}
	return 0
}

func printGoals(w io.Writer, cs []goalCheck) {
	fmt.Fprintln(w, "\ndataplane goals (ratios of medians from this run):")
	for _, c := range cs {
		fmt.Fprintln(w, "  "+c.String())
	}
}
