package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// The SDK cases drive each server with minio-go, the SDK the warp
// benchmark uses, in warp's pattern: a PUT phase (each worker uploads
// objects of its own for the run's duration; minio-go uploads an object
// above 16 MiB as a multipart upload of 16 MiB parts, four at a time), a
// GET phase over random objects of that phase with the page cache
// dropped, and a delete phase. Each case reports MiB/s and the server's
// peak resident memory while it ran. Servers run side by side and the
// cases interleave, so a busy machine weighs on both alike.

// sdkTarget is an S3 server under test.
type sdkTarget struct {
	name   string
	pid    int
	client *minio.Client
	stop   func()
	prof   *caseProfiler // nil: not profiled
}

// sdkSizes parses a list of sizes ("4KiB,1MiB,64MiB") given to the flag
// named flagName.
func sdkSizes(flagName, spec string) ([]objectSize, error) {
	var out []objectSize
	for _, f := range strings.Split(spec, ",") {
		f = strings.TrimSpace(f)
		num, unit := f, 1
		for suffix, mult := range map[string]int{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
			if v, ok := strings.CutSuffix(f, suffix); ok {
				num, unit = v, mult
			}
		}
		n, err := strconv.Atoi(num)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%s: %q is not a size like 4KiB, 1MiB or 64MiB", flagName, f)
		}
		out = append(out, objectSize{name: f, size: n * unit})
	}
	return out, nil
}

type objectSize struct {
	name string
	size int
}

var sdkConcurrency = []int{1, 8}

// cpuMetrics are a case's throughputs and CPU per MiB, server and client.
var cpuMetrics = []string{"put_throughput", "get_throughput", "put_server_cpu", "put_client_cpu", "get_server_cpu", "get_client_cpu"}

// plainMetrics are a case's figures of its GET phase read again by a
// plain HTTP client (plainGet).
var plainMetrics = []string{"get_plain_throughput", "get_plain_server_cpu", "get_plain_client_cpu"}

