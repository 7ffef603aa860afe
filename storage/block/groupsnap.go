package block

import (
	"context"
	"fmt"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

// Group snapshots: several volumes' snapshots in one command, so they are
// of one point in Raft's order (DESIGN.md, "Group snapshots"). The
// volumes' writers are held by the caller; nothing here flushes.

const cmdSnapshotGroup = "block.volume.snapshot_group"

// SnapshotPair names a snapshot to make and its volume.
type SnapshotPair struct {
	ID     string `json:"id"`
	Volume string `json:"volume"`
}

type snapshotGroupCmd struct {
	Pairs   []SnapshotPair `json:"pairs"`
	Created time.Time      `json:"created"`
}

func applySnapshotGroup(tx *memdb.Txn, c snapshotGroupCmd) (any, error) {
	for _, p := range c.Pairs {
		if _, err := applyClone(tx, cloneCmd{ID: p.ID, From: p.Volume, Kind: KindSnapshot, Created: c.Created}); err != nil {
			return nil, err // the command's transaction is dropped: none is made
		}
	}
	return nil, nil
}

// SnapshotGroup makes every pair's snapshot in one command: all or none.
// Unlike Snapshot it flushes nothing: the caller has flushed and holds
// the volumes' writers.
func (s *Store) SnapshotGroup(ctx context.Context, pairs []SnapshotPair) error {
	for _, p := range pairs {
		if err := checkID(p.ID); err != nil {
			return err
		}
	}
	if _, err := s.propose(ctx, cmdSnapshotGroup, snapshotGroupCmd{Pairs: pairs, Created: s.cfg.Now().UTC()}); err != nil {
		return fmt.Errorf("snapshot %d volumes: %w", len(pairs), err)
	}
	return nil
}
