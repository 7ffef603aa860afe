package compute

import (
	"context"
	"net/http"
	"strings"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// Boot from volume: block_device_mapping_v2 with one entry, boot_index
// 0, destination_type volume, whose source is a volume (booted as it
// is) or an image (a new volume of volume_size GiB made from it first,
// by the volume service). The server's root disk is that volume, over
// NBD: it is attached to the server (Root) in the command that creates
// the server, so a server never exists without its root volume, and it
// is released (or deleted, with delete_on_termination) with the server.

// BootVolumes is the volume service as server create sees it.
type BootVolumes interface {
	// CreateFromImage makes a bootable volume of sizeGB in p's project
	// holding image's disk, and returns its id once it is available.
	CreateFromImage(ctx context.Context, p *api.Principal, image string, sizeGB int, name string) (string, error)
	// Delete deletes a volume CreateFromImage made.
	Delete(ctx context.Context, p *api.Principal, id string) error
}

// bootVolume is what a create asks to boot from.
type bootVolume struct {
	// Source is "volume" (UUID is the volume) or "image" (UUID is the
	// image, Size the new volume's GiB).
	Source, UUID        string
	Size                int
	DeleteOnTermination bool
}

// dataVolume is a volume a create attaches to the new server besides its
// root disk: a legacy block_device_mapping entry not on vda, which Nova
// converts to a volume with no boot index.
type dataVolume struct {
	UUID                string
	DeleteOnTermination bool
}

// readBlockDevices reads block_device_mapping_v2 (one boot volume, or
// nothing) or the legacy block_device_mapping.
func readBlockDevices(in *api.Input, req *serverRequest) {
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
	if len(bdms) > 1 {
		in.Fail(badRequest("block_device_mapping_v2 holds %d devices: this cloud boots from one volume and attaches others after the server is created", len(bdms)))
		return
	}
	m, ok := bdms[0].(map[string]any)
	if !ok {
		in.Fail(badField("block_device_mapping_v2", bdms[0], "%s is not of type 'object'", api.Text(bdms[0])))
		return
	}
	bin := newInput(m)
	b := bootVolume{Source: str(bin, "source_type", true, 1, 255), UUID: str(bin, "uuid", false, 0, 255)}
	dest := str(bin, "destination_type", false, 0, 255)
	index := integer(bin, "boot_index", false, -1, -1, 255)
	b.Size = integer(bin, "volume_size", false, 0, 1, 16<<10)
	b.DeleteOnTermination = boolean(bin, "delete_on_termination", false)
	if bin.Err != nil {
		in.Fail(bin.Err)
		return
	}
	switch {
	case dest != "volume":
		in.Fail(badField("block_device_mapping_v2.destination_type", dest, "only destination_type volume is supported (local block devices are not)"))
	case index != 0:
		in.Fail(badField("block_device_mapping_v2.boot_index", m["boot_index"], "the one block device must be the boot device (boot_index 0)"))
	case b.Source != "volume" && b.Source != "image":
		in.Fail(badField("block_device_mapping_v2.source_type", b.Source, "source_type must be volume or image"))
	case !uuidPattern.MatchString(b.UUID):
		in.Fail(badField("block_device_mapping_v2.uuid", b.UUID, "'%s' is not a valid UUID", b.UUID))
	case b.Source == "image" && b.Size == 0:
		in.Fail(badField("block_device_mapping_v2.volume_size", m["volume_size"], "a volume made from an image needs its volume_size"))
	default:
		req.boot = &b
	}
}

// readLegacyBlockDevices reads the legacy block_device_mapping as Nova
// converts it (block_device.from_legacy_mapping, the root device name
// being vda): an entry on vda is the boot volume, any other entry a data
// volume attached to the server as it is created; no_device entries
// suppress nothing here. Snapshots and ephemeral or swap disks are
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
		if bin.Err != nil {
			in.Fail(bin.Err)
			return
		}
		switch {
		case noDevice:
			continue
		case snapshot != "":
			in.Fail(badField("block_device_mapping.snapshot_id", snapshot, "volumes made from snapshots at server create are not supported: create the volume first"))
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
			req.boot = &bootVolume{Source: "volume", UUID: volID, DeleteOnTermination: del}
		default:
			req.volumes = append(req.volumes, dataVolume{UUID: volID, DeleteOnTermination: del})
		}
		if in.Err != nil {
			return
		}
		seen[volID] = true
	}
}

