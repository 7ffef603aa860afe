package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api/apitest"
	"github.com/rackstack/rackstack/fabric/store"
)

type noteRow struct {
	ID string `json:"id"`
}

func noteSchema() store.Schema {
	return store.Schema{
		Tables: []store.Table{{Schema: &memdb.TableSchema{Name: "notes", Indexes: idIndex("ID")}, Row: &noteRow{}}},
		Handlers: map[string]store.Handler{"note.put": func(tx *memdb.Txn, _ uint64, body json.RawMessage) (any, error) {
			var n noteRow
			if err := json.Unmarshal(body, &n); err != nil {
				return nil, err
			}
			return nil, tx.Insert("notes", &n)
		}},
	}
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type testNode struct {
	*Node
	api  *httptest.Server
	stop func()
}

func startNode(t *testing.T, name string, bootstrap bool, joinURL, token string) (*testNode, error) {
	return startNodeB(t, name, bootstrap, joinURL, token)
}

func startNodeB(t testing.TB, name string, bootstrap bool, joinURL, token string) (*testNode, error) {
	t.Helper()
	cfg := testConfig(t, name)
	cfg.Bootstrap, cfg.JoinURL, cfg.JoinToken = bootstrap, joinURL, token
	return openNode(t, cfg)
}

func testConfig(t testing.TB, name string) Config {
	cfg := Config{
		Name: name, DataDir: t.TempDir(), RaftListen: freePort(t),
		Schemas: []store.Schema{Schema(), noteSchema()}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		HeartbeatInterval: 100 * time.Millisecond, DownAfter: time.Second, DeadVoterAfter: 2 * time.Second,
		RaftHeartbeatTimeout: 300 * time.Millisecond, RaftElectionTimeout: 300 * time.Millisecond,
	}
	cfg.Advertise = cfg.RaftListen
	return cfg
}

// openNode opens a node and serves its API; stop closes both (idempotent)
// and also runs at cleanup.
func openNode(t testing.TB, cfg Config) (*testNode, error) {
	n, err := Open(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/rackstack/v1/", http.StripPrefix("/rackstack/v1", n.Handler(apitest.Tokens{"admin": {UserID: "u", Roles: []string{"admin"}, ProjectID: "p"}})))
	srv := httptest.NewServer(mux)
	n.cfg.APIURL = srv.URL // before Run reads it
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	var once sync.Once
	tn := &testNode{Node: n, api: srv}
	tn.stop = func() { once.Do(func() { cancel(); <-done; srv.Close(); n.Close() }) }
	t.Cleanup(tn.stop)
	return tn, nil
}

// startLeader starts node a, bootstrapping a cluster, and waits until it
// leads with the cluster CA published.
func startLeader(t *testing.T) *testNode {
	t.Helper()
	a, err := startNode(t, "a", true, "", "")
	if err != nil {
		t.Fatal(err)
	}
	waitLeads(t, a)
	return a
}

func waitLeads(t *testing.T, a *testNode) {
	t.Helper()
	waitFor(t, "a leads with the CA published", func() bool {
		_, err := readCA(a.State.Txn())
		return a.IsLeader() && err == nil
	})
}

// waitFor polls cond until it holds. The bound only ends a test that
// hangs: it is generous, for machines where these in-process clusters get
// little CPU.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestClusterJoinForwardAndReadYourWrites(t *testing.T) {
	a := startLeader(t)
	ctx := context.Background()
	tok, err := a.CreateJoinToken(ctx, time.Hour, 2)
	if err != nil {
		t.Fatal(err)
	}
	b, err := startNode(t, "b", false, a.api.URL, tok.Token)
	if err != nil {
		t.Fatal(err)
	}
	// c joins through b, a follower: the join is passed to the leader.
	c, err := startNode(t, "c", false, b.api.URL, tok.Token)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "three voters, all up", func() bool {
		st, err := a.Status()
		if err != nil || len(st.Members) != 3 || !st.Healthy {
			return false
		}
		for _, m := range st.Members {
			if m.Suffrage != "voter" || !m.Up {
				return false
			}
		}
		return true
	})

	// A write through follower b is visible at once through follower c.
	for i := 0; i < 20; i++ {
		id := fmt.Sprintf("n%d", i)
		if _, err := b.Propose(ctx, "note.put", noteRow{ID: id}); err != nil {
			t.Fatal(err)
		}
		tx, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if raw, _ := tx.First("notes", "id", id); raw == nil {
			t.Fatalf("write %s through b not visible through c", id)
		}
	}

	// The token had two uses: a third join is refused with a clear reason.
	_, err = startNode(t, "d", false, a.api.URL, tok.Token)
	if err == nil || !strings.Contains(err.Error(), "already been used") {
		t.Fatalf("reused token: err = %v", err)
	}
	// A node name already in the cluster is refused.
	tok2, _ := a.CreateJoinToken(ctx, time.Hour, 1)
	if _, err = startNode(t, "b", false, a.api.URL, tok2.Token); err == nil || !strings.Contains(err.Error(), "already a member") {
		t.Fatalf("duplicate name: err = %v", err)
	}
}