// storageSDK runs the SDK cases against rackd and, where a minio binary
// is found, MinIO on the same disk.
func storageSDK(ctx context.Context, o options, dir string) ([]Result, error) {
	sizes, err := sdkSizes("--sizes", o.Sizes)
	if err != nil {
		return nil, err
	}
	p, c, err := startStorageNode(o, filepath.Join(dir, "sdk-rackstack"))
	if err != nil {
		return nil, err
	}
	defer p.kill()
	rs, err := sdkClient(c.base, c.access, c.secret)
	if err != nil {
		return nil, err
	}
	targets := []*sdkTarget{{name: "rackstack", pid: p.cmd.Process.Pid, client: rs}}
	if o.Profile != "" {
		if targets[0].prof, err = newCaseProfiler(o.Profile, p); err != nil {
			return nil, fmt.Errorf("profile: %w", err)
		}
	}
	if bin := minioBinary(o); bin != "" {
		m, err := startMinIO(bin, filepath.Join(dir, "sdk-minio"))
		if err != nil {
			return nil, fmt.Errorf("minio: %w", err)
		}
		defer m.stop()
		targets = append(targets, m)
	} else {
		fmt.Fprintln(o.Log, "rackbench storage: no minio binary (--minio, PATH or beside --bin): SDK cases run against rackstack only")
	}
	ceiling, err := startCeiling()
	if err != nil {
		return nil, fmt.Errorf("ceiling: %w", err)
	}
	defer ceiling.stop()
	largest := 0
	for _, sz := range sizes {
		largest = max(largest, sz.size)
	}
	payload := make([]byte, largest)
	rand.Read(payload)
	type key struct {
		target, size string
		c            int
		metric       string
	}
	runs := map[key][]float64{}
	for run := 0; run < o.Runs; run++ {
		for _, sz := range sizes {
			for _, conc := range sdkConcurrency {
				for _, t := range targets {
					res, err := sdkCase(ctx, t, o.Duration, sz, conc, payload[:sz.size], fmt.Sprintf("%s-%s-c%d-run%d", t.name, sz.name, conc, run))
					if err != nil {
						return nil, fmt.Errorf("%s %s c=%d: %w", t.name, sz.name, conc, err)
					}
					for metric, v := range res {
						k := key{t.name, sz.name, conc, metric}
						runs[k] = append(runs[k], v)
					}
					if ctx.Err() != nil {
						return nil, ctx.Err()
					}
				}
				res, err := sdkCeiling(ctx, ceiling, o.Duration, conc, payload[:sz.size])
				if err != nil {
					return nil, fmt.Errorf("ceiling %s c=%d: %w", sz.name, conc, err)
				}
				for metric, v := range res {
					k := key{ceiling.name, sz.name, conc, metric}
					runs[k] = append(runs[k], v)
				}
			}
		}
	}
	var out []Result
	units := map[string]string{"put_throughput": "MiB/s", "get_throughput": "MiB/s", "delete_ops": "ops/s", "peak_rss": "MiB",
		"put_server_cpu": "CPU-ms/MiB", "put_client_cpu": "CPU-ms/MiB", "get_server_cpu": "CPU-ms/MiB", "get_client_cpu": "CPU-ms/MiB",
		"get_plain_throughput": "MiB/s", "get_plain_server_cpu": "CPU-ms/MiB", "get_plain_client_cpu": "CPU-ms/MiB"}
	for _, sz := range sizes {
		for _, conc := range sdkConcurrency {
			params := map[string]any{"object": sz.name, "concurrency": conc, "api": "s3", "client": "minio-go", "work": "PUT: verify chunk signatures + MD5, bytes discarded; GET: from memory"}
			for _, metric := range cpuMetrics {
				if r := runs[key{ceilingName, sz.name, conc, metric}]; len(r) > 0 {
					out = append(out, newResult("storage", ceilingName, params, metric, units[metric], r))
				}
			}
		}
	}
	for _, t := range targets {
		for _, sz := range sizes {
			for _, conc := range sdkConcurrency {
				params := map[string]any{"object": sz.name, "concurrency": conc, "api": "s3", "client": "minio-go", "disks": 6, "cache": cacheMode()}
				for _, metric := range append([]string{"put_throughput", "get_throughput", "delete_ops", "peak_rss"}, cpuMetrics[2:]...) {
					if r := runs[key{t.name, sz.name, conc, metric}]; len(r) > 0 {
						out = append(out, newResult("storage", t.name, params, metric, units[metric], r))
					}
				}
				plain := map[string]any{"object": sz.name, "concurrency": conc, "api": "s3", "client": plainClient, "disks": 6, "cache": cacheMode()}
				for _, metric := range plainMetrics {
					if r := runs[key{t.name, sz.name, conc, metric}]; len(r) > 0 {
						out = append(out, newResult("storage", t.name, plain, metric, units[metric], r))
					}
				}
			}
		}
		if hwm, err := vmHWM(t.pid); err == nil {
			out = append(out, newResult("storage", t.name, map[string]any{"api": "s3", "client": "minio-go", "over": "every SDK case"}, "peak_rss_total", "MiB", []float64{hwm}))
		}
	}
	deg, err := sdkDegraded(ctx, o, p, targets[0].prof, targets[0].client)
	if err != nil {
		return nil, fmt.Errorf("degraded: %w", err)
	}
	return append(out, deg...), nil
}

