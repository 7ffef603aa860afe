package hypervisor

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
)

// VMSpec is everything a driver needs to boot a VM. Paths are absolute and
// name files the caller owns: the driver opens them, never deletes them.
type VMSpec struct {
	// ID names the VM on the node (Nova's instance uuid): letters, digits,
	// '.', '_' and '-', at most 64, starting with a letter or digit.
	ID string `json:"id"`
	// Name is a display name (the guest's hostname, say). Optional.
	Name     string `json:"name,omitempty"`
	VCPUs    int    `json:"vcpus"`
	MemoryMB int    `json:"memory_mb"`
	// Disks in boot order: the firmware boots from the first.
	Disks []Disk `json:"disks,omitempty"`
	NICs  []NIC  `json:"nics,omitempty"`
	// ConfigDrive is the path of a config-drive image (ISO 9660, label
	// "config-2"), attached read-only after the disks. Optional.
	ConfigDrive string `json:"config_drive,omitempty"`
}

// Disk is one block device of the guest: a file (Path) or an NBD export
// this node serves on a unix socket (NBDSocket and NBDExport, Path "",
// format raw), which QEMU's own NBD client opens: a volume booted from.
type Disk struct {
	Path      string `json:"path,omitempty"`
	NBDSocket string `json:"nbd_socket,omitempty"`
	NBDExport string `json:"nbd_export,omitempty"`
	// Format is FormatQCOW2 or FormatRaw: never probed, because letting a
	// hypervisor guess the format of a guest-writable raw disk lets the
	// guest make it look like a qcow2 pointing at any host file.
	Format   string `json:"format"`
	ReadOnly bool   `json:"read_only,omitempty"`
	// Limits caps the disk's I/O from the VM's start (a boot volume's
	// QoS). Optional.
	Limits IOLimits `json:"limits,omitempty"`
	// Serial is what the guest sees as the disk's serial number (virtio-blk:
	// /dev/disk/by-id/virtio-<serial>), at most 20 characters. Optional.
	Serial string `json:"serial,omitempty"`
	// ID, for an NBD disk, names its block nodes as a HotDisk's ID does
	// (the same rules), so that Hotplug's ResizeDisk grows it in the
	// running guest like a plugged disk. Optional.
	ID string `json:"id,omitempty"`
	// Encryption, for an NBD disk with an ID, puts QEMU's LUKS layer
	// between the export and the guest, as for a HotDisk: the passphrase
	// reaches QEMU through a pipe, never its command line nor a file, and
	// is not kept in the spec's JSON. Format writes the LUKS header
	// first (a blank volume).
	Encryption *DiskEncryption `json:"encryption,omitempty"`
	// Boot makes the firmware boot this disk first, wherever it is in
	// the list (a stable rescue's disk, after the guest's own); without
	// it the disks boot in their order.
	Boot bool `json:"boot,omitempty"`
	// Placeholder, for an NBD disk with an ID, opens nothing: a node of
	// this many bytes that reads zeros stands in for the export until
	// a live migration's FinishIncoming puts it in (the export is then
	// this node's, its writer fence taken).
	Placeholder int64 `json:"placeholder,omitempty"`
}

// sameDisk compares disks as Equal does: encryption by its cipher (the
// passphrase is never kept, and Format is a one-off step of a start).
func sameDisk(a, b Disk) bool {
	ea, eb := a.Encryption, b.Encryption
	if (ea == nil) != (eb == nil) || (ea != nil && ea.CipherAlg != eb.CipherAlg) {
		return false
	}
	a.Encryption, b.Encryption = nil, nil
	return a == b
}

// NIC is one network interface of the guest, backed by a tap on the host.
type NIC struct {
	// Tap is the host interface name; the driver attaches to it (or creates
	// it if it does not exist: then it disappears with the VM).
	Tap string `json:"tap"`
	// MAC is the guest's unicast MAC address, like "fa:16:3e:12:34:56".
	MAC string `json:"mac"`
}

// Disk formats.
const (
	FormatQCOW2 = "qcow2"
	FormatRaw   = "raw"
)

var (
	idPattern     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	serialPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,20}$`)
	diskIDPattern = regexp.MustCompile(`^[a-z0-9-]{1,24}$`)
	exportPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)
	// Interface names: at most IFNAMSIZ-1 bytes, no '/', no whitespace; we
	// also refuse ',' and '=' which QEMU's option syntax would misread.
	tapPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,15}$`)
)

