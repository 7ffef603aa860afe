package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/api/apitest"
	"github.com/rackstack/rackstack/fabric/image"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/testenv"
	"github.com/rackstack/rackstack/fabric/volume"
	"github.com/rackstack/rackstack/storage/block"
	"github.com/rackstack/rackstack/storage/object/objecttest"
)

// A volume uploaded as raw is its bytes; as qcow2 it is a qcow2 disk
// holding the same bytes (qemu-img compares them).
func TestVolumeUploadsToImage(t *testing.T) {
	testenv.RequireCommand(t, "qemu-img")
	ctx := context.Background()
	blocks := testBlocks(t)
	local, err := store.NewLocal(image.Schema())
	if err != nil {
		t.Fatal(err)
	}
	images, err := image.New(image.Config{Repl: local, Auth: apitest.Tokens{}, Objects: objecttest.New(t, 6, 4096)})
	if err != nil {
		t.Fatal(err)
	}
	const size = 2 * block.ExtentSize
	if err := blocks.Create(ctx, "vol", size, block.Options{}); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, size)
	copy(want[100:], "at the start")
	copy(want[block.ExtentSize+7:], "in the second extent")
	v, err := blocks.Open(ctx, "vol")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Fill(ctx, bytes.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if err := blocks.Snapshot(ctx, "snap", "vol"); err != nil {
		t.Fatal(err)
	}
	u := &volumeUploads{blocks: blocks, images: images, tmp: t.TempDir()}
	p := &api.Principal{ProjectID: "p1", Roles: []string{"member"}}
	dir := t.TempDir()
	raw := filepath.Join(dir, "want.raw")
	if err := os.WriteFile(raw, want, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"raw", "qcow2"} {
		id, err := u.CreateImage(ctx, p, volume.NewImage{Name: format, DiskFormat: format, ContainerFormat: "bare", Visibility: "private"})
		if err != nil {
			t.Fatal(err)
		}
		if err := u.VolumeToImage(ctx, "snap", id, format); err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		rc, img, err := images.Open(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if img.Status != image.StatusActive || img.Size != int64(len(got)) {
			t.Fatalf("%s: image %s, %d bytes of %d", format, img.Status, len(got), img.Size)
		}
		if format == "raw" {
			if !bytes.Equal(got, want) {
				t.Fatal("raw image differs from the volume")
			}
			continue
		}
		saved := filepath.Join(dir, "got.qcow2")
		if err := os.WriteFile(saved, got, 0o600); err != nil {
			t.Fatal(err)
		}
		if img.VirtualSize != size {
			t.Fatalf("qcow2 virtual size %d, want %d", img.VirtualSize, size)
		}
		if out, err := exec.Command("qemu-img", "compare", "-f", "qcow2", "-F", "raw", saved, raw).CombinedOutput(); err != nil {
			t.Fatalf("qemu-img compare: %v\n%s", err, out)
		}
	}
}
