package eventstate

import (
	"context"
	"fmt"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// local is a state with the event tables and one test command that
// records its body with the given bounds.
type local struct {
	t *testing.T
	l *store.Local
}

func newLocal(t *testing.T, retention time.Duration, maxRows int) local {
	t.Helper()
	sch := Schema()
	sch.Handlers = map[string]store.Handler{"test_record": store.Typed(func(tx *memdb.Txn, ev Event) (any, error) {
		return nil, record(tx, ev, retention, maxRows)
	})}
	l, err := store.NewLocal(sch)
	if err != nil {
		t.Fatal(err)
	}
	return local{t, l}
}

func (l local) put(ev Event) {
	l.t.Helper()
	if _, err := l.l.Propose(context.Background(), "test_record", ev); err != nil {
		l.t.Fatal(err)
	}
}

func (l local) list(f Filter) []Event { return List(l.l.State.Txn(), f) }

func ids(evs []Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.ResourceID+":"+e.Action)
	}
	return out
}

func TestRetentionDropsOldEventsAndCapsRows(t *testing.T) {
	l := newLocal(t, time.Hour, 3)
	t0 := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	put := func(at time.Time, res, action string) {
		t.Helper()
		l.put(Event{Time: at, ResourceID: res, Action: action})
	}
	put(t0, "a", "create")
	put(t0, "a", "stop") // same time: both kept, in order
	put(t0.Add(30*time.Minute), "b", "create")
	got := l.list(Filter{})
	if fmt.Sprint(ids(got)) != "[a:create a:stop b:create]" {
		t.Fatalf("events %v", ids(got))
	}
	// A fourth row is over the cap of 3: the oldest goes.
	put(t0.Add(40*time.Minute), "c", "create")
	if got := ids(l.list(Filter{})); fmt.Sprint(got) != "[a:stop b:create c:create]" {
		t.Fatalf("after the cap: %v", got)
	}
	// Two hours on, everything older than an hour goes.
	put(t0.Add(2*time.Hour), "d", "create")
	if got := ids(l.list(Filter{})); fmt.Sprint(got) != "[d:create]" {
		t.Fatalf("after the retention: %v", got)
	}
	// The count followed: three more fit before the cap bites again.
	put(t0.Add(2*time.Hour+1), "e", "create")
	put(t0.Add(2*time.Hour+2), "f", "create")
	if got := ids(l.list(Filter{})); fmt.Sprint(got) != "[d:create e:create f:create]" {
		t.Fatalf("count drifted: %v", got)
	}
}

func TestListFilters(t *testing.T) {
	l := newLocal(t, Retention, MaxRows)
	t0 := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	for i, e := range []Event{
		{ResourceID: "s1", Project: "p1", Action: "create"},
		{ResourceID: "s2", Project: "p2", Action: "create"},
		{ResourceID: "s1", Project: "p1", Action: "delete"},
	} {
		e.Time = t0.Add(time.Duration(i) * time.Minute)
		l.put(e)
	}
	for name, tc := range map[string]struct {
		f    Filter
		want string
	}{
		"all":        {Filter{}, "[s1:create s2:create s1:delete]"},
		"a resource": {Filter{ResourceID: "s1"}, "[s1:create s1:delete]"},
		"a project":  {Filter{Project: "p2"}, "[s2:create]"},
		"since":      {Filter{Since: t0}, "[s2:create s1:delete]"},
		"limit":      {Filter{Limit: 1}, "[s1:delete]"},
	} {
		if got := fmt.Sprint(ids(l.list(tc.f))); got != tc.want {
			t.Errorf("%s: %s, want %s", name, got, tc.want)
		}
	}
}

func TestRecordWithoutTheTablesIsANoOp(t *testing.T) {
	l, err := store.NewLocal(store.Schema{
		Tables: []store.Table{store.NewTable("other", &count{})},
		Handlers: map[string]store.Handler{"test_record": store.Typed(func(tx *memdb.Txn, ev Event) (any, error) {
			return nil, Record(tx, ev)
		})},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Propose(context.Background(), "test_record", Event{ResourceID: "x"}); err != nil {
		t.Fatalf("record in a state without events: %v", err)
	}
}