// sdkDegraded is the degraded case through minio-go: 64 MiB objects
// (multipart uploads of 16 MiB parts), read healthy and then with two data
// shards of every part gone, at concurrency 1 and 8 (degradedReads).
// degraded_ratio is each run's degraded over healthy figure.
func sdkDegraded(ctx context.Context, o options, p *proc, prof *caseProfiler, client *minio.Client) ([]Result, error) {
	bucket := fmt.Sprintf("sdk-degraded-%d", time.Now().UnixNano()%1e9)
	if err := client.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
		return nil, fmt.Errorf("make bucket: %w", err)
	}
	payload := make([]byte, 64*mib)
	rand.Read(payload)
	put := func(ctx context.Context, name string) error {
		_, err := client.PutObject(ctx, bucket, name, bytes.NewReader(payload), int64(len(payload)), minio.PutObjectOptions{})
		return err
	}
	get := func(ctx context.Context, name string) (int64, error) {
		obj, err := client.GetObject(ctx, bucket, name, minio.GetObjectOptions{})
		if err != nil {
			return 0, err
		}
		defer obj.Close()
		n, err := io.Copy(io.Discard, obj)
		if err == nil && n != int64(len(payload)) {
			err = fmt.Errorf("GET %s: %d bytes, want %d", name, n, len(payload))
		}
		return n, err
	}
	healthy, degraded, ready, peak, err := degradedReads(ctx, o, p, prof, sdkConcurrency, put, get)
	if err != nil {
		return nil, err
	}
	var out []Result
	for _, conc := range sdkConcurrency {
		params := func(extra ...string) map[string]any {
			m := map[string]any{"object": "64MiB", "concurrency": conc, "api": "s3", "client": "minio-go", "coding": "4+2", "disks": 6, "cache": cacheMode(), "read": "each object once"}
			if len(extra) > 0 {
				m["missing"] = extra[0]
			}
			return m
		}
		var ratio []float64
		for i := range degraded[conc] {
			ratio = append(ratio, degraded[conc][i]/healthy[conc][i])
		}
		out = append(out,
			newResult("storage", "rackstack", params(), "get_throughput", "MiB/s", healthy[conc]),
			newResult("storage", "rackstack", params("2 data shards"), "get_throughput", "MiB/s", degraded[conc]),
			newResult("storage", "rackstack", params("2 data shards"), "degraded_ratio", "x", ratio),
			newResult("storage", "rackstack", params("2 data shards"), "peak_rss", "MiB", peak[conc]))
	}
	return append(out, newResult("storage", "rackstack", map[string]any{"after": "SIGKILL", "until": "/healthz 200", "client": "minio-go"}, "restart", "s", ready)), nil
}

func sdkClient(base, access, secret string) (*minio.Client, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	// The region is given so that the client does not ask for the
	// bucket's location before each first request.
	return minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(access, secret, ""), Secure: u.Scheme == "https", Region: "us-east-1"})
}

// sdkCase runs the PUT, GET and delete phases of one size and
// concurrency against t, in a bucket of its own, and returns the figures.
// label names the case's profiles (--profile).
func sdkCase(ctx context.Context, t *sdkTarget, d time.Duration, sz objectSize, conc int, body []byte, label string) (map[string]float64, error) {
	bucket := fmt.Sprintf("sdk-%s-c%d-%d", strings.ToLower(sz.name), conc, time.Now().UnixNano()%1e9)
	if err := t.client.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
		return nil, fmt.Errorf("make bucket: %w", err)
	}
	peak := sampleRSS(t.pid)
	profiled := t.prof.start(ctx, label+"-put", d)
	putRate, names, cpu, err := sdkPut(ctx, t, d, conc, body, bucket)
	if err != nil {
		peak()
		return nil, fmt.Errorf("PUT: %w", err)
	}
	profiled()
	dropCaches()
	profiled = t.prof.start(ctx, label+"-get", d)
	getRate, getCPU, err := sdkGet(ctx, t, d, conc, len(body), bucket, names)
	profiled()
	if err != nil {
		peak()
		return nil, fmt.Errorf("GET: %w", err)
	}
	dropCaches()
	plainRate, plainCPU, err := plainGet(ctx, t, d, conc, len(body), bucket, names)
	if err != nil {
		peak()
		return nil, fmt.Errorf("plain GET: %w", err)
	}
	start := time.Now()
	for _, name := range names {
		if err := t.client.RemoveObject(ctx, bucket, name, minio.RemoveObjectOptions{}); err != nil {
			peak()
			return nil, fmt.Errorf("delete: %w", err)
		}
	}
	delRate := float64(len(names)) / time.Since(start).Seconds()
	t.client.RemoveBucket(ctx, bucket)
	out := map[string]float64{
		"put_throughput": putRate * float64(len(body)) / mib,
		"get_throughput": getRate * float64(len(body)) / mib,
		"delete_ops":     delRate,
		"peak_rss":       peak(),

		"get_plain_throughput": plainRate * float64(len(body)) / mib,
	}
	cpu.add(out, "put")
	getCPU.add(out, "get")
	plainCPU.add(out, "get_plain")
	return out, nil
}

