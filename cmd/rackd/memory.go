package main

import (
	"context"
	"math"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// garbageCap keeps the heap within a stated bound of what is live. rackd
// runs with GOGC=400 (main), which lets garbage grow to four times the
// live heap before a collection: cheap for the control plane's small
// heap, but under object traffic the live heap includes the blob buffers
// (up to blob.DefaultBufferBudget), and four times that is gigabytes. A
// soft memory limit of max(floor, live + headroom), moved as the live
// heap changes, collects earlier only when the heap is large: below the
// floor GOGC decides as before, and the limit never falls under what is
// live, so the collector is never made to run without freeing anything.
type garbageCap struct {
	floor, headroom int64
	every           time.Duration
}

// newGarbageCap has the default bounds: the heap of a node stays under
// 256 MiB, or 64 MiB above its live heap once that is larger (a big state
// besides the blob buffers).
func newGarbageCap() garbageCap {
	return garbageCap{floor: 256 << 20, headroom: 64 << 20, every: 250 * time.Millisecond}
}

// limit is the memory limit for a live heap of live bytes.
func (g garbageCap) limit(live int64) int64 { return max(g.floor, live+g.headroom) }

// run moves the memory limit until ctx ends, then lifts it. A GOMEMLIMIT
// in the environment is the operator's and is left alone (main does not
// call run then).
func (g garbageCap) run(ctx context.Context) {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	set := func() {
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			debug.SetMemoryLimit(g.limit(int64(sample[0].Value.Uint64())))
		}
	}
	set()
	t := time.NewTicker(g.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			debug.SetMemoryLimit(math.MaxInt64)
			return
		case <-t.C:
			set()
		}
	}
}
