package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rackstack/rackstack/storage/disk"
	"github.com/rackstack/rackstack/storage/ec"
	"github.com/rackstack/rackstack/storage/placement"
)

// shardReader reads blocks of one shard file, reopening at an offset when a
// read is not sequential.
type shardReader struct {
	s     *Store
	d     placement.Disk
	name  string
	rc    io.ReadCloser
	next  int64 // the stripe the open stream is positioned at
	block int
	bad   error // set once the shard proved unreadable
	// blocks asks for a local shard's blocks to be read with direct I/O
	// into the read's own blocks (see readDirect); br is its reader
	// then, and rc is not used.
	blocks bool
	br     *disk.BlockReader
	// Ownership by a read goroutine (take, give, orphan: hedge.go).
	mu            sync.Mutex
	reading       bool // a read goroutine owns the reader
	orphaned      bool // its stripe was made without it
	closeWhenDone bool // its GET ended while it was out
	nodeDown      int8 // 0 unknown, 1 up, 2 down (shunned)
}

func (r *shardReader) open(ctx context.Context, stripe int64) error {
	if r.rc != nil {
		r.rc.Close()
		r.rc = nil
	}
	off := stripe * int64(r.block)
	var rc io.ReadCloser
	var err error
	if local, ok := r.s.Local[r.d.ID]; ok && r.d.Node == r.s.Node {
		if bo, ok := local.(disk.BlockOpener); ok && r.blocks {
			br, err := bo.OpenBlocks(r.name)
			if err != nil {
				r.s.diskError(r.d, err)
				return err
			}
			r.br = br
			return nil
		}
		rc, err = local.Open(r.name, off)
	} else if r.s.Transport != nil {
		rc, err = r.s.Transport.Open(ctx, r.d, r.name, off)
	} else {
		err = fmt.Errorf("disk %s of node %s is not reachable from here", r.d.ID, r.d.Node)
	}
	if err != nil {
		r.s.diskError(r.d, err)
		return err
	}
	r.rc, r.next = rc, stripe
	// A shard is read front to back: let the kernel read ahead further.
	fadvise(rc, 0, 0, unix.FADV_SEQUENTIAL)
	return nil
}

// local reports whether the shard is on one of this node's disks.
func (r *shardReader) local() bool {
	_, ok := r.s.Local[r.d.ID]
	return ok && r.d.Node == r.s.Node
}

// willNeed asks the kernel to start reading stripe's block of a local
// shard into the page cache, opening the shard at stripe if it is not
// open yet. It reports false if the shard is (now known to be) bad, so
// that the caller advises another shard instead, as it does when the
// shard is read only as a last resort (shunned); a remote shard is left
// to its peer.
func (r *shardReader) willNeed(ctx context.Context, stripe int64) bool {
	if !r.usable() || r.shunned() {
		return false
	}
	if !r.local() {
		return true
	}
	if r.rc == nil && r.br == nil {
		if err := r.open(ctx, stripe); err != nil {
			r.bad = err
			return false
		}
	}
	if r.br != nil {
		// Direct reads do not go through the page cache: nothing to
		// read into it ahead of them.
		return true
	}
	off := stripe * int64(r.block)
	if fadvise(r.rc, off, int64(r.block), unix.FADV_WILLNEED) && adviseHook != nil {
		adviseHook(r.name, off)
	}
	return true
}

// adviseHook, if set (by tests), sees every block willNeed advised.
var adviseHook func(name string, off int64)

// fadvise gives the kernel advice on rc's file, if it is one; it reports
// whether it did.
func fadvise(rc io.ReadCloser, off, n int64, advice int) bool {
	sc, ok := rc.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var ferr error
	if err := raw.Control(func(fd uintptr) { ferr = unix.Fadvise(int(fd), off, n, advice) }); err != nil {
		return false
	}
	return ferr == nil
}

