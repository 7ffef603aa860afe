package eventstate

import (
	"context"
	"fmt"
	"strings"
	"testing"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// thing is a resource of a test service: a status and a detail.
type thing struct {
	ID, Project, Status, Link, Note string
}

func thingState(t *testing.T) *store.Local {
	t.Helper()
	sch := Schema()
	sch.Tables = append(sch.Tables, store.NewTable("things", &thing{}))
	sch.Handlers = map[string]store.Handler{
		"thing.put": store.Typed(func(tx *memdb.Txn, c thing) (any, error) { return nil, tx.Insert("things", &c) }),
		"thing.delete": store.Typed(func(tx *memdb.Txn, c thing) (any, error) {
			_, err := tx.DeleteAll("things", "id", c.ID)
			return nil, err
		}),
	}
	sch.Observers = []store.Observer{Observe(Resource{Table: "things", Type: "thing", Describe: func(row any) Subject {
		th := row.(*thing)
		s := Subject{ID: th.ID, Project: th.Project, Status: th.Status, Reason: th.Note}
		if th.Link != "" {
			s.Detail = "linked to " + th.Link
		}
		return s
	}})}
	l, err := store.NewLocal(sch)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func describe(evs []Event) string {
	var out []string
	for _, e := range evs {
		who := e.UserID
		if who == "" {
			who = "system"
		}
		s := fmt.Sprintf("%s %s %s>%s by %s in %s", e.ResourceType, e.Action, e.From, e.To, who, e.Project)
		if e.RequestID != "" {
			s += " " + e.RequestID
		}
		if e.Reason != "" {
			s += " (" + e.Reason + ")"
		}
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}

// Every change of a resource's status or detail is an event with the
// command's actor and time; a change of anything else is not.
func TestObserveRecordsStatusAndDetailChanges(t *testing.T) {
	l := thingState(t)
	user := store.WithOrigin(context.Background(), store.Origin{User: "alice", Project: "p1", RequestID: "req-1"})
	system := context.Background()
	for _, c := range []struct {
		ctx context.Context
		typ string
		row thing
	}{
		{user, "thing.put", thing{ID: "t1", Project: "p1", Status: "creating"}},
		{system, "thing.put", thing{ID: "t1", Project: "p1", Status: "available"}},
		{user, "thing.put", thing{ID: "t1", Project: "p1", Status: "available", Note: "renamed"}}, // no event
		{user, "thing.put", thing{ID: "t1", Project: "p1", Status: "available", Link: "s1"}},
		{system, "thing.put", thing{ID: "t1", Project: "p1", Status: "error", Link: "s1", Note: "disk lost"}},
		{user, "thing.put", thing{ID: "t1", Project: "p1", Status: "available"}},
		{user, "thing.delete", thing{ID: "t1"}},
	} {
		if _, err := l.Propose(c.ctx, c.typ, c.row); err != nil {
			t.Fatal(err)
		}
	}
	evs := List(l.State.Txn(), Filter{ResourceID: "t1"})
	want := "thing create >creating by alice in p1 req-1; thing state creating>available by system in p1; " +
		"thing update available>available by alice in p1 req-1 (linked to s1); " +
		"thing state available>error by system in p1 (disk lost); " +
		"thing update error>available by alice in p1 req-1 (no longer linked to s1); " +
		"thing delete available>DELETED by alice in p1 req-1"
	if got := describe(evs); got != want {
		t.Fatalf("events\n%s\nwant\n%s", got, want)
	}
	for i, e := range evs {
		if e.Time.IsZero() || e.Command == "" || (i > 0 && e.Time.Before(evs[i-1].Time)) {
			t.Fatalf("event %d: time %v, command %q", i, e.Time, e.Command)
		}
	}
}

// A command with no origin (written before origins existed) has no known
// time: it records nothing rather than an event dated year one.
func TestObserveSkipsACommandWithoutTime(t *testing.T) {
	obs := Observe(Resource{Table: "things", Type: "thing", Describe: func(any) Subject { t.Fatal("described"); return Subject{} }})
	db, err := memdb.NewMemDB(&memdb.DBSchema{Tables: map[string]*memdb.TableSchema{TableEvents: Schema().Tables[0].Schema}})
	if err != nil {
		t.Fatal(err)
	}
	tx := db.Txn(true)
	if err := obs(tx, store.Applied{Command: "thing.put", Changes: memdb.Changes{{Table: "things", After: &thing{ID: "t1"}}}}); err != nil {
		t.Fatal(err)
	}
	if evs := List(tx, Filter{}); len(evs) != 0 {
		t.Fatalf("events %v", evs)
	}
}

// A resource may name its insert and removal, and a change of its Secret
// alone is an event with the resource's reason, the secret never in it.
func TestObserveNamesActionsAndHidesSecrets(t *testing.T) {
	sch := Schema()
	sch.Tables = append(sch.Tables, store.NewTable("things", &thing{}))
	sch.Handlers = map[string]store.Handler{
		"thing.put": store.Typed(func(tx *memdb.Txn, c thing) (any, error) { return nil, tx.Insert("things", &c) }),
		"thing.delete": store.Typed(func(tx *memdb.Txn, c thing) (any, error) {
			_, err := tx.DeleteAll("things", "id", c.ID)
			return nil, err
		}),
	}
	sch.Observers = []store.Observer{Observe(Resource{Table: "things", Type: "grant", Create: "grant", Delete: "revoke", SecretChange: "password changed",
		Describe: func(row any) Subject {
			th := row.(*thing)
			return Subject{ID: th.ID, Detail: th.Link, Secret: th.Note}
		}})}
	l, err := store.NewLocal(sch)
	if err != nil {
		t.Fatal(err)
	}
	user := store.WithOrigin(context.Background(), store.Origin{User: "admin"})
	for _, c := range []struct {
		typ string
		row thing
	}{
		{"thing.put", thing{ID: "g1", Link: "role r1", Note: "hash-1"}},
		{"thing.put", thing{ID: "g1", Link: "role r1", Note: "hash-2"}},
		{"thing.put", thing{ID: "g1", Link: "role r1", Note: "hash-2", Status: ""}}, // no event
		{"thing.delete", thing{ID: "g1"}},
	} {
		if _, err := l.Propose(user, c.typ, c.row); err != nil {
			t.Fatal(err)
		}
	}
	evs := List(l.State.Txn(), Filter{})
	got := describe(evs)
	want := "grant grant > by admin in  (role r1); grant update > by admin in  (password changed); grant revoke >DELETED by admin in "
	if got != want {
		t.Fatalf("events\n%s\nwant\n%s", got, want)
	}
	if strings.Contains(fmt.Sprint(evs), "hash-") {
		t.Fatalf("a secret is in the events: %v", evs)
	}
}
