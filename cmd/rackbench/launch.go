package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// launchSuite measures how long a server takes to come up on a one-node
// Rackstack (a rackd started here with compute and the dataplane on, guests
// under TCG), talking to its APIs over HTTP, with the image already cached
// on the node (a warm-up launch fetches it):
//
//   - control_overhead_ms: POST /servers → the client sees ACTIVE (GET
//     /servers/detail every 10 ms; the agent reports ACTIVE once QEMU runs);
//   - qemu_start_ms: POST → the guest's QEMU process started (the start
//     time of the daemonized VM process in /proc/<pid>/stat): the control
//     plane's part alone; ACTIVE adds QEMU's own start-up up to its first
//     QMP answer, the agent's report through Raft, and the poll;
//   - guest_boot_s and guest_ready_s: POST → the test image's console
//     markers "booted" and "ready" (os-getConsoleOutput every 200 ms);
//   - rackd_rss_per_vm_mib: rackd's RSS with the burst's guests running
//     less its RSS with none, per guest; qemu_rss_mib: a guest's QEMU once
//     it is ready.
//
// Each run launches one server on its own; ten in waves of two, each
// booted until ready and deleted before the next wave (at most two guests
// boot at once: TCG on two cores); and a burst whose POSTs are all sent at
// once, ten or as many as the node takes (the scheduler overcommits vCPUs
// 4×: eight 1-vCPU servers on two cores), for the control-plane figures
// only: so many TCG guests booting together would say nothing about
// booting, so they are deleted once all are ACTIVE. Every server is deleted,
// and gone, before the next launch. Cases are params launches and at_once;
// p50 is each metric's median over every launch of the case, p95 is the
// metric with the suffix _p95.
func launchSuite(ctx context.Context, o options) ([]Result, error) {
	image, err := launchPrereqs(o)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Log, "launch: starting rackd (compute on, accel tcg) with image %s\n", image)
	c, err := startLaunchCloud(ctx, o, image)
	if err != nil {
		return nil, fmt.Errorf("set up the cloud: %w", err)
	}
	defer c.close()
	b := &launchBench{c: c, log: o.Log, hz: clockTicks(), samples: map[launchKey][]float64{}, burst: min(queued, c.capacity)}
	if b.burst < queued {
		fmt.Fprintf(o.Log, "launch: the node takes %d 1-vCPU servers at once (the scheduler's %d× vCPU overcommit): the burst is %d launches, not %d\n",
			c.capacity, cpuOvercommit, b.burst, queued)
	}

	// Warm-up: the node fetches the image into its cache, and QEMU,
	// genisoimage and qemu-img get into the page cache.
	if _, err := b.launch(ctx, "warm-up", 1, false); err != nil {
		return nil, fmt.Errorf("warm-up launch: %w", err)
	}
	for run := 1; run <= o.Runs; run++ {
		if err := b.single(ctx, run); err != nil {
			return nil, fmt.Errorf("run %d, one launch: %w", run, err)
		}
		if err := b.waves(ctx, run); err != nil {
			return nil, fmt.Errorf("run %d, %d launches in waves of %d: %w", run, queued, waveSize, err)
		}
		if err := b.burstAtOnce(ctx, run); err != nil {
			return nil, fmt.Errorf("run %d, %d launches at once: %w", run, b.burst, err)
		}
	}
	out := b.results()
	printLaunchGoals(o.Log, launchGoals(out))
	return out, nil
}

// launchPrereqs says what is missing and returns the image path.
func launchPrereqs(o options) (string, error) {
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("%w: the launch suite needs root: rackd creates taps, loads BPF programs and runs QEMU", errNeed)
	}
	var missing []string
	for _, tool := range []string{"qemu-system-x86_64", "qemu-img", "genisoimage", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("%w: %s not found (apt-get install qemu-system-x86 qemu-utils genisoimage iproute2)", errNeed, strings.Join(missing, ", "))
	}
	if _, err := os.Stat(filepath.Join(o.BinDir, "rackd")); err != nil {
		return "", fmt.Errorf("%w: rackd not found in %s (build with make build, or pass --bin)", errNeed, o.BinDir)
	}
	image, err := findTestImage(o.Image, o.BinDir)
	if err != nil {
		return "", fmt.Errorf("%w: %v", errNeed, err)
	}
	return image, nil
}

