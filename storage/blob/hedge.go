package blob

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rackstack/rackstack/storage/placement"
)

// Hedged reads (see DESIGN.md, "Reads past a slow shard"): a stripe is
// read from its K data shards, and when one has not answered within the
// hedge delay a further shard (parity) is read beside it; the first K
// verified blocks make the stripe, and a read still out then is given up
// on (orphaned) rather than waited for.

const (
	// hedgeFactor times the recent median shard read, or twice the
	// 95th percentile if longer, is how long a stripe waits for its
	// late shards before reading another (see DESIGN.md).
	hedgeFactor = 4
	// hedgeFloor is the shortest hedge delay: below it an extra read
	// costs more than it can save, and a loaded machine's jitter would
	// hedge healthy reads.
	hedgeFloor = 50 * time.Millisecond
	// hedgeCeiling is the longest: a median inflated by a slow period
	// must not make a frozen node cost seconds again.
	hedgeCeiling = time.Second
	// hedgeCold is the delay before any read has been timed: long
	// enough for a first read's TLS handshake with a peer.
	hedgeCold = 250 * time.Millisecond
	// slowFor is how long a disk whose read was given up on, and came
	// back without a block, is read only when the others cannot make
	// the stripe (see orphaned).
	slowFor = 2 * time.Second
	// latencySamples is the window of shard reads the median is taken
	// over, recomputed every latencyEvery of them.
	latencySamples = 64
	latencyEvery   = 8
)

// noHedges turns hedged reads off, for the tests that count the blocks
// a GET reads (a hedge on a loaded machine reads one more).
var noHedges bool

// latencies keeps the durations of recent successful shard block reads
// and their median.
type latencies struct {
	mu     sync.Mutex
	ring   [latencySamples]time.Duration
	n      int
	median atomic.Int64 // time.Duration; 0 until latencyEvery samples
	p95    atomic.Int64 // and the 95th percentile
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ring[l.n%latencySamples] = d
	l.n++
	if l.n%latencyEvery != 0 {
		return
	}
	s := slices.Clone(l.ring[:min(l.n, latencySamples)])
	slices.Sort(s)
	l.median.Store(int64(s[len(s)/2]))
	l.p95.Store(int64(s[len(s)*95/100]))
}

// delay is how long to wait for a shard read before hedging it.
func (l *latencies) delay() time.Duration {
	m := time.Duration(l.median.Load())
	if m == 0 {
		return hedgeCold
	}
	return min(max(hedgeFactor*m, 2*time.Duration(l.p95.Load()), hedgeFloor), hedgeCeiling)
}

// hedging is a Store's state for hedged reads: the recent latencies of
// small (volume extent) and large (object) blocks, which differ by tens
// of times, and the disks recently read past.
type hedging struct {
	small, large latencies
	mu           sync.Mutex
	slow         map[string]time.Time // disk id → read it last until
	out          map[string]int       // disk id → reads given up on, still out
	anySlow      atomic.Bool          // slow or out is not empty (may be stale)
	hedges       atomic.Int64         // shard reads started as hedges
}

// HedgedReads is how many shard blocks this node's GETs have read beside
// a shard that was late (hedges), since it started.
func (s *Store) HedgedReads() int64 { return s.hedge.hedges.Load() }

// anySlow is a lock-free first look for ReadAt's path.
func (s *Store) anySlow() bool { return s.hedge.anySlow.Load() }

func (s *Store) latencies(blockSize int) *latencies {
	if blockSize < minPlaced {
		return &s.hedge.small
	}
	return &s.hedge.large
}

// orphaned notes that a read of disk d was given up on; orphanDone,
// that it returned (ok: with a good block). A disk is read last while
// a read of it given up on is still out (a hung disk, a frozen peer:
// new reads would only hang beside it), and for slowFor after one came
// back without a block (a peer's stalled read fails at the transport's
// timeout or when its GET ends); one that came back good was late, not
// stuck, and clears it.
func (s *Store) orphaned(d placement.Disk) {
	s.hedge.mu.Lock()
	defer s.hedge.mu.Unlock()
	if s.hedge.out == nil {
		s.hedge.out = map[string]int{}
	}
	s.hedge.out[d.ID]++
	s.hedge.anySlow.Store(true)
}

