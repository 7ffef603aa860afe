package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rackstack/rackstack/dataplane"
	"github.com/rackstack/rackstack/node/instances"
)

// Telemetry suite parameters.
const (
	telemetryInstances   = 50
	telemetryScrapeEvery = time.Second
	telemetryMinWindow   = 10 * time.Second
	// collectorScrapes is how many scrapes of the stand-in guests one run
	// times (their CPU time is summed, then divided).
	collectorScrapes = 200
)

// telemetrySuite measures what telemetry costs rackd: two one-node rackds
// run side by side (compute and the dataplane off, one disk each), one
// with the history sampling every 5 s (the default) and scraped at
// /metrics every second, the other with the history sampling once an hour
// and never scraped. Each run measures the CPU time (/proc/<pid>/stat) and
// RSS of each over the same window (--duration, at least 10 s), one after
// the other.
//
// The rackstack_instance_* collector runs only where guests run, and 50
// TCG guests do not fit this machine: it is timed in this process instead,
// over 50 stand-in guests — real processes (sleep) whose /proc files it
// reads as it reads QEMU's, and their taps' counters in a file laid out as
// /proc/net/dev (taps carrying no traffic would otherwise be made in the
// host's namespace). Its CPU per scrape at one
// scrape a second, plus the history's one sample every 5 s, is added to the
// measured difference of the two rackds for the estimate with 50 instances.
func telemetrySuite(ctx context.Context, o options) ([]Result, error) {
	window := max(o.Duration, telemetryMinWindow)
	dir, err := os.MkdirTemp("", "rackbench-telemetry")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	quiet, err := startTelemetryRackd(o, dir, "quiet", "--history-step", "1h")
	if err != nil {
		return nil, err
	}
	defer quiet.kill()
	busy, err := startTelemetryRackd(o, dir, "telemetry")
	if err != nil {
		return nil, err
	}
	defer busy.kill()
	pw, err := readPassword(busy.dataDir)
	if err != nil {
		return nil, err
	}
	tok, err := adminToken(busy.url(), pw)
	if err != nil {
		return nil, err
	}
	series, _, err := scrape(ctx, busy.url(), tok)
	if err != nil {
		return nil, err
	}
	guests, stop, err := standInGuests(filepath.Join(dir, "netdev"), telemetryInstances)
	defer stop()
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(&instances.Metrics{Guests: func() []instances.Guest { return guests }, Proc: "/proc", NetDev: filepath.Join(dir, "netdev")})
	fmt.Fprintf(o.Log, "telemetry: rackd pids %d (quiet) and %d (scraped, %d series); %d stand-in guests; %d runs of %s each\n",
		quiet.cmd.Process.Pid, busy.cmd.Process.Pid, series, telemetryInstances, o.Runs, window)
	// Settle: both finish starting up (bootstrap, first disk scans).
	if !sleepCtx(ctx, 5*time.Second) {
		return nil, ctx.Err()
	}
	hz := float64(clockTicks())
	var quietCPU, busyCPU, quietRSS, busyRSS, scrapeMS, collectorMS, overhead []float64
	var collectorSeries int
	for run := 0; run < o.Runs; run++ {
		q, err := cpuOver(ctx, quiet.cmd.Process.Pid, hz, window, nil)
		if err != nil {
			return nil, err
		}
		var lat []float64
		b, err := cpuOver(ctx, busy.cmd.Process.Pid, hz, window, func() error {
			start := time.Now()
			if _, _, err := scrape(ctx, busy.url(), tok); err != nil {
				return err
			}
			lat = append(lat, float64(time.Since(start).Microseconds())/1000)
			return nil
		})
		if err != nil {
			return nil, err
		}
		ms, n, err := collectorCost(reg)
		if err != nil {
			return nil, err
		}
		collectorSeries = n
		qr, _ := rssMiB(quiet.cmd.Process.Pid)
		br, _ := rssMiB(busy.cmd.Process.Pid)
		quietCPU, busyCPU = append(quietCPU, q), append(busyCPU, b)
		quietRSS, busyRSS = append(quietRSS, qr), append(busyRSS, br)
		scrapeMS = append(scrapeMS, median(lat))
		collectorMS = append(collectorMS, ms)
		// ms of CPU per scrape at one a second is ms/1000 of a core;
		// the history adds one gather every 5 s.
		est := b - q + ms/10*(1+1.0/5)
		overhead = append(overhead, est)
		fmt.Fprintf(o.Log, "telemetry: run %d: rackd %.2f%% (quiet) vs %.2f%% (scraped) of a core; 50-guest collector %.2f ms/scrape; estimate %.2f%%\n",
			run+1, q, b, ms, est)
	}
	quietParams := map[string]any{"history_step": "1h", "scrape_every": "never", "window": window.String()}
	busyParams := map[string]any{"history_step": "5s", "scrape_every": telemetryScrapeEvery.String(), "window": window.String(), "series": series}
	colParams := map[string]any{"instances": telemetryInstances, "series": collectorSeries, "guests": "stand-in processes; tap counters in a /proc/net/dev-style file"}
	estParams := map[string]any{"instances": telemetryInstances, "scrape_every": telemetryScrapeEvery.String(), "history_step": "5s"}
	return []Result{
		newResult("telemetry", "rackd-not-scraped", quietParams, "rackd_cpu", "% of a core", quietCPU),
		newResult("telemetry", "rackd-scraped", busyParams, "rackd_cpu", "% of a core", busyCPU),
		newResult("telemetry", "rackd-not-scraped", quietParams, "rackd_rss", "MiB", quietRSS),
		newResult("telemetry", "rackd-scraped", busyParams, "rackd_rss", "MiB", busyRSS),
		newResult("telemetry", "rackd-scraped", busyParams, "scrape_latency", "ms", scrapeMS),
		newResult("telemetry", "instance-collector", colParams, "cpu_per_scrape", "ms", collectorMS),
		newResult("telemetry", "overhead-estimate", estParams, "telemetry_cpu", "% of a core", overhead),
	}, nil
}

