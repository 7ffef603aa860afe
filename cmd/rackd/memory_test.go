package main

import (
	"context"
	"math"
	"runtime/debug"
	"testing"
	"time"
)

func TestGarbageCapLimit(t *testing.T) {
	g := garbageCap{floor: 256 << 20, headroom: 64 << 20}
	tests := map[string]struct{ live, want int64 }{
		"small heap: the floor, GOGC decides below it": {live: 30 << 20, want: 256 << 20},
		"at the floor less the headroom":               {live: 192 << 20, want: 256 << 20},
		"large live heap: never under it":              {live: 1 << 30, want: 1<<30 + 64<<20},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := g.limit(tc.live); got != tc.want {
				t.Errorf("limit(%d) = %d, want %d", tc.live, got, tc.want)
			}
		})
	}
}

// run sets the process's memory limit while it runs and lifts it after.
func TestGarbageCapSetsAndLiftsTheLimit(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	g := garbageCap{floor: 1 << 40, headroom: 1 << 20, every: time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { g.run(ctx); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for debug.SetMemoryLimit(-1) != 1<<40 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := debug.SetMemoryLimit(-1); got != 1<<40 {
		t.Fatalf("memory limit %d while running, want the floor %d", got, int64(1<<40))
	}
	cancel()
	<-done
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("memory limit %d after run ended, want none", got)
	}
}
