package ports

import (
	"github.com/rackstack/rackstack/dataplane"
	"github.com/rackstack/rackstack/fabric/network/netstate"
)

// trunkSlot is where a subport's frames ride: its parent port and VLAN id.
type trunkSlot struct {
	parent netstate.Port
	vid    uint16
}

// trunkSlots maps each subport of a trunk whose parent port exists to
// its slot.
func trunkSlots(v *netstate.View) map[string]trunkSlot {
	ports := map[string]netstate.Port{}
	for _, p := range v.Ports {
		ports[p.ID] = p
	}
	out := map[string]trunkSlot{}
	for _, t := range v.Trunks {
		parent, ok := ports[t.PortID]
		if !ok {
			continue
		}
		for _, sp := range t.SubPorts {
			if sp.SegmentationType == "vlan" && sp.SegmentationID > 0 && sp.SegmentationID <= 4094 {
				out[sp.PortID] = trunkSlot{parent: parent, vid: uint16(sp.SegmentationID)}
			}
		}
	}
	return out
}

// onTrunk makes port p, a subport, ride on its parent's device: the node
// hosting the parent (bound there, admin state up) enforces it, whatever
// p's own binding says. It reports whether this node does.
func onTrunk(port *dataplane.Port, slot trunkSlot, node string) bool {
	if slot.parent.HostID != node || !slot.parent.AdminStateUp {
		return false
	}
	port.Device = dataplane.DeviceName(slot.parent.ID)
	port.TrunkVID = slot.vid
	return true
}
