package metadata

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rackstack/rackstack/node/hypervisor"
)

// TestLiveDevicesOutlastTheRequest: a read slower than the guest's
// request goes on after the request gives up, and the next request gets
// its result without a second read; a failed read is tried again.
func TestLiveDevicesOutlastTheRequest(t *testing.T) {
	var calls atomic.Int32
	fail := atomic.Bool{}
	read := func(ctx context.Context, id string) ([]hypervisor.GuestDevice, error) {
		calls.Add(1)
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if fail.Load() {
			return nil, errors.New("qmp went away")
		}
		return []hypervisor.GuestDevice{{Kind: hypervisor.DeviceNIC, Address: "0000:00:03.0", MAC: "fa:16:3e:00:00:01"}}, nil
	}
	var l liveDevices
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := l.get(short, read, "vm"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a request shorter than the read: %v", err)
	}
	time.Sleep(300 * time.Millisecond) // the read the first request started ends
	devs, err := l.get(context.Background(), read, "vm")
	if err != nil || len(devs) != 1 || devs[0].Address != "0000:00:03.0" {
		t.Fatalf("the next request: %+v, %v", devs, err)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d reads, want the first request's one", n)
	}
	// Another server reads on its own; a failed read is not kept.
	fail.Store(true)
	if _, err := l.get(context.Background(), read, "other"); err == nil {
		t.Fatal("a failed read answered")
	}
	fail.Store(false)
	if devs, err := l.get(context.Background(), read, "other"); err != nil || len(devs) != 1 {
		t.Fatalf("after a failed read: %+v, %v", devs, err)
	}
}
