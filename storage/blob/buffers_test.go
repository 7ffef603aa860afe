package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Many transfers drawing stripes at once never hold more than the budget,
// and every one is served in the end.
func TestBuffersNeverExceedTheirBudget(t *testing.T) {
	const block = 64<<10 + 4
	b := NewBuffers(10 * block)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var over []int64
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				got, err := b.Get(context.Background(), 6, block)
				if err != nil {
					t.Error(err)
					return
				}
				if h := b.Held(); h > b.Budget() {
					mu.Lock()
					over = append(over, h)
					mu.Unlock()
				}
				b.Put(got...)
			}
		}()
	}
	wg.Wait()
	if len(over) > 0 {
		t.Errorf("blocks held beyond the %d-byte budget: %v", b.Budget(), over)
	}
	if b.Out() != 0 {
		t.Errorf("%d bytes still handed out", b.Out())
	}
}

// Idle blocks of one length make room for blocks of another: a budget
// filled by earlier transfers of one object size does not lock out
// another size.
func TestBuffersDropIdleBlocksOfOtherLengths(t *testing.T) {
	const small, large = 64 << 10, 128 << 10
	b := NewBuffers(4 * large)
	got, _ := b.Get(context.Background(), 8, small)
	b.Put(got...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := b.Get(ctx, 4, large)
	if err != nil {
		t.Fatalf("budget full of idle %d-byte blocks refused %d-byte ones: %v", small, large, err)
	}
	if h := b.Held(); h > b.Budget() {
		t.Errorf("held %d bytes, budget %d", h, b.Budget())
	}
	b.Put(got...)
}

// A waiter whose context ends leaves the queue, and the next waiter is
// served once blocks come back.
func TestBuffersWaitInTurnAndGiveUpWithTheirContext(t *testing.T) {
	const block = 64 << 10
	b := NewBuffers(4 * block)
	first, _ := b.Get(context.Background(), 4, block)

	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error)
	go func() {
		_, err := b.Get(ctx, 4, block)
		gaveUp <- err
	}()
	for b.queued() < 1 {
		time.Sleep(time.Millisecond)
	}
	served := make(chan [][]byte)
	go func() {
		got, _ := b.Get(context.Background(), 2, block)
		served <- got
	}()
	for b.queued() < 2 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("a waiter whose context ended got %v", err)
	}
	b.Put(first...)
	got := <-served
	if len(got) != 2 {
		t.Fatalf("next waiter got %d blocks", len(got))
	}
	b.Put(got...)
	if b.Out() != 0 {
		t.Errorf("%d bytes still handed out", b.Out())
	}
}

// A stripe larger than the whole budget is served alone rather than
// never.
func TestBuffersServeAnOversizeStripeAlone(t *testing.T) {
	b := NewBuffers(1 << 20)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := b.Get(ctx, 6, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	b.Put(got...)
	if h := b.Held(); h > b.Budget() {
		t.Errorf("kept %d bytes of blocks after the oversize stripe, budget %d", h, b.Budget())
	}
}

// Puts and Gets of many blobs at once, healthy and degraded, through a
// budget of a few stripes, all complete with the right bytes and give
// every block back.
func TestTransfersShareASmallBudget(t *testing.T) {
	s, l := newStore(t, 6)
	l.ShardSize = 64 << 10
	stripe := int64(l.K+l.M) * int64(l.ShardSize+4)
	s.Buffers = NewBuffers(3 * stripe)
	data := payload(40 * l.K * l.ShardSize / 3)
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprint("b", i)
			if _, err := s.Put(context.Background(), key, l, bytes.NewReader(data)); err != nil {
				t.Error(err)
				return
			}
			if i%2 == 1 {
				// Lose a data shard: the read needs a block per shard.
				if err := s.Local[l.Disks[0].ID].Remove(ShardName(key, 0)); err != nil {
					t.Error(err)
				}
			}
			var buf bytes.Buffer
			res, err := s.Get(context.Background(), key, l, int64(len(data)), 0, int64(len(data)), &buf)
			if err != nil || !bytes.Equal(buf.Bytes(), data) || res.Degraded != (i%2 == 1) {
				t.Errorf("read back %s: %v degraded=%v, %d bytes equal=%v", key, err, res.Degraded, buf.Len(), bytes.Equal(buf.Bytes(), data))
			}
		}()
	}
	wg.Wait()
	if out := s.Buffers.Out(); out != 0 {
		t.Errorf("%d bytes still handed out", out)
	}
	if h := s.Buffers.Held(); h > s.Buffers.Budget() {
		t.Errorf("held %d bytes, budget %d", h, s.Buffers.Budget())
	}
}

// TryGet never waits: it hands out blocks while the budget has room and
// nobody waits, and nothing otherwise, so a transfer holding blocks can
// ask for more without risking a wait on itself.
func TestTryGetNeverWaits(t *testing.T) {
	const block = 64<<10 + 4
	b := NewBuffers(4 * block)
	held := b.TryGet(3, block)
	if len(held) != 3 {
		t.Fatalf("TryGet with room: %d blocks", len(held))
	}
	if got := b.TryGet(2, block); got != nil {
		t.Fatalf("TryGet past the budget handed out %d blocks", len(got))
	}
	waiting := make(chan [][]byte)
	go func() {
		got, _ := b.Get(context.Background(), 2, block)
		waiting <- got
	}()
	for b.queued() == 0 {
		time.Sleep(time.Millisecond)
	}
	if got := b.TryGet(1, block); got != nil {
		t.Fatal("TryGet went ahead of a transfer waiting for blocks")
	}
	b.Put(held...)
	b.Put(<-waiting...)
	if b.Out() != 0 {
		t.Fatalf("%d bytes still out", b.Out())
	}
}

// The blocks of a volume extent's stripe (32 KiB shards and their 4-byte
// checksum) come back for reuse: a sequential volume writer codes
// hundreds of MiB/s of them.
func TestBuffersReuseTheBlocksOfVolumeExtents(t *testing.T) {
	const block = 32<<10 + 4
	b := NewBuffers(DefaultBufferBudget)
	got, _ := b.Get(context.Background(), 6, block)
	first := &got[0][0]
	b.Put(got...)
	if b.Held() != 6*block {
		t.Fatalf("%d bytes kept of six returned %d-byte blocks", b.Held(), block)
	}
	again, _ := b.Get(context.Background(), 6, block)
	reused := false
	for _, blk := range again {
		reused = reused || &blk[0] == first
	}
	if !reused {
		t.Fatal("a returned block was not reused")
	}
	b.Put(again...)
}