// plainGet is the GET phase of a case again, read by a plain HTTP client
// instead of minio-go: each GET of a presigned URL (the same handler and
// object as the SDK's, signed in the query) read with io.Copy into
// io.Discard, as rackbench's own S3 client reads. Beside the SDK's GET it
// tells what is the server's and what the SDK's: the server's CPU per MiB
// should not differ, the client's does (minio-go's Object hands each of
// io.Copy's 8 KiB reads to a goroutine of its own).
func plainGet(ctx context.Context, t *sdkTarget, d time.Duration, conc, size int, bucket string, names []string) (float64, putCPU, error) {
	if len(names) == 0 {
		return 0, putCPU{}, errors.New("no object was uploaded")
	}
	urls := make([]string, len(names))
	for i, name := range names {
		u, err := t.client.PresignedGetObject(ctx, bucket, name, time.Hour, nil)
		if err != nil {
			return 0, putCPU{}, err
		}
		urls[i] = u.String()
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}}
	defer hc.CloseIdleConnections()
	meter := startCPU(t.pid)
	rate, lats, err := load(ctx, conc, d, func(ctx context.Context, w, i int) error {
		u := urls[mrand.IntN(len(urls))]
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", u, resp.Status)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		if err == nil && n != int64(size) {
			err = fmt.Errorf("GET %s: %d bytes, want %d", u, n, size)
		}
		return err
	})
	cpu := meter.perMiB(float64(len(lats) * size))
	return rate, cpu, err
}

// sdkGet is the GET phase of a case: conc workers read random objects of
// names (each size bytes) from bucket for d; it returns objects per
// second and the CPU per MiB read.
func sdkGet(ctx context.Context, t *sdkTarget, d time.Duration, conc, size int, bucket string, names []string) (float64, putCPU, error) {
	if len(names) == 0 {
		return 0, putCPU{}, errors.New("no object was uploaded")
	}
	meter := startCPU(t.pid)
	rate, lats, err := load(ctx, conc, d, func(ctx context.Context, w, i int) error {
		name := names[mrand.IntN(len(names))]
		obj, err := t.client.GetObject(ctx, bucket, name, minio.GetObjectOptions{})
		if err != nil {
			return err
		}
		defer obj.Close()
		n, err := io.Copy(io.Discard, obj)
		if err == nil && n != int64(size) {
			err = fmt.Errorf("GET %s: %d bytes, want %d", name, n, size)
		}
		return err
	})
	cpu := meter.perMiB(float64(len(lats) * size))
	return rate, cpu, err
}

// sdkPut is the PUT phase of a case: conc workers upload objects of
// their own into bucket for d; it returns objects per second and their
// names.
//
// It also measures, in CPU milliseconds per MiB uploaded, what the server
// (t.pid) and the client (this process) spent on the phase: figures the
// load of the machine leaves alone, where throughput is not.
func sdkPut(ctx context.Context, t *sdkTarget, d time.Duration, conc int, body []byte, bucket string) (float64, []string, putCPU, error) {
	var mu sync.Mutex
	var names []string
	meter := startCPU(t.pid)
	rate, _, err := load(ctx, conc, d, func(ctx context.Context, w, i int) error {
		name := fmt.Sprintf("w%d/o%d", w, i)
		_, err := t.client.PutObject(ctx, bucket, name, bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{})
		if err == nil {
			mu.Lock()
			names = append(names, name)
			mu.Unlock()
		}
		return err
	})
	cpu := meter.perMiB(float64(len(names) * len(body)))
	return rate, names, cpu, err
}

// cpuMeter is the CPU time the server (pid) and this process had spent
// when a phase began.
type cpuMeter struct {
	pid              int
	server0, client0 float64
	err              error
}

func startCPU(pid int) *cpuMeter {
	s, err1 := procCPU(pid)
	c, err2 := selfCPU()
	return &cpuMeter{pid: pid, server0: s, client0: c, err: errors.Join(err1, err2)}
}

// perMiB is the CPU milliseconds per MiB of n bytes that server and
// client spent since the meter began; not ok if a reading failed.
func (m *cpuMeter) perMiB(n float64) putCPU {
	s, err1 := procCPU(m.pid)
	c, err2 := selfCPU()
	mibs := n / mib
	if errors.Join(m.err, err1, err2) != nil || mibs <= 0 {
		return putCPU{}
	}
	return putCPU{server: (s - m.server0) * 1000 / mibs, client: (c - m.client0) * 1000 / mibs, ok: true}
}

// putCPU is a phase's CPU milliseconds per MiB, server and client.
type putCPU struct {
	server, client float64
	ok             bool
}