// read returns the verified data of stripe's block into buf.
func (r *shardReader) read(ctx context.Context, stripe int64, buf []byte) ([]byte, error) {
	if r.bad != nil {
		return nil, r.bad
	}
	if r.blocks && r.rc == nil && r.br == nil {
		if err := r.open(ctx, stripe); err != nil {
			r.bad = err
			return nil, err
		}
	}
	if r.br != nil {
		return r.readDirect(stripe, buf)
	}
	if r.rc == nil || r.next != stripe {
		if err := r.open(ctx, stripe); err != nil {
			r.bad = err
			return nil, err
		}
	}
	if _, err := io.ReadFull(r.rc, buf); err != nil {
		r.bad = fmt.Errorf("read %s: %w", r.name, err)
		r.s.diskError(r.d, r.bad)
		return nil, r.bad
	}
	r.next++
	data, err := ec.Open(buf)
	if err != nil {
		// A corrupt block: the rest of the shard may be fine, but treat the
		// shard as suspect for this read and let the healer rewrite it.
		r.bad = fmt.Errorf("%s stripe %d: %w", r.name, stripe, err)
		r.s.diskError(r.d, r.bad)
		return nil, r.bad
	}
	return data, nil
}

// readDirect reads stripe's block with the shard's BlockReader into
// buf's memory: with direct I/O, the pages around the block land in buf
// from its first page boundary, which its slack (two pages past its
// length, see Buffers) leaves room for, and the block lies among them
// at its page offset, its checksum just before its data. The checksum
// is checked as in read: a bad block makes the shard bad for this read
// and the stripe is rebuilt from the others.
func (r *shardReader) readDirect(stripe int64, buf []byte) ([]byte, error) {
	blk, direct, err := r.br.ReadBlock(buf, stripe*int64(r.block), r.block)
	if blockReadHook != nil {
		blockReadHook(r.name, stripe, direct)
	}
	if err != nil {
		r.bad = fmt.Errorf("read %s: %w", r.name, err)
		r.s.diskError(r.d, r.bad)
		return nil, r.bad
	}
	if direct {
		r.s.directRead.Add(int64(len(blk)))
	}
	data, err := ec.Open(blk)
	if err != nil {
		r.bad = fmt.Errorf("%s stripe %d: %w", r.name, stripe, err)
		r.s.diskError(r.d, r.bad)
		return nil, r.bad
	}
	return data, nil
}

// DirectReadBytes is how many bytes of shard blocks this node's GETs have
// read from its disks with direct I/O, past the page cache (readDirect:
// GETs that start while other transfers hold blocks), since it started.
func (s *Store) DirectReadBytes() int64 { return s.directRead.Load() }

// blockReadHook, if set (by tests), sees every block readDirect read,
// and whether it was read with direct I/O.
var blockReadHook func(name string, stripe int64, direct bool)

func (r *shardReader) close() {
	if r.rc != nil {
		r.rc.Close()
		r.rc = nil
	}
	if r.br != nil {
		r.br.Close()
		r.br = nil
	}
}

// ReadResult says how a read went.
type ReadResult struct {
	Degraded  bool    // some shard was missing or corrupt: heal the blob
	BadShards []int   // which
	Errors    []error // why
	// Slow are shards whose reads were given up on for being late and
	// had not returned when the read ended (see readStripe): not known
	// bad, so no reason to heal.
	Slow []int
}

// Get writes bytes [offset, offset+length) of a blob of size bytes to w.
//
// It reads in blocks from the Buffers: two sets (this stripe and the next)
// of one per data shard while the data shards answer, and of one per shard
// once a shard fails and stripes must be rebuilt. The data shards are written to w from those blocks, without
// joining them first.
func (s *Store) Get(ctx context.Context, key string, l Layout, size, offset, length int64, w io.Writer) (ReadResult, error) {
	res, err := s.GetRanges(ctx, []Range{{Key: key, Layout: l, Size: size, Offset: offset, Length: length}}, w)
	return res[0], err
}

