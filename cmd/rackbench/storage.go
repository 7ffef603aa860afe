package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/rackstack/rackstack/storage/blob"
	"github.com/rackstack/rackstack/storage/disk"
	"github.com/rackstack/rackstack/storage/placement"
	"github.com/rackstack/rackstack/storage/s3/sigv4"
)

// storageSuite measures the object store against the disk it runs on:
//
//   - raw-disk: sequential 1 MiB direct-I/O writes and reads of the same
//     filesystem, one stream and six (one per disk directory), the
//     physical reference;
//   - rackstack: S3 PUT and GET through a real rackd with six disk
//     directories (4+2), for 4 KiB, 1 MiB and 64 MiB objects at
//     concurrency 1, 8 and 32; and the peak RSS of rackd across a 1 GiB
//     upload;
//   - rackstack and minio through minio-go (storage_sdk.go): warp's
//     pattern of PUT, random GET and delete phases for --sizes at
//     concurrency 1 and 8, with the server's peak RSS per case; MinIO
//     where a minio binary is found; and rackstack's 64 MiB GET through
//     minio-go with two data shards of every part missing against the
//     same healthy, at concurrency 1 and 8 (sdkDegraded);
//   - rackstack-blob: the erasure-coded blob layer in process, healthy
//     GET against GET with m = 2 data shards missing, and heal throughput.
//
// --quick runs raw-disk and the SDK cases only; --replay N runs only the
// restart case (storage_replay.go).
//
// Page caches are dropped before every read measurement when running as
// root, so reads come from the disk as raw-disk's do.
func storageSuite(ctx context.Context, o options) ([]Result, error) {
	if _, err := os.Stat(filepath.Join(o.BinDir, "rackd")); err != nil {
		return nil, fmt.Errorf("%w: rackd not found in %s (build with make build, or pass --bin)", errNeed, o.BinDir)
	}
	dir, err := os.MkdirTemp("", "rackbench-storage")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if o.Replay > 0 {
		return storageReplay(ctx, o, dir, o.Replay)
	}
	var out []Result
	rs, err := rawDisk(ctx, o, dir)
	if err != nil {
		return nil, fmt.Errorf("raw disk: %w", err)
	}
	out = append(out, rs...)
	if !o.Quick {
		rs, err = storageS3(ctx, o, dir)
		if err != nil {
			return nil, fmt.Errorf("rackd: %w", err)
		}
		out = append(out, rs...)
	}
	rs, err = storageSDK(ctx, o, dir)
	if err != nil {
		return nil, fmt.Errorf("sdk cases: %w", err)
	}
	out = append(out, rs...)
	printStorageGoals(o.Log, storageGoals(out, runtime.NumCPU()))
	if o.Quick {
		return out, nil
	}
	rs, err = storageBlob(ctx, o, dir)
	if err != nil {
		return nil, fmt.Errorf("blob layer: %w", err)
	}
	return append(out, rs...), nil
}

const mib = 1 << 20

// dropCaches empties the page cache so a read measures the disk; without
// root it is a no-op and reads may come from memory.
func dropCaches() {
	syscall.Sync()
	os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0)
}

func cacheMode() string {
	if os.Geteuid() == 0 {
		return "dropped"
	}
	return "warm"
}

// alignedBuf returns n bytes aligned for O_DIRECT.
func alignedBuf(n int) []byte {
	b := make([]byte, n+4096)
	off := 4096 - int(uintptr(unsafe.Pointer(&b[0]))&4095)
	return b[off : off+n]
}

// rawDisk writes and reads files with O_DIRECT in 1 MiB blocks.
func rawDisk(ctx context.Context, o options, dir string) ([]Result, error) {
	const fileSize = 512 * mib
	var out []Result
	streams := []int{1, 6}
	if o.Quick {
		streams = []int{6} // one per disk directory, as the stores write
	}
	for _, streams := range streams {
		var wr, rd []float64
		for run := 0; run < o.Runs; run++ {
			paths := make([]string, streams)
			for i := range paths {
				paths[i] = filepath.Join(dir, fmt.Sprintf("raw-%d", i))
			}
			w, err := parallelMiBps(streams, func(i int) (int64, error) { return directWrite(paths[i], fileSize) })
			if err != nil {
				return nil, err
			}
			dropCaches()
			r, err := parallelMiBps(streams, func(i int) (int64, error) { return directRead(paths[i]) })
			if err != nil {
				return nil, err
			}
			for _, p := range paths {
				os.Remove(p)
			}
			wr, rd = append(wr, w), append(rd, r)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
		}
		params := map[string]any{"streams": streams, "block": "1MiB", "io": "O_DIRECT", "file": "512MiB"}
		out = append(out, newResult("storage", "raw-disk", params, "write", "MiB/s", wr),
			newResult("storage", "raw-disk", params, "read", "MiB/s", rd))
	}
	return out, nil
}

