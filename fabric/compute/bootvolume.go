package compute

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// Boot from volume: block_device_mapping_v2 with one entry, boot_index
// 0, destination_type volume, whose source is a volume (booted as it
// is), an image (a new volume of volume_size GiB made from it first, by
// the volume service), a volume snapshot (a new volume made from it,
// of volume_size GiB or the snapshot's size) or blank (a new empty
// volume of volume_size GiB, as Nova allows). The server's root disk is
// that volume, over NBD: it is attached to the server (Root) in the
// command that places the server, so a server never runs without its
// root volume, and it is released (or deleted, with
// delete_on_termination) with the server. A create that must make
// volumes first answers at once and makes them after (bdmbuild.go).

// BootVolumes is the volume service as server create sees it. Each
// Create makes the volume under the id the caller chose, in p's project,
// and returns once it is available; one that was made but failed is left
// in error, under that id.
type BootVolumes interface {
	// CreateFromImage makes a bootable volume of sizeGB holding image's
	// disk, of volumeType ("" the project's default).
	CreateFromImage(ctx context.Context, p *api.Principal, id, image string, sizeGB int, name, volumeType string) (string, error)
	// CreateBlank makes an empty volume of sizeGB, of volumeType.
	CreateBlank(ctx context.Context, p *api.Principal, id string, sizeGB int, name, volumeType string) (string, error)
	// CreateFromSnapshot makes a volume from p's volume snapshot, of
	// sizeGB (0: the snapshot's size) and volumeType ("" the snapshot's
	// volume's), as a volume create naming snapshot_id does.
	CreateFromSnapshot(ctx context.Context, p *api.Principal, id, snapshot string, sizeGB int, name, volumeType string) (string, error)
	// Delete deletes a volume the calls above made.
	Delete(ctx context.Context, p *api.Principal, id string) error
	// Reimage writes image's disk over p's volume id, reserved for its
	// server (os-reimage with reimage_reserved), and returns once done:
	// the rebuild of a volume-backed server (2.93).
	Reimage(ctx context.Context, p *api.Principal, id, image string) error
}

// blockDevice is a volume a create gives the new server: its root disk
// (boot_index 0: the request's boot) or a volume attached to it besides
// (a block_device_mapping_v2 entry with destination_type volume and no
// boot index, or one above 0, or a legacy block_device_mapping entry not
// on vda, which Nova converts to one: the request's volumes). Source is
// "volume" (UUID is the caller's volume), "blank" (a new empty volume of
// Size GiB: as the root disk, an empty one the guest cannot boot from
// until it is rescued or written, as Nova makes it), "image" (a new volume of Size GiB
// holding image UUID) or "snapshot" (a new volume made from the caller's
// volume snapshot UUID, of Size GiB or the snapshot's); the new ones
// take volume type Type ("" the project's default, or for a snapshot its
// volume's).
type blockDevice struct {
	Source, UUID, Type string
	// Tag is the device tag of its attachment (2.32, 2.42 on).
	Tag                 string
	Size                int
	DeleteOnTermination bool
	// field is the request's attribute naming UUID, sizeField its size.
	field, sizeField string
	// index is a data volume's boot_index (-1 for none), which orders
	// the devices.
	index int
}

// readBlockDevices reads block_device_mapping_v2 or the legacy
// block_device_mapping. volumeType says whether entries may name a
// volume_type (2.67).
func readBlockDevices(in *api.Input, req *serverRequest, volumeType bool) {
	if l, ok := in.Obj["block_device_mapping"].([]any); ok && len(l) > 0 {
		if v2, ok := in.Obj["block_device_mapping_v2"].([]any); ok && len(v2) > 0 {
			in.Fail(badRequest("Using different block_device_mapping syntaxes is not allowed in the same request."))
			return
		}
		readLegacyBlockDevices(in, req, l)
		return
	}
	bdms := array(in, "block_device_mapping_v2")
	if len(bdms) == 0 || in.Err != nil {
		return
	}
	seen := map[string]bool{}
	for _, e := range bdms {
		m, ok := e.(map[string]any)
		if !ok {
			in.Fail(badField("block_device_mapping_v2", e, "%s is not of type 'object'", api.Text(e)))
			return
		}
		readBlockDevice(in, req, m, volumeType, seen)
		if in.Err != nil {
			return
		}
	}
	// Devices are given in boot order: entries with a boot index above
	// 0 by it, then the others as listed (Nova's default device names
	// follow the same order).
	sort.SliceStable(req.volumes, func(i, j int) bool {
		a, b := req.volumes[i].index, req.volumes[j].index
		return a > 0 && (b <= 0 || a < b)
	})
}

