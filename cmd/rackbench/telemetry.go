package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Telemetry suite parameters.
const (
	telemetryInstances   = 50
	telemetryScrapeEvery = time.Second
	telemetryMinWindow   = 10 * time.Second
	// telemetryGuestRAM is the bench flavor's memory: the halting guest
	// needs only what SeaBIOS does.
	telemetryGuestRAM = 64
	// telemetryBatch is how many servers are asked for at once: the node
	// starts each QEMU, its disk and config drive, and its tap.
	telemetryBatch = 10
	// haltMarker is what the halting guest writes to its serial port
	// before it halts.
	haltMarker = "rackbench guest halted"
)

// telemetrySuite measures what scraping /metrics costs rackd with real
// guests on it: a one-node rackd (compute and the dataplane on, guests
// under TCG) runs --instances servers (default 50) created through the
// API, so every rackstack_instance_* series comes from a real QEMU
// process's /proc files and its real tap's counters. The guests are the
// smallest that are real: 64 MB, and a disk whose boot sector prints a
// line on the serial port and halts (haltImage), so the 50 of them idle at
// next to no CPU on this 2-core machine, where 50 booted Linux guests
// under TCG would keep both cores busy with their timer ticks and drown
// what is measured.
//
// Each run measures rackd's CPU time (/proc/<pid>/stat) over two windows
// of the same length (--duration, at least 10 s) one after the other, one
// with /metrics scraped every second and one without, in alternating
// order from run to run; the difference is the scrapes' cost. The history
// (GET /rackstack/v1/history) samples every 5 s in both, as rackd's
// default: it is in the baseline. The guests' QEMU CPU over the run is
// reported too, to show what the machine carried.
func telemetrySuite(ctx context.Context, o options) ([]Result, error) {
	n := o.Instances
	if n <= 0 {
		n = telemetryInstances
	}
	window := max(o.Duration, telemetryMinWindow)
	if err := telemetryPrereqs(o); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "rackbench-telemetry")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	image := filepath.Join(dir, "halt.raw")
	if err := os.WriteFile(image, haltImage(), 0o644); err != nil {
		return nil, err
	}
	// One vCPU per guest: the scheduler must place n on this node's
	// cores.
	ratio := max(4, n/runtime.NumCPU()+1)
	fmt.Fprintf(o.Log, "telemetry: starting rackd (compute on, accel tcg, --cpu-allocation-ratio %d) for %d halting guests of %d MB\n", ratio, n, telemetryGuestRAM)
	c, err := startCloud(ctx, o, cloudSetup{image: image, format: "raw", ramMB: telemetryGuestRAM,
		rackdArgs: []string{"--cpu-allocation-ratio", strconv.Itoa(ratio)}})
	if err != nil {
		return nil, fmt.Errorf("set up the cloud: %w", err)
	}
	defer c.close()
	ids, err := telemetryGuests(ctx, c, n)
	defer func() {
		if derr := c.deleteServers(context.Background(), ids, 5*time.Minute); derr != nil {
			fmt.Fprintf(o.Log, "telemetry: delete servers: %v\n", derr)
		}
	}()
	if err != nil {
		return nil, err
	}
	pid := c.rackd.cmd.Process.Pid
	got, err := scrapeInstances(ctx, c.rackd.url(), c.token)
	if err != nil {
		return nil, err
	}
	if got.servers < n {
		return nil, fmt.Errorf("/metrics has rackstack_instance_* series of %d servers, not the %d running", got.servers, n)
	}
	fmt.Fprintf(o.Log, "telemetry: %d servers ACTIVE and halted; rackd pid %d serves %d series (%d rackstack_instance_*, of %d servers); %d runs of 2×%s\n",
		n, pid, got.series, got.instanceSeries, got.servers, o.Runs, window)
	hz := float64(clockTicks())
	var quietCPU, busyCPU, overhead, quietRSS, busyRSS, scrapeMS, guestsCPU []float64
	for run := 0; run < o.Runs; run++ {
		qemu, err := qemuProcesses(c.runDir)
		if err != nil {
			return nil, err
		}
		guestsBefore := sumTicks(qemu)
		start := time.Now()
		var q, b float64
		var lat []float64
		quiet := func() (err error) {
			q, err = cpuOver(ctx, pid, hz, window, nil)
			if err == nil {
				r, _ := rssMiB(pid)
				quietRSS = append(quietRSS, r)
			}
			return err
		}
		scraped := func() (err error) {
			b, err = cpuOver(ctx, pid, hz, window, func() error {
				t := time.Now()
				if _, err := scrapeInstances(ctx, c.rackd.url(), c.token); err != nil {
					return err
				}
				lat = append(lat, float64(time.Since(t).Microseconds())/1000)
				return nil
			})
			if err == nil {
				r, _ := rssMiB(pid)
				busyRSS = append(busyRSS, r)
			}
			return err
		}
		first, second := quiet, scraped
		if run%2 == 1 {
			first, second = scraped, quiet
		}
		if err := first(); err != nil {
			return nil, err
		}
		if err := second(); err != nil {
			return nil, err
		}
		g := (sumTicks(qemu) - guestsBefore) / hz / time.Since(start).Seconds() * 100
		quietCPU, busyCPU, overhead = append(quietCPU, q), append(busyCPU, b), append(overhead, b-q)
		scrapeMS, guestsCPU = append(scrapeMS, median(lat)), append(guestsCPU, g)
		fmt.Fprintf(o.Log, "telemetry: run %d: rackd %.2f%% of a core not scraped, %.2f%% scraped every %s: the scrapes cost %.2f%%; scrape %.1f ms; %d guests %.1f%%\n",
			run+1, q, b, telemetryScrapeEvery, b-q, median(lat), n, g)
	}
	params := func(scrape string) map[string]any {
		return map[string]any{"instances": n, "guest": fmt.Sprintf("%d MB, boot sector that halts, TCG", telemetryGuestRAM),
			"scrape_every": scrape, "history_step": "5s", "window": window.String()}
	}
	busyParams := params(telemetryScrapeEvery.String())
	busyParams["series"], busyParams["instance_series"] = got.series, got.instanceSeries
	return []Result{
		newResult("telemetry", "rackd-not-scraped", params("never"), "rackd_cpu", "% of a core", quietCPU),
		newResult("telemetry", "rackd-scraped", busyParams, "rackd_cpu", "% of a core", busyCPU),
		newResult("telemetry", "scrape-cost", busyParams, "telemetry_cpu", "% of a core", overhead),
		newResult("telemetry", "rackd-not-scraped", params("never"), "rackd_rss", "MiB", quietRSS),
		newResult("telemetry", "rackd-scraped", busyParams, "rackd_rss", "MiB", busyRSS),
		newResult("telemetry", "rackd-scraped", busyParams, "scrape_latency", "ms", scrapeMS),
		newResult("telemetry", "guests", params("-"), "qemu_cpu", "% of a core", guestsCPU),
	}, nil
}