// add sets the figures, if measured, as metrics phase_server_cpu and
// phase_client_cpu of m.
func (c putCPU) add(m map[string]float64, phase string) {
	if c.ok {
		m[phase+"_server_cpu"], m[phase+"_client_cpu"] = c.server, c.client
	}
}

// procCPU is the CPU time, user and system, a process has used, in
// seconds (/proc/PID/stat counts in clock ticks of 1/100 s on Linux).
func procCPU(pid int) (float64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: count the
	// fields after it (state is the first; utime and stime are the
	// 12th and 13th).
	i := bytes.LastIndexByte(raw, ')')
	f := strings.Fields(string(raw[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100, errors.Join(err1, err2)
}

// selfCPU is the CPU time this process has used, in seconds.
func selfCPU() (float64, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime), nil
}

// sdkCeiling runs the PUT and GET phases of a case against the ceiling
// endpoint (storage_ceiling.go) and returns their figures as sdkCase does.
func sdkCeiling(ctx context.Context, t *sdkTarget, d time.Duration, conc int, body []byte) (map[string]float64, error) {
	bucket := fmt.Sprintf("ceiling-c%d-%d", conc, time.Now().UnixNano()%1e9)
	if err := t.client.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
		return nil, fmt.Errorf("make bucket: %w", err)
	}
	putRate, names, putCPU, err := sdkPut(ctx, t, d, conc, body, bucket)
	if err != nil {
		return nil, fmt.Errorf("PUT: %w", err)
	}
	getRate, getCPU, err := sdkGet(ctx, t, d, conc, len(body), bucket, names)
	if err != nil {
		return nil, fmt.Errorf("GET: %w", err)
	}
	out := map[string]float64{
		"put_throughput": putRate * float64(len(body)) / mib,
		"get_throughput": getRate * float64(len(body)) / mib,
	}
	putCPU.add(out, "put")
	getCPU.add(out, "get")
	return out, nil
}

// sampleRSS watches a process's resident memory until the returned
// function is called, which returns the highest figure seen, in MiB.
// (VmHWM is the peak over the whole life of the process, not of a case.)
func sampleRSS(pid int) func() float64 {
	stop, done := make(chan struct{}), make(chan float64, 1)
	go func() {
		var peak float64
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if v, err := procStatusMiB(pid, "VmRSS:"); err == nil {
				peak = max(peak, v)
			}
			select {
			case <-stop:
				done <- peak
				return
			case <-t.C:
			}
		}
	}()
	return func() float64 {
		close(stop)
		return <-done
	}
}

// procStatusMiB reads a kB field of /proc/PID/status in MiB.
func procStatusMiB(pid int, field string) (float64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// minioBinary finds a minio server binary: --minio, then PATH, then
// beside --bin; "" if there is none.
func minioBinary(o options) string {
	if o.MinIO != "" {
		return o.MinIO
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p
	}
	if p := filepath.Join(o.BinDir, "minio"); fileExists(p) {
		return p
	}
	return ""
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// startMinIO starts MinIO on six directories of dir with EC:2, the
// coding rackd gives six disks (4+2).
func startMinIO(bin, dir string) (*sdkTarget, error) {
	addr, err1 := freeAddr()
	console, err2 := freeAddr()
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	args := []string{"server", "--quiet", "--address", addr, "--console-address", console}
	for i := 0; i < 6; i++ {
		args = append(args, filepath.Join(dir, fmt.Sprintf("d%d", i)))
	}
	const user, password = "rackbench", "rackbench-secret"
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+user, "MINIO_ROOT_PASSWORD="+password,
		"MINIO_STORAGE_CLASS_STANDARD=EC:2",
		// The six directories share one filesystem, as rackd's do here;
		// MinIO refuses that outside CI mode.
		"MINIO_CI_CD=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logf, err := os.Create(filepath.Join(dir, "minio.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	stop := func() {
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
	c, err := sdkClient("http://"+addr, user, password)
	if err != nil {
		stop()
		return nil, err
	}
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := c.ListBuckets(ctx)
		cancel()
		if err == nil {
			break
		}
		if i == 150 {
			stop()
			return nil, fmt.Errorf("minio not answering on %s: %w (log: %s)", addr, err, filepath.Join(dir, "minio.log"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	return &sdkTarget{name: "minio", pid: cmd.Process.Pid, client: c, stop: stop}, nil
}
