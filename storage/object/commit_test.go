package object

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/storage/blob"
	"github.com/rackstack/rackstack/storage/disk/disktest"
)

// unsureRepl stands in for a cluster whose proposal of one command type
// times out: the command either still commits (commitLate) or is lost.
// Either way the proposer sees only the timeout.
type unsureRepl struct {
	*store.Local
	typ        string
	commitLate bool
}

func (r *unsureRepl) Propose(ctx context.Context, typ string, body any) (store.Result, error) {
	if typ != r.typ {
		return r.Local.Propose(ctx, typ, body)
	}
	if r.commitLate {
		if _, err := r.Local.Propose(ctx, typ, body); err != nil {
			return store.Result{}, err
		}
	}
	return store.Result{}, fmt.Errorf("apply %s: %w", typ, context.DeadlineExceeded)
}

// fakeClock is a Config.Now the test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestUnconfirmedCommitThatCommitsKeepsTheBytes(t *testing.T) {
	f := newFixture(t, 6)
	f.container("p", "c")
	f.put("p", "c", "o", random(20_000))
	v2 := random(30_000)
	f.svc.repl = &unsureRepl{Local: f.local, typ: cmdObjectPut, commitLate: true}
	_, err := f.svc.Put(f.ctx, "p", "c", "o", bytes.NewReader(v2), PutOptions{Size: int64(len(v2))})
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, store.ErrOutcomeUnknown) {
		t.Fatalf("put whose commit timed out: %v", err)
	}
	f.svc.repl = f.local
	// The command committed: the object is the new version, and its bytes
	// must be there (the old version is already garbage).
	if got := f.get("p", "c", "o"); !bytes.Equal(got, v2) {
		t.Fatalf("read %d bytes after a late commit, want the %d written", len(got), len(v2))
	}
	f.svc.collectGarbage(f.ctx)
	if got := f.get("p", "c", "o"); !bytes.Equal(got, v2) {
		t.Fatal("the collector took the bytes of a late-committed object")
	}
}

