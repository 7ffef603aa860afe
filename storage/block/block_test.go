package block

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/storage/blob"
	"github.com/rackstack/rackstack/storage/disk"
	"github.com/rackstack/rackstack/storage/placement"
)

// rig is a one-node cluster state with three local disks.
type rig struct {
	repl  *store.Local
	blobs *blob.Store
	disks []placement.Disk
	dirs  []*disk.Dir
	clock *clock
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newRig(t *testing.T) *rig {
	t.Helper()
	repl, err := store.NewLocal(Schema())
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{repl: repl, clock: &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}}
	local := map[string]disk.Disk{}
	for range 3 {
		d, err := disk.OpenDir(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		local[d.ID()] = d
		r.dirs = append(r.dirs, d)
		r.disks = append(r.disks, placement.Disk{Node: "n1", ID: d.ID()})
	}
	r.blobs = &blob.Store{Node: "n1", Local: local}
	return r
}

func (r *rig) config() Config {
	return Config{
		Repl: r.repl, Blobs: r.blobs,
		Disks:     func(context.Context) ([]placement.Disk, error) { return r.disks, nil },
		FoldBytes: 1 << 40, DirtyLimit: 1 << 40, // folds and flushes only when a test asks
		GarbageGrace: time.Minute, Now: r.clock.now,
	}
}

// shardFiles returns the paths of the shard files on the rig's disks.
func (r *rig) shardFiles(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, d := range r.dirs {
		err := filepath.WalkDir(filepath.Join(d.Path(), "shards"), func(p string, e os.DirEntry, err error) error {
			if err == nil && !e.IsDir() {
				out[p] = true
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// shards counts the shard files on the rig's disks.
func (r *rig) shards(t *testing.T) int {
	t.Helper()
	n := 0
	for _, d := range r.dirs {
		names, err := d.List()
		if err != nil {
			t.Fatal(err)
		}
		n += len(names)
	}
	return n
}

func readAll(t *testing.T, v *Volume) []byte {
	t.Helper()
	b := make([]byte, v.Size())
	if _, err := v.ReadAt(b, 0); err != nil {
		t.Fatalf("read %s: %v", v.ID(), err)
	}
	return b
}

func firstDiff(a, b []byte) string {
	for i := range a {
		if a[i] != b[i] {
			return fmt.Sprintf("first difference at byte %d (page %d): %d != %d", i, i/PageSize, a[i], b[i])
		}
	}
	return "equal"
}

func TestThinVolumeReadsZeroesAndUsesNothing(t *testing.T) {
	r := newRig(t)
	s := New(r.config())
	ctx := context.Background()
	if err := s.Create(ctx, "v1", 1<<30, Options{}); err != nil {
		t.Fatal(err)
	}
	v, err := s.Open(ctx, "v1")
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	b := make([]byte, 1<<20)
	b[0] = 1
	if _, err := v.ReadAt(b, 512<<20); err != nil || !allZero(b) {
		t.Fatalf("read of an unwritten range: %v, zero %v", err, allZero(b))
	}
	ext, err := v.Extents(0, 1<<30)
	if err != nil || len(ext) != 1 || !ext[0].Zero || ext[0].Len != 1<<30 {
		t.Fatalf("extents of an empty volume = %+v, %v", ext, err)
	}
	u, err := s.Usage(ctx)
	if err != nil || u.Allocated != 0 || u.Provisioned != 1<<30 || u.Volumes != 1 {
		t.Fatalf("usage = %+v, %v", u, err)
	}
	if n := r.shards(t); n != 0 {
		t.Fatalf("an empty volume left %d shard files", n)
	}
}

func TestCreateRefusesBadRequests(t *testing.T) {
	r := newRig(t)
	s := New(r.config())
	ctx := context.Background()
	cases := map[string]struct {
		id   string
		size int64
		opts Options
	}{
		"zero size":       {"a", 0, Options{}},
		"unaligned size":  {"a", 1000, Options{}},
		"slash in id":     {"a/b", 4096, Options{}},
		"empty id":        {"", 4096, Options{}},
		"m without k":     {"a", 4096, Options{M: 1}},
		"negative parity": {"a", 4096, Options{K: 2, M: -1}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if err := s.Create(ctx, c.id, c.size, c.opts); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Create = %v, want ErrInvalid", err)
			}
		})
	}
	if err := s.Create(ctx, "a", 4096, Options{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, "a", 4096, Options{}); !errors.Is(err, ErrExists) {
		t.Fatalf("second Create = %v, want ErrExists", err)
	}
}

// model is a volume's expected contents.
type op struct {
	kind string // write, owned, zero, flush, fold
	off  int64
	data []byte
	n    int64
	own  *owned // owned: who hands the data over (nil: given for good)
}

// owned hands buffers to a volume with WriteOwned and scribbles over each
// once the volume gives it back, so a buffer given back while the volume
// still uses it reads wrong; out counts those not given back.
type owned struct {
	mu  sync.Mutex
	out int
}

func (o *owned) write(v *Volume, data []byte, off int64) error {
	b := bytes.Clone(data)
	o.mu.Lock()
	o.out++
	o.mu.Unlock()
	_, err := v.WriteOwned(b, off, func() {
		for i := range b {
			b[i] = 'X'
		}
		o.mu.Lock()
		o.out--
		o.mu.Unlock()
	})
	return err
}

func (o *owned) outstanding() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.out
}

func randomOps(rng *rand.Rand, size int64, count int) []op {
	var ops []op
	for range count {
		switch x := rng.Intn(10); {
		case x < 6:
			n := int64(1 + rng.Intn(3*PageSize))
			if rng.Intn(3) == 0 {
				n = int64(PageSize * (1 + rng.Intn(4)))
			}
			off := rng.Int63n(size - n)
			if rng.Intn(2) == 0 {
				off = off / PageSize * PageSize
			}
			d := make([]byte, n)
			rng.Read(d)
			ops = append(ops, op{kind: "write", off: off, data: d})
		case x < 7:
			n := int64(1 + rng.Intn(6*PageSize))
			ops = append(ops, op{kind: "zero", off: rng.Int63n(size - n), n: n})
		case x < 9:
			ops = append(ops, op{kind: "flush"})
		default:
			ops = append(ops, op{kind: "flush"}, op{kind: "fold"})
		}
	}
	return ops
}

func apply(model []byte, o op) {
	switch o.kind {
	case "write", "owned":
		copy(model[o.off:], o.data)
	case "zero":
		clear(model[o.off : o.off+o.n])
	}
}

func run(ctx context.Context, v *Volume, o op) error {
	switch o.kind {
	case "write":
		_, err := v.WriteAt(o.data, o.off)
		return err
	case "owned":
		if o.own != nil {
			return o.own.write(v, o.data, o.off)
		}
		// The volume may keep the bytes it is handed: give it its own.
		_, err := v.WriteOwned(bytes.Clone(o.data), o.off, nil)
		return err
	case "zero":
		return v.WriteZeroes(o.off, o.n)
	case "flush":
		return v.Flush(ctx)
	case "fold":
		return v.Fold(ctx)
	}
	return nil
}

func foldNow(ctx context.Context, v *Volume) error {
	if err := v.Flush(ctx); err != nil {
		return err
	}
	return v.Fold(ctx)
}

func TestWritesReadBackBeforeAndAfterFlushFoldAndReopen(t *testing.T) {
	r := newRig(t)
	s := New(r.config())
	ctx := context.Background()
	const size = 3 * ExtentSize
	if err := s.Create(ctx, "v", size, Options{}); err != nil {
		t.Fatal(err)
	}
	v, err := s.Open(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	model := make([]byte, size)
	rng := rand.New(rand.NewSource(1))
	for i, o := range randomOps(rng, size, 300) {
		if err := run(ctx, v, o); err != nil {
			t.Fatalf("op %d %s: %v", i, o.kind, err)
		}
		apply(model, o)
		if i%50 == 0 {
			if got := readAll(t, v); !bytes.Equal(got, model) {
				t.Fatalf("after op %d: %s", i, firstDiff(got, model))
			}
		}
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	v, err = s.Open(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, v); !bytes.Equal(got, model) {
		t.Fatalf("after reopen: %s", firstDiff(got, model))
	}
	if err := v.Fold(ctx); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, v); !bytes.Equal(got, model) {
		t.Fatalf("after the last fold: %s", firstDiff(got, model))
	}
	// Extents agree with the contents at page granularity.
	ext, err := v.Extents(0, size)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ext {
		if !e.Zero {
			continue
		}
		if !allZero(model[e.Off : e.Off+e.Len]) {
			t.Fatalf("extent %+v is reported zero but holds data", e)
		}
	}
	v.Close()
}

// TestOwnedWritesReadBack writes through WriteOwned, whose whole pages
// the cache keeps instead of copying, among partial writes, zeroes,
// flushes and folds over the same pages.
func TestOwnedWritesReadBack(t *testing.T) {
	r := newRig(t)
	s := New(r.config())
	ctx := context.Background()
	const size = 2 * ExtentSize
	v := createOpen(t, s, size)
	model := make([]byte, size)
	ops := wholeExtentOps(rand.New(rand.NewSource(11)), size, 80)
	own := &owned{}
	for i, o := range ops {
		if o.kind == "write" && i%2 == 0 {
			o.kind, o.own = "owned", own
		}
		if err := run(ctx, v, o); err != nil {
			t.Fatalf("op %d %s: %v", i, o.kind, err)
		}
		apply(model, o)
		if i%25 == 0 {
			if got := readAll(t, v); !bytes.Equal(got, model) {
				t.Fatalf("after op %d: %s", i, firstDiff(got, model))
			}
		}
	}
	if err := v.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := own.outstanding(); n != 0 {
		t.Fatalf("%d buffers handed over not given back after the last flush", n)
	}
	if err := foldNow(ctx, v); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, v); !bytes.Equal(got, model) {
		t.Fatalf("after the last fold: %s", firstDiff(got, model))
	}
	v.Close()
}

// TestRewrittenOwnedBuffersCountAgainstTheLimit: each 64 KiB write, a
// page further on, replaces all but one page of the one before, so the
// cache holds a page of every buffer; those buffers' memory must count against
// DirtyLimit, or the dirty pages stay under it while the buffers they
// pin grow without bound.
func TestRewrittenOwnedBuffersCountAgainstTheLimit(t *testing.T) {
	r := newRig(t)
	cfg := r.config()
	cfg.DirtyLimit = 1 << 20
	s := New(cfg)
	ctx := context.Background()
	const size = 2 * ExtentSize
	v := createOpen(t, s, size)
	defer v.Close()
	own := &owned{}
	model := make([]byte, size)
	const n = 64 << 10
	data := make([]byte, n)
	most := 0
	for k := int64(0); k < 600; k++ {
		rand.New(rand.NewSource(k)).Read(data)
		if err := own.write(v, data, k*PageSize); err != nil {
			t.Fatal(err)
		}
		copy(model[k*PageSize:], data)
		most = max(most, own.outstanding())
	}
	// The dirty map and the maps in flight, each with what it pins.
	if limit := (maxSealed+1)*int(cfg.DirtyLimit/n) + 2; most > limit {
		t.Fatalf("%d buffers of %d bytes held at once, want at most %d", most, n, limit)
	}
	if err := v.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := own.outstanding(); n != 0 {
		t.Fatalf("%d buffers not given back after the flush", n)
	}
	if got := readAll(t, v); !bytes.Equal(got, model) {
		t.Fatal(firstDiff(got, model))
	}
}

func TestZeroingAnExtentDeallocatesIt(t *testing.T) {
	r := newRig(t)
	s := New(r.config())
	ctx := context.Background()
	if err := s.Create(ctx, "v", 2*ExtentSize, Options{}); err != nil {
		t.Fatal(err)
	}
	v, _ := s.Open(ctx, "v")
	defer v.Close()
	v.WriteAt(bytes.Repeat([]byte{7}, 3*PageSize), ExtentSize+100)
	if err := foldNow(ctx, v); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.Usage(ctx); u.Allocated != ExtentSize {
		t.Fatalf("allocated %d after writing one extent, want %d", u.Allocated, ExtentSize)
	}
	if err := v.Trim(ExtentSize, ExtentSize); err != nil {
		t.Fatal(err)
	}
	if err := foldNow(ctx, v); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.Usage(ctx); u.Allocated != 0 {
		t.Fatalf("allocated %d after trimming everything, want 0", u.Allocated)
	}
	if got := readAll(t, v); !allZero(got) {
		t.Fatal("trimmed volume does not read as zeroes")
	}
}

func TestTrimOfThinSpaceCostsNothing(t *testing.T) {
	r := newRig(t)
	s := New(r.config())
	ctx := context.Background()
	s.Create(ctx, "v", 1<<30, Options{})
	v, _ := s.Open(ctx, "v")
	defer v.Close()
	v.WriteAt([]byte("data"), 512<<20)
	if err := v.Trim(0, 1<<30); err != nil {
		t.Fatal(err)
	}
	v.mu.RLock()
	dirty := len(v.dirty)
	v.mu.RUnlock()
	if dirty != 1 {
		t.Fatalf("%d pages cached after trimming a volume with one written page, want 1 (the written page, zeroed)", dirty)
	}
	b := make([]byte, 4)
	if v.ReadAt(b, 512<<20); !allZero(b) {
		t.Fatal("the trimmed page still holds data")
	}
}

func TestSnapshotsAndClonesAreCopyOnWrite(t *testing.T) {
	r := newRig(t)
	s := New(r.config())
	ctx := context.Background()
	const size = 2 * ExtentSize
	if err := s.Create(ctx, "v", size, Options{}); err != nil {
		t.Fatal(err)
	}
	v, _ := s.Open(ctx, "v")
	a := bytes.Repeat([]byte("a"), size)
	v.WriteAt(a, 0)
	if err := foldNow(ctx, v); err != nil {
		t.Fatal(err)
	}
	v.WriteAt([]byte("journal"), 10) // flushed by Snapshot, not folded
	copy(a[10:], "journal")
	if err := s.Snapshot(ctx, "snap", "v"); err != nil {
		t.Fatal(err)
	}
	before, _ := s.Usage(ctx)
	b := bytes.Repeat([]byte("b"), PageSize)
	v.WriteAt(b, 0)
	if err := foldNow(ctx, v); err != nil {
		t.Fatal(err)
	}
	after, _ := s.Usage(ctx)
	// Only the extent written after the snapshot is new.
	if after.Allocated-before.Allocated > ExtentSize {
		t.Fatalf("allocated grew by %d after writing one page, want at most one extent", after.Allocated-before.Allocated)
	}
	sn, err := s.Open(ctx, "snap")
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, sn); !bytes.Equal(got, a) {
		t.Fatalf("snapshot: %s", firstDiff(got, a))
	}
	if _, err := sn.WriteAt([]byte("x"), 0); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("write to a snapshot = %v, want ErrReadOnly", err)
	}
	if err := s.Clone(ctx, "c", "snap"); err != nil {
		t.Fatal(err)
	}
	c, _ := s.Open(ctx, "c")
	c.WriteAt([]byte("clone"), 0)
	if err := foldNow(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, sn); !bytes.Equal(got, a) {
		t.Fatalf("snapshot after writing its clone: %s", firstDiff(got, a))
	}
	wantC := append([]byte(nil), a...)
	copy(wantC, "clone")
	if got := readAll(t, c); !bytes.Equal(got, wantC) {
		t.Fatalf("clone: %s", firstDiff(got, wantC))
	}
	// Delete the source and the snapshot: the clone keeps what it shares.
	v.Close()
	c.Close()
	for _, id := range []string{"v", "snap", "v"} {
		if err := s.Delete(ctx, id); err != nil {
			t.Fatalf("delete %s: %v", id, err)
		}
	}
	if err := s.CollectGarbage(ctx); err != nil {
		t.Fatal(err)
	}
	r.clock.add(2 * time.Minute)
	if err := s.CollectGarbage(ctx); err != nil {
		t.Fatal(err)
	}
	c, _ = s.Open(ctx, "c")
	if got := readAll(t, c); !bytes.Equal(got, wantC) {
		t.Fatalf("clone after its sources were deleted: %s", firstDiff(got, wantC))
	}
	c.Close()
	if err := s.Delete(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	s.CollectGarbage(ctx)
	r.clock.add(2 * time.Minute)
	if err := s.CollectGarbage(ctx); err != nil {
		t.Fatal(err)
	}
	if n := r.shards(t); n != 0 {
		t.Fatalf("%d shard files left after deleting every volume", n)
	}
	if u, _ := s.Usage(ctx); u != (Usage{}) {
		t.Fatalf("usage after deleting everything = %+v", u)
	}
}

func TestANewerOpenFencesTheOldWriter(t *testing.T) {
	r := newRig(t)
	s := New(r.config())
	ctx := context.Background()
	if err := s.Create(ctx, "v", ExtentSize, Options{}); err != nil {
		t.Fatal(err)
	}
	old, _ := s.Open(ctx, "v")
	old.WriteAt([]byte("old"), 0)
	if err := old.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// The volume moves: a second store (another node) opens it.
	s2 := New(r.config())
	cur, err := s2.Open(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	old.WriteAt([]byte("stale"), 0)
	if err := old.Flush(ctx); !errors.Is(err, ErrFenced) {
		t.Fatalf("flush by the fenced writer = %v, want ErrFenced", err)
	}
	if _, err := old.WriteAt([]byte("x"), 0); !errors.Is(err, ErrFenced) {
		t.Fatalf("write after being fenced = %v, want ErrFenced", err)
	}
	b := make([]byte, 3)
	cur.ReadAt(b, 0)
	if string(b) != "old" {
		t.Fatalf("new writer reads %q, want the last flushed %q", b, "old")
	}
	cur.WriteAt([]byte("new"), 0)
	if err := cur.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestResizeGrowsOnly(t *testing.T) {
	r := newRig(t)
	s := New(r.config())
	ctx := context.Background()
	s.Create(ctx, "v", ExtentSize, Options{})
	v, _ := s.Open(ctx, "v")
	defer v.Close()
	if err := s.Resize(ctx, "v", 3*ExtentSize); err != nil {
		t.Fatal(err)
	}
	if v.Size() != 3*ExtentSize {
		t.Fatalf("open volume's size = %d after resize", v.Size())
	}
	if _, err := v.WriteAt([]byte("end"), 3*ExtentSize-3); err != nil {
		t.Fatal(err)
	}
	if err := s.Resize(ctx, "v", ExtentSize); !errors.Is(err, ErrInvalid) {
		t.Fatalf("shrink = %v, want ErrInvalid", err)
	}
	if _, err := v.WriteAt([]byte("x"), 3*ExtentSize); !errors.Is(err, ErrInvalid) {
		t.Fatalf("write past the end = %v, want ErrInvalid", err)
	}
	// Whole pages past the end: the cost of zero pages is smaller than
	// the range, so the range itself must be checked.
	if err := v.WriteZeroes(3*ExtentSize-64*PageSize, 128*PageSize); !errors.Is(err, ErrInvalid) {
		t.Fatalf("zeroes past the end = %v, want ErrInvalid", err)
	}
}

func TestDirtyLimitFlushesByItself(t *testing.T) {
	r := newRig(t)
	cfg := r.config()
	cfg.DirtyLimit = 4 * PageSize
	s := New(cfg)
	ctx := context.Background()
	s.Create(ctx, "v", ExtentSize, Options{})
	v, _ := s.Open(ctx, "v")
	for i := range 10 {
		v.WriteAt(bytes.Repeat([]byte{byte(i + 1)}, PageSize), int64(i)*PageSize)
	}
	v.mu.RLock()
	dirty, segs := v.dirtyBytes, len(v.segs)+len(v.held) // spills hold their segments (write-back)
	v.mu.RUnlock()
	if dirty > cfg.DirtyLimit || segs == 0 {
		t.Fatalf("dirty %d bytes (limit %d), %d segments", dirty, cfg.DirtyLimit, segs)
	}
}

// TestAFullCacheKeepsPartExtentsForTheirRest fills the cache with one
// whole extent and half of the next: the flush that makes room writes the
// whole one and keeps the half, so that once the writer has written the
// rest, that extent is written whole too and nothing is journaled.
func TestAFullCacheKeepsPartExtentsForTheirRest(t *testing.T) {
	r := newRig(t)
	cfg := r.config()
	cfg.DirtyLimit = ExtentSize + ExtentSize/2
	s := New(cfg)
	ctx := context.Background()
	s.Create(ctx, "v", 2*ExtentSize, Options{})
	v, _ := s.Open(ctx, "v")
	data := make([]byte, 2*ExtentSize)
	rand.New(rand.NewSource(9)).Read(data)
	for off := 0; off < len(data); off += 1 << 20 { // 1 MiB writes, as fio's
		if _, err := v.WriteAt(data[off:off+1<<20], int64(off)); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	tx, _ := r.repl.Read(ctx)
	if segs := segmentsOf(tx, "v"); len(segs) != 0 {
		t.Fatalf("%d segments journal pages of extents written whole", len(segs))
	}
	if got := readAll(t, v); !bytes.Equal(got, data) {
		t.Fatal(firstDiff(got, data))
	}
	v.Close()
}

// gatedPuts holds the n'th blob write until gates[n] is closed.
type gatedPuts struct {
	Blobs
	mu      sync.Mutex
	n       int
	gates   []chan struct{}
	entered chan int
}

func (g *gatedPuts) Put(ctx context.Context, key string, l blob.Layout, r io.Reader) (blob.Info, error) {
	g.mu.Lock()
	n := g.n
	g.n++
	g.mu.Unlock()
	if n < len(g.gates) {
		g.entered <- n
		<-g.gates[n]
	}
	return g.Blobs.Put(ctx, key, l, r)
}

// TestWritersFillTheCacheWhileItIsFlushed has two writers find the cache
// full while a flush is still writing: one of them flushes, and the other
// goes on writing into the next cache as soon as that flush has taken the
// full one, without waiting for it to be written.
func TestWritersFillTheCacheWhileItIsFlushed(t *testing.T) {
	r := newRig(t)
	cfg := r.config()
	cfg.DirtyLimit = 2 * PageSize
	g := &gatedPuts{Blobs: r.blobs, gates: []chan struct{}{make(chan struct{}), make(chan struct{})}, entered: make(chan int, 2)}
	cfg.Blobs = g
	s := New(cfg)
	ctx := context.Background()
	s.Create(ctx, "v", ExtentSize, Options{})
	v, _ := s.Open(ctx, "v")
	page := func(i int) []byte { return bytes.Repeat([]byte{byte(i + 1)}, PageSize) }
	write := func(i int) error { _, err := v.WriteAt(page(i), int64(i)*PageSize); return err }
	write(0)
	flushed := make(chan error, 1)
	go func() { flushed <- v.Flush(ctx) }() // writes page 0, held at its blob write
	<-g.entered
	write(1)
	write(2) // the cache is full
	wrote := make(chan error, 2)
	go func() { wrote <- write(3) }()
	go func() { wrote <- write(4) }()
	time.Sleep(100 * time.Millisecond) // let both find the cache full
	close(g.gates[0])
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	<-g.entered // one writer's flush took pages 1 and 2 and is held
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no writer went on while the full cache was being flushed")
	}
	close(g.gates[1])
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	want := make([]byte, ExtentSize)
	for i := range 5 {
		copy(want[i*PageSize:], page(i))
	}
	if got := readAll(t, v); !bytes.Equal(got, want) {
		t.Fatal(firstDiff(got, want))
	}
	v.Close()
}

// crasher fails every call from the step'th blob write or proposal on, as
// a process that died there: before the step took effect, or after it did
// but before its caller learned so.
type crasher struct {
	Blobs
	repl  store.Replicated
	mu    sync.Mutex
	step  int
	at    int
	after bool
	dead  bool
	what  string // the step that crashed
}

var errCrash = errors.New("crashed")

// enter counts a step and says whether to run it and whether to die.
func (c *crasher) enter(what string) (run, die bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		return false, false
	}
	c.step++
	if c.step == c.at {
		c.dead, c.what = true, what
		return c.after, true
	}
	return true, false
}

func (c *crasher) Put(ctx context.Context, key string, l blob.Layout, r io.Reader) (blob.Info, error) {
	run, die := c.enter("put")
	if !run {
		return blob.Info{}, errCrash
	}
	info, err := c.Blobs.Put(ctx, key, l, r)
	if die {
		return blob.Info{}, errCrash
	}
	return info, err
}

func (c *crasher) Delete(ctx context.Context, key string, l blob.Layout) error {
	c.mu.Lock()
	dead := c.dead
	c.mu.Unlock()
	if dead {
		return errCrash
	}
	return c.Blobs.Delete(ctx, key, l)
}

func (c *crasher) Propose(ctx context.Context, typ string, body any) (store.Result, error) {
	run, die := c.enter(typ)
	if !run {
		return store.Result{}, fmt.Errorf("%w: %w", store.ErrOutcomeUnknown, errCrash)
	}
	res, err := c.repl.Propose(ctx, typ, body)
	if die {
		return store.Result{}, fmt.Errorf("%w: %w", store.ErrOutcomeUnknown, errCrash)
	}
	return res, err
}

func (c *crasher) Read(ctx context.Context) (*memdb.Txn, error) { return c.repl.Read(ctx) }

// TestCrashAtEveryStep runs a workload of writes, flushes and folds and
// kills it before and after each of its blob writes and proposals in turn.
// The volume reopened from the state and the disks must hold every
// acknowledged flush, and the flush in flight wholly or not at all.
func TestCrashAtEveryStep(t *testing.T) {
	const size = 2 * ExtentSize
	ops := randomOps(rand.New(rand.NewSource(7)), size, 24)
	ops = append(ops, op{kind: "flush"}, op{kind: "fold"})
	crashAtEveryStep(t, size, ops)
}

// TestCrashAtEveryStepWithWholeExtents crashes a workload whose flushes
// also write whole extents straight to extent blobs, over pages the
// journal holds of them, at every step.
func TestCrashAtEveryStepWithWholeExtents(t *testing.T) {
	const size = 2 * ExtentSize
	ops := wholeExtentOps(rand.New(rand.NewSource(8)), size, 30)
	ops = append(ops, op{kind: "flush"}, op{kind: "fold"})
	crashAtEveryStep(t, size, ops)
}

// TestCrashAtEveryStepWithPackedExtents crashes a workload whose flushes
// write several whole extents into one blob (DESIGN.md), over journaled
// pages and over extents of earlier packs, folded too, at every step.
func TestCrashAtEveryStepWithPackedExtents(t *testing.T) {
	const size = 3 * ExtentSize
	rng := rand.New(rand.NewSource(9))
	var ops []op
	for i, o := range randomOps(rng, size, 12) {
		ops = append(ops, o)
		if i%4 == 1 {
			first := rng.Int63n(2)
			d := make([]byte, 2*ExtentSize)
			rng.Read(d)
			ops = append(ops, op{kind: "write", off: first * ExtentSize, data: d}, op{kind: "flush"})
		}
	}
	ops = append(ops, op{kind: "flush"}, op{kind: "fold"})
	crashAtEveryStep(t, size, ops)
}

// TestAPackedBlobLivesWhileAnExtentNamesIt writes two extents whole in
// one flush (one blob), then replaces one of them whole and folds
// journaled pages into the other: the pack stays named (and its other
// extent readable, the fold reading it at its offset) until its last
// extent is replaced, and only then is it no longer listed.
func TestAPackedBlobLivesWhileAnExtentNamesIt(t *testing.T) {
	r := newRig(t)
	s := New(r.config())
	ctx := context.Background()
	const size = 3 * ExtentSize
	s.Create(ctx, "v", size, Options{K: 2, M: 1})
	v, err := s.Open(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(6))
	model := make([]byte, size)
	write := func(off, n int64) {
		t.Helper()
		rng.Read(model[off : off+n])
		if _, err := v.WriteAt(model[off:off+n], off); err != nil {
			t.Fatal(err)
		}
		if err := v.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	listed := func() map[string]int64 {
		tx, _ := r.repl.Read(ctx)
		out := map[string]int64{}
		s.Blobs(tx, func(key string, _ blob.Layout, size int64) { out[key] = size })
		return out
	}
	write(ExtentSize, 2*ExtentSize)
	tx, _ := r.repl.Read(ctx)
	pack := store.Get[ExtentRow](tx, tExtents, extentID("v", 2)).Blob
	if got := listed()[pack]; got != 2*ExtentSize {
		t.Fatalf("pack %s listed with %d bytes, want %d", pack, got, 2*ExtentSize)
	}
	write(ExtentSize, ExtentSize) // extent 1 whole again: a blob of its own
	if _, ok := listed()[pack]; !ok {
		t.Fatalf("pack %s no longer listed while extent 2 names it", pack)
	}
	if got := readAll(t, v); !bytes.Equal(got, model) {
		t.Fatalf("after replacing extent 1: %s", firstDiff(got, model))
	}
	write(2*ExtentSize+5*PageSize, 3*PageSize) // journaled, then folded over the pack's extent 2
	if err := v.Fold(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := listed()[pack]; ok {
		t.Fatalf("pack %s still listed once no extent names it", pack)
	}
	v.Close()
	if v, err = s.Open(ctx, "v"); err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if got := readAll(t, v); !bytes.Equal(got, model) {
		t.Fatalf("after the fold and a reopen: %s", firstDiff(got, model))
	}
}

// wholeExtentOps is randomOps with, every few operations, the whole of a
// random extent overwritten.
func wholeExtentOps(rng *rand.Rand, size int64, count int) []op {
	var out []op
	for i, o := range randomOps(rng, size, count) {
		out = append(out, o)
		if i%3 == 1 {
			d := make([]byte, ExtentSize)
			rng.Read(d)
			out = append(out, op{kind: "write", off: rng.Int63n(size/ExtentSize) * ExtentSize, data: d})
		}
	}
	return out
}

func crashAtEveryStep(t *testing.T, size int64, ops []op) {
	crashAtEveryStepWith(t, size, ops, func(*Config) {})
}

// crashAtEveryStepWith is crashAtEveryStep with the store's config
// changed by tune. The crash is a power loss too: every shard file that
// no sync made durable (the flushes' blobs are written without fsync and
// synced before their command, DESIGN.md) is gone after it.
func crashAtEveryStepWith(t *testing.T, size int64, ops []op, tune func(*Config)) {
	var mu sync.Mutex
	durable := map[string]bool{}
	synced := syncBlobs
	t.Cleanup(func() { syncBlobs = synced })
	syncBlobs = func(ds *disk.DirSyncs) error {
		files := ds.Files()
		err := synced(ds)
		if err == nil {
			mu.Lock()
			for _, f := range files {
				durable[f] = true
			}
			mu.Unlock()
		}
		return err
	}
	// A run without a crash counts the steps.
	total := func() int {
		r := newRig(t)
		c := &crasher{Blobs: r.blobs, repl: r.repl, at: -1}
		cfg := r.config()
		tune(&cfg)
		cfg.Blobs, cfg.Repl = c, c
		s := New(cfg)
		ctx := context.Background()
		s.Create(ctx, "v", size, Options{})
		v, err := s.Open(ctx, "v")
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range ops {
			if err := run(ctx, v, o); err != nil {
				t.Fatal(err)
			}
		}
		return c.step
	}()
	if total < 10 {
		t.Fatalf("the workload has only %d steps", total)
	}
	for at := 3; at <= total; at++ { // steps 1, 2: create, open
		for _, after := range []bool{false, true} {
			t.Run(fmt.Sprintf("step%d/after=%v", at, after), func(t *testing.T) {
				r := newRig(t)
				ctx := context.Background()
				c := &crasher{Blobs: r.blobs, repl: r.repl, at: at, after: after}
				cfg := r.config()
				tune(&cfg)
				cfg.Blobs, cfg.Repl = c, c
				s := New(cfg)
				mu.Lock()
				clear(durable)
				mu.Unlock()
				if err := s.Create(ctx, "v", size, Options{}); err != nil {
					t.Fatal(err)
				}
				v, err := s.Open(ctx, "v")
				if err != nil {
					t.Fatal(err)
				}
				acked := make([]byte, size)
				pending := make([]byte, size)
				for _, o := range ops {
					var before map[string]bool
					if o.kind == "fold" {
						before = r.shardFiles(t)
					}
					err := run(ctx, v, o)
					if o.kind == "fold" {
						// A fold's blobs are fsync'd by blob.Put.
						mu.Lock()
						for f := range r.shardFiles(t) {
							if !before[f] {
								durable[f] = true
							}
						}
						mu.Unlock()
					}
					if err != nil {
						if !errors.Is(err, errCrash) {
							t.Fatalf("%s failed with %v, not the crash", o.kind, err)
						}
						break
					}
					apply(pending, o)
					if o.kind == "flush" {
						copy(acked, pending)
					}
				}
				if !c.dead {
					t.Fatal("the workload did not reach the crash")
				}
				// The power loss: what was never synced is gone.
				mu.Lock()
				for f := range r.shardFiles(t) {
					if !durable[f] {
						if err := os.Remove(f); err != nil {
							t.Fatal(err)
						}
					}
				}
				mu.Unlock()
				// Restart: a new store over the same state and disks; the
				// dead process's memory is gone.
				s2 := New(r.config())
				v2, err := s2.Open(ctx, "v")
				if err != nil {
					t.Fatal(err)
				}
				got := readAll(t, v2)
				want := acked
				if c.what == cmdAppend && after {
					want = pending // the flush committed; only its answer was lost
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("crash at %s (after=%v): %s", c.what, after, firstDiff(got, want))
				}
				// The restarted writer can fold and write on.
				if err := v2.Fold(ctx); err != nil {
					t.Fatal(err)
				}
				if got := readAll(t, v2); !bytes.Equal(got, want) {
					t.Fatalf("after folding the recovered journal: %s", firstDiff(got, want))
				}
				v2.Close()
			})
		}
	}
}

// TestWholeExtentsBypassTheJournal overwrites an extent whole between
// journaled writes to it: the flush writes the extent, not a segment, and
// the older segment's pages of it stay superseded through reopen, a
// snapshot (which renumbers segments) and folds.
func TestWholeExtentsBypassTheJournal(t *testing.T) {
	r := newRig(t)
	s := New(r.config())
	ctx := context.Background()
	const size = 2 * ExtentSize
	s.Create(ctx, "v", size, Options{K: 2, M: 1})
	v, err := s.Open(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	model := make([]byte, size)
	write := func(off int64, d []byte) {
		t.Helper()
		if _, err := v.WriteAt(d, off); err != nil {
			t.Fatal(err)
		}
		copy(model[off:], d)
		if err := v.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	check := func(what string, v *Volume) {
		t.Helper()
		if got := readAll(t, v); !bytes.Equal(got, model) {
			t.Fatalf("%s: %s", what, firstDiff(got, model))
		}
	}
	rng := rand.New(rand.NewSource(3))
	page := func(b byte) []byte { return bytes.Repeat([]byte{b}, PageSize) }
	write(0, page(1)) // seq 1, folded away below
	if err := v.Fold(ctx); err != nil {
		t.Fatal(err)
	}
	write(5*PageSize, page(2)) // seq 2: superseded by seq 3
	whole := make([]byte, ExtentSize)
	rng.Read(whole)
	write(0, whole)            // seq 3: extent 0 written whole
	write(7*PageSize, page(4)) // seq 4: over the whole extent
	check("after the flushes", v)

	tx, _ := r.repl.Read(ctx)
	var seqs []uint64
	for _, sg := range segmentsOf(tx, "v") {
		seqs = append(seqs, sg.Seq)
	}
	if !slices.Equal(seqs, []uint64{2, 4}) {
		t.Fatalf("segments %v, want 2 and 4: the whole extent must not be journaled", seqs)
	}
	if e := store.Get[ExtentRow](tx, tExtents, extentID("v", 0)); e == nil || e.Seq != 3 {
		t.Fatalf("extent 0 = %+v, want one written by seq 3", e)
	}

	if err := s.Snapshot(ctx, "s", "v"); err != nil {
		t.Fatal(err)
	}
	snap, err := s.Open(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	check("the snapshot", snap)
	v.Close()
	v, err = s.Open(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	check("after reopening", v)
	if err := v.Fold(ctx); err != nil {
		t.Fatal(err)
	}
	check("after folding", v)
	c, err := s.Open(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	check("the snapshot after the source folded", c)
	v.Close()
}

// TestWholeExtentsReadBackThroughEveryStage is the random workload of
// TestWritesReadBackBeforeAndAfterFlushFoldAndReopen with whole extents
// overwritten among the small writes.
func TestWholeExtentsReadBackThroughEveryStage(t *testing.T) {
	r := newRig(t)
	s := New(r.config())
	ctx := context.Background()
	const size = 3 * ExtentSize
	v := createOpen(t, s, size)
	model := make([]byte, size)
	for i, o := range wholeExtentOps(rand.New(rand.NewSource(5)), size, 120) {
		if err := run(ctx, v, o); err != nil {
			t.Fatalf("op %d %s: %v", i, o.kind, err)
		}
		apply(model, o)
		if i%10 == 0 {
			if got := readAll(t, v); !bytes.Equal(got, model) {
				t.Fatalf("after op %d: %s", i, firstDiff(got, model))
			}
		}
		if i%40 == 39 {
			if err := v.Close(); err != nil {
				t.Fatal(err)
			}
			var err error
			if v, err = s.Open(ctx, "v"); err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, v); !bytes.Equal(got, model) {
				t.Fatalf("after reopening at op %d: %s", i, firstDiff(got, model))
			}
		}
	}
	if err := foldNow(ctx, v); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, v); !bytes.Equal(got, model) {
		t.Fatalf("after the last fold: %s", firstDiff(got, model))
	}
	v.Close()
}

// lostAnswer applies the proposals of one type but reports their outcome
// as unknown, as a proposal that timed out after the leader committed it.
type lostAnswer struct {
	store.Replicated
	typ string
}

func (l *lostAnswer) Propose(ctx context.Context, typ string, body any) (store.Result, error) {
	res, err := l.Replicated.Propose(ctx, typ, body)
	if err == nil && typ == l.typ {
		return store.Result{}, fmt.Errorf("propose %s: %w", typ, store.ErrOutcomeUnknown)
	}
	return res, err
}

func TestFlushWhoseOutcomeIsUnknownKeepsItsSegment(t *testing.T) {
	r := newRig(t)
	cfg := r.config()
	cfg.Repl = &lostAnswer{Replicated: r.repl, typ: cmdAppend}
	s := New(cfg)
	ctx := context.Background()
	s.Create(ctx, "v", ExtentSize, Options{})
	v, _ := s.Open(ctx, "v")
	v.WriteAt([]byte("committed"), 0)
	if err := v.Flush(ctx); !errors.Is(err, store.ErrOutcomeUnknown) {
		t.Fatalf("flush = %v, want the unknown outcome", err)
	}
	// The command did commit: a reader elsewhere must find its bytes.
	other, err := New(r.config()).Open(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 9)
	if _, err := other.ReadAt(b, 0); err != nil || string(b) != "committed" {
		t.Fatalf("read after a flush with an unknown outcome = %q, %v", b, err)
	}
}

// lostOnce is lostAnswer for the first proposal of its type only.
type lostOnce struct {
	store.Replicated
	typ  string
	lost bool
}

func (l *lostOnce) Propose(ctx context.Context, typ string, body any) (store.Result, error) {
	res, err := l.Replicated.Propose(ctx, typ, body)
	if err == nil && typ == l.typ && !l.lost {
		l.lost = true
		return store.Result{}, fmt.Errorf("propose %s: %w", typ, store.ErrOutcomeUnknown)
	}
	return res, err
}

// TestFoldAfterAWholeExtentFlushOfUnknownOutcome loses the answer of a
// flush that wrote an extent whole and did commit: the writer keeps the
// pages and writes the extent whole again with its next flush, which
// makes the committed blob garbage; folds and a reopen read every write.
func TestFoldAfterAWholeExtentFlushOfUnknownOutcome(t *testing.T) {
	r := newRig(t)
	cfg := r.config()
	lost := &lostOnce{Replicated: r.repl}
	cfg.Repl = lost
	s := New(cfg)
	ctx := context.Background()
	s.Create(ctx, "v", 2*ExtentSize, Options{})
	v, _ := s.Open(ctx, "v")
	model := make([]byte, 2*ExtentSize)
	rand.New(rand.NewSource(4)).Read(model[:ExtentSize])
	copy(model[ExtentSize:], "journal")
	v.WriteAt([]byte("journal"), ExtentSize)
	if err := v.Flush(ctx); err != nil { // a segment for the fold to fold
		t.Fatal(err)
	}
	lost.typ = cmdAppend
	v.WriteAt(model[:ExtentSize], 0)
	if err := v.Flush(ctx); !errors.Is(err, store.ErrOutcomeUnknown) {
		t.Fatalf("flush = %v, want the unknown outcome", err)
	}
	v.WriteAt([]byte("later"), 2*PageSize) // over the whole extent
	copy(model[2*PageSize:], "later")
	if err := v.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := v.Fold(ctx); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, v); !bytes.Equal(got, model) {
		t.Fatal(firstDiff(got, model))
	}
	v.Close()
	v, _ = New(r.config()).Open(ctx, "v")
	if got := readAll(t, v); !bytes.Equal(got, model) {
		t.Fatalf("after reopening: %s", firstDiff(got, model))
	}
}

func TestEveryCommandSurvivesSnapshotRestore(t *testing.T) {
	r := newRig(t)
	s := New(r.config())
	ctx := context.Background()
	s.Create(ctx, "v", 2*ExtentSize, Options{K: 2, M: 1})
	v, _ := s.Open(ctx, "v")
	v.WriteAt([]byte("folded"), 0)
	if err := foldNow(ctx, v); err != nil {
		t.Fatal(err)
	}
	v.WriteAt([]byte("journal"), ExtentSize)
	if err := s.Snapshot(ctx, "s", "v"); err != nil {
		t.Fatal(err)
	}
	if err := s.Clone(ctx, "c", "s"); err != nil {
		t.Fatal(err)
	}
	if err := s.SnapshotGroup(ctx, []SnapshotPair{{ID: "gs", Volume: "v"}, {ID: "gc", Volume: "c"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Resize(ctx, "v", 3*ExtentSize); err != nil {
		t.Fatal(err)
	}
	v.WriteAt([]byte("again"), 0)
	if err := foldNow(ctx, v); err != nil {
		t.Fatal(err)
	}
	v.Close()
	relocateFirst(t, s, r)
	if err := s.Delete(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	s.CollectGarbage(ctx)
	r.clock.add(time.Hour)
	if err := s.CollectGarbage(ctx); err != nil {
		t.Fatal(err)
	}
	for typ := range Schema().Handlers {
		if r.repl.Applied[typ] == 0 {
			t.Errorf("the workload never applied %s", typ)
		}
	}
	first, second, err := store.SnapshotRoundTrip(r.repl.State, Schema())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) || !bytes.Contains(first, []byte(`"kind":"snapshot"`)) {
		t.Fatalf("snapshot and restore differ or lost rows:\n%s\n%s", first, second)
	}
}

// relocateFirst moves the first blob Blobs lists to the same disks in
// reverse order (rows only: the shards are not moved) and returns it.
func relocateFirst(t *testing.T, s *Store, r *rig) (key string, old, next blob.Layout) {
	t.Helper()
	tx, _ := r.repl.Read(context.Background())
	s.Blobs(tx, func(k string, l blob.Layout, _ int64) {
		if key == "" {
			key, old = k, l
		}
	})
	if key == "" {
		t.Fatal("no blob listed")
	}
	next = old
	next.Disks = append([]placement.Disk(nil), old.Disks...)
	slices.Reverse(next.Disks)
	if err := s.Relocate(context.Background(), key, old, next); err != nil {
		t.Fatal(err)
	}
	return key, old, next
}

// Blobs lists every named blob once, shared ones too; Relocate changes
// every row naming the blob, and is refused as a conflict once the rows no
// longer name it where the mover found it.
func TestBlobsAndRelocate(t *testing.T) {
	r := newRig(t)
	s := New(r.config())
	ctx := context.Background()
	s.Create(ctx, "v", 2*ExtentSize, Options{K: 2, M: 1})
	v, _ := s.Open(ctx, "v")
	defer v.Close()
	v.WriteAt([]byte("folded"), 0)
	if err := foldNow(ctx, v); err != nil {
		t.Fatal(err)
	}
	v.WriteAt([]byte("journal"), ExtentSize)
	if err := s.Snapshot(ctx, "s", "v"); err != nil {
		t.Fatal(err)
	}
	tx, _ := r.repl.Read(ctx)
	sizes := map[string]int64{}
	s.Blobs(tx, func(k string, _ blob.Layout, size int64) {
		if _, dup := sizes[k]; dup {
			t.Errorf("blob %s listed twice", k)
		}
		sizes[k] = size
	})
	if len(sizes) != 2 {
		t.Fatalf("%d blobs listed, want an extent and a segment", len(sizes))
	}
	key, old, next := relocateFirst(t, s, r)
	tx, _ = r.repl.Read(ctx)
	rows := 0
	for _, e := range store.All[ExtentRow](tx, tExtents, "blob", key) {
		rows++
		if !slices.Equal(e.Layout.Disks, next.Disks) {
			t.Errorf("extent %s still at %v", e.ID, e.Layout.Disks)
		}
	}
	for _, sg := range store.All[SegmentRow](tx, tSegments, "blob", key) {
		rows++
		if !slices.Equal(sg.Layout.Disks, next.Disks) {
			t.Errorf("segment %s still at %v", sg.ID, sg.Layout.Disks)
		}
	}
	if rows != 2 {
		t.Fatalf("%d rows name the relocated blob, want the volume's and the snapshot's", rows)
	}
	if err := s.Relocate(ctx, key, old, next); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("relocating from a stale layout: %v, want a conflict", err)
	}
	if err := s.Relocate(ctx, "nothing", old, next); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("relocating a blob nothing names: %v, want a conflict", err)
	}
}

// A degraded read is reported for healing, once a minute per blob however
// many reads find it so.
func TestDegradedReadsAreReportedOnceAMinute(t *testing.T) {
	r := newRig(t)
	cfg := r.config()
	var reports []string
	cfg.Degraded = func(key string) { reports = append(reports, key) }
	s := New(cfg)
	ctx := context.Background()
	s.Create(ctx, "v", ExtentSize, Options{K: 2, M: 1})
	v, _ := s.Open(ctx, "v")
	defer v.Close()
	v.WriteAt(bytes.Repeat([]byte("x"), 3*PageSize), 0)
	if err := foldNow(ctx, v); err != nil {
		t.Fatal(err)
	}
	tx, _ := r.repl.Read(ctx)
	var key string
	var l blob.Layout
	s.Blobs(tx, func(k string, lk blob.Layout, _ int64) { key, l = k, lk })
	for _, d := range r.dirs {
		if d.ID() == l.Disks[0].ID {
			if err := d.Remove(blob.ShardName(key, 0)); err != nil {
				t.Fatal(err)
			}
		}
	}
	b := make([]byte, PageSize)
	for range 3 {
		if _, err := v.ReadAt(b, 0); err != nil || b[0] != 'x' {
			t.Fatalf("degraded read: %q, %v", b[:1], err)
		}
	}
	if len(reports) != 1 || reports[0] != key {
		t.Fatalf("reports %v, want %s once", reports, key)
	}
	r.clock.add(time.Minute)
	v.ReadAt(b, 0)
	if len(reports) != 2 {
		t.Fatalf("%d reports after a minute, want 2", len(reports))
	}
}

// TestAFlushsShardsShareADirectoryPerDisk flushes two whole extents and
// a few journaled pages at once: the two extents go into one blob, at
// offsets 0 and 4 MiB, and its key and the segment's share the byte
// that names a shard file's directory, so on every disk the flush's
// shard files are in one directory, which the flush syncs once for all
// of them (DESIGN.md), and every byte reads back after a reopen.
func TestAFlushsShardsShareADirectoryPerDisk(t *testing.T) {
	r := newRig(t)
	s := New(r.config())
	ctx := context.Background()
	const size = 3 * ExtentSize
	s.Create(ctx, "v", size, Options{K: 2, M: 1})
	v, err := s.Open(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	model := make([]byte, size)
	rand.New(rand.NewSource(5)).Read(model[:2*ExtentSize+3*PageSize])
	if _, err := v.WriteAt(model[:2*ExtentSize+3*PageSize], 0); err != nil {
		t.Fatal(err)
	}
	if err := v.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	tx, _ := r.repl.Read(ctx)
	var keys []string
	for _, sg := range segmentsOf(tx, "v") {
		keys = append(keys, sg.Blob)
	}
	var rows []*ExtentRow
	for i := range int64(2) {
		e := store.Get[ExtentRow](tx, tExtents, extentID("v", i))
		if e == nil {
			t.Fatalf("extent %d was not written whole", i)
		}
		rows = append(rows, e)
	}
	if len(keys) != 1 {
		t.Fatalf("segments %v, want one", keys)
	}
	if rows[0].Blob != rows[1].Blob {
		t.Fatalf("the flush's whole extents are in blobs %s and %s, want one", rows[0].Blob, rows[1].Blob)
	}
	for i, e := range rows {
		if e.Off != int64(i)*ExtentSize || e.BlobSize != 2*ExtentSize {
			t.Fatalf("extent %d at offset %d of a blob of %d bytes, want %d of %d", i, e.Off, e.BlobSize, int64(i)*ExtentSize, 2*ExtentSize)
		}
	}
	keys = append(keys, rows[0].Blob)
	if keys[0][:2] != keys[1][:2] {
		t.Fatalf("blob keys %v of one flush do not share their first byte", keys)
	}
	if keys[0] == keys[1] {
		t.Fatalf("blob keys %v are not distinct", keys)
	}
	for _, d := range r.dirs {
		sub, err := os.ReadDir(filepath.Join(d.Path(), "shards"))
		if err != nil {
			t.Fatal(err)
		}
		if len(sub) != 1 {
			t.Fatalf("disk %s: the flush's shards are in %d directories, want 1", d.ID(), len(sub))
		}
	}
	v.Close()
	v, err = s.Open(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, v); !bytes.Equal(got, model) {
		t.Fatalf("after reopening: %s", firstDiff(got, model))
	}
	v.Close()
}

// createOpen creates volume "v" of size and opens it.
func createOpen(t *testing.T, s *Store, size int64) *Volume {
	t.Helper()
	ctx := context.Background()
	if err := s.Create(ctx, "v", size, Options{}); err != nil {
		t.Fatal(err)
	}
	v, err := s.Open(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	return v
}
