package store

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// Entries already in the log when the process opened it have no proposer
// waiting in it: applying them leaves the result unencoded. Later terms'
// entries, which this process may have proposed, are encoded as before.
func TestEntriesOfEarlierTermsAreAppliedWithoutEncodingTheirResults(t *testing.T) {
	st, err := NewState(kvSchema())
	if err != nil {
		t.Fatal(err)
	}
	f := NewFSM(st, nil)
	f.unawaitedTerm = 2
	apply := func(index, term uint64, id string) Result {
		data, _ := encodeEntry([]Command{{Type: "kv.put", Body: json.RawMessage(`{"ID":"` + id + `","Value":"v-` + id + `"}`)}})
		return f.Apply(&raft.Log{Index: index, Term: term, Type: raft.LogCommand, Data: data}).(Result)
	}
	if res := apply(1, 2, "a"); res.Err != nil || len(res.Value) != 0 {
		t.Errorf("replayed entry: result %+v, want no value and no error", res)
	}
	if get(t, st, "a") != "v-a" {
		t.Error("a replayed entry was not applied")
	}
	if res := apply(2, 3, "b"); res.Err != nil || string(res.Value) != `"v-b"` {
		t.Errorf("entry of a later term: result %+v, want value \"v-b\"", res)
	}
}

// A node restarted over its log replays it, and what it proposes after
// gets its results.
func TestRestartedNodeProposesWithResults(t *testing.T) {
	dir := t.TempDir()
	open := func() (*Raft, *State) {
		st, err := NewState(kvSchema())
		if err != nil {
			t.Fatal(err)
		}
		addr, trans := raft.NewInmemTransport("")
		cfg := RaftConfig{ID: "n0", DataDir: dir, Transport: trans, State: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			HeartbeatTimeout: 200 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond}
		r, err := OpenRaft(cfg, true, addr)
		if err != nil {
			t.Fatal(err)
		}
		leaderOf(t, []*Raft{r}, -1)
		return r, st
	}
	ctx := context.Background()
	put := func(r *Raft, id string) Result {
		t.Helper()
		res, err := r.ApplyLocal(ctx, Command{Type: "kv.put", Body: json.RawMessage(`{"ID":"` + id + `","Value":"v-` + id + `"}`)})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	r, _ := open()
	if res := put(r, "a"); string(res.Value) != `"v-a"` {
		t.Fatalf("first put: result %+v", res)
	}
	r.Close()
	r, st := open()
	defer r.Close()
	if res := put(r, "b"); string(res.Value) != `"v-b"` {
		t.Fatalf("put after the restart: result %+v, want value \"v-b\"", res)
	}
	if get(t, st, "a") != "v-a" {
		t.Fatal("the restarted node did not replay the first put")
	}
}
