package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	cloudclient "github.com/rackstack/rackstack/fabric/client"
	"github.com/rackstack/rackstack/fabric/cluster/clusterapi"
)

// storageCloud is `rackbench storage --cloud`: the object store of a
// running cloud through the S3 endpoints of the named nodes (minio-go,
// workers spread across the nodes) and through Swift, in the SDK cases'
// pattern (storage_sdk.go): a PUT phase, a random-GET phase, a delete
// phase, each reporting MiB/s, objects/s and p50/p99 latency.
//
// It works in a project of its own (see cloud.go): the bucket, the Swift
// container and the EC2 credential the S3 client signs with belong to it,
// the credential's user holds only the member role there, and it is all
// removed at the end, on error and on Ctrl-C.
func storageCloud(ctx context.Context, o options) ([]Result, error) {
	sizes, err := sdkSizes("--sizes", o.Sizes)
	if err != nil {
		return nil, err
	}
	concs, err := parseInts("--concurrency", o.Concurrency)
	if err != nil {
		return nil, err
	}
	if err := checkStorageBounds(sizes, concs); err != nil {
		return nil, err
	}
	s, nodes, err := connectNodes(ctx, o, splitList(o.CloudNodes))
	if err != nil {
		return nil, err
	}
	st, err := storageShape(ctx, o, s, nodes)
	if err != nil {
		return nil, err
	}
	plan := planStorageCases(sizes, concs, st.K, st.M)
	if err := plan.fits(st.Capacity.Free); err != nil {
		return nil, err
	}

	run := &storageRun{s: s, project: runName()}
	defer func() {
		// Ctrl-C has cancelled ctx by now, perhaps: clean up on a
		// context of its own, bounded.
		cctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := run.cleanup(cctx); err != nil {
			s.log("rackbench storage: cleanup of %s: %v (run `rackbench clean --cloud`)", run.project, err)
		}
	}()
	if err := run.setup(ctx, nodes); err != nil {
		return nil, err
	}

	largest := 0
	for _, sz := range sizes {
		largest = max(largest, sz.size)
	}
	payload := make([]byte, largest)
	rand.Read(payload)
	nodeNames := make([]string, len(nodes))
	for i, n := range nodes {
		nodeNames[i] = n.Name
	}
	type key struct {
		api, size string
		conc      int
		metric    string
	}
	runs := map[key][]float64{}
	apis := []string{"s3", "swift"}
	prog := newProgress(o, len(sizes)*len(concs)*len(apis)*o.Runs)
	defer prog.done()
	for r := 0; r < o.Runs; r++ {
		for _, sz := range sizes {
			for _, conc := range concs {
				for _, api := range apis {
					prog.start(fmt.Sprintf("%s %s c=%d run %d", api, sz.name, conc, r+1))
					res, err := run.storageCase(ctx, api, o.Duration, conc, plan.limit[sz.size][conc], payload[:sz.size])
					if err != nil {
						return nil, fmt.Errorf("%s %s c=%d: %w", api, sz.name, conc, err)
					}
					for metric, v := range res {
						k := key{api, sz.name, conc, metric}
						runs[k] = append(runs[k], v)
					}
				}
			}
		}
	}
	var out []Result
	for _, api := range apis {
		cl := "minio-go"
		if api == "swift" {
			cl = "net/http"
		}
		for _, sz := range sizes {
			for _, conc := range concs {
				params := map[string]any{"object": sz.name, "concurrency": conc, "api": api, "client": cl,
					"nodes": strings.Join(nodeNames, ","), "coding": fmt.Sprintf("%d+%d", st.K, st.M)}
				for _, m := range storageCloudMetrics {
					out = append(out, newResult("storage", "rackstack-cloud", params, m.name, m.unit, runs[key{api, sz.name, conc, m.name}]))
				}
			}
		}
	}
	return out, nil
}

var storageCloudMetrics = []struct{ name, unit string }{
	{"put_throughput", "MiB/s"}, {"put_ops", "objects/s"}, {"put_p50", "ms"}, {"put_p99", "ms"},
	{"get_throughput", "MiB/s"}, {"get_ops", "objects/s"}, {"get_p50", "ms"}, {"get_p99", "ms"},
	{"delete_ops", "objects/s"}, {"delete_p50", "ms"}, {"delete_p99", "ms"},
}

