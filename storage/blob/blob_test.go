package blob

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rackstack/rackstack/storage/disk"
	"github.com/rackstack/rackstack/storage/ec"
	"github.com/rackstack/rackstack/storage/placement"
)

// faultyDisk wraps a disk and injects faults: Create fails from call
// number failFrom on (a disk that dies), reads flip a byte (bitrot under
// the checksum), or every read and write is slowed (a dying disk).
type faultyDisk struct {
	disk.Disk
	createErr error
	failFrom  int // 1-based Create call from which createErr applies; 0 = always
	creates   int
	corrupt   bool
	delay     time.Duration
}

func (f *faultyDisk) Create(name string) (disk.Writer, error) {
	f.creates++
	if f.createErr != nil && f.creates >= f.failFrom {
		return nil, f.createErr
	}
	w, err := f.Disk.Create(name)
	if err != nil || f.delay == 0 {
		return w, err
	}
	return &slowWriter{Writer: w, delay: f.delay}, nil
}

func (f *faultyDisk) Open(name string, offset int64) (io.ReadCloser, error) {
	rc, err := f.Disk.Open(name, offset)
	if err != nil {
		return nil, err
	}
	return &faultyReader{ReadCloser: rc, corrupt: f.corrupt, delay: f.delay}, nil
}

type faultyReader struct {
	io.ReadCloser
	corrupt bool
	delay   time.Duration
}

func (r *faultyReader) Read(p []byte) (int, error) {
	time.Sleep(r.delay)
	n, err := r.ReadCloser.Read(p)
	if r.corrupt && n > 0 {
		p[n/2] ^= 0x01
	}
	return n, err
}

type slowWriter struct {
	disk.Writer
	delay time.Duration
}

func (w *slowWriter) Write(p []byte) (int, error) {
	time.Sleep(w.delay)
	return w.Writer.Write(p)
}

func newStore(t testing.TB, n int) (*Store, Layout) {
	t.Helper()
	s := &Store{Node: "n1", Local: map[string]disk.Disk{}}
	var ds []placement.Disk
	for i := 0; i < n; i++ {
		d, err := disk.OpenDir(filepath.Join(t.TempDir(), fmt.Sprintf("d%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		s.Local[d.ID()] = d
		ds = append(ds, placement.Disk{Node: "n1", ID: d.ID()})
	}
	k, m := placement.Geometry(n)
	return s, Layout{K: k, M: m, ShardSize: 4096, Disks: ds}
}

func payload(n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(int64(n))).Read(b)
	return b
}

func get(t *testing.T, s *Store, key string, l Layout, size, off, length int64) ([]byte, ReadResult, error) {
	t.Helper()
	var buf bytes.Buffer
	res, err := s.Get(context.Background(), key, l, size, off, length, &buf)
	return buf.Bytes(), res, err
}

func TestRoundTripSizesAndRanges(t *testing.T) {
	s, l := newStore(t, 6)
	stripe := l.K * l.ShardSize
	for _, n := range []int{0, 1, 4095, stripe, stripe + 1, 5*stripe + 123} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			data := payload(n)
			key := fmt.Sprintf("blob%d", n)
			info, err := s.Put(context.Background(), key, l, bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if info.Size != int64(n) || info.Written != 6 {
				t.Fatalf("info %+v", info)
			}
			got, res, err := get(t, s, key, l, int64(n), 0, int64(n))
			if err != nil || !bytes.Equal(got, data) || res.Degraded {
				t.Fatalf("full read: %v degraded=%v equal=%v", err, res.Degraded, bytes.Equal(got, data))
			}
			for _, rg := range [][2]int{{0, 1}, {n / 3, n / 2}, {n - 1, 1}, {stripe - 1, 2}} {
				off, ln := rg[0], rg[1]
				if off < 0 || off+ln > n || ln <= 0 {
					continue
				}
				got, _, err := get(t, s, key, l, int64(n), int64(off), int64(ln))
				if err != nil || !bytes.Equal(got, data[off:off+ln]) {
					t.Fatalf("range %d+%d: %v", off, ln, err)
				}
			}
		})
	}
}