func startTelemetryRackd(o options, dir, name string, extra ...string) (*proc, error) {
	listen, err1 := freeAddr()
	raftAddr, err2 := freeAddr()
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("no free port")
	}
	data := filepath.Join(dir, name)
	p := &proc{name: name, dataDir: data, listen: listen, args: append([]string{
		"--name", name, "--data-dir", data, "--listen", listen, "--raft-listen", raftAddr, "--s3-listen", "off",
		"--disk", filepath.Join(dir, name+"-disk"), "--dataplane", "off", "--compute", "off", "--bootstrap",
	}, extra...)}
	if err := p.start(o.BinDir); err != nil {
		return nil, fmt.Errorf("start rackd %s: %w", name, err)
	}
	if err := waitHealthy(p.url(), 60*time.Second); err != nil {
		p.kill()
		return nil, err
	}
	return p, nil
}

// scrape reads /metrics once and counts its series.
func scrape(ctx context.Context, url, tok string) (int, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/metrics", nil)
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("X-Auth-Token", tok)
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("scrape %s/metrics: %d %v", url, resp.StatusCode, err)
	}
	n := 0
	for _, l := range strings.Split(string(raw), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			n++
		}
	}
	return n, int64(len(raw)), nil
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

// collectorCost times collectorScrapes scrapes of reg through the same
// promhttp handler rackd serves /metrics with, by this process's CPU time,
// and returns ms per scrape and the series count.
func collectorCost(reg *prometheus.Registry) (float64, int, error) {
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	var before, after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	for i := 0; i < collectorScrapes; i++ {
		w := &discardWriter{h: http.Header{}}
		h.ServeHTTP(w, req)
		if w.code != 0 && w.code != http.StatusOK {
			return 0, 0, fmt.Errorf("scrape the stand-in guests: status %d", w.code)
		}
	}
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	used := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	mfs, err := reg.Gather()
	if err != nil {
		return 0, 0, err
	}
	series := 0
	for _, mf := range mfs {
		series += len(mf.GetMetric())
	}
	return float64(used.Microseconds()) / 1000 / collectorScrapes, series, nil
}

// discardWriter is a ResponseWriter that keeps only the status.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// standInGuests starts n sleeping processes standing for QEMU, each with
// one port whose tap's counters are a line of netDev (a file laid out as
// /proc/net/dev), and returns them as guests; stop ends the processes.
func standInGuests(netDev string, n int) ([]instances.Guest, func(), error) {
	var procs []*exec.Cmd
	stop := func() {
		for _, c := range procs {
			c.Process.Kill()
			c.Wait()
		}
	}
	var guests []instances.Guest
	var dev strings.Builder
	dev.WriteString("Inter-|   Receive                                                |  Transmit\n" +
		" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n")
	for i := 0; i < n; i++ {
		c := exec.Command("sleep", "86400")
		if err := c.Start(); err != nil {
			return nil, stop, fmt.Errorf("start a stand-in guest: %w", err)
		}
		procs = append(procs, c)
		port := fmt.Sprintf("port-%04d-0000-4000-8000-000000000000", i)
		fmt.Fprintf(&dev, "%16s: %d %d 0 0 0 0 0 0 %d %d 0 0 0 0 0 0\n", dataplane.DeviceName(port), 1500*i, i, 900*i, i)
		guests = append(guests, instances.Guest{ServerID: fmt.Sprintf("server-%04d", i), Project: "bench", PID: c.Process.Pid, Ports: []string{port}})
	}
	return guests, stop, os.WriteFile(netDev, []byte(dev.String()), 0o644)
}