// parallelMiBps runs n jobs at once and returns their total MiB/s.
func parallelMiBps(n int, job func(i int) (int64, error)) (float64, error) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var total int64
	var firstErr error
	start := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			b, err := job(i)
			mu.Lock()
			defer mu.Unlock()
			total += b
			if err != nil && firstErr == nil {
				firstErr = err
			}
		}(i)
	}
	wg.Wait()
	return float64(total) / mib / time.Since(start).Seconds(), firstErr
}

func directWrite(path string, size int64) (int64, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|syscall.O_DIRECT, 0o600)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := alignedBuf(mib)
	rand.Read(buf)
	var n int64
	for n < size {
		w, err := f.Write(buf)
		if err != nil {
			return n, err
		}
		n += int64(w)
	}
	return n, f.Sync()
}

func directRead(path string) (int64, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_DIRECT, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := alignedBuf(mib)
	var n int64
	for {
		r, err := f.Read(buf)
		n += int64(r)
		if err == io.EOF || r == 0 {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// s3Client signs requests with an EC2 credential (UNSIGNED-PAYLOAD, as
// rclone and the AWS SDKs send over TLS).
type s3Client struct {
	base, access, secret string
	http                 *http.Client
}

func (c *s3Client) do(ctx context.Context, method, path string, body []byte, size int64, r io.Reader) (*http.Response, error) {
	var rd io.Reader
	switch {
	case r != nil:
		rd = r
	case body != nil:
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if r != nil {
		req.ContentLength = size
	}
	sigv4.Sign(req, c.access, c.secret, "us-east-1", sigv4.UnsignedPayload, time.Now())
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		resp.Body.Close()
		return nil, fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, msg)
	}
	return resp, nil
}

func (c *s3Client) put(ctx context.Context, path string, body []byte) error {
	resp, err := c.do(ctx, "PUT", path, body, 0, nil)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

func (c *s3Client) get(ctx context.Context, path string) (int64, error) {
	resp, err := c.do(ctx, "GET", path, nil, 0, nil)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return n, err
}

// startStorageNode starts one rackd with six disk directories and returns
// an S3 client with a fresh EC2 credential of the admin.
func startStorageNode(o options, dir string) (*proc, *s3Client, error) {
	listen, err1 := freeAddr()
	raftAddr, err2 := freeAddr()
	s3Addr, err3 := freeAddr()
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, nil, fmt.Errorf("no free port")
	}
	p := &proc{name: "s1", dataDir: filepath.Join(dir, "s1"), listen: listen, args: []string{
		"--name", "s1", "--data-dir", filepath.Join(dir, "s1"), "--listen", listen, "--raft-listen", raftAddr,
		"--s3-listen", s3Addr, "--log-level", "warn", "--bootstrap",
	}}
	p.args = append(p.args, withoutHost()...)
	for i := 0; i < 6; i++ {
		p.args = append(p.args, "--disk", filepath.Join(dir, "s1-disks", fmt.Sprintf("d%d", i)))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	if err := p.start(o.BinDir); err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*proc, *s3Client, error) { p.kill(); return nil, nil, err }
	if err := waitHealthy(p.url(), 60*time.Second); err != nil {
		return fail(err)
	}
	pw, err := readPassword(p.dataDir)
	if err != nil {
		return fail(err)
	}
	tok, err := adminToken(p.url(), pw)
	if err != nil {
		return fail(err)
	}
	var me struct {
		Token struct {
			User    struct{ ID string } `json:"user"`
			Project struct{ ID string } `json:"project"`
		} `json:"token"`
	}
	req, _ := http.NewRequest("GET", p.url()+"/identity/v3/auth/tokens", nil)
	req.Header.Set("X-Auth-Token", tok)
	req.Header.Set("X-Subject-Token", tok)
	resp, err := client.Do(req)
	if err != nil {
		return fail(err)
	}
	json.NewDecoder(resp.Body).Decode(&me)
	resp.Body.Close()
	var cred struct {
		Credential struct{ Access, Secret string } `json:"credential"`
	}
	code, _, err := post(p.url()+"/identity/v3/users/"+me.Token.User.ID+"/credentials/OS-EC2", tok, map[string]any{"tenant_id": me.Token.Project.ID}, &cred)
	if err != nil || code != 201 {
		return fail(fmt.Errorf("create EC2 credential: HTTP %d %v", code, err))
	}
	c := &s3Client{base: "http://" + s3Addr, access: cred.Credential.Access, secret: cred.Credential.Secret,
		http: &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	if err := c.put(context.Background(), "/bench", nil); err != nil {
		return fail(err)
	}
	// Disks register within a second or two of start.
	for i := 0; ; i++ {
		if err := c.put(context.Background(), "/bench/ready", []byte("ok")); err == nil {
			break
		} else if i == 100 {
			return fail(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return p, c, nil
}

// vmHWM is the peak resident set size of a process, in MiB.
func vmHWM(pid int) (float64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmHWM")
}

// patternReader streams n bytes without holding them in memory.
type patternReader struct{ n int64 }

func (r *patternReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.n {
		p = p[:r.n]
	}
	for i := range p {
		p[i] = byte(i * 7)
	}
	r.n -= int64(len(p))
	return len(p), nil
}

var objectSizes = []struct {
	name string
	size int
}{{"4KiB", 4 << 10}, {"1MiB", mib}, {"64MiB", 64 * mib}}

var storageConcurrency = []int{1, 8, 32}

func storageS3(ctx context.Context, o options, dir string) ([]Result, error) {
	var out []Result
	// Peak memory across a 1 GiB upload, on a fresh rackd so nothing
	// earlier sets the high-water mark.
	p, c, err := startStorageNode(o, filepath.Join(dir, "rss"))
	if err != nil {
		return nil, err
	}
	before, _ := vmHWM(p.cmd.Process.Pid)
	resp, err := c.do(ctx, "PUT", "/bench/one-gib", nil, 1<<30, &patternReader{n: 1 << 30})
	if err != nil {
		p.kill()
		return nil, fmt.Errorf("1 GiB upload: %w", err)
	}
	resp.Body.Close()
	after, _ := vmHWM(p.cmd.Process.Pid)
	p.kill()
	out = append(out, newResult("storage", "rackstack", map[string]any{"object": "1GiB", "api": "s3"}, "peak_rss", "MiB", []float64{after}),
		newResult("storage", "rackstack", map[string]any{"object": "none", "api": "s3"}, "peak_rss", "MiB", []float64{before}))
	os.RemoveAll(filepath.Join(dir, "rss"))

	p, c, err = startStorageNode(o, filepath.Join(dir, "s3"))
	if err != nil {
		return nil, err
	}
	defer p.kill()
	payload := make([]byte, 64*mib)
	rand.Read(payload)
	type key struct {
		size string
		c    int
		op   string
	}
	mbps, ops := map[key][]float64{}, map[key][]float64{}
	for run := 0; run < o.Runs; run++ {
		for _, sz := range objectSizes {
			for _, conc := range storageConcurrency {
				body := payload[:sz.size]
				name := func(w int) string { return fmt.Sprintf("/bench/%s-%d", sz.name, w) }
				rate, _, err := load(ctx, conc, o.Duration, func(ctx context.Context, w, i int) error {
					return c.put(ctx, name(w), body)
				})
				if err != nil {
					return nil, fmt.Errorf("PUT %s c=%d: %w", sz.name, conc, err)
				}
				k := key{sz.name, conc, "put"}
				ops[k], mbps[k] = append(ops[k], rate), append(mbps[k], rate*float64(sz.size)/mib)
				dropCaches()
				rate, _, err = load(ctx, conc, o.Duration, func(ctx context.Context, w, i int) error {
					n, err := c.get(ctx, name(w))
					if err == nil && n != int64(sz.size) {
						err = fmt.Errorf("GET %s: %d bytes, want %d", name(w), n, sz.size)
					}
					return err
				})
				if err != nil {
					return nil, fmt.Errorf("GET %s c=%d: %w", sz.name, conc, err)
				}
				k = key{sz.name, conc, "get"}
				ops[k], mbps[k] = append(ops[k], rate), append(mbps[k], rate*float64(sz.size)/mib)
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
			}
		}
	}
	healthy, degraded, ready, err := degradedS3(ctx, o, p, c, payload)
	if err != nil {
		return nil, err
	}
	dp := map[string]any{"object": "64MiB", "concurrency": 8, "api": "s3", "coding": "4+2", "disks": 6, "cache": cacheMode(), "read": "each object once"}
	out = append(out, newResult("storage", "rackstack", dp, "get_throughput", "MiB/s", healthy))
	dp = map[string]any{"object": "64MiB", "concurrency": 8, "api": "s3", "coding": "4+2", "disks": 6, "cache": cacheMode(), "read": "each object once", "missing": "2 data shards"}
	out = append(out, newResult("storage", "rackstack", dp, "get_throughput", "MiB/s", degraded))
	out = append(out, newResult("storage", "rackstack", map[string]any{"after": "SIGKILL", "until": "/healthz 200"}, "restart", "s", ready))
	for _, sz := range objectSizes {
		for _, conc := range storageConcurrency {
			for _, op := range []string{"put", "get"} {
				k := key{sz.name, conc, op}
				params := map[string]any{"object": sz.name, "concurrency": conc, "api": "s3", "coding": "4+2", "disks": 6, "cache": cacheMode()}
				out = append(out, newResult("storage", "rackstack", params, op+"_throughput", "MiB/s", mbps[k]),
					newResult("storage", "rackstack", params, op+"_ops", "ops/s", ops[k]))
			}
		}
	}
	return out, nil
}

// degradedS3 reads 16 objects of 64 MiB once each through S3 at
// concurrency 8 with rackbench's own client: see degradedReads.
func degradedS3(ctx context.Context, o options, p *proc, c *s3Client, payload []byte) (healthy, degraded, ready []float64, err error) {
	put := func(ctx context.Context, name string) error { return c.put(ctx, "/bench/"+name, payload) }
	get := func(ctx context.Context, name string) (int64, error) { return c.get(ctx, "/bench/"+name) }
	h, d, ready, _, err := degradedReads(ctx, o, p, nil, []int{8}, put, get)
	return h[8], d[8], ready, err
}

// degradedObjects is how many 64 MiB objects a degraded case reads.
const degradedObjects = 16

// degradedReads puts degradedObjects objects, then for each concurrency
// in concs reads each of them once, whole, healthy; and then, for each
// concurrency again, kills rackd, deletes shards 0 and 1 (data shards) of
// every object, restarts it and reads each object once more. The healer
// starts rebuilding as soon as the first degraded read reports, so the
// degraded figure includes healing running beside it, as it would in
// production; the shards are deleted again before each concurrency's
// degraded reads. The restart is timed apart (ready: until /healthz
// answers 200, which a leader does once it has applied its log): the
// reads start after it, and after a warm-up of conc reads at once of one
// more degraded object (deg-warm, never measured), so that the degraded
// reads, like the healthy ones made after the uploads, find a process
// that has served reads before: a process just started faults in every
// read buffer it takes, which cost more CPU than rebuilding the two
// missing shards does and is not what a degraded cluster does all day. peak is rackd's peak RSS (MiB) during each
// concurrency's degraded reads. prof, if not nil, saves rackd's CPU profile
// of the first 3 s of each read phase.
func degradedReads(ctx context.Context, o options, p *proc, prof *caseProfiler, concs []int,
	put func(ctx context.Context, name string) error, get func(ctx context.Context, name string) (int64, error),
) (healthy, degraded map[int][]float64, ready []float64, peak map[int][]float64, err error) {
	healthy, degraded, peak = map[int][]float64{}, map[int][]float64{}, map[int][]float64{}
	readAll := func(conc int, label string) (float64, error) {
		dropCaches()
		defer prof.start(ctx, label, 3*time.Second)()
		var mu sync.Mutex
		next := 0
		return parallelMiBps(conc, func(int) (int64, error) {
			var total int64
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= degradedObjects {
					return total, nil
				}
				n, err := get(ctx, fmt.Sprintf("deg-%d", i))
				total += n
				if err != nil {
					return total, err
				}
			}
		})
	}
	for run := 0; run < o.Runs; run++ {
		for i := 0; i < degradedObjects; i++ {
			if err := put(ctx, fmt.Sprintf("deg-%d", i)); err != nil {
				return nil, nil, nil, nil, err
			}
		}
		if err := put(ctx, "deg-warm"); err != nil {
			return nil, nil, nil, nil, err
		}
		for _, conc := range concs {
			h, err := readAll(conc, fmt.Sprintf("rackstack-degraded-c%d-run%d-healthy", conc, run))
			if err != nil {
				return nil, nil, nil, nil, err
			}
			healthy[conc] = append(healthy[conc], h)
		}
		for _, conc := range concs {
			p.kill()
			disks, _ := filepath.Glob(filepath.Join(filepath.Dir(p.dataDir), "s1-disks", "*"))
			for _, d := range disks {
				filepath.WalkDir(filepath.Join(d, "shards"), func(path string, e os.DirEntry, err error) error {
					if err == nil && !e.IsDir() && (strings.HasSuffix(path, ".0") || strings.HasSuffix(path, ".1")) {
						os.Remove(path)
					}
					return nil
				})
			}
			start := time.Now()
			if err := p.start(o.BinDir); err != nil {
				return nil, nil, nil, nil, err
			}
			if err := waitHealthy(p.url(), 60*time.Second); err != nil {
				return nil, nil, nil, nil, err
			}
			ready = append(ready, time.Since(start).Seconds())
			if _, err := parallelMiBps(conc, func(int) (int64, error) { return get(ctx, "deg-warm") }); err != nil {
				return nil, nil, nil, nil, fmt.Errorf("warm-up read: %w", err)
			}
			rss := sampleRSS(p.cmd.Process.Pid)
			d, err := readAll(conc, fmt.Sprintf("rackstack-degraded-c%d-run%d-degraded", conc, run))
			peak[conc] = append(peak[conc], rss())
			if err != nil {
				return nil, nil, nil, nil, err
			}
			degraded[conc] = append(degraded[conc], d)
		}
	}
	return healthy, degraded, ready, peak, nil
}

// storageBlob measures the blob layer in process on six disk directories:
// healthy and degraded (two data shards gone) reads, and healing.
func storageBlob(ctx context.Context, o options, dir string) ([]Result, error) {
	const blobs, size = 8, 64 * mib
	var healthy, degraded, heal []float64
	payload := make([]byte, size)
	rand.Read(payload)
	for run := 0; run < o.Runs; run++ {
		root := filepath.Join(dir, fmt.Sprintf("blob-%d", run))
		st := &blob.Store{Node: "n", Local: map[string]disk.Disk{}}
		var disks []placement.Disk
		for i := 0; i < 6; i++ {
			d, err := disk.OpenDir(filepath.Join(root, fmt.Sprint(i)))
			if err != nil {
				return nil, err
			}
			st.Local[d.ID()] = d
			disks = append(disks, placement.Disk{Node: "n", ID: d.ID()})
		}
		l := blob.Layout{K: 4, M: 2, ShardSize: mib, Disks: disks}
		for b := 0; b < blobs; b++ {
			if _, err := st.Put(ctx, fmt.Sprint("b", b), l, bytes.NewReader(payload)); err != nil {
				return nil, err
			}
		}
		readAll := func() (float64, error) {
			dropCaches()
			start := time.Now()
			for b := 0; b < blobs; b++ {
				if _, err := st.Get(ctx, fmt.Sprint("b", b), l, size, 0, size, io.Discard); err != nil {
					return 0, err
				}
			}
			return float64(blobs*size) / mib / time.Since(start).Seconds(), nil
		}
		h, err := readAll()
		if err != nil {
			return nil, err
		}
		for b := 0; b < blobs; b++ {
			for _, i := range []int{0, 1} {
				st.Local[disks[i].ID].Remove(blob.ShardName(fmt.Sprint("b", b), i))
			}
		}
		d, err := readAll()
		if err != nil {
			return nil, err
		}
		dropCaches()
		start := time.Now()
		for b := 0; b < blobs; b++ {
			if _, err := st.Heal(ctx, fmt.Sprint("b", b), l, size); err != nil {
				return nil, err
			}
		}
		heal = append(heal, float64(blobs*size)/mib/time.Since(start).Seconds())
		healthy, degraded = append(healthy, h), append(degraded, d)
		os.RemoveAll(root)
	}
	params := map[string]any{"object": "64MiB", "coding": "4+2", "disks": 6, "cache": cacheMode()}
	dp := map[string]any{"object": "64MiB", "coding": "4+2", "disks": 6, "missing": "2 data shards", "cache": cacheMode()}
	return []Result{
		newResult("storage", "rackstack-blob", params, "get_throughput", "MiB/s", healthy),
		newResult("storage", "rackstack-blob", dp, "get_throughput", "MiB/s", degraded),
		newResult("storage", "rackstack-blob", dp, "heal_throughput", "MiB/s", heal),
	}, nil
}
