package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume"
	"github.com/rackstack/rackstack/storage/blob"
	"github.com/rackstack/rackstack/storage/block"
	"github.com/rackstack/rackstack/storage/disk"
	"github.com/rackstack/rackstack/storage/object"
	"github.com/rackstack/rackstack/storage/object/objecttest"
	"github.com/rackstack/rackstack/storage/placement"
)

func testBlocks(t *testing.T) *block.Store {
	t.Helper()
	repl, err := store.NewLocal(block.Schema())
	if err != nil {
		t.Fatal(err)
	}
	local := map[string]disk.Disk{}
	var disks []placement.Disk
	for range 3 {
		d, err := disk.OpenDir(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		local[d.ID()] = d
		disks = append(disks, placement.Disk{Node: "n1", ID: d.ID()})
	}
	return block.New(block.Config{Repl: repl, Blobs: &blob.Store{Node: "n1", Local: local},
		Disks: func(context.Context) ([]placement.Disk, error) { return disks, nil }})
}

func readVolume(t *testing.T, s *block.Store, id string) []byte {
	t.Helper()
	v, err := s.Open(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	b := make([]byte, v.Size())
	if _, err := v.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return b
}

// A backup is objects in the project's own container; it restores the
// volume byte for byte after the volume is gone, and its deletion leaves
// no object behind.
func TestBackupsAreObjectsOfTheProject(t *testing.T) {
	ctx := context.Background()
	blocks := testBlocks(t)
	objs := objecttest.New(t, 3, 4096)
	b := &volumeBackups{blocks: blocks, objects: objs}
	const size = 3 * block.ExtentSize
	if err := blocks.Create(ctx, "src", size, block.Options{}); err != nil {
		t.Fatal(err)
	}
	v, err := blocks.Open(ctx, "src")
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, size)
	copy(want[block.ExtentSize+100:], "pattern in the second extent")
	if _, err := v.Fill(ctx, bytes.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	n, stored, err := b.Backup(ctx, volume.BackupJob{Project: "p1", Container: "volumebackups", Prefix: "bk1", Source: "src"})
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 || stored != block.ChunkSize {
		t.Fatalf("wrote %d objects, %d bytes; want the one chunk with data and the manifest", n, stored)
	}
	entries, _, err := objs.List(ctx, "p1", "volumebackups", object.ListOptions{})
	if err != nil || len(entries) != 2 || entries[0].Name() != "bk1/chunk-00000001" || entries[1].Name() != "bk1/manifest" {
		t.Fatalf("objects %v %v", entries, err)
	}
	if _, err := blocks.Info(ctx, "backup-bk1"); !errors.Is(err, block.ErrNotFound) {
		t.Fatalf("the backup's snapshot is left: %v", err)
	}
	if err := blocks.Delete(ctx, "src"); err != nil {
		t.Fatal(err)
	}
	if err := blocks.Create(ctx, "dst", size, block.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := b.Restore(ctx, "p1", "volumebackups", "bk1", "dst"); err != nil {
		t.Fatal(err)
	}
	if got := readVolume(t, blocks, "dst"); !bytes.Equal(got, want) {
		t.Fatal("the restored volume differs from the one backed up")
	}
	if err := b.Delete(ctx, "p1", "volumebackups", "bk1"); err != nil {
		t.Fatal(err)
	}
	if entries, _, _ := objs.List(ctx, "p1", "volumebackups", object.ListOptions{}); len(entries) != 0 {
		t.Fatalf("objects left after the delete: %v", entries)
	}
	if err := b.Restore(ctx, "p1", "volumebackups", "bk1", "dst"); err == nil || !strings.Contains(err.Error(), "manifest") {
		t.Fatalf("restore of a deleted backup: %v", err)
	}
}
