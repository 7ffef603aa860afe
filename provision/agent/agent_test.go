package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rackstack/rackstack/provision/agentapi"
)

// conductor is a provisioning server for the agent's tests: it hands out
// the commands of script in turn (each until its result is in) and records
// what the agent sent.
type conductor struct {
	t      *testing.T
	token  string
	script []agentapi.Command
	image  []byte
	drive  []byte
	// fail answers a path with a status instead (the n first calls when
	// failN > 0, every call otherwise).
	fail      map[string]int
	failN     map[string]int
	imageGate chan struct{} // when set, the image waits for it

	mu         sync.Mutex
	calls      map[string]int
	inventory  []agentapi.Inventory
	heartbeats []agentapi.Heartbeat
	results    []agentapi.Result
	// idleAfter counts heartbeats of an idle agent once a result is in.
	idleAfter int
}

func (c *conductor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	if c.calls == nil {
		c.calls = map[string]int{}
	}
	c.calls[r.URL.Path]++
	n := c.calls[r.URL.Path]
	code, failing := c.fail[r.URL.Path]
	if max := c.failN[r.URL.Path]; failing && max > 0 && n > max {
		failing = false
	}
	c.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+c.token {
		http.Error(w, "token", http.StatusUnauthorized)
		return
	}
	if failing {
		http.Error(w, "failing on purpose", code)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch r.URL.Path {
	case agentapi.PathInventory:
		var inv agentapi.Inventory
		if err := json.NewDecoder(r.Body).Decode(&inv); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.inventory = append(c.inventory, inv)
		json.NewEncoder(w).Encode(agentapi.InventoryReply{Node: "node-1"})
	case agentapi.PathHeartbeat:
		var hb agentapi.Heartbeat
		if err := json.NewDecoder(r.Body).Decode(&hb); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.heartbeats = append(c.heartbeats, hb)
		if hb.Running == "" && len(c.results) > 0 {
			c.idleAfter++
		}
		if hb.Running != "" && c.imageGate != nil {
			close(c.imageGate) // the agent said it is running: let the image flow
			c.imageGate = nil
		}
		cmd := agentapi.Command{Op: agentapi.OpWait}
		if len(c.results) < len(c.script) {
			cmd = c.script[len(c.results)]
		} else if len(c.script) > 0 {
			cmd = c.script[len(c.script)-1] // repeated after its result: must not run again
		}
		json.NewEncoder(w).Encode(agentapi.HeartbeatReply{Command: cmd, Interval: agentapi.Seconds(5 * time.Millisecond)})
	case agentapi.PathResult:
		var res agentapi.Result
		if err := json.NewDecoder(r.Body).Decode(&res); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.results = append(c.results, res)
		w.WriteHeader(http.StatusNoContent)
	case agentapi.PathImage:
		gate := c.imageGate
		c.mu.Unlock()
		if gate != nil {
			<-gate
		}
		http.ServeContent(w, r, "image", time.Time{}, bytes.NewReader(c.image))
		c.mu.Lock()
	case agentapi.PathConfigDrive:
		w.Write(c.drive)
	default:
		http.NotFound(w, r)
	}
}

func (c *conductor) count(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[path]
}

// logWatch is a log that signals when a line containing want is written.
type logWatch struct {
	want string
	seen chan struct{}
	once sync.Once
	buf  bytes.Buffer
	mu   sync.Mutex
}

func (l *logWatch) Write(b []byte) (int, error) {
	l.mu.Lock()
	l.buf.Write(b)
	l.mu.Unlock()
	if l.want != "" && bytes.Contains(b, []byte(l.want)) {
		l.once.Do(func() { close(l.seen) })
	}
	return len(b), nil
}

func testConfig(t *testing.T, url string, log io.Writer) Config {
	return Config{
		URL: url, Token: "tok", MAC: "52:54:00:00:00:01",
		Heartbeat: 5 * time.Millisecond, Attempts: 3, Backoff: time.Millisecond,
		Log:     slog.New(slog.NewTextHandler(log, nil)),
		Inspect: func() (agentapi.Inventory, error) { return agentapi.Inventory{CPU: agentapi.CPU{Count: 2}}, nil },
	}
}

// A deploy runs once although every heartbeat names it, the agent keeps
// heartbeating while it runs (with the command and its progress), posts
// one result, and the poweroff after it powers off once.
func TestDeployThenPowerOff(t *testing.T) {
	image := mbrImage(t, 3<<20)
	sum := sha256.Sum256(image)
	disk := emptyDisk(t, 16<<20)
	c := &conductor{token: "tok", image: image, drive: bytes.Repeat([]byte("config-2"), 1000), imageGate: make(chan struct{})}
	c.script = []agentapi.Command{
		{ID: "d1", Op: agentapi.OpDeploy, Deploy: &agentapi.DeployArgs{RootDisk: disk, ImageSize: int64(len(image)), ImageSHA256: hex.EncodeToString(sum[:]), ConfigDrive: true}},
		{ID: "p1", Op: agentapi.OpPowerOff},
	}
	srv := httptest.NewServer(c)
	defer srv.Close()
	cfg := testConfig(t, srv.URL, io.Discard)
	var poweredOff int
	cfg.PowerOff = func() error { poweredOff++; return nil }
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := Run(ctx, cfg); !errors.Is(err, ErrPoweredOff) {
		t.Fatalf("Run = %v, want ErrPoweredOff", err)
	}
	if poweredOff != 1 {
		t.Errorf("powered off %d times", poweredOff)
	}
	if len(c.inventory) != 1 || c.inventory[0].CPU.Count != 2 {
		t.Errorf("inventory posts %+v", c.inventory)
	}
	if len(c.results) != 2 || c.results[0].CommandID != "d1" || !c.results[0].OK || c.results[1].CommandID != "p1" || !c.results[1].OK {
		t.Fatalf("results %+v, want d1 ok then p1 ok", c.results)
	}
	if !strings.Contains(c.results[0].Message, "sha256 ok, config drive on "+disk+"2") {
		t.Errorf("deploy message %q", c.results[0].Message)
	}
	running := false
	for _, hb := range c.heartbeats {
		if hb.Running == agentapi.OpDeploy && hb.CommandID == "d1" && hb.Progress != "" {
			running = true
		}
	}
	if !running {
		t.Errorf("no heartbeat said the deploy was running: %+v", c.heartbeats)
	}
	if n := c.count(agentapi.PathImage); n != 1 {
		t.Errorf("the image was fetched %d times: the deploy ran more than once", n)
	}
}

// An image that is not what the conductor said fails the deploy with a
// result naming both hashes; the agent carries on heartbeating.
func TestDeployChecksumMismatchFails(t *testing.T) {
	image := mbrImage(t, 2<<20)
	disk := emptyDisk(t, 8<<20)
	wrong := sha256.Sum256([]byte("another image"))
	c := &conductor{token: "tok", image: image, script: []agentapi.Command{
		{ID: "d1", Op: agentapi.OpDeploy, Deploy: &agentapi.DeployArgs{RootDisk: disk, ImageSize: int64(len(image)), ImageSHA256: hex.EncodeToString(wrong[:])}},
	}}
	srv := httptest.NewServer(c)
	defer srv.Close()
	res := runUntilResults(t, srv.URL, c, 1)
	if res[0].OK || !strings.Contains(res[0].Error, "sha256") || !strings.Contains(res[0].Error, hex.EncodeToString(wrong[:])) {
		t.Fatalf("result %+v, want a failure naming the sha256", res[0])
	}
}

func TestUnknownCommandFails(t *testing.T) {
	c := &conductor{token: "tok", script: []agentapi.Command{{ID: "x1", Op: "format-c"}}}
	srv := httptest.NewServer(c)
	defer srv.Close()
	res := runUntilResults(t, srv.URL, c, 1)
	if res[0].OK || !strings.Contains(res[0].Error, `unknown command op "format-c"`) {
		t.Fatalf("result %+v", res[0])
	}
}

// runUntilResults runs an agent until the conductor holds n results and
// the agent has said it is idle after them (so a command it wrongly ran
// again would have run by then).
func runUntilResults(t *testing.T, url string, c *conductor, n int) []agentapi.Result {
	t.Helper()
	return runConfigUntilResults(t, testConfig(t, url, io.Discard), c, n)
}

// runConfigUntilResults is runUntilResults with the agent's Config.
func runConfigUntilResults(t *testing.T, cfg Config, c *conductor, n int) []agentapi.Result {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	deadline := time.After(30 * time.Second)
	for {
		c.mu.Lock()
		got, idle := len(c.results), c.idleAfter
		c.mu.Unlock()
		if got >= n && idle > 0 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("agent stopped: %v", err)
		case <-deadline:
			t.Fatal("no result")
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	<-done
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]agentapi.Result(nil), c.results...)
}