const testImagePath = "build/test-image.qcow2"

// findTestImage returns the image given by --image, or else the test image
// found by findBuilt.
func findTestImage(flagged, binDir string) (string, error) {
	if flagged != "" {
		if _, err := os.Stat(flagged); err != nil {
			return "", fmt.Errorf("--image: %w", err)
		}
		return filepath.Abs(flagged)
	}
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	if p, ok := findBuilt(testImagePath, binDir, exists); ok {
		return p, nil
	}
	return "", fmt.Errorf("no %s in the current directory, the directories above it or beside %s: run make test-image, or pass --image", testImagePath, binDir)
}

// findBuilt looks for what make built at rel (build/…) in the current
// directory or one above it (the repository), or beside the bin directory
// rackbench runs from (make build's bin/), and returns the first path ok
// accepts, absolute.
func findBuilt(rel, binDir string, ok func(string) bool) (string, bool) {
	var tried []string
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			tried = append(tried, filepath.Join(dir, rel))
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	if binDir != "" {
		tried = append(tried, filepath.Join(binDir, "..", rel))
	}
	for _, p := range tried {
		if ok(p) {
			abs, err := filepath.Abs(p)
			return abs, err == nil
		}
	}
	return "", false
}

// launchKey names one series of samples: a metric of one case.
type launchKey struct {
	metric   string
	launches int
	atOnce   int
}

const (
	metricControl   = "control_overhead_ms"
	metricQEMUStart = "qemu_start_ms"
	metricBoot      = "guest_boot_s"
	metricReady     = "guest_ready_s"
	metricQEMURSS   = "qemu_rss_mib"
	metricRackdVM   = "rackd_rss_per_vm_mib"
	metricRackdRSS  = "rackd_rss_mib"

	queued   = 10 // launches of the "10 launches" cases
	waveSize = 2

	markerBooted = "RACKSTACK-TEST-IMAGE: booted"
	markerReady  = "RACKSTACK-TEST-IMAGE: ready"
)

// launchBench runs the launches and keeps their samples.
type launchBench struct {
	c       *launchCloud
	log     io.Writer
	hz      int
	burst   int // servers launched at once in the burst
	samples map[launchKey][]float64
}

func (b *launchBench) add(metric string, launches, atOnce int, v float64) {
	k := launchKey{metric, launches, atOnce}
	b.samples[k] = append(b.samples[k], v)
}

// serverLaunch is one server's way from POST to ready.
type serverLaunch struct {
	name, id  string
	posted    time.Time     // just before the POST was sent
	postedAt  time.Duration // the same moment on the boot clock
	answered  time.Duration // POST → its 202
	active    time.Duration // POST → ACTIVE seen
	qemuStart time.Duration // POST → QEMU process started
	qemuPID   int
	booted    time.Duration // POST → "booted" on the console
	ready     time.Duration // POST → "ready" on the console
	qemuRSS   float64       // MiB, at ready
}

// single launches one server, boots it to ready and deletes it.
func (b *launchBench) single(ctx context.Context, run int) error {
	ls, err := b.launch(ctx, fmt.Sprintf("r%d-one", run), 1, true)
	if err != nil {
		return err
	}
	l := ls[0]
	b.addControl(1, 1, l)
	b.addGuest(1, 1, l)
	fmt.Fprintf(b.log, "launch run %d, 1 launch: POST answered %.0f ms, QEMU started %.0f ms, ACTIVE %.0f ms, booted %.1f s, ready %.1f s, QEMU RSS %.0f MiB\n",
		run, ms(l.answered), ms(l.qemuStart), ms(l.active), l.booted.Seconds(), l.ready.Seconds(), l.qemuRSS)
	return nil
}

