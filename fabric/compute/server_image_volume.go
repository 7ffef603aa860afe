package compute

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// createImage of a server booted from a volume, as Nova's
// snapshot_volume_backed: each volume attached to it is snapshotted by
// the volume service (force, as it is in use; held on its writer's node,
// so each snapshot holds every write acknowledged before it), and the
// image made is only a bucket of properties mapping those snapshots
// (block_device_mapping, bdm_v2, root_device_name): active, empty. A
// server created from that image boots from a new volume made from the
// root snapshot, with the others as data volumes (imageMappings).

// createVolumeBackedImage snapshots sv's volumes and makes the image
// mapping them; a snapshot that cannot be made deletes those made
// before, and no image is made.
func (s *Service) createVolumeBackedImage(w http.ResponseWriter, r *http.Request, tx *memdb.Txn, sv *Server, name string, meta map[string]string) error {
	if s.cfg.VolumeAPI == nil {
		return notImplemented("Creating an image of server %s needs the volume service, which this cloud does not run: it boots from volume %s.", sv.ID, sv.BootVolume)
	}
	vols := volstate.VolumesOfServer(tx, sv.ID)
	// The root disk first, then the data volumes by device.
	sort.SliceStable(vols, func(i, j int) bool {
		a, b := attachmentOf(vols[i], sv.ID), attachmentOf(vols[j], sv.ID)
		return a.Root && !b.Root || a.Root == b.Root && a.Device < b.Device
	})
	var made []string
	undo := func() {
		for _, id := range made {
			if _, err := s.cinder(r, http.MethodDelete, "/snapshots/"+id, nil); err != nil {
				s.log.Warn("compute: delete a snapshot of a failed createImage", "snapshot", id, "err", err)
			}
		}
	}
	var mapping []map[string]any
	for _, v := range vols {
		a := attachmentOf(v, sv.ID)
		out, err := s.cinder(r, http.MethodPost, "/snapshots", map[string]any{"snapshot": map[string]any{
			"volume_id": v.ID, "force": true, "name": "snapshot for " + name, "description": v.Description}})
		if err != nil {
			undo()
			return err
		}
		snap, _ := out["snapshot"].(map[string]any)
		id, _ := snap["id"].(string)
		if id == "" {
			undo()
			return fmt.Errorf("snapshot of volume %s: no id in the volume service's answer", v.ID)
		}
		made = append(made, id)
		var bootIndex any
		if a.Root {
			bootIndex = 0
		}
		mapping = append(mapping, map[string]any{"source_type": "snapshot", "destination_type": "volume", "snapshot_id": id,
			"volume_size": v.Size, "delete_on_termination": a.DeleteOnTermination, "boot_index": bootIndex, "device_name": a.Device,
			"disk_bus": "virtio", "device_type": "disk", "guest_format": nil, "volume_id": nil, "image_id": nil, "no_device": nil,
			"tag": nil, "volume_type": nil})
	}
	bdm, err := json.Marshal(mapping)
	if err != nil {
		undo()
		return err
	}
	p := principal(r)
	// Glance's properties are strings: Nova's image API writes the
	// mapping as JSON and the flag as Python's True.
	props := map[string]string{"image_type": "snapshot", "instance_uuid": sv.ID, "user_id": p.UserID,
		"block_device_mapping": string(bdm), "bdm_v2": "True", "root_device_name": "/dev/vda"}
	for k, v := range meta {
		props[k] = v
	}
	imageID, err := s.cfg.Snapshots.CreateSnapshot(r.Context(), p, SnapshotImage{Name: name, Project: sv.Project, Properties: props, Mapping: true})
	if err != nil {
		undo()
		return err
	}
	s.imageAccepted(w, r, imageID, true)
	return nil
}

// attachmentOf is volume v's attachment to server.
func attachmentOf(v *volstate.Volume, server string) volstate.Attachment {
	for _, a := range v.Attachments {
		if a.ServerID == server {
			return a
		}
	}
	return volstate.Attachment{}
}

// imageMappings reads the block device mappings of the image a request
// boots from, as Nova does: an image createImage made of a volume-backed
// server maps its volumes' snapshots (bdm_v2 and block_device_mapping),
// and the server boots from a new volume made from the root one, with
// the others made into data volumes, as if the request had mapped them
// (the request's own boot volume, had it one, would win: this is not
// called then). Another project's snapshots are refused as in a
// request's mapping. An image that cannot be read is left to
// resolveImage to report.
func (s *Service) imageMappings(ctx context.Context, p *api.Principal, req *serverRequest) error {
	ref := refID(req.imageRef)
	if s.cfg.Images == nil || !uuidPattern.MatchString(ref) {
		return nil
	}
	img, err := s.cfg.Images.Get(ctx, p, ref)
	if err != nil || !strings.EqualFold(img.Status, "active") {
		return nil
	}
	raw := img.Properties["block_device_mapping"]
	if raw == "" || !strings.EqualFold(img.Properties["bdm_v2"], "true") {
		return nil
	}
	var entries []map[string]any
	if err := json.Unmarshal([]byte(raw), &entries); err != nil {
		return badRequest("Block Device Mapping is Invalid: image %s's block_device_mapping is not a list of mappings: %v", ref, err)
	}
	in := newInput(api.Object{})
	seen := map[string]bool{}
	for _, e := range entries {
		if nd, _ := e["no_device"].(bool); nd {
			continue
		}
		m := api.Object{}
		for k, v := range e {
			m[k] = v
		}
		if src, _ := m["source_type"].(string); src == "snapshot" || src == "volume" || src == "image" {
			m["uuid"] = m[src+"_id"]
		}
		readBlockDevice(in, req, m, true, seen)
		if in.Err != nil {
			return badRequest("Block Device Mapping of image %s is Invalid: %s", ref, in.Err.Error())
		}
	}
	return nil
}