// parseInts parses a comma list of positive integers.
func parseInts(flagName, spec string) ([]int, error) {
	var out []int
	for _, f := range splitList(spec) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s: %q is not a positive integer", flagName, f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: empty list", flagName)
	}
	return out, nil
}

// Bounds of one storage case: a PUT phase stops at maxCaseObjects objects
// or maxCaseBytes of payload, whichever comes first, however long
// --duration is; every worker writes at least one object.
const (
	maxCaseObjects = 5000
	maxCaseBytes   = 1 << 30
	maxConcurrency = 256
)

// checkStorageBounds refuses an object larger than a case may write, or
// more clients than a run opens connections for.
func checkStorageBounds(sizes []objectSize, concs []int) error {
	for _, sz := range sizes {
		if sz.size > maxCaseBytes {
			return fmt.Errorf("--sizes: %s is larger than %d MiB, what one case writes at most", sz.name, maxCaseBytes/mib)
		}
	}
	for _, c := range concs {
		if c > maxConcurrency {
			return fmt.Errorf("--concurrency: %d is more than %d clients", c, maxConcurrency)
		}
	}
	return nil
}

// storagePlan is how many objects each case may write, and the raw disk
// space (with the coding's overhead) the largest case needs at once: the
// cases run one after another and each deletes what it wrote.
type storagePlan struct {
	limit map[int]map[int]int // size → concurrency → objects
	need  uint64
}

func planStorageCases(sizes []objectSize, concs []int, k, m int) storagePlan {
	if k < 1 {
		k, m = 1, 0
	}
	p := storagePlan{limit: map[int]map[int]int{}}
	for _, sz := range sizes {
		p.limit[sz.size] = map[int]int{}
		for _, c := range concs {
			n := min(maxCaseObjects, max(c, maxCaseBytes/sz.size))
			p.limit[sz.size][c] = n
			raw := uint64(n) * uint64(sz.size) * uint64(k+m) / uint64(k)
			p.need = max(p.need, raw)
		}
	}
	return p
}

// fits refuses a plan whose largest case would take more than half the
// free space: a benchmark must not fill the disks tenants write to.
func (p storagePlan) fits(free uint64) error {
	if p.need > free/2 {
		return fmt.Errorf("%w: the largest case writes up to %.1f GiB with coding, more than half the %.1f GiB free on the cluster's disks (smaller --sizes or --concurrency)",
			errNoCapacity, float64(p.need)/(1<<30), float64(free)/(1<<30))
	}
	return nil
}

var errNoCapacity = errors.New("not enough capacity")

// storageRun is one run's resources, recorded as they are made so that
// cleanup removes exactly those.
type storageRun struct {
	s         *cloudSession
	project   string // name
	projectID string
	bucket    string
	s3        []*minio.Client // one per node
	swift     []string        // the project's Swift account URL on each node
	hc        *http.Client
}

