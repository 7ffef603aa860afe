package volume

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// Uploading a volume to the image service (os-volume_upload_image): a
// queued image is made in the caller's project, the volume goes
// uploading, and in the background a point-in-time snapshot of it (so an
// attached volume's guest may go on writing) is copied into the image,
// which becomes active; the volume goes back to available or in-use. A
// failed copy deletes the image, as Cinder does, and the volume goes back
// all the same: its data was only read.

// ImageUploads makes images of volumes.
type ImageUploads interface {
	// CreateImage makes a queued image in p's project and answers its id.
	CreateImage(ctx context.Context, p *api.Principal, img NewImage) (string, error)
	// VolumeToImage writes the disk of from (a volume or a snapshot) into
	// image as diskFormat; the image becomes active.
	VolumeToImage(ctx context.Context, from, image, diskFormat string) error
	// DeleteImage deletes an image whose data was not written.
	DeleteImage(ctx context.Context, image string) error
	// DeleteUnfinishedImage deletes an image unless it is active: what
	// an upload whose process died left, which may have finished.
	DeleteUnfinishedImage(ctx context.Context, image string) error
}

// NewImage is the image an upload makes.
type NewImage struct {
	Name, DiskFormat, ContainerFormat, Visibility string
	Protected                                     bool
	// Properties are the volume's image metadata, less what describes
	// the image it came from.
	Properties map[string]string
}

// uploadFormats are the disk formats a volume is written as.
var uploadFormats = []string{"raw", "qcow2"}

// notCopied are the volume_image_metadata keys that describe the source
// image, not the new one (Cinder's glance_core_properties, and its
// non-copyable ones).
var notCopied = map[string]bool{"image_id": true, "image_name": true, "checksum": true, "size": true, "disk_format": true,
	"container_format": true, "min_disk": true, "min_ram": true, "name": true, "id": true, "status": true,
	"os_hash_algo": true, "os_hash_value": true, "signature_verified": true}

// uploadSnapshot names the snapshot an upload of volume reads: one per
// volume (a volume uploads one image at a time), so that what a dead
// process left is found and deleted.
func uploadSnapshot(volume string) string { return "upload-" + volume }