func TestJoinRefusals(t *testing.T) {
	a := startLeader(t)
	ctx := context.Background()
	expired, err := a.CreateJoinToken(ctx, time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	a.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	tests := map[string]struct {
		token string
		want  string
	}{
		"malformed": {"hello", "malformed"},
		"unknown":   {tokenPrefix + strings.Repeat("a", 32) + "." + strings.Repeat("b", 32), "not valid"},
		"expired":   {expired.Token, "expired"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := startNode(t, "x-"+name, false, a.api.URL, tc.token)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "HTTP 403") {
				t.Fatalf("err = %v, want 403 mentioning %q", err, tc.want)
			}
		})
	}
}

func TestClusterAPIRequiresAdmin(t *testing.T) {
	a, err := startNode(t, "a", true, "", "")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "leader", a.IsLeader)
	tests := map[string]struct {
		token string
		want  int
	}{"none": {"", 401}, "bad": {"nope", 401}, "admin": {"admin", 200}}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", a.api.URL+"/rackstack/v1/cluster/status", nil)
			if tc.token != "" {
				req.Header.Set("X-Auth-Token", tc.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
	req, _ := http.NewRequest("POST", a.api.URL+"/rackstack/v1/cluster/join-tokens", strings.NewReader(`{"ttl":"forever"}`))
	req.Header.Set("X-Auth-Token", "admin")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), "ttl") {
		t.Fatalf("bad ttl: %d %s", resp.StatusCode, body)
	}
}

func TestOpenRefusesEmptyDataDirWithoutMode(t *testing.T) {
	_, err := Open(context.Background(), Config{Name: "x", DataDir: t.TempDir(), RaftListen: freePort(t), Advertise: "127.0.0.1:1", Schemas: []store.Schema{Schema()}})
	if err == nil || !strings.Contains(err.Error(), "--bootstrap") {
		t.Fatalf("err = %v", err)
	}
}

