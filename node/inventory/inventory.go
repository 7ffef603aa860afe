// Package inventory reads what a node has (CPU, memory, disks, NICs) from
// /proc and /sys. It only reads; it never changes the machine.
package inventory

// Inventory is the hardware a node reports when it registers and heartbeats.
type Inventory struct {
	Hostname    string   `json:"hostname"`
	CPUModel    string   `json:"cpu_model"`
	CPUs        int      `json:"cpus"`
	CPUFlags    []string `json:"cpu_flags,omitempty"` // only the ones that matter for scheduling (vmx, svm, avx2, ...)
	MemoryBytes uint64   `json:"memory_bytes"`
	Disks       []Disk   `json:"disks"`
	NICs        []NIC    `json:"nics"`
	Kernel      string   `json:"kernel"`
	// BootTime is when the machine booted (unix seconds, /proc/stat's
	// btime); LoadAverage its 1, 5 and 15 minute load averages and Users
	// the users logged in (utmp's user processes), as of the reading.
	// They make the hypervisor's uptime report (Nova's `uptime` line).
	BootTime    int64     `json:"boot_time,omitempty"`
	LoadAverage []float64 `json:"load_average,omitempty"`
	Users       int       `json:"users,omitempty"`
}

// Disk is one block device.
type Disk struct {
	Name       string `json:"name"`
	SizeBytes  uint64 `json:"size_bytes"`
	Rotational bool   `json:"rotational"`
	Model      string `json:"model,omitempty"`
}

// NIC is one network interface.
type NIC struct {
	Name      string   `json:"name"`
	MAC       string   `json:"mac"`
	MTU       int      `json:"mtu"`
	Up        bool     `json:"up"`
	SpeedMbps int      `json:"speed_mbps,omitempty"`
	Addrs     []string `json:"addrs,omitempty"`
}