// telemetryPrereqs says what the suite needs and lacks.
func telemetryPrereqs(o options) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: the telemetry suite needs root: rackd creates taps, loads BPF programs and runs QEMU", errNeed)
	}
	for _, tool := range []string{"qemu-system-x86_64", "qemu-img", "genisoimage", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%w: %s not found (apt-get install qemu-system-x86 qemu-utils genisoimage iproute2)", errNeed, tool)
		}
	}
	if _, err := os.Stat(filepath.Join(o.BinDir, "rackd")); err != nil {
		return fmt.Errorf("%w: rackd not found in %s (build with make build, or pass --bin)", errNeed, o.BinDir)
	}
	return nil
}

// haltImage is a 1 MiB raw disk whose boot sector writes haltMarker to
// the first serial port and halts with interrupts off: a guest that is a
// real QEMU process, booted by SeaBIOS, that then costs next to nothing.
func haltImage() []byte {
	code := []byte{
		0x31, 0xC0, // xor ax, ax
		0x8E, 0xD8, // mov ds, ax
		0xFC,             // cld
		0xBE, 0x17, 0x7C, // mov si, 0x7C17 (the message, below)
		0xBA, 0xF8, 0x03, // mov dx, 0x3F8 (COM1)
		0xAC,       // next: lodsb
		0x84, 0xC0, // test al, al
		0x74, 0x03, // jz halt
		0xEE,       // out dx, al
		0xEB, 0xF8, // jmp next
		0xFA,       // halt: cli
		0xF4,       // hlt
		0xEB, 0xFD, // jmp hlt (an NMI wakes it)
	}
	img := make([]byte, 1<<20)
	copy(img, code)
	copy(img[len(code):], haltMarker+"\r\n\x00")
	img[510], img[511] = 0x55, 0xAA
	return img
}

