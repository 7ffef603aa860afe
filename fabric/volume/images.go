package volume

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// Volumes made from images: the image's disk is written into a new thin
// volume in the background (Data.ImageToVolume), the volume is bootable
// and keeps the image's attributes as volume_image_metadata.

// sourceImage is the image a create names, if the caller may see it, it
// is active and it fits the size asked for (nil: the image's size).
func (s *Service) sourceImage(ctx context.Context, p *api.Principal, id string, size *int) (*ImageInfo, error) {
	if s.cfg.Images == nil || s.cfg.Data == nil {
		return nil, &api.Error{Status: http.StatusNotImplemented, Msg: "creating a volume from an image is not supported by this cloud"}
	}
	img, err := s.cfg.Images.Get(ctx, p, id)
	switch {
	case errors.Is(err, store.ErrNotFound) || api.StatusOf(err) == http.StatusNotFound:
		return nil, notFound("Image", id)
	case err != nil:
		return nil, err
	case !strings.EqualFold(img.Status, "active"):
		return nil, badRequest("Invalid image identifier or unable to access requested image: image %s is %s, not active.", id, img.Status)
	case img.DiskFormat != "raw" && img.DiskFormat != "qcow2":
		return nil, badRequest("Invalid image %s: disk format %q cannot be written to a volume (raw or qcow2).", id, img.DiskFormat)
	}
	if size == nil {
		return &img, nil
	}
	if need := imageGiB(&img); *size < need {
		if img.MinDisk > 0 && *size < img.MinDisk {
			return nil, badRequest("Invalid input received: Volume size %dGB cannot be smaller than the image minDisk size %dGB.", *size, img.MinDisk)
		}
		return nil, badRequest("Invalid input received: Size of specified image %dGB is larger than volume size %dGB.", need, *size)
	}
	return &img, nil
}

// imageGiB is the smallest volume an image fits: its disk's size rounded
// up to GiB, and its min_disk.
func imageGiB(img *ImageInfo) int {
	n := img.VirtualSize
	if n == 0 {
		n = img.Size
	}
	return max(int((n+(1<<30)-1)>>30), img.MinDisk, 1)
}

// imageMetadata is Cinder's volume_image_metadata: the image's
// attributes and its properties.
func imageMetadata(img *ImageInfo) map[string]string {
	md := map[string]string{}
	for k, v := range img.Properties {
		md[k] = v
	}
	for k, v := range map[string]string{"image_id": img.ID, "image_name": img.Name, "disk_format": img.DiskFormat,
		"container_format": img.ContainerFormat, "checksum": img.Checksum} {
		if v != "" {
			md[k] = v
		}
	}
	md["size"] = strconv.FormatInt(img.Size, 10)
	md["min_disk"] = strconv.Itoa(img.MinDisk)
	md["min_ram"] = strconv.Itoa(img.MinRAM)
	return md
}

// CreateFromImage makes a bootable volume of sizeGB in p's project
// holding image's disk, of volume type typeRef (a name or id; "" the
// project's default), and returns its id once it is available: for
// Nova's boot from a volume made from an image, and the data volumes of
// a server create, which wait for it as Nova's compute manager does. id
// is the new volume's ("" a new one): Nova's server create names the
// volumes it makes before it makes them.
func (s *Service) CreateFromImage(ctx context.Context, p *api.Principal, id, imageID string, sizeGB int, name, typeRef string) (string, error) {
	img, err := s.sourceImage(ctx, p, imageID, &sizeGB)
	if err != nil {
		return "", err
	}
	return s.createForServer(ctx, p, id, img, "", sizeGB, name, typeRef)
}

// CreateBlank makes an empty volume of sizeGB in p's project, of volume
// type typeRef ("" the project's default), and returns its id once it is
// available: a server create's blank data volume (id as CreateFromImage's).
func (s *Service) CreateBlank(ctx context.Context, p *api.Principal, id string, sizeGB int, name, typeRef string) (string, error) {
	if sizeGB < 1 || sizeGB > maxSize {
		return "", badRequest("Invalid input received: size %d is not between 1 and %d.", sizeGB, maxSize)
	}
	return s.createForServer(ctx, p, id, nil, "", sizeGB, name, typeRef)
}

// CreateFromSnapshot makes a volume in p's project from p's snapshot
// snapID, of sizeGB (0: the snapshot's size) and volume type typeRef (""
// the snapshot's volume's), as a volume create naming snapshot_id does,
// and returns its id once it is available: Nova's boot from, or data
// volume made from, a volume snapshot (source_type snapshot); id as
// CreateFromImage's.
func (s *Service) CreateFromSnapshot(ctx context.Context, p *api.Principal, id, snapID string, sizeGB int, name, typeRef string) (string, error) {
	if sizeGB < 0 || sizeGB > maxSize {
		return "", badRequest("Invalid input received: size %d is not between 1 and %d.", sizeGB, maxSize)
	}
	if snapID == "" {
		return "", notFound("Snapshot", snapID)
	}
	return s.createForServer(ctx, p, id, nil, snapID, sizeGB, name, typeRef)
}