// resolveDataVolumes checks the data volumes a create attaches: the
// caller's, available, to one server that is not bare metal.
func resolveDataVolumes(tx *memdb.Txn, req *serverRequest) error {
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
		v := store.Get[volstate.Volume](tx, volstate.VolumeTable, d.UUID)
		if v == nil || v.Project != req.tmpl.Project {
			return badRequest("Block Device Mapping is Invalid: failed to get volume %s.", d.UUID)
		}
		if v.Status != volstate.StatusAvailable {
			return badRequest("Block Device Mapping is Invalid: volume %s is %s, not available.", v.ID, v.Status)
		}
	}
	return nil
}

// resolveBootVolume checks what a boot-from-volume create names: the
// image (active, fitting the flavor's memory), or the volume (the
// caller's, available).
func (s *Service) resolveBootVolume(ctx context.Context, tx *memdb.Txn, r *http.Request, req *serverRequest) error {
	b := req.boot
	if req.count > 1 {
		return badRequest("Booting more than one server from a volume in one request is not supported.")
	}
	if b.Source == "image" {
		if s.cfg.Volumes == nil {
			return badRequest("Booting from a volume made from an image is not supported by this cloud.")
		}
		f := req.tmpl.Flavor
		if _, err := s.resolveImage(ctx, principal(r), b.UUID, &Flavor{RAM: f.RAM}, &req.tmpl); err != nil {
			return err
		}
	} else {
		v := store.Get[volstate.Volume](tx, volstate.VolumeTable, b.UUID)
		if v == nil || v.Project != req.tmpl.Project {
			return badRequest("Block Device Mapping is Invalid: failed to get volume %s.", b.UUID)
		}
		if v.Status != volstate.StatusAvailable {
			return badRequest("Block Device Mapping is Invalid: volume %s is %s, not available.", v.ID, v.Status)
		}
		// An encrypted volume boots too: its node opens the key and
		// QEMU the LUKS layer (the key through a pipe, never its
		// command line).
	}
	// The root disk is the volume: the server takes no local disk and
	// shows no image.
	req.tmpl.ImageID, req.tmpl.RootGB = "", 0
	return nil
}

// makeBootVolume makes the volume an image source asks for, before the
// server is proposed, and returns its id ("" if none was made); undo
// deletes it again unless the server exists.
func (s *Service) makeBootVolume(ctx context.Context, p *api.Principal, req *serverRequest, undo func(...func())) (string, error) {
	b := req.boot
	if b == nil || b.Source != "image" {
		return "", nil
	}
	id, err := s.cfg.Volumes.CreateFromImage(ctx, p, b.UUID, b.Size, req.tmpl.Name)
	if err != nil {
		return "", err
	}
	undo(func() {
		if err := s.cfg.Volumes.Delete(context.WithoutCancel(ctx), p, id); err != nil {
			s.log.Warn("delete the boot volume of a server that was not created", "volume", id, "err", err)
		}
	})
	b.Source, b.UUID = "volume", id
	return id, nil
}

// attachBootVolume attaches a placed server's root volume, in the
// command that creates it.
func attachBootVolume(tx *memdb.Txn, s *Server, c serverCreateCmd) error {
	if s.BootVolume == "" || s.Host == "" {
		return nil
	}
	a := volstate.Attachment{ID: s.ID, ServerID: s.ID, Host: s.Host, Device: "/dev/vda", Since: c.Now, Root: true,
		DeleteOnTermination: c.DeleteBootVolume}
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
		device := nextDevice(tx, s.ID)
		if device == "" {
			return badRequest("No free disk device names for server %s.", s.ID)
		}
		a := volstate.Attachment{ID: d.AttachmentID, ServerID: s.ID, Host: s.Host, Device: device, Since: c.Now,
			DeleteOnTermination: d.DeleteOnTermination}
		if _, err := volstate.AttachTx(tx, volstate.AttachCmd{VolumeID: d.VolumeID, Project: s.Project, Attachment: a}); err != nil {
			return store.WrapApplyError(err)
		}
	}
	return nil
}
