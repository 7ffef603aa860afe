package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/compute"
	"github.com/rackstack/rackstack/fabric/image"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
	"github.com/rackstack/rackstack/node/hypervisor"
	"github.com/rackstack/rackstack/node/hypervisor/qemu"
	"github.com/rackstack/rackstack/node/volumes"
	"github.com/rackstack/rackstack/storage/block"
	"github.com/rackstack/rackstack/storage/object"
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
	// state and unseal find an encrypted volume's key, for an image
	// written through its LUKS layer.
	state  func(ctx context.Context) (*memdb.Txn, error)
	unseal func(sealed string, aad []byte) ([]byte, error)
}

var _ volume.Data = (*volumeData)(nil)

func (d *volumeData) ImageToVolume(ctx context.Context, imageID, volumeID string) error {
	enc, err := d.volumeKey(ctx, volumeID)
	if err != nil {
		return err
	}
	if enc != nil {
		defer clear(enc.Passphrase)
	}
	rc, img, err := d.images.Open(ctx, imageID)
	if err != nil {
		return err
	}
	defer rc.Close()
	var src io.Reader = rc
	if enc != nil {
		luks, cleanup, err := d.encrypt(ctx, rc, img.DiskFormat, volumeID, enc)
		if err != nil {
			return err
		}
		defer cleanup()
		src = luks
	} else if img.DiskFormat == "qcow2" {
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

// volumeKey is how encrypted volume id is written: its key, opened, and
// its type's cipher; nil for a volume that is not encrypted.
func (d *volumeData) volumeKey(ctx context.Context, id string) (*hypervisor.DiskEncryption, error) {
	if d.state == nil {
		return nil, nil
	}
	tx, err := d.state(ctx)
	if err != nil {
		return nil, err
	}
	v, err := volstate.LoadVolume(tx, id)
	if err != nil {
		return nil, err
	}
	if v.Key == "" {
		return nil, nil
	}
	if d.unseal == nil {
		return nil, fmt.Errorf("volume %s is encrypted and this node cannot open volume keys", id)
	}
	pass, err := d.unseal(v.Key, []byte(v.ID))
	if err != nil {
		return nil, fmt.Errorf("open the key of volume %s: %w", id, err)
	}
	return &hypervisor.DiskEncryption{Passphrase: pass, CipherAlg: volumes.CipherAlg(tx, v)}, nil
}

// luksTries bounds the runs of qemu-img's LUKS writer: its PBKDF2
// timing fails now and then on a busy host, having written nothing.
const luksTries = 5

// encrypt fetches an image to a file and writes it, as raw bytes, under
// a new LUKS header sealed by e's passphrase (what QEMU opens when the
// volume is attached or booted from, as Cinder writes an image into an
// encrypted volume), which it opens. The key reaches qemu-img through a
// pipe, never its command line.
func (d *volumeData) encrypt(ctx context.Context, r io.Reader, diskFormat, name string, e *hypervisor.DiskEncryption) (*os.File, func(), error) {
	in, out := filepath.Join(d.tmp, name+".image"), filepath.Join(d.tmp, name+".luks")
	cleanup := func() { os.Remove(in); os.Remove(out) }
	if err := d.fetch(r, in); err != nil {
		cleanup()
		return nil, nil, err
	}
	format := "raw"
	if diskFormat == "qcow2" {
		format = "qcow2"
	}
	for try := 1; ; try++ {
		pipe, err := qemu.KeyPipe(e.Passphrase)
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		// -f is given: a format is never probed from bytes a tenant
		// uploaded.
		cmd := exec.CommandContext(ctx, "qemu-img", "convert", "-q", "-f", format, "-O", "luks",
			"--object", "secret,id=key,format=base64,file=/dev/fd/3",
			"-o", "key-secret=key,cipher-alg="+e.CipherAlg+",cipher-mode=xts,ivgen-alg=plain64,hash-alg=sha256,iter-time=100", in, out)
		cmd.ExtraFiles = []*os.File{pipe}
		msg, err := cmd.CombinedOutput()
		pipe.Close()
		if err == nil {
			break
		}
		if try == luksTries || !strings.Contains(string(msg), "Unable to get accurate CPU usage") {
			cleanup()
			return nil, nil, fmt.Errorf("qemu-img convert to luks: %v: %s", err, strings.TrimSpace(string(msg)))
		}
	}
	os.Remove(in)
	return openConverted(out, cleanup)
}

// convert fetches a qcow2 image to a file and converts it to a raw one
// (sparse: its holes cost nothing), which it opens.
func (d *volumeData) convert(ctx context.Context, r io.Reader, name string) (*os.File, func(), error) {
	qcow, raw := filepath.Join(d.tmp, name+".qcow2"), filepath.Join(d.tmp, name+".raw")
	cleanup := func() { os.Remove(qcow); os.Remove(raw) }
	if err := d.fetch(r, qcow); err != nil {
		cleanup()
		return nil, nil, err
	}
	// -f is given: a format is never probed from bytes a tenant uploaded.
	out, err := exec.CommandContext(ctx, "qemu-img", "convert", "-q", "-f", "qcow2", "-O", "raw", qcow, raw).CombinedOutput()
	if err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("qemu-img convert: %v: %s", err, strings.TrimSpace(string(out)))
	}
	os.Remove(qcow)
	return openConverted(raw, cleanup)
}

// fetch writes an image's bytes from r into path, a file of d.tmp only
// this user reads.
func (d *volumeData) fetch(r io.Reader, path string) error {
	if err := os.MkdirAll(d.tmp, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", d.tmp, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fetch image: %w", err)
	}
	return nil
}

