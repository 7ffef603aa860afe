package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rackstack/rackstack/dataplane"
)

// dataplaneSuite measures TCP throughput (iperf3, 1 and 4 streams) and the
// rate of 1-byte request/response transactions between two ports, network
// namespaces standing in for VMs, over four paths:
//
//   - veth: one veth pair straight between the ports, the limit;
//   - bridge-iptables: each port's veth on a Linux bridge in a node
//     namespace with br_netfilter and stateful iptables chains laid out as
//     OpenStack's hybrid firewall driver lays them out;
//   - rackstack-local: both ports' host ends in one node namespace under
//     Rackstack's eBPF dataplane;
//   - rackstack-vlan: each port on its own node, each node with its own
//     dataplane, the nodes joined by a veth wire that carries VLAN 101.
//
// The filtering paths run with 0, 100, 1,000 and 10,000 filler rules beside
// the rules that admit the benchmark's traffic. Every path is built before
// the first run, and each run measures every path in turn, those a goal
// compares back to back, so a busy spell of the shared machine hits the
// cases of a comparison alike. Everything lives in namespaces
// named rb-<pid>-… and under /sys/fs/bpf/rackbench-<pid>, and is removed on
// the way out, on error and on Ctrl-C too.
func dataplaneSuite(ctx context.Context, o options) ([]Result, error) {
	if err := dataplanePrereqs(); err != nil {
		return nil, err
	}
	b := &dpBench{
		prefix:  fmt.Sprintf("rb-%d", os.Getpid()),
		pinRoot: fmt.Sprintf("/sys/fs/bpf/rackbench-%d", os.Getpid()),
		log:     o.Log,
	}
	removeStale(o.Log)
	defer b.teardown()

	var paths []*dpPath
	only := map[string]bool{}
	for _, c := range strings.Split(o.Cases, ",") {
		if c = strings.TrimSpace(c); c != "" {
			only[c] = true
		}
	}
	add := func(cas string, rules int) error {
		if len(only) > 0 && !only[cas] {
			return nil
		}
		p, err := b.build(ctx, cas, rules)
		if err != nil {
			return fmt.Errorf("build %s rules=%d: %w", cas, rules, err)
		}
		paths = append(paths, p)
		return nil
	}
	if err := add(caseVeth, 0); err != nil {
		return nil, err
	}
	for _, cas := range []string{caseBridge, caseLocal, caseVLAN} {
		for _, n := range dpRuleCounts {
			if err := add(cas, n); err != nil {
				return nil, err
			}
		}
	}
	for _, cas := range []string{caseRouted, caseFIP, caseDNAT} {
		if err := add(cas, 0); err != nil {
			return nil, err
		}
	}
	for _, p := range paths {
		if err := b.check(ctx, p); err != nil {
			return nil, fmt.Errorf("check %s rules=%d: %w", p.cas, p.rules, err)
		}
	}

	order := measureOrder(paths)
	runs := map[dpKey][]float64{}
	for run := 0; run < o.Runs; run++ {
		// Every path once per metric, the paths a goal compares one after
		// the other, and every other run backwards: a load that comes and
		// goes on the shared machine falls on both sides of a comparison.
		seq := order
		if run%2 == 1 {
			seq = slices.Clone(order)
			slices.Reverse(seq)
		}
		for _, slot := range dpSlots() {
			for _, p := range seq {
				k := slot
				k.cas, k.rules = p.cas, p.rules
				v, err := b.measure(ctx, p, k, o.Duration)
				if err != nil {
					return nil, fmt.Errorf("%s rules=%d %s: %w", p.cas, p.rules, k.label(), err)
				}
				runs[k] = append(runs[k], v)
				fmt.Fprintf(o.Log, "dataplane run %d %s rules=%d %s: %.4g %s\n", run+1, p.cas, p.rules, k.label(), v, k.unit())
			}
		}
	}

	var out []Result
	for _, p := range paths {
		for _, k := range dpSlots() {
			k.cas, k.rules = p.cas, p.rules
			params := map[string]any{"rules": p.rules, "streams": k.streams}
			switch k.metric {
			case metricRR:
				params = map[string]any{"rules": p.rules, "payload": "1B"}
			case metricConnRate:
				params = map[string]any{"rules": p.rules, "concurrency": connConcurrency}
			}
			out = append(out, newResult("dataplane", p.cas, params, k.metric, k.unit(), runs[k]))
		}
	}
	printGoals(o.Log, dataplaneGoals(out))
	return out, nil
}

