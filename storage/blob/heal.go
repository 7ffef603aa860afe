package blob

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/rackstack/rackstack/storage/ec"
)

// ErrHealStopped is returned by HealPaced when its pace stopped it.
var ErrHealStopped = errors.New("heal stopped by its pace")

// Verify reads every block of every shard of a blob and returns the shards
// that are missing or corrupt.
func (s *Store) Verify(ctx context.Context, key string, l Layout, size int64) ([]int, error) {
	c, err := ec.New(l.K, l.M, l.ShardSize)
	if err != nil {
		return nil, err
	}
	stripes := c.Stripes(size)
	var bad []int
	buf := make([]byte, c.BlockSize())
	for i, d := range l.Disks {
		r := &shardReader{s: s, d: d, name: ShardName(key, i), block: c.BlockSize()}
		if stripes == 0 {
			// An empty blob still has (empty) shard files; check they exist.
			if err := r.open(ctx, 0); err != nil {
				bad = append(bad, i)
			}
		}
		for st := int64(0); st < stripes; st++ {
			if _, err := r.read(ctx, st, buf); err != nil {
				bad = append(bad, i)
				break
			}
		}
		r.close()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	return bad, nil
}

// Heal rewrites the missing or corrupt shards of a blob from the others.
// It returns the shards it rewrote.
//
// It reads every shard once: each stripe's blocks are checked as they are
// read, and the bad shards' blocks rebuilt from them and written. A shard
// found missing or corrupt at the first stripe is rewritten in that pass;
// one found corrupt further on (whose earlier blocks were not written) makes
// the pass start over with it among the shards to rewrite, at most M times.
// (It used to verify every shard in a pass of its own, then read K shards
// again to rebuild: twice the reads, beside the foreground reads of a
// degraded blob.)
func (s *Store) Heal(ctx context.Context, key string, l Layout, size int64) ([]int, error) {
	return s.HealPaced(ctx, key, l, size, nil)
}

// HealPaced heals as Heal does, and calls pace, if not nil, before each
// stripe after the first with the data bytes of the stripe before it (so
// the stripes pace has not been told of come to size less what it was
// told). pace waits as long as the caller wants background work to wait
// (a busy node's clients go first) and reports false to stop the heal: it
// then writes nothing and returns ctx's error, or ErrHealStopped.
// (Paced per blob, a heal rebuilt a whole blob at the disks' speed beside
// the reads of clients, then slept.)
func (s *Store) HealPaced(ctx context.Context, key string, l Layout, size int64, pace func(ctx context.Context, n int64) bool) ([]int, error) {
	c, err := ec.New(l.K, l.M, l.ShardSize)
	if err != nil {
		return nil, err
	}
	if c.Stripes(size) == 0 {
		return s.healEmpty(ctx, key, l, size)
	}
	known := map[int]bool{}
	for {
		rewrote, late, err := s.healPass(ctx, c, key, l, size, known, pace)
		if err != nil || late < 0 {
			return rewrote, err
		}
		known[late] = true
		if len(known) > l.M {
			return nil, fmt.Errorf("blob %s: %d shards lost, only %d can be rebuilt: %w", key, len(known), l.M, ec.ErrTooFewShards)
		}
	}
}

// healEmpty rewrites the (empty) shard files of an empty blob that are
// missing.
func (s *Store) healEmpty(ctx context.Context, key string, l Layout, size int64) ([]int, error) {
	bad, err := s.Verify(ctx, key, l, size)
	if err != nil || len(bad) == 0 {
		return nil, err
	}
	if len(bad) > l.M {
		return nil, fmt.Errorf("blob %s: %d shards lost, only %d can be rebuilt: %w", key, len(bad), l.M, ec.ErrTooFewShards)
	}
	var errs []error
	for _, i := range bad {
		sk := s.openSink(ctx, l.Disks[i], ShardName(key, i), l.ShardSize+4)
		if err := sk.finish(s.stallTimeout()); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("heal %s: %w", key, errors.Join(errs...))
	}
	return bad, nil
}

// healPass reads every shard of a blob stripe by stripe and rewrites those
// in known or bad at the first stripe. If a shard turns out bad at a later
// stripe it stops, writes nothing, and returns that shard as late (else
// late is -1).
func (s *Store) healPass(ctx context.Context, c *ec.Coder, key string, l Layout, size int64, known map[int]bool, pace func(context.Context, int64) bool) (rewrote []int, late int, err error) {
	readers := make([]*shardReader, len(l.Disks))
	for i, d := range l.Disks {
		readers[i] = &shardReader{s: s, d: d, name: ShardName(key, i), block: c.BlockSize()}
		if known[i] {
			readers[i].bad = errors.New("being healed")
		}
	}
	defer func() {
		for _, r := range readers {
			r.close()
		}
	}()
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pool := s.buffers()
	bufs := make([][]byte, len(readers))
	for i := range bufs {
		bufs[i] = make([]byte, c.BlockSize())
	}
	var bad []int
	sinks := map[int]*sink{}
	abort := func() {
		cancel()
		for _, i := range bad {
			sinks[i].finish(s.stallTimeout())
		}
	}
	stripeBytes := int64(c.StripeSize())
	for st := int64(0); st < c.Stripes(size); st++ {
		if st > 0 && pace != nil && !pace(hctx, stripeBytes) {
			abort()
			if err := ctx.Err(); err != nil {
				return nil, -1, err
			}
			return nil, -1, ErrHealStopped
		}
		shards := make([][]byte, len(readers))
		var wg sync.WaitGroup
		for i, r := range readers {
			if r.bad != nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if data, err := r.read(hctx, st, bufs[i]); err == nil {
					shards[i] = data
				}
			}()
		}
		wg.Wait()
		good := 0
		for i, r := range readers {
			_, rewriting := sinks[i]
			switch {
			case shards[i] != nil:
				good++
			case st > 0 && !rewriting:
				abort()
				return nil, i, nil
			}
			if st == 0 && r.bad != nil {
				bad = append(bad, i)
				sinks[i] = s.openSink(hctx, l.Disks[i], ShardName(key, i), c.BlockSize())
			}
		}
		if len(bad) == 0 {
			if err := hctx.Err(); err != nil {
				return nil, -1, err
			}
			continue // nothing to rewrite so far: verify the rest
		}
		if good < c.K {
			abort()
			return nil, -1, fmt.Errorf("heal %s: stripe %d: %w", key, st, ec.ErrTooFewShards)
		}
		for _, i := range bad {
			shards[i] = bufs[i][4:4]
		}
		if err := c.Reconstruct(shards, false); err != nil {
			abort()
			return nil, -1, fmt.Errorf("heal %s: %w", key, err)
		}
		blocks, err := pool.Get(hctx, len(bad), c.BlockSize())
		if err != nil {
			abort()
			return nil, -1, fmt.Errorf("heal %s: %w", key, err)
		}
		ls := newLease(pool, blocks, len(blocks))
		for j, i := range bad {
			ec.Seal(blocks[j], shards[i])
			sinks[i].send(piece{b: blocks[j], l: ls}, s.stallTimeout())
		}
	}
	var errs []error
	for _, i := range bad {
		if err := sinks[i].finish(s.stallTimeout()); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, -1, fmt.Errorf("heal %s: %w", key, errors.Join(errs...))
	}
	return bad, -1, nil
}
