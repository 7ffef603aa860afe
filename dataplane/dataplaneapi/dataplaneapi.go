// Package dataplaneapi holds the JSON body of GET
// /rackstack/v1/nodes/{name}/dataplane, the picture `rackctl dataplane show`
// prints. It is a leaf with no imports of ours, so a client can decode the
// status without linking cilium/ebpf, netlink or the BPF objects that the
// dataplane package that produces it needs.
package dataplaneapi

import (
	"fmt"
	"sort"
	"time"
)

// Status is what `rackctl dataplane show` prints for a node.
type Status struct {
	PinDir   string            `json:"pin_dir"`
	Netns    string            `json:"netns,omitempty"`
	Attach   string            `json:"attach"` // tcx or clsact
	Uplink   *DeviceStatus     `json:"uplink,omitempty"`
	Ports    []PortStatus      `json:"ports"`
	Programs []ProgramStatus   `json:"programs"`
	Maps     []MapStatus       `json:"maps"`
	Counters map[string]uint64 `json:"counters"`
	// Drift is what the periodic check of the kernel against the last
	// Apply found and repaired.
	Drift DriftStatus `json:"drift"`
}

// DeviceStatus is a device the dataplane has a program on.
type DeviceStatus struct {
	Name     string `json:"name"`
	Ifindex  uint32 `json:"ifindex"`
	Attached bool   `json:"attached"`
}

// PortStatus is one enforced port as the maps hold it.
type PortStatus struct {
	ID       string   `json:"id"`
	Device   string   `json:"device"`
	Ifindex  uint32   `json:"ifindex"`
	Attached bool     `json:"attached"`
	VLAN     uint32   `json:"vlan"`
	MAC      string   `json:"mac"`
	Addrs    []string `json:"addrs"`
	Security bool     `json:"port_security"`
	Policy   uint32   `json:"policy"`
	Rules    int      `json:"rule_keys"`
	DHCP     bool     `json:"dhcp"`
}

// ProgramStatus is a loaded program.
type ProgramStatus struct {
	Name string `json:"name"`
	ID   uint32 `json:"id"`
	Tag  string `json:"tag"`
}

// MapStatus is a map's fill.
type MapStatus struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	Entries int    `json:"entries"`
	Max     uint32 `json:"max_entries"`
}

// DriftStatus says how often the kernel was found to differ from what this
// process last wrote, and put back. Drift means something else writes the
// pins (another loader, bpftool, a bug): it is repaired, but someone
// should look.
type DriftStatus struct {
	// Repaired counts the entries and pins written back since Open.
	Repaired uint64 `json:"repaired"`
	// Last is the most recent drift found, by map name ("pins" for pinned
	// maps and links that were gone or replaced, "pin_dir" for the
	// directory itself).
	Last       Drift     `json:"last,omitempty"`
	LastAt     time.Time `json:"last_at,omitzero"`
	VerifiedAt time.Time `json:"verified_at,omitzero"`
	// Error is why the last check could not repair everything; empty
	// when it did.
	Error string `json:"error,omitempty"`
}

// Drift is what one Verify found and wrote back, by map name.
type Drift map[string]int

// Total is the number of entries and pins that differed.
func (d Drift) Total() int {
	n := 0
	for _, v := range d {
		n += v
	}
	return n
}

// String lists the maps that drifted, e.g. "fdb=1 ports=2".
func (d Drift) String() string {
	names := make([]string, 0, len(d))
	for n := range d {
		names = append(names, n)
	}
	sort.Strings(names)
	s := ""
	for i, n := range names {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%s=%d", n, d[n])
	}
	return s
}
