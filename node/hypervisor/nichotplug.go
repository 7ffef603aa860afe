package hypervisor

import (
	"context"
	"errors"
)

// NICHotplug is a VM whose driver plugs network interfaces into the
// running guest and unplugs them: the ports attached to a server after
// it booted (Nova's os-interface). Like Hotplug it is its own interface,
// so a driver without it says so by not implementing it.
//
// A plugged NIC takes one of the VM's hot-plug slots, which it shares
// with plugged disks (ErrNoHotplugSlot when all are taken).
type NICHotplug interface {
	// AttachNIC plugs n into the guest as a virtio NIC on its tap,
	// which the caller has made. Plugging a NIC that is plugged (its
	// tap is) is not an error; for a NIC the VM started with, it sets
	// the link up (undoing a DetachNIC's ErrBootNIC).
	AttachNIC(ctx context.Context, n NIC) error
	// DetachNIC asks the guest to give up the NIC on tap and removes it
	// once it has; ErrDetachPending when the guest has not let go
	// within the context's time (the request stands: call again).
	// Detaching a NIC that is not there is not an error. A NIC the VM
	// was started with cannot be unplugged (it sits on the machine's
	// root bus): its link is set down, and ErrBootNIC says so; it is
	// gone at the next start.
	DetachNIC(ctx context.Context, tap string) error
	// NICs lists the guest's NICs: those it was started with, then the
	// plugged ones (Hot), as the running VM has them: a restarted
	// driver finds them again.
	NICs(ctx context.Context) ([]GuestNIC, error)
}

// GuestNIC is a NIC of a running guest; Hot says it was plugged after
// the start.
type GuestNIC struct {
	NIC
	Hot bool
}

// ErrBootNIC: the NIC was there when the VM started and cannot be
// unplugged from the running guest; its link is down instead.
var ErrBootNIC = errors.New("a NIC the guest booted with cannot be unplugged; its link is down until the next start")