// burstAtOnce sends b.burst POSTs at once and measures until all are
// ACTIVE, and rackd's memory with them running.
func (b *launchBench) burstAtOnce(ctx context.Context, run int) error {
	pid := b.c.rackd.cmd.Process.Pid
	before, err := settledRSS(ctx, pid)
	if err != nil {
		return err
	}
	var after float64
	ls, err := b.launchThen(ctx, fmt.Sprintf("r%d-burst", run), b.burst, false, func() error {
		var err error
		after, err = settledRSS(ctx, pid)
		return err
	})
	if err != nil {
		return err
	}
	var act, start []float64
	for _, l := range ls {
		b.addControl(b.burst, b.burst, l)
		act, start = append(act, ms(l.active)), append(start, ms(l.qemuStart))
	}
	perVM := (after - before) / float64(b.burst)
	b.add(metricRackdRSS, b.burst, 0, before)
	b.add(metricRackdRSS, b.burst, b.burst, after)
	b.add(metricRackdVM, b.burst, b.burst, perVM)
	fmt.Fprintf(b.log, "launch run %d, %d launches at once: ACTIVE p50 %.0f ms p95 %.0f ms, QEMU started p50 %.0f ms p95 %.0f ms; rackd RSS %.1f → %.1f MiB (%.2f MiB per VM)\n",
		run, b.burst, quantile(act, 50), quantile(act, 95), quantile(start, 50), quantile(start, 95), before, after, perVM)
	return nil
}

// waves launches ten servers two at a time, each pair booted to ready and
// deleted before the next; control overhead is measured too, with the two
// POSTs sent at once.
func (b *launchBench) waves(ctx context.Context, run int) error {
	var boot, ready []float64
	var act []float64
	for w := 1; w <= queued/waveSize; w++ {
		ls, err := b.launch(ctx, fmt.Sprintf("r%d-wave%d", run, w), waveSize, true)
		if err != nil {
			return err
		}
		for _, l := range ls {
			b.addControl(queued, waveSize, l)
			b.addGuest(queued, waveSize, l)
			act = append(act, ms(l.active))
			boot, ready = append(boot, l.booted.Seconds()), append(ready, l.ready.Seconds())
		}
	}
	fmt.Fprintf(b.log, "launch run %d, %d launches in waves of %d: ACTIVE p50 %.0f ms, booted p50 %.1f s p95 %.1f s, ready p50 %.1f s p95 %.1f s\n",
		run, queued, waveSize, quantile(act, 50), quantile(boot, 50), quantile(boot, 95), quantile(ready, 50), quantile(ready, 95))
	return nil
}

func (b *launchBench) addControl(launches, atOnce int, l *serverLaunch) {
	b.add(metricControl, launches, atOnce, ms(l.active))
	b.add(metricQEMUStart, launches, atOnce, ms(l.qemuStart))
}

func (b *launchBench) addGuest(launches, atOnce int, l *serverLaunch) {
	b.add(metricBoot, launches, atOnce, l.booted.Seconds())
	b.add(metricReady, launches, atOnce, l.ready.Seconds())
	b.add(metricQEMURSS, launches, atOnce, l.qemuRSS)
}

// launch creates n servers at once, follows them to ACTIVE (and with boot,
// to ready), and deletes them.
func (b *launchBench) launch(ctx context.Context, prefix string, n int, boot bool) ([]*serverLaunch, error) {
	return b.launchThen(ctx, prefix, n, boot, nil)
}

// launchThen is launch with a step run while the servers still exist.
func (b *launchBench) launchThen(ctx context.Context, prefix string, n int, boot bool, while func() error) ([]*serverLaunch, error) {
	ls := make([]*serverLaunch, n)
	for i := range ls {
		ls[i] = &serverLaunch{name: fmt.Sprintf("rb-%s-%d", prefix, i+1)}
	}
	err := b.follow(ctx, ls, boot)
	if err == nil && while != nil {
		err = while()
	}
	var ids []string
	for _, l := range ls {
		if l.id != "" {
			ids = append(ids, l.id)
		}
	}
	if derr := b.c.deleteServers(ctx, ids, 2*time.Minute); derr != nil && err == nil {
		err = fmt.Errorf("delete: %w", derr)
	}
	return ls, err
}