// readBlockDevice reads one block_device_mapping_v2 entry, as Nova's
// BlockDeviceDict.from_api validates it: the boot volume (boot_index 0,
// destination volume), the image the server boots from (boot_index 0,
// source image, destination local: what openstack server create and
// Terraform send beside --image), or a data volume (destination volume,
// any other boot index). The volume of either may be made from a volume
// snapshot (source snapshot). An entry with source blank and
// destination local is an ephemeral disk, or the swap disk with
// guest_format swap (localdisks.go).
func readBlockDevice(in *api.Input, req *serverRequest, m map[string]any, volumeType bool, seen map[string]bool) {
	const f = "block_device_mapping_v2."
	bin := newInput(m)
	source := str(bin, "source_type", true, 1, 255)
	uuid := optStr(bin, "uuid", 255)
	dest := optStr(bin, "destination_type", 255)
	index := -1
	if !bin.IsNull("boot_index") && m["boot_index"] != "none" {
		index = integer(bin, "boot_index", false, -1, -1, 255)
	}
	size := 0
	if !bin.IsNull("volume_size") {
		size = integer(bin, "volume_size", false, 0, 1, 16<<10)
	}
	del := boolean(bin, "delete_on_termination", false)
	vtype := ""
	if volumeType {
		vtype = optStr(bin, "volume_type", 255)
	} else if _, ok := m["volume_type"]; ok {
		in.Fail(badField(f+"volume_type", m["volume_type"], "volume_type needs microversion 2.67 or later"))
		return
	}
	if m["tag"] != nil && !req.deviceTags {
		in.Fail(badRequest("Invalid input for field/attribute block_device_mapping_v2. Additional properties are not allowed ('tag' was unexpected)"))
		return
	}
	tag := deviceTag(bin, f+"tag")
	if bin.Err != nil {
		in.Fail(bin.Err)
		return
	}
	for _, k := range []string{"disk_bus", "device_type"} {
		if v, ok := m[k]; ok && v != nil && v != "" && !(k == "disk_bus" && v == "virtio") && !(k == "device_type" && v == "disk") {
			in.Fail(badField(f+k, v, "%s %s is not supported: disks are virtio disks", k, api.Text(v)))
			return
		}
	}
	if dest == "" {
		// Nova's default: a volume or snapshot goes to a volume, an
		// image or blank to a local disk.
		dest = "local"
		if source == "volume" || source == "snapshot" {
			dest = "volume"
		}
	}
	format := ""
	if v, ok := m["guest_format"]; ok && v != nil && v != "" {
		format, ok = v.(string)
		switch {
		case !ok:
			in.Fail(badField(f+"guest_format", v, "%s is not of type 'string'", api.Text(v)))
			return
		case source != "blank" || dest != "local":
			// A volume's filesystem is the guest's to make.
			in.Fail(badField(f+"guest_format", v, "guest_format is for local ephemeral and swap disks (source_type blank, destination_type local), not %s to %s", source, dest))
			return
		case !slices.Contains(computestate.LocalDiskFormats, format):
			in.Fail(badField(f+"guest_format", v, "guest_format %s is not supported: want one of %s", format, strings.Join(computestate.LocalDiskFormats, ", ")))
			return
		}
	}
	if source == "blank" && dest == "local" {
		// An ephemeral or swap disk, on the server's host.
		switch {
		case uuid != "":
			in.Fail(badField(f+"uuid", uuid, "a local ephemeral or swap disk names no uuid"))
		case index == 0:
			in.Fail(badRequest("Block Device Mapping is Invalid: Boot sequence for the instance and image/block device mapping combination is not valid."))
		case tag != "":
			in.Fail(badField(f+"tag", tag, "a tag on a local ephemeral or swap disk is not supported: tag volumes"))
		case vtype != "":
			in.Fail(badField(f+"volume_type", vtype, "volume_type is for volumes, not a local ephemeral or swap disk"))
		default:
			req.local = append(req.local, localDisk{swap: format == "swap", format: format, size: size})
		}
		return
	}
	switch {
	case source != "volume" && source != "image" && source != "blank" && source != "snapshot":
		in.Fail(badField(f+"source_type", source, "source_type must be one of volume, image, snapshot, blank"))
	case dest != "volume" && dest != "local":
		in.Fail(badField(f+"destination_type", dest, "destination_type must be volume or local"))
	case dest == "local" && source == "image" && index == 0 && tag != "":
		// The image's local root disk has no volume whose attachment
		// keeps a tag; it is the guest's first disk anyway.
		in.Fail(badField(f+"tag", tag, "a tag on the image's local root disk is not supported: tag volumes"))
	case dest == "local" && source == "image" && index == 0:
		// The image the server boots from, as --image names it.
		switch {
		case !uuidPattern.MatchString(uuid):
			in.Fail(badField(f+"uuid", uuid, "'%s' is not a valid UUID", uuid))
		case req.imageRef != "" && refID(req.imageRef) != uuid:
			in.Fail(badField(f+"uuid", uuid, "the boot image %s is not imageRef %s", uuid, refID(req.imageRef)))
		case req.boot != nil || seen["boot"]:
			in.Fail(badRequest("Block Device Mapping is Invalid: Boot sequence for the instance and image/block device mapping combination is not valid."))
		default:
			req.imageRef = uuid
			seen["boot"] = true
		}
	case dest == "local":
		in.Fail(badField(f+"destination_type", dest, "a local disk is the boot image (source_type image, boot_index 0) or an ephemeral or swap disk (source_type blank), not %s", source))
	case source != "blank" && !uuidPattern.MatchString(uuid):
		in.Fail(badField(f+"uuid", uuid, "'%s' is not a valid UUID", uuid))
	case source == "blank" && uuid != "":
		in.Fail(badField(f+"uuid", uuid, "a blank volume names no uuid"))
	case (source == "image" || source == "blank") && size == 0:
		in.Fail(badField(f+"volume_size", m["volume_size"], "a volume made from an image or blank needs its volume_size"))
	case source == "volume" && vtype != "":
		in.Fail(badField(f+"volume_type", vtype, "volume_type is for volumes the server create makes, not an existing volume"))
	case source == "volume" && seen[uuid]:
		in.Fail(badRequest("Block Device Mapping is Invalid: volume %s is mapped twice.", uuid))
	case index == 0:
		if req.boot != nil || seen["boot"] {
			in.Fail(badRequest("Block Device Mapping is Invalid: Boot sequence for the instance and image/block device mapping combination is not valid."))
			return
		}
		req.boot = &blockDevice{Source: source, UUID: uuid, Size: size, Type: vtype, DeleteOnTermination: del, Tag: tag,
			field: f + "uuid", sizeField: f + "volume_size"}
		seen["boot"] = true
	default:
		req.volumes = append(req.volumes, blockDevice{Source: source, UUID: uuid, Size: size, Type: vtype, DeleteOnTermination: del, index: index, Tag: tag,
			field: f + "uuid", sizeField: f + "volume_size"})
	}
	if in.Err == nil && source == "volume" {
		seen[uuid] = true
	}
}

