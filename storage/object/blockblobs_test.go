package object

import (
	"bytes"
	"context"
	"os"
	"slices"
	"testing"

	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/storage/blob"
	"github.com/rackstack/rackstack/storage/block"
	"github.com/rackstack/rackstack/storage/disk"
	"github.com/rackstack/rackstack/storage/placement"
)

// The block store keeps its volumes' blobs on the object store's disks;
// the object store's maintenance keeps them whole and well placed. These
// tests run both stores on one node, as rackd does.

type blockFixture struct {
	*fixture
	blocks *block.Store
}

// newBlockFixture is newFixture whose state also holds the block tables
// and whose maintenance covers the block store's blobs.
func newBlockFixture(t *testing.T, n int) *blockFixture {
	t.Helper()
	local, err := store.NewLocal(Schema(), block.Schema())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, local: local, disks: map[string]disk.Disk{}, ctx: context.Background()}
	for i := 0; i < n; i++ {
		f.addDisk()
	}
	blobs := &blob.Store{Node: "n1", Local: f.disks}
	bf := &blockFixture{fixture: f}
	bf.blocks = block.New(block.Config{
		Repl: local, Blobs: blobs,
		Disks:     func(ctx context.Context) ([]placement.Disk, error) { return f.svc.ActiveDisks(ctx) },
		FoldBytes: 1 << 40, DirtyLimit: 1 << 40, // folds only when the test asks
		Degraded: func(key string) { f.svc.QueueHeal(context.Background(), "block", key) },
	})
	f.svc = New(Config{
		// Objects here are small so that they span stripes and disks:
		// they must go to blobs (inline_test.go covers inline ones).
		InlineMax: -1,
		Repl:      local, Node: "n1", MaxShard: 4096, Blobs: blobs,
		Local:   func() []DiskRow { return f.rows },
		Named:   block.Named,
		Sources: map[string]BlobSource{"block": bf.blocks},
	})
	if err := f.svc.RegisterDisks(f.ctx); err != nil {
		t.Fatal(err)
	}
	return bf
}

// volume makes a 3-extent volume coded 2+1 (segments: 2 replicas) holding
// random bytes in folded extents and in journal segments, flushed, and
// returns its contents.
func (f *blockFixture) volume(id string) []byte {
	f.t.Helper()
	const size = 3 * block.ExtentSize
	if err := f.blocks.Create(f.ctx, id, size, block.Options{K: 2, M: 1}); err != nil {
		f.t.Fatal(err)
	}
	v, err := f.blocks.Open(f.ctx, id)
	if err != nil {
		f.t.Fatal(err)
	}
	defer v.Close()
	want := make([]byte, size)
	copy(want, random(2*block.ExtentSize))
	if _, err := v.WriteAt(want[:2*block.ExtentSize], 0); err != nil {
		f.t.Fatal(err)
	}
	if err := v.Flush(f.ctx); err != nil {
		f.t.Fatal(err)
	}
	if err := v.Fold(f.ctx); err != nil {
		f.t.Fatal(err)
	}
	// Then writes that stay in the journal, over an extent and past them.
	for _, off := range []int64{4096, block.ExtentSize + 8192, 2*block.ExtentSize + 4096} {
		b := random(3 * 4096)
		copy(want[off:], b)
		if _, err := v.WriteAt(b, off); err != nil {
			f.t.Fatal(err)
		}
		if err := v.Flush(f.ctx); err != nil {
			f.t.Fatal(err)
		}
	}
	return want
}