// Range is bytes [Offset, Offset+Length) of the blob Key of Size bytes.
type Range struct {
	Key    string
	Layout Layout
	Size   int64
	Offset int64
	Length int64
}

// GetRanges writes ranges of several blobs, one after the other, to w, as
// Get writes one: the blobs must share their coding (K, M and ShardSize).
// The next stripe is read while this one is written across the blobs'
// boundaries too, so the parts of a multipart object stream as one blob
// does instead of each part waiting for its first stripe. It returns a
// ReadResult per range (zero for those it did not reach).
func (s *Store) GetRanges(ctx context.Context, rs []Range, w io.Writer) ([]ReadResult, error) {
	res := make([]ReadResult, len(rs))
	if len(rs) == 0 {
		return res, nil
	}
	l0 := rs[0].Layout
	var stripes int64 // in all ranges
	c, err := ec.New(l0.K, l0.M, l0.ShardSize)
	if err != nil {
		return res, err
	}
	stripeBytes := int64(c.StripeSize())
	for _, r := range rs {
		if r.Offset < 0 || r.Length < 0 || r.Offset+r.Length > r.Size {
			return res, fmt.Errorf("range %d+%d outside blob of %d bytes", r.Offset, r.Length, r.Size)
		}
		if r.Layout.K != l0.K || r.Layout.M != l0.M || r.Layout.ShardSize != l0.ShardSize || len(r.Layout.Disks) != len(l0.Disks) {
			return res, fmt.Errorf("blob %s is coded %d+%d in %d-byte shards, not as %s", r.Key, r.Layout.K, r.Layout.M, r.Layout.ShardSize, rs[0].Key)
		}
		if r.Length > 0 {
			stripes += (r.Offset+r.Length-1)/stripeBytes - r.Offset/stripeBytes + 1
		}
	}
	if stripes == 0 {
		return res, nil
	}
	// The next stripe is read from the disks while this one is written to
	// w: two sets of blocks when there is a next stripe.
	sets := 1
	if stripes > 1 {
		sets = 2
	}
	pool := s.buffers()
	held, err := pool.Get(ctx, sets*c.K, c.BlockSize())
	if err != nil {
		return res, err
	}
	// Local shards are read with direct I/O while other transfers hold
	// half the budget or more (see readsDirect).
	direct := readsDirect(c) && busyBuffers(pool, int64(len(held)*c.BlockSize()))
	// readers[i] are range i's shard readers, made and closed by the
	// read-ahead as it reaches and leaves the range; read here only once
	// it has stopped.
	readers := make([][]*shardReader, len(rs))
	rctx, cancel := context.WithCancel(ctx)
	ahead := make(chan aheadStripe, sets+1)
	stopped := make(chan struct{})
	defer func() {
		cancel()
		<-stopped
		pool.Put(held...)
	}()
	go func() {
		defer close(stopped)
		held = s.readAhead(rctx, c, rs, readers, held, sets, direct, ahead)
	}()
	for _, r := range rs {
		if r.Length == 0 {
			continue
		}
		first, last := r.Offset/stripeBytes, (r.Offset+r.Length-1)/stripeBytes
		for st := first; st <= last; st++ {
			var as aheadStripe
			select {
			case as = <-ahead:
			case <-ctx.Done():
				return res, ctx.Err()
			}
			if as.err != nil {
				return res, as.err
			}
			inStripe := stripeBytes
			if end := r.Size - st*stripeBytes; end < inStripe {
				inStripe = end
			}
			lo, hi := int64(0), inStripe
			if st == first {
				lo = r.Offset - st*stripeBytes
			}
			if st == last {
				hi = r.Offset + r.Length - st*stripeBytes
			}
			err := writeStripe(w, as.shards[:c.K], int64(c.ShardSize), lo, hi)
			as.done()
			if err != nil {
				return res, err
			}
		}
	}
	// The reader's last word on the shards, once it is done with them.
	<-stopped
	for ri := range rs {
		for i, r := range readers[ri] {
			if r.busy() {
				// Given up on, and still out: not known bad.
				res[ri].Slow = append(res[ri].Slow, i)
			} else if r.bad != nil {
				res[ri].Degraded = true
				res[ri].BadShards = append(res[ri].BadShards, i)
				res[ri].Errors = append(res[ri].Errors, r.bad)
			}
		}
	}
	return res, nil
}

