package blob

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"
)

// Each of this node's disks counts its own failures: a write it refused,
// bytes that failed their checksum. A missing shard is no disk failure,
// and the other disks count nothing.
func TestDiskErrorsCountEachDisksOwnFailures(t *testing.T) {
	ctx := context.Background()
	s, l := newStore(t, 6)
	data := payload(2*l.K*l.ShardSize + 7)
	if _, err := s.Put(ctx, "a", l, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	refusing, rotting, missing := l.Disks[0].ID, l.Disks[1].ID, l.Disks[2].ID
	s.Local[refusing] = &faultyDisk{Disk: s.Local[refusing], createErr: errors.New("I/O error")}
	s.Local[rotting] = &faultyDisk{Disk: s.Local[rotting], corrupt: true}
	if err := os.Remove(shardPath(s, l, "a", 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "b", l, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if got, _, err := get(t, s, "a", l, int64(len(data)), 0, int64(len(data))); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("degraded read: %v", err)
	}
	errs := s.DiskErrors()
	if len(errs) != 6 {
		t.Fatalf("errors of %d disks, want all 6: %v", len(errs), errs)
	}
	for id, n := range errs {
		want := int64(0)
		if id == refusing || id == rotting {
			want = 1
		}
		if n != want {
			t.Errorf("disk %s (refusing %v, rotting %v, missing a shard %v): %d errors, want %d", id, id == refusing, id == rotting, id == missing, n, want)
		}
	}
}
