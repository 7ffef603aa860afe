package instances

import (
	"context"
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/rackstack/rackstack/fabric/image/imagestate"
)

// fetch streams an image into path, checking its size and hashes.
func fetch(r io.Reader, path string, img imagestate.Image) error {
	tmp := path + ".part"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	sha, sum := sha512.New(), md5.New()
	n, err := io.Copy(io.MultiWriter(f, sha, sum), r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	switch {
	case img.Size > 0 && n != img.Size:
		return fmt.Errorf("fetched %d bytes, the image has %d", n, img.Size)
	case img.HashValue != "" && hex.EncodeToString(sha.Sum(nil)) != img.HashValue:
		return fmt.Errorf("fetched bytes do not match the image's sha512")
	case img.Checksum != "" && hex.EncodeToString(sum.Sum(nil)) != img.Checksum:
		return fmt.Errorf("fetched bytes do not match the image's MD5 checksum")
	}
	return os.Rename(tmp, path)
}

// overlay makes disk a qcow2 whose backing file is the cached image, grown
// to rootGB when that is larger than the image.
func overlay(ctx context.Context, base, format, disk string, rootGB int) error {
	virtual, err := virtualSize(ctx, base, format)
	if err != nil {
		return err
	}
	args := []string{"create", "-q", "-f", "qcow2", "-F", format, "-b", base, disk + ".tmp"}
	if size := int64(rootGB) << 30; size > virtual {
		args = append(args, fmt.Sprint(size))
	}
	if out, err := exec.CommandContext(ctx, "qemu-img", args...).CombinedOutput(); err != nil {
		os.Remove(disk + ".tmp")
		return fmt.Errorf("qemu-img create: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return os.Rename(disk+".tmp", disk)
}

// virtualSize is the size in bytes of the disk image at path, of format,
// as a guest sees it.
func virtualSize(ctx context.Context, path, format string) (int64, error) {
	info, err := exec.CommandContext(ctx, "qemu-img", "info", "--output", "json", "-f", format, path).Output()
	if err != nil {
		return 0, fmt.Errorf("qemu-img info %s: %w", path, err)
	}
	var vi struct {
		VirtualSize int64 `json:"virtual-size"`
	}
	if err := json.Unmarshal(info, &vi); err != nil {
		return 0, fmt.Errorf("qemu-img info: %w", err)
	}
	return vi.VirtualSize, nil
}

// NetlinkTaps makes persistent taps in rackd's network namespace.
type NetlinkTaps struct{}

// Ensure creates the tap if needed and sets it up.
func (NetlinkTaps) Ensure(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		tap := &netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: name}, Mode: netlink.TUNTAP_MODE_TAP, Flags: netlink.TUNTAP_NO_PI | netlink.TUNTAP_VNET_HDR}
		if err := netlink.LinkAdd(tap); err != nil {
			return err
		}
		l = tap
	}
	return netlink.LinkSetUp(l)
}

// Remove deletes the tap; a missing one is fine.
func (NetlinkTaps) Remove(name string) error {
	l, err := netlink.LinkByName(name)
	if _, missing := err.(netlink.LinkNotFoundError); missing {
		return nil
	} else if err != nil {
		return err
	}
	return netlink.LinkDel(l)
}
