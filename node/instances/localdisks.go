package instances

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/node/hypervisor"
)

// A server's ephemeral and swap disks (computestate.LocalDisk) are raw
// files in its instance directory, disk.<name>, made as Nova's libvirt
// driver makes them: a sparse file of the disk's size, formatted on the
// host by the filesystem's own tool working on the file (mkfs.ext4 -F,
// mkfs.vfat, mkswap: no loop device, no mount, no root needed), and
// given to the guest as virtio disks after the root disk. A disk is made
// under a temporary name and renamed into place once formatted, so a
// kill -9 mid-way leaves no half-made disk that a later start would
// take for the server's: the next start makes it again. A disk that
// exists is the server's and is never formatted again (its data is the
// guest's), except for a rebuild without preserve_ephemeral, which
// removes them first (dropLocalDisks), and a resize, which grows an
// ephemeral disk and remakes the swap (resizeLocalDisks). They go with the instance
// directory when the server is deleted, shelved (offloaded) or leaves
// the node.

// localDiskPath is where server disk d lives in its instance directory.
func localDiskPath(dir string, d computestate.LocalDisk) string {
	return filepath.Join(dir, "disk."+d.Name)
}

// localDisks makes the server's local disks that are missing and returns
// them in the guest's order.
func localDisks(ctx context.Context, s computestate.Server, dir string) ([]hypervisor.Disk, error) {
	var disks []hypervisor.Disk
	for _, d := range s.LocalDisks {
		path := localDiskPath(dir, d)
		if _, err := os.Stat(path); err != nil {
			if !os.IsNotExist(err) {
				return nil, err
			}
			if err := makeLocalDisk(ctx, path, d); err != nil {
				return nil, fmt.Errorf("make %s disk: %w", d.Name, err)
			}
		}
		disks = append(disks, hypervisor.Disk{Path: path, Format: hypervisor.FormatRaw, Serial: d.Name})
	}
	return disks, nil
}

// makeLocalDisk makes disk d at path: sized, formatted, then renamed
// into place.
func makeLocalDisk(ctx context.Context, path string, d computestate.LocalDisk) error {
	if d.SizeMB <= 0 {
		return fmt.Errorf("size %d MiB", d.SizeMB)
	}
	tmp := path + ".tmp"
	os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	err = f.Truncate(int64(d.SizeMB) << 20)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = formatLocalDisk(ctx, tmp, d)
	}
	if err == nil {
		err = syncFile(tmp)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// formatLocalDisk runs the tool that makes d's filesystem (or swap
// area) on the file at path.
func formatLocalDisk(ctx context.Context, path string, d computestate.LocalDisk) error {
	var cmd []string
	switch d.Format {
	case "ext2", "ext3", "ext4":
		// -F: it is a file, not a block device; the label is how Nova
		// names it (ephemeral0), which the guest can mount by.
		cmd = []string{"mkfs." + d.Format, "-F", "-q", "-L", d.Name, path}
	case "vfat":
		cmd = []string{"mkfs.vfat", "-n", strings.ToUpper(d.Name), path}
	case "swap":
		cmd = []string{"mkswap", path}
	default:
		return fmt.Errorf("unknown format %q", d.Format)
	}
	out, err := exec.CommandContext(ctx, cmd[0], cmd[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", cmd[0], err, strings.TrimSpace(string(out)))
	}
	return nil
}

// syncFile flushes the file at path to its disk.
func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// resizeLocalDisks brings a server's local disks to its row's while the
// guest is off, for a resize or its revert: an ephemeral disk smaller
// than its size is grown, its ext filesystem with it (resize2fs on the
// file; a vfat one keeps its size), never shrunk; a swap disk of another
// size, or a disk the row no longer has, is removed, and the start makes
// what is missing. Each step is whole or redone: a grow cut short is
// grown again, a removed swap remade.
func resizeLocalDisks(ctx context.Context, s computestate.Server, dir string) error {
	want := map[string]bool{}
	for _, d := range s.LocalDisks {
		want[localDiskPath(dir, d)] = true
	}
	for _, pattern := range []string{"disk.ephemeral*", "disk.swap*"} {
		have, _ := filepath.Glob(filepath.Join(dir, pattern))
		for _, p := range have {
			if !want[p] {
				if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
					return err
				}
			}
		}
	}
	for _, d := range s.LocalDisks {
		path := localDiskPath(dir, d)
		fi, err := os.Stat(path)
		if os.IsNotExist(err) {
			continue
		} else if err != nil {
			return err
		}
		size := int64(d.SizeMB) << 20
		switch {
		case d.Swap() && fi.Size() != size:
			if err := os.Remove(path); err != nil {
				return err
			}
		case !d.Swap():
			if fi.Size() < size {
				if err := os.Truncate(path, size); err != nil {
					return err
				}
			}
			// Also when the file has its size already: a grow cut short
			// after the truncate is finished here (resize2fs of a
			// filesystem as large as its file does nothing).
			if strings.HasPrefix(d.Format, "ext") {
				if out, err := exec.CommandContext(ctx, "resize2fs", "-f", path).CombinedOutput(); err != nil {
					return fmt.Errorf("resize2fs %s: %v: %s", d.Name, err, strings.TrimSpace(string(out)))
				}
			}
		}
	}
	return nil
}

// dropLocalDisks removes a server's ephemeral and swap disks, for a
// rebuild that does not preserve them: the next start makes them anew.
func dropLocalDisks(s computestate.Server, dir string) error {
	for _, d := range s.LocalDisks {
		if err := os.Remove(localDiskPath(dir, d)); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return nil
}
