package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rackstack/rackstack/provision/ra"
)

// provisionSuite measures bare-metal provisioning on two provisioning
// segments built here (each a bridge holding the host's address, the
// site's DHCP server — busybox udhcpd — in a namespace behind a veth, one
// tap per machine) with machines that are QEMU guests under TCG (empty
// disk, virtio NIC, PXE first), each behind an in-process Redfish BMC:
//
//   - rackstack: a one-node rackd with --provision-interface on the first
//     bridge. N machines are powered on through their BMCs at once;
//     enrol_s is power-on → every machine listed in GET
//     /baremetal/v1/nodes/detail with a port of its MAC and properties.cpus
//     set (polled every 0.5 s). Then each node gets its BMC and resource
//     class, is managed and provided (clean_s: provide → all available);
//     deploy_s is N POST /servers of a bare-metal flavor and the test
//     image at once → all ACTIVE.
//   - bare-pxe, the floor: the second bridge, with no Rackstack on it. Its
//     site DHCP server gives the boot file itself, an iPXE script served
//     by a static file server on that bridge's address that boots the
//     same kernel and initramfs; boot_s is power-on → every machine's
//     agent made its first request (the inventory it posts after
//     inspecting) to that server, which is where a discovered machine's
//     enrolment starts.
//
// Each figure is the time until the last of the N machines got there.
// Params: nodes (1 and 3 by default, --nodes). Machines are fresh each
// run (new MACs, empty disks), so every rackstack run is a discovery. One
// untimed bare boot first warms the page cache for both cases.
//
// The machine's load moves while a run lasts, so the cases interleave:
// each run measures the floor and then rackstack at every node count, in
// the opposite order of counts on every other run, and the ratios the
// goals are about are also taken within a run (pairs()).
func provisionSuite(ctx context.Context, o options) ([]Result, error) {
	counts, err := parseNodes(o.Nodes)
	if err != nil {
		return nil, err
	}
	pr, err := provisionPrereqs(o)
	if err != nil {
		return nil, err
	}
	removeStaleSegments(o.Log)
	dir, err := os.MkdirTemp("", "rackbench-provision")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	seg, err := newProvSegment(ctx, dir, o.Log, segRackd)
	if err != nil {
		return nil, fmt.Errorf("build the provisioning segment: %w", err)
	}
	defer seg.close()
	floor, err := newProvSegment(ctx, dir, o.Log, segFloor)
	if err != nil {
		return nil, fmt.Errorf("build the bare PXE floor's segment: %w", err)
	}
	defer floor.close()
	b := &provBench{o: o, pr: pr, seg: seg, floor: floor, dir: dir, samples: provSamples{}}
	defer b.powerOffAll()

	stub, err := startBarePXE(floor.hostIP(), pr.ramdisk)
	if err != nil {
		return nil, err
	}
	defer stub.close()
	if err := floor.startSiteDHCP(ctx, stub.scriptURL()); err != nil {
		return nil, fmt.Errorf("start the floor's site DHCP server: %w", err)
	}
	if o.ProvisionDHCP == "full" {
		// rackd is the segment's only DHCP server and advertises no
		// router on it; the floor gets the same advertisement, so that
		// both skip iPXE's wait for an IPv6 router alike.
		stop, err := advertiseNoRouter(ctx, floor.bridge, o.Log)
		if err != nil {
			return nil, err
		}
		defer stop()
	} else {
		// Rackstack's segment: the site's server hands out addresses
		// only, rackd's proxyDHCP adds the boot options.
		if err := seg.startSiteDHCP(ctx, ""); err != nil {
			return nil, fmt.Errorf("start the site DHCP server: %w", err)
		}
	}
	fmt.Fprintf(o.Log, "provision: starting rackd with --provision-interface %s\n", seg.bridge)
	c, err := startProvCloud(ctx, o, pr, seg, dir)
	if err != nil {
		return nil, fmt.Errorf("set up the cloud: %w", err)
	}
	defer c.close()
	b.c = c
	// Warm-up, not timed: the first boot of a run may read QEMU, its NIC
	// ROM and the ramdisk from disk; the case measured first would pay
	// that.
	if err := b.barePXE(ctx, stub, 0, 1); err != nil {
		return nil, fmt.Errorf("bare-pxe warm-up: %w", err)
	}
	for run := 1; run <= o.Runs; run++ {
		for _, n := range runOrder(counts, run) {
			if err := b.barePXE(ctx, stub, run, n); err != nil {
				return nil, fmt.Errorf("bare-pxe run %d, nodes=%d: %w", run, n, err)
			}
			if err := b.rackstack(ctx, run, n); err != nil {
				return nil, c.withLogTail(fmt.Errorf("rackstack run %d, nodes=%d: %w", run, n, err))
			}
		}
	}
	out := b.samples.results()
	printProvisionGoals(o.Log, provisionGoals(out))
	return out, nil
}

