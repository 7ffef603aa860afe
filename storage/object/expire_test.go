package object

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/store"
)

// expiring stores an object that expires at unix second at.
func (f *fixture) expiring(name string, at int64) *Object {
	f.t.Helper()
	o, err := f.svc.Put(f.ctx, "p", "c", name, bytes.NewReader([]byte("data of "+name)), PutOptions{
		Size: int64(len("data of " + name)), Attrs: Attrs{Headers: map[string]string{DeleteAtHeader: FormatDeleteAt(at)}},
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return o
}

func (f *fixture) listed() []string {
	f.t.Helper()
	es, _, err := f.svc.List(f.ctx, "p", "c", ListOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestExpiredObjectIsGoneAtOnceAndDeletedByTheExpirer(t *testing.T) {
	f := newFixture(t, 3)
	f.container("p", "c")
	now := time.Unix(1_700_000_000, 0)
	f.svc.cfg.Now = func() time.Time { return now }
	f.expiring("soon", 1_700_000_010)
	f.expiring("later", 1_700_000_100)
	f.put("p", "c", "kept", []byte("no delete time"))
	if n := f.svc.expireObjects(f.ctx); n != 0 {
		t.Fatalf("expirer deleted %d objects before their time", n)
	}
	if got := string(f.get("p", "c", "soon")); got != "data of soon" {
		t.Fatalf("before its time: %q", got)
	}

	now = time.Unix(1_700_000_010, 0) // the delete time itself: expired
	if _, err := f.svc.Head(f.ctx, "p", "c", "soon"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("head of an expired object: %v, want not found", err)
	}
	f.get("p", "c", "later")
	// Listed, as in Swift, until the expirer has run.
	if got := f.listed(); len(got) != 3 {
		t.Fatalf("listing before the expirer: %v", got)
	}
	garbage := func() int {
		tx, _ := f.svc.read(f.ctx)
		return len(store.All[Garbage](tx, tGarbage, "id"))
	}
	before := garbage()
	if n := f.svc.expireObjects(f.ctx); n != 1 {
		t.Fatalf("expirer deleted %d objects, want 1", n)
	}
	if got := f.listed(); len(got) != 2 || got[0] != "kept" || got[1] != "later" {
		t.Fatalf("listing after the expirer: %v", got)
	}
	if garbage() != before+1 {
		t.Fatal("the expired object's blob was not handed to the collector")
	}
	c, _ := f.svc.Container(f.ctx, "p", "c")
	if c.Objects != 2 {
		t.Fatalf("container counts %d objects, want 2", c.Objects)
	}
}

func TestExpireIsConditionalOnVersionAndDeleteTime(t *testing.T) {
	f := newFixture(t, 3)
	f.container("p", "c")
	old := f.expiring("a", 1)
	due := objectExpireCmd{ID: old.ID, Version: old.Version, DeleteAt: FormatDeleteAt(1), Now: time.Now()}

	// A newer PUT of the name, even with the same delete time, is not
	// what the expirer saw.
	f.expiring("a", 1)
	// A POST that moved the delete time.
	b := f.expiring("b", 1)
	if _, err := f.svc.SetMeta(f.ctx, b, Attrs{Headers: map[string]string{DeleteAtHeader: FormatDeleteAt(2)}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []objectExpireCmd{due, {ID: b.ID, Version: b.Version, DeleteAt: FormatDeleteAt(1), Now: time.Now()}} {
		res, err := f.svc.repl.Propose(f.ctx, cmdObjectExpire, c)
		if err != nil {
			t.Fatal(err)
		}
		var r expireResult
		if err := res.Decode(&r); err != nil || r.Deleted {
			t.Fatalf("expire of a changed object deleted it (%v)", err)
		}
	}
	tx, _ := f.svc.read(f.ctx)
	if store.Get[Object](tx, tObjects, old.ID) == nil || store.Get[Object](tx, tObjects, b.ID) == nil {
		t.Fatal("a changed object was deleted")
	}
	// The current rows are due: the expirer deletes both.
	if n := f.svc.expireObjects(f.ctx); n != 2 {
		t.Fatalf("expirer deleted %d, want 2", n)
	}
}