// aheadStripe is one stripe read ahead: its data shards, or why it could
// not be read. done hands its blocks back for the next stripe.
type aheadStripe struct {
	shards [][]byte
	err    error
	done   func()
}

// readAhead reads the stripes of ranges rs in order into sets sets of K
// blocks taken from held, each stripe into a set the writer has given
// back, and sends them on out. Once a shard fails it waits for every set
// to come back and trades its blocks for as many sets of a block per
// shard (never waiting for blocks while holding some), so a degraded read
// still reads the next stripe while the writer sends this one: one set at
// a time made each stripe wait for the client, then the client for the
// disks. It makes readers[i] when it reaches range i and closes them when
// it leaves it. It returns the blocks it holds in the end; it stops at the
// first error, or when ctx ends, after sending it.
func (s *Store) readAhead(ctx context.Context, c *ec.Coder, rs []Range, readers [][]*shardReader, held [][]byte, sets int, direct bool, out chan<- aheadStripe) [][]byte {
	n := c.K + c.M
	free := make(chan int, sets)
	bufs := make([][][]byte, sets)
	for i := range sets {
		bufs[i] = make([][]byte, n)
		copy(bufs[i], held[i*c.K:(i+1)*c.K])
		free <- i
	}
	var open []*shardReader
	sp := &spares{pool: s.buffers(), held: &held, size: c.BlockSize()}
	pf := &prefetcher{s: s, c: c, rs: rs, readers: readers, ahead: max(2, prefetchBytes/int64(c.StripeSize())), direct: direct}
	defer func() {
		// The ranges ahead the prefetcher opened, as well as this one.
		for _, rd := range readers {
			for _, r := range rd {
				r.release()
			}
		}
	}()
	fail := func(err error) [][]byte {
		out <- aheadStripe{err: err}
		return held
	}
	stripeBytes := int64(c.StripeSize())
	for ri, rg := range rs {
		if rg.Length == 0 {
			continue
		}
		for _, r := range open {
			r.release()
		}
		open = pf.readersOf(ri)
		first, last := rg.Offset/stripeBytes, (rg.Offset+rg.Length-1)/stripeBytes
		for st := first; st <= last; st++ {
			var set int
			select {
			case set = <-free:
			case <-ctx.Done():
				return fail(ctx.Err())
			}
			pf.next(ctx)
			shards, err := s.readStripe(ctx, c, open, bufs[set], st, make([][]byte, n), sp)
			if errors.Is(err, errNeedBuffers) {
				for range sets - 1 {
					select {
					case <-free:
					case <-ctx.Done():
						return fail(ctx.Err())
					}
				}
				// Blocks for the other shards, if the budget has them
				// now: the blocks this stripe has read stay, and are not
				// read again.
				if extra := s.buffers().TryGet(sets*c.M, c.BlockSize()); extra != nil {
					held = append(held, extra...)
					for i := range sets {
						copy(bufs[i][c.K:], extra[i*c.M:(i+1)*c.M])
						if i != set {
							free <- i
						}
					}
					if shards, err = s.readStripe(ctx, c, open, bufs[set], st, shards, sp); err != nil {
						return fail(err)
					}
					back := free
					out <- aheadStripe{shards: shards, done: func() { back <- set }}
					continue
				}
				s.buffers().Put(held...)
				held = nil
				if held, err = s.buffers().Get(ctx, sets*n, c.BlockSize()); err != nil {
					return fail(err)
				}
				bufs = make([][][]byte, sets)
				free = make(chan int, sets)
				for i := range sets {
					bufs[i] = held[i*n : (i+1)*n : (i+1)*n]
					if i > 0 {
						free <- i
					}
				}
				set = 0
				shards, err = s.readStripe(ctx, c, open, bufs[0], st, make([][]byte, n), sp)
			}
			if err != nil {
				return fail(err)
			}
			back := free
			out <- aheadStripe{shards: shards, done: func() { back <- set }}
		}
	}
	return held
}

