//go:build integration

// Package integration starts real rackd processes and drives them with real
// clients (the openstack CLI, rackctl, HTTP). Run with
// `go test -tags integration ./integration/...` (make integration).
package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var binDir string

// lanesAtOnce is how many parallel subtests (inParallel's lanes) run at
// once unless -test.parallel says otherwise: more than any test has.
const lanesAtOnce = 8

func TestMain(m *testing.M) {
	// Descriptors inherited from whoever ran the tests (a flock(1) on a
	// lock shared by several checkouts, say) stay out of the daemons the
	// tests start: one orphaned by a killed test would hold them forever.
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		for _, fd := range fds {
			if n, err := strconv.Atoi(fd.Name()); err == nil && n > 2 {
				syscall.CloseOnExec(n)
			}
		}
	}
	binDir = os.Getenv("RACKSTACK_BIN")
	if binDir == "" {
		dir, err := os.MkdirTemp("", "rackstack-bin")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer os.RemoveAll(dir)
		cmd := exec.Command("go", "build", "-o", dir+"/", "../cmd/...")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build binaries:", err)
			os.Exit(1)
		}
		binDir = dir
	}
	// The lanes of inParallel wait on clients, guests and daemons, not on
	// Go's CPU: -test.parallel's default (GOMAXPROCS) would run only two
	// of them at once on a two-core machine, the rest queued behind.
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		flag.Set("test.parallel", strconv.Itoa(lanesAtOnce))
	}
	done := reapLeftovers()
	stopCLI := startOSCFork()
	code := m.Run()
	stopCLI()
	done()
	os.Exit(code)
}

// Ports freeAddr has handed out in this process.
var (
	addrMu    sync.Mutex
	addrTaken = map[int]bool{}
)

// freeAddr returns a loopback host:port that was free a moment ago, for a
// rackd to listen on soon. It is drawn from below the kernel's ephemeral
// range (32768 up): a port the kernel picked for a listener of ours and
// freed again could be taken meanwhile as the source port of any outgoing
// connection (a full run saw "address already in use" that way); below
// that range only a listener takes it. Random, so that the two lanes of
// `make integration` (two processes) rarely try the same one, and never
// one this process handed out before.
func freeAddr(t *testing.T) string {
	t.Helper()
	addrMu.Lock()
	defer addrMu.Unlock()
	for range 1000 {
		port := 20000 + rand.IntN(12000)
		if addrTaken[port] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		l.Close()
		addrTaken[port] = true
		return l.Addr().String()
	}
	t.Fatal("no free loopback port in 20000-31999")
	return ""
}

// rackd is one rackd process this test started.
type rackd struct {
	t       *testing.T
	name    string
	dataDir string
	listen  string
	raft    string
	s3      string
	args    []string
	env     []string // added to this test's environment at each start
	cmd     *exec.Cmd
	logPath string
	exited  chan error
}

func (r *rackd) url() string { return "http://" + r.listen }

func newRackd(t *testing.T, name string, extra ...string) *rackd {
	t.Helper()
	r := &rackd{t: t, name: name, dataDir: filepath.Join(t.TempDir(), name), listen: freeAddr(t), raft: freeAddr(t), s3: freeAddr(t)}
	r.logPath = filepath.Join(t.TempDir(), name+".log")
	r.args = append([]string{
		"--name", name, "--data-dir", r.dataDir, "--listen", r.listen, "--raft-listen", r.raft, "--s3-listen", r.s3,
		"--heartbeat-interval", "500ms", "--down-after", "3s", "--dead-voter-after", "10s",
		// Tests that want a dataplane or compute say so (a later flag
		// wins); the others leave the host's bpffs and /run alone.
		"--dataplane", "off", "--compute", "off",
	}, extra...)
	return r
}

// start runs rackd; extra args apply to this start only.
func (r *rackd) start(extra ...string) {
	r.t.Helper()
	logf, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		r.t.Fatal(err)
	}
	r.cmd = exec.Command(filepath.Join(binDir, "rackd"), append(append([]string{}, r.args...), extra...)...)
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	if len(r.env) > 0 {
		r.cmd.Env = append(os.Environ(), r.env...)
	}
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	recordProcess(r.t, r.cmd.Process.Pid, true)
	r.exited = make(chan error, 1)
	cmd := r.cmd
	go func() { r.exited <- cmd.Wait(); logf.Close() }()
	r.t.Cleanup(func() { r.kill() })
}

// kill sends SIGKILL to the process this test started, by PID.
func (r *rackd) kill() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	select {
	case <-r.exited:
	default:
		_ = r.cmd.Process.Signal(syscall.SIGKILL)
		<-r.exited
	}
	r.cmd = nil
}