// Validate checks the spec's values without touching the file system. Every
// error wraps ErrInvalidSpec and names the field.
func (s VMSpec) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	if !idPattern.MatchString(s.ID) {
		bad("id %q: want 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", s.ID)
	}
	if s.VCPUs < 1 {
		bad("vcpus %d: want at least 1", s.VCPUs)
	}
	if s.MemoryMB < 1 {
		bad("memory_mb %d: want at least 1", s.MemoryMB)
	}
	for i, d := range s.Disks {
		switch {
		case d.NBDSocket != "" || d.NBDExport != "":
			if d.Path != "" {
				bad("disks[%d]: a path and an nbd export: want one", i)
			}
			if !filepath.IsAbs(d.NBDSocket) {
				bad("disks[%d].nbd_socket %q: want an absolute path", i, d.NBDSocket)
			}
			if !exportPattern.MatchString(d.NBDExport) {
				bad("disks[%d].nbd_export %q: want 1-128 letters, digits, '.', '_' or '-'", i, d.NBDExport)
			}
			if d.Format != FormatRaw {
				bad("disks[%d].format %q: an nbd export is raw", i, d.Format)
			}
		case !filepath.IsAbs(d.Path):
			bad("disks[%d].path %q: want an absolute path", i, d.Path)
		}
		if d.Format != FormatQCOW2 && d.Format != FormatRaw {
			bad("disks[%d].format %q: want %q or %q", i, d.Format, FormatQCOW2, FormatRaw)
		}
		if d.ID != "" && (d.NBDSocket == "" || !diskIDPattern.MatchString(d.ID)) {
			bad("disks[%d].id %q: want 1-24 of [a-z0-9-], on an nbd disk", i, d.ID)
		}
		if d.Placeholder < 0 || d.Placeholder > 0 && (d.ID == "" || d.NBDSocket == "" || d.Encryption != nil) {
			bad("disks[%d].placeholder: want an nbd disk with an id, not encrypted, of a positive size", i)
		}
		if d.Encryption != nil && (d.ID == "" || d.NBDSocket == "" || len(d.Encryption.Passphrase) == 0) {
			bad("disks[%d].encryption: want an nbd disk with an id, and a passphrase", i)
		}
		if d.Serial != "" && !serialPattern.MatchString(d.Serial) {
			bad("disks[%d].serial %q: want at most 20 letters, digits, '.', '_' or '-'", i, d.Serial)
		}
	}
	macs := map[string]int{}
	for i, n := range s.NICs {
		if !tapPattern.MatchString(n.Tap) {
			bad("nics[%d].tap %q: want 1-15 letters, digits, '.', '_' or '-'", i, n.Tap)
		}
		hw, err := net.ParseMAC(n.MAC)
		switch {
		case err != nil || len(hw) != 6:
			bad("nics[%d].mac %q: want a MAC address like fa:16:3e:00:00:01", i, n.MAC)
		case hw[0]&1 == 1:
			bad("nics[%d].mac %q: multicast address", i, n.MAC)
		default:
			if j, dup := macs[hw.String()]; dup {
				bad("nics[%d].mac %q: same as nics[%d]", i, n.MAC, j)
			}
			macs[hw.String()] = i
		}
	}
	if s.ConfigDrive != "" && !filepath.IsAbs(s.ConfigDrive) {
		bad("config_drive %q: want an absolute path", s.ConfigDrive)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidSpec, errors.Join(errs...))
	}
	return nil
}

// CheckFiles checks that the files the spec names exist and are regular
// files or block devices. Errors wrap ErrInvalidSpec.
func (s VMSpec) CheckFiles() error {
	var errs []error
	check := func(field, path string) {
		fi, err := os.Stat(path)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
		case fi.IsDir():
			errs = append(errs, fmt.Errorf("%s %q: is a directory", field, path))
		}
	}
	for i, d := range s.Disks {
		if d.NBDSocket != "" {
			// A socket, not a file: the export is checked by QEMU's
			// connect.
			continue
		}
		check(fmt.Sprintf("disks[%d].path", i), d.Path)
	}
	if s.ConfigDrive != "" {
		check("config_drive", s.ConfigDrive)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidSpec, errors.Join(errs...))
	}
	return nil
}

// Equal reports whether two specs describe the same VM (nil and empty lists
// are equal).
func (s VMSpec) Equal(o VMSpec) bool {
	return s.ID == o.ID && s.Name == o.Name && s.VCPUs == o.VCPUs &&
		s.MemoryMB == o.MemoryMB && s.ConfigDrive == o.ConfigDrive &&
		slices.EqualFunc(s.Disks, o.Disks, sameDisk) && slices.Equal(s.NICs, o.NICs)
}
