package image

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/image/imagestate"
)

// Glance's interoperable image import. glance-direct: PUT
// /v2/images/{id}/stage stores the data (the image is uploading), then
// POST /v2/images/{id}/import makes the staged data the image's (active).
// It is what `openstack image create --import` does. The staged data was
// checked and hashed as it was stored, so the import has nothing left to
// convert or copy: it is one command, which also records its task (a
// success at once). web-download (webdownload.go): the import answers
// 202 with the image importing, and the cloud fetches the URL in the
// background, its task processing until it ends.
//
// glance-download and copy-image (multiple stores) are not offered:
// /v2/info/import does not list them, and the import refuses them by
// name, as Glance refuses a method it has not enabled.

// importMethods are the import methods served, as /v2/info/import and
// the OpenStack-image-import-methods header list them.
var importMethods = []string{"glance-direct", "web-download"}

func (s *Service) importInfo(w http.ResponseWriter, r *http.Request) error {
	api.JSON(w, http.StatusOK, map[string]any{"import-methods": map[string]any{
		"description": "Import methods available.", "type": "array", "value": importMethods,
	}})
	return nil
}

// importImage is POST /v2/images/{id}/import.
func (s *Service) importImage(w http.ResponseWriter, r *http.Request) error {
	req, err := api.ReadObject(r)
	if err != nil {
		return err
	}
	var body struct {
		Method *struct {
			Name string `json:"name"`
			URI  string `json:"uri"`
		} `json:"method"`
		Stores    []string `json:"stores"`
		AllStores *bool    `json:"all_stores"`
		// all_stores_must_succeed means nothing with one store.
		AllStoresMustSucceed *bool `json:"all_stores_must_succeed"`
	}
	if err := remarshal(req, &body); err != nil {
		return badRequest("Malformed import request: %v", err)
	}
	switch {
	case body.Method == nil || body.Method.Name == "":
		return badRequest("Import request requires a 'method' field.")
	case body.Method.Name != "glance-direct" && body.Method.Name != "web-download":
		return badRequest("Import method name '%s' is not valid: this cloud offers %s.", body.Method.Name, strings.Join(importMethods, ", "))
	case len(body.Stores) > 0:
		// all_stores is the one store here (tempest sends it by default,
		// and Glance with one store takes it); naming stores is not.
		return badRequest("Multi backend is not supported at this site: an image has one store here.")
	}
	id := chi.URLParam(r, "id")
	task := s.newImportTask(r, id, req)
	p := principal(r)
	// mayImport is what every import checks of the image first.
	mayImport := func(img *Image) error {
		if img == nil || !visible(p, img) {
			return notFound(id)
		}
		return writable(p, img, "import_image")
	}
	if body.Method.Name == "web-download" {
		return s.importWeb(w, r, task, mayImport, body.Method.URI)
	}
	if _, err := s.taskChange(r.Context(), task, true, id, func(img *Image, t *Task) error {
		if err := mayImport(img); err != nil {
			return err
		}
		switch {
		case img.Status == StatusUploading && img.UploadID != "":
			return conflict("The image's data is still being staged: import it once the stage request has finished.")
		case img.Status != StatusUploading || img.StagedObject == "":
			return conflict("Image needs to be staged before 'glance-direct' method can be used (its status is %s).", img.Status)
		}
		img.Object, img.StagedObject, img.Status = img.StagedObject, "", StatusActive
		t.Owner = img.Owner
		s.endTask(t, imagestate.TaskSuccess, "")
		return nil
	}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// importWeb starts a web-download import: the URL passes the operator's
// filter, the image is queued with its formats set; it becomes
// importing, running an upload as this node (so that a restart gives it
// back), with its task processing, in one command; the fetch runs after
// the answer.
func (s *Service) importWeb(w http.ResponseWriter, r *http.Request, task Task, mayImport func(*Image) error, uri string) error {
	if uri == "" {
		return badRequest("URI is required for web-download import method. Please specify it and try again.")
	}
	if err := s.checkImportURI(uri); err != nil {
		return err
	}
	if _, err := s.startWebDownload(r, task, mayImport, uri); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// checkImportURI refuses a URI the import filter does not pass (400).
func (s *Service) checkImportURI(uri string) error {
	parsed, err := url.Parse(uri)
	if err != nil {
		return badRequest("URI for web-download is not a URL: %v", err)
	}
	if err := s.importFilter.Check(parsed); err != nil {
		return badRequest("URI for web-download does not pass filtering: %s (%v)", parsed.Redacted(), err)
	}
	return nil
}

// startWebDownload starts task, the fetch of uri into its image, and
// returns the task as written.
func (s *Service) startWebDownload(r *http.Request, task Task, mayImport func(*Image) error, uri string) (Task, error) {
	upload := api.NewHexID()
	task.Upload = upload
	// Marked live before it can be seen, so the sweep of imports no
	// fetch runs for never takes this one.
	s.live.Store(upload, true)
	var owner string
	_, err := s.taskChange(r.Context(), task, true, task.ImageID, func(img *Image, t *Task) error {
		if err := mayImport(img); err != nil {
			return err
		}
		if img.Status != StatusQueued {
			return conflict("Image needs to be in queued state to use 'web-download' method (its status is %s).", img.Status)
		}
		if img.DiskFormat == "" || img.ContainerFormat == "" {
			return badRequest("Properties disk_format, container_format must be set prior to importing data.")
		}
		img.Status = imagestate.StatusImporting
		img.UploadID, img.UploadNode, img.UploadRun, img.UploadStarted = upload, s.cfg.Node, s.run, s.now()
		t.Owner, t.Status = img.Owner, imagestate.TaskProcessing
		owner = img.Owner
		return nil
	})
	if err != nil {
		// Unknown outcome included: the import may have started, its
		// upload marked as this node's; nothing fetches for it, so the
		// maintenance loop gives it back, failing its task.
		s.live.Delete(upload)
		return task, err
	}
	task.Owner, task.Status = owner, imagestate.TaskProcessing
	go s.webDownload(task, uri)
	return task, nil
}

func remarshal(in, out any) error {
	raw, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, out)
}
