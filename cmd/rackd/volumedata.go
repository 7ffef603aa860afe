package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/compute"
	"github.com/rackstack/rackstack/fabric/image"
	"github.com/rackstack/rackstack/fabric/volume"
	"github.com/rackstack/rackstack/storage/block"
)

// volumeImages is the image service as volume create sees it.
type volumeImages struct{ images *image.Service }

var _ volume.Images = volumeImages{}

func (v volumeImages) Get(ctx context.Context, p *api.Principal, id string) (volume.ImageInfo, error) {
	img, err := v.images.Get(ctx, p, id)
	if err != nil {
		return volume.ImageInfo{}, err
	}
	return volume.ImageInfo{ID: img.ID, Name: img.Name, Status: img.Status, DiskFormat: img.DiskFormat, ContainerFormat: img.ContainerFormat,
		Checksum: img.Checksum, Size: img.Size, VirtualSize: img.VirtualSize, MinDisk: img.MinDisk, MinRAM: img.MinRAM,
		Properties: img.Properties}, nil
}

// volumeData moves bytes into volumes on this node: an image's disk
// (converted to raw by qemu-img when it is a qcow2) written into a new
// volume through the block store.
type volumeData struct {
	blocks *block.Store
	images *image.Service
	// tmp holds images being converted.
	tmp string
}

var _ volume.Data = (*volumeData)(nil)

func (d *volumeData) ImageToVolume(ctx context.Context, imageID, volumeID string) error {
	rc, img, err := d.images.Open(ctx, imageID)
	if err != nil {
		return err
	}
	defer rc.Close()
	var src io.Reader = rc
	if img.DiskFormat == "qcow2" {
		raw, cleanup, err := d.convert(ctx, rc, volumeID)
		if err != nil {
			return err
		}
		defer cleanup()
		src = raw
	}
	v, err := d.blocks.Open(ctx, volumeID)
	if err != nil {
		return err
	}
	_, err = v.Fill(ctx, src)
	if cerr := v.Close(); err == nil {
		err = cerr
	}
	return err
}

// convert fetches a qcow2 image to a file and converts it to a raw one
// (sparse: its holes cost nothing), which it opens.
func (d *volumeData) convert(ctx context.Context, r io.Reader, name string) (*os.File, func(), error) {
	if err := os.MkdirAll(d.tmp, 0o700); err != nil {
		return nil, nil, fmt.Errorf("create %s: %w", d.tmp, err)
	}
	qcow, raw := filepath.Join(d.tmp, name+".qcow2"), filepath.Join(d.tmp, name+".raw")
	cleanup := func() { os.Remove(qcow); os.Remove(raw) }
	f, err := os.OpenFile(qcow, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, nil, err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("fetch image: %w", err)
	}
	// -f is given: a format is never probed from bytes a tenant uploaded.
	out, err := exec.CommandContext(ctx, "qemu-img", "convert", "-q", "-f", "qcow2", "-O", "raw", qcow, raw).CombinedOutput()
	if err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("qemu-img convert: %v: %s", err, strings.TrimSpace(string(out)))
	}
	os.Remove(qcow)
	rf, err := os.Open(raw)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	return rf, func() { rf.Close(); cleanup() }, nil
}

// blockExists is Blocks.Exists on the block store.
func blockExists(ctx context.Context, s *block.Store, id string) (bool, error) {
	_, err := s.Info(ctx, id)
	if errors.Is(err, block.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// bootVolumes is the volume service as Nova's boot from volume uses it.
type bootVolumes struct{ s *volume.Service }

var _ compute.BootVolumes = bootVolumes{}

func (b bootVolumes) CreateFromImage(ctx context.Context, p *api.Principal, image string, sizeGB int, name string) (string, error) {
	return b.s.CreateFromImage(ctx, p, image, sizeGB, name)
}

func (b bootVolumes) Delete(ctx context.Context, p *api.Principal, id string) error {
	return b.s.DeleteVolume(ctx, p, id)
}
