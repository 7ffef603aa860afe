package blob

import (
	"context"
	"sync"

	"github.com/rackstack/rackstack/storage/disk"
)

// Buffers is the working memory of a Store's transfers: the shard blocks
// every write and read codes, checksums and moves. It holds at most Budget
// bytes of blocks, handed out or kept for reuse, so a node's memory stays
// bounded whatever the number of concurrent transfers and the sizes of
// their objects: a transfer that finds the budget spent waits for blocks,
// in the order the transfers asked. Blocks come back to be reused, so large
// transfers leave no garbage behind (with the daemon's high GOGC, garbage
// of a few MiB per stripe grew the heap to gigabytes under load).
//
// A transfer takes the blocks of a whole stripe at once, never a part of
// them while holding others: two transfers each holding half of what they
// need would wait for each other forever.
type Buffers struct {
	budget int64

	mu   sync.Mutex
	used int64            // bytes of blocks handed out or idle
	idle map[int][][]byte // returned blocks by length, for reuse
	// idleBytes is the part of used that idle holds.
	idleBytes int64
	queue     []*bufWaiter // first come, first served
}

type bufWaiter struct {
	count, n int
	got      [][]byte
	ready    chan struct{}
}

// DefaultBufferBudget is the working memory of a Store whose Buffers are
// not set: 128 MiB, twenty stripes of 4+2 with 1 MiB shards.
const DefaultBufferBudget = 128 << 20

// minPooled is the smallest block kept for reuse; smaller ones (of small
// objects) cost little to allocate and would clutter the idle lists with
// one length per object size. It admits the blocks of volume extents
// (32 KiB shards): a sequential writer codes hundreds of MiB/s of them,
// and allocating each afresh cost a sixth of the write path's CPU in
// zeroing, madvise and GC.
const minPooled = 32 << 10

// slack is the room past its length a block of n bytes is given: two
// pages for blocks of at least minPlaced. A write places the block in
// its buffer as it will sit in its shard file and a local disk writes
// it with direct I/O from there (Put, disk.Aligned: a page is enough);
// a GET reads the pages around a block's place in its shard file with
// direct I/O into the buffer from its start, the block landing at its
// page offset (readDirect, disk.BlockReader.ReadBlock: the block's
// offset in its page plus its length, rounded up to whole pages, which
// two pages of slack always hold, one only for some shard sizes; Go
// allocates blocks this large page-aligned). Reads and writes share one idle list. The budget
// counts lengths: the slack adds 8 KiB per block (0.8% of an object's
// 1 MiB shard blocks).
func slack(n int) int {
	if n < minPlaced {
		return 0
	}
	return 2 * disk.DirectAlign
}

// minPlaced is the smallest block a write places for direct I/O: one
// that fills a shard writer's stage alone. A volume's 32 KiB blocks are
// not: most reach their writer one or two at a time, which then copies
// them into its stage (written a few at a time from their own memory
// they cost more CPU than the copy: 2.1 against 1.3 ms per MiB in
// BenchmarkPutExtents; and placed, with the stage kept for batches
// under a stage, no less in process and 2.7-4.0 against 2.3-2.6 ms per
// MiB in one loaded rackbench block run), and their slack would cost an
// eighth more of the budget.
const minPlaced = 256 << 10

// NewBuffers returns Buffers holding at most budget bytes of blocks.
func NewBuffers(budget int64) *Buffers {
	return &Buffers{budget: budget, idle: map[int][][]byte{}}
}

// Budget is the most memory the blocks take (one request for more than the
// budget is served alone, when no other block is handed out).
func (b *Buffers) Budget() int64 { return b.budget }

// Held is the memory the blocks take now, handed out or idle.
func (b *Buffers) Held() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// Out is the memory of the blocks handed out now: 0 once every transfer
// has ended and given its blocks back.
func (b *Buffers) Out() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used - b.idleBytes
}

// Get returns count blocks of n bytes, waiting while the budget is spent.
// Their content is whatever their last user left. It fails only when ctx
// ends first.
func (b *Buffers) Get(ctx context.Context, count, n int) ([][]byte, error) {
	b.mu.Lock()
	if len(b.queue) == 0 {
		if got := b.take(count, n); got != nil {
			b.mu.Unlock()
			return got, nil
		}
	}
	w := &bufWaiter{count: count, n: n, ready: make(chan struct{})}
	b.queue = append(b.queue, w)
	b.mu.Unlock()
	select {
	case <-w.ready:
		return w.got, nil
	case <-ctx.Done():
		b.mu.Lock()
		served := w.got != nil
		if !served {
			for i, q := range b.queue {
				if q == w {
					b.queue = append(b.queue[:i], b.queue[i+1:]...)
					break
				}
			}
			// The head may have left: the next may fit now.
			b.serve()
		}
		b.mu.Unlock()
		if served {
			b.Put(w.got...)
		}
		return nil, ctx.Err()
	}
}

