package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/rackstack/rackstack/storage/ec"
)

// A GET of blocks with the Buffers' slack (an object's shard blocks)
// while other transfers hold blocks reads its local shards with direct
// I/O into its own blocks, at every page offset a block takes in its
// shard file, the blob's last, partial stripe included, and asks the
// kernel to read nothing ahead for them; the checksums are checked as
// ever: a corrupt block (data or checksum) makes a degraded read with
// the right bytes. A GET alone reads through the page cache, the kernel
// reading ahead.
func TestGetReadsObjectBlocksDirect(t *testing.T) {
	s, l := newStore(t, 6)
	l.ShardSize = 300_032 // 300,036-byte blocks: their page offsets vary
	ctx := context.Background()
	if !readsDirect(mustCoder(t, l)) {
		t.Fatal("blocks of 300,036 bytes are not read direct")
	}
	var mu sync.Mutex
	reads := map[bool]int{}
	heads := map[int64]bool{}
	blockReadHook = func(name string, stripe int64, direct bool) {
		mu.Lock()
		reads[direct]++
		heads[stripe*int64(l.ShardSize+4)%4096] = true
		mu.Unlock()
	}
	advised := 0
	adviseHook = func(string, int64) { mu.Lock(); advised++; mu.Unlock() }
	noHedges = true
	t.Cleanup(func() { blockReadHook, adviseHook, noHedges = nil, nil, false })
	stripe := l.K * l.ShardSize
	const stripes = 13
	data := payload(stripes*stripe - 12345)
	if _, err := s.Put(ctx, "obj", l, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	size := int64(len(data))
	got, res, err := get(t, s, "obj", l, size, 0, size)
	if err != nil || !bytes.Equal(got, data) || res.Degraded {
		t.Fatalf("lone GET: %v, equal %v, degraded %v", err, bytes.Equal(got, data), res.Degraded)
	}
	if reads[true] != 0 || advised == 0 || s.DirectReadBytes() != 0 {
		t.Fatalf("a lone GET read %d blocks (%d bytes) direct and advised %d", reads[true], s.DirectReadBytes(), advised)
	}
	// Another transfer holding a few blocks leaves the GET on the page
	// cache: its read-ahead keeps the disks busier than one stripe ahead.
	few := s.buffers().TryGet(2, 1<<20)
	if few == nil {
		t.Fatal("no blocks for the other transfer")
	}
	got, res, err = get(t, s, "obj", l, size, 0, size)
	if err != nil || !bytes.Equal(got, data) || reads[true] != 0 || advised == 0 {
		t.Fatalf("GET beside a small transfer: %v, equal %v, %d blocks read direct, %d advised", err, bytes.Equal(got, data), reads[true], advised)
	}
	s.buffers().Put(few...)
	advised = 0
	clear(reads)
	// Other transfers hold half the budget from here on.
	other := s.buffers().TryGet(int(s.buffers().Budget()/2>>20), 1<<20)
	if other == nil {
		t.Fatal("no blocks for the other transfers")
	}
	defer s.buffers().Put(other...)
	got, res, err = get(t, s, "obj", l, size, 0, size)
	if err != nil || !bytes.Equal(got, data) || res.Degraded {
		t.Fatalf("whole GET: %v, equal %v, degraded %v", err, bytes.Equal(got, data), res.Degraded)
	}
	if reads[true] != stripes*l.K || reads[false] != 0 {
		t.Fatalf("blocks read direct %d, through the page cache %d; want %d direct", reads[true], reads[false], stripes*l.K)
	}
	if len(heads) < stripes {
		t.Fatalf("blocks at %d page offsets", len(heads))
	}
	if got, want := s.DirectReadBytes(), int64(stripes*l.K*(l.ShardSize+4)); got != want {
		t.Fatalf("DirectReadBytes %d after the busy GET, want %d (every data block with its checksum)", got, want)
	}
	if advised != 0 {
		t.Fatalf("%d blocks advised (WILLNEED) for direct reads", advised)
	}
	// A range across stripes, from mid-block to mid-block.
	off, n := int64(stripe+l.ShardSize/2+7), int64(3*stripe+1000)
	if got, _, err := get(t, s, "obj", l, size, off, n); err != nil || !bytes.Equal(got, data[off:off+n]) {
		t.Fatalf("range GET: %v, equal %v", err, bytes.Equal(got, data[off:off+n]))
	}

	// Shard 1's block of stripe 5 loses a bit of data, shard 2's last
	// block a bit of its checksum.
	block := int64(l.ShardSize + 4)
	flip(t, shardPath(s, l, "obj", 1), 5*block+4+777)
	flip(t, shardPath(s, l, "obj", 2), (stripes-1)*block+1)
	clear(reads)
	got, res, err = get(t, s, "obj", l, size, 0, size)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("GET around corrupt blocks: %v, equal %v", err, bytes.Equal(got, data))
	}
	if !res.Degraded || !slices.Equal(res.BadShards, []int{1, 2}) {
		t.Fatalf("degraded %v, bad shards %v; want 1 and 2", res.Degraded, res.BadShards)
	}
	for _, e := range res.Errors {
		if !errors.Is(e, ec.ErrChecksum) {
			t.Fatalf("bad shard's error: %v", e)
		}
	}
	if reads[false] != 0 || reads[true] == 0 {
		t.Fatalf("degraded GET read %d blocks direct, %d through the page cache", reads[true], reads[false])
	}
}

func mustCoder(t *testing.T, l Layout) *ec.Coder {
	c, err := ec.New(l.K, l.M, l.ShardSize)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// flip inverts a bit of the file at off.
func flip(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(fmt.Errorf("flip %s at %d: %w", path, off, err))
	}
	b[0] ^= 0x10
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// Blocks without slack (a volume's 32 KiB extents, small objects) are
// read through the page cache, with the kernel asked to read ahead.
func TestGetReadsSmallBlocksThroughThePageCache(t *testing.T) {
	s, l := newStore(t, 6)
	l.ShardSize = 32 << 10
	ctx := context.Background()
	var mu sync.Mutex
	direct, advised := 0, 0
	blockReadHook = func(string, int64, bool) { mu.Lock(); direct++; mu.Unlock() }
	adviseHook = func(string, int64) { mu.Lock(); advised++; mu.Unlock() }
	t.Cleanup(func() { blockReadHook, adviseHook = nil, nil })
	data := payload(5*l.K*l.ShardSize + 99)
	if _, err := s.Put(ctx, "small", l, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	got, _, err := get(t, s, "small", l, int64(len(data)), 0, int64(len(data)))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("GET: %v, equal %v", err, bytes.Equal(got, data))
	}
	if direct != 0 || advised == 0 {
		t.Fatalf("%d blocks read direct, %d advised", direct, advised)
	}
}
