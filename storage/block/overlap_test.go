package block

import (
	"bytes"
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/storage/blob"
)

// heldAppends holds the first block.append proposal until release is
// closed, then answers it with fail (or proposes it when fail is nil).
// It counts the blob writes and the appends proposed.
type heldAppends struct {
	store.Replicated
	Blobs
	held    chan struct{} // closed once the first append waits
	release chan struct{}
	fail    error

	mu      sync.Mutex
	appends int
	puts    int
	putCh   chan struct{} // one value per blob write
}

func (h *heldAppends) Put(ctx context.Context, key string, l blob.Layout, r io.Reader) (blob.Info, error) {
	info, err := h.Blobs.Put(ctx, key, l, r)
	h.mu.Lock()
	h.puts++
	h.mu.Unlock()
	h.putCh <- struct{}{}
	return info, err
}

func (h *heldAppends) Propose(ctx context.Context, typ string, body any) (store.Result, error) {
	if typ == cmdAppend {
		h.mu.Lock()
		h.appends++
		first := h.appends == 1
		h.mu.Unlock()
		if first {
			close(h.held)
			<-h.release
			if h.fail != nil {
				return store.Result{}, h.fail
			}
		}
	}
	return h.Replicated.Propose(ctx, typ, body)
}

func (h *heldAppends) proposed() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.appends
}

// overlapRig opens volume "v" with a cache of two pages over h, with
// page 0 = A and page 2 = C flushed by a Flush held at its proposal, and
// then page 0 = B and page 1 written: the second of those writes finds
// the cache full and spills it while the first flush is still held. It
// returns once the spill has written its blob. The pages are handed over
// (WriteOwned) through own.
func overlapRig(t *testing.T, fail error) (*rig, *heldAppends, *Volume, *owned, chan error, chan error) {
	t.Helper()
	r := newRig(t)
	h := &heldAppends{Replicated: r.repl, Blobs: r.blobs, held: make(chan struct{}), release: make(chan struct{}),
		fail: fail, putCh: make(chan struct{}, 16)}
	cfg := r.config()
	cfg.Repl, cfg.Blobs, cfg.DirtyLimit = h, h, 2*PageSize
	s := New(cfg)
	ctx := context.Background()
	if err := s.Create(ctx, "v", ExtentSize, Options{}); err != nil {
		t.Fatal(err)
	}
	v, err := s.Open(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	own := &owned{}
	own.write(v, page('A'), 0)
	own.write(v, page('C'), 2*PageSize)
	flushed := make(chan error, 1)
	go func() { flushed <- v.Flush(ctx) }()
	<-h.held
	<-h.putCh // the held flush's segment
	own.write(v, page('B'), 0)
	wrote := make(chan error, 1)
	go func() {
		own.write(v, page('D'), 1*PageSize) // fills the cache
		wrote <- own.write(v, page('E'), 3*PageSize)
	}()
	select {
	case <-h.putCh:
	case <-time.After(30 * time.Second):
		t.Fatal("the spill wrote no blob while the flush sealed before it was held")
	}
	return r, h, v, own, flushed, wrote
}

func page(c byte) []byte { return bytes.Repeat([]byte{c}, PageSize) }

// TestFlushesOverlapAndCommitInOrder: a spill writes its blobs while the
// flush sealed before it is still waiting for its command, but proposes
// only after that one committed, so the newer page wins, also after
// reopening from the replicated state.
func TestFlushesOverlapAndCommitInOrder(t *testing.T) {
	r, h, v, own, flushed, wrote := overlapRig(t, nil)
	if n := h.proposed(); n != 1 {
		t.Fatalf("%d appends proposed while the first was held; the spill must wait its turn", n)
	}
	close(h.release)
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := v.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := own.outstanding(); n != 0 {
		t.Fatalf("%d pages handed over not given back after the last flush", n)
	}
	want := make([]byte, ExtentSize)
	copy(want, page('B'))
	copy(want[PageSize:], page('D'))
	copy(want[2*PageSize:], page('C'))
	copy(want[3*PageSize:], page('E'))
	if got := readAll(t, v); !bytes.Equal(got, want) {
		t.Fatal(firstDiff(got, want))
	}
	v.Close()
	v2, err := New(r.config()).Open(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, v2); !bytes.Equal(got, want) {
		t.Fatalf("after reopening: %s", firstDiff(got, want))
	}
	v2.Close()
}

// TestAFailedFlushFailsTheOnesSealedAfterIt: when the held flush's
// command fails, the spill sealed after it fails too without proposing,
// and every page goes back into the cache with its newest data on top;
// the next flush makes all of it durable.
func TestAFailedFlushFailsTheOnesSealedAfterIt(t *testing.T) {
	for _, fail := range []error{
		&store.ApplyError{Kind: store.KindConflict, Msg: "refused"},
		store.ErrOutcomeUnknown,
	} {
		t.Run(fail.Error(), func(t *testing.T) {
			r, h, v, own, flushed, wrote := overlapRig(t, fail)
			// A newer page over one the failing flush holds: the
			// failed flush's page must not come back over it.
			if err := own.write(v, page('F'), 2*PageSize); err != nil {
				t.Fatal(err)
			}
			close(h.release)
			if err := <-flushed; err == nil {
				t.Fatal("the flush whose command failed succeeded")
			}
			if err := <-wrote; err == nil {
				t.Fatal("the spill sealed after a failed flush succeeded")
			}
			if n := h.proposed(); n != 1 {
				t.Fatalf("%d appends proposed: the spill after a failed flush must not propose", n)
			}
			want := make([]byte, ExtentSize)
			copy(want, page('B'))
			copy(want[PageSize:], page('D'))
			copy(want[2*PageSize:], page('F'))
			if got := readAll(t, v); !bytes.Equal(got, want) {
				t.Fatalf("the cache after the failures: %s", firstDiff(got, want))
			}
			ctx := context.Background()
			if err := v.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if n := own.outstanding(); n != 0 {
				t.Fatalf("%d pages handed over not given back after the last flush", n)
			}
			v.Close()
			v2, err := New(r.config()).Open(ctx, "v")
			if err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, v2); !bytes.Equal(got, want) {
				t.Fatalf("after reopening: %s", firstDiff(got, want))
			}
			v2.Close()
		})
	}
}