// readLegacyBlockDevices reads the legacy block_device_mapping as Nova
// converts it (block_device.from_legacy_mapping, the root device name
// being vda): an entry on vda is the boot volume, any other entry a data
// volume attached to the server as it is created; an entry naming a
// snapshot_id is a new volume made from that volume snapshot (of its
// volume_size, or the snapshot's), its volume_id unread as in Nova;
// no_device entries suppress nothing here. Ephemeral or swap disks are
// refused, naming the field.
func readLegacyBlockDevices(in *api.Input, req *serverRequest, l []any) {
	seen := map[string]bool{}
	for _, e := range l {
		m, ok := e.(map[string]any)
		if !ok {
			in.Fail(badField("block_device_mapping", e, "%s is not of type 'object'", api.Text(e)))
			return
		}
		bin := newInput(m)
		volID := str(bin, "volume_id", false, 0, 255)
		device := str(bin, "device_name", false, 0, 255)
		del := boolean(bin, "delete_on_termination", false)
		noDevice := boolean(bin, "no_device", false)
		snapshot := str(bin, "snapshot_id", false, 0, 255)
		virtual := str(bin, "virtual_name", false, 0, 255)
		size := 0
		if snapshot != "" && !bin.IsNull("volume_size") {
			size = integer(bin, "volume_size", false, 0, 1, 16<<10)
		}
		if bin.Err != nil {
			in.Fail(bin.Err)
			return
		}
		switch {
		case noDevice:
			continue
		case snapshot != "" && !uuidPattern.MatchString(snapshot):
			in.Fail(badField("block_device_mapping.snapshot_id", snapshot, "'%s' is not a valid UUID", snapshot))
		case snapshot != "":
			if strings.TrimPrefix(device, "/dev/") != "vda" {
				req.volumes = append(req.volumes, blockDevice{Source: "snapshot", UUID: snapshot, Size: size, DeleteOnTermination: del, index: -1,
					field: "block_device_mapping.snapshot_id", sizeField: "block_device_mapping.volume_size"})
				continue
			}
			if req.boot != nil {
				in.Fail(badRequest("Block Device Mapping is Invalid: two volumes on the root device vda."))
				return
			}
			req.boot = &blockDevice{Source: "snapshot", UUID: snapshot, Size: size, DeleteOnTermination: del,
				field: "block_device_mapping.snapshot_id", sizeField: "block_device_mapping.volume_size"}
			continue
		case virtual != "":
			in.Fail(badField("block_device_mapping.virtual_name", virtual, "ephemeral and swap disks are not supported"))
		case !uuidPattern.MatchString(volID):
			in.Fail(badField("block_device_mapping.volume_id", volID, "'%s' is not a valid UUID", volID))
		case seen[volID]:
			in.Fail(badRequest("Block Device Mapping is Invalid: volume %s is mapped twice.", volID))
		case strings.TrimPrefix(device, "/dev/") == "vda":
			if req.boot != nil {
				in.Fail(badRequest("Block Device Mapping is Invalid: two volumes on the root device vda."))
				return
			}
			req.boot = &blockDevice{Source: "volume", UUID: volID, DeleteOnTermination: del}
		default:
			req.volumes = append(req.volumes, blockDevice{Source: "volume", UUID: volID, DeleteOnTermination: del, index: -1})
		}
		if in.Err != nil {
			return
		}
		seen[volID] = true
	}
}

