package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"unsafe"

	"github.com/rackstack/rackstack/provision/agentapi"
)

const mib = 1 << 20

// ioctl and fadvise numbers from linux/fs.h and linux/fadvise.h.
const (
	blkRRPart        = 0x125f // re-read the partition table
	fadviseDontNeed  = 4
	chunk            = 4 * mib
	configDriveType  = 0x83
	progressEveryMiB = 64
)

// openDisk opens a disk (or, in tests, a regular file standing in for one)
// for writing and returns its size.
func openDisk(path string) (*os.File, int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, 0, fmt.Errorf("open disk: %w", err)
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("size of %s: %w", path, err)
	}
	return f, size, nil
}

// finish flushes what was written to f and, for a block device, makes the
// kernel read its new partition table. A table it cannot reload (a
// partition still in use) is logged in the returned note, not an error:
// the bytes on the disk are what matters to the next boot.
func finish(f *os.File) (string, error) {
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("sync %s: %w", f.Name(), err)
	}
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeDevice == 0 || st.Mode()&os.ModeCharDevice != 0 {
		return "", nil
	}
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), blkRRPart, 0); errno != 0 {
		return fmt.Sprintf(" (partition table not re-read: %v)", errno), nil
	}
	return "", nil
}

// zero writes zeroes over [off, off+n) of f, reporting progress in MiB.
func zero(ctx context.Context, f *os.File, off, n int64, progress func(doneMiB int64)) error {
	buf := make([]byte, min(n, chunk))
	for done := int64(0); done < n; {
		if err := ctx.Err(); err != nil {
			return err
		}
		w := min(int64(len(buf)), n-done)
		if _, err := f.WriteAt(buf[:w], off+done); err != nil {
			return fmt.Errorf("zero %s at %d: %w", f.Name(), off+done, err)
		}
		done += w
		if progress != nil && done%(progressEveryMiB*mib) == 0 {
			progress(done / mib)
		}
	}
	return nil
}

// erasures are the byte ranges a metadata erase zeroes on a disk of size
// bytes with partitions parts: the first and last MiB of the disk (MBR, the
// primary and backup GPT) and of every partition (superblocks live near the
// start, RAID and some LVM metadata at the end), as wipefs and Ironic's
// metadata erase do.
func erasures(size int64, parts []extent) []extent {
	var out []extent
	edges := func(e extent) {
		head := min(e.size, mib)
		out = append(out, extent{e.start, head})
		if e.size > head {
			tail := min(e.size-head, mib)
			out = append(out, extent{e.start + e.size - tail, tail})
		}
	}
	edges(extent{0, size})
	for _, p := range parts {
		edges(p)
	}
	return out
}