// prefetchBytes is how far ahead of the stripe being read, in data
// bytes, a GET asks the kernel to read its shards (posix_fadvise
// WILLNEED), across the boundaries of its ranges: the kernel's own
// read-ahead starts cold at every shard file, so each part of a multipart
// object (its own blob, 4 MiB per shard file for minio-go's 16 MiB parts)
// began with every disk idle while the first blocks of its shards were
// read. The pages come from the page cache, not the Buffers budget, and
// at most this much per GET is read before the client has taken the
// stripes before it.
const prefetchBytes = 16 << 20

// prefetcher advises the blocks a GetRanges read-ahead will read next:
// for each stripe, those of the first K shards not known bad (the ones
// readStripe reads), so a missing data shard's parity stands in for it.
type prefetcher struct {
	s       *Store
	c       *ec.Coder
	rs      []Range
	readers [][]*shardReader // per range, made by readersOf
	direct  bool             // local shards are read with direct I/O (readDirect)
	ahead   int64            // stripes advised past the one being read
	read    int64            // stripes the read-ahead has started
	advised int64            // stripes advised
	ri      int              // the next stripe to advise: range ri's stripe st
	st      int64
}

// readersOf returns range ri's shard readers, making them the first time.
func (p *prefetcher) readersOf(ri int) []*shardReader {
	if p.readers[ri] == nil {
		rg := p.rs[ri]
		rd := make([]*shardReader, len(rg.Layout.Disks))
		for i, d := range rg.Layout.Disks {
			rd[i] = &shardReader{s: p.s, d: d, name: ShardName(rg.Key, i), block: p.c.BlockSize(), blocks: p.direct}
		}
		p.readers[ri] = rd
	}
	return p.readers[ri]
}

// next is called as the read-ahead starts a stripe: it advises the
// stripes up to ahead past it that are not advised yet.
func (p *prefetcher) next(ctx context.Context) {
	p.read++
	stripeBytes := int64(p.c.StripeSize())
	for p.advised < p.read+p.ahead && p.ri < len(p.rs) {
		rg := p.rs[p.ri]
		if rg.Length == 0 {
			p.ri, p.st = p.ri+1, 0
			continue
		}
		first, last := rg.Offset/stripeBytes, (rg.Offset+rg.Length-1)/stripeBytes
		p.st = max(p.st, first)
		if p.st > last {
			p.ri, p.st = p.ri+1, 0
			continue
		}
		advised := 0
		for _, r := range p.readersOf(p.ri) {
			if advised == p.c.K {
				break
			}
			if r.willNeed(ctx, p.st) {
				advised++
			}
		}
		p.st++
		p.advised++
	}
}

// writeStripe writes bytes [lo, hi) of a stripe, given as its data shards
// of shardSize bytes, to w.
func writeStripe(w io.Writer, data [][]byte, shardSize, lo, hi int64) error {
	for i, d := range data {
		start, end := int64(i)*shardSize, int64(i+1)*shardSize
		from, to := max(lo, start), min(hi, end)
		if from >= to {
			continue
		}
		if _, err := w.Write(d[from-start : to-start]); err != nil {
			return err
		}
	}
	return nil
}

// errNeedBuffers means a stripe needs a shard that has no block to be read
// into: the caller gives it one per shard and reads the stripe again.
var errNeedBuffers = errors.New("stripe needs a block for every shard")