// advertiseNoRouter runs provision/ra, rackd's advertiser of full DHCP
// mode, on the floor's bridge until stop.
func advertiseNoRouter(ctx context.Context, bridge string, log io.Writer) (stop func(), err error) {
	srv, err := ra.New(ra.Config{Interface: bridge})
	if err != nil {
		return nil, fmt.Errorf("advertise no router on the floor's segment: %w", err)
	}
	fmt.Fprintf(log, "provision: --provision-dhcp full: rackd leases the addresses; the floor's %s gets the same zero-lifetime router advertisement\n", bridge)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(rctx)
	}()
	return func() { cancel(); <-done }, nil
}

// runOrder is the order of node counts in run (from 1): as given in odd
// runs, reversed in even ones, so that load that rises or falls through
// a run weighs on both ends of a comparison alike.
func runOrder(counts []int, run int) []int {
	out := append([]int(nil), counts...)
	if run%2 == 0 {
		slices.Reverse(out)
	}
	return out
}

// provPrereqs is what the suite found it needs.
type provPrereqs struct {
	ramdisk string // directory with vmlinuz and initramfs.zst
	image   string // the test image deployed
}

// provisionPrereqs says what is missing, up front.
func provisionPrereqs(o options) (provPrereqs, error) {
	var pr provPrereqs
	if os.Geteuid() != 0 {
		return pr, fmt.Errorf("%w: the provision suite needs root: it makes a bridge, taps and a namespace, and runs rackd's DHCP", errNeed)
	}
	var missing []string
	for _, tool := range []string{"qemu-system-x86_64", "busybox", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		return pr, fmt.Errorf("%w: %s not found (apt-get install qemu-system-x86 busybox-static iproute2)", errNeed, strings.Join(missing, ", "))
	}
	if out, err := exec.Command("busybox", "udhcpd", "--help").CombinedOutput(); err != nil && !strings.Contains(string(out), "udhcpd") {
		return pr, fmt.Errorf("%w: this busybox has no udhcpd applet (apt-get install busybox-static)", errNeed)
	}
	if _, err := os.Stat(filepath.Join(o.BinDir, "rackd")); err != nil {
		return pr, fmt.Errorf("%w: rackd not found in %s (build with make build, or pass --bin)", errNeed, o.BinDir)
	}
	if !hasVirtioROM() {
		return pr, fmt.Errorf("%w: QEMU's virtio NIC boot ROM (efi-virtio.rom) not found: apt-get install ipxe-qemu", errNeed)
	}
	var err error
	if pr.ramdisk, err = findRamdisk(o.Ramdisk, o.BinDir); err != nil {
		return pr, fmt.Errorf("%w: %v", errNeed, err)
	}
	if pr.image, err = findTestImage(o.Image, o.BinDir); err != nil {
		return pr, fmt.Errorf("%w: %v", errNeed, err)
	}
	return pr, nil
}

func hasVirtioROM() bool {
	for _, p := range []string{"/usr/share/qemu/efi-virtio.rom", "/usr/lib/ipxe/qemu/efi-virtio.rom", "/usr/share/qemu/pxe-virtio.rom"} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}

const ramdiskPath = "build/ramdisk"

// findRamdisk returns --ramdisk, or build/ramdisk found by findBuilt; it
// must hold the kernel and initramfs.
func findRamdisk(flagged, binDir string) (string, error) {
	holds := func(dir string) bool {
		for _, f := range []string{"vmlinuz", "initramfs.zst"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				return false
			}
		}
		return true
	}
	if flagged != "" {
		if !holds(flagged) {
			return "", fmt.Errorf("--ramdisk %s: no vmlinuz and initramfs.zst in it (make ramdisk)", flagged)
		}
		return filepath.Abs(flagged)
	}
	if p, ok := findBuilt(ramdiskPath, binDir, holds); ok {
		return p, nil
	}
	return "", fmt.Errorf("no %s with vmlinuz and initramfs.zst in the current directory, the directories above it or beside %s: run make ramdisk, or pass --ramdisk", ramdiskPath, binDir)
}

