package store

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"
)

// kvSchemaV2 is kvSchema as a newer rackd has it: one command more.
func kvSchemaV2() Schema {
	s := kvSchema()
	s.Handlers["kv.touch"] = func(tx *memdb.Txn, _ uint64, body json.RawMessage) (any, error) {
		var r kvRow
		if err := json.Unmarshal(body, &r); err != nil {
			return nil, err
		}
		return nil, tx.Insert("kv", &kvRow{ID: r.ID, Value: "touched"})
	}
	return s
}

func logEntry(t *testing.T, index uint64, cmds ...Command) *raft.Log {
	t.Helper()
	data, err := encodeEntry(cmds)
	if err != nil {
		t.Fatal(err)
	}
	return &raft.Log{Index: index, Type: raft.LogCommand, Data: data}
}

// resultErrs lists the errors of an Apply's results, nil for success.
func resultErrs(v any) []error {
	var rs []Result
	switch r := v.(type) {
	case Result:
		rs = []Result{r}
	case []Result:
		rs = r
	}
	out := make([]error, len(rs))
	for i, r := range rs {
		if r.Err != nil { // not a nil *ApplyError in a non-nil error
			out[i] = r.Err
		}
	}
	return out
}

// A node that meets a command type it does not know applies nothing from
// that entry on, says where and why, and refuses to snapshot; once
// upgraded, it replays the log from its last snapshot and ends where the
// nodes that knew the command are.
func TestUnknownCommandHaltsTheState(t *testing.T) {
	st, _ := NewState(kvSchema())
	fsm := NewFSM(st, nil)
	entries := []*raft.Log{
		logEntry(t, 1, mustCmd(t, "kv.put", kvRow{ID: "a", Value: "1"})),
		// A batch whose second command is new: its first must not be
		// applied either, or the state would be half an entry.
		logEntry(t, 2, mustCmd(t, "kv.put", kvRow{ID: "b", Value: "2"}), mustCmd(t, "kv.touch", kvRow{ID: "a"})),
		logEntry(t, 3, mustCmd(t, "kv.put", kvRow{ID: "c", Value: "3"})),
	}
	if res := fsm.Apply(entries[0]).(Result); res.Err != nil {
		t.Fatal(res.Err)
	}
	before, _, err := SnapshotRoundTrip(st, kvSchema())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries[1:] {
		errs := resultErrs(fsm.Apply(e))
		if len(errs) == 0 {
			t.Fatalf("entry %d: no result", e.Index)
		}
		for _, err := range errs {
			if !errors.Is(err, ErrHalted) {
				t.Errorf("entry %d: result error %v, want ErrHalted", e.Index, err)
			}
		}
	}
	var h *HaltError
	if !errors.As(st.Halted(), &h) || h.Index != 2 || h.Command != "kv.touch" {
		t.Fatalf("Halted() = %v, want a HaltError at index 2 for kv.touch", st.Halted())
	}
	select {
	case <-st.HaltedCh():
	default:
		t.Error("HaltedCh not closed")
	}
	if got := st.AppliedIndex(); got != 1 {
		t.Errorf("applied index %d, want 1: nothing from the unknown entry on is applied", got)
	}
	if get(t, st, "b") != "" || get(t, st, "c") != "" || get(t, st, "a") != "1" {
		t.Errorf("state changed after the halt: a=%q b=%q c=%q", get(t, st, "a"), get(t, st, "b"), get(t, st, "c"))
	}
	if _, err := fsm.Snapshot(); !errors.Is(err, ErrHalted) {
		t.Errorf("Snapshot() err = %v, want ErrHalted (a snapshot would let Raft drop entries never applied)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := st.WaitApplied(ctx, 3); !errors.Is(err, ErrHalted) {
		t.Errorf("WaitApplied past the halt: %v, want ErrHalted rather than a wait", err)
	}

	// The upgraded node: the last snapshot, then the log from there.
	up, _ := NewState(kvSchemaV2())
	upFSM := NewFSM(up, nil)
	if err := upFSM.Restore(nopCloser{strings.NewReader(string(before))}); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries[1:] {
		for _, err := range resultErrs(upFSM.Apply(e)) {
			if err != nil {
				t.Fatalf("upgraded node, entry %d: %v", e.Index, err)
			}
		}
	}
	if up.Halted() != nil || get(t, up, "a") != "touched" || get(t, up, "b") != "2" || get(t, up, "c") != "3" || up.AppliedIndex() != 3 {
		t.Errorf("upgraded node: halted %v, a=%q b=%q c=%q applied %d", up.Halted(), get(t, up, "a"), get(t, up, "b"), get(t, up, "c"), up.AppliedIndex())
	}
}

type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }

// An entry whose bytes this node cannot decode halts it the same way.
func TestUndecodableEntryHaltsTheState(t *testing.T) {
	st, _ := NewState(kvSchema())
	res := NewFSM(st, nil).Apply(&raft.Log{Index: 7, Type: raft.LogCommand, Data: []byte("\x01v3-binary")}).(Result)
	var h *HaltError
	if !errors.Is(res.Err, ErrHalted) || !errors.As(st.Halted(), &h) || h.Index != 7 || !strings.Contains(h.Reason, "decode") {
		t.Fatalf("result %v, Halted() %v; want a halt at 7 naming the decode failure", res.Err, st.Halted())
	}
}