// cleanDisk erases one disk: every byte when full, otherwise its partition
// tables and filesystem signatures.
func cleanDisk(ctx context.Context, path string, full bool, progress func(string)) (string, error) {
	f, size, err := openDisk(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if full {
		err := zero(ctx, f, 0, size, func(done int64) {
			progress(fmt.Sprintf("zeroing %s %d/%d MiB", path, done, size/mib))
		})
		if err != nil {
			return "", err
		}
		note, err := finish(f)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("zeroed %s (%d MiB)%s", path, size/mib, note), nil
	}
	parts, err := partitions(f, size)
	if err != nil {
		return "", fmt.Errorf("clean %s: %w", path, err)
	}
	progress(fmt.Sprintf("erasing metadata on %s (%d partitions)", path, len(parts)))
	for _, e := range erasures(size, parts) {
		if err := zero(ctx, f, e.start, e.size, nil); err != nil {
			return "", err
		}
	}
	note, err := finish(f)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("erased metadata on %s (%d partitions)%s", path, len(parts), note), nil
}

// Clean erases the disks args names (every disk in inv when it names
// none) and says what it did.
func Clean(ctx context.Context, args agentapi.CleanArgs, inv agentapi.Inventory, progress func(string)) (string, error) {
	disks := args.Disks
	if len(disks) == 0 {
		for _, d := range inv.Disks {
			disks = append(disks, d.Name)
		}
	}
	if len(disks) == 0 {
		return "", errors.New("clean: no disks found")
	}
	var done []string
	for _, d := range disks {
		msg, err := cleanDisk(ctx, d, args.Full, progress)
		if err != nil {
			return "", fmt.Errorf("clean %s: %w", d, err)
		}
		done = append(done, msg)
	}
	return strings.Join(done, "; "), nil
}

// imageSource is where a deploy reads the image and the config drive from
// (the provisioning server; a fake in tests).
type imageSource interface {
	download(ctx context.Context, path string, w io.WriterAt, size int64, progress func(done int64)) (int64, error)
	getAll(ctx context.Context, path string, limit int64) ([]byte, error)
}

// Deploy writes the image to the root disk, checks what the disk now holds
// against ImageSHA256, and adds the config drive partition when asked.
func deploy(ctx context.Context, src imageSource, args agentapi.DeployArgs, progress func(string)) (string, error) {
	if args.RootDisk == "" || args.ImageSize <= 0 || len(args.ImageSHA256) != sha256.Size*2 {
		return "", fmt.Errorf("deploy: need root_disk, image_size > 0 and a sha256 image_sha256 (got %q, %d, %q)", args.RootDisk, args.ImageSize, args.ImageSHA256)
	}
	f, size, err := openDisk(args.RootDisk)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if args.ImageSize > size {
		return "", fmt.Errorf("deploy: the image (%d bytes) is larger than %s (%d bytes)", args.ImageSize, args.RootDisk, size)
	}
	// A backup GPT left at the end of the disk by an earlier deploy would
	// make tools see two partition tables.
	if tail := max(args.ImageSize, size-mib); tail < size {
		if err := zero(ctx, f, tail, size-tail, nil); err != nil {
			return "", err
		}
	}
	total := args.ImageSize / mib
	last := int64(-1)
	d := openDirect(f)
	defer d.Close()
	if _, err := src.download(ctx, agentapi.PathImage, d, args.ImageSize, func(done int64) {
		if m := done / mib; m/progressEveryMiB != last/progressEveryMiB || done == args.ImageSize {
			last = m
			progress(fmt.Sprintf("writing image %d/%d MiB", m, total))
		}
	}); err != nil {
		return "", fmt.Errorf("deploy: write image to %s: %w", args.RootDisk, err)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("deploy: sync %s: %w", args.RootDisk, err)
	}
	progress("verifying image")
	sum, err := d.readBackSHA256(args.ImageSize)
	if err != nil {
		return "", fmt.Errorf("deploy: read back %s: %w", args.RootDisk, err)
	}
	if !strings.EqualFold(sum, args.ImageSHA256) {
		return "", fmt.Errorf("deploy: %s holds an image whose sha256 is %s, want %s", args.RootDisk, sum, args.ImageSHA256)
	}
	msg := fmt.Sprintf("wrote %d MiB to %s, sha256 ok", total, args.RootDisk)
	if args.ConfigDrive {
		progress("writing config drive")
		part, err := writeConfigDrive(ctx, src, f, size, args)
		if err != nil {
			return "", fmt.Errorf("deploy: config drive: %w", err)
		}
		msg += ", config drive on " + part
	}
	note, err := finish(f)
	if err != nil {
		return "", err
	}
	return msg + note, nil
}

// directAlign is what O_DIRECT asks of offsets, lengths and memory:
// 4096 serves disks of 512- and 4096-byte logical blocks alike.
const directAlign = 4096

// alignedBuf returns n bytes starting on a directAlign boundary.
func alignedBuf(n int) []byte {
	b := make([]byte, n+directAlign)
	skip := (directAlign - int(uintptr(unsafe.Pointer(&b[0]))%directAlign)) % directAlign
	return b[skip : skip+n : skip+n]
}

func isAligned(p []byte) bool {
	return len(p) > 0 && uintptr(unsafe.Pointer(&p[0]))%directAlign == 0
}

// directDisk writes the image and reads it back through a second
// descriptor of the disk opened with O_DIRECT: the bytes move between the
// agent's buffer and the device with no copy into the page cache, whose
// copies and upkeep cost a machine's CPU more than the transfer does (an
// emulated CPU most of all), and the read-back reads the medium rather than
// a cached copy. Whole aligned blocks go direct; the rest (a transfer's
// ragged end, a disk or file system that refuses O_DIRECT) goes through f.
type directDisk struct {
	f      *os.File
	direct *os.File // nil: everything through f
}

func openDirect(f *os.File) *directDisk {
	d := &directDisk{f: f}
	if g, err := os.OpenFile(f.Name(), os.O_RDWR|syscall.O_DIRECT, 0); err == nil {
		d.direct = g
	}
	return d
}

func (d *directDisk) Close() {
	if d.direct != nil {
		d.direct.Close()
		d.direct = nil
	}
}

// refused drops the direct descriptor when the kernel refuses O_DIRECT
// for this I/O (EINVAL) and says so; any other error is the disk's.
func (d *directDisk) refused(err error) bool {
	if !errors.Is(err, syscall.EINVAL) {
		return false
	}
	d.Close()
	return true
}

func (d *directDisk) WriteAt(p []byte, off int64) (int, error) {
	n := 0
	if d.direct != nil && off%directAlign == 0 && isAligned(p) {
		if k := len(p) / directAlign * directAlign; k > 0 {
			w, err := d.direct.WriteAt(p[:k], off)
			switch {
			case err == nil:
				n = k
			case !d.refused(err):
				return w, err
			}
		}
	}
	if n == len(p) {
		return n, nil
	}
	w, err := d.f.WriteAt(p[n:], off+int64(n))
	return n + w, err
}

// readBackSHA256 hashes the first n bytes of the disk as the medium
// returns them: through the direct descriptor, or else through f after
// asking the kernel to drop its cached copy.
func (d *directDisk) readBackSHA256(n int64) (string, error) {
	h := sha256.New()
	buf := alignedBuf(chunk)
	var off int64
	for d.direct != nil && off < n {
		want := min(int64(len(buf)), n-off)
		k, err := d.direct.ReadAt(buf[:(want+directAlign-1)/directAlign*directAlign], off)
		if int64(k) >= want {
			h.Write(buf[:want])
			off += want
			continue
		}
		if err == nil || errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read %s at %d: %w", d.f.Name(), off, io.ErrUnexpectedEOF)
		}
		if !d.refused(err) {
			return "", err
		}
	}
	if off < n {
		_, _, _ = syscall.Syscall6(syscall.SYS_FADVISE64, d.f.Fd(), 0, 0, fadviseDontNeed, 0, 0)
		if _, err := io.CopyBuffer(h, io.NewSectionReader(d.f, off, n-off), buf); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// writeConfigDrive fetches the config drive and writes it to a new
// partition at the end of the disk, after everything the image holds (a
// primary MBR partition, or a GPT one named config-2 with the backup GPT
// moved to the disk's end), and returns the partition's device name.
func writeConfigDrive(ctx context.Context, src imageSource, f *os.File, size int64, args agentapi.DeployArgs) (string, error) {
	mbr := make([]byte, sector)
	if _, err := f.ReadAt(mbr, 0); err != nil {
		return "", fmt.Errorf("read mbr: %w", err)
	}
	kind := mbrKind(mbr)
	if kind == "" {
		return "", errors.New("the image has no partition table (MBR or GPT) to add the config-2 partition to")
	}
	drive, err := src.getAll(ctx, agentapi.PathConfigDrive, maxConfigDrive)
	if err != nil {
		return "", err
	}
	if len(drive) == 0 {
		return "", errors.New("the config drive is empty")
	}
	used := (args.ImageSize + sector - 1) / sector * sector
	write := func(start, end int64) error {
		if _, err := f.WriteAt(drive, start); err != nil {
			return fmt.Errorf("write config drive: %w", err)
		}
		if err := zero(ctx, f, start+int64(len(drive)), end-start-int64(len(drive)), nil); err != nil {
			return err
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync config drive: %w", err)
		}
		return nil
	}
	if kind == "gpt" {
		n, err := addGPTPartition(f, size, int64(len(drive)), used, "config-2", write)
		if err != nil {
			return "", err
		}
		return partitionName(args.RootDisk, n), nil
	}
	// One MiB-aligned partition ending at the end of the disk (or at the
	// last sector MBR can address).
	end := min(size, int64(1<<32-1)*sector) / sector * sector
	need := (int64(len(drive)) + mib - 1) / mib * mib
	start := (end - need) / mib * mib
	used = max(mbrEnd(mbr), used)
	if start < used || start <= 0 {
		return "", fmt.Errorf("no room for a %d MiB config drive: the image uses %d of %d bytes of %s", need/mib, used, size, args.RootDisk)
	}
	if err := write(start, end); err != nil {
		return "", err
	}
	n, err := addMBRPartition(f, start, end-start, configDriveType)
	if err != nil {
		return "", err
	}
	return partitionName(args.RootDisk, n), nil
}

// partitionName is the kernel's name for partition n of disk: vda → vda2,
// nvme0n1 → nvme0n1p2.
func partitionName(disk string, n int) string {
	if disk != "" && disk[len(disk)-1] >= '0' && disk[len(disk)-1] <= '9' {
		return fmt.Sprintf("%sp%d", disk, n)
	}
	return fmt.Sprintf("%s%d", disk, n)
}