// follow sends the POSTs together and waits for every server to turn
// ACTIVE, then finds its QEMU; with boot it then waits for the console
// markers.
func (b *launchBench) follow(ctx context.Context, ls []*serverLaunch, boot bool) error {
	// The POSTs leave together: each goroutine waits at the gate, and each
	// launch counts from the gate's opening, so a POST the server queues
	// behind the others counts its wait.
	gate := make(chan struct{})
	errs := make(chan error, len(ls))
	var mu sync.Mutex // guards the ids the POSTs fill in
	for _, l := range ls {
		go func() {
			<-gate
			id, err := b.c.createServer(ctx, l.name)
			mu.Lock()
			l.id, l.answered = id, time.Since(l.posted)
			if id != "" {
				b.c.servers[id] = true
			}
			mu.Unlock()
			errs <- err
		}()
	}
	postedAt, posted := bootClock(), time.Now()
	for _, l := range ls {
		l.postedAt, l.posted = postedAt, posted
	}
	close(gate)

	// Poll until all are ACTIVE; servers are matched by name, so one that
	// turns ACTIVE before its POST answered counts too.
	byName := map[string]*serverLaunch{}
	for _, l := range ls {
		byName[l.name] = l
	}
	var postErr error
	answered := 0
	waiting := len(ls)
	err := poll(ctx, 10*time.Millisecond, 2*time.Minute, "ACTIVE servers", func() (bool, error) {
	drain:
		for answered < len(ls) {
			select {
			case err := <-errs:
				answered++
				if err != nil && postErr == nil {
					postErr = err
				}
			default:
				break drain
			}
		}
		if postErr != nil {
			return false, fmt.Errorf("create server: %w", postErr)
		}
		list, err := b.c.listServers(ctx)
		if err != nil {
			return false, err
		}
		seen := time.Now() // when the client learnt it: the answer's arrival
		for _, s := range list {
			l := byName[s.Name]
			if l == nil || l.active != 0 {
				continue
			}
			switch s.Status {
			case "ACTIVE":
				l.active = seen.Sub(l.posted)
				waiting--
			case "ERROR":
				msg := ""
				if s.Fault != nil {
					msg = s.Fault.Message
				}
				return false, fmt.Errorf("server %s (%s) is ERROR: %s", s.Name, s.ID, msg)
			}
		}
		return waiting == 0, nil
	})
	for answered < len(ls) { // every POST answers within the client's timeout
		if err := <-errs; err != nil && postErr == nil {
			postErr = err
		}
		answered++
	}
	if err != nil {
		return err
	}
	if postErr != nil {
		return fmt.Errorf("create server: %w", postErr)
	}
	procs, err := qemuProcesses(b.c.runDir)
	if err != nil {
		return err
	}
	for _, l := range ls {
		pid, ok := procs[l.id]
		if !ok {
			return fmt.Errorf("server %s is ACTIVE but no QEMU runs for it", l.id)
		}
		started, err := processStart(pid, b.hz)
		if err != nil {
			return fmt.Errorf("QEMU %d of %s: %w", pid, l.id, err)
		}
		l.qemuPID, l.qemuStart = pid, started-l.postedAt
	}
	if !boot {
		return nil
	}
	var wg sync.WaitGroup
	bootErrs := make([]error, len(ls))
	for i, l := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bootErrs[i] = b.waitReady(ctx, l)
		}()
	}
	wg.Wait()
	return errors.Join(bootErrs...)
}

