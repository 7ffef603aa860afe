package image

import (
	"errors"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/image/imagestate"
	"github.com/rackstack/rackstack/fabric/store"
)

// view is the image as Glance shows it: its attributes, with the extra
// properties beside them.
func view(img *Image) map[string]any {
	v := map[string]any{}
	for k, val := range img.Properties {
		v[k] = val
	}
	null := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	tags := img.Tags
	if tags == nil {
		tags = []string{}
	}
	var size, vsize any
	if img.HasData() {
		size = img.Size
		if img.VirtualSize > 0 {
			vsize = img.VirtualSize
		}
	}
	for k, val := range map[string]any{
		"id": img.ID, "name": null(img.Name), "status": img.Status, "visibility": img.Visibility,
		"protected": img.Protected, "os_hidden": img.Hidden, "owner": null(img.Owner),
		"checksum": null(img.Checksum), "os_hash_algo": null(img.HashAlgo), "os_hash_value": null(img.HashValue),
		"size": size, "virtual_size": vsize, "min_disk": img.MinDisk, "min_ram": img.MinRAM,
		"disk_format": null(img.DiskFormat), "container_format": null(img.ContainerFormat), "tags": tags,
		"created_at": timeText(img.CreatedAt), "updated_at": timeText(img.UpdatedAt),
		"self": "/v2/images/" + img.ID, "file": "/v2/images/" + img.ID + "/file", "schema": "/v2/schemas/image",
	} {
		v[k] = val
	}
	return v
}

func (s *Service) showImage(w http.ResponseWriter, r *http.Request) error {
	img, err := s.find(r.Context(), principal(r), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, view(img))
	return nil
}

func (s *Service) createImage(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	if err := api.RequireUTF8(r); err != nil {
		return err
	}
	var body api.Object
	if err := api.DecodeLoose(r, &body); err != nil {
		return err
	}
	img, err := s.createFrom(r.Context(), p, body)
	if err != nil {
		return err
	}
	w.Header().Set("Location", s.baseURL(r)+"/v2/images/"+img.ID)
	// Clients (openstacksdk) read from it whether they may import.
	w.Header().Set("OpenStack-image-import-methods", strings.Join(importMethods, ","))
	api.JSON(w, http.StatusCreated, view(img))
	return nil
}

// settingOrder is the order a new image's attributes are set in:
// read-only and reserved attributes are refused before any value is
// looked at, as Glance does; then in a stable order.
func settingOrder(body api.Object) []string {
	keys := slices.Collect(maps.Keys(body))
	sort.Slice(keys, func(i, j int) bool {
		ci, cj := checkSettable(keys[i]) != nil, checkSettable(keys[j]) != nil
		if ci != cj {
			return ci
		}
		return keys[i] < keys[j]
	})
	return keys
}

// writable checks that p may change img (which it can see): its owner's
// members and admins may.
func writable(p *api.Principal, img *Image, action string) error {
	if !p.CanWrite(img.Owner) {
		return policyDenied(action)
	}
	return nil
}

// change applies change to image id as principal p, who must see and be
// allowed to modify it, and returns the stored result.
func (s *Service) change(r *http.Request, action string, change func(img *Image) error) (*Image, error) {
	p := principal(r)
	id := chi.URLParam(r, "id")
	return s.mutate(r.Context(), id, func(img *Image) error {
		if !visible(p, img) {
			return notFound(id)
		}
		if err := writable(p, img, action); err != nil {
			return err
		}
		if err := change(img); err != nil {
			return err
		}
		img.UpdatedAt = s.now()
		return nil
	})
}

func (s *Service) deleteImage(w http.ResponseWriter, r *http.Request) error {
	gone, err := s.deleteRow(r)
	if err != nil {
		return err
	}
	// An upload still running finds its image gone and deletes what it
	// stored itself.
	for _, o := range []string{gone.Object, gone.StagedObject} {
		if o == "" {
			continue
		}
		if err := s.cfg.Objects.Delete(r.Context(), s.cfg.Account, s.cfg.Container, o); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Warn("delete image data; the sweeper will retry", "image", gone.ID, "err", err)
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// deleteRow deletes the image of a DELETE request and returns it as it
// was, retrying when it changed between the read and the delete.
func (s *Service) deleteRow(r *http.Request) (*Image, error) {
	p := principal(r)
	id := chi.URLParam(r, "id")
	for attempt := 0; ; attempt++ {
		img, err := s.find(r.Context(), p, id)
		if err != nil {
			return nil, err
		}
		if err := writable(p, img, "delete_image"); err != nil {
			return nil, err
		}
		if img.Protected {
			return nil, forbidden("Image %s is protected and cannot be deleted.", id)
		}
		res, err := s.cfg.Repl.Propose(r.Context(), imagestate.CmdDelete, imagestate.DeleteCmd{ID: id, Revision: img.Revision})
		if imagestate.IsStale(err) && attempt < 10 {
			continue
		}
		if err != nil {
			return nil, err
		}
		var gone Image
		return &gone, res.Decode(&gone)
	}
}

func (s *Service) addTag(w http.ResponseWriter, r *http.Request) error {
	tag := chi.URLParam(r, "tag")
	if len(tag) > 255 {
		return badRequest("Image tag must be at most 255 characters.")
	}
	if err := checkText("tag", tag); err != nil {
		return err
	}
	_, err := s.change(r, "modify_image", func(img *Image) error {
		if slices.Contains(img.Tags, tag) {
			return nil
		}
		if len(img.Tags) >= maxTags {
			return tooLarge("Maximum number of tags exceeded: attempted %d, maximum %d.", len(img.Tags)+1, maxTags)
		}
		img.Tags = append(img.Tags, tag)
		return nil
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) deleteTag(w http.ResponseWriter, r *http.Request) error {
	tag := chi.URLParam(r, "tag")
	_, err := s.change(r, "modify_image", func(img *Image) error {
		i := slices.Index(img.Tags, tag)
		if i < 0 {
			return store.NotFoundf("Tag %s not found on image %s.", tag, img.ID)
		}
		img.Tags = slices.Delete(img.Tags, i, i+1)
		return nil
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// setActive deactivates (active false) or reactivates an image.
func (s *Service) setActive(active bool) api.HandlerFunc {
	action, from, to := "deactivate", StatusActive, StatusDeactivated
	if active {
		action, from, to = "reactivate", StatusDeactivated, StatusActive
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		_, err := s.change(r, action, func(img *Image) error {
			switch img.Status {
			case to:
				return errSkip
			case from:
				img.Status = to
				return nil
			}
			return forbidden("Not allowed to %s image in status '%s'", action, img.Status)
		})
		if err != nil && !errors.Is(err, errSkip) {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}
