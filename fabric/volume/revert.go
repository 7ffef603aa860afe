package volume

import (
	"context"
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// Statuses of a revert (Cinder's): the volume is reverting and the
// snapshot restoring while the volume's blocks are replaced.
const (
	statusReverting     = "reverting"
	snapStatusRestoring = "restoring"
)

// revert (3.40) reverts an available volume to its latest snapshot, of
// the volume's size (one taken before an extend is refused, as Cinder
// refuses it): its blocks are replaced by a copy-on-write copy of the
// snapshot's, as os-reimage replaces them by a new volume, in the
// background; the volume is reverting and the snapshot restoring
// meanwhile (so it is not deleted under the copy), then both available,
// or the volume error with the reason. The work names its process: if
// that process dies, settle makes the volume error (revert again) and
// the snapshot available.
func (s *Service) revert(w http.ResponseWriter, r *http.Request, arg any) error {
	if err := needVersion(r, 40, "revert"); err != nil {
		return err
	}
	in, err := actionArg(arg, "revert")
	if err != nil {
		return err
	}
	snapID := in.Required("snapshot_id", 36)
	if in.Err != nil {
		return in.Err
	}
	v, err := s.ownVolume(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	latest, tie := latestSnapshot(store.All[volstate.Snapshot](tx, volstate.SnapshotTable, "volume", v.ID))
	switch {
	case latest == nil:
		return badRequest("Volume %s doesn't have any snapshots.", v.ID)
	case latest.ID != snapID && tie == nil:
		return cinderWording{}.BadField("snapshot_id", snapID, "is not the latest snapshot of volume "+v.ID+" ("+latest.ID+" is)")
	case tie != nil:
		// Creation times are kept to the second: which of two taken in
		// one second is the later is not known, so neither is reverted to.
		return badRequest("Invalid snapshot: snapshots %s and %s of volume %s were taken in the same second; which is the latest is not known.", latest.ID, tie.ID, v.ID)
	case v.Size != latest.Size:
		return badRequest("Can't revert volume %s to its latest snapshot %s. The volume size must be equal to the snapshot size.", v.ID, latest.ID)
	}
	if _, err := s.changeSnapshot(r.Context(), latest.ID, func(sn *volstate.Snapshot) error {
		if sn.Status != volstate.SnapStatusAvailable {
			return store.Fault(store.KindConflict, "conflictingRequest", "Invalid snapshot: Snapshot %s status must be available, but current status is %s.", sn.ID, sn.Status)
		}
		sn.Status = snapStatusRestoring
		return nil
	}); err != nil {
		return err
	}
	release := s.carry(v.ID)
	if _, err := s.changeVolume(r.Context(), v.ID, func(v *volstate.Volume) error {
		if v.Status != volstate.StatusAvailable || len(v.Attachments) > 0 {
			return store.Fault(store.KindConflict, "conflictingRequest", "Invalid volume: Volume %s status must be available, but current status is %s.", v.ID, v.Status)
		}
		if v.Size != latest.Size {
			return badRequest("Can't revert volume %s to its latest snapshot %s. The volume size must be equal to the snapshot size.", v.ID, latest.ID)
		}
		v.Status, v.Reason = statusReverting, ""
		s.worked(v)
		return nil
	}); err != nil {
		release()
		s.snapshotRestored(context.WithoutCancel(r.Context()), latest.ID)
		return err
	}
	s.background(func(ctx context.Context) {
		defer release()
		dataErr := s.cfg.Blocks.Delete(ctx, v.ID)
		if dataErr == nil {
			dataErr = s.cfg.Blocks.Clone(ctx, v.ID, latest.ID)
		}
		_, err := s.changeVolume(ctx, v.ID, func(v *volstate.Volume) error {
			if v.Status != statusReverting || v.WorkRun != s.run {
				return errSettled
			}
			v.WorkNode, v.WorkRun = "", ""
			v.Status, v.Reason = volstate.StatusAvailable, ""
			if dataErr != nil {
				v.Status, v.Reason = volstate.StatusError, "revert to snapshot "+latest.ID+": "+dataErr.Error()
			}
			return nil
		})
		s.snapshotRestored(ctx, latest.ID)
		switch {
		case err != nil:
			s.log.Warn("volume: revert", "volume", v.ID, "snapshot", latest.ID, "err", err)
		case dataErr != nil:
			s.log.Warn("volume: revert failed", "volume", v.ID, "snapshot", latest.ID, "err", dataErr)
		default:
			s.log.Info("volume reverted", "volume", v.ID, "snapshot", latest.ID)
		}
	})
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// latestSnapshot is the snapshot taken last, and another taken in the
// same second if there is one.
func latestSnapshot(snaps []*volstate.Snapshot) (latest, tie *volstate.Snapshot) {
	for _, sn := range snaps {
		switch {
		case latest == nil || sn.CreatedAt.After(latest.CreatedAt):
			latest, tie = sn, nil
		case sn.CreatedAt.Equal(latest.CreatedAt):
			tie = sn
		}
	}
	return latest, tie
}

// snapshotRestored gives a restoring snapshot its available status back.
func (s *Service) snapshotRestored(ctx context.Context, id string) {
	_, err := s.changeSnapshot(context.WithoutCancel(ctx), id, func(sn *volstate.Snapshot) error {
		if sn.Status != snapStatusRestoring {
			return errSettled
		}
		sn.Status = volstate.SnapStatusAvailable
		return nil
	})
	if err != nil && !errors.Is(err, errSettled) && !errors.Is(err, store.ErrNotFound) {
		s.log.Warn("volume: give a restored snapshot its status back", "snapshot", id, "err", err)
	}
}

// settleRevert ends a revert whose process died: the volume's
// restoring snapshots are available again (the caller makes the volume
// error: its blocks may be half replaced).
func (s *Service) settleRevert(ctx context.Context, tx *memdb.Txn, v *volstate.Volume) {
	for _, sn := range store.All[volstate.Snapshot](tx, volstate.SnapshotTable, "volume", v.ID) {
		if sn.Status == snapStatusRestoring {
			s.snapshotRestored(ctx, sn.ID)
		}
	}
}