func (r *storageRun) setup(ctx context.Context, nodes []clusterapi.NodeInfo) error {
	s := r.s
	p, err := call(ctx, func(ctx context.Context) (cloudclient.Project, error) {
		return s.c.CreateProject(ctx, r.project, "temporary project of a rackbench run; `rackbench clean --cloud` removes it", []string{benchTag})
	})
	if err != nil {
		return fmt.Errorf("create project %s: %w", r.project, err)
	}
	r.projectID = p.ID
	if _, err := call(ctx, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, s.c.GrantProjectRole(ctx, p.ID, s.me.UserID, "member")
	}); err != nil {
		return fmt.Errorf("grant member on %s: %w", r.project, err)
	}
	cred, err := call(ctx, func(ctx context.Context) (cloudclient.EC2Credential, error) {
		return s.c.CreateEC2(ctx, s.me.UserID, p.ID)
	})
	if err != nil {
		return fmt.Errorf("create EC2 credential: %w", err)
	}
	r.hc = &http.Client{Timeout: opTimeout, Transport: &http.Transport{MaxIdleConnsPerHost: maxConcurrency}}
	for _, n := range nodes {
		s3URL, err := call(ctx, func(ctx context.Context) (string, error) { return s.c.NodeEndpoint(ctx, n.APIURL, "s3") })
		if err != nil {
			return err
		}
		u, err := url.Parse(s3URL)
		if err != nil || u.Host == "" || strings.Trim(u.Path, "/") != "" {
			return fmt.Errorf("node %s: S3 endpoint %q is not a host of its own (rackd --s3-listen); minio-go needs one", n.Name, s3URL)
		}
		mc, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(cred.Access, cred.Secret, ""), Secure: u.Scheme == "https",
			Region: "us-east-1", Transport: r.hc.Transport})
		if err != nil {
			return fmt.Errorf("node %s: S3 client: %w", n.Name, err)
		}
		r.s3 = append(r.s3, mc)
		swiftURL, err := call(ctx, func(ctx context.Context) (string, error) { return s.c.NodeEndpoint(ctx, n.APIURL, "object-store") })
		if err != nil {
			return err
		}
		base, _, ok := strings.Cut(swiftURL, "/AUTH_")
		if !ok {
			return fmt.Errorf("node %s: Swift endpoint %q has no AUTH_ account", n.Name, swiftURL)
		}
		r.swift = append(r.swift, base+"/AUTH_"+p.ID)
	}
	r.bucket = r.project
	if _, err := call(ctx, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, r.s3[0].MakeBucket(ctx, r.bucket, minio.MakeBucketOptions{})
	}); err != nil {
		return fmt.Errorf("make bucket %s: %w", r.bucket, err)
	}
	return nil
}