// A 401 ends the agent at once: no retry can make a dead token valid.
func TestUnauthorizedStops(t *testing.T) {
	c := &conductor{token: "another boot's token"}
	srv := httptest.NewServer(c)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := Run(ctx, testConfig(t, srv.URL, io.Discard))
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("Run = %v, want ErrUnauthorized", err)
	}
	if n := c.count(agentapi.PathInventory); n != 1 {
		t.Errorf("%d inventory posts, want 1 (no retry on 401)", n)
	}
}

// Each call is tried Attempts times, then logged and left for the next
// heartbeat; a call that succeeds on a retry is not repeated.
func TestRetriesAreBounded(t *testing.T) {
	c := &conductor{token: "tok", fail: map[string]int{agentapi.PathInventory: http.StatusServiceUnavailable}}
	srv := httptest.NewServer(c)
	defer srv.Close()
	log := &logWatch{want: "post inventory failed", seen: make(chan struct{})}
	cfg := testConfig(t, srv.URL, log)
	cfg.Heartbeat = time.Hour // one round only
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	select {
	case <-log.seen:
	case <-time.After(30 * time.Second):
		t.Fatal("the agent never gave up on the inventory")
	}
	if n := c.count(agentapi.PathInventory); n != cfg.Attempts {
		t.Errorf("%d inventory attempts, want %d", n, cfg.Attempts)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v", err)
	}
	if !strings.Contains(log.buf.String(), "gave up after 3 attempts") {
		t.Errorf("log does not say it gave up: %s", log.buf.String())
	}
}