// openConverted opens a conversion's output at path for reading; the
// cleanup returned closes it and runs cleanup, which removes the files.
func openConverted(path string, cleanup func()) (*os.File, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	return f, func() { f.Close(); cleanup() }, nil
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

func (b bootVolumes) Reimage(ctx context.Context, p *api.Principal, id, image string) error {
	return b.s.ReimageForServer(ctx, p, id, image)
}

func (b bootVolumes) CreateFromImage(ctx context.Context, p *api.Principal, id, image string, sizeGB int, name, volumeType string) (string, error) {
	return b.s.CreateFromImage(ctx, p, id, image, sizeGB, name, volumeType)
}

func (b bootVolumes) CreateBlank(ctx context.Context, p *api.Principal, id string, sizeGB int, name, volumeType string) (string, error) {
	return b.s.CreateBlank(ctx, p, id, sizeGB, name, volumeType)
}

func (b bootVolumes) CreateFromSnapshot(ctx context.Context, p *api.Principal, id, snapshot string, sizeGB int, name, volumeType string) (string, error) {
	return b.s.CreateFromSnapshot(ctx, p, id, snapshot, sizeGB, name, volumeType)
}

func (b bootVolumes) Delete(ctx context.Context, p *api.Principal, id string) error {
	return b.s.DeleteVolume(ctx, p, id)
}

// volumeBackups keeps backups as objects in the project's own object
// store: the chunks of a volume that hold data, and a manifest.
type volumeBackups struct {
	blocks  *block.Store
	objects *object.Service
}

var _ volume.BackupStore = (*volumeBackups)(nil)

// backupObjects is one container of a project, as block.Backup writes
// into it.
type backupObjects struct {
	objects            *object.Service
	project, container string
}

func (o backupObjects) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	_, err := o.objects.Put(ctx, o.project, o.container, name, r, object.PutOptions{Size: size})
	return err
}

func (o backupObjects) Get(ctx context.Context, name string, w io.Writer) error {
	obj, err := o.objects.Head(ctx, o.project, o.container, name)
	if err != nil {
		return err
	}
	return o.objects.Read(ctx, obj, 0, obj.Size, w)
}