// parseNodes reads --nodes: machines at once per case, a comma list of
// distinct positive counts, kept in order.
func parseNodes(s string) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("parse --nodes: empty: want counts such as 1,3")
	}
	var out []int
	seen := map[int]bool{}
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > maxProvNodes {
			return nil, fmt.Errorf("parse --nodes: %q: want a count from 1 to %d", f, maxProvNodes)
		}
		if seen[n] {
			return nil, fmt.Errorf("parse --nodes: %d given twice", n)
		}
		seen[n] = true
		out = append(out, n)
	}
	return out, nil
}

// provisionRuns is the provision suite's default --runs.
const provisionRuns = 3

// maxProvNodes bounds machines at once: a MAC's last octet numbers them,
// and each one is a TCG guest on this host.
const maxProvNodes = 8

// Cases and metrics of the provision suite.
const (
	caseRackstack = "rackstack"
	caseBarePXE   = "bare-pxe"

	metricEnrol  = "enrol_s"
	metricDeploy = "deploy_s"
	metricClean  = "clean_s"
	metricBootS  = "boot_s"
)

// provKey names one series of samples.
type provKey struct {
	cas    string
	metric string
	nodes  int
}

// provSamples holds one sample per run of each series.
type provSamples map[provKey][]float64

func (s provSamples) add(cas, metric string, nodes int, v float64) {
	k := provKey{cas, metric, nodes}
	s[k] = append(s[k], v)
}

// results orders the series: bare-pxe first (the floor), then rackstack's
// metrics in the order a machine goes through them, by nodes; then the
// ratios taken within each run (ratios()).
func (s provSamples) results() []Result {
	rank := map[string]int{metricBootS: 0, metricEnrol: 1, metricClean: 2, metricDeploy: 3}
	var keys []provKey
	for k := range s {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.cas != b.cas {
			return a.cas == caseBarePXE
		}
		if rank[a.metric] != rank[b.metric] {
			return rank[a.metric] < rank[b.metric]
		}
		return a.nodes < b.nodes
	})
	var out []Result
	for _, k := range keys {
		out = append(out, newResult("provision", k.cas, map[string]any{"nodes": k.nodes}, k.metric, "s", s[k]))
	}
	return append(out, s.ratios()...)
}

// provRatio is a ratio of two series taken run by run.
type provRatio struct {
	metric   string // its name in the results
	num, den provKey
}

// ratioMetric names the per-run ratio of metric (enrol_s) over another
// series: enrol_vs_1 (over one node), enrol_vs_bare (over the floor).
func ratioMetric(metric, over string) string {
	return strings.TrimSuffix(metric, "_s") + "_vs_" + over
}

// provRatiosFor lists the per-run ratios the goals are about, for the
// node counts measured: each count against one node (the floor's too),
// and enrolment and deploy against the floor at the same count.
func provRatiosFor(counts []int) []provRatio {
	var rs []provRatio
	for _, n := range counts {
		if n == 1 {
			continue
		}
		for _, k := range []provKey{{caseBarePXE, metricBootS, n}, {caseRackstack, metricEnrol, n}, {caseRackstack, metricDeploy, n}} {
			one := k
			one.nodes = 1
			rs = append(rs, provRatio{metric: ratioMetric(k.metric, "1"), num: k, den: one})
		}
	}
	for _, n := range counts {
		for _, m := range []string{metricEnrol, metricDeploy} {
			rs = append(rs, provRatio{metric: ratioMetric(m, "bare"),
				num: provKey{caseRackstack, m, n}, den: provKey{caseBarePXE, metricBootS, n}})
		}
	}
	return rs
}

// pairs divides num's sample of each run by den's of the same run; nil
// when the series do not pair up run for run.
func pairs(num, den []float64) []float64 {
	if len(num) == 0 || len(num) != len(den) {
		return nil
	}
	out := make([]float64, len(num))
	for i := range num {
		if den[i] <= 0 {
			return nil
		}
		out[i] = num[i] / den[i]
	}
	return out
}

