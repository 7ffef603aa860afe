package reconcile

import (
	"context"
	"errors"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

// timer is one wait the loop asked for; the test fires it.
type timer struct {
	d    time.Duration
	fire chan time.Time
}

// harness runs a Loop whose waits the test sees and ends, and whose passes
// answer from results in order (then succeed with no watch).
type harness struct {
	t      *testing.T
	waits  chan timer
	passes chan int
	done   chan error
	cancel context.CancelFunc
}

type result struct {
	ws  memdb.WatchSet
	err error
}

func start(t *testing.T, l *Loop, results ...result) *harness {
	h := &harness{t: t, waits: make(chan timer), passes: make(chan int, 100), done: make(chan error, 1)}
	l.after = func(d time.Duration) <-chan time.Time {
		tm := timer{d: d, fire: make(chan time.Time, 1)}
		h.waits <- tm
		return tm.fire
	}
	n := 0
	l.Pass = func(context.Context) (memdb.WatchSet, error) {
		n++
		h.passes <- n
		if n <= len(results) {
			return results[n-1].ws, results[n-1].err
		}
		return nil, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		// Unblock a loop that is handing over its next wait.
		for {
			select {
			case <-h.waits:
			case <-h.done:
				return
			}
		}
	})
	return h
}

// next returns the wait the loop asks for now, failing on another length.
func (h *harness) next(want time.Duration) timer {
	h.t.Helper()
	tm := <-h.waits
	if tm.d != want {
		h.t.Fatalf("the loop waits %s, want %s", tm.d, want)
	}
	return tm
}

func (h *harness) pass(want int) {
	h.t.Helper()
	if got := <-h.passes; got != want {
		h.t.Fatalf("pass %d, want %d", got, want)
	}
}

func watched() (memdb.WatchSet, chan struct{}) {
	ch := make(chan struct{})
	ws := memdb.NewWatchSet()
	ws.Add(ch)
	return ws, ch
}

// TestChangeStartsPassAfterDebounce: a watch that fires starts the next
// pass once the debounce has passed, without waiting for the resync.
func TestChangeStartsPassAfterDebounce(t *testing.T) {
	ws, changed := watched()
	h := start(t, &Loop{Resync: time.Hour, Debounce: 50 * time.Millisecond}, result{ws: ws})
	h.pass(1)
	h.next(time.Hour) // not fired
	close(changed)
	h.next(50 * time.Millisecond).fire <- time.Time{}
	h.pass(2)
}

// TestResyncWithoutChange: with nothing changed, a pass still runs every
// Resync, and no debounce comes first.
func TestResyncWithoutChange(t *testing.T) {
	ws, _ := watched()
	h := start(t, &Loop{Resync: time.Second, Debounce: 50 * time.Millisecond}, result{ws: ws}, result{ws: ws})
	h.pass(1)
	h.next(time.Second).fire <- time.Time{}
	h.pass(2)
	h.next(time.Second).fire <- time.Time{}
	h.pass(3)
}

// TestBackoffGrowsAndIsBounded: failed passes are retried after Resync,
// then twice as long each time up to MaxBackoff; a pass that succeeds
// resets the delay.
func TestBackoffGrowsAndIsBounded(t *testing.T) {
	fail := result{err: errors.New("no leader")}
	h := start(t, &Loop{Resync: time.Second, MaxBackoff: 4 * time.Second}, fail, fail, fail, fail, fail, result{}, fail)
	for i, d := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second} {
		h.pass(i + 1)
		h.next(d).fire <- time.Time{}
	}
	h.pass(6)
	h.next(time.Second).fire <- time.Time{} // success: the resync
	h.pass(7)
	h.next(time.Second) // failed again: backoff starts over
}

// TestFailedPassIgnoresWatches: a failed pass returns no watches worth
// waiting on, and is retried on the backoff alone.
func TestFailedPassIgnoresWatches(t *testing.T) {
	ws, changed := watched()
	close(changed)
	h := start(t, &Loop{Resync: time.Second, Debounce: time.Millisecond}, result{ws: ws, err: errors.New("read state")})
	h.pass(1)
	h.next(time.Second).fire <- time.Time{}
	h.pass(2)
}

// TestStopsWhenContextEnds: Run returns nil once its context ends, even in
// the middle of a wait.
func TestStopsWhenContextEnds(t *testing.T) {
	ws, _ := watched()
	h := start(t, &Loop{Resync: time.Hour}, result{ws: ws})
	h.pass(1)
	h.next(time.Hour)
	h.cancel()
	if err := <-h.done; err != nil {
		t.Fatalf("Run returned %v", err)
	}
	h.done <- nil // for the cleanup
}
