package blob

import (
	"context"
	"fmt"

	"github.com/rackstack/rackstack/storage/ec"
)

// Move makes blob key whole on layout to, which differs from from only in
// which disks hold some shards. Shards are copied block by block with their
// checksums verified; a shard that cannot be copied (its disk is gone, a
// block is corrupt) is rebuilt from the others. It returns the bytes it
// copied. The shards on from's disks are left in place: the caller deletes
// them once the new layout is recorded.
func (s *Store) Move(ctx context.Context, key string, from, to Layout, size int64) (int64, error) {
	if from.K != to.K || from.M != to.M || from.ShardSize != to.ShardSize || len(from.Disks) != len(to.Disks) {
		return 0, fmt.Errorf("move %s: layouts differ in coding", key)
	}
	c, err := ec.New(from.K, from.M, from.ShardSize)
	if err != nil {
		return 0, err
	}
	var copied int64
	for i := range from.Disks {
		if from.Disks[i] == to.Disks[i] {
			continue
		}
		n, err := s.copyShard(ctx, c, key, i, from, to, size)
		if err != nil {
			if s.Log != nil {
				s.Log.Info("shard not copied; it will be rebuilt", "blob", key, "shard", i, "err", err)
			}
			continue
		}
		copied += n
	}
	if _, err := s.Heal(ctx, key, to, size); err != nil {
		return copied, err
	}
	return copied, nil
}

func (s *Store) copyShard(ctx context.Context, c *ec.Coder, key string, i int, from, to Layout, size int64) (int64, error) {
	name := ShardName(key, i)
	r := &shardReader{s: s, d: from.Disks[i], name: name, block: c.BlockSize()}
	defer r.close()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pool := s.buffers()
	sk := s.openSink(cctx, to.Disks[i], name, c.BlockSize())
	buf := make([]byte, c.BlockSize())
	var n int64
	var rerr error
	for st := int64(0); st < c.Stripes(size); st++ {
		data, err := r.read(cctx, st, buf)
		if err != nil {
			rerr = err
			cancel()
			break
		}
		blocks, err := pool.Get(cctx, 1, c.BlockSize())
		if err != nil {
			rerr = err
			cancel()
			break
		}
		ec.Seal(blocks[0], data)
		sk.send(piece{b: blocks[0], l: newLease(pool, blocks, 1)}, s.stallTimeout())
		n += int64(len(blocks[0]))
	}
	werr := sk.finish(s.stallTimeout())
	if rerr != nil {
		return 0, rerr
	}
	return n, werr
}
