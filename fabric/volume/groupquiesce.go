package volume

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// One-instant group snapshots of volumes being written.
//
// A group snapshot whose volumes have writers (attached to a server, or
// exported by an operator) is made in three steps:
//
//  1. Hold. The API puts a quiesce request (volstate.Quiesce) naming the
//     group's volumes and every node that may write them: the up nodes,
//     which must include each attached volume's host. Each node's agent
//     (node/volumes.Holds) holds the gates of the named volumes it
//     exports: new writes and flushes wait, the ones in flight end, the
//     volume is flushed. It answers with what it holds (or why it could
//     not). The API waits for every node's answer for at most half the
//     lease; a node that does not answer, or cannot hold, fails the
//     group snapshot with 409 naming it, before any row is made.
//  2. Snapshot. One block store command (block.SnapshotGroup) makes every
//     volume's snapshot: one point in Raft's order, at which every
//     volume's rows hold exactly the writes acknowledged before its hold
//     began, and no write was acknowledged by any volume between the
//     first hold and the command (every hold was still on).
//  3. Release. The API deletes the request, on success and on every
//     failure; the nodes let their volumes go when they see it gone.
//
// Bounded: each node lets go by itself once the lease has passed since
// it started holding (so an API that dies, or a request that is never
// deleted, holds a volume for one lease at most). The API counts the
// lease from before its request, so every hold started after that and
// lasts until at least then: a snapshot command that committed before
// the lease ran out on the API's clock was made while every hold was on.
// One that committed later (or whose outcome is unknown) may not be of
// one instant: its snapshots are kept, never undone, and marked error
// with the reason. A group snapshot whose API process died while holding
// (GroupSnapshot.Held, still creating) is settled the same way: its
// request is deleted, its snapshots are what their blocks show, and the
// group snapshot is error, as nobody knows when its command committed.

// holdPoll is how often the API looks for the nodes' answers.
const holdPoll = 20 * time.Millisecond

// holdGroup holds vols on the nodes that write them. release ends the
// hold (also when err is not nil, nothing is held); the snapshot must
// commit before deadline. what names the request in refusals: "group"
// for a group snapshot, "volume" for a single volume's.
func (s *Service) holdGroup(ctx context.Context, id, what string, vols []*volstate.Volume) (deadline time.Time, release func(), err error) {
	lease := s.cfg.HoldLease
	start := time.Now() // monotonic: the lease is counted from here
	deadline = start.Add(lease)
	nodes := []string{s.cfg.Node}
	if s.cfg.HoldNodes != nil {
		if nodes, err = s.cfg.HoldNodes(ctx); err != nil {
			return deadline, func() {}, err
		}
		if len(nodes) == 0 { // not registered yet: this node is up
			nodes = []string{s.cfg.Node}
		}
	}
	q := volstate.Quiesce{ID: id, Nodes: nodes, Lease: lease, CreatedAt: s.cfg.Now().UTC()}
	for _, v := range vols {
		q.Volumes = append(q.Volumes, v.ID)
		for _, a := range v.Attachments {
			if a.Host != "" && !slices.Contains(nodes, a.Host) {
				return deadline, func() {}, api.Errorf(http.StatusConflict,
					"Invalid %s: volume %s's writer on node %s (server %s) cannot be held for a snapshot of one instant: the node is not up.", what, v.ID, a.Host, a.ServerID)
			}
		}
	}
	if _, err := api.Propose(ctx, s.cfg.Repl, volstate.CmdPutQuiesce, volstate.PutQuiesceCmd{Row: q}, nil); err != nil {
		// Unknown or refused: deleting it is the release either way.
		return deadline, s.releaseHold(ctx, id), err
	}
	release = s.releaseHold(ctx, id)
	wait, cancel := context.WithDeadline(ctx, start.Add(lease/2))
	defer cancel()
	tick := time.NewTicker(holdPoll)
	defer tick.Stop()
	for {
		tx, err := s.cfg.Repl.Read(wait)
		if err != nil {
			release()
			return deadline, func() {}, err
		}
		cur := store.Get[volstate.Quiesce](tx, volstate.QuiesceTable, id)
		if cur == nil {
			release()
			return deadline, func() {}, api.Errorf(http.StatusConflict, "Invalid %s: the hold of its volumes for snapshot %s ended before they were held.", what, id)
		}
		var missing []string
		for _, n := range nodes {
			a, ok := cur.Answers[n]
			if !ok {
				missing = append(missing, n)
				continue
			}
			if a.Error != "" {
				release()
				return deadline, func() {}, api.Errorf(http.StatusConflict, "Invalid %s: its volumes cannot be held for a snapshot of one instant: %s.", what, a.Error)
			}
		}
		if len(missing) == 0 {
			return deadline, release, nil
		}
		select {
		case <-tick.C:
		case <-wait.Done():
			release()
			if ctx.Err() != nil {
				return deadline, func() {}, ctx.Err()
			}
			return deadline, func() {}, api.Errorf(http.StatusConflict,
				"Invalid %s: node %s did not hold the volumes within %s: no snapshot of one instant can be made now.", what, strings.Join(missing, ", "), lease/2)
		}
	}
}

// releaseHold deletes request id; if that fails the nodes let go at the
// lease.
func (s *Service) releaseHold(ctx context.Context, id string) func() {
	return func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := s.cfg.Repl.Propose(rctx, volstate.CmdDeleteQuiesce, volstate.DeleteQuiesceCmd{ID: id}); err != nil {
			s.log.Warn("volume: end the hold of a group's volumes (the nodes end it at the lease)", "group_snapshot", id, "err", err)
		}
	}
}

// groupSnapshotter makes several snapshots in one command (the block
// store does).
type groupSnapshotter interface {
	SnapshotGroup(ctx context.Context, pairs []SnapshotPair) error
}

// SnapshotPair is a snapshot to make and its volume.
type SnapshotPair struct{ ID, Volume string }

// holding says whether group snapshots are held and made in one command.
func (s *Service) holding() (groupSnapshotter, bool) {
	gs, ok := s.cfg.Blocks.(groupSnapshotter)
	return gs, ok && s.cfg.HoldLease > 0
}

// snapshotHeld makes snaps in one command before deadline: nil, or why
// the snapshots are not of one instant.
func snapshotHeld(ctx context.Context, b groupSnapshotter, snaps []volstate.Snapshot, deadline time.Time) error {
	pairs := make([]SnapshotPair, len(snaps))
	for i, sn := range snaps {
		pairs[i] = SnapshotPair{ID: sn.ID, Volume: sn.VolumeID}
	}
	cctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if err := b.SnapshotGroup(cctx, pairs); err != nil {
		return fmt.Errorf("snapshot the group's volumes in one command: %w", err)
	}
	if !time.Now().Before(deadline) {
		return fmt.Errorf("the snapshot was made after the hold of the volumes ran out: it may not be of one instant")
	}
	return nil
}