// TryGet returns count blocks of n bytes if the budget has room for them
// now and no transfer is waiting, and nil otherwise. A transfer that holds
// blocks asks for more only this way: waiting while holding some could
// wait forever (see Buffers).
func (b *Buffers) TryGet(count, n int) [][]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.queue) > 0 {
		return nil
	}
	return b.take(count, n)
}

// take hands out count blocks of n bytes if the budget allows, reusing
// idle blocks of that length and dropping idle ones of other lengths to
// make room; nil if it does not. Called with mu held.
func (b *Buffers) take(count, n int) [][]byte {
	reuse := min(len(b.idle[n]), count)
	fresh := int64(count-reuse) * int64(n)
	otherIdle := b.idleBytes - int64(len(b.idle[n])*n)
	handedOut := b.used - b.idleBytes
	if b.used+fresh-otherIdle > b.budget && handedOut > 0 {
		return nil
	}
	// Make room by dropping idle blocks of other lengths.
	for length, list := range b.idle {
		if b.used+fresh <= b.budget {
			break
		}
		if length == n {
			continue
		}
		for len(list) > 0 && b.used+fresh > b.budget {
			list = list[:len(list)-1]
			b.used -= int64(length)
			b.idleBytes -= int64(length)
		}
		if len(list) == 0 {
			delete(b.idle, length)
		} else {
			b.idle[length] = list
		}
	}
	out := make([][]byte, 0, count)
	if reuse > 0 {
		list := b.idle[n]
		out = append(out, list[len(list)-reuse:]...)
		clear(list[len(list)-reuse:])
		b.idle[n] = list[:len(list)-reuse]
		b.idleBytes -= int64(reuse * n)
	}
	for len(out) < count {
		out = append(out, make([]byte, n, n+slack(n)))
	}
	b.used += fresh
	return out
}

// serve hands blocks to the waiters at the head of the queue while they
// fit. Called with mu held.
func (b *Buffers) serve() {
	for len(b.queue) > 0 {
		w := b.queue[0]
		got := b.take(w.count, w.n)
		if got == nil {
			return
		}
		w.got = got
		b.queue = b.queue[1:]
		close(w.ready)
	}
}

// Put returns blocks that Get handed out. Each must be returned once, and
// not used after.
func (b *Buffers) Put(blocks ...[]byte) {
	if len(blocks) == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, blk := range blocks {
		n := len(blk)
		// Small blocks are not kept, nor any beyond the budget (after a
		// stripe larger than the whole budget).
		if n < minPooled || b.used > b.budget {
			b.used -= int64(n)
			continue
		}
		b.idle[n] = append(b.idle[n], blk)
		b.idleBytes += int64(n)
	}
	b.serve()
}

// forget stops counting a block of n bytes handed out, which will not be
// returned (see lease.abandon).
func (b *Buffers) forget(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= int64(n)
	b.serve()
}

// lease is a stripe's blocks shared by the goroutines that use them (one
// shard writer per block, the hasher): the blocks go back to the Buffers
// together once every holder has released the lease.
type lease struct {
	bufs   *Buffers
	blocks [][]byte
	mu     sync.Mutex
	refs   int
}

func newLease(bufs *Buffers, blocks [][]byte, refs int) *lease {
	return &lease{bufs: bufs, blocks: blocks, refs: refs}
}

func (l *lease) release() {
	l.mu.Lock()
	l.refs--
	last := l.refs == 0
	l.mu.Unlock()
	if last {
		l.bufs.Put(l.blocks...)
	}
}

// abandon releases a holder's reference and takes block b out of the lease
// and out of the Buffers' count: its holder may still be using it (a disk
// write that hangs), so it must never be handed out again, but it no
// longer spends the budget. The rest of the stripe goes back as usual.
func (l *lease) abandon(b []byte) {
	l.mu.Lock()
	for i, blk := range l.blocks {
		if len(blk) > 0 && len(b) > 0 && &blk[0] == &b[0] {
			l.blocks = append(l.blocks[:i:i], l.blocks[i+1:]...)
			break
		}
	}
	l.refs--
	last := l.refs == 0
	l.mu.Unlock()
	l.bufs.forget(len(b))
	if last {
		l.bufs.Put(l.blocks...)
	}
}

// piece is one block of a lease on its way to a shard writer.
type piece struct {
	b []byte
	// raw is the lease's block that b lies in, when b is a part of it
	// (placed for direct I/O); nil when b is the lease's block.
	raw []byte
	l   *lease
}

// block is the lease's block of p.
func (p piece) block() []byte {
	if p.raw != nil {
		return p.raw
	}
	return p.b
}

// queued is how many transfers wait for blocks.
func (b *Buffers) queued() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue)
}
