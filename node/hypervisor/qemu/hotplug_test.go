package qemu_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rackstack/rackstack/node/hypervisor"
	"github.com/rackstack/rackstack/storage/block"
	"github.com/rackstack/rackstack/storage/block/nbd"
)

// memDevice is an in-memory NBD device whose size the test changes.
type memDevice struct {
	mu sync.Mutex
	b  []byte
}

func (m *memDevice) Size() int64 { m.mu.Lock(); defer m.mu.Unlock(); return int64(len(m.b)) }
func (m *memDevice) ReadAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return copy(p, m.b[off:]), nil
}
func (m *memDevice) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return copy(m.b[off:], p), nil
}
func (m *memDevice) WriteZeroes(off, n int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.b[off : off+n])
	return nil
}
func (m *memDevice) Trim(off, n int64) error     { return m.WriteZeroes(off, n) }
func (m *memDevice) Flush(context.Context) error { return nil }
func (m *memDevice) grow(n int64)                { m.mu.Lock(); m.b = append(m.b, make([]byte, n)...); m.mu.Unlock() }
func (m *memDevice) Extents(off, n int64) ([]block.Range, error) {
	return []block.Range{{Off: off, Len: n}}, nil
}

// TestHotplugDisk plugs an NBD export into a running guest, grows it, and
// asks for it back. The guest is firmware only: it never acknowledges an
// unplug, so the detach stays pending, as it does for a guest that does
// not cooperate.
func TestHotplugDisk(t *testing.T) {
	requireQEMU(t)
	runDir := newRunDir(t)
	d := newDriver(t, runDir)
	vm, err := d.Start(ctxFor(t, time.Minute), blankSpecAt(newID("hot"), blankDisk(t)))
	if err != nil {
		t.Fatal(err)
	}
	destroyAtCleanup(t, vm)
	hp, ok := vm.(hypervisor.Hotplug)
	if !ok {
		t.Fatal("the QEMU driver's VMs do not hot-plug disks")
	}

	dev := &memDevice{b: make([]byte, 8<<20)}
	srv := nbd.NewServer(nil)
	if err := srv.Export("vol1", dev); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(runDir, "nbd.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeUnix(ctx, sock) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "nbd socket", 10*time.Second, func() bool { return fileExists(sock) })

	disk := hypervisor.HotDisk{ID: "vol1", Socket: sock, Export: "vol1", Serial: "vol1-serial"}
	if err := hp.AttachDisk(ctxFor(t, 30*time.Second), disk); err != nil {
		t.Fatal(err)
	}
	if err := hp.AttachDisk(ctxFor(t, 30*time.Second), disk); err != nil {
		t.Fatalf("attach again: %v", err)
	}
	if ids, err := hp.HotDisks(ctxFor(t, 10*time.Second)); err != nil || !slices.Equal(ids, []string{"vol1"}) {
		t.Fatalf("hot disks %v, %v", ids, err)
	}
	if err := hp.AttachDisk(ctxFor(t, 30*time.Second), hypervisor.HotDisk{ID: "Bad_ID", Socket: sock, Export: "vol1"}); !errors.Is(err, hypervisor.ErrInvalidSpec) {
		t.Fatalf("bad id: %v", err)
	}

	dev.grow(8 << 20)
	if err := hp.ResizeDisk(ctxFor(t, 30*time.Second), disk, dev.Size()); err != nil {
		t.Fatalf("resize: %v", err)
	}

	dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer dcancel()
	if err := hp.DetachDisk(dctx, "vol1"); !errors.Is(err, hypervisor.ErrDetachPending) {
		t.Fatalf("detach from a guest that does not let go: %v", err)
	}
}

func fileExists(path string) bool { _, err := os.Stat(path); return err == nil }