// storageCase runs the three phases of one case through api ("s3" or
// "swift"), each bounded by d and by limit objects.
func (r *storageRun) storageCase(ctx context.Context, api string, d time.Duration, conc, limit int, body []byte) (map[string]float64, error) {
	var put func(ctx context.Context, w int, name string) error
	var get func(ctx context.Context, w int, name string) (int64, error)
	var del func(ctx context.Context, w int, name string) error
	switch api {
	case "s3":
		put = func(ctx context.Context, w int, name string) error {
			_, err := r.s3[w%len(r.s3)].PutObject(ctx, r.bucket, name, bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{})
			return err
		}
		get = func(ctx context.Context, w int, name string) (int64, error) {
			obj, err := r.s3[w%len(r.s3)].GetObject(ctx, r.bucket, name, minio.GetObjectOptions{})
			if err != nil {
				return 0, err
			}
			defer obj.Close()
			return io.Copy(io.Discard, obj)
		}
		del = func(ctx context.Context, w int, name string) error {
			return r.s3[w%len(r.s3)].RemoveObject(ctx, r.bucket, name, minio.RemoveObjectOptions{})
		}
	case "swift":
		put = func(ctx context.Context, w int, name string) error {
			_, err := r.swiftDo(ctx, w, http.MethodPut, r.bucket+"/"+name, body, nil)
			return err
		}
		get = func(ctx context.Context, w int, name string) (int64, error) {
			return r.swiftDo(ctx, w, http.MethodGet, r.bucket+"/"+name, nil, io.Discard)
		}
		del = func(ctx context.Context, w int, name string) error {
			_, err := r.swiftDo(ctx, w, http.MethodDelete, r.bucket+"/"+name, nil, nil)
			return err
		}
	}
	prefix := fmt.Sprintf("%s-%d/", api, time.Now().UnixNano())
	var mu sync.Mutex
	var names []string
	putRate, putLat, err := boundedLoad(ctx, conc, d, limit, func(ctx context.Context, w, i int) error {
		name := fmt.Sprintf("%sw%d-o%d", prefix, w, i)
		err := put(ctx, w, name)
		if err == nil {
			mu.Lock()
			names = append(names, name)
			mu.Unlock()
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("PUT: %w", err)
	}
	getRate, getLat, err := boundedLoad(ctx, conc, d, maxCaseObjects*4, func(ctx context.Context, w, i int) error {
		name := names[mrand.IntN(len(names))]
		n, err := get(ctx, w, name)
		if err == nil && n != int64(len(body)) {
			err = fmt.Errorf("GET %s: %d bytes, want %d", name, n, len(body))
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("GET: %w", err)
	}
	// The delete phase removes every object, however long that takes
	// (each request still bounded), spread over the workers.
	var next atomic.Int64
	delRate, delLat, err := boundedLoad(ctx, conc, 0, len(names), func(ctx context.Context, w, _ int) error {
		return del(ctx, w, names[next.Add(1)-1])
	})
	if err != nil {
		return nil, fmt.Errorf("delete: %w", err)
	}
	mb := float64(len(body)) / mib
	return map[string]float64{
		"put_throughput": putRate * mb, "put_ops": putRate, "put_p50": ms(percentile(putLat, 50)), "put_p99": ms(percentile(putLat, 99)),
		"get_throughput": getRate * mb, "get_ops": getRate, "get_p50": ms(percentile(getLat, 50)), "get_p99": ms(percentile(getLat, 99)),
		"delete_ops": delRate, "delete_p50": ms(percentile(delLat, 50)), "delete_p99": ms(percentile(delLat, 99)),
	}, nil
}

// boundedLoad runs op on c workers until d has passed (0: no time limit)
// or limit operations have started, whichever comes first, and each
// worker at least once (the GET phase reads what every worker wrote);
// each op gets
// opTimeout and ctx's cancellation (Ctrl-C). It returns ops/s and the
// sorted latencies.
func boundedLoad(ctx context.Context, c int, d time.Duration, limit int, op func(ctx context.Context, worker, i int) error) (float64, []time.Duration, error) {
	if ctx.Err() != nil {
		return 0, nil, ctx.Err()
	}
	var deadline time.Time
	if d > 0 {
		deadline = time.Now().Add(d)
	}
	var started atomic.Int64
	var mu sync.Mutex
	var lats []time.Duration
	var errs []error
	var wg sync.WaitGroup
	begin := time.Now()
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var local []time.Duration
			defer func() {
				mu.Lock()
				lats = append(lats, local...)
				mu.Unlock()
			}()
			for i := 0; ctx.Err() == nil && (i == 0 || deadline.IsZero() || time.Now().Before(deadline)); i++ {
				if started.Add(1) > int64(limit) {
					return
				}
				octx, cancel := context.WithTimeout(ctx, opTimeout)
				t0 := time.Now()
				err := op(octx, w, i)
				cancel()
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				local = append(local, time.Since(t0))
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(begin)
	if err := ctx.Err(); err != nil {
		return 0, nil, err
	}
	if len(errs) > 0 {
		return 0, nil, errs[0]
	}
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	return float64(len(lats)) / elapsed.Seconds(), lats, nil
}

// swiftDo calls the run's Swift account through worker w's node, with the
// admin's token; the body of a GET is copied to sink.
func (r *storageRun) swiftDo(ctx context.Context, w int, method, path string, body []byte, sink io.Writer) (int64, error) {
	tok, err := r.s.c.Token(ctx)
	if err != nil {
		return 0, err
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.swift[w%len(r.swift)]+"/"+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-Auth-Token", tok)
	resp, err := r.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, fmt.Errorf("swift %s %s: HTTP %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(msg))
	}
	if sink == nil {
		sink = io.Discard
	}
	return io.Copy(sink, resp.Body)
}

// cleanup removes what setup made, in reverse: the objects and the
// bucket, the credential, the project (with its role grant).
func (r *storageRun) cleanup(ctx context.Context) error {
	if r.projectID == "" {
		return nil
	}
	return cleanProject(ctx, r.s, cloudclient.Project{ID: r.projectID, Name: r.project})
}

// swiftJSON lists a Swift account or container as JSON.
func swiftJSON(ctx context.Context, s *cloudSession, hc *http.Client, u string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	tok, err := s.c.Token(ctx)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-Auth-Token", tok)
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotFound {
		return nil
	}
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("GET %s: HTTP %d: %s", u, resp.StatusCode, bytes.TrimSpace(msg))
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out)
}
