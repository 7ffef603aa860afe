package blob

import (
	"context"
	"errors"

	"github.com/rackstack/rackstack/storage/disk"
)

// Recycle removes every shard of a blob as Delete does, except that a
// shard on a local disk that recycles (disk.Recycling) is moved into
// that disk's pool, for a later shard to be written over instead of
// into a fresh file. Only a caller that knows nothing names the blob
// and nothing still reads it may: a recycled file's bytes are
// overwritten in place, where a deleted one stays readable through a
// descriptor open on it (storage/block DESIGN.md, *Recycled shard
// files*).
func (s *Store) Recycle(ctx context.Context, key string, l Layout) error {
	var errs []error
	for i, d := range l.Disks {
		name := ShardName(key, i)
		if local, ok := s.Local[d.ID]; ok && d.Node == s.Node {
			if r, ok := local.(disk.Recycler); ok {
				s.files().forget(d, name)
				err := r.Recycle(name)
				s.diskError(d, err)
				if err != nil {
					errs = append(errs, err)
				}
				continue
			}
		}
		if err := s.DeleteShard(ctx, key, i, d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
