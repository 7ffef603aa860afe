package bgwork

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// Run settles at once, stops the work in hand when its context ends and
// waits for it; nothing starts after.
func TestRunStopsAndWaitsForWork(t *testing.T) {
	r := New()
	ctx, cancel := context.WithCancel(context.Background())
	var settled atomic.Int32
	ran := make(chan error, 1)
	go func() { ran <- r.Run(ctx, time.Hour, func(context.Context) { settled.Add(1) }) }()
	started, ended := make(chan struct{}), make(chan struct{})
	r.Go(func(ctx context.Context) {
		close(started)
		<-ctx.Done()
		close(ended)
	})
	<-started
	cancel()
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not end")
	}
	select {
	case <-ended:
	default:
		t.Fatal("Run ended before the work it stopped")
	}
	if settled.Load() < 1 {
		t.Fatal("Run did not settle at start")
	}
	late := false
	r.Go(func(context.Context) { late = true })
	time.Sleep(10 * time.Millisecond)
	if late {
		t.Fatal("work started after Run ended")
	}
}