// resolveDataVolumes checks the data volumes a create attaches, before
// anything is made: the caller's existing volumes, available; the images
// and snapshots new volumes are made from, and the volume types they
// name; one server that is not bare metal.
func (s *Service) resolveDataVolumes(ctx context.Context, tx *memdb.Txn, p *api.Principal, req *serverRequest) error {
	if len(req.volumes) == 0 {
		return nil
	}
	if req.count > 1 {
		return badRequest("Attaching volumes to more than one server in one request is not supported.")
	}
	if req.baremetal != nil {
		return badRequest("Volumes cannot be attached to bare-metal servers.")
	}
	for _, d := range req.volumes {
		switch d.Source {
		case "volume":
			if err := availableVolume(tx, req.tmpl.Project, d.UUID); err != nil {
				return err
			}
			continue
		case "image":
			if s.cfg.Volumes == nil {
				return badRequest("Volumes made from images at server create are not supported by this cloud.")
			}
			scratch := req.tmpl
			if _, err := s.resolveImage(ctx, p, d.UUID, &Flavor{}, &scratch); err != nil {
				return err
			}
		case "blank":
			if s.cfg.Volumes == nil {
				return badRequest("Blank volumes at server create are not supported by this cloud.")
			}
		case "snapshot":
			if err := s.resolveSnapshot(tx, req.tmpl.Project, d.UUID, d.Size, d.field, d.sizeField); err != nil {
				return err
			}
		}
		if err := checkVolumeType(tx, p, req.tmpl.Project, d.Type); err != nil {
			return err
		}
	}
	return nil
}