const (
	caseVeth   = "veth"
	caseBridge = "bridge-iptables"
	caseLocal  = "rackstack-local"
	caseVLAN   = "rackstack-vlan"

	metricThroughput = "throughput"
	metricRR         = "rr"
	metricConnRate   = "conn_rate"

	iperfPort  = 5201
	rrPort     = 5202
	closedPort = 5203 // no rule admits it: probes that the filter is on the path
	connPort   = 5204

	benchVLAN  = 101
	benchGroup = "bench"
)

var (
	dpRuleCounts = []int{0, 100, 1000, 10000}
	dpStreams    = []int{1, 4}

	clientIP    = netip.MustParseAddr("10.9.0.1")
	serverIP    = netip.MustParseAddr("10.9.0.2")
	benchSubnet = netip.MustParsePrefix("10.9.0.0/24")
	clientMAC   = net.HardwareAddr{0xfa, 0x16, 0x3e, 0x09, 0x00, 0x01}
	serverMAC   = net.HardwareAddr{0xfa, 0x16, 0x3e, 0x09, 0x00, 0x02}
)

// measureOrder lists the paths so that those a goal compares are
// neighbours (or as near as dpGoal.apart allows): fip, dnat, routed,
// vlan-0, veth, local-0, local-10000, then per rule count the bridge
// beside local and vlan.
func measureOrder(paths []*dpPath) []*dpPath {
	find := func(cas string, rules int) *dpPath {
		for _, p := range paths {
			if p.cas == cas && p.rules == rules {
				return p
			}
		}
		return nil
	}
	var out []*dpPath
	seen := map[*dpPath]bool{}
	add := func(p *dpPath) {
		if p != nil && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	add(find(caseFIP, 0))
	add(find(caseDNAT, 0))
	add(find(caseRouted, 0))
	add(find(caseVLAN, 0))
	add(find(caseVeth, 0))
	add(find(caseLocal, 0))
	add(find(caseLocal, 10000))
	for _, n := range []int{10000, 1000, 100, 0} {
		add(find(caseBridge, n))
		add(find(caseLocal, n))
		add(find(caseVLAN, n))
	}
	for _, p := range paths {
		add(p)
	}
	return out
}

// dpSlots are the figures measured on every path: throughput per stream
// count, then request/response, then new connections per second.
func dpSlots() []dpKey {
	var out []dpKey
	for _, s := range dpStreams {
		out = append(out, dpKey{metric: metricThroughput, streams: s})
	}
	return append(out, dpKey{metric: metricRR}, dpKey{metric: metricConnRate})
}

// measure takes one figure of path p.
func (b *dpBench) measure(ctx context.Context, p *dpPath, k dpKey, d time.Duration) (float64, error) {
	switch k.metric {
	case metricRR:
		return rrRun(ctx, b.nsPath(p.client), b.nsPath(p.server), p.target(), d)
	case metricConnRate:
		return connRun(ctx, b.nsPath(p.client), b.nsPath(p.server), p.target(), d)
	}
	return b.throughput(ctx, p, k.streams, d)
}

// dataplanePrereqs says what is missing, before anything is built.
func dataplanePrereqs() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: the dataplane suite needs root: it creates network namespaces, a bridge, iptables rules and loads BPF programs", errNeed)
	}
	var missing []string
	for _, tool := range []string{"ip", "iperf3", "iptables-restore", "sysctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s not found (BENCH: apt-get install iproute2 iperf3 iptables procps)", errNeed, strings.Join(missing, ", "))
	}
	if _, err := os.Stat("/proc/sys/net/bridge/bridge-nf-call-iptables"); err != nil {
		return fmt.Errorf("%w: this kernel has no br_netfilter (net.bridge.bridge-nf-call-iptables), which bridge-iptables needs", errNeed)
	}
	return nil
}

