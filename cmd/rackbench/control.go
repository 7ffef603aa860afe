package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/cluster"
	"github.com/rackstack/rackstack/fabric/store"
)

// controlSuite measures small writes through Raft: in process (the store
// and cluster layers over the real mTLS transport and bolt log on disk) and
// through real rackd processes' HTTP API; and the time from killing the
// leader to the next successful write.
func controlSuite(ctx context.Context, o options) ([]Result, error) {
	var out []Result
	rs, err := controlInProcess(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("in-process cluster: %w", err)
	}
	out = append(out, rs...)
	rs, err = controlProcesses(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("rackd cluster: %w", err)
	}
	return append(out, rs...), nil
}

var concurrencies = []int{1, 16, 64}

// load runs op at concurrency c for d and returns ops/s and sorted latencies.
func load(ctx context.Context, c int, d time.Duration, op func(ctx context.Context, worker, i int) error) (float64, []time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var mu sync.Mutex
	var lats []time.Duration
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var local []time.Duration
			for i := 0; ctx.Err() == nil; i++ {
				t0 := time.Now()
				err := op(context.Background(), w, i)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	return float64(len(lats)) / elapsed.Seconds(), lats, firstErr
}

type benchRow struct {
	ID    string `json:"id"`
	Value string `json:"v"`
}

func benchSchema() store.Schema {
	return store.Schema{
		Tables: []store.Table{{Schema: &memdb.TableSchema{Name: "bench", Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
		}}, Row: &benchRow{}}},
		Handlers: map[string]store.Handler{"bench.put": func(tx *memdb.Txn, _ uint64, body json.RawMessage) (any, error) {
			var r benchRow
			if err := json.Unmarshal(body, &r); err != nil {
				return nil, err
			}
			return nil, tx.Insert("bench", &r)
		}},
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func controlInProcess(ctx context.Context, o options) ([]Result, error) {
	dir, err := os.MkdirTemp("", "rackbench-control")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	open := func(name string, bootstrap bool, joinURL, tok string) (*cluster.Node, *http.Server, error) {
		raftAddr, err := freeAddr()
		if err != nil {
			return nil, nil, err
		}
		apiLn, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		n, err := cluster.Open(ctx, cluster.Config{Name: name, DataDir: filepath.Join(dir, name), RaftListen: raftAddr, Advertise: raftAddr,
			APIURL: "http://" + apiLn.Addr().String(), Bootstrap: bootstrap, JoinURL: joinURL, JoinToken: tok,
			Schemas: []store.Schema{cluster.Schema(), benchSchema()}, Log: quiet})
		if err != nil {
			apiLn.Close()
			return nil, nil, err
		}
		mux := http.NewServeMux()
		mux.HandleFunc("POST /rackstack/v1/cluster/join", n.HandleJoin)
		srv := &http.Server{Handler: mux, Addr: apiLn.Addr().String()}
		go srv.Serve(apiLn)
		go n.Run(ctx)
		return n, srv, nil
	}
	a, asrv, err := open("a", true, "", "")
	if err != nil {
		return nil, err
	}
	defer a.Close()
	defer asrv.Close()
	for i := 0; i < 200 && !a.IsLeader(); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // let the CA reach the state
	tok, err := a.CreateJoinToken(ctx, time.Hour, 2)
	if err != nil {
		return nil, err
	}
	for _, name := range []string{"b", "c"} {
		n, srv, err := open(name, false, "http://"+asrv.Addr, tok.Token)
		if err != nil {
			return nil, err
		}
		defer n.Close()
		defer srv.Close()
	}
	time.Sleep(time.Second)
	var out []Result
	for _, c := range concurrencies {
		var tput, p50, p99 []float64
		for r := 0; r < o.Runs; r++ {
			ops, lats, err := load(ctx, c, o.Duration, func(ctx context.Context, w, i int) error {
				_, err := a.Propose(ctx, "bench.put", benchRow{ID: fmt.Sprintf("%d-%d-%d", r, w, i), Value: "x"})
				return err
			})
			if err != nil {
				return nil, err
			}
			tput = append(tput, ops)
			p50 = append(p50, ms(percentile(lats, 50)))
			p99 = append(p99, ms(percentile(lats, 99)))
			fmt.Fprintf(o.Log, "control rackstack-raft c=%d run %d: %.0f cmd/s p50 %.2fms p99 %.2fms\n", c, r+1, ops, p50[len(p50)-1], p99[len(p99)-1])
		}
		params := map[string]any{"concurrency": c, "nodes": 3}
		out = append(out,
			newResult("control", "rackstack-raft", params, "writes", "commands/s", tput),
			newResult("control", "rackstack-raft", params, "latency_p50", "ms", p50),
			newResult("control", "rackstack-raft", params, "latency_p99", "ms", p99))
	}
	return out, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// proc is one rackd process started by the benchmark.
type proc struct {
	name, dataDir, listen string
	args                  []string
	cmd                   *exec.Cmd
	done                  chan struct{}
}

func (p *proc) url() string { return "http://" + p.listen }

func (p *proc) start(bin string, extra ...string) error {
	p.cmd = exec.Command(filepath.Join(bin, "rackd"), append(append([]string{}, p.args...), extra...)...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logf, err := os.OpenFile(filepath.Join(filepath.Dir(p.dataDir), p.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		return err
	}
	p.done = make(chan struct{})
	cmd := p.cmd
	go func() { cmd.Wait(); logf.Close(); close(p.done) }()
	return nil
}

func (p *proc) kill() {
	if p.cmd != nil && p.cmd.Process != nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
	p.cmd = nil
}

func waitHealthy(url string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not healthy after %s", url, d)
}

var client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 128}}

func post(url, tok string, body any, out any) (int, http.Header, error) {
	raw, _ := json.Marshal(body)
	req, err := http.NewRequest("POST", url, bytes.NewReader(raw))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("X-Auth-Token", tok)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		_ = json.Unmarshal(data, out)
	}
	return resp.StatusCode, resp.Header, nil
}

func adminToken(url, password string) (string, error) {
	body := map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{"user": map[string]any{"name": "admin", "domain": map[string]any{"id": "default"}, "password": password}}},
		"scope":    map[string]any{"project": map[string]any{"name": "admin", "domain": map[string]any{"id": "default"}}},
	}}
	for i := 0; i < 100; i++ {
		code, h, err := post(url+"/identity/v3/auth/tokens", "", body, nil)
		if err == nil && code == 201 {
			return h.Get("X-Subject-Token"), nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", fmt.Errorf("no admin token from %s", url)
}

func readPassword(dataDir string) (string, error) {
	for i := 0; i < 100; i++ {
		raw, err := os.ReadFile(filepath.Join(dataDir, "admin-openrc"))
		if err == nil {
			for _, line := range strings.Split(string(raw), "\n") {
				if v, ok := strings.CutPrefix(line, "export OS_PASSWORD="); ok {
					return strings.Trim(v, "'"), nil
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", fmt.Errorf("no admin-openrc in %s", dataDir)
}

func leaderName(url, tok string) (string, error) {
	req, _ := http.NewRequest("GET", url+"/rackstack/v1/cluster/status", nil)
	req.Header.Set("X-Auth-Token", tok)
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var st cluster.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return "", err
	}
	return st.Leader, nil
}

func controlProcesses(ctx context.Context, o options) ([]Result, error) {
	if _, err := os.Stat(filepath.Join(o.BinDir, "rackd")); err != nil {
		return nil, fmt.Errorf("%w: rackd not found in %s (build with make build, or pass --bin)", errNeed, o.BinDir)
	}
	dir, err := os.MkdirTemp("", "rackbench-rackd")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	procs := map[string]*proc{}
	for _, name := range []string{"n1", "n2", "n3"} {
		listen, err1 := freeAddr()
		raftAddr, err2 := freeAddr()
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("no free port")
		}
		procs[name] = &proc{name: name, dataDir: filepath.Join(dir, name), listen: listen,
			args: append([]string{"--name", name, "--data-dir", filepath.Join(dir, name), "--listen", listen, "--raft-listen", raftAddr, "--s3-listen", "off", "--log-level", "warn"}, withoutHost()...)}
	}
	defer func() {
		for _, p := range procs {
			p.kill()
		}
	}()
	n1 := procs["n1"]
	if err := n1.start(o.BinDir, "--bootstrap"); err != nil {
		return nil, err
	}
	if err := waitHealthy(n1.url(), 30*time.Second); err != nil {
		return nil, err
	}
	pw, err := readPassword(n1.dataDir)
	if err != nil {
		return nil, err
	}
	tok, err := adminToken(n1.url(), pw)
	if err != nil {
		return nil, err
	}
	var jt cluster.JoinTokenResponse
	if code, _, err := post(n1.url()+"/rackstack/v1/cluster/join-tokens", tok, map[string]any{"ttl": "1h", "uses": 2}, &jt); err != nil || code != 201 {
		return nil, fmt.Errorf("join token: %d %v", code, err)
	}
	for _, name := range []string{"n2", "n3"} {
		if err := procs[name].start(o.BinDir, "--join", n1.url(), "--join-token", jt.Token); err != nil {
			return nil, err
		}
		if err := waitHealthy(procs[name].url(), 30*time.Second); err != nil {
			return nil, err
		}
	}
	time.Sleep(2 * time.Second)
	var out []Result
	for _, c := range concurrencies {
		var tput, p50, p99 []float64
		for r := 0; r < o.Runs; r++ {
			ops, lats, err := load(ctx, c, o.Duration, func(ctx context.Context, w, i int) error {
				code, _, err := post(n1.url()+"/identity/v3/projects", tok, map[string]any{"project": map[string]any{"name": fmt.Sprintf("b%d-%d-%d-%d", c, r, w, i)}}, nil)
				if err == nil && code != 201 {
					err = fmt.Errorf("create project: HTTP %d", code)
				}
				return err
			})
			if err != nil {
				return nil, err
			}
			tput = append(tput, ops)
			p50 = append(p50, ms(percentile(lats, 50)))
			p99 = append(p99, ms(percentile(lats, 99)))
			fmt.Fprintf(o.Log, "control rackstack-api c=%d run %d: %.0f writes/s p50 %.2fms p99 %.2fms\n", c, r+1, ops, p50[len(p50)-1], p99[len(p99)-1])
		}
		params := map[string]any{"concurrency": c, "nodes": 3, "op": "project-create"}
		out = append(out,
			newResult("control", "rackstack-api", params, "writes", "requests/s", tput),
			newResult("control", "rackstack-api", params, "latency_p50", "ms", p50),
			newResult("control", "rackstack-api", params, "latency_p99", "ms", p99))
	}

	// Failover: kill -9 the leader, time until a write through a survivor
	// succeeds; restart the dead node before the next run.
	var failover []float64
	for r := 0; r < o.Runs; r++ {
		var leader string
		for _, p := range procs {
			if p.cmd != nil {
				if leader, err = leaderName(p.url(), tok); err == nil && leader != "" {
					break
				}
			}
		}
		lp := procs[leader]
		if lp == nil {
			return nil, fmt.Errorf("no leader found (%q)", leader)
		}
		var survivor *proc
		for _, p := range procs {
			if p != lp {
				survivor = p
				break
			}
		}
		stok, err := adminToken(survivor.url(), pw)
		if err != nil {
			return nil, err
		}
		t0 := time.Now()
		lp.kill()
		ok := false
		for i := 0; time.Since(t0) < 30*time.Second; i++ {
			code, _, err := post(survivor.url()+"/identity/v3/projects", stok, map[string]any{"project": map[string]any{"name": fmt.Sprintf("fo%d-%d", r, i)}}, nil)
			if err == nil && code == 201 {
				ok = true
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if !ok {
			return nil, fmt.Errorf("writes did not resume within 30s after killing %s", leader)
		}
		failover = append(failover, time.Since(t0).Seconds())
		fmt.Fprintf(o.Log, "control failover run %d: killed %s, writes resumed after %.2fs\n", r+1, leader, failover[len(failover)-1])
		if err := lp.start(o.BinDir); err != nil {
			return nil, err
		}
		if err := waitHealthy(lp.url(), 30*time.Second); err != nil {
			return nil, err
		}
		time.Sleep(3 * time.Second)
	}
	out = append(out, newResult("control", "rackstack-api", map[string]any{"nodes": 3}, "leader_failover_write_resume", "s", failover))
	return out, nil
}

// withoutHost are the flags of a rackd that measures the control plane or
// the object store: no tenant dataplane and no guests, so it pins nothing
// under /sys/fs/bpf and makes nothing under /run that would outlive the
// benchmark.
func withoutHost() []string { return []string{"--dataplane", "off", "--compute", "off"} }