// A proposal of a type nobody registered never reaches the log.
func TestLocalRefusesUnknownCommandBeforeTheLog(t *testing.T) {
	l, _ := NewLocal(kvSchema())
	if _, err := l.Propose(context.Background(), "kv.touch", kvRow{ID: "a"}); !errors.Is(err, ErrUnknownCommand) {
		t.Fatalf("err = %v, want ErrUnknownCommand", err)
	}
	if l.State.Halted() != nil || l.State.AppliedIndex() != 0 {
		t.Fatalf("a refused proposal changed the state: halted %v, applied %d", l.State.Halted(), l.State.AppliedIndex())
	}
}

// In a cluster where the leader runs an older rackd, a command only the
// newer nodes know halts the leader; it hands leadership to a node that
// applies the log, and the cluster keeps taking writes.
func TestHaltedLeaderHandsOverLeadership(t *testing.T) {
	const old = 0
	rafts, states := newMixedCluster(t, 3, func(i int) []Schema {
		if i == old {
			return []Schema{kvSchema()}
		}
		return []Schema{kvSchemaV2()}
	})
	ctx := context.Background()
	if l := leaderOf(t, rafts, -1); l != old {
		if err := rafts[l].LeadershipTransferToServer("n0", serverAddress(t, rafts[l], "n0")).Error(); err != nil {
			t.Fatalf("make the old node leader: %v", err)
		}
	}
	waitUntil(t, "the old node leads", func() bool { return rafts[old].State() == raft.Leader })
	if res, err := rafts[old].ApplyLocal(ctx, mustCmd(t, "kv.put", kvRow{ID: "a", Value: "1"})); err != nil || res.Err != nil {
		t.Fatalf("put: %v %v", err, res.Err)
	}
	res, err := rafts[old].ApplyLocal(ctx, mustCmd(t, "kv.touch", kvRow{ID: "a"}))
	if err != nil || !errors.Is(res.Err, ErrHalted) {
		t.Fatalf("touch on the old leader: %v, result %v; want a halted result (outcome unknown)", err, res.Err)
	}
	if _, err := rafts[old].ApplyLocal(ctx, mustCmd(t, "kv.put", kvRow{ID: "x"})); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("proposal to the halted node: %v, want ErrNotLeader so that proposers look elsewhere", err)
	}
	// A loaded machine may change leader again mid-commit: the put is
	// idempotent and goes again to whoever leads then.
	_, res = putToLeader(t, rafts, leaderOf(t, rafts, old), old, kvRow{ID: "b", Value: "2"})
	for i := range rafts {
		if i == old {
			continue
		}
		if err := states[i].WaitApplied(ctxTimeout(t, 10*time.Second), res.Index); err != nil {
			t.Fatal(err)
		}
		if get(t, states[i], "a") != "touched" || get(t, states[i], "b") != "2" {
			t.Errorf("node %d: a=%q b=%q, want touched and 2", i, get(t, states[i], "a"), get(t, states[i], "b"))
		}
	}
	if states[old].Halted() == nil || get(t, states[old], "a") != "1" || get(t, states[old], "b") != "" {
		t.Errorf("old node: halted %v, a=%q b=%q; want halted with a=1 and no b", states[old].Halted(), get(t, states[old], "a"), get(t, states[old], "b"))
	}
}

func serverAddress(t *testing.T, r *Raft, id raft.ServerID) raft.ServerAddress {
	t.Helper()
	f := r.GetConfiguration()
	if err := f.Error(); err != nil {
		t.Fatal(err)
	}
	for _, s := range f.Configuration().Servers {
		if s.ID == id {
			return s.Address
		}
	}
	t.Fatalf("no server %s", id)
	return ""
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The result of a halted leader reaches the proposer as an unknown
// outcome, never as the state machine's refusal: the command is in the
// log and other nodes may apply it, so its effects must not be undone.
func TestHaltedResultIsUnknownOutcome(t *testing.T) {
	st, _ := NewState(kvSchema())
	fsm := NewFSM(st, nil)
	fsm.Apply(logEntry(t, 1, mustCmd(t, "kv.touch", kvRow{ID: "a"})))
	res := fsm.Apply(logEntry(t, 2, mustCmd(t, "kv.put", kvRow{ID: "b"}))).(Result)
	err := ResultError(res)
	var refusal *ApplyError
	if !errors.Is(err, ErrOutcomeUnknown) || !errors.Is(err, ErrHalted) || errors.As(err, &refusal) {
		t.Fatalf("ResultError = %v (as *ApplyError: %v); want ErrOutcomeUnknown and ErrHalted, no *ApplyError", err, refusal != nil)
	}
	refused := Result{Err: WrapApplyError(NotFoundf("no such thing"))}
	if err := ResultError(refused); !errors.As(err, &refusal) || !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refusal: %v, want the *ApplyError", err)
	}
	if ResultError(Result{Index: 3}) != nil {
		t.Fatal("a success has an error")
	}
}
