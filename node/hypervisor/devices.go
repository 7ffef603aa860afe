package hypervisor

import (
	"context"
	"time"
)

// Devices is a VM whose driver says where the guest's devices are, as
// the guest sees them: Nova's device metadata (the "devices" of
// meta_data.json) gives tagged NICs and disks with their PCI address.
// Its own interface, so a driver without it says so by not
// implementing it.
type Devices interface {
	// Devices lists the running guest's virtio NICs and disks (those
	// it booted with and those plugged since). ErrNotRunning when
	// there is no guest process.
	Devices(ctx context.Context) ([]GuestDevice, error)
}

// GuestDevice is one NIC or disk of a running guest.
type GuestDevice struct {
	// Kind is DeviceNIC or DeviceDisk.
	Kind string `json:"kind"`
	// Address is its PCI address as the guest enumerates it,
	// "0000:00:03.0" (domain:bus:slot.function; the bus of a device
	// behind a root port is the number the guest's firmware gave it).
	Address string `json:"address"`
	// MAC is a NIC's address; Serial a disk's serial number.
	MAC    string `json:"mac,omitempty"`
	Serial string `json:"serial,omitempty"`
}

// Kinds of GuestDevice.
const (
	DeviceNIC  = "nic"
	DeviceDisk = "disk"
)

// Diagnoser is a VM whose driver reads the guest's counters: Nova's
// server diagnostics. Its own interface, as Devices.
type Diagnoser interface {
	// Diagnostics reads them now. ErrNotRunning when there is no guest
	// process.
	Diagnostics(ctx context.Context) (Diagnostics, error)
}

// Diagnostics are a running guest's counters, as Nova's diagnostics
// model has them (nova.virt.diagnostics).
type Diagnostics struct {
	State PowerState `json:"state"`
	// Uptime is how long the guest's process has run.
	Uptime time.Duration `json:"uptime"`
	// Hypervisor is the accelerator ("kvm" or "tcg"): what runs the
	// guest's CPUs.
	Hypervisor string     `json:"hypervisor"`
	CPUs       []CPUStat  `json:"cpus"`
	Disks      []DiskStat `json:"disks"`
	NICs       []NICStat  `json:"nics"`
	// MemoryMB is the guest's memory; UsedMB what the host gave it so
	// far (the process's resident memory, at most MemoryMB).
	MemoryMB int `json:"memory_mb"`
	UsedMB   int `json:"used_mb"`
	// ConfigDrive says the guest has a config drive.
	ConfigDrive bool `json:"config_drive"`
}

// CPUStat is one vCPU: the host CPU time its thread used.
type CPUStat struct {
	ID   int           `json:"id"`
	Time time.Duration `json:"time"`
}

// DiskStat is one disk's I/O since the guest's process started.
type DiskStat struct {
	// Name is the guest device's id on the hypervisor.
	Name          string `json:"name"`
	ReadBytes     int64  `json:"read_bytes"`
	ReadRequests  int64  `json:"read_requests"`
	WriteBytes    int64  `json:"write_bytes"`
	WriteRequests int64  `json:"write_requests"`
	Errors        int64  `json:"errors"`
}

// NICStat is one NIC's traffic as the guest sees it (its tap's
// counters, turned round: what the tap sends the guest receives).
type NICStat struct {
	MAC       string `json:"mac"`
	Tap       string `json:"tap"`
	RxOctets  int64  `json:"rx_octets"`
	RxPackets int64  `json:"rx_packets"`
	RxErrors  int64  `json:"rx_errors"`
	RxDrop    int64  `json:"rx_drop"`
	TxOctets  int64  `json:"tx_octets"`
	TxPackets int64  `json:"tx_packets"`
	TxErrors  int64  `json:"tx_errors"`
	TxDrop    int64  `json:"tx_drop"`
}