func (s *Service) uploadImage(w http.ResponseWriter, r *http.Request, arg any) error {
	if s.cfg.Uploads == nil {
		return &api.Error{Status: http.StatusNotImplemented, Msg: "uploading volumes to images is not supported by this cloud"}
	}
	in, err := actionArg(arg, "os-volume_upload_image")
	if err != nil {
		return err
	}
	img := NewImage{Visibility: "private"}
	img.Name = in.Str("image_name", "", 255)
	img.DiskFormat = in.Str("disk_format", "raw", 255)
	img.ContainerFormat = in.Str("container_format", "bare", 255)
	force := in.Bool("force", false)
	if atLeast(r, 1) {
		img.Visibility = in.Str("visibility", "private", 255)
		img.Protected = in.Bool("protected", false)
	}
	switch {
	case in.Err != nil:
		return in.Err
	case img.Name == "":
		return cinderWording{}.Missing("image_name")
	case !slices.Contains(uploadFormats, img.DiskFormat):
		return cinderWording{}.BadField("disk_format", img.DiskFormat, "a volume is uploaded as raw or qcow2")
	case img.ContainerFormat != "bare":
		return cinderWording{}.BadField("container_format", img.ContainerFormat, "a volume is uploaded in container format bare")
	case !slices.Contains([]string{"private", "shared", "public", "community"}, img.Visibility):
		return cinderWording{}.BadField("visibility", img.Visibility, "must be one of private, shared, public, community")
	}
	v, err := s.ownVolume(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	if err := uploadable(v, force); err != nil {
		return err
	}
	if v.Key != "" {
		// Cinder uploads the ciphertext and gives the image a copy of
		// the key in Barbican; there is no key manager here to give it.
		return badRequest("Invalid volume: volume %s is encrypted; uploading an encrypted volume to an image is not supported (its key would have to go with the image).", v.ID)
	}
	img.Properties = map[string]string{}
	for k, val := range v.ImageMetadata {
		if !notCopied[k] {
			img.Properties[k] = val
		}
	}
	p := principal(r)
	imageID, err := s.cfg.Uploads.CreateImage(r.Context(), p, img)
	if err != nil {
		return err
	}
	release := s.carry(v.ID)
	row, err := s.changeVolume(r.Context(), v.ID, func(v *volstate.Volume) error {
		if err := uploadable(v, force); err != nil {
			return err
		}
		v.Status, v.Reason, v.UploadImage = volstate.StatusUploading, "", imageID
		s.worked(v)
		return nil
	})
	if err != nil {
		release()
		if api.Rejected(err) {
			s.discardImage(context.WithoutCancel(r.Context()), imageID)
		}
		return err
	}
	s.background(func(ctx context.Context) {
		defer release()
		s.upload(ctx, row.ID, imageID, img.DiskFormat)
	})

	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	var typ any
	if t, err := volstate.LoadType(tx, row.TypeID); err == nil {
		typ = typeView(t)
	}
	answer := map[string]any{"id": row.ID, "updated_at": timeText(row.UpdatedAt), "status": row.Status,
		"display_description": nullable(row.Description), "size": row.Size, "volume_type": typ, "image_id": imageID,
		"container_format": img.ContainerFormat, "disk_format": img.DiskFormat, "image_name": img.Name}
	if atLeast(r, 1) {
		answer["visibility"], answer["protected"] = img.Visibility, img.Protected
	}
	api.JSON(w, http.StatusAccepted, map[string]any{"os-volume_upload_image": answer})
	return nil
}

// uploadable refuses a volume that cannot be uploaded now: it must be
// available, or in-use when force is set.
func uploadable(v *volstate.Volume, force bool) error {
	switch {
	case v.Status == volstate.StatusAvailable:
		return nil
	case v.Status == volstate.StatusInUse && force:
		return nil
	case v.Status == volstate.StatusInUse:
		return badRequest("Invalid volume: Volume %s is in-use: uploading an attached volume needs force.", v.ID)
	}
	return badRequest("Invalid volume: Volume %s status must be available or in-use, but current status is: %s.", v.ID, v.Status)
}

// upload copies volume into image and gives the volume its status back.
func (s *Service) upload(ctx context.Context, volume, image, diskFormat string) {
	snap := uploadSnapshot(volume)
	err := s.snapshotBlocks(ctx, snap, volume)
	if err == nil {
		err = s.cfg.Uploads.VolumeToImage(ctx, snap, image, diskFormat)
		if derr := s.cfg.Blocks.Delete(context.WithoutCancel(ctx), snap); derr != nil {
			s.log.Warn("volume: delete an upload's snapshot; the next settle retries", "snapshot", snap, "err", derr)
		}
	}
	if err != nil {
		s.log.Warn("volume: upload to image failed", "volume", volume, "image", image, "err", err)
		s.discardImage(context.WithoutCancel(ctx), image)
	} else {
		s.log.Info("volume uploaded to image", "volume", volume, "image", image, "disk_format", diskFormat)
	}
	if _, err := s.changeVolume(context.WithoutCancel(ctx), volume, endUpload); err != nil && !errors.Is(err, errSettled) {
		s.log.Warn("volume: end upload", "volume", volume, "err", err)
	}
}

// endUpload gives an uploading volume its status back: its data was
// only read, so whether the copy worked or not it is as it was.
func endUpload(v *volstate.Volume) error {
	if v.Status != volstate.StatusUploading {
		return errSettled
	}
	v.Status, v.WorkNode, v.WorkRun, v.UploadImage = volstate.StatusAvailable, "", "", ""
	if len(v.Attachments) > 0 {
		v.Status = volstate.StatusInUse
	}
	return nil
}

func (s *Service) discardImage(ctx context.Context, image string) {
	if err := s.cfg.Uploads.DeleteImage(ctx, image); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Warn("volume: delete the image of a failed upload", "image", image, "err", err)
	}
}
