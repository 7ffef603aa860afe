package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"
)

// kv is a tiny test service: one table, three command types.
type kvRow struct {
	ID    string `json:"id"`
	Value string `json:"value"`
}

func kvSchema() Schema {
	return Schema{
		Tables: []Table{{Schema: &memdb.TableSchema{Name: "kv", Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
		}}, Row: &kvRow{}}},
		Handlers: map[string]Handler{
			"kv.put": func(tx *memdb.Txn, _ uint64, body json.RawMessage) (any, error) {
				var r kvRow
				if err := json.Unmarshal(body, &r); err != nil {
					return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
				}
				return r.Value, tx.Insert("kv", &r)
			},
			"kv.create": func(tx *memdb.Txn, _ uint64, body json.RawMessage) (any, error) {
				var r kvRow
				if err := json.Unmarshal(body, &r); err != nil {
					return nil, err
				}
				if old, _ := tx.First("kv", "id", r.ID); old != nil {
					return nil, fmt.Errorf("key %s: %w", r.ID, ErrConflict)
				}
				return nil, tx.Insert("kv", &r)
			},
			"kv.delete": func(tx *memdb.Txn, _ uint64, body json.RawMessage) (any, error) {
				var r kvRow
				if err := json.Unmarshal(body, &r); err != nil {
					return nil, err
				}
				n, err := tx.DeleteAll("kv", "id", r.ID)
				if err == nil && n == 0 {
					err = fmt.Errorf("key %s: %w", r.ID, ErrNotFound)
				}
				return nil, err
			},
		},
	}
}

func get(t *testing.T, s *State, id string) string {
	t.Helper()
	raw, err := s.Txn().First("kv", "id", id)
	if err != nil {
		t.Fatal(err)
	}
	if raw == nil {
		return ""
	}
	return raw.(*kvRow).Value
}