func TestSnapshotRestoreClusterCommands(t *testing.T) {
	l, err := store.NewLocal(Schema())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ca, err := NewCA("t")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	steps := []struct {
		typ  string
		body any
	}{
		{CmdSetCA, ca},
		{CmdCreateJoinToken, joinTokenRow{ID: "t1", SecretHash: []byte{1}, ExpiresAt: now.Add(time.Hour), UsesLeft: 1, CreatedAt: now}},
		{CmdUseJoinToken, useJoinToken{ID: "t1", SecretHash: []byte{1}, Now: now, Node: &nodeRow{Name: "c", JoinedAt: now}}},
		{CmdRegisterNode, nodeRow{Name: "a", APIURL: "http://a", RaftAddress: "a:1", JoinedAt: now, LastHeartbeat: now}},
		{CmdRegisterNode, nodeRow{Name: "b", JoinedAt: now}},
		{CmdDeclareCommands, declareCommands{Name: "a", Commands: l.State.Commands()}},
		{CmdDeclareCommands, declareCommands{Name: "b", Commands: l.State.Commands()}},
		{CmdHeartbeat, heartbeat{Name: "a", At: now.Add(time.Second)}},
		{CmdRemoveNode, removeNode{Name: "b"}},
		{CmdCreateJoinToken, joinTokenRow{ID: "t2", SecretHash: []byte{2}, ExpiresAt: now.Add(time.Hour), UsesLeft: 3, CreatedAt: now}},
		{CmdRevokeJoinToken, revokeJoinToken{ID: "t2"}},
		{CmdSetSecretKeyID, secretKeyRow{KeyID: "k1"}},
		{CmdSetSecretKeyID, secretKeyRow{KeyID: "k1"}}, // repeating the same id is no change
	}
	for _, s := range steps {
		if _, err := l.Propose(ctx, s.typ, s.body); err != nil {
			t.Fatalf("%s: %v", s.typ, err)
		}
	}
	store.EveryCommandSurvivesSnapshot(t, l, Schema())
	// A used token cannot be used again, and a second CA is refused.
	if _, err := l.Propose(ctx, CmdUseJoinToken, useJoinToken{ID: "t1", SecretHash: []byte{1}, Now: now}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("reuse: %v", err)
	}
	// The same join sent again after an unknown outcome has counted once;
	// another join of that name (a later JoinedAt) is a new use.
	if _, err := l.Propose(ctx, CmdUseJoinToken, useJoinToken{ID: "t1", SecretHash: []byte{1}, Now: now, Node: &nodeRow{Name: "c", JoinedAt: now}}); err != nil {
		t.Fatalf("the same join again: %v", err)
	}
	if _, err := l.Propose(ctx, CmdUseJoinToken, useJoinToken{ID: "t1", SecretHash: []byte{1}, Now: now, Node: &nodeRow{Name: "c", JoinedAt: now.Add(time.Second)}}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("a second join with a spent token: %v", err)
	}
	if _, err := l.Propose(ctx, CmdUseJoinToken, useJoinToken{ID: "t1", SecretHash: []byte{9}, Now: now, Node: &nodeRow{Name: "c", JoinedAt: now}}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("the same join with a wrong secret: %v", err)
	}
	if _, err := l.Propose(ctx, CmdSetCA, ca); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second CA: %v", err)
	}
	// A revoked token is gone: joining with it is refused like an unknown one.
	if _, err := l.Propose(ctx, CmdUseJoinToken, useJoinToken{ID: "t2", SecretHash: []byte{2}, Now: now}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("use of a revoked token: %v", err)
	}
	if _, err := l.Propose(ctx, CmdRevokeJoinToken, revokeJoinToken{ID: "t2"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoking twice: %v", err)
	}
	// Once one key is the cluster's, another is refused.
	if _, err := l.Propose(ctx, CmdSetSecretKeyID, secretKeyRow{KeyID: "k2"}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second secret key: %v", err)
	}
}