// A result the server does not take is kept and posted again; the command
// does not run again meanwhile, although every heartbeat still names it.
func TestResultIsPostedAgain(t *testing.T) {
	image := mbrImage(t, 2<<20)
	sum := sha256.Sum256(image)
	disk := emptyDisk(t, 4<<20)
	c := &conductor{token: "tok", image: image,
		script: []agentapi.Command{{ID: "d1", Op: agentapi.OpDeploy, Deploy: &agentapi.DeployArgs{RootDisk: disk, ImageSize: int64(len(image)), ImageSHA256: hex.EncodeToString(sum[:])}}},
		fail:   map[string]int{agentapi.PathResult: http.StatusBadGateway},
		failN:  map[string]int{agentapi.PathResult: 4}, // more than one call's 3 attempts
	}
	srv := httptest.NewServer(c)
	defer srv.Close()
	res := runUntilResults(t, srv.URL, c, 1)
	if len(res) != 1 || !res[0].OK || res[0].CommandID != "d1" {
		t.Fatalf("results %+v", res)
	}
	if n := c.count(agentapi.PathResult); n != 5 {
		t.Errorf("%d result posts, want 5 (4 refused, then taken)", n)
	}
	if n := c.count(agentapi.PathImage); n != 1 {
		t.Errorf("the image was fetched %d times: the deploy ran again while its result waited", n)
	}
}

// A poweroff whose result cannot be posted still powers off once the
// result's retries are spent.
func TestPowerOffWhenResultFails(t *testing.T) {
	c := &conductor{token: "tok", script: []agentapi.Command{{ID: "p1", Op: agentapi.OpPowerOff}},
		fail: map[string]int{agentapi.PathResult: http.StatusServiceUnavailable}}
	srv := httptest.NewServer(c)
	defer srv.Close()
	cfg := testConfig(t, srv.URL, io.Discard)
	var poweredOff int
	cfg.PowerOff = func() error { poweredOff++; return nil }
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := Run(ctx, cfg); !errors.Is(err, ErrPoweredOff) || poweredOff != 1 {
		t.Fatalf("Run = %v after %d power offs, want ErrPoweredOff after 1", err, poweredOff)
	}
	if n := c.count(agentapi.PathResult); n != cfg.Attempts {
		t.Errorf("%d result posts, want %d", n, cfg.Attempts)
	}
}

func TestMissingURL(t *testing.T) {
	if err := Run(context.Background(), Config{Token: "t"}); err == nil || !strings.Contains(err.Error(), agentapi.ArgURL) {
		t.Fatalf("Run = %v, want an error naming %s", err, agentapi.ArgURL)
	}
}

func emptyDisk(t *testing.T, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "vd")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, size); err != nil {
		t.Fatal(err)
	}
	return p
}

// A deploy that asks for the deploy step erase_devices_metadata first
// erases every disk of the inventory (the data disk's signatures go, its
// data stays), then writes the image, and says both in its result.
func TestDeployErasesMetadataFirst(t *testing.T) {
	image := mbrImage(t, 2<<20)
	sum := sha256.Sum256(image)
	root := emptyDisk(t, 8<<20)
	data := emptyDisk(t, 8<<20)
	fill(t, data, 8<<20, 0xaa)
	c := &conductor{token: "tok", image: image, script: []agentapi.Command{
		{ID: "d1", Op: agentapi.OpDeploy, Deploy: &agentapi.DeployArgs{RootDisk: root, ImageSize: int64(len(image)), ImageSHA256: hex.EncodeToString(sum[:]), EraseMetadata: true}},
	}}
	srv := httptest.NewServer(c)
	defer srv.Close()
	cfg := testConfig(t, srv.URL, io.Discard)
	cfg.Inspect = func() (agentapi.Inventory, error) {
		return agentapi.Inventory{Disks: []agentapi.Disk{{Name: root}, {Name: data}}}, nil
	}
	res := runConfigUntilResults(t, cfg, c, 1)
	if !res[0].OK || !strings.Contains(res[0].Message, "erased metadata") || !strings.Contains(res[0].Message, "sha256 ok") {
		t.Fatalf("result %+v, want the erase and the write", res[0])
	}
	b, _ := os.ReadFile(data)
	if !zeroed(t, b, 0, mib) || b[4*mib] != 0xaa {
		t.Errorf("data disk: start erased %t, middle kept %t", zeroed(t, b, 0, mib), b[4*mib] == 0xaa)
	}
	if w, _ := os.ReadFile(root); !bytes.Equal(w[:len(image)], image) {
		t.Error("the root disk does not hold the image")
	}
}