// telemetryGuests creates n servers, telemetryBatch at a time, waits for
// each to be ACTIVE and its console to show haltMarker, and returns their
// ids (those created so far on error).
func telemetryGuests(ctx context.Context, c *launchCloud, n int) ([]string, error) {
	var ids []string
	for len(ids) < n {
		batch := min(telemetryBatch, n-len(ids))
		var mu sync.Mutex
		var wg sync.WaitGroup
		var firstErr error
		for i := 0; i < batch; i++ {
			name := fmt.Sprintf("rb-telemetry-%d", len(ids)+i+1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				id, err := c.createServer(ctx, name)
				mu.Lock()
				defer mu.Unlock()
				if id != "" {
					ids = append(ids, id)
					c.servers[id] = true
				}
				if err != nil && firstErr == nil {
					firstErr = err
				}
			}()
		}
		wg.Wait()
		if firstErr != nil {
			return ids, fmt.Errorf("create server: %w", firstErr)
		}
		if err := waitHalted(ctx, c, ids); err != nil {
			return ids, err
		}
		fmt.Fprintf(c.log, "telemetry: %d of %d servers ACTIVE and halted\n", len(ids), n)
	}
	return ids, nil
}

// waitHalted waits until every server of ids is ACTIVE and its console
// shows haltMarker.
func waitHalted(ctx context.Context, c *launchCloud, ids []string) error {
	halted := map[string]bool{}
	return poll(ctx, time.Second, 5*time.Minute, "ACTIVE servers whose guests halted", func() (bool, error) {
		list, err := c.listServers(ctx)
		if err != nil {
			return false, err
		}
		status := map[string]serverState{}
		for _, s := range list {
			status[s.ID] = s
		}
		for _, id := range ids {
			if halted[id] {
				continue
			}
			s := status[id]
			switch s.Status {
			case "ERROR":
				msg := ""
				if s.Fault != nil {
					msg = s.Fault.Message
				}
				return false, fmt.Errorf("server %s is ERROR: %s", id, msg)
			case "ACTIVE":
				out, err := c.console(ctx, id)
				if err != nil {
					return false, err
				}
				halted[id] = strings.Contains(out, haltMarker)
			}
		}
		return len(halted) == len(ids) && !hasFalse(halted), nil
	})
}

func hasFalse(m map[string]bool) bool {
	for _, v := range m {
		if !v {
			return true
		}
	}
	return false
}

// instanceScrape is what one scrape of /metrics held.
type instanceScrape struct {
	series, instanceSeries int
	servers                int // distinct server_id labels of rackstack_instance_*
}

// scrapeInstances reads /metrics once, as Prometheus would, and counts its
// series and the servers its rackstack_instance_* series are of.
func scrapeInstances(ctx context.Context, url, tok string) (instanceScrape, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/metrics", nil)
	if err != nil {
		return instanceScrape{}, err
	}
	req.Header.Set("X-Auth-Token", tok)
	resp, err := client.Do(req)
	if err != nil {
		return instanceScrape{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return instanceScrape{}, fmt.Errorf("scrape %s/metrics: HTTP %d", url, resp.StatusCode)
	}
	return countInstances(resp.Body)
}

// countInstances counts the series of a Prometheus text exposition and
// the distinct servers of its rackstack_instance_* series.
func countInstances(r io.Reader) (instanceScrape, error) {
	var out instanceScrape
	servers := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		out.series++
		if !bytes.HasPrefix(line, []byte("rackstack_instance_")) {
			continue
		}
		out.instanceSeries++
		if _, rest, ok := bytes.Cut(line, []byte(`server_id="`)); ok {
			if id, _, ok := bytes.Cut(rest, []byte(`"`)); ok {
				servers[string(id)] = true
			}
		}
	}
	out.servers = len(servers)
	return out, sc.Err()
}

// cpuOver is the CPU pid used over window, in percent of one core; tick,
// if set, runs every telemetryScrapeEvery meanwhile.
func cpuOver(ctx context.Context, pid int, hz float64, window time.Duration, tick func() error) (float64, error) {
	before, err := cpuTicks(pid)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	for time.Since(start) < window {
		if tick != nil {
			if err := tick(); err != nil {
				return 0, err
			}
		}
		if !sleepCtx(ctx, min(telemetryScrapeEvery, window-time.Since(start))) {
			return 0, ctx.Err()
		}
	}
	after, err := cpuTicks(pid)
	if err != nil {
		return 0, err
	}
	return (after - before) / hz / time.Since(start).Seconds() * 100, nil
}

// sumTicks is the CPU time of the processes of pids, in clock ticks; one
// gone meanwhile counts nothing.
func sumTicks(pids map[string]int) float64 {
	var t float64
	for _, pid := range pids {
		if v, err := cpuTicks(pid); err == nil {
			t += v
		}
	}
	return t
}

// cpuTicks is a process's utime+stime, in clock ticks.
func cpuTicks(pid int) (float64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return ut + st, nil
}
