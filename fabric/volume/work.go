package volume

import (
	"context"
	"errors"
	"sync"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// Background work: what takes longer than a request (copying an image
// into a volume, backing a volume up, restoring it) runs after the API
// answered, in the service's work context. The row being worked on names
// the node and process doing it (WorkNode, WorkRun), so that work which
// died with its process does not leave the row in a working status for
// ever: Run settles it, on this node after a restart and on the leader
// for a lost node.

// settleEvery is how often abandoned work is looked for: volumes deleted
// with their servers wait for it.
const settleEvery = 15 * time.Second

// Run settles abandoned work at start and every settleEvery; when ctx ends it
// stops the background work and waits for it.
func (s *Service) Run(ctx context.Context) error { return s.bg.Run(ctx, settleEvery, s.settle) }

// background runs fn in the work context, after the request that started
// it answered. Once Run has ended nothing starts: the row keeps its
// working status and the next process settles it.
func (s *Service) background(fn func(ctx context.Context)) { s.bg.Go(fn) }

// worked marks a row as worked on by this process. The request or
// background work that marks it carries the volume (carry) until its work
// is done.
func (s *Service) worked(v *volstate.Volume) { v.WorkNode, v.WorkRun = s.cfg.Node, s.run }

// carry says that this process has volume id's work in hand, until
// release is called: taken before the proposal that marks the row
// worked, released once the request or the background work that carries
// it on has ended.
func (s *Service) carry(id string) (release func()) {
	s.carriedMu.Lock()
	s.carried[id]++
	s.carriedMu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.carriedMu.Lock()
			defer s.carriedMu.Unlock()
			if s.carried[id]--; s.carried[id] <= 0 {
				delete(s.carried, id)
			}
		})
	}
}

// volumeAbandoned reports whether the work volume v's row names will
// not be finished by anyone: it died with its process (abandoned), or
// it is this process's but nothing here carries it any more. That is a
// request whose proposal's outcome was unknown (the leader died or
// changed under it): the command committed after the request gave up,
// so the row says working and the process it names is alive, but the
// request ended without carrying the work on.
func (s *Service) volumeAbandoned(v *volstate.Volume) bool {
	return s.workAbandoned(v.ID, v.WorkNode, v.WorkRun)
}

// workAbandoned is volumeAbandoned for any row carried by id (a volume,
// a snapshot).
func (s *Service) workAbandoned(id, node, run string) bool {
	if node == s.cfg.Node && run == s.run {
		s.carriedMu.Lock()
		defer s.carriedMu.Unlock()
		return s.carried[id] == 0
	}
	return s.abandoned(node, run)
}

// abandoned reports whether the work a row names died with its process:
// an earlier process of this node, or (on the leader) a lost node or a
// row from before work was recorded.
func (s *Service) abandoned(node, run string) bool {
	if node == s.cfg.Node {
		return run != s.run
	}
	return s.cfg.IsLeader() && (run == "" || s.cfg.NodeLost(node))
}

// errSettled stops a settle whose row moved on meanwhile.
var errSettled = errors.New("row changed meanwhile")

// settle gives volumes whose work was abandoned a final status: a create
// whose blocks exist is available (the work after them was recording
// the status), any other is error with the reason.
func (s *Service) settle(ctx context.Context) {
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return
	}
	for _, v := range store.All[volstate.Volume](tx, volstate.VolumeTable, "id") {
		if !working(v.Status) || !s.volumeAbandoned(v) {
			continue
		}
		if v.Status == volstate.StatusDeleting {
			// A delete that died, or a volume deleted with its server:
			// deleting is idempotent, so it is done again.
			s.finishDelete(ctx, v)
			continue
		}
		if v.Status == volstate.StatusUploading {
			s.settleUpload(ctx, v)
			continue
		}
		status, reason := volstate.StatusError, ""
		switch {
		case v.Status == volstate.StatusCreating && v.ImageID != "":
			reason = "create from image " + v.ImageID + ": the process copying it stopped before it finished"
		case v.Status == volstate.StatusCreating:
			ok, err := s.cfg.Blocks.Exists(ctx, v.ID)
			if err != nil {
				s.log.Warn("volume: settle abandoned create", "volume", v.ID, "err", err)
				continue
			}
			if ok {
				status = volstate.StatusAvailable
			} else {
				reason = "create: the process making the volume's blocks stopped before it made them"
			}
		case v.Status == volstate.StatusRestoringBackup:
			reason = "restore backup: the process restoring it stopped before it finished; restore again"
		case v.Status == volstate.StatusDownloading:
			reason = "reimage: the process writing the image stopped before it finished; reimage again"
		case v.Status == statusReverting:
			reason = "revert: the process replacing the volume's blocks by its snapshot's stopped before it finished; reset its status and revert again"
			s.settleRevert(ctx, tx, v)
		}
		node, run := v.WorkNode, v.WorkRun
		_, err := s.changeVolume(ctx, v.ID, func(v *volstate.Volume) error {
			if !working(v.Status) || v.WorkNode != node || v.WorkRun != run {
				return errSettled
			}
			v.Status, v.Reason, v.WorkNode, v.WorkRun, v.PreviousStatus = status, reason, "", "", ""
			return nil
		})
		switch {
		case err == nil:
			s.log.Warn("volume work abandoned; settled", "volume", v.ID, "node", node, "status", status, "reason", reason)
		case !errors.Is(err, errSettled) && !errors.Is(err, store.ErrNotFound):
			s.log.Warn("volume: settle abandoned work", "volume", v.ID, "err", err)
		}
	}
	s.settleSnapshots(ctx, tx)
	s.settleBackups(ctx, tx)
	s.settleGroups(ctx)
	s.settleHolds(ctx)
}

