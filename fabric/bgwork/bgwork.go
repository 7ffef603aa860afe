// Package bgwork runs a service's background work: what a request
// started and answered before it ends (a volume's copy, a server's
// build), and the settling of what a dead process left, at start and on a
// tick. Work stops with the service, which waits for it; what was cut
// short is settled by the next process from the rows that name it.
package bgwork

import (
	"context"
	"sync"
	"time"
)

// Runner is one service's background work. The zero value is not usable:
// make it with New.
type Runner struct {
	work    context.Context
	stop    context.CancelFunc
	busy    sync.WaitGroup
	mu      sync.Mutex
	stopped bool
}

// New returns a Runner whose work runs until its Run ends.
func New() *Runner {
	work, stop := context.WithCancel(context.Background())
	return &Runner{work: work, stop: stop}
}

// Run calls settle at once and every interval until ctx ends; then it
// stops the work in hand and waits for it.
func (r *Runner) Run(ctx context.Context, every time.Duration, settle func(context.Context)) error {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		settle(ctx)
		select {
		case <-ctx.Done():
			r.mu.Lock()
			r.stopped = true
			r.mu.Unlock()
			r.stop()
			r.busy.Wait()
			return nil
		case <-tick.C:
		}
	}
}

// Go runs fn in the work's context, unless Run has ended: then nothing
// starts, and the row that asked for it keeps saying so for the next
// process to settle.
func (r *Runner) Go(fn func(ctx context.Context)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return
	}
	r.busy.Add(1)
	go func() {
		defer r.busy.Done()
		fn(r.work)
	}()
}

// Wait waits until the work started so far has ended.
func (r *Runner) Wait() { r.busy.Wait() }
