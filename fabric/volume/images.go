package volume

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Volumes made from images: the image's disk is written into a new thin
// volume in the background (Data.ImageToVolume), the volume is bootable
// and keeps the image's attributes as volume_image_metadata.

// sourceImage is the image a create names, if the caller may see it, it
// is active and it fits the size asked for (nil: the image's size).
func (s *Service) sourceImage(r *http.Request, id string, size *int) (*ImageInfo, error) {
	if s.cfg.Images == nil || s.cfg.Data == nil {
		return nil, &api.Error{Status: http.StatusNotImplemented, Msg: "creating a volume from an image is not supported by this cloud"}
	}
	img, err := s.cfg.Images.Get(r.Context(), principal(r), id)
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
