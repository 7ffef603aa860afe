package object

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/store"
)

// pending lists a container's queued changes as "name" or "-name"
// (a delete), oldest first.
func (f *fixture) pending(project, container string) []string {
	f.t.Helper()
	chs, _, err := f.svc.SyncChanges(f.ctx, containerID(project, container), 0, 1000)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, ch := range chs {
		if ch.Deleted {
			out = append(out, "-"+ch.Name)
		} else {
			out = append(out, ch.Name)
		}
	}
	return out
}

func (f *fixture) syncState(project, container string) *SyncState {
	f.t.Helper()
	sts, err := f.svc.SyncStates(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, st := range sts {
		if st.Project == project && st.Container == container {
			return &st
		}
	}
	return nil
}

func (f *fixture) setSync(project, container, to, key string) {
	f.t.Helper()
	c, err := f.svc.Container(f.ctx, project, container)
	if err != nil {
		f.t.Fatal(err)
	}
	next := *c
	next.SyncTo, next.SyncKey = to, key
	if err := f.svc.UpdateContainer(f.ctx, next); err != nil {
		f.t.Fatal(err)
	}
}

func sameNames(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The sync queue follows the container and its objects in the commands'
// own transactions: enabling sync queues the existing objects through the
// full pass, each name keeps only its newest change, a change is dropped
// only once acknowledged as taken, one that failed stays for a retry, and
// a new target starts over.
func TestSyncQueue(t *testing.T) {
	f := newFixture(t, 3)
	f.container("p", "c")
	o1 := f.put("p", "c", "old1", []byte("1"))
	f.put("p", "c", "old2", []byte("2"))
	f.put("p", "c", "old3", []byte("3"))

	f.setSync("p", "c", "//r/cl/AUTH_q/d", "") // no key: not synced
	if st := f.syncState("p", "c"); st != nil {
		t.Fatalf("a container without a sync key syncs: %+v", st)
	}
	f.setSync("p", "c", "//r/cl/AUTH_q/d", "k")
	st := f.syncState("p", "c")
	if st == nil || !st.Scan || st.To != "//r/cl/AUTH_q/d" {
		t.Fatalf("sync state after enabling: %+v", st)
	}
	// The full pass, two at a time; a write meanwhile is queued once.
	if err := f.svc.ScanSync(f.ctx, *st, 2); err != nil {
		t.Fatal(err)
	}
	f.put("p", "c", "old3", []byte("3 again"))
	if got := f.pending("p", "c"); !sameNames(got, []string{"old1", "old2", "old3"}) {
		t.Fatalf("after the first scan step: %v", got)
	}
	st = f.syncState("p", "c")
	if err := f.svc.ScanSync(f.ctx, *st, 2); err != nil {
		t.Fatal(err)
	}
	if st = f.syncState("p", "c"); st.Scan {
		t.Fatalf("the scan did not end: %+v", st)
	}
	if got := f.pending("p", "c"); !sameNames(got, []string{"old1", "old2", "old3"}) {
		t.Fatalf("the scan queued a name twice: %v", got)
	}

	// A delete replaces the name's write; POSTed metadata is no change.
	o := f.put("p", "c", "new", []byte("n"))
	f.svc.SetMeta(f.ctx, o, Attrs{Meta: map[string]string{"x": "y"}})
	f.svc.Delete(f.ctx, "p", "c", "old1")
	if got := f.pending("p", "c"); !sameNames(got, []string{"old2", "old3", "new", "-old1"}) {
		t.Fatalf("after a write and a delete: %v", got)
	}
	chs, _, _ := f.svc.SyncChanges(f.ctx, st.ID, 0, 10)
	del := chs[3]
	if !del.Time.After(o1.Modified) {
		t.Fatalf("delete time %v is not after the object's %v", del.Time, o1.Modified)
	}

	// A pass that sent old2 and new but not old3 and -old1.
	st = f.syncState("p", "c")
	if err := f.svc.AckSync(f.ctx, *st, chs[3].Seq, []uint64{chs[0].Seq, chs[2].Seq}); err != nil {
		t.Fatal(err)
	}
	if got := f.pending("p", "c"); !sameNames(got, []string{"old3", "-old1"}) {
		t.Fatalf("after the ack: %v", got)
	}
	if st2 := f.syncState("p", "c"); st2.Point != chs[3].Seq {
		t.Fatalf("point %d, want %d", st2.Point, chs[3].Seq)
	}
	// Changes after the point are read past the failed ones.
	f.put("p", "c", "newer", []byte("n"))
	if after, _, _ := f.svc.SyncChanges(f.ctx, st.ID, chs[3].Seq, 10); len(after) != 1 || after[0].Name != "newer" {
		t.Fatalf("changes after the point: %+v", after)
	}
	// An ack for a target since replaced is moot.
	f.setSync("p", "c", "//r/cl/AUTH_q/e", "k")
	if got := f.pending("p", "c"); len(got) != 0 {
		t.Fatalf("a new target kept the old queue: %v", got)
	}
	if err := f.svc.AckSync(f.ctx, *st, chs[3].Seq+100, nil); err != nil {
		t.Fatal(err)
	}
	st = f.syncState("p", "c")
	if !st.Scan || st.Point > st.Seq {
		t.Fatalf("after a reset and a stale ack: %+v", st)
	}
	// Sync off: state and queue go.
	f.setSync("p", "c", "", "k")
	if st := f.syncState("p", "c"); st != nil || len(f.pending("p", "c")) != 0 {
		t.Fatalf("sync off left %+v %v", st, f.pending("p", "c"))
	}
}

// A synced write takes the source's time and replaces only an older
// object; a synced delete removes only an older one. A refused one
// changes nothing.
func TestSyncedWritesKeepNewer(t *testing.T) {
	f := newFixture(t, 3)
	f.container("p", "c")
	t0 := time.Unix(1700000000, 120000000).UTC()
	put := func(name, body string, at time.Time) (*Object, error) {
		return f.svc.Put(f.ctx, "p", "c", name, bytes.NewReader([]byte(body)), PutOptions{Size: int64(len(body)), Synced: at})
	}
	o, err := put("a", "first", t0)
	if err != nil || !o.Modified.Equal(t0) {
		t.Fatalf("synced put: %v %v", o, err)
	}
	for _, at := range []time.Time{t0, t0.Add(-time.Second)} {
		if _, err := put("a", "stale", at); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("synced put at %v over one at %v: %v", at, t0, err)
		}
	}
	if got := string(f.get("p", "c", "a")); got != "first" {
		t.Fatalf("a refused synced put changed the object: %q", got)
	}
	if _, err := put("a", "second", t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.DeleteSynced(f.ctx, "p", "c", "a", t0.Add(time.Second)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a synced delete as old as the object: %v", err)
	}
	if err := f.svc.DeleteSynced(f.ctx, "p", "c", "a", t0.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Head(f.ctx, "p", "c", "a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after a newer synced delete: %v", err)
	}
	if err := f.svc.DeleteSynced(f.ctx, "p", "c", "a", t0.Add(3*time.Second)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a synced delete of nothing: %v", err)
	}
}