func TestLocalAppliesAndErrors(t *testing.T) {
	l, err := NewLocal(kvSchema())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	res, err := l.Propose(ctx, "kv.put", kvRow{ID: "a", Value: "1"})
	if err != nil {
		t.Fatal(err)
	}
	var v string
	if err := res.Decode(&v); err != nil || v != "1" {
		t.Fatalf("result = %q, %v", v, err)
	}
	tests := map[string]struct {
		typ  string
		body any
		want error
	}{
		"conflict":        {"kv.create", kvRow{ID: "a"}, ErrConflict},
		"not found":       {"kv.delete", kvRow{ID: "zz"}, ErrNotFound},
		"unknown command": {"kv.nope", kvRow{}, ErrUnknownCommand},
		"bad body":        {"kv.put", "not an object", ErrInvalid},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := l.Propose(ctx, tc.typ, tc.body)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if got := get(t, l.State, "a"); got != "1" {
		t.Fatalf("a = %q after failed commands, want 1", got)
	}
}

func TestDuplicateRegistrationRefused(t *testing.T) {
	if _, err := NewState(kvSchema(), kvSchema()); err == nil {
		t.Fatal("registering a table twice must fail")
	}
}

func TestSnapshotRestoreEveryCommand(t *testing.T) {
	l, _ := NewLocal(kvSchema())
	ctx := context.Background()
	for _, c := range []struct {
		typ  string
		body kvRow
	}{
		{"kv.put", kvRow{ID: "a", Value: "1"}},
		{"kv.create", kvRow{ID: "b", Value: "2"}},
		{"kv.put", kvRow{ID: "c", Value: "3"}},
		{"kv.delete", kvRow{ID: "c"}},
	} {
		if _, err := l.Propose(ctx, c.typ, c.body); err != nil {
			t.Fatal(err)
		}
	}
	first := EveryCommandSurvivesSnapshot(t, l, kvSchema())
	if !bytes.Contains(first, []byte(`"value":"2"`)) || bytes.Contains(first, []byte(`"id":"c"`)) {
		t.Fatalf("snapshot content wrong: %s", first)
	}
}

// recordingTB records what EveryCommandSurvivesSnapshot reports.
type recordingTB struct{ errors, fatals []string }

func (r *recordingTB) Helper() {}
func (r *recordingTB) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
func (r *recordingTB) Fatalf(format string, args ...any) {
	r.fatals = append(r.fatals, fmt.Sprintf(format, args...))
}

// The shared snapshot check names each command a test forgot, and fails
// when the snapshot does not restore.
func TestEveryCommandSurvivesSnapshotCatchesGaps(t *testing.T) {
	l, _ := NewLocal(kvSchema())
	if _, err := l.Propose(context.Background(), "kv.put", kvRow{ID: "a", Value: "1"}); err != nil {
		t.Fatal(err)
	}
	var r recordingTB
	EveryCommandSurvivesSnapshot(&r, l, kvSchema())
	want := []string{"command kv.create is not exercised by this test", "command kv.delete is not exercised by this test"}
	if fmt.Sprint(r.errors) != fmt.Sprint(want) || len(r.fatals) != 0 {
		t.Errorf("errors %q, fatals %q; want errors %q", r.errors, r.fatals, want)
	}
	r = recordingTB{}
	EveryCommandSurvivesSnapshot(&r, l) // restored into a state without the kv table
	if len(r.fatals) != 1 {
		t.Errorf("restore into a state without the table: fatals %q, want one", r.fatals)
	}
}

func TestRestoreRejectsGarbage(t *testing.T) {
	st, _ := NewState(kvSchema())
	f := NewFSM(st, nil)
	err := f.Restore(io.NopCloser(bytes.NewReader([]byte(`{"t":"nosuch","r":{}}`))))
	if err == nil {
		t.Fatal("restore of an unknown table must fail")
	}
}

// newTestCluster starts n Raft nodes on the in-memory transport.
func newTestCluster(t *testing.T, n int) ([]*Raft, []*State) {
	t.Helper()
	return newMixedCluster(t, n, func(int) []Schema { return []Schema{kvSchema()} })
}

// newMixedCluster is newTestCluster with node i's state built from
// schemas(i), to stand for nodes running different versions of rackd.
func newMixedCluster(t *testing.T, n int, schemas func(i int) []Schema) ([]*Raft, []*State) {
	t.Helper()
	var trans []*raft.InmemTransport
	var addrs []raft.ServerAddress
	for i := 0; i < n; i++ {
		a, tr := raft.NewInmemTransport("")
		addrs = append(addrs, a)
		trans = append(trans, tr)
	}
	for i := range trans {
		for j := range trans {
			if i != j {
				trans[i].Connect(addrs[j], trans[j])
			}
		}
	}
	var servers []raft.Server
	for i := range trans {
		servers = append(servers, raft.Server{ID: raft.ServerID(fmt.Sprintf("n%d", i)), Address: addrs[i], Suffrage: raft.Voter})
	}
	var rafts []*Raft
	var states []*State
	for i := range trans {
		st, err := NewState(schemas(i)...)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		cfg := RaftConfig{ID: fmt.Sprintf("n%d", i), DataDir: dir, Transport: trans[i], State: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			HeartbeatTimeout: 200 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond}
		logs, snaps, err := openStores(dir, RaftLogger(cfg.Log, "raft"))
		if err != nil {
			t.Fatal(err)
		}
		if err := raft.BootstrapCluster(raftConfig(cfg, RaftLogger(cfg.Log, "raft")), logs, logs, snaps, trans[i], raft.Configuration{Servers: servers}); err != nil {
			t.Fatal(err)
		}
		logs.Close()
		r, err := OpenRaft(cfg, false, addrs[i])
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		rafts = append(rafts, r)
		states = append(states, st)
	}
	return rafts, states
}

func leaderOf(t *testing.T, rafts []*Raft, skip int) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for i, r := range rafts {
			if i != skip && r.State() == raft.Leader {
				return i
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no leader elected")
	return -1
}

func TestThreeNodeReplicationAndFailover(t *testing.T) {
	rafts, states := newTestCluster(t, 3)
	ctx := context.Background()
	l := leaderOf(t, rafts, -1)
	var acked []string
	for i := 0; i < 20; i++ {
		id := fmt.Sprintf("k%02d", i)
		// With 200 ms timeouts a loaded machine can depose the leader
		// mid-commit (the outcome is then unknown); the put is
		// idempotent, so the test may send it again to whoever leads
		// then. Only what was acknowledged is checked.
		l, _ = putToLeader(t, rafts, l, -1, kvRow{ID: id, Value: id})
		acked = append(acked, id)
	}
	// A follower refuses local applies.
	f := (l + 1) % 3
	if _, err := rafts[f].ApplyLocal(ctx, mustCmd(t, "kv.put", kvRow{ID: "x"})); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("follower apply err = %v, want ErrNotLeader", err)
	}
	// Kill the leader; the other two elect a new one and keep every write.
	rafts[l].Close()
	// The two left may still change leader under load: the same retry.
	_, res := putToLeader(t, rafts, leaderOf(t, rafts, l), l, kvRow{ID: "after", Value: "yes"})
	for i := range rafts {
		if i == l {
			continue
		}
		if err := states[i].WaitApplied(ctxTimeout(t, 5*time.Second), res.Index); err != nil {
			t.Fatal(err)
		}
		for _, id := range acked {
			if get(t, states[i], id) != id {
				t.Fatalf("node %d lost acknowledged write %s", i, id)
			}
		}
		if get(t, states[i], "after") != "yes" {
			t.Fatalf("node %d missing write after failover", i)
		}
	}
}

// putToLeader puts row through rafts[l], and, while the answer is "not
// leader" or "outcome unknown" (a leader deposed mid-commit by a loaded
// machine's 200 ms timeouts), again through whoever leads then, skipping
// the closed node dead (-1 for none): the put is idempotent, so sending it
// again is safe. It returns the leader that acknowledged it and the result.
func putToLeader(t *testing.T, rafts []*Raft, l, dead int, row kvRow) (int, Result) {
	t.Helper()
	var res Result
	var err error
	for try := 0; try < 5; try++ {
		res, err = rafts[l].ApplyLocal(context.Background(), mustCmd(t, "kv.put", row))
		if !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrOutcomeUnknown) {
			break
		}
		l = leaderOf(t, rafts, dead)
	}
	if err != nil || res.Err != nil {
		t.Fatalf("apply %s: %v %v", row.ID, err, res.Err)
	}
	return l, res
}

func mustCmd(t *testing.T, typ string, body any) Command {
	t.Helper()
	c, err := NewCommand(typ, body)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
