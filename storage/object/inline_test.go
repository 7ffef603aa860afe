package object

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"io"
	"testing"

	"github.com/rackstack/rackstack/fabric/events/eventstate"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/storage/blob"
)

// newInlineFixture is newFixture storing objects of up to max bytes inline,
// with budget bytes of them at most.
func newInlineFixture(t *testing.T, max int, budget int64) *fixture {
	f := newFixture(t, 6)
	f.svc.cfg.InlineMax, f.svc.cfg.InlineBudget = max, budget
	f.container("p", "c")
	return f
}

func (f *fixture) inlineUsed() int64 {
	f.t.Helper()
	tx, err := f.svc.read(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	return inlineUsed(tx)
}

func (f *fixture) garbage() []*Garbage {
	tx, _ := f.svc.read(f.ctx)
	return store.All[Garbage](tx, tGarbage, "id")
}

func TestSmallObjectsAreStoredInline(t *testing.T) {
	f := newInlineFixture(t, 1024, 1<<20)
	small, large := random(1024), random(1025)

	o := f.put("p", "c", "small", small)
	sum := md5.Sum(small)
	if len(o.Parts) != 1 || !o.Parts[0].Inline || o.Parts[0].Blob != "" || o.ETag != hex.EncodeToString(sum[:]) {
		t.Fatalf("small object: %+v", o)
	}
	if n := f.shardFiles(); n != 0 {
		t.Fatalf("a small object wrote %d shard files", n)
	}
	if got := f.get("p", "c", "small"); !bytes.Equal(got, small) {
		t.Fatal("small object read back wrong")
	}
	var mid bytes.Buffer
	if err := f.svc.Read(f.ctx, o, 100, 200, &mid); err != nil || !bytes.Equal(mid.Bytes(), small[100:300]) {
		t.Fatalf("range read: %v", err)
	}
	if f.inlineUsed() != 1024 {
		t.Fatalf("inline bytes %d, want 1024", f.inlineUsed())
	}

	// One byte more goes to a blob.
	if o := f.put("p", "c", "large", large); o.Parts[0].Inline || f.shardFiles() == 0 {
		t.Fatalf("a %d-byte object was stored inline over a max of 1024", len(large))
	}
	if got := f.get("p", "c", "large"); !bytes.Equal(got, large) {
		t.Fatal("large object read back wrong")
	}

	// A copy of an inline object is inline too, and lists like any other.
	src, _ := f.svc.Head(f.ctx, "p", "c", "small")
	if cp, err := f.svc.Copy(f.ctx, src, "p", "c", "copy", Attrs{}); err != nil || !cp.Parts[0].Inline {
		t.Fatalf("copy: %+v %v", cp, err)
	}
	if got := f.get("p", "c", "copy"); !bytes.Equal(got, small) {
		t.Fatal("copy read back wrong")
	}
	entries, _, err := f.svc.List(f.ctx, "p", "c", ListOptions{})
	if err != nil || len(entries) != 3 || entries[2].Object.Size != 1024 {
		t.Fatalf("listing: %v %v", entries, err)
	}
	if c, _ := f.svc.Container(f.ctx, "p", "c"); c.Objects != 3 || c.Bytes != 1024+1025+1024 {
		t.Fatalf("container counts %d objects, %d bytes", c.Objects, c.Bytes)
	}

	// Overwriting and deleting inline objects gives their bytes back to the
	// budget and puts nothing on the garbage list.
	f.put("p", "c", "small", random(10))
	f.put("p", "c", "large", random(20)) // the blob it replaces is garbage
	if err := f.svc.Delete(f.ctx, "p", "c", "copy"); err != nil {
		t.Fatal(err)
	}
	if f.inlineUsed() != 30 {
		t.Fatalf("inline bytes %d, want 30", f.inlineUsed())
	}
	if g := f.garbage(); len(g) != 1 || g[0].Part.Inline {
		t.Fatalf("garbage %+v, want the one blob replaced", g)
	}
}

var errBroken = errors.New("client went away")

func TestInlineBodiesAreChecked(t *testing.T) {
	f := newInlineFixture(t, 1024, 1<<20)
	data := random(100)
	tests := map[string]struct {
		body io.Reader
		opts PutOptions
		want error
	}{
		"shorter than declared": {bytes.NewReader(data), PutOptions{Size: 101}, ErrIncomplete},
		"longer than declared":  {bytes.NewReader(data), PutOptions{Size: 99}, ErrIncomplete},
		"wrong digest":          {bytes.NewReader(data), PutOptions{Size: 100, MD5: md5Hex([]byte("other"))}, ErrBadDigest},
		"failing body":          {&failingReader{data: data[:50], err: errBroken}, PutOptions{Size: 100}, blob.ErrSource},
		"failing unsized body":  {&failingReader{data: data[:50], err: errBroken}, PutOptions{Size: -1}, blob.ErrSource},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := f.svc.Put(f.ctx, "p", "c", "x", tc.body, tc.opts); !errors.Is(err, tc.want) {
				t.Fatalf("put: %v, want %v", err, tc.want)
			}
			if _, err := f.svc.Head(f.ctx, "p", "c", "x"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("a refused body left an object: %v", err)
			}
		})
	}

	// A body of unknown length is inline if it turns out small, and a blob
	// holding every byte (those read to decide, then the rest) if not.
	for _, n := range []int{0, 1024, 1025, 5000} {
		data := random(n)
		o, err := f.svc.Put(f.ctx, "p", "c", "unsized", bytes.NewReader(data), PutOptions{Size: -1})
		if err != nil {
			t.Fatal(err)
		}
		if o.Parts[0].Inline != (n <= 1024) || o.Size != int64(n) {
			t.Fatalf("%d bytes of unknown length: inline %v, size %d", n, o.Parts[0].Inline, o.Size)
		}
		if got := f.get("p", "c", "unsized"); !bytes.Equal(got, data) {
			t.Fatalf("%d bytes of unknown length read back wrong", n)
		}
	}
}