// dpPath is one path between a client port and a server port.
type dpPath struct {
	cas            string
	rules          int
	client, server string // namespace names of the two ports
	// dst is the address the client dials (a floating IP); zero: serverIP.
	dst netip.Addr
	// clientAddr is the client's address and subnet; zero: clientIP in
	// benchSubnet. The gateways, when set, are the ends' default routes.
	clientAddr         netip.Prefix
	clientGW, serverGW netip.Addr
	// settle, when set, runs once both ends have their addresses.
	settle func() error
}

// target is the address the path's client dials.
func (p *dpPath) target() netip.Addr {
	if p.dst.IsValid() {
		return p.dst
	}
	return serverIP
}

// dpBench owns everything the suite creates, so that one teardown removes
// it whatever step failed.
type dpBench struct {
	prefix  string // namespace name prefix: rb-<pid>
	pinRoot string
	log     io.Writer
	netns   []string
	planes  []*dataplane.Dataplane
	servers []*dpServer
}

type dpServer struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func (b *dpBench) nsPath(name string) string { return "/run/netns/" + name }

// teardown stops the iperf3 servers, detaches the dataplanes and deletes
// the namespaces (and with them every veth and bridge) and the pins. It
// runs on a context of its own: the suite's may be cancelled already.
func (b *dpBench) teardown() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, s := range b.servers {
		s.cmd.Process.Kill()
		select {
		case <-s.done:
		case <-ctx.Done():
		}
	}
	for _, d := range b.planes {
		if err := d.Destroy(); err != nil {
			fmt.Fprintf(b.log, "dataplane: destroy: %v\n", err)
		}
	}
	for i := len(b.netns) - 1; i >= 0; i-- {
		if err := runCmd(ctx, nil, "ip", "netns", "delete", b.netns[i]); err != nil {
			fmt.Fprintf(b.log, "dataplane: %v\n", err)
		}
	}
	if err := os.RemoveAll(b.pinRoot); err != nil {
		fmt.Fprintf(b.log, "dataplane: remove pins: %v\n", err)
	}
}

// removeStale deletes what an earlier rackbench left when it was killed
// too hard to clean up: namespaces and pins named after a dead pid.
func removeStale(log io.Writer) {
	dead := func(pid string) bool {
		n, err := strconv.Atoi(pid)
		return err == nil && n != os.Getpid() && errors.Is(syscall.Kill(n, 0), syscall.ESRCH)
	}
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), "rb-")
		pid, _, ok2 := strings.Cut(rest, "-")
		if ok && ok2 && dead(pid) {
			fmt.Fprintf(log, "dataplane: deleting namespace %s of an earlier run\n", e.Name())
			runCmd(context.Background(), nil, "ip", "netns", "delete", e.Name())
		}
	}
	pins, _ := filepath.Glob("/sys/fs/bpf/rackbench-*")
	for _, p := range pins {
		if dead(strings.TrimPrefix(filepath.Base(p), "rackbench-")) {
			fmt.Fprintf(log, "dataplane: removing pins %s of an earlier run\n", p)
			os.RemoveAll(p)
		}
	}
}