// ratios are the results of the per-run ratios: unit "x", the median of
// the runs' ratios (not the ratio of the medians), under the numerator's
// case and nodes.
func (s provSamples) ratios() []Result {
	var counts []int
	seen := map[int]bool{}
	for k := range s {
		if !seen[k.nodes] {
			seen[k.nodes] = true
			counts = append(counts, k.nodes)
		}
	}
	sort.Ints(counts)
	var out []Result
	for _, r := range provRatiosFor(counts) {
		if ps := pairs(s[r.num], s[r.den]); ps != nil {
			out = append(out, newResult("provision", r.num.cas, map[string]any{"nodes": r.num.nodes}, r.metric, "x", ps))
		}
	}
	// n machines against one, over the floor's same ratio in the same
	// run: what Rackstack adds to the slowdown the emulated machines
	// bring on their own when they share the host's cores.
	for _, n := range counts {
		if n == 1 {
			continue
		}
		floor := pairs(s[provKey{caseBarePXE, metricBootS, n}], s[provKey{caseBarePXE, metricBootS, 1}])
		for _, m := range []string{metricEnrol, metricDeploy} {
			own := pairs(s[provKey{caseRackstack, m, n}], s[provKey{caseRackstack, m, 1}])
			if ps := pairs(own, floor); ps != nil {
				out = append(out, newResult("provision", caseRackstack, map[string]any{"nodes": n}, ratioMetric(m, "1")+"_over_floor", "x", ps))
			}
		}
	}
	return out
}

// provGoal is one of the targets: num over den must stay at or
// below max. floor, when set, is the same ratio of the bare PXE floor,
// shown beside it: how much of a slowdown the emulated machines bring.
type provGoal struct {
	label    string
	num, den provKey
	floor    *provRatio
	max      float64
}

// provGoalsFor lists the goals for the node counts measured: enrolment
// and deploy against the bare PXE boot at each count, and the largest
// count against one node.
func provGoalsFor(counts []int) []provGoal {
	var gs []provGoal
	for _, n := range counts {
		gs = append(gs,
			provGoal{label: fmt.Sprintf("enrolment vs bare PXE boot, nodes=%d", n),
				num: provKey{caseRackstack, metricEnrol, n}, den: provKey{caseBarePXE, metricBootS, n}, max: 1.2},
			provGoal{label: fmt.Sprintf("deploy of the test image vs bare PXE boot, nodes=%d", n),
				num: provKey{caseRackstack, metricDeploy, n}, den: provKey{caseBarePXE, metricBootS, n}, max: 2})
	}
	for _, n := range counts {
		if n == 1 {
			continue
		}
		floor := &provRatio{num: provKey{caseBarePXE, metricBootS, n}, den: provKey{caseBarePXE, metricBootS, 1}}
		for _, m := range []string{metricEnrol, metricDeploy} {
			gs = append(gs, provGoal{label: fmt.Sprintf("%s, %d nodes at once vs one", m, n),
				num: provKey{caseRackstack, m, n}, den: provKey{caseRackstack, m, 1}, floor: floor, max: 1.3})
		}
	}
	return gs
}

// provCheck is a goal evaluated on a run's results: the ratio of the
// medians, and the median of the ratios within each run, which is what
// the verdict reads when the runs pair up (a run's load weighs on both
// sides of its own ratio alike).
type provCheck struct {
	goal       provGoal
	num, den   float64   // medians
	pairs      []float64 // num ÷ den run by run
	floorPairs []float64 // the floor's same ratio run by run
	found      bool
}

// ratio is the verdict's ratio: the median of the runs' ratios, or the
// ratio of the medians when runs do not pair up.
func (c provCheck) ratio() float64 {
	if len(c.pairs) > 0 {
		return median(c.pairs)
	}
	return c.num / c.den
}

func (c provCheck) met() bool { return c.found && c.ratio() <= c.goal.max }

func fmtRatios(xs []float64) string {
	var ps []string
	for _, x := range xs {
		ps = append(ps, fmt.Sprintf("%.2f", x))
	}
	return strings.Join(ps, " ")
}