func shardPath(s *Store, l Layout, key string, i int) string {
	d := s.Local[l.Disks[i].ID]
	name := ShardName(key, i)
	return filepath.Join(d.Path(), "shards", name[:2], name)
}

// TestLoseShardsReadAndHeal loses shards in every way a disk can (file
// gone, whole disk directory gone, bytes flipped) and checks reads stay
// correct, the loss is reported, and Heal restores full redundancy.
func TestLoseShardsReadAndHeal(t *testing.T) {
	tests := map[string]func(t *testing.T, s *Store, l Layout, key string){
		"two shard files deleted": func(t *testing.T, s *Store, l Layout, key string) {
			os.Remove(shardPath(s, l, key, 0))
			os.Remove(shardPath(s, l, key, 3))
		},
		"two disk dirs wiped": func(t *testing.T, s *Store, l Layout, key string) {
			for _, i := range []int{1, 5} {
				os.RemoveAll(filepath.Join(s.Local[l.Disks[i].ID].Path(), "shards"))
			}
		},
		"bytes flipped": func(t *testing.T, s *Store, l Layout, key string) {
			for _, i := range []int{2, 4} {
				p := shardPath(s, l, key, i)
				b, _ := os.ReadFile(p)
				b[len(b)/2] ^= 0xff
				os.WriteFile(p, b, 0o600)
			}
		},
		"truncated": func(t *testing.T, s *Store, l Layout, key string) {
			os.Truncate(shardPath(s, l, key, 1), 100)
		},
		"one gone, one corrupt further on": func(t *testing.T, s *Store, l Layout, key string) {
			os.Remove(shardPath(s, l, key, 0))
			p := shardPath(s, l, key, 5)
			b, _ := os.ReadFile(p)
			b[len(b)-10] ^= 0xff
			os.WriteFile(p, b, 0o600)
		},
	}
	for name, damage := range tests {
		t.Run(name, func(t *testing.T) {
			s, l := newStore(t, 6)
			data := payload(3*l.K*l.ShardSize + 77)
			sum := sha256.Sum256(data)
			if _, err := s.Put(context.Background(), "victim", l, bytes.NewReader(data)); err != nil {
				t.Fatal(err)
			}
			damage(t, s, l, "victim")
			got, res, err := get(t, s, "victim", l, int64(len(data)), 0, int64(len(data)))
			if err != nil || sha256.Sum256(got) != sum {
				t.Fatalf("degraded read: %v", err)
			}
			if !res.Degraded {
				t.Fatal("the damage was not reported")
			}
			healed, err := s.Heal(context.Background(), "victim", l, int64(len(data)))
			if err != nil || len(healed) == 0 {
				t.Fatalf("heal: %v %v", healed, err)
			}
			if bad, err := s.Verify(context.Background(), "victim", l, int64(len(data))); err != nil || len(bad) != 0 {
				t.Fatalf("after heal, bad shards %v (%v)", bad, err)
			}
			got, res, err = get(t, s, "victim", l, int64(len(data)), 0, int64(len(data)))
			if err != nil || res.Degraded || sha256.Sum256(got) != sum {
				t.Fatalf("read after heal: %v degraded=%v", err, res.Degraded)
			}
		})
	}
}

func TestTooManyLosses(t *testing.T) {
	s, l := newStore(t, 6)
	data := payload(10000)
	s.Put(context.Background(), "b", l, bytes.NewReader(data))
	for _, i := range []int{0, 1, 2} {
		os.Remove(shardPath(s, l, "b", i))
	}
	if _, _, err := get(t, s, "b", l, int64(len(data)), 0, int64(len(data))); !errors.Is(err, ec.ErrTooFewShards) {
		t.Fatalf("err = %v, want ErrTooFewShards", err)
	}
}

