// Package disktest has disks that misbehave on purpose, for the tests of
// the layers above storage/disk.
package disktest

import (
	"sync"
	"testing"

	"github.com/rackstack/rackstack/storage/disk"
)

// Frozen is a disk whose writes hang until thawed, as a disk or node that
// stopped answering does.
type Frozen struct {
	disk.Disk
	thaw chan struct{}
	once sync.Once
	// inWrite: shard files are created, and the first write to each
	// hangs (a disk that hangs in the middle of a write).
	inWrite bool
}

// Freeze wraps d; the test's cleanup thaws it, so no writer is left
// hanging.
func Freeze(t testing.TB, d disk.Disk) *Frozen {
	f := &Frozen{Disk: d, thaw: make(chan struct{})}
	t.Cleanup(f.Thaw)
	return f
}

// FreezeWrites is Freeze whose shard files are created at once; writes to
// them hang until thawed.
func FreezeWrites(t testing.TB, d disk.Disk) *Frozen {
	f := Freeze(t, d)
	f.inWrite = true
	return f
}

// Create waits until the disk is thawed (unless only writes hang).
func (f *Frozen) Create(name string) (disk.Writer, error) {
	if !f.inWrite {
		<-f.thaw
		return f.Disk.Create(name)
	}
	w, err := f.Disk.Create(name)
	if err != nil {
		return nil, err
	}
	return frozenWriter{w, f.thaw}, nil
}

type frozenWriter struct {
	disk.Writer
	thaw chan struct{}
}

func (w frozenWriter) Write(p []byte) (int, error) {
	<-w.thaw
	return w.Writer.Write(p)
}

// Thaw lets every waiting and later write through; it may be called twice.
func (f *Frozen) Thaw() { f.once.Do(func() { close(f.thaw) }) }
