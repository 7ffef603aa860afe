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
}

// Freeze wraps d; the test's cleanup thaws it, so no writer is left
// hanging.
func Freeze(t testing.TB, d disk.Disk) *Frozen {
	f := &Frozen{Disk: d, thaw: make(chan struct{})}
	t.Cleanup(f.Thaw)
	return f
}

// Create waits until the disk is thawed.
func (f *Frozen) Create(name string) (disk.Writer, error) {
	<-f.thaw
	return f.Disk.Create(name)
}

// Thaw lets every waiting and later write through; it may be called twice.
func (f *Frozen) Thaw() { f.once.Do(func() { close(f.thaw) }) }