// working are the statuses background work (or a request) holds a
// volume in.
func working(status string) bool {
	return status == volstate.StatusCreating || status == volstate.StatusRestoringBackup || status == volstate.StatusDeleting ||
		status == volstate.StatusUploading || status == volstate.StatusDownloading || status == statusReverting
}

// settleUpload ends an upload whose process died: the image it was
// making goes unless it was finished (the image service gives a dead
// upload back to queued, which nothing would ever fill), as a failed
// upload's does; the snapshot it read goes; the volume gets its status
// back.
func (s *Service) settleUpload(ctx context.Context, v *volstate.Volume) {
	if v.UploadImage != "" && s.cfg.Uploads != nil {
		if err := s.cfg.Uploads.DeleteUnfinishedImage(ctx, v.UploadImage); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Warn("volume: delete the image of an abandoned upload", "volume", v.ID, "image", v.UploadImage, "err", err)
			return
		}
	}
	if err := s.cfg.Blocks.Delete(ctx, uploadSnapshot(v.ID)); err != nil {
		s.log.Warn("volume: settle abandoned upload", "volume", v.ID, "err", err)
		return
	}
	node, run := v.WorkNode, v.WorkRun
	_, err := s.changeVolume(ctx, v.ID, func(v *volstate.Volume) error {
		if v.WorkNode != node || v.WorkRun != run {
			return errSettled
		}
		return endUpload(v)
	})
	switch {
	case err == nil:
		s.log.Warn("volume upload abandoned; settled", "volume", v.ID, "node", node)
	case !errors.Is(err, errSettled) && !errors.Is(err, store.ErrNotFound):
		s.log.Warn("volume: settle abandoned upload", "volume", v.ID, "err", err)
	}
}

// finishDelete deletes an abandoned deleting volume's blocks and row.
func (s *Service) finishDelete(ctx context.Context, v *volstate.Volume) {
	err := s.cfg.Blocks.Delete(ctx, v.ID)
	if err == nil {
		_, err = s.cfg.Repl.Propose(ctx, volstate.CmdDeleteVolume, volstate.DeleteVolumeCmd{ID: v.ID, Revision: v.Revision})
	}
	if err != nil {
		s.log.Warn("volume: finish delete", "volume", v.ID, "err", err)
		return
	}
	s.log.Info("volume deleted", "volume", v.ID, "project", v.Project)
}

// settleSnapshots gives snapshots whose create or delete was abandoned
// a final status: a create whose blocks exist is available (its one
// block command committed; the work after it was recording the status),
// any other is error; a delete is done again. Rows without work (a
// group snapshot's, or older than the work fields) are not for it.
func (s *Service) settleSnapshots(ctx context.Context, tx *memdb.Txn) {
	for _, sn := range store.All[volstate.Snapshot](tx, volstate.SnapshotTable, "id") {
		if sn.WorkRun == "" || (sn.Status != volstate.SnapStatusCreating && sn.Status != volstate.SnapStatusDeleting) ||
			!s.workAbandoned(sn.ID, sn.WorkNode, sn.WorkRun) {
			continue
		}
		if sn.Status == volstate.SnapStatusDeleting {
			err := s.cfg.Blocks.Delete(ctx, sn.ID)
			if err == nil {
				_, err = s.cfg.Repl.Propose(ctx, volstate.CmdDeleteSnapshot, volstate.DeleteSnapshotCmd{ID: sn.ID, Revision: sn.Revision})
			}
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				s.log.Warn("volume: finish an abandoned snapshot delete", "snapshot", sn.ID, "err", err)
				continue
			}
			s.log.Warn("snapshot delete abandoned; finished", "snapshot", sn.ID, "node", sn.WorkNode)
			continue
		}
		ok, err := s.cfg.Blocks.Exists(ctx, sn.ID)
		if err != nil {
			s.log.Warn("volume: settle an abandoned snapshot", "snapshot", sn.ID, "err", err)
			continue
		}
		status, reason := volstate.SnapStatusAvailable, ""
		if !ok {
			status, reason = volstate.SnapStatusError, "create: the work making the snapshot's blocks stopped before it made them"
		}
		node, run := sn.WorkNode, sn.WorkRun
		_, err = s.changeSnapshot(ctx, sn.ID, func(cur *volstate.Snapshot) error {
			if cur.Status != volstate.SnapStatusCreating || cur.WorkNode != node || cur.WorkRun != run {
				return errSettled
			}
			cur.Status, cur.Reason, cur.WorkNode, cur.WorkRun = status, reason, "", ""
			return nil
		})
		switch {
		case err == nil:
			s.log.Warn("snapshot create abandoned; settled", "snapshot", sn.ID, "node", node, "status", status)
		case !errors.Is(err, errSettled) && !errors.Is(err, store.ErrNotFound):
			s.log.Warn("volume: settle an abandoned snapshot", "snapshot", sn.ID, "err", err)
		}
	}
}
