package block

import (
	"bytes"
	"context"
	"errors"
	"math/rand"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/storage/disk"
)

// heldConfig makes spills hold their parts (write-back, DESIGN.md): a
// small cache, and no age limit within a test.
func heldConfig(cfg *Config) {
	cfg.DirtyLimit = 16 * PageSize
	cfg.HoldAge = time.Hour
}

// heldOps is a workload of mostly small writes, so that the cache fills
// and spills between the client's rare flushes, with a few extents
// written whole (held as whole extents) and folds.
func heldOps(rng *rand.Rand, size int64, count int) []op {
	var ops []op
	for i := range count {
		switch x := rng.Intn(20); {
		case x < 16:
			n := int64(PageSize * (1 + rng.Intn(4)))
			if rng.Intn(4) == 0 {
				n = int64(1 + rng.Intn(2*PageSize))
			}
			d := make([]byte, n)
			rng.Read(d)
			ops = append(ops, op{kind: "write", off: rng.Int63n(size - n), data: d})
		case x < 17:
			n := int64(1 + rng.Intn(6*PageSize))
			ops = append(ops, op{kind: "zero", off: rng.Int63n(size - n), n: n})
		case x < 19:
			ops = append(ops, op{kind: "flush"})
		default:
			ops = append(ops, op{kind: "flush"}, op{kind: "fold"})
		}
		if i%15 == 7 {
			d := make([]byte, ExtentSize)
			rng.Read(d)
			ops = append(ops, op{kind: "write", off: rng.Int63n(size/ExtentSize) * ExtentSize, data: d})
		}
	}
	return ops
}

// TestCrashAtEveryStepWithHeldSpills crashes (kill -9 and power loss) a
// workload whose spills hold their parts between the client's flushes:
// after a crash the volume holds exactly what the last flush
// acknowledged (or, when that flush's command committed but its answer
// was lost, everything written before it), never some held spills
// without others.
func TestCrashAtEveryStepWithHeldSpills(t *testing.T) {
	const size = 2 * ExtentSize
	ops := heldOps(rand.New(rand.NewSource(11)), size, 40)
	ops = append(ops, op{kind: "flush"}, op{kind: "fold"})
	crashAtEveryStepWith(t, size, ops, heldConfig)
}

// appends counts the block.append commands proposed and the held parts
// they carried.
type appends struct {
	store.Replicated
	mu    sync.Mutex
	n     int
	parts []int
}

func (a *appends) Propose(ctx context.Context, typ string, body any) (store.Result, error) {
	if c, ok := body.(appendCmd); ok && typ == cmdAppend {
		a.mu.Lock()
		a.n++
		a.parts = append(a.parts, len(c.Held))
		a.mu.Unlock()
	}
	return a.Replicated.Propose(ctx, typ, body)
}

func (a *appends) count() (int, []int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n, append([]int(nil), a.parts...)
}

func rowsOf(t *testing.T, r *rig, vol string) (segs, exts int) {
	t.Helper()
	tx, err := r.repl.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(segmentsOf(tx, vol)), len(extentsOf(tx, vol))
}