func (s *Store) orphanDone(d placement.Disk, ok bool) {
	s.hedge.mu.Lock()
	defer s.hedge.mu.Unlock()
	if s.hedge.out[d.ID]--; s.hedge.out[d.ID] <= 0 {
		delete(s.hedge.out, d.ID)
	}
	if ok {
		delete(s.hedge.slow, d.ID)
	} else {
		if s.hedge.slow == nil {
			s.hedge.slow = map[string]time.Time{}
		}
		s.hedge.slow[d.ID] = time.Now().Add(slowFor)
	}
	s.hedge.anySlow.Store(len(s.hedge.slow) > 0 || len(s.hedge.out) > 0)
}

func (s *Store) isSlow(d placement.Disk) bool {
	s.hedge.mu.Lock()
	defer s.hedge.mu.Unlock()
	if s.hedge.out[d.ID] > 0 {
		return true
	}
	until, ok := s.hedge.slow[d.ID]
	if ok && time.Now().After(until) {
		delete(s.hedge.slow, d.ID)
		s.hedge.anySlow.Store(len(s.hedge.slow) > 0 || len(s.hedge.out) > 0)
		return false
	}
	return ok
}

// shunned reports whether a reader's shard should be read only when
// the others cannot make a stripe: its node is down by the cluster's
// heartbeats, or a read of its disk was recently given up on.
func (r *shardReader) shunned() bool {
	if r.nodeDown == 0 {
		r.nodeDown = 1
		if r.d.Node != r.s.Node && r.s.NodeUp != nil && !r.s.NodeUp(r.d.Node) {
			r.nodeDown = 2
		}
	}
	return r.nodeDown == 2 || r.s.isSlow(r.d)
}

// A shard reader is owned by one read goroutine at a time while a block
// is read (take/give). A stripe that has its K blocks without it orphans
// the read: the goroutine keeps the reader and its block until the read
// returns, and no one else touches either meanwhile.

// take marks the reader owned by a read goroutine.
func (r *shardReader) take() {
	r.mu.Lock()
	r.reading = true
	r.mu.Unlock()
}

// give ends the read goroutine's ownership; it reports whether the read
// had been orphaned. It closes the reader if its GET has ended meanwhile.
func (r *shardReader) give() (orphaned bool) {
	r.mu.Lock()
	r.reading = false
	orphaned, closeIt := r.orphaned, r.closeWhenDone
	r.orphaned = false
	r.mu.Unlock()
	if closeIt {
		r.close()
	}
	return orphaned
}

// orphan gives up on the read in flight; false if it has just returned
// (its result is then on its way).
func (r *shardReader) orphan() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reading {
		r.orphaned = true
		r.s.orphaned(r.d)
	}
	return r.reading
}

// busy reports whether an orphaned read still owns the reader.
func (r *shardReader) busy() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reading
}

// usable reports whether the reader may be read now: no read owns it
// and it has not proved bad.
func (r *shardReader) usable() bool {
	return !r.busy() && r.bad == nil
}

// release closes the reader at the end of its GET, or leaves that to
// the orphaned read that owns it.
func (r *shardReader) release() {
	r.mu.Lock()
	if r.reading {
		r.closeWhenDone = true
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	r.close()
}

// replace hands out a block of b's length in place of b, which a read
// that was given up on keeps: b is no longer counted (it is never handed
// out again, and goes to the garbage collector when that read returns)
// and the new block is, so the budget's count does not change.
func (b *Buffers) replace(old []byte) []byte {
	return make([]byte, len(old), len(old)+slack(len(old)))
}
