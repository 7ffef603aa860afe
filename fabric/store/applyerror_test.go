package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// failedFuture is a raft.ApplyFuture that failed with err.
type failedFuture struct {
	raft.ApplyFuture
	err error
}

func (f failedFuture) Error() error { return f.err }

// A leader deposed while committing may already have sent the entry to
// the node that leads next, which then commits it: proposers must not
// take that for "not the leader" and send the command again (it would
// apply twice), nor for a failure to undo. Only refusals before the entry
// was appended are ErrNotLeader.
func TestApplyFailureSaysWhetherTheCommandMayStillCommit(t *testing.T) {
	cases := []struct {
		err            error
		notLeader      bool
		outcomeUnknown bool
	}{
		{raft.ErrNotLeader, true, false},
		{raft.ErrLeadershipTransferInProgress, true, false},
		{raft.ErrLeadershipLost, false, true},
		{raft.ErrRaftShutdown, false, true},
		{raft.ErrAbortedByRestore, false, true},
		{raft.ErrEnqueueTimeout, false, false},
	}
	for _, c := range cases {
		done := make(chan proposalReply, 1)
		deliver(failedFuture{err: c.err}, []proposal{{done: done}})
		got := (<-done).err
		if errors.Is(got, ErrNotLeader) != c.notLeader || errors.Is(got, ErrOutcomeUnknown) != c.outcomeUnknown {
			t.Errorf("%v became %v: ErrNotLeader %v, ErrOutcomeUnknown %v; want %v, %v", c.err, got,
				errors.Is(got, ErrNotLeader), errors.Is(got, ErrOutcomeUnknown), c.notLeader, c.outcomeUnknown)
		}
	}
}

// A proposal whose caller stops waiting after it was queued still goes
// into the log: its outcome is unknown.
func TestApplyLocalAbandonedAfterQueueingIsOutcomeUnknown(t *testing.T) {
	st, err := NewState(kvSchema())
	if err != nil {
		t.Fatal(err)
	}
	r := &Raft{state: st, queue: make(chan proposal, 1), stop: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = r.ApplyLocal(ctx, Command{Type: "kv.put"})
	if !errors.Is(err, ErrOutcomeUnknown) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("abandoned queued proposal: %v, want ErrOutcomeUnknown and the deadline", err)
	}
}
