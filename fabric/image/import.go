package image

import (
	"net/http"
	"strings"

	"github.com/rackstack/rackstack/fabric/api"
)

// Glance's interoperable image import, glance-direct method: PUT
// /v2/images/{id}/stage stores the data (the image is uploading), then
// POST /v2/images/{id}/import makes the staged data the image's (active).
// It is what `openstack image create --import` does. The staged data was
// checked and hashed as it was stored, so the import has nothing left to
// convert or copy: it is one command.
//
// web-download (the cloud fetching a URL), glance-download and copy-image
// (multiple stores) are not offered: /v2/info/import lists glance-direct
// only, and the import refuses the others by name, as Glance refuses a
// method it has not enabled.

// importMethods are the import methods served, as /v2/info/import and
// the OpenStack-image-import-methods header list them.
var importMethods = []string{"glance-direct"}

func (s *Service) importInfo(w http.ResponseWriter, r *http.Request) error {
	api.JSON(w, http.StatusOK, map[string]any{"import-methods": map[string]any{
		"description": "Import methods available.", "type": "array", "value": importMethods,
	}})
	return nil
}

// importImage is POST /v2/images/{id}/import.
func (s *Service) importImage(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Method *struct {
			Name string `json:"name"`
		} `json:"method"`
		Stores    []string `json:"stores"`
		AllStores *bool    `json:"all_stores"`
		// all_stores_must_succeed means nothing with one store.
		AllStoresMustSucceed *bool `json:"all_stores_must_succeed"`
	}
	if err := api.DecodeLoose(r, &body); err != nil {
		return err
	}
	switch {
	case body.Method == nil || body.Method.Name == "":
		return badRequest("Import request requires a 'method' field.")
	case body.Method.Name != "glance-direct":
		return badRequest("Import method name '%s' is not valid: this cloud offers %s.", body.Method.Name, strings.Join(importMethods, ", "))
	case len(body.Stores) > 0 || (body.AllStores != nil && *body.AllStores):
		return badRequest("Multi backend is not supported at this site: an image has one store here.")
	}
	if _, err := s.change(r, "import_image", func(img *Image) error {
		switch {
		case img.Status == StatusUploading && img.UploadID != "":
			return conflict("The image's data is still being staged: import it once the stage request has finished.")
		case img.Status != StatusUploading || img.StagedObject == "":
			return conflict("Image needs to be staged before 'glance-direct' method can be used (its status is %s).", img.Status)
		}
		img.Object, img.StagedObject, img.Status = img.StagedObject, "", StatusActive
		return nil
	}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}