// waitReady polls the server's console until the guest printed ready, and
// then reads its QEMU's memory.
func (b *launchBench) waitReady(ctx context.Context, l *serverLaunch) error {
	err := poll(ctx, 200*time.Millisecond, 3*time.Minute, "ready marker on "+l.name+"'s console", func() (bool, error) {
		out, err := b.c.console(ctx, l.id)
		if err != nil {
			return false, err
		}
		since := time.Since(l.posted)
		if l.booted == 0 && strings.Contains(out, markerBooted) {
			l.booted = since
		}
		if strings.Contains(out, markerReady) {
			l.ready = since
			if l.booted == 0 { // scrolled past between two polls
				l.booted = since
			}
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return err
	}
	l.qemuRSS, err = rssMiB(l.qemuPID)
	if err != nil {
		return fmt.Errorf("QEMU %d of %s: %w", l.qemuPID, l.id, err)
	}
	return nil
}

// settledRSS is rackd's RSS after a moment's quiet: the median of five
// readings 200 ms apart, one second after the call.
func settledRSS(ctx context.Context, pid int) (float64, error) {
	if !sleepCtx(ctx, time.Second) {
		return 0, ctx.Err()
	}
	var xs []float64
	for i := 0; i < 5; i++ {
		v, err := rssMiB(pid)
		if err != nil {
			return 0, fmt.Errorf("rackd RSS: %w", err)
		}
		xs = append(xs, v)
		if !sleepCtx(ctx, 200*time.Millisecond) {
			return 0, ctx.Err()
		}
	}
	return median(xs), nil
}

// quantile is the p-th percentile (0–100) of xs, interpolating between
// the two nearest samples (as numpy's default does); 0 for no samples.
func quantile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	p = min(max(p, 0), 100)
	rank := p / 100 * float64(len(s)-1)
	lo := int(rank)
	if lo >= len(s)-1 {
		return s[len(s)-1]
	}
	return s[lo] + (rank-float64(lo))*(s[lo+1]-s[lo])
}

// results turns the samples into results: per case and metric the
// samples (median = p50) and, for times, the p95.
func (b *launchBench) results() []Result {
	params := func(k launchKey) map[string]any {
		p := map[string]any{"launches": k.launches, "at_once": k.atOnce, "accel": "tcg"}
		if k.metric == metricRackdRSS || k.metric == metricRackdVM {
			p = map[string]any{"guests": k.atOnce}
		}
		if k.metric == metricQEMURSS {
			p["when"] = "ready"
			p["guest_ram_mib"] = launchFlavorRAM
		}
		return p
	}
	order := []struct {
		metric, unit string
		p95          bool
		cases        [][2]int // launches, at_once
	}{
		{metricControl, "ms", true, [][2]int{{1, 1}, {queued, waveSize}, {b.burst, b.burst}}},
		{metricQEMUStart, "ms", true, [][2]int{{1, 1}, {queued, waveSize}, {b.burst, b.burst}}},
		{metricBoot, "s", true, [][2]int{{1, 1}, {queued, waveSize}}},
		{metricReady, "s", true, [][2]int{{1, 1}, {queued, waveSize}}},
		{metricQEMURSS, "MiB", false, [][2]int{{1, 1}, {queued, waveSize}}},
		{metricRackdRSS, "MiB", false, [][2]int{{b.burst, 0}, {b.burst, b.burst}}},
		{metricRackdVM, "MiB", false, [][2]int{{b.burst, b.burst}}},
	}
	var out []Result
	for _, m := range order {
		for _, cs := range m.cases {
			k := launchKey{m.metric, cs[0], cs[1]}
			xs := b.samples[k]
			if len(xs) == 0 {
				continue
			}
			out = append(out, newResult("launch", "rackstack", params(k), m.metric, m.unit, xs))
			if m.p95 {
				p95 := quantile(xs, 95)
				out = append(out, newResult("launch", "rackstack", params(k), m.metric+"_p95", m.unit, []float64{p95}))
			}
		}
	}
	return out
}

// launchGoal is the compute goal: control overhead p50 ≤ 300 ms.
const launchGoalMS = 300

type launchCheck struct {
	launches, atOnce int
	p50, qemu        float64
	found            bool
}

func (c launchCheck) met() bool { return c.found && c.p50 <= launchGoalMS }

func (c launchCheck) String() string {
	label := fmt.Sprintf("control overhead p50, POST → ACTIVE (QEMU running), image cached, launches=%d at_once=%d", c.launches, c.atOnce)
	if !c.found {
		return fmt.Sprintf("%s: target ≤%d ms: not measured", label, launchGoalMS)
	}
	verdict := "not met"
	if c.met() {
		verdict = "met"
	}
	return fmt.Sprintf("%s: %.0f ms (POST → QEMU process started: %.0f ms), target ≤%d ms: %s", label, c.p50, c.qemu, launchGoalMS, verdict)
}

// launchGoals evaluates the goal on every case that measured control
// overhead: one launch (the goal proper), the waves and the burst.
func launchGoals(rs []Result) []launchCheck {
	var out []launchCheck
	for _, r := range rs {
		if r.Suite != "launch" || r.Metric != metricControl {
			continue
		}
		c := launchCheck{launches: paramInt(r.Params, "launches"), atOnce: paramInt(r.Params, "at_once"), p50: r.Median, found: true}
		for _, q := range rs {
			if q.Suite == "launch" && q.Metric == metricQEMUStart && paramInt(q.Params, "launches") == c.launches && paramInt(q.Params, "at_once") == c.atOnce {
				c.qemu = q.Median
			}
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		out = append(out, launchCheck{launches: 1, atOnce: 1})
	}
	return out
}

func printLaunchGoals(w io.Writer, cs []launchCheck) {
	fmt.Fprintln(w, "\nlaunch goals (p50 over this run's launches; guest boot is TCG-bound and reported apart):")
	for _, c := range cs {
		fmt.Fprintln(w, "  "+c.String())
	}
}