// runCmd runs a command, feeding it stdin, and returns its output in the
// error when it fails.
func runCmd(ctx context.Context, stdin io.Reader, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = stdin
	out, err := cmd.CombinedOutput()
	if err != nil {
		line := strings.Join(append([]string{name}, args...), " ")
		if len(line) > 200 {
			line = line[:200] + "…"
		}
		return fmt.Errorf("%s: %w: %s", line, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (b *dpBench) ip(ctx context.Context, args ...string) error {
	return runCmd(ctx, nil, "ip", args...)
}

// addNetns creates a namespace rb-<pid>-<name> with its loopback up.
func (b *dpBench) addNetns(ctx context.Context, name string) (string, error) {
	ns := b.prefix + "-" + name
	if err := b.ip(ctx, "netns", "add", ns); err != nil {
		return "", err
	}
	b.netns = append(b.netns, ns)
	return ns, b.ip(ctx, "-n", ns, "link", "set", "lo", "up")
}

// build creates one path's namespaces, links and filters, and starts its
// iperf3 server.
func (b *dpBench) build(ctx context.Context, cas string, rules int) (*dpPath, error) {
	short := map[string]string{caseVeth: "veth", caseBridge: "br", caseLocal: "local", caseVLAN: "vlan",
		caseRouted: "routed", caseFIP: "fip", caseDNAT: "dnat"}[cas]
	name := fmt.Sprintf("%s-%d", short, rules)
	p := &dpPath{cas: cas, rules: rules}
	var err error
	if p.client, err = b.addNetns(ctx, name+"-a"); err != nil {
		return nil, err
	}
	if p.server, err = b.addNetns(ctx, name+"-b"); err != nil {
		return nil, err
	}
	switch cas {
	case caseVeth:
		err = b.ip(ctx, "-n", p.client, "link", "add", "eth0", "address", clientMAC.String(), "type", "veth",
			"peer", "name", "eth0", "address", serverMAC.String(), "netns", p.server)
	case caseBridge:
		err = b.buildBridge(ctx, p, name)
	case caseLocal:
		err = b.buildLocal(ctx, p, name)
	case caseVLAN:
		err = b.buildVLAN(ctx, p, name)
	case caseRouted:
		err = b.buildRouted(ctx, p, name)
	case caseFIP:
		err = b.buildFIP(ctx, p, name)
	case caseDNAT:
		err = b.buildDNAT(ctx, p, name)
	default:
		err = fmt.Errorf("unknown case %q", cas)
	}
	if err != nil {
		return nil, err
	}
	// conn_rate opens tens of thousands of connections: the client may
	// reuse its ports' TIME_WAIT (a second on) from a wide range.
	for _, kv := range []string{"net.ipv4.tcp_tw_reuse=1", "net.ipv4.ip_local_port_range=1024 65000"} {
		if err := runCmd(ctx, nil, "ip", "netns", "exec", p.client, "sysctl", "-qw", kv); err != nil {
			return nil, err
		}
	}
	ca := p.clientAddr
	if !ca.IsValid() {
		ca = netip.PrefixFrom(clientIP, benchSubnet.Bits())
	}
	for _, g := range []struct {
		ns   string
		addr netip.Prefix
		gw   netip.Addr
	}{{p.client, ca, p.clientGW}, {p.server, netip.PrefixFrom(serverIP, benchSubnet.Bits()), p.serverGW}} {
		if err := b.ip(ctx, "-n", g.ns, "addr", "add", g.addr.String(), "dev", "eth0"); err != nil {
			return nil, err
		}
		if err := b.ip(ctx, "-n", g.ns, "link", "set", "eth0", "up"); err != nil {
			return nil, err
		}
		if g.gw.IsValid() {
			if err := b.ip(ctx, "-n", g.ns, "route", "add", "default", "via", g.gw.String()); err != nil {
				return nil, err
			}
		}
	}
	if p.settle != nil {
		if err := p.settle(); err != nil {
			return nil, err
		}
	}
	return p, b.startIperfServer(ctx, p.server)
}

// plug creates a veth with its host end dev in node and its guest end
// eth0, with the given MAC, in guest; the host end is brought up.
func (b *dpBench) plug(ctx context.Context, node, dev, guest string, mac net.HardwareAddr) error {
	if err := b.ip(ctx, "-n", node, "link", "add", dev, "type", "veth", "peer", "name", "eth0", "address", mac.String(), "netns", guest); err != nil {
		return err
	}
	return b.ip(ctx, "-n", node, "link", "set", dev, "up")
}

// bridgePort is a port as the iptables firewall sees it.
type bridgePort struct {
	dev string
	ip  netip.Addr
	mac net.HardwareAddr
}

func (b *dpBench) buildBridge(ctx context.Context, p *dpPath, name string) error {
	node, err := b.addNetns(ctx, name+"-node")
	if err != nil {
		return err
	}
	ports := []bridgePort{{"ta", clientIP, clientMAC}, {"tb", serverIP, serverMAC}}
	if err := b.ip(ctx, "-n", node, "link", "add", "br0", "type", "bridge"); err != nil {
		return err
	}
	guests := []string{p.client, p.server}
	for i, bp := range ports {
		if err := b.plug(ctx, node, bp.dev, guests[i], bp.mac); err != nil {
			return err
		}
		if err := b.ip(ctx, "-n", node, "link", "set", bp.dev, "master", "br0"); err != nil {
			return err
		}
	}
	if err := b.ip(ctx, "-n", node, "link", "set", "br0", "up"); err != nil {
		return err
	}
	if err := runCmd(ctx, nil, "ip", "netns", "exec", node, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1"); err != nil {
		return err
	}
	rules := iptablesRuleset(ports, p.rules)
	return runCmd(ctx, strings.NewReader(rules), "ip", "netns", "exec", node, "iptables-restore")
}

func (b *dpBench) openDataplane(node string) (*dataplane.Dataplane, error) {
	d, err := dataplane.Open(dataplane.Config{PinDir: filepath.Join(b.pinRoot, node), Netns: b.nsPath(node)})
	if err != nil {
		return nil, err
	}
	b.planes = append(b.planes, d)
	return d, nil
}

// applyPorts applies the bench's rules for ports and checks that every
// one of them was plugged.
func applyPorts(d *dataplane.Dataplane, want dataplane.Desired) error {
	plugged, err := d.Apply(want)
	if err != nil {
		return fmt.Errorf("dataplane apply: %w", err)
	}
	if len(plugged) != len(want.Ports) {
		return fmt.Errorf("dataplane plugged %v of %d ports", plugged, len(want.Ports))
	}
	return nil
}

func (b *dpBench) buildLocal(ctx context.Context, p *dpPath, name string) error {
	node, err := b.addNetns(ctx, name+"-node")
	if err != nil {
		return err
	}
	a, s := benchPorts()
	if err := b.plug(ctx, node, a.Device, p.client, a.MAC); err != nil {
		return err
	}
	if err := b.plug(ctx, node, s.Device, p.server, s.MAC); err != nil {
		return err
	}
	d, err := b.openDataplane(node)
	if err != nil {
		return err
	}
	return applyPorts(d, benchDesired(p.rules, "", a, s))
}

func (b *dpBench) buildVLAN(ctx context.Context, p *dpPath, name string) error {
	n1, err := b.addNetns(ctx, name+"-n1")
	if err != nil {
		return err
	}
	n2, err := b.addNetns(ctx, name+"-n2")
	if err != nil {
		return err
	}
	if err := b.ip(ctx, "-n", n1, "link", "add", "up0", "type", "veth", "peer", "name", "up0", "netns", n2); err != nil {
		return err
	}
	for _, n := range []string{n1, n2} {
		if err := b.ip(ctx, "-n", n, "link", "set", "up0", "up"); err != nil {
			return err
		}
	}
	a, s := benchPorts()
	if err := b.plug(ctx, n1, a.Device, p.client, a.MAC); err != nil {
		return err
	}
	if err := b.plug(ctx, n2, s.Device, p.server, s.MAC); err != nil {
		return err
	}
	for _, side := range []struct {
		node string
		port dataplane.Port
	}{{n1, a}, {n2, s}} {
		d, err := b.openDataplane(side.node)
		if err != nil {
			return err
		}
		if err := applyPorts(d, benchDesired(p.rules, "up0", side.port)); err != nil {
			return err
		}
	}
	return nil
}

// check proves a path before it is measured: traffic passes, and where
// the path filters, a port no rule admits is dropped rather than refused.
func (b *dpBench) check(ctx context.Context, p *dpPath) error {
	// The first exchange also settles ARP.
	if _, err := rrRun(ctx, b.nsPath(p.client), b.nsPath(p.server), p.target(), 200*time.Millisecond); err != nil {
		return fmt.Errorf("no traffic: %w", err)
	}
	if p.cas == caseVeth || p.cas == caseDNAT {
		return nil // nothing filters these
	}
	dropped, err := probeDropped(b.nsPath(p.client), p.target(), closedPort)
	if err != nil {
		return err
	}
	if !dropped {
		return fmt.Errorf("a connection to port %d was refused, not dropped: the filter is not on the path", closedPort)
	}
	return nil
}