// TestSpillsAreHeldUntilTheClientFlushes fills the cache many times
// over without a flush: the spills write their blobs but propose
// nothing, reads see every write, and the client's flush commits all
// the held parts with its own in one command.
func TestSpillsAreHeldUntilTheClientFlushes(t *testing.T) {
	r := newRig(t)
	cfg := r.config()
	heldConfig(&cfg)
	a := &appends{Replicated: r.repl}
	cfg.Repl = a
	s := New(cfg)
	ctx := context.Background()
	const size = 2 * ExtentSize
	v := createOpen(t, s, size)
	model := make([]byte, size)
	rng := rand.New(rand.NewSource(12))
	o := &owned{}
	for i := range 200 {
		n := int64(PageSize * (1 + rng.Intn(3)))
		off := rng.Int63n(size - n)
		if i%3 == 0 {
			off = off / PageSize * PageSize
		}
		d := make([]byte, n)
		rng.Read(d)
		var err error
		if i%2 == 0 {
			err = o.write(v, d, off)
		} else {
			_, err = v.WriteAt(d, off)
		}
		if err != nil {
			t.Fatal(err)
		}
		copy(model[off:], d)
		if i == 100 { // an extent whole, held as a whole extent
			rng.Read(model[ExtentSize:])
			if _, err := v.WriteAt(model[ExtentSize:], ExtentSize); err != nil {
				t.Fatal(err)
			}
		}
	}
	v.mu.RLock()
	held := len(v.held)
	v.mu.RUnlock()
	if n, _ := a.count(); n != 0 || held < 2 {
		t.Fatalf("before the flush: %d appends proposed, %d parts held; want none proposed, several held", n, held)
	}
	if segs, exts := rowsOf(t, r, "v"); segs != 0 || exts != 0 {
		t.Fatalf("before the flush the state has %d segments and %d extents, want none", segs, exts)
	}
	if got := readAll(t, v); !bytes.Equal(got, model) {
		t.Fatalf("reading held writes: %s", firstDiff(got, model))
	}
	if err := v.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n, parts := a.count(); n != 1 || parts[0] != held {
		t.Fatalf("the flush proposed %d appends carrying %v held parts, want one carrying %d", n, parts, held)
	}
	if o.outstanding() != 0 {
		t.Fatalf("%d handed-over buffers not given back once written", o.outstanding())
	}
	if got := readAll(t, v); !bytes.Equal(got, model) {
		t.Fatalf("after the flush: %s", firstDiff(got, model))
	}
	if err := v.Fold(ctx); err != nil {
		t.Fatal(err)
	}
	v.Close()
	v, err := New(r.config()).Open(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if got := readAll(t, v); !bytes.Equal(got, model) {
		t.Fatalf("after reopening: %s", firstDiff(got, model))
	}
}

// TestHeldWritesAreBounded never flushes: past HoldBytes a spill commits
// what is held, and after HoldAge the volume commits it by itself.
func TestHeldWritesAreBounded(t *testing.T) {
	r := newRig(t)
	cfg := r.config()
	heldConfig(&cfg)
	cfg.HoldBytes = 64 * PageSize
	s := New(cfg)
	ctx := context.Background()
	s.Create(ctx, "v", ExtentSize, Options{})
	v, err := s.Open(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	model := make([]byte, ExtentSize)
	rng := rand.New(rand.NewSource(13))
	for range 300 {
		off := rng.Int63n(ExtentSize/PageSize) * PageSize
		rng.Read(model[off : off+PageSize])
		if _, err := v.WriteAt(model[off:off+PageSize], off); err != nil {
			t.Fatal(err)
		}
		v.mu.RLock()
		hb := v.heldBytes
		v.mu.RUnlock()
		if hb >= cfg.HoldBytes {
			t.Fatalf("%d bytes held, the bound is %d", hb, cfg.HoldBytes)
		}
	}
	if segs, _ := rowsOf(t, r, "v"); segs == 0 {
		t.Fatal("nothing committed past HoldBytes")
	}
	v.Close()

	// Age: a volume with parts held commits them by itself.
	cfg.HoldBytes, cfg.HoldAge = 0, 50*time.Millisecond
	s = New(cfg)
	v, err = s.Open(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	for i := range int64(20) {
		rng.Read(model[i*PageSize : (i+1)*PageSize])
		if _, err := v.WriteAt(model[i*PageSize:(i+1)*PageSize], i*PageSize); err != nil {
			t.Fatal(err)
		}
	}
	v.mu.RLock()
	held := len(v.held)
	v.mu.RUnlock()
	if held == 0 {
		t.Fatal("no spill held its part")
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		v.mu.RLock()
		held = len(v.held)
		v.mu.RUnlock()
		if held == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d parts still held long past HoldAge", held)
		}
		time.Sleep(20 * time.Millisecond)
	}
	other, err := New(r.config()).Open(ctx, "v") // fences v: nothing of it may be lost
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	got := readAll(t, other)
	if !bytes.Equal(got[:16*PageSize], model[:16*PageSize]) {
		t.Fatalf("the writes committed by age: %s", firstDiff(got[:16*PageSize], model[:16*PageSize]))
	}
}

// TestAFencedWritersHeldWritesFailAtFlush: a writer whose volume another
// opened holds its spills, then fails its flush; its held blobs are
// deleted and the new writer reads nothing of them.
func TestAFencedWritersHeldWritesFailAtFlush(t *testing.T) {
	r := newRig(t)
	cfg := r.config()
	heldConfig(&cfg)
	s := New(cfg)
	ctx := context.Background()
	s.Create(ctx, "v", ExtentSize, Options{})
	v, err := s.Open(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(r.config()).Open(ctx, "v"); err != nil {
		t.Fatal(err)
	}
	for i := range int64(40) {
		if _, err := v.WriteAt(page(byte(i+1)), i*PageSize); err != nil {
			t.Fatal(err)
		}
	}
	v.mu.RLock()
	held := len(v.held)
	v.mu.RUnlock()
	if held == 0 || r.shards(t) == 0 {
		t.Fatalf("%d parts held, %d shard files: the spills should hold theirs", held, r.shards(t))
	}
	if err := v.Flush(ctx); !errors.Is(err, ErrFenced) {
		t.Fatalf("flush of a fenced writer = %v, want ErrFenced", err)
	}
	if _, err := v.WriteAt(page(1), 0); !errors.Is(err, ErrFenced) {
		t.Fatalf("write after the fenced flush = %v, want ErrFenced", err)
	}
	if n := r.shards(t); n != 0 {
		t.Fatalf("%d shard files of the fenced writer's held blobs left", n)
	}
	w, err := New(r.config()).Open(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if got := readAll(t, w); !allZero(got) {
		t.Fatal("the new writer reads the fenced writer's writes")
	}
}

// TestAFailedSyncOfHeldWritesFailsTheVolume: held blobs whose fsync fails
// are never named; the volume fails and, reopened, reads as of its last
// commit.
func TestAFailedSyncOfHeldWritesFailsTheVolume(t *testing.T) {
	r := newRig(t)
	cfg := r.config()
	heldConfig(&cfg)
	s := New(cfg)
	ctx := context.Background()
	s.Create(ctx, "v", ExtentSize, Options{})
	v, err := s.Open(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.WriteAt(page(9), 0); err != nil {
		t.Fatal(err)
	}
	if err := v.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range int64(40) {
		if _, err := v.WriteAt(page(byte(i+1)), i*PageSize); err != nil {
			t.Fatal(err)
		}
	}
	synced := syncBlobs
	t.Cleanup(func() { syncBlobs = synced })
	errIO := errors.New("injected EIO")
	syncBlobs = func(ds *disk.DirSyncs) error { return errIO }
	if err := v.Flush(ctx); !errors.Is(err, errIO) {
		t.Fatalf("flush = %v, want the sync's error", err)
	}
	syncBlobs = synced
	if err := v.Flush(ctx); !errors.Is(err, errIO) {
		t.Fatalf("the next flush = %v, want the volume failed", err)
	}
	w, err := New(r.config()).Open(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	want := make([]byte, ExtentSize)
	copy(want, page(9))
	if got := readAll(t, w); !bytes.Equal(got, want) {
		t.Fatalf("after the failed sync: %s", firstDiff(got, want))
	}
}

// TestHeldPartsOfAnUnknownOutcomeAreProposedAgain loses the answer of
// the flush that carried the held parts (it did commit): they stay held,
// the next flush proposes them again, and every write reads back, folded
// and reopened.
func TestHeldPartsOfAnUnknownOutcomeAreProposedAgain(t *testing.T) {
	r := newRig(t)
	cfg := r.config()
	heldConfig(&cfg)
	lost := &lostOnce{Replicated: r.repl, typ: cmdAppend}
	cfg.Repl = lost
	s := New(cfg)
	ctx := context.Background()
	s.Create(ctx, "v", 2*ExtentSize, Options{})
	v, err := s.Open(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	model := make([]byte, 2*ExtentSize)
	rng := rand.New(rand.NewSource(14))
	rng.Read(model[:ExtentSize])
	if _, err := v.WriteAt(model[:ExtentSize], 0); err != nil { // whole, held at the next spill
		t.Fatal(err)
	}
	for i := range int64(40) {
		off := ExtentSize + i*3*PageSize
		rng.Read(model[off : off+PageSize])
		if _, err := v.WriteAt(model[off:off+PageSize], off); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.Flush(ctx); !errors.Is(err, store.ErrOutcomeUnknown) {
		t.Fatalf("flush = %v, want the unknown outcome", err)
	}
	v.mu.RLock()
	held := len(v.held)
	v.mu.RUnlock()
	if held == 0 {
		t.Fatal("the held parts of an unknown outcome were dropped")
	}
	if got := readAll(t, v); !bytes.Equal(got, model) {
		t.Fatalf("after the unknown outcome: %s", firstDiff(got, model))
	}
	copy(model[5*PageSize:], "later")
	v.WriteAt([]byte("later"), 5*PageSize)
	if err := v.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := v.Fold(ctx); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, v); !bytes.Equal(got, model) {
		t.Fatalf("after the second flush and a fold: %s", firstDiff(got, model))
	}
	v.Close()
	v, err = New(r.config()).Open(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if err := v.Fold(ctx); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, v); !bytes.Equal(got, model) {
		t.Fatalf("after reopening and folding: %s", firstDiff(got, model))
	}
}

// TestFlushWithShardFilesGone: a disk wiped between a flush's blob
// writes and their sync (its files gone, nothing left to fsync) leaves
// each blob as if written without that shard. The flush commits while
// every blob keeps its write quorum, and the data reads back; once no
// blob would, it fails as for any failed sync.
func TestFlushWithShardFilesGone(t *testing.T) {
	for _, c := range []struct {
		name  string
		wiped int
		ok    bool
	}{{"one disk", 1, true}, {"every disk", 3, false}} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t)
			ctx := context.Background()
			s := New(r.config())
			if err := s.Create(ctx, "v", 2*ExtentSize, Options{K: 1, M: 2}); err != nil {
				t.Fatal(err)
			}
			v, err := s.Open(ctx, "v")
			if err != nil {
				t.Fatal(err)
			}
			want := make([]byte, 2*ExtentSize)
			copy(want, page(3))                                          // a journaled page
			copy(want[ExtentSize:], bytes.Repeat([]byte{7}, ExtentSize)) // a whole extent
			if _, err := v.WriteAt(want[ExtentSize:], ExtentSize); err != nil {
				t.Fatal(err)
			}
			if _, err := v.WriteAt(page(3), 0); err != nil {
				t.Fatal(err)
			}
			synced := syncBlobs
			t.Cleanup(func() { syncBlobs = synced })
			gone := 0
			syncBlobs = func(ds *disk.DirSyncs) error {
				for _, d := range r.dirs[:c.wiped] {
					for _, f := range ds.Files() {
						if strings.HasPrefix(f, d.Path()+string(os.PathSeparator)) && os.Remove(f) == nil {
							gone++
						}
					}
				}
				return synced(ds)
			}
			err = v.Flush(ctx)
			syncBlobs = synced
			if gone == 0 {
				t.Fatal("the flush synced no file on the wiped disks")
			}
			if !c.ok {
				if err == nil {
					t.Fatal("the flush committed blobs with no shard left")
				}
				return
			}
			if err != nil {
				t.Fatalf("flush with %d shard files gone: %v", gone, err)
			}
			v.Close()
			w, err := New(r.config()).Open(ctx, "v")
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if got := readAll(t, w); !bytes.Equal(got, want) {
				t.Fatalf("after the flush: %s", firstDiff(got, want))
			}
		})
	}
}

// heldFolds holds each fold command until the test releases it.
type heldFolds struct {
	store.Replicated
	entered chan struct{}
	release chan struct{}
}

func (h *heldFolds) Propose(ctx context.Context, typ string, body any) (store.Result, error) {
	if typ == cmdFold {
		select {
		case h.entered <- struct{}{}:
			<-h.release
		case <-h.release: // closed: the test has ended
		}
	}
	return h.Replicated.Propose(ctx, typ, body)
}

// TestFlushAtTheJournalCapWaitsForTheRunningFold holds the folder's fold
// while flushes bring the journal past its cap: the flush at the cap waits
// for that fold, and once it has brought the journal back under the cap
// the flush goes on: it neither folds what was committed meanwhile nor
// waits for the folder's next fold.
func TestFlushAtTheJournalCapWaitsForTheRunningFold(t *testing.T) {
	r := newRig(t)
	cfg := r.config()
	h := &heldFolds{Replicated: r.repl, entered: make(chan struct{}), release: make(chan struct{})}
	cfg.Repl = h
	cfg.FoldBytes = 4 * PageSize // the cap is 16 pages
	s := New(cfg)
	ctx := context.Background()
	if err := s.Create(ctx, "v", 64*ExtentSize, Options{}); err != nil {
		t.Fatal(err)
	}
	v, err := s.Open(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		close(h.release)
		v.Close()
	})
	page := make([]byte, PageSize)
	write := func(first, n int64) {
		t.Helper()
		for p := first; p < first+n; p++ {
			page[0] = byte(p)
			if _, err := v.WriteAt(page, p*pagesPer*PageSize); err != nil { // a page per extent
				t.Fatal(err)
			}
		}
	}
	write(0, 10)
	if err := v.Flush(ctx); err != nil { // journal 10 pages: the folder folds them
		t.Fatal(err)
	}
	<-h.entered
	write(10, 8)
	if err := v.Flush(ctx); err != nil { // 18 pages: past the cap
		t.Fatal(err)
	}
	write(18, 1)
	done := make(chan error, 1)
	go func() { done <- v.Flush(ctx) }()
	select {
	case err := <-done:
		t.Fatalf("flush at the cap returned (%v) while the fold that brings the journal under it was held", err)
	case <-time.After(200 * time.Millisecond):
	}
	h.release <- struct{}{} // the first fold commits: 8 pages left, under the cap
	// The folder folds those 8 next; hold that fold. The flush must not
	// wait for it.
	<-h.entered
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("flush under the cap waited for a fold it does not need")
	}
	h.release <- struct{}{}
	got := make([]byte, PageSize)
	for p := int64(0); p < 19; p++ {
		if _, err := v.ReadAt(got, p*pagesPer*PageSize); err != nil || got[0] != byte(p) {
			t.Fatalf("page %d: %d, %v", p, got[0], err)
		}
	}
}
