package volume

import (
	"context"
	"errors"

	"github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// Groups and group snapshots are made and deleted in the request that
// asks for it; a process that dies in the middle leaves the row creating
// or deleting. Their rows name the process as volumes' do (WorkNode,
// WorkRun), and settle finishes them the way it finishes volumes: a
// delete is done again, a create gets the status its parts show. The
// request carries the row's id (carry) while it works, so a row of this
// live process that no request carries (its request gave up on a
// proposal of unknown outcome that committed after all) is settled too
// (workAbandoned).

// groupWorking are the statuses a request holds a group or a group
// snapshot in while it works on it.
func groupWorking(status string) bool {
	return status == volstate.GroupCreating || status == volstate.GroupDeleting
}

// groupWork keeps a row's work markers with its status: entering a
// working status names this process, leaving one names none.
func (s *Service) groupWork(from, to string, node, run *string) {
	switch {
	case !groupWorking(to):
		*node, *run = "", ""
	case !groupWorking(from) || *node == "":
		*node, *run = s.cfg.Node, s.run
	}
}

// settleGroups settles abandoned groups, then abandoned group snapshots.
// It reads the state afresh: the volumes a group's create made were
// settled just before.
func (s *Service) settleGroups(ctx context.Context) {
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return
	}
	for _, g := range store.All[volstate.Group](tx, volstate.GroupTable, "id") {
		if !groupWorking(g.Status) || !s.workAbandoned(g.ID, g.WorkNode, g.WorkRun) {
			continue
		}
		if g.Status == volstate.GroupDeleting {
			// Deleting is idempotent: it is done again.
			if err := s.finishGroupDelete(ctx, g.ID); err != nil {
				s.log.Warn("volume: finish an abandoned group delete", "group", g.ID, "err", err)
			} else {
				s.log.Warn("volume group delete abandoned; finished", "group", g.ID, "node", g.WorkNode)
			}
			continue
		}
		status, reason, ready := s.madeGroupStatus(tx, g)
		if !ready {
			continue
		}
		node, run := g.WorkNode, g.WorkRun
		_, err := s.changeGroup(ctx, g.ID, func(g *volstate.Group) error {
			if g.Status != volstate.GroupCreating || g.WorkNode != node || g.WorkRun != run {
				return errSettled
			}
			g.Status, g.Reason = status, reason
			return nil
		})
		s.settled("group", g.ID, node, status, reason, err)
	}
	for _, gs := range store.All[volstate.GroupSnapshot](tx, volstate.GroupSnapshotTable, "id") {
		if !groupWorking(gs.Status) || !s.workAbandoned(gs.ID, gs.WorkNode, gs.WorkRun) {
			continue
		}
		if gs.Status == volstate.GroupDeleting {
			if err := s.finishGroupSnapshotDelete(ctx, gs.ID); err != nil {
				s.log.Warn("volume: finish an abandoned group snapshot delete", "group_snapshot", gs.ID, "err", err)
			} else {
				s.log.Warn("volume group snapshot delete abandoned; finished", "group_snapshot", gs.ID, "node", gs.WorkNode)
			}
			continue
		}
		s.settleGroupSnapshotCreate(ctx, tx, gs)
	}
}

// settleHolds deletes hold requests that have outlived their lease twice
// over: the process that made one died, or its delete failed. No API
// waits on such a request (a snapshot made held must commit within the
// lease) and every node has let its volumes go, so it is only garbage.
// A held group snapshot's settle deletes its own request sooner.
func (s *Service) settleHolds(ctx context.Context) {
	if !s.cfg.IsLeader() {
		return
	}
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return
	}
	now := s.cfg.Now()
	for _, q := range store.All[volstate.Quiesce](tx, volstate.QuiesceTable, "id") {
		if now.Sub(q.CreatedAt) > 2*q.Lease {
			s.releaseHold(ctx, q.ID)()
		}
	}
}

