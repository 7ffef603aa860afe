package volume

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// A volume's image metadata (volume_image_metadata) through Cinder's
// actions: os-show_image_metadata, os-set_image_metadata (merges) and
// os-unset_image_metadata (one key). Until set, image_id is the image the
// volume was made from.

func imageMetadataView(v *volstate.Volume) map[string]string {
	md := map[string]string{}
	for k, val := range v.ImageMetadata {
		md[k] = val
	}
	if _, set := md["image_id"]; !set && v.ImageID != "" {
		md["image_id"] = v.ImageID
	}
	return md
}

func (s *Service) imageMetadataAction(w http.ResponseWriter, r *http.Request, action string, arg any) error {
	in, err := actionArg(arg, action)
	if err != nil {
		return err
	}
	var set map[string]string
	key := ""
	switch action {
	case "os-set_image_metadata":
		if !in.Has("metadata") {
			return cinderWording{}.Missing("metadata")
		}
		set = metadata(in, "metadata")
	case "os-unset_image_metadata":
		key = in.Required("key", 255)
	}
	if in.Err != nil {
		return in.Err
	}
	if action == "os-show_image_metadata" {
		v, err := s.readableVolume(r)
		if err != nil {
			return err
		}
		api.JSON(w, http.StatusOK, map[string]any{"metadata": imageMetadataView(v)})
		return nil
	}
	v, err := s.ownVolume(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	row, err := s.changeVolume(r.Context(), v.ID, func(v *volstate.Volume) error {
		if key != "" {
			if _, ok := v.ImageMetadata[key]; !ok {
				return store.Fault(store.KindNotFound, "itemNotFound", "The image metadata with key %s was not found.", key)
			}
			delete(v.ImageMetadata, key)
			return nil
		}
		if v.ImageMetadata == nil {
			v.ImageMetadata = map[string]string{}
		}
		for k, val := range set {
			v.ImageMetadata[k] = val
		}
		return nil
	})
	if err != nil {
		return err
	}
	if key != "" {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	api.JSON(w, http.StatusOK, map[string]any{"metadata": imageMetadataView(row)})
	return nil
}