func (o backupObjects) Delete(ctx context.Context, name string) error {
	err := o.objects.Delete(ctx, o.project, o.container, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

func (b *volumeBackups) Backup(ctx context.Context, j volume.BackupJob) (int, int64, error) {
	if _, err := b.objects.Container(ctx, j.Project, j.Container); errors.Is(err, store.ErrNotFound) {
		if _, err := b.objects.PutContainer(ctx, object.Container{Project: j.Project, Name: j.Container}, false); err != nil {
			return 0, 0, fmt.Errorf("create container %s: %w", j.Container, err)
		}
	} else if err != nil {
		return 0, 0, err
	}
	objs := backupObjects{b.objects, j.Project, j.Container}
	var parent *block.Manifest
	if j.Parent != "" {
		m, err := block.ReadManifest(ctx, objs, j.Parent)
		if err != nil {
			return 0, 0, err
		}
		parent = m
	}
	src := j.Source
	if !j.Snapshot {
		// A point in time to read, without fencing a writer that has
		// the volume open: a snapshot of it.
		src = "backup-" + j.Prefix
		if err := b.blocks.Snapshot(ctx, src, j.Source); err != nil {
			return 0, 0, err
		}
		defer func() {
			if err := b.blocks.Delete(context.WithoutCancel(ctx), src); err != nil {
				slog.Warn("delete a backup's snapshot", "snapshot", src, "err", err)
			}
		}()
	}
	v, err := b.blocks.Open(ctx, src)
	if err != nil {
		return 0, 0, err
	}
	defer v.Close()
	m, written, err := block.Backup(ctx, v, objs, j.Prefix, parent)
	if err != nil {
		return 0, 0, err
	}
	n := 1 // the manifest
	for _, c := range m.Chunks {
		if strings.HasPrefix(c.Object, j.Prefix+"/") {
			n++
		}
	}
	return n, written, nil
}

func (b *volumeBackups) Restore(ctx context.Context, project, container, prefix, volumeID string) error {
	objs := backupObjects{b.objects, project, container}
	m, err := block.ReadManifest(ctx, objs, prefix)
	if err != nil {
		return err
	}
	v, err := b.blocks.Open(ctx, volumeID)
	if err != nil {
		return err
	}
	err = block.Restore(ctx, m, objs, v)
	if cerr := v.Close(); err == nil {
		err = cerr
	}
	return err
}

func (b *volumeBackups) Check(ctx context.Context, project, container, prefix string) error {
	_, err := block.ReadManifest(ctx, backupObjects{b.objects, project, container}, prefix)
	return err
}

func (b *volumeBackups) Delete(ctx context.Context, project, container, prefix string) error {
	objs := backupObjects{b.objects, project, container}
	for {
		entries, _, err := b.objects.List(ctx, project, container, object.ListOptions{Prefix: prefix + "/", Limit: 1000})
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(entries) == 0 {
			return nil
		}
		for _, e := range entries {
			if e.Object == nil {
				continue
			}
			if err := objs.Delete(ctx, e.Object.Name); err != nil {
				return err
			}
		}
	}
}

// volumeUploads makes images of volumes on this node: the volume's
// bytes streamed into the image store as they are (raw), or converted by
// qemu-img (qcow2) from a sparse raw file first.
type volumeUploads struct {
	blocks *block.Store
	images *image.Service
	// tmp holds disks being converted.
	tmp string
}

var _ volume.ImageUploads = (*volumeUploads)(nil)

func (u *volumeUploads) CreateImage(ctx context.Context, p *api.Principal, n volume.NewImage) (string, error) {
	img, err := u.images.Create(ctx, p, image.NewImage{Name: n.Name, DiskFormat: n.DiskFormat, ContainerFormat: n.ContainerFormat,
		Visibility: n.Visibility, Protected: n.Protected, Properties: n.Properties})
	if err != nil {
		return "", err
	}
	return img.ID, nil
}

func (u *volumeUploads) DeleteImage(ctx context.Context, id string) error {
	return u.images.Discard(ctx, id)
}

func (u *volumeUploads) DeleteUnfinishedImage(ctx context.Context, id string) error {
	return u.images.DiscardUnfinished(ctx, id)
}

func (u *volumeUploads) VolumeToImage(ctx context.Context, from, imageID, diskFormat string) error {
	v, err := u.blocks.Open(ctx, from)
	if err != nil {
		return err
	}
	defer v.Close()
	size := v.Size()
	switch diskFormat {
	case "raw":
		return u.images.Upload(ctx, imageID, bufio.NewReaderSize(io.NewSectionReader(v, 0, size), 4<<20), size)
	case "qcow2":
		f, cleanup, err := u.toQCOW2(ctx, v, imageID)
		if err != nil {
			return err
		}
		defer cleanup()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		return u.images.Upload(ctx, imageID, f, st.Size())
	}
	return fmt.Errorf("upload volume %s: disk format %q is not written", from, diskFormat)
}

// toQCOW2 writes v's allocated ranges into a sparse raw file and converts
// it to a qcow2 one, which it opens.
func (u *volumeUploads) toQCOW2(ctx context.Context, v *block.Volume, name string) (*os.File, func(), error) {
	if err := os.MkdirAll(u.tmp, 0o700); err != nil {
		return nil, nil, fmt.Errorf("create %s: %w", u.tmp, err)
	}
	raw, qcow := filepath.Join(u.tmp, name+".raw"), filepath.Join(u.tmp, name+".qcow2")
	cleanup := func() { os.Remove(raw); os.Remove(qcow) }
	if err := writeSparse(v, raw); err != nil {
		cleanup()
		return nil, nil, err
	}
	// -f is given: the format is never probed from a guest's bytes.
	out, err := exec.CommandContext(ctx, "qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", raw, qcow).CombinedOutput()
	if err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("qemu-img convert: %v: %s", err, strings.TrimSpace(string(out)))
	}
	os.Remove(raw)
	f, err := os.Open(qcow)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	return f, func() { f.Close(); cleanup() }, nil
}

// writeSparse copies v into a new file at path, leaving the ranges v
// reports as zero unwritten.
func writeSparse(v *block.Volume, path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	size := v.Size()
	err = f.Truncate(size)
	if err == nil {
		var ranges []block.Range
		ranges, err = v.Extents(0, size)
		buf := make([]byte, 4<<20)
		for _, rg := range ranges {
			if err != nil || rg.Zero {
				continue
			}
			_, err = io.CopyBuffer(io.NewOffsetWriter(f, rg.Off), io.NewSectionReader(v, rg.Off, rg.Len), buf)
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write volume %s to %s: %w", v.ID(), path, err)
	}
	return nil
}