// TestDeadVoterReplacedThenRecover runs four nodes (three voters and a
// non-voter), stops a voter, and checks that the non-voter is promoted and
// the dead voter removed. Then it loses quorum for good and rebuilds the
// cluster from one survivor with Recover.
func TestDeadVoterReplacedThenRecover(t *testing.T) {
	// A live voter whose heartbeats stall longer than DeadVoterAfter is
	// replaced as dead too, and the test wants c replaced, not b: on a
	// starved machine (load 25) live voters were seen down for more than
	// testConfig's DownAfter, as heartbeats are proposals and an election
	// stalls them. Slower Raft timeouts make such elections rarer; c's
	// death is waited for, however long it takes.
	cfgOf := func(name string) Config {
		cfg := testConfig(t, name)
		cfg.DownAfter, cfg.DeadVoterAfter = 3*time.Second, 8*time.Second
		cfg.RaftHeartbeatTimeout, cfg.RaftElectionTimeout = time.Second, time.Second
		return cfg
	}
	aCfg := cfgOf("a")
	aCfg.Bootstrap = true
	a, err := openNode(t, aCfg)
	if err != nil {
		t.Fatal(err)
	}
	waitLeads(t, a)
	ctx := context.Background()
	tok, err := a.CreateJoinToken(ctx, time.Hour, 3)
	if err != nil {
		t.Fatal(err)
	}
	nodes := map[string]*testNode{"a": a}
	for _, name := range []string{"b", "c", "d"} {
		cfg := cfgOf(name)
		cfg.JoinURL, cfg.JoinToken = a.api.URL, tok.Token
		n, err := openNode(t, cfg)
		if err != nil {
			t.Fatal(err)
		}
		nodes[name] = n
	}
	var last Status // what a saw last, for a failure to show
	defer func() {
		if t.Failed() {
			t.Logf("a's last status: leader %q, members %+v, problems %q", last.Leader, last.Members, last.Problems)
		}
	}()
	suffrage := func() map[string]string {
		out := map[string]string{}
		st, err := a.Status()
		if err != nil {
			return out
		}
		last = st
		for _, m := range st.Members {
			out[m.Name] = m.Suffrage
		}
		return out
	}
	waitFor(t, "three voters and one non-voter", func() bool {
		s := suffrage()
		return len(s) == 4 && s["d"] == "nonvoter" && s["a"] == "voter" && s["b"] == "voter" && s["c"] == "voter"
	})
	// A starved machine can cost the leader its leadership while the note
	// commits: the outcome is then unknown, and the same note is sent
	// again (putting one row twice leaves one row) until it is known
	// written.
	waitFor(t, "the note written before the recovery", func() bool {
		_, err := a.Propose(ctx, "note.put", noteRow{ID: "before"})
		if err != nil && !errors.Is(err, store.ErrOutcomeUnknown) && !errors.Is(err, store.ErrNoLeader) {
			t.Fatal(err)
		}
		return err == nil
	})
	nodes["c"].stop()
	waitFor(t, "d promoted and c removed", func() bool {
		s := suffrage()
		_, cThere := s["c"]
		return !cThere && s["d"] == "voter" && len(s) == 3
	})

	// Lose quorum for good: stop everything, keep only a's data dir.
	aCfg = a.cfg
	for _, n := range nodes {
		n.stop()
	}
	if err := Recover(aCfg.DataDir, "a", aCfg.Advertise, aCfg.Schemas); err != nil {
		t.Fatal(err)
	}
	aCfg.Bootstrap, aCfg.JoinURL, aCfg.Registry = false, "", nil
	a2, err := openNode(t, aCfg)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "recovered a to lead alone", a2.IsLeader)
	if _, err := a2.Propose(ctx, "note.put", noteRow{ID: "after"}); err != nil {
		t.Fatal(err)
	}
	tx, _ := a2.Read(ctx)
	if raw, _ := tx.First("notes", "id", "before"); raw == nil {
		t.Fatal("data written before the recovery is gone")
	}
	st, _ := a2.Status()
	if len(st.Members) != 1 || st.Members[0].Name != "a" {
		t.Fatalf("members after recover: %+v", st.Members)
	}
}

// TestRestartedLeaderReadsEveryAcknowledgedWrite restarts a one-node
// cluster and reads at once: a leader whose log has entries it has not
// applied yet must catch up before it answers a read.
func TestRestartedLeaderReadsEveryAcknowledgedWrite(t *testing.T) {
	cfg := testConfig(t, "a")
	cfg.Bootstrap = true
	for round := 0; round < 3; round++ {
		n, err := openNode(t, cfg)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "leader", n.IsLeader)
		ctx := context.Background()
		want := (round + 1) * 200
		for i := round * 200; i < want; i++ {
			if _, err := n.Propose(ctx, "note.put", noteRow{ID: fmt.Sprintf("n%04d", i)}); err != nil {
				t.Fatal(err)
			}
		}
		n.stop()
		n, err = openNode(t, cfg)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "leader after restart", n.IsLeader)
		tx, err := n.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		it, _ := tx.Get("notes", "id")
		got := 0
		for o := it.Next(); o != nil; o = it.Next() {
			got++
		}
		if got != want {
			t.Fatalf("round %d: read %d notes right after restart, %d were acknowledged", round, got, want)
		}
		n.stop()
	}
}