func (c provCheck) String() string {
	target := fmt.Sprintf("target ≤%.1f×", c.goal.max)
	if !c.found {
		return fmt.Sprintf("%s: %s: not measured", c.goal.label, target)
	}
	verdict := "not met"
	if c.met() {
		verdict = "met"
	}
	s := fmt.Sprintf("%s: medians %.1f s / %.1f s = %.2f×", c.goal.label, c.num, c.den, c.num/c.den)
	if len(c.pairs) > 0 {
		s += fmt.Sprintf("; run by run %s, median %.2f×", fmtRatios(c.pairs), median(c.pairs))
	}
	if len(c.floorPairs) > 0 {
		fl := median(c.floorPairs)
		s += fmt.Sprintf("; the bare PXE floor's own: %s, median %.2f× (rackstack ÷ floor %.2f×)", fmtRatios(c.floorPairs), fl, c.ratio()/fl)
	}
	return fmt.Sprintf("%s, %s: %s", s, target, verdict)
}

// provisionGoals evaluates every goal the results' node counts allow.
func provisionGoals(rs []Result) []provCheck {
	series := map[provKey][]float64{}
	medians := map[provKey]float64{}
	seen := map[int]bool{}
	var counts []int
	for _, r := range rs {
		if r.Suite != "provision" || r.Unit != "s" {
			continue
		}
		n := paramInt(r.Params, "nodes")
		k := provKey{r.Case, r.Metric, n}
		medians[k], series[k] = r.Median, r.Runs
		if !seen[n] {
			seen[n] = true
			counts = append(counts, n)
		}
	}
	sort.Ints(counts)
	if len(counts) == 0 {
		counts = []int{1}
	}
	var out []provCheck
	for _, g := range provGoalsFor(counts) {
		num, ok1 := medians[g.num]
		den, ok2 := medians[g.den]
		c := provCheck{goal: g, num: num, den: den, found: ok1 && ok2 && den > 0}
		if c.found {
			c.pairs = pairs(series[g.num], series[g.den])
			if g.floor != nil {
				c.floorPairs = pairs(series[g.floor.num], series[g.floor.den])
			}
		}
		out = append(out, c)
	}
	return out
}

func printProvisionGoals(w io.Writer, cs []provCheck) {
	fmt.Fprintln(w, "\nprovision goals (the median of each run's own ratio where runs pair up; guests are emulated, TCG):")
	for _, c := range cs {
		fmt.Fprintln(w, "  "+c.String())
	}
}

// provBench runs the cases and keeps their samples.
type provBench struct {
	o        options
	pr       provPrereqs
	seg      *provSegment // rackd's
	floor    *provSegment // the bare PXE floor's
	c        *provCloud
	dir      string
	samples  provSamples
	seq      int // machines made so far: each gets a fresh MAC
	machines []*provMachine
}

