package metadata

import (
	"sort"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/network/netstate"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
	"github.com/rackstack/rackstack/node/configdrive"
	"github.com/rackstack/rackstack/node/hypervisor"
)

// Devices is Nova's device metadata of server sv: its tagged NICs (a
// port's tag is on the server row) in NIC order, then its tagged
// volumes (a volume's tag is on its attachment) in device order; only
// tagged devices are listed, as Nova lists them. live is where the
// running guest's devices are (hypervisor.Devices): each device found
// there gets its PCI address; without it (the config drive, written
// before the guest starts) the devices have their bus but no address.
//
// A disk's serial is its volume's id, as Nova gives it; the guest's
// virtio serial is that id's first 20 characters, which is how a live
// disk is matched.
func Devices(tx *memdb.Txn, sv *computestate.Server, live []hypervisor.GuestDevice) []configdrive.Device {
	var out []configdrive.Device
	address := func(kind, key string) string {
		for _, g := range live {
			if g.Kind == kind && (g.MAC == key || g.Serial == key) {
				return g.Address
			}
		}
		return ""
	}
	for _, id := range sv.Ports {
		tag := sv.NICTags[id]
		if tag == "" {
			continue
		}
		p := store.Get[netstate.Port](tx, netstate.TablePorts, id)
		if p == nil {
			continue
		}
		out = append(out, configdrive.Device{Type: hypervisor.DeviceNIC, Bus: "pci", MAC: p.MAC,
			Address: address(hypervisor.DeviceNIC, p.MAC), Tags: []string{tag}})
	}
	type disk struct {
		device string
		d      configdrive.Device
	}
	var disks []disk
	for _, v := range volstate.VolumesOfServer(tx, sv.ID) {
		for _, a := range v.Attachments {
			if a.ServerID != sv.ID || a.Tag == "" {
				continue
			}
			serial := v.ID
			if len(serial) > 20 {
				serial = serial[:20]
			}
			disks = append(disks, disk{a.Device, configdrive.Device{Type: hypervisor.DeviceDisk, Bus: "pci", Serial: v.ID,
				Address: address(hypervisor.DeviceDisk, serial), Tags: []string{a.Tag}}})
		}
	}
	sort.SliceStable(disks, func(i, j int) bool { return disks[i].device < disks[j].device })
	for _, d := range disks {
		out = append(out, d.d)
	}
	return out
}

// tagged says whether sv has a tagged device (and so whether its
// metadata needs the guest's device addresses).
func tagged(tx *memdb.Txn, sv *computestate.Server) bool {
	if len(sv.NICTags) > 0 {
		return true
	}
	for _, v := range volstate.VolumesOfServer(tx, sv.ID) {
		for _, a := range v.Attachments {
			if a.ServerID == sv.ID && a.Tag != "" {
				return true
			}
		}
	}
	return false
}