// A command forwarded to a node that is no longer the leader this node
// knows (a frozen leader keeps its connections open and never answers) is
// abandoned at once with an unknown outcome, not after the caller's
// deadline, and is not retried elsewhere.
func TestForwardToAFormerLeaderFailsFast(t *testing.T) {
	a, err := startNode(t, "a", true, "", "")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a leads", a.IsLeader)
	frozen, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { frozen.Close() })
	go func() {
		var held []net.Conn // accepted, never read: a SIGSTOPped process
		for {
			c, err := frozen.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			held = append(held, c)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd, _ := store.NewCommand("note.put", noteRow{ID: "x"})
	_, err = a.forwardApply(ctx, frozen.Addr().String(), cmd)
	if ctx.Err() != nil {
		t.Fatal("the forward waited for the caller's deadline")
	}
	if !errors.Is(err, store.ErrOutcomeUnknown) || retryable(err) {
		t.Fatalf("forward to a former leader: %v (retryable %v)", err, retryable(err))
	}
}

// dropAfterRead is a fake leader: it reads each request whole, counts
// those whose body holds mark, and drops the connection without answering,
// as a leader that applied the command and then lost its connection would
// look. Only the marked ones count: the node's own heartbeats and lease
// reads go to the fake too, from its background loop.
func dropAfterRead(t *testing.T, mark string) (addr string, requests *atomic.Int32) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	requests = &atomic.Int32{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				body, _ := io.ReadAll(req.Body)
				if strings.Contains(string(body), mark) {
					requests.Add(1)
				}
			}()
		}
	}()
	return ln.Addr().String(), requests
}

// plainDialer makes a node's peer client dial addr in the clear, whatever
// peer it is asked for (the fake leader speaks no TLS).
func plainDialer(addr string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialTLSContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}}
}

// A command the leader may have received is not sent again when the
// connection drops: it could be applied twice. Only a request that never
// left (the leader could not be dialled) is retried.
func TestProposeDoesNotResendARequestTheLeaderMayHaveRead(t *testing.T) {
	// a is the only voter, so b joins as a non-voter: however late a's
	// heartbeats reach b on a starved machine, b never wins an election
	// and applies the command itself instead of sending it.
	cfg := testConfig(t, "a")
	cfg.Bootstrap, cfg.MaxVoters = true, 1
	a, err := openNode(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	waitLeads(t, a)
	ctx := context.Background()
	tok, err := a.CreateJoinToken(ctx, time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := startNode(t, "b", false, a.api.URL, tok.Token)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b follows a as a non-voter", func() bool {
		addr, _ := b.raft.LeaderWithID()
		st, err := a.Status()
		return err == nil && string(addr) == a.cfg.Advertise && len(st.Members) == 2 && st.Members[1].Suffrage == "nonvoter"
	})

	fake, requests := dropAfterRead(t, "once-c0ffee")
	b.rpc = plainDialer(fake)
	_, err = b.Propose(ctx, "note.put", noteRow{ID: "once-c0ffee"})
	if !errors.Is(err, store.ErrOutcomeUnknown) {
		t.Errorf("propose through a leader that dropped the connection: %v, want an unknown outcome", err)
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("the leader received the command %d times, want 1", n)
	}

	// Nothing listens: the request never left, and that may be retried.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	b.rpc = plainDialer(closed.Addr().String())
	cmd, _ := store.NewCommand("note.put", noteRow{ID: "x"})
	_, err = b.call(ctx, http.MethodPost, a.cfg.Advertise, rpcApply, cmd, nil)
	if !retryable(err) || errors.Is(err, store.ErrOutcomeUnknown) {
		t.Errorf("a refused dial: %v (retryable %v), want retryable", err, retryable(err))
	}
}

