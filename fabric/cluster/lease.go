package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// A state lease bounds how stale the state a node answers from without a
// round trip (token checks) can be, so that a revocation is effective on
// every node once the revoking call returns:
//
//   - A node may read its local state without asking the leader only while
//     it holds a lease: it took one at time S by learning the leader's
//     applied index and applying up to it, and it keeps it until S+lease
//     (its own monotonic clock). Past that, LeasedRead renews first, which
//     needs the leader; a node cut off from it refuses instead of answering
//     from old state.
//   - AwaitEverywhere (run by the revoking request after its write commits
//     at index I) asks every member to confirm it applied I. A member that
//     does not confirm within lease+margin is treated as down: any lease it
//     took began before I committed, so it has expired by then, and its
//     next local read must first catch up past I.
//
// The cost: revoking calls wait for the slowest live member (a few
// milliseconds on a healthy cluster), and for lease+margin while a member
// is frozen, partitioned or dead until it leaves the configuration.
type stateLease struct {
	mu    sync.Mutex // one renewal at a time; waiters share it
	until time.Time
}

func (l *stateLease) valid(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return now.Before(l.until)
}

// rpcApplied answers once the node has applied the index asked for.
const rpcApplied = "/internal/v1/applied"

// LeasedRead returns a read of this node's state that holds every write
// committed more than one lease ago and every revocation whose call has
// returned (see stateLease). It costs no round trip while the lease holds.
func (n *Node) LeasedRead(ctx context.Context) (*memdb.Txn, error) {
	if n.lease.valid(time.Now()) {
		return n.State.Txn(), nil
	}
	if err := n.renewLease(ctx); err != nil {
		return nil, err
	}
	return n.State.Txn(), nil
}

func (n *Node) renewLease(ctx context.Context) error {
	n.lease.mu.Lock()
	defer n.lease.mu.Unlock()
	start := time.Now()
	if start.Before(n.lease.until) {
		return nil // renewed by another caller meanwhile
	}
	if n.IsLeader() {
		// A leader that lost its quorum must not extend its own lease.
		if err := n.raft.LeaderReady(n.cfg.StateLease); err != nil {
			return fmt.Errorf("renew state lease: %w: %v", store.ErrNoLeader, err)
		}
		if err := n.raft.VerifyLeader().Error(); err != nil {
			return fmt.Errorf("renew state lease: %w: %v", store.ErrNoLeader, err)
		}
	} else if _, err := n.Read(ctx); err != nil {
		// Read learns the leader's applied index and catches up to it,
		// waiting (bounded) through an election: a token check made just
		// after the leader died waits for the next one, as a write does,
		// rather than failing at once.
		return fmt.Errorf("renew state lease: %w", err)
	}
	n.lease.until = start.Add(n.cfg.StateLease)
	return nil
}

// AwaitEverywhere returns once every member of the Raft configuration has
// applied index, or could no longer read its local state without first
// catching up past it (its lease ran out). Call it after a write that
// takes access away (a revocation).
func (n *Node) AwaitEverywhere(ctx context.Context, index uint64) error {
	if err := n.State.WaitApplied(ctx, index); err != nil {
		return err
	}
	conf, err := n.configuration()
	if err != nil {
		return err
	}
	// The margin covers clocks that run at slightly different rates and
	// the time between the commit and this call's start.
	bound := n.cfg.StateLease + n.cfg.StateLease/10 + 50*time.Millisecond
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range conf.Servers {
		if string(s.ID) == n.cfg.Name {
			continue
		}
		wg.Add(1)
		go func(addr string) {
			defer wg.Done()
			n.confirmApplied(ctx, addr, index)
		}(string(s.Address))
	}
	wg.Wait()
	return nil
}

// confirmApplied asks the member at addr until it confirms it applied
// index or ctx (the lease bound) ends.
func (n *Node) confirmApplied(ctx context.Context, addr string, index uint64) {
	for ctx.Err() == nil {
		if _, err := n.call(ctx, http.MethodGet, addr, rpcApplied+"?index="+strconv.FormatUint(index, 10), nil, nil); err == nil {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	n.log.Warn("a member did not confirm a revocation; relying on its state lease to expire", "member", addr, "index", index)
}

// serveApplied waits (bounded) until this node applied the index asked.
func (n *Node) serveApplied(w http.ResponseWriter, r *http.Request) {
	idx, err := strconv.ParseUint(r.URL.Query().Get("index"), 10, 64)
	if err != nil {
		http.Error(w, "parse index: "+err.Error(), http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), n.cfg.StateLease)
	defer cancel()
	if err := n.State.WaitApplied(ctx, idx); err != nil {
		status := http.StatusServiceUnavailable
		if errors.Is(err, context.Canceled) {
			status = http.StatusRequestTimeout
		}
		http.Error(w, err.Error(), status)
		return
	}
	writeJSON(w, http.StatusOK, map[string]uint64{"index": n.State.AppliedIndex()})
}