// createForServer makes the volume of Nova's server create: empty,
// holding img's disk, or a copy of snapshot snapID, of id ("" a new one).
func (s *Service) createForServer(ctx context.Context, p *api.Principal, id string, img *ImageInfo, snapID string, sizeGB int, name, typeRef string) (string, error) {
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return "", err
	}
	now := s.now()
	if id == "" {
		id = api.NewUUID()
	}
	v := volstate.Volume{ID: id, Name: name, Project: p.ProjectID, User: p.UserID, Size: sizeGB, Status: volstate.StatusCreating,
		CreatedAt: now, UpdatedAt: now}
	named := typeRef
	// from is the snapshot copied, srcKey its sealed key if encrypted.
	from, srcKey := "", ""
	if snapID != "" {
		snap := store.Get[volstate.Snapshot](tx, volstate.SnapshotTable, snapID)
		if snap == nil || snap.Project != p.ProjectID {
			return "", notFound("Snapshot", snapID)
		}
		var size *int
		if sizeGB > 0 {
			size = &sizeGB
		}
		typeRef = fromSnapshot(tx, snap, &v, &size, typeRef)
		v.Size, from, srcKey = *size, snap.ID, snap.Key
	}
	t, err := resolveTypeFor(tx, p.ProjectID, typeRef)
	if err != nil {
		return "", err
	}
	if named != "" && !t.Usable(p.ProjectID) && !p.IsAdmin() {
		return "", notFound("Volume type", named)
	}
	if why := unschedulable(t); why != "" {
		return "", badRequest("Invalid volume type %s: %s", t.Name, why)
	}
	policy, err := policyOf(t)
	if err != nil {
		return "", err
	}
	v.TypeID = t.ID
	if img != nil {
		v.ImageID, v.Bootable, v.ImageMetadata = img.ID, true, imageMetadata(img)
	}
	// Of an encrypted type, an image is written through the new key's
	// LUKS layer; a copy of an encrypted snapshot keeps its key.
	if err := s.volumeKey(&v, t, from, srcKey); err != nil {
		return "", err
	}
	s.worked(&v)
	defer s.carry(v.ID)()
	if _, err := api.Propose(ctx, s.cfg.Repl, volstate.CmdCreateVolume, volstate.CreateVolumeCmd{Row: v}, nil); err != nil {
		return "", err
	}
	dataErr := s.makeBlocks(ctx, &v, from, policy)
	what := "create the volume's blocks"
	if dataErr == nil && img != nil {
		dataErr, what = s.cfg.Data.ImageToVolume(ctx, img.ID, v.ID), "copy image "+img.ID+" into the volume"
	}
	if _, err := s.finish(ctx, v.ID, volstate.StatusAvailable, volstate.StatusError, what, dataErr); err != nil {
		switch {
		case img != nil:
			return "", fmt.Errorf("make a volume from image %s: %w", img.ID, err)
		case from != "":
			return "", fmt.Errorf("make a volume from snapshot %s: %w", from, err)
		}
		return "", fmt.Errorf("make a blank volume: %w", err)
	}
	return v.ID, nil
}

// DeleteVolume deletes a volume of p's project that is not in use: for
// Nova, to give back a boot volume it made for a server that was not
// created.
func (s *Service) DeleteVolume(ctx context.Context, p *api.Principal, id string) error {
	defer s.carry(id)()
	v, err := s.changeVolume(ctx, id, func(v *volstate.Volume) error {
		if v.Project != p.ProjectID || !deletable[v.Status] || len(v.Attachments) > 0 {
			return badRequest("Invalid volume: volume %s cannot be deleted now (it is %s).", v.ID, v.Status)
		}
		v.Status, v.Reason = volstate.StatusDeleting, ""
		s.worked(v)
		return nil
	})
	if err != nil {
		return err
	}
	if err := s.cfg.Blocks.Delete(ctx, id); err != nil {
		_, ferr := s.finish(ctx, id, volstate.StatusDeleting, volstate.StatusErrorDeleting, "delete the volume's blocks", err)
		return ferr
	}
	_, err = api.Propose(ctx, s.cfg.Repl, volstate.CmdDeleteVolume, volstate.DeleteVolumeCmd{ID: v.ID, Revision: v.Revision}, nil)
	return err
}

// imageSnapshot is the snapshot a Nova image stands for (3.46): Nova's
// snapshot of a server booted from a volume is an image without data
// whose block_device_mapping property names a snapshot of the boot
// volume (boot_index 0, source_type snapshot); a volume made from that
// image is made from the snapshot, as Cinder does. "" when the image is
// an ordinary one.
func (s *Service) imageSnapshot(ctx context.Context, p *api.Principal, id string) (string, error) {
	if s.cfg.Images == nil {
		return "", nil
	}
	img, err := s.cfg.Images.Get(ctx, p, id)
	switch {
	case errors.Is(err, store.ErrNotFound) || api.StatusOf(err) == http.StatusNotFound:
		return "", notFound("Image", id)
	case err != nil:
		return "", err
	case img.Size != 0 || img.Properties["block_device_mapping"] == "":
		return "", nil
	}
	var bdms []map[string]any
	if err := json.Unmarshal([]byte(img.Properties["block_device_mapping"]), &bdms); err != nil {
		return "", badRequest("Invalid image %s: its block_device_mapping property is not a list of mappings: %v", id, err)
	}
	for _, m := range bdms {
		boot, _ := api.ToInt(m["boot_index"])
		snap, _ := m["snapshot_id"].(string)
		if m["source_type"] == "snapshot" && boot == 0 && m["boot_index"] != nil && snap != "" {
			return snap, nil
		}
	}
	return "", nil
}
