// Package reconcile is the loop every node agent runs: do one pass that
// makes the node match the replicated state, then wait until the state it
// read changes (a memdb WatchSet fires) or a resync is due, and do it
// again. A failed pass is retried after a bounded, growing delay. The
// package knows nothing of what a pass does.
package reconcile

import (
	"context"
	"log/slog"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

// Pass does one reconcile. It returns the watches of the state it read:
// the next pass starts as soon as one fires. An error means the pass could
// not run (no current state, say) and is retried with backoff; failures of
// single items are the pass's own to log and retry on the next pass.
type Pass func(ctx context.Context) (memdb.WatchSet, error)

// Loop runs a Pass until its context ends.
type Loop struct {
	Name string // in log lines: "dataplane", "compute"
	Pass Pass
	// Resync is the longest wait between passes, for changes no watch
	// sees: a guest that died, a device that appeared. Default 2 s.
	Resync time.Duration
	// Debounce is how long to wait after a watch fires before the pass,
	// so that a burst of writes (a bulk create) is met by one pass.
	Debounce time.Duration
	// MaxBackoff bounds the delay between failed passes, which starts at
	// Resync and doubles. Default 8 × Resync.
	MaxBackoff time.Duration
	Log        *slog.Logger

	// after is time.After; tests replace it to see the waits.
	after func(time.Duration) <-chan time.Time
}

// Run loops until ctx ends, and then returns nil.
func (l *Loop) Run(ctx context.Context) error {
	resync := l.Resync
	if resync <= 0 {
		resync = 2 * time.Second
	}
	maxBackoff := l.MaxBackoff
	if maxBackoff <= 0 {
		maxBackoff = 8 * resync
	}
	log := l.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	after := l.after
	if after == nil {
		after = time.After
	}
	var backoff time.Duration
	for ctx.Err() == nil {
		ws, err := l.Pass(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			backoff = min(max(2*backoff, resync), maxBackoff)
			log.Debug(l.Name+": pass failed; retrying", "in", backoff, "err", err)
			// A failed pass is not retried on every change: a state that
			// cannot be read changes all the time while a node catches up.
			select {
			case <-ctx.Done():
			case <-after(backoff):
			}
			continue
		}
		backoff = 0
		if !wait(ctx, ws, after(resync)) || l.Debounce <= 0 {
			continue
		}
		select {
		case <-ctx.Done():
		case <-after(l.Debounce):
		}
	}
	return nil
}

// wait blocks until a watch of ws fires (true), timeout passes or ctx ends
// (false).
func wait(ctx context.Context, ws memdb.WatchSet, timeout <-chan time.Time) bool {
	if len(ws) == 0 {
		// An empty set would report "fired" at once.
		select {
		case <-ctx.Done():
		case <-timeout:
		}
		return false
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	select {
	case err := <-ws.WatchCh(wctx):
		return err == nil
	case <-timeout:
		return false
	case <-ctx.Done():
		return false
	}
}