// checkVolumeType checks the volume type a new volume names (2.67), if
// any, is one the project may use.
func checkVolumeType(tx *memdb.Txn, p *api.Principal, project, ref string) error {
	if ref == "" {
		return nil
	}
	t, err := volstate.LoadType(tx, ref)
	if err != nil {
		t = volstate.TypeByName(tx, ref)
	}
	if t == nil || !t.Usable(project) && !p.IsAdmin() {
		return badField("block_device_mapping_v2.volume_type", ref, "Volume type %s could not be found.", ref)
	}
	return nil
}

// resolveSnapshot checks the volume snapshot a new volume is made from,
// before anything is made: the project's, available, and no bigger than
// the size asked for (0: the snapshot's), naming the field that is wrong.
func (s *Service) resolveSnapshot(tx *memdb.Txn, project, id string, size int, field, sizeField string) error {
	if s.cfg.Volumes == nil {
		return badRequest("Volumes made from snapshots at server create are not supported by this cloud.")
	}
	sn := store.Get[volstate.Snapshot](tx, volstate.SnapshotTable, id)
	switch {
	case sn == nil || sn.Project != project:
		return badField(field, id, "Block Device Mapping is Invalid: failed to get snapshot %s.", id)
	case sn.Status != volstate.SnapStatusAvailable:
		return badField(field, id, "Block Device Mapping is Invalid: snapshot %s is %s, not available.", id, sn.Status)
	case size > 0 && size < sn.Size:
		return badField(sizeField, size, "Block Device Mapping is Invalid: volume size %dGB cannot be smaller than the size %dGB of snapshot %s.", size, sn.Size, id)
	}
	return nil
}

// newVolume makes the new volume a block device of source "blank",
// "image" or "snapshot" (uuid the image or snapshot) asks for, under id,
// of sizeGB and volume type vtype, named after the server, and returns
// once it is available.
func (s *Service) newVolume(ctx context.Context, p *api.Principal, id, source, uuid string, sizeGB int, name, vtype string) error {
	var err error
	switch source {
	case "blank":
		_, err = s.cfg.Volumes.CreateBlank(ctx, p, id, sizeGB, name+"-blank", vtype)
	case "image":
		_, err = s.cfg.Volumes.CreateFromImage(ctx, p, id, uuid, sizeGB, name, vtype)
	case "snapshot":
		_, err = s.cfg.Volumes.CreateFromSnapshot(ctx, p, id, uuid, sizeGB, name, vtype)
	default:
		err = fmt.Errorf("no volume is made from source %q", source)
	}
	return err
}

// availableVolume checks an existing volume a block device names: the
// project's, and available.
func availableVolume(tx *memdb.Txn, project, id string) error {
	v := store.Get[volstate.Volume](tx, volstate.VolumeTable, id)
	if v == nil || v.Project != project {
		return badRequest("Block Device Mapping is Invalid: failed to get volume %s.", id)
	}
	if v.Status != volstate.StatusAvailable {
		return badRequest("Block Device Mapping is Invalid: volume %s is %s, not available.", v.ID, v.Status)
	}
	return nil
}

