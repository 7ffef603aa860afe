package blob

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand"
	"os"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rackstack/rackstack/storage/disk"
)

// TestReadAtReadsWhatGetReads reads random ranges of blobs of several
// sizes with ReadAt, from the kept files and across stripes and shards.
func TestReadAtReadsWhatGetReads(t *testing.T) {
	s, l := newStore(t, 6)
	ctx := context.Background()
	stripe := l.K * l.ShardSize
	rng := rand.New(rand.NewSource(1))
	for _, n := range []int{1, 4096, stripe, 3*stripe + 777} {
		data := payload(n)
		key := fmt.Sprintf("blob%d", n)
		if _, err := s.Put(ctx, key, l, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		for range 50 {
			off := rng.Intn(n)
			ln := 1 + rng.Intn(n-off)
			p := make([]byte, ln)
			res, err := s.ReadAt(ctx, key, l, int64(n), p, int64(off))
			if err != nil || res.Degraded || !bytes.Equal(p, data[off:off+ln]) {
				t.Fatalf("blob of %d, range %d+%d: %v degraded=%v equal=%v", n, off, ln, err, res.Degraded, bytes.Equal(p, data[off:off+ln]))
			}
		}
	}
	if _, err := s.ReadAt(ctx, "blob1", l, 1, make([]byte, 2), 0); err == nil {
		t.Fatal("a read past the blob's end succeeded")
	}
}

// TestReadAtAroundBadShards damages a data shard whose file ReadAt keeps
// open: the read falls back to reconstructing it, reports the shard, and
// keeps no file of a deleted shard.
func TestReadAtAroundBadShards(t *testing.T) {
	s, l := newStore(t, 6)
	ctx := context.Background()
	data := payload(4 * l.K * l.ShardSize)
	if _, err := s.Put(ctx, "b", l, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	read := checkedReadAt(t, s, l, data)
	if res := read(0, 100); res.Degraded {
		t.Fatalf("healthy read reported %v", res.BadShards)
	}
	if s.files().lru.Len() != 1 {
		t.Fatalf("%d files kept open, want shard 0's", s.files().lru.Len())
	}
	// Flip a byte of shard 0's first block in place: the kept file sees it.
	f, err := os.OpenFile(shardPath(s, l, "b", 0), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	f.ReadAt(b, 10)
	b[0] ^= 1
	f.WriteAt(b, 10)
	f.Close()
	if res := read(0, 100); !res.Degraded || len(res.BadShards) != 1 || res.BadShards[0] != 0 {
		t.Fatalf("read of a corrupt shard reported %v (degraded %v), want shard 0", res.BadShards, res.Degraded)
	}
	if _, kept := s.files().byName[fileKey(l.Disks[0], ShardName("b", 0))]; kept {
		t.Fatal("the corrupt shard's file is still kept open")
	}
	read(l.ShardSize, 100) // shard 1, now kept open
	if err := s.Delete(ctx, "b", l); err != nil {
		t.Fatal(err)
	}
	if n := s.files().lru.Len(); n != 0 {
		t.Fatalf("%d files of a deleted blob kept open", n)
	}
}

// TestReadAtKeepsAtMostOpenFiles reads many blobs through a Store that
// may keep two files open.
func TestReadAtKeepsAtMostOpenFiles(t *testing.T) {
	s, l := newStore(t, 6)
	s.OpenFiles = 2
	ctx := context.Background()
	data := payload(l.K * l.ShardSize)
	for i := range 5 {
		key := fmt.Sprint("b", i)
		if _, err := s.Put(ctx, key, l, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		for sh := range l.K {
			p := make([]byte, 10)
			if _, err := s.ReadAt(ctx, key, l, int64(len(data)), p, int64(sh*l.ShardSize)); err != nil || !bytes.Equal(p, data[sh*l.ShardSize:sh*l.ShardSize+10]) {
				t.Fatalf("read %s shard %d: %v", key, sh, err)
			}
			if n := s.files().lru.Len(); n > 2 {
				t.Fatalf("%d files kept open, at most 2 wanted", n)
			}
		}
	}
}

// TestReadAtClosesIdleFiles: a file kept open but unread for idleFile is
// closed by the next read, so a shard removed behind the Store's back
// does not keep its space.
func TestReadAtClosesIdleFiles(t *testing.T) {
	s, l := newStore(t, 6)
	ctx := context.Background()
	data := payload(l.K * l.ShardSize)
	for _, key := range []string{"a", "b"} {
		if _, err := s.Put(ctx, key, l, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
	}
	p := make([]byte, 10)
	if _, err := s.ReadAt(ctx, "a", l, int64(len(data)), p, 0); err != nil {
		t.Fatal(err)
	}
	fc := s.files()
	fc.mu.Lock()
	fc.lru.Front().Value.(*openFile).used = time.Now().Add(-2 * idleFile)
	fc.mu.Unlock()
	if _, err := s.ReadAt(ctx, "b", l, int64(len(data)), p, 0); err != nil {
		t.Fatal(err)
	}
	if _, kept := fc.byName[fileKey(l.Disks[0], ShardName("a", 0))]; kept || fc.lru.Len() != 1 {
		t.Fatalf("the idle file is still open (%d kept)", fc.lru.Len())
	}
}

// GetRanges writes ranges of several blobs in order, as Gets of each
// one after the other would, reports each range's lost shards apart, and
// refuses blobs coded differently.
func TestGetRangesReadsBlobsInOrder(t *testing.T) {
	s, l := newStore(t, 6)
	stripe := int64(l.K * l.ShardSize)
	sizes := map[string]int{"a": int(3*stripe + 100), "b": 7, "c": int(2 * stripe)}
	data := map[string][]byte{}
	for key, n := range sizes {
		data[key] = payload(n)
		if _, err := s.Put(context.Background(), key, l, bytes.NewReader(data[key])); err != nil {
			t.Fatal(err)
		}
	}
	os.Remove(shardPath(s, l, "c", 1))
	rs := []Range{
		{Key: "a", Layout: l, Size: int64(sizes["a"]), Offset: stripe - 5, Length: 2*stripe + 50},
		{Key: "b", Layout: l, Size: 7, Offset: 0, Length: 0},
		{Key: "b", Layout: l, Size: 7, Offset: 2, Length: 5},
		{Key: "c", Layout: l, Size: int64(sizes["c"]), Offset: 0, Length: int64(sizes["c"])},
	}
	var got, want bytes.Buffer
	for _, r := range rs {
		want.Write(data[r.Key][r.Offset : r.Offset+r.Length])
	}
	res, err := s.GetRanges(context.Background(), rs, &got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatal("GetRanges wrote other bytes than the ranges")
	}
	for i, r := range res {
		if wantBad := rs[i].Key == "c"; r.Degraded != wantBad || wantBad && !reflect.DeepEqual(r.BadShards, []int{1}) {
			t.Errorf("range %d (%s): %+v", i, rs[i].Key, r)
		}
	}
	other := l
	other.ShardSize *= 2
	if _, err := s.GetRanges(context.Background(), []Range{rs[0], {Key: "x", Layout: other, Size: 1, Length: 1}}, io.Discard); err == nil {
		t.Fatal("GetRanges read blobs coded differently")
	}
	if s.buffers().Out() != 0 {
		t.Fatalf("%d bytes of blocks still handed out", s.buffers().Out())
	}
}

// A degraded read reads no more than it must: with two data shards
// gone, every stripe is rebuilt from k shards (the other data shards and
// the parity), each read once; a healthy read never touches parity.
func TestDegradedReadReadsKShardsOnce(t *testing.T) {
	for name, lost := range map[string][]int{"healthy": nil, "two data shards lost": {0, 1}} {
		t.Run(name, func(t *testing.T) {
			s, l := newStore(t, 6)
			data := payload(5*l.K*l.ShardSize + 123)
			if _, err := s.Put(context.Background(), "k", l, bytes.NewReader(data)); err != nil {
				t.Fatal(err)
			}
			for _, i := range lost {
				os.Remove(shardPath(s, l, "k", i))
			}
			counts := make([]*atomic.Int64, len(l.Disks))
			for i, d := range l.Disks {
				counts[i] = new(atomic.Int64)
				s.Local[d.ID] = countingDisk{Disk: s.Local[d.ID], read: counts[i]}
			}
			var got bytes.Buffer
			if _, err := s.Get(context.Background(), "k", l, int64(len(data)), 0, int64(len(data)), &got); err != nil || !bytes.Equal(got.Bytes(), data) {
				t.Fatalf("read: %v, equal %v", err, bytes.Equal(got.Bytes(), data))
			}
			stripes := int64(len(data)/(l.K*l.ShardSize) + 1)
			shardBytes := stripes * int64(4+l.ShardSize)
			want := make([]int64, len(l.Disks))
			for i := range want {
				if i < l.K {
					want[i] = shardBytes
				}
			}
			for j, i := range lost {
				want[i], want[l.K+j] = 0, shardBytes // parity j stands in
			}
			for i, c := range counts {
				if c.Load() != want[i] {
					t.Errorf("shard %d: %d bytes read, want %d", i, c.Load(), want[i])
				}
			}
		})
	}
}

// readCountingDisk counts the bytes read at offsets from its shard files.
type readCountingDisk struct {
	disk.Disk
	n *atomic.Int64
}

type readCountingFile struct {
	io.ReadCloser
	f io.ReaderAt
	n *atomic.Int64
}

func (d readCountingDisk) Open(name string, off int64) (io.ReadCloser, error) {
	rc, err := d.Disk.Open(name, off)
	if err != nil {
		return nil, err
	}
	return readCountingFile{ReadCloser: rc, f: rc.(io.ReaderAt), n: d.n}, nil
}

func (f readCountingFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.f.ReadAt(p, off)
	f.n.Add(int64(n))
	return n, err
}

// TestReadAtChecksPagesOfVerifiedBlocks: once a 32 KiB block has been
// read and verified whole, a 4 KiB read in it reads that page alone and
// checks it against the page's kept checksum; a page that turns corrupt
// is still caught (the read is served around its shard and reports it),
// and the checksums go with the file.
func TestReadAtChecksPagesOfVerifiedBlocks(t *testing.T) {
	s, l := newStore(t, 6)
	l.ShardSize = 32 << 10
	var read atomic.Int64
	for id, d := range s.Local {
		s.Local[id] = readCountingDisk{Disk: d, n: &read}
	}
	ctx := context.Background()
	data := payload(2 * l.K * l.ShardSize)
	if _, err := s.Put(ctx, "b", l, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	readAt := checkedReadAt(t, s, l, data)
	readAt(0, 4096) // the first read of the block verifies it whole
	if n := read.Swap(0); n != int64(4+l.ShardSize) {
		t.Fatalf("first read of a block read %d bytes, want the block's %d", n, 4+l.ShardSize)
	}
	readAt(3*4096, 4096)
	if n := read.Swap(0); n != 4096 {
		t.Fatalf("a 4 KiB read in a verified block read %d bytes, want 4096", n)
	}
	readAt(4096+100, 5000) // unaligned, over two pages
	if n := read.Swap(0); n != 2*4096 {
		t.Fatalf("a read over two pages of a verified block read %d bytes, want 8192", n)
	}
	// Flip a byte of page 5 of shard 0's first block in place.
	f, err := os.OpenFile(shardPath(s, l, "b", 0), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	at := int64(4 + 5*4096 + 7)
	f.ReadAt(b, at)
	b[0] ^= 1
	f.WriteAt(b, at)
	f.Close()
	if res := readAt(5*4096, 4096); !res.Degraded || len(res.BadShards) != 1 || res.BadShards[0] != 0 {
		t.Fatalf("read of a corrupt page reported %v (degraded %v), want shard 0", res.BadShards, res.Degraded)
	}
	if n := s.files().sums.Load(); n != 0 {
		t.Fatalf("%d blocks' page checksums kept after the corrupt shard's file was dropped", n)
	}
}

// checkedReadAt returns a ReadAt of n bytes at off of blob "b" (data,
// in layout l) that fails the test unless it reads data's bytes.
func checkedReadAt(t *testing.T, s *Store, l Layout, data []byte) func(off, n int) ReadResult {
	return func(off, n int) ReadResult {
		t.Helper()
		p := make([]byte, n)
		res, err := s.ReadAt(context.Background(), "b", l, int64(len(data)), p, int64(off))
		if err != nil || !bytes.Equal(p, data[off:off+n]) {
			t.Fatalf("read %d+%d: %v equal=%v", off, n, err, bytes.Equal(p, data[off:off+n]))
		}
		return res
	}
}
