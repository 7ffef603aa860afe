package blob

import (
	"context"
	"errors"
	"fmt"

	"github.com/rackstack/rackstack/storage/ec"
)

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
func (s *Store) Heal(ctx context.Context, key string, l Layout, size int64) ([]int, error) {
	bad, err := s.Verify(ctx, key, l, size)
	if err != nil || len(bad) == 0 {
		return nil, err
	}
	if len(bad) > l.M {
		return nil, fmt.Errorf("blob %s: %d shards lost, only %d can be rebuilt: %w", key, len(bad), l.M, ec.ErrTooFewShards)
	}
	c, err := ec.New(l.K, l.M, l.ShardSize)
	if err != nil {
		return nil, err
	}
	isBad := map[int]bool{}
	for _, i := range bad {
		isBad[i] = true
	}
	readers := make([]*shardReader, len(l.Disks))
	for i, d := range l.Disks {
		readers[i] = &shardReader{s: s, d: d, name: ShardName(key, i), block: c.BlockSize()}
		if isBad[i] {
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
	sinks := map[int]*sink{}
	for _, i := range bad {
		sinks[i] = s.openSink(hctx, l.Disks[i], ShardName(key, i))
	}
	pool := s.buffers()
	bufs := make([][]byte, len(readers))
	for i := range bufs {
		bufs[i] = make([]byte, c.BlockSize())
	}
	var readErr error
	for st := int64(0); st < c.Stripes(size); st++ {
		shards, err := s.readStripe(hctx, c, readers, bufs, st)
		if err == nil {
			for i := range shards {
				if isBad[i] {
					shards[i] = nil
				}
			}
			err = c.Reconstruct(shards, false)
		}
		if err != nil {
			readErr = err
			cancel()
			break
		}
		blocks, err := pool.Get(hctx, len(bad), c.BlockSize())
		if err != nil {
			readErr = err
			cancel()
			break
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
	if readErr != nil {
		return nil, fmt.Errorf("heal %s: %w", key, readErr)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("heal %s: %w", key, errors.Join(errs...))
	}
	return bad, nil
}
