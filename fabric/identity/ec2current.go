package identity

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rackstack/rackstack/fabric/store"
)

// EC2 access keys acknowledged through another node (see README, "What
// was granted through one node holds on every other"): a lookup that
// would refuse a key from local state — unknown, or its user without a
// role on its project — looks again in state caught up with the leader
// before it refuses. An S3 request signed with a credential created a
// moment ago through another node was answered 403 InvalidAccessKeyId
// for up to a state lease.
//
// A request carrying an unknown key (forged, deleted, mistyped) cannot be
// told from one carrying a key just created without that catch-up, and
// the signature cannot be checked without the secret; so the catch-ups
// are shared: a refusal joins the catch-up in flight if it began after
// the request arrived (it sees all the request could), or else the one
// queued behind it, and a catch-up begins at least ec2CatchUpGap after
// the last. However many requests with unknown keys arrive, a node makes
// at most one leader round trip at a time for them, and at most one per
// gap.

// ec2CatchUpGap is the least time between two catch-ups for refused
// keys: at most 20 leader round trips a second per node, and a request
// signed with a new key waits at most this and one round trip more.
const ec2CatchUpGap = 50 * time.Millisecond

// ec2CatchUpTimeout bounds one catch-up, which no single request owns.
const ec2CatchUpTimeout = 10 * time.Second

// catchUps coalesces the catch-ups of refused lookups.
type catchUps struct {
	mu      sync.Mutex
	running *catchUp // in flight, or waiting out the gap
	next    *catchUp // to begin once running ends
	last    time.Time
}

type catchUp struct {
	begun bool      // its read has been asked for
	at    time.Time // when
	done  chan struct{}
	err   error
}

// wait returns once state caught up with the leader by a read that began
// after since, made by read (shared with other waiters), or ctx's end.
func (c *catchUps) wait(ctx context.Context, since time.Time, read func(context.Context) error) error {
	c.mu.Lock()
	var cu *catchUp
	switch {
	case c.running != nil && (!c.running.begun || !c.running.at.Before(since)):
		cu = c.running
	case c.next != nil:
		cu = c.next
	default:
		cu = &catchUp{done: make(chan struct{})}
		c.next = cu
		if c.running == nil {
			c.begin(read)
		}
	}
	c.mu.Unlock()
	select {
	case <-cu.done:
		return cu.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// begin starts the queued catch-up; called with mu held.
func (c *catchUps) begin(read func(context.Context) error) {
	cu := c.next
	c.next, c.running = nil, cu
	go func() {
		c.mu.Lock()
		wait := time.Until(c.last.Add(ec2CatchUpGap))
		c.mu.Unlock()
		if wait > 0 {
			time.Sleep(wait)
		}
		c.mu.Lock()
		cu.begun, cu.at = true, time.Now()
		c.last = cu.at
		c.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), ec2CatchUpTimeout)
		cu.err = read(ctx)
		cancel()
		c.mu.Lock()
		c.running = nil
		close(cu.done)
		if c.next != nil {
			c.begin(read)
		}
		c.mu.Unlock()
	}()
}

// ec2Refused reports whether err refuses an EC2 key for want of state
// (the key, its user, project or grant) that another node may have
// acknowledged.
func ec2Refused(err error) bool {
	return errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrForbidden)
}

// ec2Again runs lookup on local state and, if it refuses the key, once
// more on state caught up with the leader (shared, see catchUps). It
// returns lookup's last answer; a catch-up that fails leaves the first.
func (s *Service) ec2Again(ctx context.Context, lookup func() error) error {
	since := time.Now()
	err := lookup()
	if !ec2Refused(err) {
		return err
	}
	if cerr := s.ec2CatchUps.wait(ctx, since, func(ctx context.Context) error {
		_, err := s.cfg.Repl.Read(ctx)
		return err
	}); cerr != nil {
		return err
	}
	return lookup()
}
