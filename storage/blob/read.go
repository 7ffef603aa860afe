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
		return nil, r.bad
	}
	r.next++
	data, err := ec.Open(buf)
	if err != nil {
		// A corrupt block: the rest of the shard may be fine, but treat the
		// shard as suspect for this read and let the healer rewrite it.
		r.bad = fmt.Errorf("%s stripe %d: %w", r.name, stripe, err)
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
// It reads in blocks from the Buffers: one per data shard while the data
// shards answer, and one per shard once a shard fails and the stripe must
// be rebuilt. The data shards are written to w from those blocks, without
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
	pool := s.buffers()
	held, err := pool.Get(ctx, c.K, c.BlockSize())
	if err != nil {
		return res, err
	}
	defer func() { pool.Put(held...) }()
	bufs := make([][]byte, len(readers))
	copy(bufs, held)
	stripeBytes := int64(c.StripeSize())
	first, last := offset/stripeBytes, (offset+length-1)/stripeBytes
	for st := first; st <= last; st++ {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		shards, err := s.readStripe(ctx, c, readers, bufs, st)
		if errors.Is(err, errNeedBuffers) {
			// A shard failed: from here on the stripe may need any shard,
			// and a block for each to rebuild into. The data blocks go
			// back first, so that this read never waits holding some.
			pool.Put(held...)
			held = nil
			if held, err = pool.Get(ctx, len(readers), c.BlockSize()); err != nil {
				return res, err
			}
			copy(bufs, held)
			shards, err = s.readStripe(ctx, c, readers, bufs, st)
		}
		if err != nil {
			return res, err
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
		if err := writeStripe(w, shards[:c.K], int64(c.ShardSize), lo, hi); err != nil {
			return res, err
		}
	}
	for i, r := range readers {
		if r.bad != nil {
			res.Degraded = true
			res.BadShards = append(res.BadShards, i)
			res.Errors = append(res.Errors, r.bad)
		}
	}
	return res, nil
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