// spares lends a stripe's read blocks beyond its set, without waiting:
// one for a parity shard read as a hedge (when the Buffers have room),
// and one in place of a block that an orphaned read keeps. Both join
// held, which the GET gives back at its end; an orphaned block is not
// in held, and never handed out again.
type spares struct {
	pool *Buffers
	held *[][]byte
	size int // block size
}

func (sp *spares) spare() []byte {
	b := sp.pool.TryGet(1, sp.size)
	if b == nil {
		return nil
	}
	*sp.held = append(*sp.held, b[0])
	return b[0]
}

// orphan replaces b, which a read given up on keeps, in held.
func (sp *spares) orphan(b []byte) []byte {
	nb := sp.pool.replace(b)
	for j, h := range *sp.held {
		if len(h) > 0 && &h[0] == &b[0] {
			(*sp.held)[j] = nb
			break
		}
	}
	return nb
}

// shardRead is the outcome of one shard's block read.
type shardRead struct {
	i    int
	data []byte
	err  error
}

// readStripe fetches K good blocks of stripe st and reconstructs the
// data shards. shards holds the blocks of st read so far (none, or those
// read before errNeedBuffers, which it returns with them).
//
// It reads the data shards in parallel, a shard that fails being
// replaced by the next at once. When a read has not answered within the
// hedge delay (a few times the recent median, see hedge.go) it reads one
// more shard beside it, and so on while any is left; the first K blocks
// verified make the stripe, and the reads still out are orphaned: each
// keeps its reader and its block (replaced in the set by a new one)
// until it returns, and its disk is read last meanwhile (orphaned).
// Shards on nodes the cluster holds down, or on disks recently read
// past, are read only when the others cannot make the stripe.
func (s *Store) readStripe(ctx context.Context, c *ec.Coder, readers []*shardReader, bufs [][]byte, st int64, shards [][]byte, sp *spares) ([][]byte, error) {
	want := c.K
	got := 0
	for _, sh := range shards {
		if sh != nil {
			got++
		}
	}
	lat := s.latencies(c.BlockSize())
	results := make(chan shardRead, len(readers)) // each reader is read at most once per call
	tried := make([]bool, len(readers))
	var out []int // reads in flight
	// pick returns the next shard to read, -1 if none: the first not
	// shunned, or (if last) the first shunned.
	pick := func(last bool) int {
		fallback := -1
		for i, r := range readers {
			if tried[i] || shards[i] != nil || !r.usable() {
				continue
			}
			if !r.shunned() {
				return i
			}
			if fallback < 0 {
				fallback = i
			}
		}
		if last {
			return fallback
		}
		return -1
	}
	launch := func(i int) {
		r, buf := readers[i], bufs[i]
		tried[i] = true
		out = append(out, i)
		r.take()
		go func() {
			t0 := time.Now()
			data, err := r.read(ctx, st, buf)
			took := time.Since(t0)
			switch orphaned := r.give(); {
			case orphaned:
				s.orphanDone(r.d, err == nil)
			case err == nil:
				lat.add(took)
			}
			results <- shardRead{i: i, data: data, err: err}
		}()
	}
	// orphanOut gives up on the reads in flight.
	orphanOut := func() {
		for _, i := range out {
			if readers[i].orphan() {
				bufs[i] = sp.orphan(bufs[i])
			}
			// else it has just returned: it is done with its block, and
			// its result (not needed) waits in results.
		}
		out = nil
	}
	var timer *time.Timer
	var hedge <-chan time.Time
	answered := 0 // reads of this call that returned
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for got < want {
		// Read as many shards as the stripe still needs.
		for got+len(out) < want {
			i := pick(true)
			if i < 0 {
				break
			}
			if bufs[i] == nil {
				bufs[i] = sp.spare()
			}
			if bufs[i] == nil {
				if len(out) > 0 {
					break // the reads out may make it yet
				}
				return shards, errNeedBuffers
			}
			launch(i)
		}
		if len(out) == 0 {
			break
		}
		if timer == nil && !noHedges {
			timer = time.NewTimer(lat.delay())
			hedge = timer.C
		}
		select {
		case res := <-results:
			answered++
			out = slices.DeleteFunc(out, func(i int) bool { return i == res.i })
			if res.err == nil {
				shards[res.i] = res.data
				got++
			}
			// The delay runs from the last shard to answer: reads
			// slowed together (a busy CPU, a busy disk) keep answering
			// and are not hedged, one that stopped is.
			if timer != nil && hedge != nil {
				timer.Reset(lat.delay())
			}
		case <-hedge:
			if answered == 0 {
				// Not one read of the stripe has answered: the node
				// itself is slow (its CPU, its disks), not one shard.
				timer.Reset(lat.delay())
				continue
			}
			i := pick(false)
			if i < 0 {
				hedge = nil // nothing to hedge with: wait on
				continue
			}
			if bufs[i] == nil {
				bufs[i] = sp.spare()
			}
			if bufs[i] == nil {
				// No block for it without waiting, which a read holding
				// blocks must not do: give up on the slow reads and let
				// the caller find a block per shard.
				orphanOut()
				return shards, errNeedBuffers
			}
			launch(i)
			s.hedge.hedges.Add(1)
			timer.Reset(lat.delay())
		case <-ctx.Done():
			orphanOut()
			return nil, ctx.Err()
		}
	}
	orphanOut()
	if got < want {
		var errs []error
		for _, r := range readers {
			if !r.busy() && r.bad != nil {
				errs = append(errs, r.bad)
			}
		}
		return nil, fmt.Errorf("stripe %d: %w: %w", st, ec.ErrTooFewShards, errors.Join(errs...))
	}
	// Give missing shards their (unused) read buffer to be rebuilt into,
	// so reconstruction does not allocate per stripe.
	for i := range shards {
		if shards[i] == nil && bufs[i] != nil {
			shards[i] = bufs[i][4:4]
		} else if shards[i] == nil && i < c.K {
			return shards, errNeedBuffers
		}
	}
	if err := c.Reconstruct(shards, true); err != nil {
		return nil, err
	}
	return shards, nil
}

