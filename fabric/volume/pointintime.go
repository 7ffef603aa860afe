package volume

import (
	"context"
	"errors"

	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// Every copy of a live volume — a snapshot, a clone, an upload to an
// image, a backup — reads it at one instant that holds every write
// acknowledged before the copy was asked for, wherever its writer is. A
// snapshot makes its row and blocks under the hold (createSnapshot); the
// other copies read a block-store snapshot made here.

// snapshotBlocks makes block-store snapshot snap of volume id's blocks:
// held on the node that writes it when that is another node
// (writtenElsewhere), as a snapshot of it is, so that it holds the
// writes that node has acknowledged and not yet flushed; straight
// otherwise (the block store flushes a volume open here itself). The
// caller deletes snap.
func (s *Service) snapshotBlocks(ctx context.Context, snap, id string) error {
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return err
	}
	if vol := store.Get[volstate.Volume](tx, volstate.VolumeTable, id); vol != nil {
		held, elsewhere, err := s.writtenElsewhere(ctx, vol)
		if err != nil {
			return err
		}
		if elsewhere {
			return s.snapshotHeldOne(ctx, held, snap, vol)
		}
	}
	return s.cfg.Blocks.Snapshot(ctx, snap, id)
}

// snapshotHeldOne makes snap of vol while vol is held on every up node.
func (s *Service) snapshotHeldOne(ctx context.Context, held groupSnapshotter, snap string, vol *volstate.Volume) error {
	deadline, release, err := s.holdGroup(ctx, snap, "volume", []*volstate.Volume{vol})
	defer release()
	if err != nil {
		return err
	}
	return snapshotHeld(ctx, held, []volstate.Snapshot{{ID: snap, VolumeID: vol.ID}}, deadline)
}

// copySource names what a copy of from (a snapshot, or a volume) reads:
// from itself, unless it is a volume written on another node, which is
// read through block-store snapshot tmp made held. done deletes tmp.
func (s *Service) copySource(ctx context.Context, tmp, from string) (src string, done func(), err error) {
	done = func() {}
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return "", done, err
	}
	vol := store.Get[volstate.Volume](tx, volstate.VolumeTable, from)
	if vol == nil {
		return from, done, nil // a snapshot: it does not change
	}
	held, elsewhere, err := s.writtenElsewhere(ctx, vol)
	if err != nil || !elsewhere {
		return from, done, err
	}
	done = func() {
		if err := s.cfg.Blocks.Delete(context.WithoutCancel(ctx), tmp); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Warn("volume: delete the snapshot a copy read", "snapshot", tmp, "volume", from, "err", err)
		}
	}
	if err := s.snapshotHeldOne(ctx, held, tmp, vol); err != nil {
		done()
		return "", func() {}, err
	}
	return tmp, done, nil
}

// cloneBlocks makes volume id's blocks a copy-on-write copy of from (a
// snapshot or a volume), read at one instant (copySource).
func (s *Service) cloneBlocks(ctx context.Context, id, from string) error {
	src, done, err := s.copySource(ctx, "copy-"+id, from)
	if err != nil {
		return err
	}
	defer done()
	return s.cfg.Blocks.Clone(ctx, id, src)
}

// backupBlocks writes job's backup; a volume written on another node is
// read through a snapshot made held (copySource). Any other volume is
// snapshotted by the backup store itself, straight.
func (s *Service) backupBlocks(ctx context.Context, job BackupJob) (int, int64, error) {
	if !job.Snapshot {
		src, done, err := s.copySource(ctx, "backup-held-"+job.Prefix, job.Source)
		if err != nil {
			return 0, 0, err
		}
		defer done()
		job.Source, job.Snapshot = src, src != job.Source
	}
	return s.cfg.Backups.Backup(ctx, job)
}
