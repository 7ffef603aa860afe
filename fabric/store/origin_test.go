package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	memdb "github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"
)

// An observer sees each applied command's type, the origin its proposer
// stamped and the rows it changed, in the command's transaction; a
// refused command shows it nothing.
func TestObserversSeeTheChangesAndTheOrigin(t *testing.T) {
	var seen []string
	sch := kvSchema()
	sch.Observers = []Observer{func(_ *memdb.Txn, a Applied) error {
		if a.Origin.Time.IsZero() {
			t.Errorf("%s: no time in the origin", a.Command)
		}
		for _, ch := range a.Changes {
			var before, after string
			if ch.Before != nil {
				before = ch.Before.(*kvRow).Value
			}
			if ch.After != nil {
				after = ch.After.(*kvRow).Value
			}
			seen = append(seen, fmt.Sprintf("%s by %s/%s/%s: %s %q→%q", a.Command, a.Origin.User, a.Origin.Project, a.Origin.RequestID, ch.Table, before, after))
		}
		return nil
	}}
	l, err := NewLocal(sch)
	if err != nil {
		t.Fatal(err)
	}
	ctx := WithOrigin(context.Background(), Origin{User: "u1", Project: "p1", RequestID: "req-1"})
	for _, c := range []struct {
		ctx  context.Context
		typ  string
		body kvRow
	}{
		{ctx, "kv.put", kvRow{ID: "a", Value: "1"}},
		{context.Background(), "kv.put", kvRow{ID: "a", Value: "2"}},
		{ctx, "kv.create", kvRow{ID: "a"}}, // refused: a exists
		{ctx, "kv.delete", kvRow{ID: "a"}},
	} {
		_, _ = l.Propose(c.ctx, c.typ, c.body)
	}
	want := `kv.put by u1/p1/req-1: kv ""→"1"; kv.put by //: kv "1"→"2"; kv.delete by u1/p1/req-1: kv "2"→""`
	if got := strings.Join(seen, "; "); got != want {
		t.Fatalf("observed\n%s\nwant\n%s", got, want)
	}
}

// What an observer fails, the command fails with: nothing of it stays.
func TestAnObserversErrorAbortsTheCommand(t *testing.T) {
	sch := kvSchema()
	sch.Observers = []Observer{func(*memdb.Txn, Applied) error { return Invalidf("no") }}
	l, err := NewLocal(sch)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Propose(context.Background(), "kv.put", kvRow{ID: "a", Value: "1"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("err %v, want the observer's", err)
	}
	if got := get(t, l.State, "a"); got != "" {
		t.Fatalf("a = %q after the observer refused", got)
	}
}

// An entry written before commands carried an origin still applies; its
// observers see a zero origin.
func TestAnEntryWithoutOriginApplies(t *testing.T) {
	var origins []Origin
	sch := kvSchema()
	sch.Observers = []Observer{func(_ *memdb.Txn, a Applied) error { origins = append(origins, a.Origin); return nil }}
	st, err := NewState(sch)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(map[string]any{"type": "kv.put", "body": kvRow{ID: "a", Value: "1"}})
	res := NewFSM(st, nil).Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: data}).(Result)
	if res.Err != nil || get(t, st, "a") != "1" {
		t.Fatalf("apply: %v", res.Err)
	}
	if len(origins) != 1 || origins[0] != (Origin{}) {
		t.Fatalf("origins %v, want one zero origin", origins)
	}
}