// TestStatusIsNotHealthyWithAVoterDown: one of three voters down leaves a
// quorum (writes work) but the cluster is not healthy, and the status
// names the node.
func TestStatusIsNotHealthyWithAVoterDown(t *testing.T) {
	a := startLeader(t)
	tok, err := a.CreateJoinToken(context.Background(), time.Hour, 2)
	if err != nil {
		t.Fatal(err)
	}
	var c *testNode
	for _, name := range []string{"b", "c"} {
		n, err := startNode(t, name, false, a.api.URL, tok.Token)
		if err != nil {
			t.Fatal(err)
		}
		c = n
	}
	waitFor(t, "three healthy voters", func() bool {
		st, err := a.Status()
		return err == nil && len(st.Members) == 3 && st.Healthy && st.Quorum && len(st.Problems) == 0
	})
	c.stop()
	// Under load another voter may miss a heartbeat for a moment too: wait
	// for c to be named, then check what the status says of it.
	var st Status
	waitFor(t, "c reported down", func() bool {
		st, err = a.Status()
		return err == nil && strings.Contains(strings.Join(st.Problems, "; "), "voter c is down")
	})
	if st.Healthy || !st.Quorum {
		t.Fatalf("with voter c down: healthy %v, quorum %v (problems %q); want not healthy, with quorum", st.Healthy, st.Quorum, st.Problems)
	}
}

// TestLeasedReadWaitsThroughAnElection: a token check on a follower whose
// state lease ran out just as the leader died waits for the next leader,
// as a write does, instead of answering "no leader" at once.
func TestLeasedReadWaitsThroughAnElection(t *testing.T) {
	a := startLeader(t)
	tok, err := a.CreateJoinToken(context.Background(), time.Hour, 2)
	if err != nil {
		t.Fatal(err)
	}
	var b *testNode
	for _, name := range []string{"b", "c"} {
		n, err := startNode(t, name, false, a.api.URL, tok.Token)
		if err != nil {
			t.Fatal(err)
		}
		if name == "b" {
			b = n
		}
	}
	waitFor(t, "three voters", func() bool {
		st, err := a.Status()
		return err == nil && len(st.Members) == 3 && st.Healthy
	})
	b.lease.mu.Lock()
	b.lease.until = time.Time{}
	b.lease.mu.Unlock()
	a.stop()
	if _, err := b.LeasedRead(context.Background()); err != nil {
		t.Fatalf("a leased read as the leader died: %v", err)
	}
	if !b.lease.valid(time.Now()) {
		t.Fatal("the read did not renew the lease")
	}
}

// A leader that restarts replays the log written since its last snapshot
// before it can answer a read. Until it has, it reports itself catching up
// (and /healthz answers 503), so that a client that waits for health does
// not send reads that hang for the replay; once it has, it says so without
// any read having asked.
func TestRestartedLeaderIsCatchingUpUntilItHasAppliedItsLog(t *testing.T) {
	cfg := testConfig(t, "a")
	cfg.Bootstrap = true
	n, err := openNode(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "leader", n.IsLeader)
	waitFor(t, "caught up", func() bool { return !n.CatchingUp() })
	ctx := context.Background()
	for i := 0; i < 20; i++ {
		if _, err := n.Propose(ctx, "note.put", noteRow{ID: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	n.stop()

	// The replay holds at the first note until the gate opens.
	gate := make(chan struct{})
	open := sync.OnceFunc(func() { close(gate) })
	gated := noteSchema()
	put := gated.Handlers["note.put"]
	gated.Handlers = map[string]store.Handler{"note.put": func(tx *memdb.Txn, idx uint64, body json.RawMessage) (any, error) {
		<-gate
		return put(tx, idx, body)
	}}
	cfg.Schemas = []store.Schema{Schema(), gated}
	n, err = openNode(t, cfg)
	if err != nil {
		open()
		t.Fatal(err)
	}
	t.Cleanup(open) // before the node stops: its replay must end
	waitFor(t, "leader after restart", n.IsLeader)
	if !n.CatchingUp() {
		t.Fatal("a restarted leader that has not applied its log reports itself caught up")
	}
	open()
	waitFor(t, "caught up after the replay", func() bool { return !n.CatchingUp() })
	tx := n.Local()
	it, _ := tx.Get("notes", "id")
	got := 0
	for o := it.Next(); o != nil; o = it.Next() {
		got++
	}
	if got != 20 {
		t.Fatalf("caught up with %d notes applied, want 20", got)
	}
}