// madeGroupStatus is the status an abandoned create leaves a group in:
// a plain group needs no block work, so it is available; one made from a
// source is available only if every volume of its source was copied into
// an available volume, else error. ready is false while one of its
// volumes is still being made.
func (s *Service) madeGroupStatus(tx *memdb.Txn, g *volstate.Group) (status, reason string, ready bool) {
	if g.GroupSnapshotID == "" && g.SourceGroupID == "" {
		return volstate.GroupAvailable, "", true
	}
	want := 0
	if g.GroupSnapshotID != "" {
		want = len(volstate.GroupSnapshotMembers(tx, g.GroupSnapshotID))
	} else {
		want = len(volstate.GroupVolumes(tx, g.SourceGroupID))
	}
	made := volstate.GroupVolumes(tx, g.ID)
	for _, v := range made {
		if working(v.Status) {
			return "", "", false
		}
		if v.Status != volstate.StatusAvailable {
			return volstate.GroupError, "create from a source: volume " + v.ID + " is " + v.Status + "; the process making the group stopped before it finished", true
		}
	}
	if len(made) != want || want == 0 {
		return volstate.GroupError, "create from a source: the process making the group stopped before it copied every volume; delete it with delete-volumes", true
	}
	return volstate.GroupAvailable, "", true
}

// settleGroupSnapshotCreate settles an abandoned group snapshot create:
// each snapshot still creating is available if its blocks were made,
// else error; the group snapshot is available if all of them are.
func (s *Service) settleGroupSnapshotCreate(ctx context.Context, tx *memdb.Txn, gs *volstate.GroupSnapshot) {
	status, reason := volstate.GroupAvailable, ""
	for _, sn := range volstate.GroupSnapshotMembers(tx, gs.ID) {
		snStatus := sn.Status
		if sn.Status == volstate.SnapStatusCreating {
			ok, err := s.cfg.Blocks.Exists(ctx, sn.ID)
			if err != nil {
				s.log.Warn("volume: settle an abandoned group snapshot", "group_snapshot", gs.ID, "snapshot", sn.ID, "err", err)
				return
			}
			snReason := ""
			snStatus = volstate.SnapStatusAvailable
			if !ok {
				snStatus, snReason = volstate.SnapStatusError, "group snapshot: the process making its blocks stopped before it made them"
			}
			if _, err := s.changeSnapshot(ctx, sn.ID, func(row *volstate.Snapshot) error {
				if row.Status != volstate.SnapStatusCreating {
					return errSettled
				}
				row.Status, row.Reason = snStatus, snReason
				return nil
			}); err != nil && !errors.Is(err, errSettled) {
				s.log.Warn("volume: settle an abandoned group snapshot", "group_snapshot", gs.ID, "snapshot", sn.ID, "err", err)
				return
			}
		}
		if snStatus != volstate.SnapStatusAvailable && status == volstate.GroupAvailable {
			status, reason = volstate.GroupError, "snapshot "+sn.ID+" is "+snStatus+"; the process making the group snapshot stopped before it finished"
		}
	}
	if gs.Held {
		// Its process died holding the volumes: the nodes let them go at
		// the lease, and sooner once the request is gone. Whether its
		// one command committed before the lease ran out is not known:
		// its snapshots are kept, each of what its volume held, but the
		// group snapshot is not shown as of one instant.
		s.releaseHold(ctx, gs.ID)()
		if status == volstate.GroupAvailable {
			status, reason = volstate.GroupError, "the process making the group snapshot stopped while its volumes were held: whether its snapshots are of one instant is not known"
		}
	}
	node, run := gs.WorkNode, gs.WorkRun
	_, err := s.changeGroupSnapshot(ctx, gs.ID, func(g *volstate.GroupSnapshot) error {
		if g.Status != volstate.GroupCreating || g.WorkNode != node || g.WorkRun != run {
			return errSettled
		}
		g.Status, g.Reason = status, reason
		return nil
	})
	s.settled("group snapshot", gs.ID, node, status, reason, err)
}

// settled logs the end of a settle.
func (s *Service) settled(kind, id, node, status, reason string, err error) {
	switch {
	case err == nil:
		s.log.Warn("volume "+kind+" work abandoned; settled", "id", id, "node", node, "status", status, "reason", reason)
	case !errors.Is(err, errSettled) && !errors.Is(err, store.ErrNotFound):
		s.log.Warn("volume: settle an abandoned "+kind, "id", id, "err", err)
	}
}