func TestUnconfirmedCommitThatIsLostIsSweptAfterGrace(t *testing.T) {
	f := newFixture(t, 6)
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	f.svc.cfg.Now = clock.now
	f.svc.cfg.OrphanGrace = time.Hour
	f.container("p", "c")
	v1 := random(20_000)
	f.put("p", "c", "o", v1)
	named := f.shardFiles()

	f.svc.repl = &unsureRepl{Local: f.local, typ: cmdObjectPut}
	_, err := f.svc.Put(f.ctx, "p", "c", "o", bytes.NewReader(random(30_000)), PutOptions{Size: 30_000})
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, store.ErrOutcomeUnknown) {
		t.Fatalf("put whose commit timed out: %v", err)
	}
	f.svc.repl = f.local
	if n := f.shardFiles(); n != 2*named {
		t.Fatalf("%d shard files after an unconfirmed commit, want %d: the writer must not delete them", n, 2*named)
	}

	// Found unnamed, but within the grace: kept (its command could still
	// commit).
	if err := f.svc.sweepOrphans(f.ctx); err != nil {
		t.Fatal(err)
	}
	clock.t = clock.t.Add(59 * time.Minute)
	if err := f.svc.sweepOrphans(f.ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.shardFiles(); n != 2*named {
		t.Fatalf("%d shard files within the grace period, want %d", n, 2*named)
	}
	clock.t = clock.t.Add(2 * time.Minute)
	if err := f.svc.sweepOrphans(f.ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.shardFiles(); n != named {
		t.Fatalf("%d shard files after the grace period, want %d (the lost write's reclaimed)", n, named)
	}
	if got := f.get("p", "c", "o"); !bytes.Equal(got, v1) {
		t.Fatal("the sweep damaged the committed version")
	}
}

func TestSweepSparesNamedAndNewBlobs(t *testing.T) {
	f := newFixture(t, 6)
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	f.svc.cfg.Now = clock.now
	f.container("p", "c")
	f.put("p", "c", "o", random(10_000))
	u, err := f.svc.CreateUpload(f.ctx, "p", "c", "mp", Attrs{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.PutPart(f.ctx, u, 1, bytes.NewReader(random(5000)), 5000, ""); err != nil {
		t.Fatal(err)
	}
	f.put("p", "c", "overwritten", random(3000))
	f.put("p", "c", "overwritten", random(3000)) // the first version is garbage now
	before := f.shardFiles()
	if err := f.svc.sweepOrphans(f.ctx); err != nil {
		t.Fatal(err)
	}
	clock.t = clock.t.Add(2 * f.svc.cfg.OrphanGrace)
	// A blob written since the last sweep is seen for the first time now.
	if _, _, err := f.svc.writeBlob(f.ctx, "p", "c", bytes.NewReader(random(4000)), 4000, ""); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.sweepOrphans(f.ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.shardFiles(); n != before+6 {
		t.Fatalf("%d shard files after sweeping, want %d: named, garbage and new blobs stay", n, before+6)
	}
}

func TestSweepSparesBlobsOtherServicesName(t *testing.T) {
	f := newFixture(t, 6)
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	f.svc.cfg.Now = clock.now
	f.container("p", "c")
	// A blob on the same disks that no object names, but a block volume
	// does.
	part, _, err := f.svc.writeBlob(f.ctx, "p", "c", bytes.NewReader(random(4000)), 4000, "")
	if err != nil {
		t.Fatal(err)
	}
	f.svc.cfg.Named = func(_ *memdb.Txn, add func(string, blob.Layout)) { add(part.Blob, part.Layout) }
	before := f.shardFiles()
	f.svc.sweepOrphans(f.ctx)
	clock.t = clock.t.Add(2 * f.svc.cfg.OrphanGrace)
	if err := f.svc.sweepOrphans(f.ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.shardFiles(); n != before {
		t.Fatalf("%d shard files after sweeping, want %d: a blob another service names stays", n, before)
	}
}

func TestRefusedCommitDeletesItsBlobs(t *testing.T) {
	f := newFixture(t, 6)
	f.container("p", "c")
	f.put("p", "c", "o", random(1000))
	before := f.shardFiles()
	// Refused by the state machine: the container went away between the
	// write and the commit.
	f.svc.repl = &refusingRepl{Local: f.local, typ: cmdObjectPut}
	_, err := f.svc.Put(f.ctx, "p", "c", "o2", bytes.NewReader(random(5000)), PutOptions{Size: 5000})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("refused put: %v", err)
	}
	if n := f.shardFiles(); n != before {
		t.Fatalf("%d shard files after a refused commit, want %d", n, before)
	}
}

// refusingRepl rejects one command type as the state machine would.
type refusingRepl struct {
	*store.Local
	typ string
}

func (r *refusingRepl) Propose(ctx context.Context, typ string, body any) (store.Result, error) {
	if typ == r.typ {
		err := store.NotFoundf("container gone")
		return store.Result{Err: err.(*store.ApplyError)}, err
	}
	return r.Local.Propose(ctx, typ, body)
}

func TestPutPastAFrozenDiskQueuesTheMissingShardForHeal(t *testing.T) {
	f := newFixture(t, 6)
	f.container("p", "c")
	f.svc.blobs.StallTimeout, f.svc.blobs.StragglerWait = time.Hour, time.Second
	frozen := disktest.Freeze(t, f.disks[f.rows[0].ID])
	f.disks[f.rows[0].ID] = frozen
	data := random(5000)
	put := make(chan *Object, 1)
	go func() {
		o, err := f.svc.Put(f.ctx, "p", "c", "o", bytes.NewReader(data), PutOptions{Size: int64(len(data))})
		if err != nil {
			t.Errorf("put past a frozen disk: %v", err)
		}
		put <- o
	}()
	var o *Object
	select {
	case o = <-put:
	case <-time.After(time.Minute):
		t.Fatal("put is still waiting for the frozen disk")
	}
	if o == nil {
		t.FailNow()
	}
	heal := store.All[HealItem](f.local.Local(), tHeal, "id")
	if len(heal) != 1 || heal[0].ID != o.Parts[0].Blob || heal[0].Object != o.ID {
		t.Fatalf("heal queue after a write that missed a shard: %+v", heal)
	}
	frozen.Thaw()
	f.svc.healQueued(f.ctx)
	if n := len(store.All[HealItem](f.local.Local(), tHeal, "id")); n != 0 {
		t.Fatalf("%d heals still queued", n)
	}
	p := o.Parts[0]
	if bad, err := f.svc.blobs.Verify(f.ctx, p.Blob, p.Layout, p.Size); err != nil || len(bad) != 0 {
		t.Fatalf("blob after heal: bad shards %v, %v", bad, err)
	}
}
