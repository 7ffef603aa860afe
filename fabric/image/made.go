package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/image/imagestate"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/storage/object"
)

// Images another service makes (the volume service uploading a volume):
// created as POST /v2/images creates them, with the same checks of each
// attribute, and given their data as PUT /v2/images/{id}/file gives it,
// with the same upload bookkeeping (an upload that dies with its process
// is given back to queued).

// NewImage is what another service asks an image to be.
type NewImage struct {
	Name, DiskFormat, ContainerFormat, Visibility string
	Protected                                     bool
	// Hidden is Glance's os_hidden: not in the default image list.
	Hidden bool
	// MinDisk (GB) and MinRAM (MB) are what booting it needs.
	MinDisk, MinRAM int
	// Properties are extra properties; names Glance reserves are refused.
	Properties map[string]string
}

// Create makes a queued image owned by p's project.
func (s *Service) Create(ctx context.Context, p *api.Principal, n NewImage) (*Image, error) {
	body := api.Object{"name": n.Name, "disk_format": n.DiskFormat, "container_format": n.ContainerFormat, "protected": n.Protected}
	if n.Hidden {
		body["os_hidden"] = true
	}
	if n.Visibility != "" {
		body["visibility"] = n.Visibility
	}
	if n.MinDisk > 0 {
		body["min_disk"] = float64(n.MinDisk)
	}
	if n.MinRAM > 0 {
		body["min_ram"] = float64(n.MinRAM)
	}
	for k, v := range n.Properties {
		if _, base := body[k]; !base && !isBase(k) {
			body[k] = v
		}
	}
	return s.createFrom(ctx, p, body)
}

// createFrom makes a queued image owned by p's project from the
// attributes of a POST /v2/images body.
func (s *Service) createFrom(ctx context.Context, p *api.Principal, body api.Object) (*Image, error) {
	now := s.now()
	img := &Image{ID: api.NewUUID(), Owner: p.ProjectID, Status: StatusQueued, Visibility: VisibilityShared, CreatedAt: now, UpdatedAt: now}
	for _, k := range settingOrder(body) {
		if err := setAttr(p, img, k, body[k], true); err != nil {
			return nil, err
		}
	}
	if !p.CanWrite(img.Owner) {
		return nil, policyDenied("add_image")
	}
	res, err := s.cfg.Repl.Propose(ctx, imagestate.CmdCreate, imagestate.CreateCmd{Row: *img})
	if err != nil {
		return nil, err
	}
	return img, res.Decode(img)
}

// Upload stores r, size bytes (-1: unknown), as the data of queued image
// id, which becomes active.
func (s *Service) Upload(ctx context.Context, id string, r io.Reader, size int64) error {
	if err := s.ensureContainer(ctx); err != nil {
		return err
	}
	uploadID := api.NewHexID()
	s.live.Store(uploadID, true)
	defer s.live.Delete(uploadID)
	if _, err := s.mutate(ctx, id, func(img *Image) error {
		if img.Status != StatusQueued {
			return conflict("Image status transition from %s to saving is not allowed", img.Status)
		}
		img.Status = StatusSaving
		img.UploadID, img.UploadNode, img.UploadRun, img.UploadStarted = uploadID, s.cfg.Node, s.run, s.now()
		img.UpdatedAt = s.now()
		return nil
	}); err != nil {
		return err
	}
	d := newDigester(r, s.cfg.MaxImageSize)
	o, err := s.cfg.Objects.Put(ctx, s.cfg.Account, s.cfg.Container, dataObject(id, uploadID), d, object.PutOptions{Size: size})
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err != nil {
		s.abortUpload(bg, id, uploadID)
		return fmt.Errorf("upload image %s: %w", id, s.storeError(err, d, size))
	}
	return s.finishUpload(bg, id, uploadID, o, d, false)
}

// Discard deletes image id and its data, whatever its protection: for a
// service whose upload into an image it made failed.
func (s *Service) Discard(ctx context.Context, id string) error { return s.discard(ctx, id, false) }

// DiscardUnfinished discards image id unless it is active: for a service
// settling an upload whose process died, which may have finished.
func (s *Service) DiscardUnfinished(ctx context.Context, id string) error {
	return s.discard(ctx, id, true)
}

func (s *Service) discard(ctx context.Context, id string, keepActive bool) error {
	for attempt := 0; ; attempt++ {
		tx, err := s.cfg.Repl.Read(ctx)
		if err != nil {
			return err
		}
		img, err := Load(tx, id)
		if err != nil {
			return err
		}
		if keepActive && img.Status == imagestate.StatusActive {
			return nil
		}
		if img.Protected {
			// The state refuses to delete a protected image: the
			// protection the upload asked for goes first.
			if _, err := s.mutate(ctx, id, func(img *Image) error { img.Protected = false; return nil }); err != nil {
				return err
			}
			continue
		}
		res, err := s.cfg.Repl.Propose(ctx, imagestate.CmdDelete, imagestate.DeleteCmd{ID: id, Revision: img.Revision})
		if imagestate.IsStale(err) && attempt < 10 {
			continue
		}
		if err != nil {
			return err
		}
		var gone Image
		if err := res.Decode(&gone); err != nil {
			return err
		}
		if gone.HasData() {
			if err := s.cfg.Objects.Delete(ctx, s.cfg.Account, s.cfg.Container, gone.Object); err != nil && !errors.Is(err, store.ErrNotFound) {
				s.log.Warn("delete image data; the sweeper will retry", "image", id, "err", err)
			}
		}
		return nil
	}
}
