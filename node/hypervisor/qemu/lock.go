package qemu

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// vmLock serialises the operations on one VM, between goroutines and
// between processes (two driver instances on one run dir: a rackd starting
// while the last one is still stopping). It is a flock on
// <RunDir>/.<id>.lock; flock locks belong to an open file, so two lock
// calls in one process exclude each other too.
type vmLock struct {
	f    *os.File
	path string
	dir  string // the VM's run directory
}

// lock blocks until it holds the lock of VM id.
func (d *Driver) lock(id string) (*vmLock, error) {
	path := filepath.Join(d.runDir, "."+id+".lock")
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return nil, fmt.Errorf("lock: %w", err)
		}
		if err := flock(f, unix.LOCK_EX); err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		// Destroy removes the file while holding it: if that happened
		// while we waited, we hold a lock on a file nobody else will
		// find, so start over on the current one.
		var held, current unix.Stat_t
		if unix.Fstat(int(f.Fd()), &held) == nil && unix.Stat(path, &current) == nil &&
			held.Dev == current.Dev && held.Ino == current.Ino {
			return &vmLock{f: f, path: path, dir: filepath.Join(d.runDir, id)}, nil
		}
		f.Close()
	}
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			return err
		}
	}
}

// unlock drops the lock. If the VM has no run directory (destroyed, or
// its first start failed) the lock file goes first, so none outlive their
// VMs.
func (l *vmLock) unlock() {
	if _, err := os.Stat(l.dir); errors.Is(err, fs.ErrNotExist) {
		os.Remove(l.path)
	}
	l.f.Close() // closing the file drops the flock
}
