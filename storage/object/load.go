package object

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// clientLoad tells the background loops (healer, scrubber, repair pass)
// whether this node serves clients, and paces them together while it
// does (see Service.backOff). A request counts while it is in flight and
// for loadLinger after it ends: a client reading one object after another
// leaves gaps of a few milliseconds that must not read as idle.
type clientLoad struct {
	inflight atomic.Int64
	lastEnd  atomic.Int64 // time.Now().UnixNano() when a request last ended

	mu sync.Mutex
	// next is when the background work done so far under load has taken
	// the time BusyRate allows it: the loops share it, so that together,
	// not each, they keep to BusyRate.
	next time.Time
}

const loadLinger = time.Second

// inFlightShare divides BusyRate while a client request is in flight
// (not only lingering): the reads of a degraded object's client shared the
// disks with the heal of the very blobs they found degraded, and at c=1
// read at 62-72% of healthy while the healer moved 64 MiB/s beside them.
// Healing still goes on, at a quarter of BusyRate, however long the
// clients keep the node busy.
const inFlightShare = 4

// begin counts a client request until the returned func is called.
func (l *clientLoad) begin() (end func()) {
	l.inflight.Add(1)
	return func() {
		l.lastEnd.Store(time.Now().UnixNano())
		l.inflight.Add(-1)
	}
}

// busy reports whether a client request is in flight or ended less than
// loadLinger ago.
func (l *clientLoad) busy() bool {
	if l.inflight.Load() > 0 {
		return true
	}
	last := l.lastEnd.Load()
	return last != 0 && time.Since(time.Unix(0, last)) < loadLinger
}

// backOff paces one item of background work that moved (read, rebuilt or
// copied) n bytes since start: while this node serves clients, the
// healer, the scrubber and the repair pass together move no more than
// BusyRate bytes per second, and a quarter of it (inFlightShare) while a
// request is in flight. Idle, it does not wait. It reports false if ctx
// ended while it waited.
func (s *Service) backOff(ctx context.Context, start time.Time, n int64) bool {
	if !s.clients.busy() || s.cfg.BusyRate <= 0 {
		return true
	}
	rate := s.cfg.BusyRate
	if s.clients.inflight.Load() > 0 {
		rate = max(1, rate/inFlightShare)
	}
	l := &s.clients
	l.mu.Lock()
	if l.next.Before(start) {
		l.next = start // idle since: no credit, no debt
	}
	l.next = l.next.Add(time.Duration(float64(n) / float64(rate) * float64(time.Second)))
	until := l.next
	l.mu.Unlock()
	return sleep(ctx, time.Until(until))
}