// blockBlobs lists the blobs the block rows name now.
func (f *blockFixture) blockBlobs() []Part {
	f.t.Helper()
	tx, err := f.local.Read(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []Part
	f.blocks.Blobs(tx, func(key string, l blob.Layout, size int64) {
		out = append(out, Part{Blob: key, Layout: l, Size: size})
	})
	return out
}

// checkWhole fails unless every block blob has all its shards intact, and
// returns how many extents (k > 1) and segments (k = 1) there are.
func (f *blockFixture) checkWhole() (extents, segments int) {
	f.t.Helper()
	for _, p := range f.blockBlobs() {
		if bad, err := f.svc.blobs.Verify(f.ctx, p.Blob, p.Layout, p.Size); err != nil || len(bad) > 0 {
			f.t.Fatalf("block blob %s (k=%d): bad shards %v (%v)", p.Blob, p.Layout.K, bad, err)
		}
		if p.Layout.K == 1 {
			segments++
		} else {
			extents++
		}
	}
	return extents, segments
}

// readVolume opens the volume afresh and reads all of it.
func (f *blockFixture) readVolume(id string) []byte {
	f.t.Helper()
	v, err := f.blocks.Open(f.ctx, id)
	if err != nil {
		f.t.Fatal(err)
	}
	defer v.Close()
	return readVolumeOf(f.t, v)
}

func readVolumeOf(t *testing.T, v *block.Volume) []byte {
	t.Helper()
	got := make([]byte, v.Size())
	if _, err := v.ReadAt(got, 0); err != nil {
		t.Fatalf("read volume: %v", err)
	}
	return got
}

// A disk emptied under the node (wiped, replaced) loses one shard of most
// block blobs; the heal path rebuilds them, so the volume survives the
// loss of a further disk, which a 2+1 code alone would not.
func TestWipedDiskIsRefilledWithBlockBlobs(t *testing.T) {
	f := newBlockFixture(t, 4)
	want := f.volume("v")
	if e, s := f.checkWhole(); e == 0 || s == 0 {
		t.Fatalf("the volume has %d extents and %d segments: want both", e, s)
	}
	wiped := -1
	for i, row := range f.rows {
		if names, _ := f.disks[row.ID].List(); len(names) > 0 && wiped < 0 {
			os.RemoveAll(f.dirs[i])
			wiped = i
		}
	}
	var found []string
	for id, d := range f.disks {
		if w, _ := d.(*disk.Dir).Check(); w {
			found = append(found, id)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d disks found wiped, want 1", len(found))
	}
	f.svc.cfg.Wiped = func() []string {
		out := found
		found = nil
		return out
	}
	f.svc.healWiped(f.ctx)
	if n := len(store.All[HealItem](f.local.Local(), tHeal, "id")); n == 0 {
		t.Fatal("no block blob queued for healing")
	}
	f.svc.healQueued(f.ctx)
	if n := len(store.All[HealItem](f.local.Local(), tHeal, "id")); n != 0 {
		t.Fatalf("heal queue still holds %d", n)
	}
	f.checkWhole()
	// Lose another disk for good: every blob still has k shards.
	other := (wiped + 1) % len(f.dirs)
	if err := os.RemoveAll(f.dirs[other]); err != nil {
		t.Fatal(err)
	}
	if got := f.readVolume("v"); !bytes.Equal(got, want) {
		t.Fatal("the volume reads back different bytes after heal and a further disk loss")
	}
}

// The scrubber verifies block blobs, and what it finds damaged is healed.
func TestScrubHealsBlockBlobs(t *testing.T) {
	f := newBlockFixture(t, 3)
	want := f.volume("v")
	blobs := f.blockBlobs()
	// Lose one shard of every block blob, on varying disks.
	for i, p := range blobs {
		f.removeShards(p, i%len(p.Layout.Disks))
	}
	sc := &scrubber{}
	for f.svc.scrubSome(f.ctx, sc); len(sc.queue) > 0; f.svc.scrubSome(f.ctx, sc) {
	}
	if n := len(store.All[HealItem](f.local.Local(), tHeal, "id")); n != len(blobs) {
		t.Fatalf("scrub queued %d heals for %d damaged block blobs", n, len(blobs))
	}
	f.svc.healQueued(f.ctx)
	f.checkWhole()
	if got := f.readVolume("v"); !bytes.Equal(got, want) {
		t.Fatal("the volume reads back different bytes after scrub and heal")
	}
}

// A gone disk's shards of block blobs are rebuilt elsewhere by the repair
// pass, which records the new layouts in every row naming the blob
// (snapshots share them). A volume opened before the move reads on from
// the new places once the old ones fail it, and the volume survives the
// loss of a further shard of every blob.
func TestRepairMovesBlockBlobsOffAGoneDisk(t *testing.T) {
	f := newBlockFixture(t, 4)
	want := f.volume("v")
	if err := f.blocks.Snapshot(f.ctx, "s", "v"); err != nil {
		t.Fatal(err)
	}
	early, err := f.blocks.Open(f.ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	defer early.Close()
	// Placement is random and a blob takes three of the four disks, so
	// the disk to lose is the one holding the most block blobs.
	held := map[string]int{}
	for _, p := range f.blockBlobs() {
		for _, d := range p.Layout.Disks {
			held[d.ID]++
		}
	}
	lose := 0
	for i, r := range f.rows {
		if held[r.ID] > held[f.rows[lose].ID] {
			lose = i
		}
	}
	gone := f.rows[lose].ID
	before := map[string]blob.Layout{} // the blobs with a shard on the gone disk
	for _, p := range f.blockBlobs() {
		for _, d := range p.Layout.Disks {
			if d.ID == gone {
				before[p.Blob] = p.Layout
			}
		}
	}
	if len(before) == 0 {
		t.Fatal("no disk holds a block blob")
	}

	os.RemoveAll(f.dirs[lose])
	delete(f.disks, gone)
	f.rows = slices.Delete(f.rows, lose, lose+1)
	f.dirs = slices.Delete(f.dirs, lose, lose+1)
	f.addDisk()
	if err := f.svc.RegisterDisks(f.ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := f.svc.Status(f.ctx); st.Degraded == 0 {
		t.Fatal("no blob degraded after losing a disk")
	}
	if !f.svc.repairPass(f.ctx) {
		t.Fatal("the repair pass left work")
	}
	st, _ := f.svc.Status(f.ctx)
	if st.Degraded != 0 || st.Misplaced != 0 || st.Moved == 0 {
		t.Fatalf("after repair: %d degraded, %d misplaced, %d moved", st.Degraded, st.Misplaced, st.Moved)
	}
	for _, p := range f.blockBlobs() {
		for _, d := range p.Layout.Disks {
			if d.ID == gone {
				t.Fatalf("block blob %s still placed on the gone disk", p.Blob)
			}
		}
	}
	f.checkWhole()
	// Lose one more shard of each blob the gone disk held, one that did
	// not move: where the early reader looks, two of three shards are
	// missing now; where the blobs live, one.
	for _, p := range f.blockBlobs() {
		old, ok := before[p.Blob]
		if !ok {
			continue
		}
		for i := range old.Disks {
			if old.Disks[i] == p.Layout.Disks[i] {
				f.removeShards(p, i)
				break
			}
		}
	}
	if got := readVolumeOf(t, early); !bytes.Equal(got, want) {
		t.Fatal("a volume opened before the move reads different bytes")
	}
	if got := f.readVolume("v"); !bytes.Equal(got, want) {
		t.Fatal("the volume reads back different bytes after the move and a further disk loss")
	}
}

// A read that finds a block blob degraded queues it for the healer.
func TestDegradedBlockReadQueuesHeal(t *testing.T) {
	f := newBlockFixture(t, 3)
	want := f.volume("v")
	blobs := f.blockBlobs()
	for _, p := range blobs {
		f.removeShards(p, 0) // a data shard: every read of the blob misses it
	}
	if got := f.readVolume("v"); !bytes.Equal(got, want) {
		t.Fatal("a degraded read returned different bytes")
	}
	queued := store.All[HealItem](f.local.Local(), tHeal, "id")
	if len(queued) != len(blobs) {
		t.Fatalf("%d heals queued for %d degraded block blobs", len(queued), len(blobs))
	}
	for _, h := range queued {
		if h.Source != "block" {
			t.Fatalf("heal item %+v does not name the block source", h)
		}
	}
	f.svc.healQueued(f.ctx)
	f.checkWhole()
}
