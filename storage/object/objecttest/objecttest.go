// Package objecttest builds a real object store for the tests of the
// packages that serve it (Swift, S3): one node, local disk directories, the
// replicated state without Raft.
package objecttest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/storage/blob"
	"github.com/rackstack/rackstack/storage/disk"
	"github.com/rackstack/rackstack/storage/object"
)

// New returns an object service over n fresh disk directories with shards
// of at most maxShard bytes, its disks registered.
func New(t testing.TB, n, maxShard int) *object.Service {
	t.Helper()
	svc, _ := NewWithDisks(t, n, maxShard)
	return svc
}

// NewWithDisks is New that also returns the disks, for tests that damage
// them.
func NewWithDisks(t testing.TB, n, maxShard int) (*object.Service, map[string]disk.Disk) {
	t.Helper()
	return NewWithBuffers(t, n, maxShard, nil)
}

// NewWithBuffers is NewWithDisks whose blob store works in bufs (nil: the
// blob store's default), for tests of its memory.
func NewWithBuffers(t testing.TB, n, maxShard int, bufs *blob.Buffers) (*object.Service, map[string]disk.Disk) {
	t.Helper()
	return NewWithBlobs(t, n, maxShard, &blob.Store{Buffers: bufs})
}

// NewWithBlobs is NewWithDisks over blobs, whose settings (Buffers,
// timeouts) it keeps; it gives it the node and the disks.
func NewWithBlobs(t testing.TB, n, maxShard int, blobs *blob.Store) (*object.Service, map[string]disk.Disk) {
	t.Helper()
	local, err := store.NewLocal(object.Schema())
	if err != nil {
		t.Fatal(err)
	}
	disks := map[string]disk.Disk{}
	var rows []object.DiskRow
	for i := 0; i < n; i++ {
		dir := filepath.Join(t.TempDir(), "disk")
		d, err := disk.OpenDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		disks[d.ID()] = d
		rows = append(rows, object.DiskRow{ID: d.ID(), Path: dir})
	}
	blobs.Node, blobs.Local = "n1", disks
	svc := object.New(object.Config{
		Repl: local, Node: "n1", MaxShard: maxShard,
		Blobs: blobs,
		Local: func() []object.DiskRow { return rows },
	})
	if err := svc.RegisterDisks(context.Background()); err != nil {
		t.Fatal(err)
	}
	return svc, disks
}

// LoseShards deletes the first n shards of every part of o.
func LoseShards(t testing.TB, disks map[string]disk.Disk, o *object.Object, n int) {
	t.Helper()
	for _, p := range o.Parts {
		for i := 0; i < n; i++ {
			if err := disks[p.Layout.Disks[i].ID].Remove(blob.ShardName(p.Blob, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
}
