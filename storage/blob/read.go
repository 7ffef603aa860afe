package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

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
	return nil
}

// read returns the verified data of stripe's block into buf.
func (r *shardReader) read(ctx context.Context, stripe int64, buf []byte) ([]byte, error) {
	if r.bad != nil {
		return nil, r.bad
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

func (r *shardReader) close() {
	if r.rc != nil {
		r.rc.Close()
	}
}

// ReadResult says how a read went.
type ReadResult struct {
	Degraded  bool    // some shard was missing or corrupt: heal the blob
	BadShards []int   // which
	Errors    []error // why
}

// Get writes bytes [offset, offset+length) of a blob of size bytes to w.
//
// It reads in blocks from the Buffers: two sets (this stripe and the next)
// of one per data shard while the data shards answer, and of one per shard
// once a shard fails and stripes must be rebuilt. The data shards are written to w from those blocks, without
// joining them first.
func (s *Store) Get(ctx context.Context, key string, l Layout, size, offset, length int64, w io.Writer) (ReadResult, error) {
	var res ReadResult
	if offset < 0 || length < 0 || offset+length > size {
		return res, fmt.Errorf("range %d+%d outside blob of %d bytes", offset, length, size)
	}
	if length == 0 {
		return res, nil
	}
	c, err := ec.New(l.K, l.M, l.ShardSize)
	if err != nil {
		return res, err
	}
	readers := make([]*shardReader, len(l.Disks))
	for i, d := range l.Disks {
		readers[i] = &shardReader{s: s, d: d, name: ShardName(key, i), block: c.BlockSize()}
	}
	defer func() {
		for _, r := range readers {
			r.close()
		}
	}()
	stripeBytes := int64(c.StripeSize())
	first, last := offset/stripeBytes, (offset+length-1)/stripeBytes
	// The next stripe is read from the disks while this one is written to
	// w: two sets of blocks when there is a next stripe.
	sets := 1
	if last > first {
		sets = 2
	}
	pool := s.buffers()
	held, err := pool.Get(ctx, sets*c.K, c.BlockSize())
	if err != nil {
		return res, err
	}
	rctx, cancel := context.WithCancel(ctx)
	stripes := make(chan aheadStripe, sets+1)
	stopped := make(chan struct{})
	defer func() {
		cancel()
		<-stopped
		pool.Put(held...)
	}()
	go func() {
		defer close(stopped)
		held = s.readAhead(rctx, c, readers, held, sets, first, last, stripes)
	}()
	for st := first; st <= last; st++ {
		var rs aheadStripe
		select {
		case rs = <-stripes:
		case <-ctx.Done():
			return res, ctx.Err()
		}
		if rs.err != nil {
			return res, rs.err
		}
		inStripe := stripeBytes
		if end := size - st*stripeBytes; end < inStripe {
			inStripe = end
		}
		lo, hi := int64(0), inStripe
		if st == first {
			lo = offset - st*stripeBytes
		}
		if st == last {
			hi = offset + length - st*stripeBytes
		}
		err := writeStripe(w, rs.shards[:c.K], int64(c.ShardSize), lo, hi)
		rs.done()
		if err != nil {
			return res, err
		}
	}
	// The reader's last word on the shards, once it is done with them.
	<-stopped
	for i, r := range readers {
		if r.bad != nil {
			res.Degraded = true
			res.BadShards = append(res.BadShards, i)
			res.Errors = append(res.Errors, r.bad)
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

// readAhead reads stripes first..last into sets sets of K blocks taken
// from held, each stripe into a set the writer has given back, and sends
// them on out. Once a shard fails it waits for every set to come back and
// trades its blocks for as many sets of a block per shard (never waiting
// for blocks while holding some), so a degraded read still reads the next
// stripe while the writer sends this one: one set at a time made each
// stripe wait for the client, then the client for the disks. It
// returns the blocks it holds in the end; it stops at the first error, or
// when ctx ends, after sending it.
func (s *Store) readAhead(ctx context.Context, c *ec.Coder, readers []*shardReader, held [][]byte, sets int, first, last int64, out chan<- aheadStripe) [][]byte {
	free := make(chan int, sets)
	bufs := make([][][]byte, sets)
	for i := range sets {
		bufs[i] = make([][]byte, len(readers))
		copy(bufs[i], held[i*c.K:(i+1)*c.K])
		free <- i
	}
	fail := func(err error) [][]byte {
		out <- aheadStripe{err: err}
		return held
	}
	for st := first; st <= last; st++ {
		var set int
		select {
		case set = <-free:
		case <-ctx.Done():
			return fail(ctx.Err())
		}
		shards, err := s.readStripe(ctx, c, readers, bufs[set], st)
		if errors.Is(err, errNeedBuffers) {
			for range sets - 1 {
				select {
				case <-free:
				case <-ctx.Done():
					return fail(ctx.Err())
				}
			}
			s.buffers().Put(held...)
			held = nil
			if held, err = s.buffers().Get(ctx, sets*len(readers), c.BlockSize()); err != nil {
				return fail(err)
			}
			n := len(readers)
			bufs = make([][][]byte, sets)
			free = make(chan int, sets)
			for i := range sets {
				bufs[i] = held[i*n : (i+1)*n : (i+1)*n]
				if i > 0 {
					free <- i
				}
			}
			set = 0
			shards, err = s.readStripe(ctx, c, readers, bufs[0], st)
		}
		if err != nil {
			return fail(err)
		}
		back := free
		out <- aheadStripe{shards: shards, done: func() { back <- set }}
	}
	return held
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

// readStripe fetches K good blocks of stripe st (data shards first, in
// parallel) and reconstructs the data shards.
func (s *Store) readStripe(ctx context.Context, c *ec.Coder, readers []*shardReader, bufs [][]byte, st int64) ([][]byte, error) {
	shards := make([][]byte, len(readers))
	want := c.K
	next := 0 // next shard index to try
	got := 0
	for got < want && next < len(readers) {
		// Try as many shards as are still needed, in parallel.
		var batch []int
		for next < len(readers) && len(batch) < want-got {
			if readers[next].bad == nil {
				if bufs[next] == nil {
					return nil, errNeedBuffers
				}
				batch = append(batch, next)
			}
			next++
		}
		if len(batch) == 0 {
			break
		}
		var wg sync.WaitGroup
		for _, i := range batch {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				if data, err := readers[i].read(ctx, st, bufs[i]); err == nil {
					shards[i] = data
				}
			}(i)
		}
		wg.Wait()
		got = 0
		for _, sh := range shards {
			if sh != nil {
				got++
			}
		}
	}
	if got < want {
		var errs []error
		for _, r := range readers {
			if r.bad != nil {
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
			return nil, errNeedBuffers
		}
	}
	if err := c.Reconstruct(shards, true); err != nil {
		return nil, err
	}
	return shards, nil
}