// resolveBootVolume checks what a boot-from-volume create names: the
// image (active, fitting the flavor's memory), the snapshot (the
// caller's, available, fitting the size asked for), or the volume (the
// caller's, available); and the volume type a new volume names.
func (s *Service) resolveBootVolume(ctx context.Context, tx *memdb.Txn, r *http.Request, req *serverRequest) error {
	b := req.boot
	if req.count > 1 {
		return badRequest("Booting more than one server from a volume in one request is not supported.")
	}
	switch b.Source {
	case "image":
		if s.cfg.Volumes == nil {
			return badRequest("Booting from a volume made from an image is not supported by this cloud.")
		}
		f := req.tmpl.Flavor
		if _, err := s.resolveImage(ctx, principal(r), b.UUID, &Flavor{RAM: f.RAM}, &req.tmpl); err != nil {
			return err
		}
	case "snapshot":
		if err := s.resolveSnapshot(tx, req.tmpl.Project, b.UUID, b.Size, b.field, b.sizeField); err != nil {
			return err
		}
	case "blank":
		// Nova's _validate_bdm takes a blank volume at boot_index 0
		// (a BlockDeviceDict with source blank, destination volume
		// and a size): the compute manager makes it empty and boots
		// the server from it (DriverVolBlankBlockDevice), which
		// tempest's stable-rescue test rescues.
		if s.cfg.Volumes == nil {
			return badRequest("Booting from a blank volume is not supported by this cloud.")
		}
	default:
		if err := availableVolume(tx, req.tmpl.Project, b.UUID); err != nil {
			return err
		}
		// Nova boots only a volume Cinder marks bootable (made from an
		// image, or set with os-set_bootable), when the create names no
		// imageRef: with one, the boot metadata is the image's and the
		// volume is not asked (compute/api.py _create_instance reads
		// get_bdm_image_metadata only without an image_href).
		if v := store.Get[volstate.Volume](tx, volstate.VolumeTable, b.UUID); !v.Bootable && req.imageRef == "" {
			return badRequest("Block Device %s is not bootable.", b.UUID)
		}
		// An encrypted volume boots too: its node opens the key and
		// QEMU the LUKS layer (the key through a pipe, never its
		// command line).
	}
	if err := checkVolumeType(tx, principal(r), req.tmpl.Project, b.Type); err != nil {
		return err
	}
	// The root disk is the volume: the server takes no local disk and
	// shows no image.
	req.tmpl.ImageID, req.tmpl.RootGB = "", 0
	return nil
}

// attachBootVolume attaches a placed server's root volume, in the
// command that creates it.
func attachBootVolume(tx *memdb.Txn, s *Server, c serverCreateCmd) error {
	if s.BootVolume == "" || s.Host == "" {
		return nil
	}
	a := volstate.Attachment{ID: s.ID, ServerID: s.ID, Host: s.Host, Device: "/dev/vda", Since: c.Now, Root: true,
		DeleteOnTermination: c.DeleteBootVolume, Tag: c.BootTag}
	if _, err := volstate.AttachTx(tx, volstate.AttachCmd{VolumeID: s.BootVolume, Project: s.Project, Attachment: a}); err != nil {
		return store.WrapApplyError(err)
	}
	return nil
}

// attachDataVolumes attaches a placed server's data volumes, in the
// command that creates it, on the next free devices; the node agent plugs
// each into the guest once it runs. An unplaced server (ERROR) takes none.
func attachDataVolumes(tx *memdb.Txn, s *Server, c serverCreateCmd) error {
	if s.Host == "" {
		return nil
	}
	for _, d := range c.Volumes {
		device := nextDevice(tx, s)
		if device == "" {
			return badRequest("No free disk device names for server %s.", s.ID)
		}
		a := volstate.Attachment{ID: d.AttachmentID, ServerID: s.ID, Host: s.Host, Device: device, Since: c.Now,
			DeleteOnTermination: d.DeleteOnTermination, Tag: d.Tag}
		if _, err := volstate.AttachTx(tx, volstate.AttachCmd{VolumeID: d.VolumeID, Project: s.Project, Attachment: a}); err != nil {
			return store.WrapApplyError(err)
		}
	}
	return nil
}
