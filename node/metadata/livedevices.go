package metadata

import (
	"context"
	"sync"
	"time"

	"github.com/rackstack/rackstack/node/hypervisor"
)

// Reading a guest's device addresses takes several QMP round trips, one
// client at a time per QEMU, and a TCG guest's QEMU answers slowly while
// it plugs a device; a guest polling its metadata with a short timeout
// (or cloud-init's) would cancel every read before it finished, and see
// no addresses ever. So the read runs apart from the request (its own
// deadline), one at a time per server, and its result is kept a little
// while: a request waits for it only as long as the guest does, and a
// later request gets what the earlier one started.

const (
	liveDevicesFresh   = 5 * time.Second  // a result this recent is served as is
	liveDevicesTimeout = 30 * time.Second // one read's own deadline
)

type liveRead struct {
	done chan struct{} // closed once devs and err are set
	devs []hypervisor.GuestDevice
	err  error
	at   time.Time
}

// liveDevices caches GuestDevices per server.
type liveDevices struct {
	mu    sync.Mutex
	reads map[string]*liveRead
	fresh time.Duration // default liveDevicesFresh
}

// get returns the server's devices: a fresh enough result, or the one a
// read (started now unless one runs) finds before ctx ends.
func (l *liveDevices) get(ctx context.Context, read func(context.Context, string) ([]hypervisor.GuestDevice, error), id string) ([]hypervisor.GuestDevice, error) {
	l.mu.Lock()
	if l.reads == nil {
		l.reads = map[string]*liveRead{}
	}
	r := l.reads[id]
	if r != nil {
		select {
		case <-r.done:
			fresh := l.fresh
			if fresh == 0 {
				fresh = liveDevicesFresh
			}
			if r.err != nil || time.Since(r.at) > fresh {
				r = nil // stale or failed: read again
			}
		default: // a read runs: wait for it
		}
	}
	if r == nil {
		r = &liveRead{done: make(chan struct{})}
		l.reads[id] = r
		go func() {
			rctx, cancel := context.WithTimeout(context.Background(), liveDevicesTimeout)
			defer cancel()
			devs, err := read(rctx, id)
			l.mu.Lock()
			r.devs, r.err, r.at = devs, err, time.Now()
			l.mu.Unlock()
			close(r.done)
		}()
	}
	l.mu.Unlock()
	select {
	case <-r.done:
		l.mu.Lock()
		defer l.mu.Unlock()
		return r.devs, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
