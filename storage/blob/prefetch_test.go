package blob

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
)

// TestGetRangesPrefetchesTheNextBlob: while the client takes the first
// blob of a GetRanges (a multipart object's first part), the kernel has
// already been asked to read the next blob's first blocks, from the K
// shards the read will use: with a data shard missing, a parity shard in
// its place. Without it every part started with the disks idle.
func TestGetRangesPrefetchesTheNextBlob(t *testing.T) {
	s, l := newStore(t, 6)
	ctx := context.Background()
	var mu sync.Mutex
	advised := map[string]bool{}
	adviseHook = func(name string, off int64) {
		mu.Lock()
		advised[fmt.Sprintf("%s@%d", name, off)] = true
		mu.Unlock()
	}
	// A hedge (a loaded machine) would read, and advise, past a shard.
	noHedges = true
	t.Cleanup(func() { adviseHook, noHedges = nil, false })
	stripe := l.K * l.ShardSize
	var rs []Range
	var want []byte
	for _, key := range []string{"a", "b"} {
		data := payload(2*stripe + len(key))
		if _, err := s.Put(ctx, key, l, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		rs = append(rs, Range{Key: key, Layout: l, Size: int64(len(data)), Length: int64(len(data))})
		want = append(want, data...)
	}
	os.Remove(shardPath(s, l, "b", 1))
	var seen []string
	w := &hookWriter{first: func() {
		mu.Lock()
		defer mu.Unlock()
		for k := range advised {
			seen = append(seen, k)
		}
	}}
	res, err := s.GetRanges(ctx, rs, w)
	if err != nil || !bytes.Equal(w.buf.Bytes(), want) {
		t.Fatalf("GetRanges: %v, equal=%v", err, bytes.Equal(w.buf.Bytes(), want))
	}
	if res[0].Degraded || !res[1].Degraded {
		t.Fatalf("degraded: a %v, b %v; want b only", res[0].Degraded, res[1].Degraded)
	}
	slices.Sort(seen)
	// b's shard 1 is gone: its first parity shard (K) stands in for it.
	for _, i := range []int{0, 2, 3, l.K} {
		if k := fmt.Sprintf("%s@0", ShardName("b", i)); !slices.Contains(seen, k) {
			t.Errorf("when the client took its first bytes, %s was not advised (advised: %v)", k, seen)
		}
	}
	if k := fmt.Sprintf("%s@0", ShardName("b", l.K+1)); slices.Contains(seen, k) {
		t.Errorf("%s was advised: more than K shards of a stripe", k)
	}
}

// hookWriter calls first before its first write.
type hookWriter struct {
	buf   bytes.Buffer
	first func()
}

func (w *hookWriter) Write(p []byte) (int, error) {
	if w.first != nil {
		w.first()
		w.first = nil
	}
	return w.buf.Write(p)
}

// TestHealPacedStripeByStripe: HealPaced asks its pace before each
// stripe after the first, with the stripe before it's data bytes, and
// stops, writing nothing, when the pace says so.
func TestHealPacedStripeByStripe(t *testing.T) {
	s, l := newStore(t, 6)
	ctx := context.Background()
	stripe := int64(l.K * l.ShardSize)
	data := payload(int(4*stripe) - 5) // four stripes, the last short
	if _, err := s.Put(ctx, "h", l, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	damage := func() {
		os.Remove(shardPath(s, l, "h", 0))
		os.Remove(shardPath(s, l, "h", 1))
	}
	damage()
	// Stopped at the third stripe: nothing written.
	calls := 0
	_, err := s.HealPaced(ctx, "h", l, int64(len(data)), func(ctx context.Context, n int64) bool {
		calls++
		return calls < 2
	})
	if err == nil || calls != 2 {
		t.Fatalf("heal stopped by its pace: err %v after %d calls, want an error after 2", err, calls)
	}
	for _, i := range []int{0, 1} {
		if _, err := os.Stat(shardPath(s, l, "h", i)); err == nil {
			t.Fatalf("a stopped heal left shard %d written", i)
		}
	}
	// Let through: told of every stripe but the last.
	var told []int64
	healed, err := s.HealPaced(ctx, "h", l, int64(len(data)), func(ctx context.Context, n int64) bool {
		told = append(told, n)
		return true
	})
	if err != nil || len(healed) != 2 {
		t.Fatalf("heal: %v %v", healed, err)
	}
	if want := []int64{stripe, stripe, stripe}; !slices.Equal(told, want) {
		t.Fatalf("pace told of %v, want %v", told, want)
	}
	if bad, err := s.Verify(ctx, "h", l, int64(len(data))); err != nil || len(bad) != 0 {
		t.Fatalf("after heal, bad shards %v (%v)", bad, err)
	}
}