// waitExit waits for rackd to exit by itself and returns its log.
func (r *rackd) waitExit(d time.Duration) (error, string) {
	r.t.Helper()
	select {
	case err := <-r.exited:
		r.cmd = nil
		return err, r.log()
	case <-time.After(d):
		r.t.Fatalf("%s did not exit within %s; log:\n%s", r.name, d, r.log())
	}
	return nil, ""
}

func (r *rackd) log() string {
	b, _ := os.ReadFile(r.logPath)
	return string(b)
}

// waitHealthy waits until the node answers /healthz with a leader.
func (r *rackd) waitHealthy() {
	r.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(r.url() + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case err := <-r.exited:
			r.cmd = nil // reaped: kill, in the cleanup, must not wait for it again
			r.t.Fatalf("%s exited (%v); log:\n%s", r.name, err, r.log())
		case <-time.After(100 * time.Millisecond):
		}
	}
	r.t.Fatalf("%s not healthy within 60s; log:\n%s", r.name, r.log())
}

// openrc reads admin-openrc into a map of OS_* variables.
func openrc(t *testing.T, dataDir string) map[string]string {
	t.Helper()
	var f *os.File
	var err error
	for i := 0; i < 300; i++ {
		if f, err = os.Open(filepath.Join(dataDir, "admin-openrc")); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("admin-openrc: %v", err)
	}
	defer f.Close()
	st, _ := f.Stat()
	if st.Mode().Perm() != 0o600 {
		t.Errorf("admin-openrc mode %o, want 600", st.Mode().Perm())
	}
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "export ")
		if !ok {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		env[k] = strings.Trim(v, "'")
	}
	return env
}

// osEnv is an environment for the openstack CLI against node.
func osEnv(creds map[string]string, node *rackd, override ...string) []string {
	env := []string{"PATH=/usr/bin:/bin", "HOME=" + os.TempDir()}
	for k, v := range creds {
		if k == "OS_AUTH_URL" {
			v = node.url() + "/identity/v3"
		}
		env = append(env, k+"="+v)
	}
	return append(env, override...)
}

// openstack runs the real CLI and returns its stdout; it fails the test on
// a non-zero exit.
func openstack(t *testing.T, env []string, args ...string) string {
	t.Helper()
	out, err := openstackErr(env, args...)
	if err != nil {
		t.Fatalf("openstack %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func openstackErr(env []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	defer traceCommand(time.Now(), "openstack", args)
	return runOpenstack(ctx, env, args...)
}

// token gets an admin token over HTTP (password auth).
func token(t *testing.T, node *rackd, user, password, project string) string {
	t.Helper()
	body := fmt.Sprintf(`{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":%q,"domain":{"id":"default"},"password":%q}}},"scope":{"project":{"name":%q,"domain":{"id":"default"}}}}}`, user, password, project)
	for i := 0; i < 50; i++ {
		resp, err := http.Post(node.url()+"/identity/v3/auth/tokens", "application/json", strings.NewReader(body))
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 201 {
				return resp.Header.Get("X-Subject-Token")
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no token from %s", node.name)
	return ""
}

// call makes an authenticated JSON request and decodes the reply.
func call(method, url, tok string, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		raw, _ := json.Marshal(in)
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-Auth-Token", tok)
	req.Header.Set("Content-Type", "application/json")
	c := &http.Client{Timeout: 20 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %s: %w", raw, err)
		}
	}
	return resp.StatusCode, nil
}

// deleteServersAtCleanup deletes every server of every project when the
// test ends, failed or not. Guests outlive rackd by design, so a test
// that fails half-way would leave TCG guests spinning through every later
// test. Call it after the node's start, so that it runs before the stop
// that start registered.
func deleteServersAtCleanup(t *testing.T, admin []string) {
	t.Cleanup(func() {
		out, err := openstackErr(admin, "server", "list", "--all-projects", "-f", "value", "-c", "ID")
		if err != nil {
			t.Logf("listing servers to delete: %v\n%s", err, out)
			return
		}
		if ids := strings.Fields(out); len(ids) > 0 {
			if out, err := openstackErr(admin, append([]string{"server", "delete", "--wait"}, ids...)...); err != nil {
				t.Logf("deleting servers %v: %v\n%s", ids, err, out)
			}
		}
	})
}

// startDevCloud starts a one-node cloud (bootstrapped, healthy) whose
// cleanup kills it and purges what it made: guests outlive rackd, and
// the purge stops them and removes its taps, links and data.
func startDevCloud(t *testing.T, name string, args ...string) *rackd {
	t.Helper()
	n := newRackd(t, name, args...)
	n.start("--bootstrap")
	n.waitHealthy()
	t.Cleanup(func() {
		n.kill()
		if out, err := exec.Command(filepath.Join(binDir, "rackd"), "dev", "--purge", "--name", name, "--data-dir", n.dataDir).CombinedOutput(); err != nil {
			t.Errorf("rackd dev --purge: %v\n%s", err, out)
		}
	})
	return n
}