// TestInlineBudgetSendsSmallObjectsToBlobs: past the budget small objects
// are stored in blobs, also when another writer spent the budget between
// the writer's check and its command.
func TestInlineBudgetSendsSmallObjectsToBlobs(t *testing.T) {
	f := newInlineFixture(t, 1024, 2048)
	f.put("p", "c", "a", random(1000))
	f.put("p", "c", "b", random(1000))
	if o := f.put("p", "c", "c", random(100)); o.Parts[0].Inline {
		t.Fatal("an object over the budget was stored inline")
	}
	if f.inlineUsed() != 2000 {
		t.Fatalf("inline bytes %d, want 2000", f.inlineUsed())
	}
	f.svc.Delete(f.ctx, "p", "c", "a")
	if o := f.put("p", "c", "d", random(1000)); !o.Parts[0].Inline {
		t.Fatal("a delete did not give its bytes back to the budget")
	}

	// The state machine refuses an inline object over the budget the
	// proposer gives, whatever the proposer read before.
	race := &racingRepl{Replicated: f.local, f: f}
	f.svc.repl, f.svc.cfg.Repl = race, race
	data := random(100)
	o, err := f.svc.Put(f.ctx, "p", "c", "raced", bytes.NewReader(data), PutOptions{Size: 100})
	if err != nil || o.Parts[0].Inline {
		t.Fatalf("raced put: %+v, %v; want a blob", o, err)
	}
	if got := f.get("p", "c", "raced"); !bytes.Equal(got, data) {
		t.Fatal("raced object read back wrong")
	}
	if f.inlineUsed() > 2048 {
		t.Fatalf("inline bytes %d over the budget", f.inlineUsed())
	}
}

// racingRepl commits another writer's inline object just before the first
// inline command it is given.
type racingRepl struct {
	store.Replicated
	f    *fixture
	done bool
}

func (r *racingRepl) Propose(ctx context.Context, typ string, body any) (store.Result, error) {
	if typ == cmdObjectInline && !r.done {
		r.done = true
		used := r.f.inlineUsed()
		other := Object{Project: "p", Container: "c", Name: "other", Version: newID(), Size: 2048 - used,
			Parts: []Part{{Size: 2048 - used, Inline: true, Data: make([]byte, 2048-used)}}}
		if _, err := r.Replicated.Propose(ctx, cmdObjectInline, objectInlineCmd{Row: other, Budget: 2048}); err != nil {
			r.f.t.Fatalf("the other writer: %v", err)
		}
	}
	return r.Replicated.Propose(ctx, typ, body)
}

// TestInlineObjectsSurviveSnapshotAndMaintenance: a state restored from a
// snapshot serves inline objects and their budget, and the background work
// (garbage, heal, scrub, repair, orphan sweep, wiped disks) passes over
// them.
func TestInlineObjectsSurviveSnapshotAndMaintenance(t *testing.T) {
	f := newInlineFixture(t, 1024, 1<<20)
	small, large := random(700), random(3000)
	f.put("p", "c", "small", small)
	f.put("p", "c", "large", large)

	f.svc.collectGarbage(f.ctx)
	f.svc.healQueued(f.ctx)
	f.svc.scrubSome(f.ctx, &scrubber{})
	f.svc.repairPass(f.ctx)
	if err := f.svc.sweepOrphans(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.addDisk()
	f.svc.RegisterDisks(f.ctx)
	f.svc.repairPass(f.ctx)

	var snap bytes.Buffer
	fs, err := store.NewFSM(f.local.State, nil).Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if err := fs.Persist(&bufferSink{Buffer: &snap}); err != nil {
		t.Fatal(err)
	}
	restored, err := store.NewLocal(Schema(), eventstate.Schema())
	if err != nil {
		t.Fatal(err)
	}
	if err := store.NewFSM(restored.State, nil).Restore(io.NopCloser(&snap)); err != nil {
		t.Fatal(err)
	}
	f.local = restored
	f.svc.repl, f.svc.cfg.Repl = restored, restored
	if got := f.get("p", "c", "small"); !bytes.Equal(got, small) {
		t.Fatal("inline object read back wrong after restore")
	}
	if got := f.get("p", "c", "large"); !bytes.Equal(got, large) {
		t.Fatal("blob object read back wrong after restore")
	}
	if f.inlineUsed() != 700 {
		t.Fatalf("inline bytes after restore %d, want 700", f.inlineUsed())
	}
}

type bufferSink struct{ *bytes.Buffer }

func (bufferSink) ID() string    { return "test" }
func (bufferSink) Cancel() error { return nil }
func (bufferSink) Close() error  { return nil }
