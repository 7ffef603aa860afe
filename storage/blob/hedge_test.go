package blob

import (
	"bytes"
	"context"
	"io"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rackstack/rackstack/storage/disk"
	"github.com/rackstack/rackstack/storage/placement"
)

// hungDisk is a disk whose shard reads hang until released, as a disk
// that stopped answering or a SIGSTOPped node's does; released, a read
// returns garbage when garbage is set (a late, wrong block) and the
// shard's bytes otherwise.
type hungDisk struct {
	disk.Disk
	release chan struct{}
	garbage bool
	opens   atomic.Int64
	out     atomic.Int64 // reads still hanging
}

func hang(t testing.TB, d disk.Disk, garbage bool) *hungDisk {
	h := &hungDisk{Disk: d, release: make(chan struct{}), garbage: garbage}
	t.Cleanup(func() {
		h.thaw()
		h.wait()
	})
	return h
}

var thawMu sync.Mutex

func (h *hungDisk) thaw() {
	thawMu.Lock()
	defer thawMu.Unlock()
	select {
	case <-h.release:
	default:
		close(h.release)
	}
}

// wait waits (a while) for the reads hanging to return once thawed.
func (h *hungDisk) wait() {
	for end := time.Now().Add(10 * time.Second); h.out.Load() > 0 && time.Now().Before(end); {
		time.Sleep(time.Millisecond)
	}
}

func (h *hungDisk) Open(name string, off int64) (io.ReadCloser, error) {
	h.opens.Add(1)
	rc, err := h.Disk.Open(name, off)
	if err != nil {
		return nil, err
	}
	return &hungReader{h: h, rc: rc}, nil
}

type hungReader struct {
	h  *hungDisk
	rc io.ReadCloser
}

func (r *hungReader) Read(p []byte) (int, error) {
	r.h.out.Add(1)
	defer r.h.out.Add(-1)
	<-r.h.release
	n, err := r.rc.Read(p)
	if r.h.garbage {
		for i := range p[:n] {
			p[i] ^= 0x5a
		}
	}
	return n, err
}

func (r *hungReader) Close() error { return r.rc.Close() }

// diskTransport reaches "remote" disks held in a map, as HTTPTransport
// reaches other nodes' disks.
type diskTransport map[string]disk.Disk

func (t diskTransport) Create(ctx context.Context, d placement.Disk, name string, body io.Reader) error {
	w, err := t[d.ID].Create(name)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, body); err != nil {
		w.Abort()
		return err
	}
	return w.Commit()
}

func (t diskTransport) Open(ctx context.Context, d placement.Disk, name string, off int64) (io.ReadCloser, error) {
	return t[d.ID].Open(name, off)
}

func (t diskTransport) Remove(ctx context.Context, d placement.Disk, name string) error {
	return t[d.ID].Remove(name)
}

// TestGetReadsPastAHungShard: a GET whose data shard hangs (a local disk
// or a remote node that stopped answering) is made from the parity
// instead, right, without waiting for the hung read, which is reported
// as slow, not bad; the read it left behind keeps its block out of the
// Buffers' count, and returning (with a right or a wrong block) changes
// nothing for anyone.
func TestGetReadsPastAHungShard(t *testing.T) {
	for _, tc := range []struct {
		name            string
		remote, garbage bool
		size            int
	}{
		{"local one stripe", false, false, 3000},
		{"local many stripes", false, false, 200_000},
		{"remote many stripes", true, false, 200_000},
		{"remote late garbage", true, true, 200_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, l := newStore(t, 6)
			s.Buffers = NewBuffers(DefaultBufferBudget)
			data := payload(tc.size)
			if _, err := s.Put(context.Background(), "k", l, bytes.NewReader(data)); err != nil {
				t.Fatal(err)
			}
			d := l.Disks[1]
			h := hang(t, s.Local[d.ID], tc.garbage)
			if tc.remote {
				delete(s.Local, d.ID)
				l.Disks[1].Node = "n2"
				s.Transport = diskTransport{d.ID: h}
			} else {
				s.Local[d.ID] = h
			}
			for range 3 {
				var got []byte
				var res ReadResult
				var err error
				within(t, "Get", func() { got, res, err = get(t, s, "k", l, int64(len(data)), 0, int64(len(data))) })
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("read past a hung shard: %v (%d of %d bytes, equal %v)", err, len(got), len(data), bytes.Equal(got, data))
				}
				if res.Degraded || len(res.BadShards) > 0 {
					t.Fatalf("a hung shard is not a bad one: %+v", res)
				}
				// Only a read that was given up on is still out.
				if len(res.Slow) > 0 && !reflect.DeepEqual(res.Slow, []int{1}) {
					t.Fatalf("slow shards %v, want [1]", res.Slow)
				}
				if out := s.Buffers.Out(); out != 0 {
					t.Fatalf("%d bytes of blocks still counted out after the GET", out)
				}
				// A small read in the middle goes the same way.
				off := int64(len(data) / 3)
				if got, _, err := get(t, s, "k", l, int64(len(data)), off, 100); err != nil || !bytes.Equal(got, data[off:off+100]) {
					t.Fatalf("range read past a hung shard: %v", err)
				}
			}
			// The hung shard was read at most once per GET: afterwards
			// its disk is read only if the others cannot make a stripe.
			if n := h.opens.Load(); n > 2 {
				t.Errorf("the hung disk was opened %d times in 6 reads", n)
			}
			h.thaw()
			h.wait()
			if got, _, err := get(t, s, "k", l, int64(len(data)), 0, int64(len(data))); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read after the disk came back: %v", err)
			}
			if out, held := s.Buffers.Out(), s.Buffers.Held(); out != 0 || held < 0 || held > s.Buffers.Budget() {
				t.Fatalf("after the disk came back: %d bytes out, %d held", out, held)
			}
		})
	}
}

