// Package dataplaneapi holds the JSON body of GET
// /rackstack/v1/nodes/{name}/dataplane, the picture `rackctl dataplane show`
// prints. It is a leaf with no imports of ours, so a client can decode the
// status without linking cilium/ebpf, netlink or the BPF objects that the
// dataplane package that produces it needs.
package dataplaneapi

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
