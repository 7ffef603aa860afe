package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/storage/disk"
	"github.com/rackstack/rackstack/storage/disk/disktest"
	"github.com/rackstack/rackstack/storage/placement"
)

// within fails the test if fn has not returned after a minute: a write
// that waits for a frozen disk would otherwise hang the test binary.
func within(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatalf("%s is still waiting for the frozen disk", what)
	}
}

func TestPutReturnsAtQuorumPastAFrozenDisk(t *testing.T) {
	for name, size := range map[string]int{"one stripe": 3000, "many stripes": 200_000} {
		t.Run(name, func(t *testing.T) {
			s, l := newStore(t, 6)
			// Only the stall timeout can drop a writer that blocks the
			// stream; at the end of it, the quorum must not wait for it.
			// Both are generous: on a loaded machine a healthy disk must
			// not be taken for a frozen one.
			s.StallTimeout, s.StragglerWait = 2*time.Second, time.Second
			if size < 4096*4 {
				s.StallTimeout = time.Hour
			}
			frozen := disktest.Freeze(t, s.Local[l.Disks[1].ID])
			s.Local[l.Disks[1].ID] = frozen
			data := payload(size)
			var info Info
			var err error
			within(t, "Put", func() { info, err = s.Put(context.Background(), "f", l, bytes.NewReader(data)) })
			if err != nil || info.Written != 5 || !reflect.DeepEqual(info.Missing, []int{1}) {
				t.Fatalf("put past a frozen disk: %+v %v", info, err)
			}
			if got, _, err := get(t, s, "f", l, int64(size), 0, int64(size)); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read back: %v", err)
			}
			// The dropped writer must not commit a shard when it wakes;
			// the healer writes it.
			frozen.Thaw()
			healed, err := s.Heal(context.Background(), "f", l, int64(size))
			if err != nil || !reflect.DeepEqual(healed, []int{1}) {
				t.Fatalf("heal after thaw: %v %v", healed, err)
			}
			if bad, err := s.Verify(context.Background(), "f", l, int64(size)); err != nil || len(bad) != 0 {
				t.Fatalf("after heal: bad %v %v", bad, err)
			}
		})
	}
}

// TestFrozenPeer: a node that accepts connections but never answers (a
// SIGSTOPped rackd) fails every call within the transport's timeout, and a
// write returns at quorum without it.
func TestFrozenPeer(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	// The waits are generous so that on a loaded machine only the frozen
	// peer is dropped, never a slow local disk.
	s := &Store{Node: "n1", Local: map[string]disk.Disk{}, StallTimeout: time.Hour, StragglerWait: time.Second}
	s.Transport = &HTTPTransport{Client: srv.Client(), Timeout: time.Second, Addr: func(string) (string, error) {
		return strings.TrimPrefix(srv.URL, "https://"), nil
	}}
	var ds []placement.Disk
	for i := 0; i < 6; i++ {
		if i == 2 {
			ds = append(ds, placement.Disk{Node: "n2", ID: "frozen"})
			continue
		}
		d, err := disk.OpenDir(filepath.Join(t.TempDir(), fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		s.Local[d.ID()] = d
		ds = append(ds, placement.Disk{Node: "n1", ID: d.ID()})
	}
	l := Layout{K: 4, M: 2, ShardSize: 4096, Disks: ds}
	data := payload(10_000)
	var info Info
	var err error
	within(t, "Put", func() { info, err = s.Put(context.Background(), "p", l, bytes.NewReader(data)) })
	if err != nil || !reflect.DeepEqual(info.Missing, []int{2}) {
		t.Fatalf("put with a frozen peer: %+v %v", info, err)
	}
	within(t, "Get", func() {
		got, res, err := get(t, s, "p", l, int64(len(data)), 0, int64(len(data)))
		// The read does not wait for the peer's timeout: it reads the
		// parity beside it and gives it up, not known bad (hedge.go).
		if err != nil || !bytes.Equal(got, data) || !reflect.DeepEqual(res.Slow, []int{2}) || res.Degraded {
			t.Errorf("read around a frozen peer: %v %+v", err, res)
		}
	})
	within(t, "Remove", func() {
		if err := s.DeleteShard(context.Background(), "p", 2, ds[2]); !errors.Is(err, ErrStalled) {
			t.Errorf("delete on a frozen peer: %v", err)
		}
	})
	within(t, "Create", func() {
		err := s.Transport.Create(context.Background(), ds[2], "x.0", strings.NewReader("shard"))
		if !errors.Is(err, ErrStalled) {
			t.Errorf("create on a frozen peer: %v", err)
		}
	})
}

// TestDiskHungInAWriteGivesBackTheStripe: a local disk that hangs inside a
// write keeps the block it was given until the write returns, but not the
// rest of the stripe, and not the budget: once the writer is dropped the
// Buffers count none of it, so a few such writes cannot spend the budget
// of every other transfer.
func TestDiskHungInAWriteGivesBackTheStripe(t *testing.T) {
	s, l := newStore(t, 6)
	s.Buffers = NewBuffers(DefaultBufferBudget)
	s.StallTimeout, s.StragglerWait = 2*time.Second, time.Second
	frozen := disktest.FreezeWrites(t, s.Local[l.Disks[1].ID])
	s.Local[l.Disks[1].ID] = frozen
	data := payload(200_000)
	var info Info
	var err error
	within(t, "Put", func() { info, err = s.Put(context.Background(), "f", l, bytes.NewReader(data)) })
	if err != nil || !reflect.DeepEqual(info.Missing, []int{1}) {
		t.Fatalf("put past a disk hung in a write: %+v %v", info, err)
	}
	if out := s.Buffers.Out(); out != 0 {
		t.Fatalf("%d bytes of blocks still handed out while the disk hangs", out)
	}
	frozen.Thaw()
	// The write that wakes must give nothing back twice.
	if _, err := s.Put(context.Background(), "g", l, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	waitOut := time.Now().Add(10 * time.Second)
	for s.Buffers.Out() != 0 && time.Now().Before(waitOut) {
		time.Sleep(10 * time.Millisecond)
	}
	if out, held := s.Buffers.Out(), s.Buffers.Held(); out != 0 || held < 0 || held > s.Buffers.Budget() {
		t.Fatalf("after the disk woke: %d bytes out, %d held", out, held)
	}
}
