package hypervisor

import (
	"context"
	"errors"
)

// Hotplug is a VM whose driver plugs disks into the running guest: the
// block volumes a server has attached, each an NBD export the node
// serves on a unix socket. It is a separate interface so that a driver
// without it (or a VM started before it was there) says so by not
// implementing it, rather than by failing at run time.
type Hotplug interface {
	// AttachDisk plugs d into the guest as a virtio disk. Plugging a
	// disk that is plugged is not an error.
	AttachDisk(ctx context.Context, d HotDisk) error
	// DetachDisk asks the guest to give the disk up and removes it once
	// it has; ErrDetachPending when the guest has not let go within
	// the context's time (the request stands: call again). Detaching a
	// disk that is not plugged is not an error.
	DetachDisk(ctx context.Context, id string) error
	// ResizeDisk makes the guest see the plugged disk d's new size,
	// after its export grew to size bytes.
	ResizeDisk(ctx context.Context, d HotDisk, size int64) error
	// HotDisks lists the ids of the plugged disks.
	HotDisks(ctx context.Context) ([]string, error)
	// LimitDisk sets the I/O limits of the plugged disk id (the zero
	// IOLimits: none), replacing the ones it had.
	LimitDisk(ctx context.Context, id string, l IOLimits) error
	// LimitBootDisk sets the I/O limits of the VM's first disk (its boot
	// volume), replacing the ones it was started with.
	LimitBootDisk(ctx context.Context, l IOLimits) error
}

// IOLimits caps a disk's I/O as the guest sees it, per second; zero is
// no limit. A total limit and a read or write one of the same kind are
// not set together (QEMU refuses it).
type IOLimits struct {
	ReadIOPS, WriteIOPS, TotalIOPS    int64
	ReadBytes, WriteBytes, TotalBytes int64
}

// IsZero reports whether l limits nothing.
func (l IOLimits) IsZero() bool { return l == IOLimits{} }

// HotDisk is a disk to plug: the NBD export Export on the unix socket
// Socket, shown to the guest with Serial (its /dev/disk/by-id name),
// read-only if ReadOnly, its I/O capped by Limits from the first I/O.
type HotDisk struct {
	ID       string // [a-z0-9-], at most 24 characters
	Socket   string
	Export   string
	Serial   string // at most 20 characters
	ReadOnly bool
	Limits   IOLimits
	// Encryption, when set, puts a LUKS layer between the export and
	// the guest: the export holds only ciphertext.
	Encryption *DiskEncryption
}

// DiskEncryption is how a plugged disk is decrypted: QEMU's native LUKS
// (the layout cryptsetup reads), opened with Passphrase. Format writes a
// new LUKS header first, with a random master key of CipherAlg's size,
// for a volume that has none yet (its first attach).
type DiskEncryption struct {
	Passphrase []byte `json:"-"`
	CipherAlg  string `json:"cipher_alg"` // QEMU's: "aes-128" or "aes-256" (xts, plain64 IVs)
	Format     bool   `json:"-"`
}

// String hides the passphrase from logs and %v.
func (e DiskEncryption) String() string {
	return "luks(" + e.CipherAlg + ")"
}

// GoString hides the passphrase from %#v.
func (e DiskEncryption) GoString() string { return e.String() }

// ErrDetachPending: the guest has not released a disk yet.
var ErrDetachPending = errors.New("the guest has not released the disk yet")

// ErrNoHotplugSlot: every slot disks can be plugged into is taken.
var ErrNoHotplugSlot = errors.New("no free hot-plug slot")

// HotplugSlots is how many disks a VM can have plugged at once: the
// QEMU driver gives each q35 VM as many PCIe root ports.
const HotplugSlots = 4
