package blob

import (
	"errors"
	"sync"

	"github.com/rackstack/rackstack/storage/disk"
	"github.com/rackstack/rackstack/storage/placement"
)

// diskErrors counts the failures of this node's disks: a shard that
// could not be created, written, committed, opened, read or removed, and
// a block whose checksum did not match (the disk returned bad bytes). A
// shard that is simply missing is not the disk's failure, nor is a write
// given up because the caller went away.
type diskErrors struct {
	mu sync.Mutex
	n  map[string]int64
}

// diskError counts err against disk d when d is one of this node's disks
// and err is the disk's failure.
func (s *Store) diskError(d placement.Disk, err error) {
	if err == nil || errors.Is(err, disk.ErrNotFound) {
		return
	}
	if _, ok := s.Local[d.ID]; !ok || d.Node != s.Node {
		return
	}
	s.diskErrs.mu.Lock()
	defer s.diskErrs.mu.Unlock()
	if s.diskErrs.n == nil {
		s.diskErrs.n = map[string]int64{}
	}
	s.diskErrs.n[d.ID]++
}

// DiskErrors returns how many times each of this node's disks failed
// (see diskErrors) since the process started; a disk that never failed
// is 0.
func (s *Store) DiskErrors() map[string]int64 {
	s.diskErrs.mu.Lock()
	defer s.diskErrs.mu.Unlock()
	out := make(map[string]int64, len(s.Local))
	for id := range s.Local {
		out[id] = s.diskErrs.n[id]
	}
	return out
}