// newMachines makes n fresh machines on seg.
func (b *provBench) newMachines(seg *provSegment, n int) ([]*provMachine, error) {
	var ms []*provMachine
	for i := 0; i < n; i++ {
		b.seq++
		m, err := newProvMachine(seg, b.dir, b.seq)
		if m != nil {
			b.machines = append(b.machines, m)
		}
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// powerOffAll stops every machine's QEMU and BMC (by the PID the machine
// recorded).
func (b *provBench) powerOffAll() {
	for _, m := range b.machines {
		m.close(b.o.Log)
	}
	b.machines = nil
}

// powerOnAll powers the machines on through their BMCs at once and
// returns when the calls were sent.
func powerOnAll(ctx context.Context, ms []*provMachine) (time.Time, error) {
	start := time.Now()
	errs := make(chan error, len(ms))
	for _, m := range ms {
		go func() { errs <- m.bmcPower(ctx, "On") }()
	}
	var err error
	for range ms {
		err = errors.Join(err, <-errs)
	}
	return start, err
}

// barePXE boots n machines through the stub and times each to its
// agent's first request; run 0 is the warm-up, not recorded.
func (b *provBench) barePXE(ctx context.Context, stub *barePXEServer, run, n int) error {
	ms, err := b.newMachines(b.floor, n)
	if err != nil {
		return err
	}
	defer func() {
		for _, m := range ms {
			m.close(b.o.Log)
		}
	}()
	start, err := powerOnAll(ctx, ms)
	if err != nil {
		return err
	}
	var last time.Duration
	for _, m := range ms {
		at, err := stub.waitAgent(ctx, m.mac, phaseTimeout)
		if err != nil {
			return fmt.Errorf("%s: %w\nconsole:\n%s", m.name, err, m.consoleTail(15))
		}
		last = max(last, at.Sub(start))
	}
	if run == 0 {
		fmt.Fprintf(b.o.Log, "provision warm-up, bare-pxe nodes=%d: power-on → agent's first request %.1f s (not counted)\n", n, last.Seconds())
		return nil
	}
	for _, m := range ms {
		rows := nodeTimeline(nil, "", m.watch.since(start), start)
		printTimeline(b.o.Log, fmt.Sprintf("  boot timeline, run %d bare-pxe nodes=%d (%s): s from power-on (step's length), QEMU CPU-s of the boot (step's)", run, n, m.name), rows, start)
	}
	b.samples.add(caseBarePXE, metricBootS, n, last.Seconds())
	fmt.Fprintf(b.o.Log, "provision run %d, bare-pxe nodes=%d: power-on → agent's first request %.1f s (load %s)\n", run, n, last.Seconds(), loadAvg())
	return nil
}

// phaseTimeout bounds each wait of the suite.
const phaseTimeout = 10 * time.Minute

// rackstack discovers, prepares and deploys n fresh machines.
func (b *provBench) rackstack(ctx context.Context, run, n int) error {
	ms, err := b.newMachines(b.seg, n)
	if err != nil {
		return err
	}
	defer func() {
		for _, m := range ms {
			m.close(b.o.Log)
		}
	}()
	start, err := powerOnAll(ctx, ms)
	if err != nil {
		return err
	}
	ids, err := b.c.waitEnrolled(ctx, ms, phaseTimeout)
	if err != nil {
		return err
	}
	enrol := time.Since(start)
	fmt.Fprintf(b.o.Log, "provision run %d, rackstack nodes=%d: power-on → enrolled with inventory %.1f s (load %s)\n", run, n, enrol.Seconds(), loadAvg())
	for _, m := range ms {
		rows := nodeTimeline(nil, "", m.watch.since(start), start)
		printTimeline(b.o.Log, fmt.Sprintf("  enrol timeline, run %d nodes=%d, node %s (%s): s from power-on (step's length), QEMU CPU-s of the boot (step's)", run, n, ids[m], m.name), rows, start)
	}

	// Not timed: discovery powers the machine off; then BMC, manage.
	for _, m := range ms {
		if err := m.waitOff(ctx, 2*time.Minute); err != nil {
			return err
		}
	}
	for _, m := range ms {
		if err := b.c.setBMC(ctx, ids[m], m); err != nil {
			return err
		}
		if err := b.c.provisionState(ctx, ids[m], "manage"); err != nil {
			return err
		}
	}
	if err := b.c.waitStates(ctx, ids, "manageable", phaseTimeout); err != nil {
		return err
	}
	cleanStart := time.Now()
	for _, m := range ms {
		if err := b.c.provisionState(ctx, ids[m], "provide"); err != nil {
			return err
		}
	}
	if err := b.c.waitStates(ctx, ids, "available", phaseTimeout); err != nil {
		return err
	}
	clean := time.Since(cleanStart)
	fmt.Fprintf(b.o.Log, "provision run %d, rackstack nodes=%d: provide → available (cleaned) %.1f s\n", run, n, clean.Seconds())

	rackdCPU := b.c.cpu()
	deployStart, deploy, err := b.c.deploy(ctx, fmt.Sprintf("rb-r%d-n%d", run, n), n, phaseTimeout)
	if err != nil {
		return err
	}
	fmt.Fprintf(b.o.Log, "provision run %d, rackstack nodes=%d: POST /servers → ACTIVE %.1f s (rackd %.1f CPU-s; load %s)\n", run, n, deploy.Seconds(), (b.c.cpu() - rackdCPU).Seconds(), loadAvg())
	events := readNodeEvents(b.c.logPath())
	for _, m := range ms {
		rows := nodeTimeline(events, ids[m], m.watch.since(deployStart), deployStart)
		printTimeline(b.o.Log, fmt.Sprintf("  deploy timeline, run %d nodes=%d, node %s (%s): s from POST /servers (step's length), QEMU CPU-s of the boot (step's)", run, n, ids[m], m.name), rows, deployStart)
	}
	b.samples.add(caseRackstack, metricEnrol, n, enrol.Seconds())
	b.samples.add(caseRackstack, metricClean, n, clean.Seconds())
	b.samples.add(caseRackstack, metricDeploy, n, deploy.Seconds())
	return nil
}