// readsDirect reports whether a GET of blobs coded by c may read its
// local shards with direct I/O (readDirect): when their blocks have the
// Buffers' slack (minPlaced and up: an object's 1 MiB shard blocks), so
// the pages around a block fit in its buffer. GetRanges does so only
// while other transfers hold blocks too, when the node's CPU is what
// bounds it: a direct read has one stripe (K blocks) in flight per GET,
// where the kernel's read-ahead keeps megabytes per shard file in
// flight, so a lone GET from a busy disk read at a third of the speed
// in process (the copy costs it CPU it has to spare). Smaller blocks,
// partial reads (ReadAt), heal, scrub, moves and shards read for a peer
// go through the page cache.
//
// "While other transfers hold blocks" was once any other transfer; on a
// quieter node eight GETs at once read a third slower direct than through
// the page cache (rackbench storage, 64 MiB GETs at c=8 through minio-go:
// 1,088-1,376 against 1,753-2,106 MiB/s, at 0.45-0.57 against 0.54-0.64
// CPU ms per MiB), the disk's queue being the bound there, not the CPU.
// So it is now half the Buffers' budget held by others (busyBuffers):
// about eight other 64 MiB GETs of minio-go's parts.
func readsDirect(c *ec.Coder) bool {
	return c.BlockSize() >= minPlaced && !noDirectReads
}

// busyBuffers reports whether transfers other than one holding own bytes
// of pool hold half its budget or more: many large transfers at once,
// enough to keep the disks' queues full without the kernel's read-ahead,
// so that the CPU the page cache's copy costs is what bounds the node.
func busyBuffers(pool *Buffers, own int64) bool {
	return pool.Out()-own >= pool.Budget()/2
}

// noDirectReads turns direct reads off (a benchmark compares).
var noDirectReads bool
