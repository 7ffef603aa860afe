package compute

import (
	"cmp"
	"fmt"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
)

// Ephemeral and swap disks, as Nova's libvirt driver makes them: files
// on the server's host beside its root disk, formatted there before the
// guest starts (node/instances/localdisks.go), which the guest sees as
// virtio disks after the root (vdb, vdc, ...) and its metadata's
// block-device-mapping names (ephemeral0, ..., swap). A server gets
//
//   - the ephemeral disks its create's block_device_mapping_v2 asks for
//     (source_type blank, destination_type local, any guest_format but
//     swap), each of its volume_size GiB or else the flavor's ephemeral
//     size, together no more than the flavor's ephemeral size; with
//     none asked for, one ephemeral0 of the flavor's size, if it has one;
//   - one swap disk (guest_format swap) of its volume_size MiB or else
//     the flavor's swap, no more than the flavor's swap; with none asked
//     for, one of the flavor's swap, if it has one.
//
// An ephemeral disk without a guest_format is ext4 (Nova's default for
// a Linux guest), labelled with its name. The disks live and die with
// the server on its host: a resize on the host keeps them as Nova's
// libvirt driver does (resizedLocalDisks), a rebuild
// makes them anew unless preserve_ephemeral, a shelve's offload drops
// them and the unshelve (like an evacuation) makes them anew, empty, on
// the new host, as Nova does; a cold or live migration, which would have
// to copy them, is refused.

// localDisk is one ephemeral or swap disk a create's
// block_device_mapping_v2 asks for: size is GiB for an ephemeral disk,
// MiB for swap (as Nova reads volume_size), 0 for the flavor's.
type localDisk struct {
	swap   bool
	format string
	size   int
}

// maxLocalDisks is Nova's max_local_block_devices default: how many
// local disks (the image's root disk among them) one server may have.
const maxLocalDisks = 3

// defaultEphemeralFormat is the filesystem of an ephemeral disk whose
// guest_format says none: Nova's default for a Linux guest.
const defaultEphemeralFormat = "ext4"

// resolveLocalDisks works out a new server's ephemeral and swap disks
// from its flavor and what its block_device_mapping_v2 asked for, with
// Nova's checks (compute/api.py _validate_bdm), into sv.LocalDisks.
func resolveLocalDisks(req *serverRequest, f *Flavor, sv *Server) error {
	var eph []localDisk
	var swap []localDisk
	for _, d := range req.local {
		if d.swap {
			swap = append(swap, d)
		} else {
			eph = append(eph, d)
		}
	}
	local := len(req.local)
	if req.boot == nil {
		local++ // the image's root disk
	}
	if len(req.local) > 0 && local > maxLocalDisks {
		return badRequest("Block Device Mapping is Invalid: You specified more local devices than the limit allows")
	}
	if len(swap) > 1 {
		return badRequest("Block Device Mapping is Invalid: More than one swap drive requested.")
	}
	total := 0
	for _, d := range eph {
		total += cmp.Or(d.size, f.Ephemeral)
	}
	if total > f.Ephemeral {
		return badRequest("Ephemeral disks requested are larger than the instance type allows. If no size is given in one block device mapping, flavor ephemeral size will be used.")
	}
	if len(swap) == 1 && swap[0].size > f.Swap {
		return badRequest("Swap drive requested is larger than instance type allows.")
	}
	if req.baremetal != nil {
		if len(req.local) > 0 {
			return badRequest("Local ephemeral and swap disks are not supported for bare-metal servers.")
		}
		return nil // its node's own disks
	}
	sv.LocalDisks = nil
	if len(eph) == 0 && f.Ephemeral > 0 {
		eph = []localDisk{{size: f.Ephemeral}}
	}
	for i, d := range eph {
		size := cmp.Or(d.size, f.Ephemeral)
		if size == 0 {
			return badField("block_device_mapping_v2.volume_size", d.size, "an ephemeral disk needs a size: its volume_size, or the flavor's ephemeral size (0 here)")
		}
		format := d.format
		if format == "" {
			format = defaultEphemeralFormat
		}
		sv.LocalDisks = append(sv.LocalDisks, computestate.LocalDisk{Name: fmt.Sprintf("ephemeral%d", i), SizeMB: size << 10, Format: format})
	}
	swapMB := f.Swap
	if len(swap) == 1 && swap[0].size > 0 {
		swapMB = swap[0].size
	}
	if swapMB > 0 {
		sv.LocalDisks = append(sv.LocalDisks, computestate.LocalDisk{Name: "swap", SizeMB: swapMB, Format: "swap"})
	}
	return nil
}

// localDiskMove is why a server with local disks cannot be moved by
// what (a cold or live migration): nil when it has none.
func localDiskMove(s *Server, what string) error {
	if len(s.LocalDisks) == 0 {
		return nil
	}
	return conflict("Cannot %s server %s: it has local ephemeral or swap disks, which this cloud does not copy to another host (a resize on its host, a rebuild, a shelve and an evacuation keep or remake them).", what, s.ID)
}

// ephemeralGB is the size of a server's ephemeral disks together.
func ephemeralGB(s *Server) int {
	mb := 0
	for _, d := range s.LocalDisks {
		if !d.Swap() {
			mb += d.SizeMB
		}
	}
	return mb >> 10
}

// resizedLocalDisks are server s's local disks once resized to flavor f,
// as Nova's libvirt driver finishes a resize: a single ephemeral disk
// grows to the flavor's ephemeral size (never shrinks: a smaller flavor
// is refused before), the flavor's ephemeral0 is made if the server had
// none, and the swap disk is the new flavor's (made anew, or none).
func resizedLocalDisks(s *Server, f Flavor) []computestate.LocalDisk {
	var out []computestate.LocalDisk
	for _, d := range s.LocalDisks {
		if !d.Swap() {
			out = append(out, d)
		}
	}
	switch {
	case len(out) == 1:
		out[0].SizeMB = max(out[0].SizeMB, f.Ephemeral<<10)
	case len(out) == 0 && f.Ephemeral > 0:
		out = append(out, computestate.LocalDisk{Name: "ephemeral0", SizeMB: f.Ephemeral << 10, Format: defaultEphemeralFormat})
	}
	if f.Swap > 0 {
		out = append(out, computestate.LocalDisk{Name: "swap", SizeMB: f.Swap, Format: "swap"})
	}
	return out
}
