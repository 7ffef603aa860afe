package dataplane

import (
	"fmt"
	"strconv"
)

// Trunks (Neutron's trunk extension; bpf/trunk.h is the kernel side). A
// subport (Port.TrunkVID set) has no device of its own: its frames ride on
// its parent's device (Port.Device) tagged with TrunkVID. The dataplane
// keys it, in every map a port is keyed by, by its parent's ifindex and
// its VLAN id, as bpf/trunk.h's TRUNK_KEY does; port_in takes a frame
// tagged with TrunkVID as the subport's and pops the tag, and what is
// delivered to the subport leaves on the parent's device tagged again.
// Untagged frames stay the parent's; a frame tagged with a VLAN id no
// subport of the device has is dropped (drop_no_port). A subport's DHCP
// is answered by trunk_dhcp.go (DHCPv4 only).

const (
	trunkShift  = 20 // TRUNK_SHIFT
	trunkIfMask = 1<<trunkShift - 1
)

// trunkKey is a subport's key: TRUNK_KEY(parent ifindex, vid).
func trunkKey(parent uint32, vid uint16) uint32 { return uint32(vid)<<trunkShift | parent }

// subportDevice is the name a subport's device goes by in the devices map
// of one Apply: no interface can have it (a '/' is never in one), so it
// names only the subport's key.
func subportDevice(parent string, vid uint16) string {
	return parent + "/" + strconv.Itoa(int(vid))
}

// subportDevices returns ports with each subport's Device renamed to its
// subportDevice, and adds to devs those devices, keyed as the kernel side
// keys the subports; a subport whose parent's device is not here is left
// out, as a port whose device is missing. The compilers then key a
// subport as they key any port.
func subportDevices(ports []Port, devs map[string]device) ([]Port, error) {
	out := make([]Port, 0, len(ports))
	for _, p := range ports {
		if p.TrunkVID == 0 {
			out = append(out, p)
			continue
		}
		name := subportDevice(p.Device, p.TrunkVID)
		parent, ok := devs[p.Device]
		if !ok {
			p.Device = name // not among the devices: not compiled
			out = append(out, p)
			continue
		}
		if p.TrunkVID > 4094 {
			return nil, fmt.Errorf("subport %s: VLAN id %d out of 1-4094", p.ID, p.TrunkVID)
		}
		if parent.ifindex > trunkIfMask {
			return nil, fmt.Errorf("subport %s: ifindex %d of %s too large to key", p.ID, parent.ifindex, p.Device)
		}
		if _, dup := devs[name]; dup {
			return nil, fmt.Errorf("subport %s: another subport of %s has VLAN id %d", p.ID, p.Device, p.TrunkVID)
		}
		devs[name] = device{ifindex: trunkKey(parent.ifindex, p.TrunkVID), veth: parent.veth, mac: parent.mac, peer: parent.peer}
		p.Device = name
		out = append(out, p)
	}
	return out, nil
}