func TestWriteQuorum(t *testing.T) {
	s, l := newStore(t, 6)
	// One dead disk: the write succeeds with five shards.
	dead := l.Disks[2].ID
	s.Local[dead] = &faultyDisk{Disk: s.Local[dead], createErr: errors.New("disk on fire")}
	info, err := s.Put(context.Background(), "q1", l, bytes.NewReader(payload(50000)))
	if err != nil || info.Written != 5 {
		t.Fatalf("one dead disk: %+v %v", info, err)
	}
	// Three dead disks: below quorum; nothing is left behind.
	for _, i := range []int{3, 4} {
		id := l.Disks[i].ID
		s.Local[id] = &faultyDisk{Disk: s.Local[id], createErr: errors.New("gone")}
	}
	if _, err := s.Put(context.Background(), "q2", l, bytes.NewReader(payload(50000))); !errors.Is(err, ErrQuorum) {
		t.Fatalf("three dead disks: err = %v", err)
	}
	for _, d := range s.Local {
		names, _ := d.List()
		for _, n := range names {
			if strings.HasPrefix(n, "q2.") {
				t.Fatalf("failed write left shard %s", n)
			}
		}
	}
}

func TestTruncatedUploadLeavesNothing(t *testing.T) {
	// A transport error is a failure; so is ErrUnexpectedEOF from the body
	// itself (net/http's answer to a chunked body cut short), which
	// io.ReadFull's own ErrUnexpectedEOF for a short last stripe must not
	// hide.
	for _, cut := range []error{errors.New("connection reset"), io.ErrUnexpectedEOF} {
		s, l := newStore(t, 6)
		_, err := s.Put(context.Background(), "cut", l, io.MultiReader(bytes.NewReader(payload(20000)), errReader{cut}))
		if !errors.Is(err, ErrSource) {
			t.Fatalf("body failing with %v: stored, or not reported as a source error (%v)", cut, err)
		}
		for _, d := range s.Local {
			if names, _ := d.List(); len(names) != 0 {
				t.Fatalf("shards left: %v", names)
			}
		}
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// TestRemoteDisks writes half the shards to another "node" over the peer
// protocol (TLS, as between nodes) and reads them back, also degraded.
func TestRemoteDisks(t *testing.T) {
	// No hedges: on a loaded machine the first read could read past
	// shard 1, whose disk is then read last for a while, and the
	// degraded read below would not find it gone.
	noHedges = true
	defer func() { noHedges = false }()
	remote := map[string]disk.Disk{}
	var ds []placement.Disk
	local := &Store{Node: "n1", Local: map[string]disk.Disk{}}
	for i := 0; i < 6; i++ {
		d, _ := disk.OpenDir(filepath.Join(t.TempDir(), fmt.Sprint(i)))
		if i%2 == 0 {
			local.Local[d.ID()] = d
			ds = append(ds, placement.Disk{Node: "n1", ID: d.ID()})
		} else {
			remote[d.ID()] = d
			ds = append(ds, placement.Disk{Node: "n2", ID: d.ID()})
		}
	}
	srv := httptest.NewTLSServer(PeerHandler(remote))
	defer srv.Close()
	local.Transport = &HTTPTransport{Client: srv.Client(), Addr: func(node string) (string, error) {
		if node != "n2" {
			return "", errors.New("unknown node")
		}
		return strings.TrimPrefix(srv.URL, "https://"), nil
	}}
	l := Layout{K: 4, M: 2, ShardSize: 4096, Disks: ds}
	data := payload(100000)
	if _, err := local.Put(context.Background(), "rb", l, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	got, _, err := get(t, local, "rb", l, int64(len(data)), 0, int64(len(data)))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("remote read: %v", err)
	}
	// The remote node loses a shard; the read still works and heal fixes it.
	remote[l.Disks[1].ID].Remove(ShardName("rb", 1))
	got, res, err := get(t, local, "rb", l, int64(len(data)), 1000, 50000)
	if err != nil || !bytes.Equal(got, data[1000:51000]) || !res.Degraded {
		t.Fatalf("degraded remote read: %v %v", err, res.Degraded)
	}
	if healed, err := local.Heal(context.Background(), "rb", l, int64(len(data))); err != nil || len(healed) != 1 || healed[0] != 1 {
		t.Fatalf("heal: %v %v", healed, err)
	}
	if err := local.Delete(context.Background(), "rb", l); err != nil {
		t.Fatal(err)
	}
	for _, d := range remote {
		if names, _ := d.List(); len(names) != 0 {
			t.Fatalf("remote shards left after delete: %v", names)
		}
	}
}

func TestShardSizeFor(t *testing.T) {
	for _, tc := range []struct {
		size int64
		want int
	}{{-1, 1 << 20}, {0, 64}, {1, 64}, {4096, 1024}, {4 << 20, 1 << 20}, {1 << 30, 1 << 20}} {
		if got := ShardSizeFor(tc.size, 4, 1<<20); got != tc.want {
			t.Errorf("ShardSizeFor(%d) = %d, want %d", tc.size, got, tc.want)
		}
	}
}

func TestEmptyBlobShardsAreHealedToo(t *testing.T) {
	s, l := newStore(t, 6)
	if _, err := s.Put(context.Background(), "empty", l, bytes.NewReader(nil)); err != nil {
		t.Fatal(err)
	}
	os.Remove(shardPath(s, l, "empty", 2))
	bad, err := s.Verify(context.Background(), "empty", l, 0)
	if err != nil || len(bad) != 1 || bad[0] != 2 {
		t.Fatalf("verify of an empty blob missing shard 2: %v %v", bad, err)
	}
	if _, err := s.Heal(context.Background(), "empty", l, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(shardPath(s, l, "empty", 2)); err != nil {
		t.Fatalf("empty shard not rebuilt: %v", err)
	}
}

func TestFaultInjection(t *testing.T) {
	ctx := context.Background()
	t.Run("disk dies on its second write", func(t *testing.T) {
		s, l := newStore(t, 6)
		id := l.Disks[3].ID
		s.Local[id] = &faultyDisk{Disk: s.Local[id], createErr: errors.New("I/O error"), failFrom: 2}
		data := payload(3*l.K*l.ShardSize + 5)
		for _, key := range []string{"first", "second"} {
			info, err := s.Put(ctx, key, l, bytes.NewReader(data))
			if err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			want := 6
			if key == "second" {
				want = 5
			}
			if info.Written != want {
				t.Fatalf("%s: %d shards written, want %d", key, info.Written, want)
			}
			got, _, err := get(t, s, key, l, int64(len(data)), 0, int64(len(data)))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%s read back: %v", key, err)
			}
		}
	})
	t.Run("a disk returns flipped bits", func(t *testing.T) {
		s, l := newStore(t, 6)
		data := payload(2*l.K*l.ShardSize + 99)
		if _, err := s.Put(ctx, "k", l, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		id := l.Disks[1].ID
		s.Local[id] = &faultyDisk{Disk: s.Local[id], corrupt: true}
		got, res, err := get(t, s, "k", l, int64(len(data)), 0, int64(len(data)))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read past a corrupting disk: %v", err)
		}
		if !res.Degraded || len(res.BadShards) != 1 || res.BadShards[0] != 1 || !errors.Is(res.Errors[0], ec.ErrChecksum) {
			t.Fatalf("corruption not reported as a checksum error on shard 1: %+v", res)
		}
	})
	t.Run("slow disks still give whole data, and a deadline stops the read", func(t *testing.T) {
		s, l := newStore(t, 6)
		data := payload(4*l.K*l.ShardSize + 1)
		for _, d := range l.Disks[:2] {
			s.Local[d.ID] = &faultyDisk{Disk: s.Local[d.ID], delay: 2 * time.Millisecond}
		}
		if _, err := s.Put(ctx, "k", l, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		got, _, err := get(t, s, "k", l, int64(len(data)), 0, int64(len(data)))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read from slow disks: %v", err)
		}
		for _, d := range l.Disks {
			s.Local[d.ID] = &faultyDisk{Disk: s.Local[d.ID], delay: time.Second}
		}
		dctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		if _, err := s.Get(dctx, "k", l, int64(len(data)), 0, int64(len(data)), io.Discard); err == nil {
			t.Fatal("a read of disks slower than the deadline succeeded")
		}
	})
}

// countingDisk counts the bytes read from its shards.
type countingDisk struct {
	disk.Disk
	read *atomic.Int64
}

func (d countingDisk) Open(name string, offset int64) (io.ReadCloser, error) {
	rc, err := d.Disk.Open(name, offset)
	if err != nil {
		return nil, err
	}
	return countingReader{rc, d.read}, nil
}

type countingReader struct {
	io.ReadCloser
	n *atomic.Int64
}

func (r countingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.n.Add(int64(n))
	return n, err
}

// TestDegradedReadReadsAhead: with data shards missing, a read still reads
// the next stripe from the disks while the client takes this one, as a
// healthy read does, instead of leaving the disks idle while it waits for
// the client.
func TestDegradedReadReadsAhead(t *testing.T) {
	s, l := newStore(t, 6)
	var read atomic.Int64
	for id, d := range s.Local {
		s.Local[id] = countingDisk{d, &read}
	}
	data := payload(8 * l.K * l.ShardSize)
	if _, err := s.Put(context.Background(), "k", l, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	os.Remove(shardPath(s, l, "k", 0))
	os.Remove(shardPath(s, l, "k", 1))
	// Stripe 0 costs six blocks (two shards read before the other two
	// were found missing, then four), each later stripe four: the disks
	// have given more than ten blocks only once stripe 2 is being read.
	block := int64(l.ShardSize + 4)
	w := &stallingWriter{until: func() bool { return read.Load() > 10*block }, stripe: l.K * l.ShardSize}
	res, err := s.Get(context.Background(), "k", l, int64(len(data)), 0, int64(len(data)), w)
	if err != nil || !res.Degraded || !bytes.Equal(w.buf.Bytes(), data) {
		t.Fatalf("degraded read: %v degraded=%v equal=%v", err, res.Degraded, bytes.Equal(w.buf.Bytes(), data))
	}
	if !w.sawAhead {
		t.Fatalf("while the client took stripe 1, %d bytes were read from the disks: stripe 2 was not read ahead", w.readAt)
	}
}

// stallingWriter, on its first write past the first stripe, waits (up to
// five seconds) for until to hold.
type stallingWriter struct {
	buf      bytes.Buffer
	stripe   int
	until    func() bool
	waited   bool
	sawAhead bool
	readAt   int64
}

func (w *stallingWriter) Write(p []byte) (int, error) {
	if !w.waited && w.buf.Len() >= w.stripe {
		w.waited = true
		for i := 0; i < 500 && !w.sawAhead; i++ {
			w.sawAhead = w.until()
			time.Sleep(10 * time.Millisecond)
		}
	}
	return w.buf.Write(p)
}

// TestHealReadsEachShardOnce: healing a blob with two shards missing reads
// each remaining shard once, not once to verify and again to rebuild.
func TestHealReadsEachShardOnce(t *testing.T) {
	s, l := newStore(t, 6)
	var read atomic.Int64
	for id, d := range s.Local {
		s.Local[id] = countingDisk{d, &read}
	}
	const stripes = 8
	data := payload(stripes * l.K * l.ShardSize)
	if _, err := s.Put(context.Background(), "k", l, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	os.Remove(shardPath(s, l, "k", 0))
	os.Remove(shardPath(s, l, "k", 1))
	healed, err := s.Heal(context.Background(), "k", l, int64(len(data)))
	if err != nil || !reflect.DeepEqual(healed, []int{0, 1}) {
		t.Fatalf("heal: %v %v", healed, err)
	}
	if want := int64(stripes * (l.K + l.M - 2) * (l.ShardSize + 4)); read.Load() != want {
		t.Fatalf("heal read %d bytes, want %d: every remaining shard once", read.Load(), want)
	}
	got, res, err := get(t, s, "k", l, int64(len(data)), 0, int64(len(data)))
	if err != nil || res.Degraded || !bytes.Equal(got, data) {
		t.Fatalf("read after heal: %v degraded=%v", err, res.Degraded)
	}
}

func TestPutWithoutMD5(t *testing.T) {
	s, l := newStore(t, 6)
	data := payload(3*l.K*l.ShardSize + 5)
	info, err := s.Put(WithoutMD5(context.Background()), "b", l, bytes.NewReader(data))
	if err != nil || info.MD5 != "" || info.Size != int64(len(data)) {
		t.Fatalf("put without MD5 = %+v, %v", info, err)
	}
	got, _, err := get(t, s, "b", l, int64(len(data)), 0, int64(len(data)))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: %v", err)
	}
	info, err = s.Put(context.Background(), "c", l, bytes.NewReader(data))
	if sum := md5.Sum(data); err != nil || info.MD5 != hex.EncodeToString(sum[:]) {
		t.Fatalf("put = %+v, %v; want MD5 %x", info, err, sum)
	}
}

// TestPutLeavesDirectorySyncsToTheCaller writes two blobs whose keys
// share a shard directory with WithDirSyncs: their local shards are
// whole and readable when Put returns, and the directories wait for the
// caller's one Sync, one per disk for both blobs.
func TestPutLeavesDirectorySyncsToTheCaller(t *testing.T) {
	s, l := newStore(t, 6)
	var ds disk.DirSyncs
	ctx := WithDirSyncs(WithoutMD5(context.Background()), &ds)
	data := payload(2*l.K*l.ShardSize + 7)
	for _, key := range []string{"abc1", "abc2"} {
		if _, err := s.Put(ctx, key, l, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		got, _, err := get(t, s, key, l, int64(len(data)), 0, int64(len(data)))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read %s back: %v", key, err)
		}
	}
	if ds.Len() != len(l.Disks) {
		t.Fatalf("%d directories wait for their sync, want one per disk (%d)", ds.Len(), len(l.Disks))
	}
	if err := ds.Sync(); err != nil {
		t.Fatal(err)
	}
	// Without WithDirSyncs, Put syncs them itself.
	if _, err := s.Put(WithoutMD5(context.Background()), "abc3", l, bytes.NewReader(data)); err != nil || ds.Len() != 0 {
		t.Fatalf("put without WithDirSyncs: %v, %d directories left to the caller", err, ds.Len())
	}
}

// Blocks of a stage or more are placed in their buffers as they sit in
// their shard files, for direct writes from there (disk.Aligned); the
// blobs read back whole, healthy and degraded, whatever their size.
func TestPutPlacesLargeBlocksForDirectWrites(t *testing.T) {
	if b := NewBuffers(8<<20).TryGet(1, 4+1<<20); cap(b[0])-len(b[0]) < disk.DirectAlign {
		t.Fatalf("a 1 MiB shard block has %d bytes of slack", cap(b[0])-len(b[0]))
	}
	if b := NewBuffers(8<<20).TryGet(1, 4+32<<10); cap(b[0]) != len(b[0]) {
		t.Fatalf("a volume's 32 KiB shard block has %d bytes of slack", cap(b[0])-len(b[0]))
	}
	for _, size := range []int{1, 4<<20 + 1, 10<<20 + 12345} {
		s, l := newStore(t, 6)
		l.ShardSize = 1 << 20
		data := payload(size)
		if _, err := s.Put(context.Background(), "k", l, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		got, _, err := get(t, s, "k", l, int64(size), 0, int64(size))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d bytes: read back %d bytes, equal %v, err %v", size, len(got), bytes.Equal(got, data), err)
		}
		os.Remove(shardPath(s, l, "k", 0))
		os.Remove(shardPath(s, l, "k", 1))
		got, _, err = get(t, s, "k", l, int64(size), 0, int64(size))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d bytes, degraded: read back %d bytes, equal %v, err %v", size, len(got), bytes.Equal(got, data), err)
		}
	}
}