// TestGetSkipsShardsOnDownNodes: a shard on a node the cluster holds down
// is not read at all while the others make every stripe, and is read
// when they cannot.
func TestGetSkipsShardsOnDownNodes(t *testing.T) {
	s, l := newStore(t, 6)
	data := payload(200_000)
	if _, err := s.Put(context.Background(), "k", l, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	d := l.Disks[0]
	h := hang(t, s.Local[d.ID], false)
	h.thaw() // it answers, but the cluster holds its node down
	delete(s.Local, d.ID)
	l.Disks[0].Node = "n2"
	s.Transport = diskTransport{d.ID: h}
	s.NodeUp = func(node string) bool { return node != "n2" }
	got, res, err := get(t, s, "k", l, int64(len(data)), 0, int64(len(data)))
	if err != nil || !bytes.Equal(got, data) || res.Degraded {
		t.Fatalf("read with a node down: %v %+v", err, res)
	}
	if n := h.opens.Load(); n != 0 {
		t.Fatalf("the down node's shard was opened %d times", n)
	}
	// Two shards gone: the down node's is needed, and read.
	for _, i := range []int{2, 3} {
		if err := s.Local[l.Disks[i].ID].Remove(ShardName("k", i)); err != nil {
			t.Fatal(err)
		}
	}
	got, res, err = get(t, s, "k", l, int64(len(data)), 0, int64(len(data)))
	if err != nil || !bytes.Equal(got, data) || !reflect.DeepEqual(res.BadShards, []int{2, 3}) {
		t.Fatalf("read needing the down node's shard: %v %+v", err, res)
	}
	if h.opens.Load() == 0 {
		t.Fatal("the down node's shard was not read when it was needed")
	}
}

// TestHedgeDelay: the delay follows the median of recent reads, within
// its floor and ceiling.
func TestHedgeDelay(t *testing.T) {
	var l latencies
	if d := l.delay(); d != hedgeCold {
		t.Fatalf("cold delay %v", d)
	}
	for range latencySamples {
		l.add(time.Millisecond)
	}
	if d := l.delay(); d != hedgeFloor {
		t.Fatalf("delay after 1ms reads: %v, want the floor %v", d, hedgeFloor)
	}
	for range latencySamples {
		l.add(30 * time.Millisecond)
	}
	if d := l.delay(); d != hedgeFactor*30*time.Millisecond {
		t.Fatalf("delay after 30ms reads: %v", d)
	}
	// A long tail: 1 read in 10 takes 100 ms, the rest 1 ms.
	for i := range latencySamples {
		if i%10 == 0 {
			l.add(100 * time.Millisecond)
		} else {
			l.add(time.Millisecond)
		}
	}
	if d := l.delay(); d != 200*time.Millisecond {
		t.Fatalf("delay after reads with a 100ms tail: %v, want twice the p95", d)
	}
	for range latencySamples {
		l.add(time.Minute)
	}
	if d := l.delay(); d != hedgeCeiling {
		t.Fatalf("delay after 1min reads: %v, want the ceiling", d)
	}
}
