package compute

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
)

// Nova's deprecated image proxy: /images (list, detail, show, delete) up
// to microversion 2.35 and /images/{id}/metadata up to 2.38 (later both
// are 404, as in Nova). Like the volume proxy it keeps nothing: each
// request is passed on to the image service's Glance v2 API
// (Config.ImageAPI, in process) with the caller's own token, and the
// answer is shown in Nova's older words. Who may see, change or delete an
// image is the image service's.

const (
	maxImageProxyMinor = 35 // Nova's MAX_PROXY_API_SUPPORT_VERSION
	maxImageMetaMinor  = 38 // MAX_IMAGE_META_PROXY_API_VERSION
)

// glanceBase are the attributes of a Glance v2 image that are not its
// extra properties; the rest are the proxy's metadata.
var glanceBase = map[string]bool{
	"id": true, "name": true, "status": true, "visibility": true, "protected": true, "os_hidden": true,
	"owner": true, "checksum": true, "os_hash_algo": true, "os_hash_value": true, "size": true,
	"virtual_size": true, "min_disk": true, "min_ram": true, "disk_format": true, "container_format": true,
	"tags": true, "created_at": true, "updated_at": true, "self": true, "file": true, "schema": true,
	"direct_url": true, "locations": true, "stores": true,
}

// imageStatus and imageProgress are Nova's maps of Glance's statuses.
var (
	imageStatus   = map[string]string{"active": "ACTIVE", "queued": "SAVING", "saving": "SAVING", "deleted": "DELETED", "pending_delete": "DELETED", "killed": "ERROR"}
	imageProgress = map[string]int{"queued": 25, "saving": 50, "active": 100}
)

// imageProxyAllowed refuses a request past the proxy's last microversion
// (404, as Nova) and one without an image service (501).
func (s *Service) imageProxyAllowed(r *http.Request, last int) error {
	if atLeast(r, last+1) {
		return unknownResource()
	}
	if s.cfg.ImageAPI == nil {
		return notImplemented("The image proxy (/images) needs the image service, which this cloud does not run.")
	}
	return nil
}

// glance passes one request on to the image service, as the caller, and
// decodes its JSON answer; an error answer comes back as Nova's error
// with Glance's message.
func (s *Service) glance(r *http.Request, method, path string, body any) (map[string]any, error) {
	status, out, err := inProcess(r, s.cfg.ImageAPI, "image", method, path, body,
		map[string]string{"Content-Type": "application/openstack-images-v2.1-json-patch"})
	if err != nil {
		return nil, err
	}
	if status >= 400 {
		msg, _ := out["message"].(string)
		if status == http.StatusNotFound {
			return nil, notFound("Image not found.")
		}
		return nil, proxyError(status, map[string]any{"glance": map[string]any{"message": msg}})
	}
	return out, nil
}

// glanceImage reads one image through the image service.
func (s *Service) glanceImage(r *http.Request) (map[string]any, error) {
	return s.glance(r, http.MethodGet, "/v2/images/"+url.PathEscape(chi.URLParam(r, "id")), nil)
}

// imageMetadata is an image's extra properties, as Nova shows them.
func imageMetadata(img map[string]any) map[string]any {
	md := map[string]any{}
	for k, v := range img {
		if !glanceBase[k] {
			md[k] = v
		}
	}
	return md
}

func (s *Service) imageLinks(r *http.Request, id string) []any {
	return []any{link("self", s.apiURL(r)+"/images/"+id), link("bookmark", s.baseURL(r)+"/images/"+id)}
}

// imageView is Nova's view of a Glance image: the short one (id, name,
// links) or the detailed one.
func (s *Service) imageView(r *http.Request, img map[string]any, detail bool) map[string]any {
	id, _ := img["id"].(string)
	v := map[string]any{"id": id, "name": img["name"], "links": s.imageLinks(r, id)}
	if !detail {
		return v
	}
	st, _ := img["status"].(string)
	status, ok := imageStatus[st]
	if !ok {
		status = "UNKNOWN"
	}
	md := imageMetadata(img)
	v["status"], v["progress"], v["metadata"] = status, imageProgress[st], md
	v["minRam"], v["minDisk"] = num(img["min_ram"]), num(img["min_disk"])
	v["created"], v["updated"] = img["created_at"], img["updated_at"]
	v["OS-EXT-IMG-SIZE:size"] = img["size"]
	if uuid, ok := md["instance_uuid"].(string); ok && uuid != "" {
		v["server"] = map[string]any{"id": uuid, "links": []any{
			link("self", s.apiURL(r)+"/servers/"+uuid), link("bookmark", s.baseURL(r)+"/servers/"+uuid)}}
	}
	return v
}

// num is a JSON number as an int (0 when absent).
func num(v any) int {
	f, _ := v.(float64)
	return int(f)
}

// imageFilters maps Nova's image filters to Glance's: server and type are
// the properties Nova sets on snapshots, changes-since Glance's
// updated_at, status in Glance's lower case. minRam and minDisk are lower
// bounds, which Glance's equality filters cannot say: the proxy applies
// them to what Glance lists.
func imageFilters(q url.Values) (url.Values, func(map[string]any) bool, error) {
	out := url.Values{}
	minRAM, minDisk := 0, 0
	for k, vs := range q {
		v := vs[len(vs)-1]
		switch {
		case k == "name":
			out.Set("name", v)
		case k == "status":
			out.Set("status", strings.ToLower(v))
		case k == "changes-since":
			out.Set("updated_at", "gte:"+v)
		case k == "server":
			// A server's id or its link.
			out.Set("instance_uuid", v[strings.LastIndex(v, "/")+1:])
		case k == "type":
			out.Set("image_type", v)
		case strings.HasPrefix(k, "property-"):
			out.Set(strings.TrimPrefix(k, "property-"), v)
		case k == "limit", k == "marker":
			out.Set(k, v)
		case k == "minRam", k == "minDisk":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return nil, nil, badRequest("Invalid %s filter [%s]", k, v)
			}
			if k == "minRam" {
				minRAM = n
			} else {
				minDisk = n
			}
		}
	}
	keep := func(img map[string]any) bool {
		return num(img["min_ram"]) >= minRAM && num(img["min_disk"]) >= minDisk
	}
	return out, keep, nil
}

// listImages is GET /images and /images/detail.
func (s *Service) listImages(detail bool) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := s.imageProxyAllowed(r, maxImageProxyMinor); err != nil {
			return err
		}
		q, keep, err := imageFilters(r.URL.Query())
		if err != nil {
			return err
		}
		out, err := s.glance(r, http.MethodGet, "/v2/images?"+q.Encode(), nil)
		if err != nil {
			return err
		}
		list, _ := out["images"].([]any)
		views := make([]any, 0, len(list))
		last := ""
		for _, it := range list {
			img, ok := it.(map[string]any)
			if !ok {
				continue
			}
			last, _ = img["id"].(string)
			if keep(img) {
				views = append(views, s.imageView(r, img, detail))
			}
		}
		body := map[string]any{"images": views}
		if _, more := out["next"]; more && last != "" {
			next := r.URL.Query()
			next.Set("marker", last)
			path := "/images"
			if detail {
				path += "/detail"
			}
			body["images_links"] = []any{link("next", s.apiURL(r)+path+"?"+next.Encode())}
		}
		api.JSON(w, http.StatusOK, body)
		return nil
	}
}

// showImage is GET /images/{id}.
func (s *Service) showImage(w http.ResponseWriter, r *http.Request) error {
	if err := s.imageProxyAllowed(r, maxImageProxyMinor); err != nil {
		return err
	}
	img, err := s.glanceImage(r)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"image": s.imageView(r, img, true)})
	return nil
}

// deleteImage is DELETE /images/{id}.
func (s *Service) deleteImage(w http.ResponseWriter, r *http.Request) error {
	if err := s.imageProxyAllowed(r, maxImageProxyMinor); err != nil {
		return err
	}
	if _, err := s.glance(r, http.MethodDelete, "/v2/images/"+url.PathEscape(chi.URLParam(r, "id")), nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Image metadata.

// patchImage applies JSON-patch operations to the image's properties and
// returns the image as Glance then has it.
func (s *Service) patchImage(r *http.Request, ops []any) (map[string]any, error) {
	if len(ops) == 0 {
		return s.glanceImage(r)
	}
	return s.glance(r, http.MethodPatch, "/v2/images/"+url.PathEscape(chi.URLParam(r, "id")), ops)
}

// setOps are the operations that give each key of md its value: Glance's
// v2.1 add replaces a property that is there.
func setOps(md map[string]string) []any {
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	ops := make([]any, 0, len(keys))
	for _, k := range keys {
		ops = append(ops, map[string]any{"op": "add", "path": "/" + pointerEscape(k), "value": md[k]})
	}
	return ops
}

// removeOp is the operation that removes property k.
func removeOp(k string) map[string]any {
	return map[string]any{"op": "remove", "path": "/" + pointerEscape(k)}
}

// pointerEscape escapes a key as one token of a JSON pointer (RFC 6901).
func pointerEscape(k string) string {
	return strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
}

// readImageMetadata reads the body's metadata (under "metadata" or, for
// one item, "meta"): an object of string values, each key a property the
// caller may set.
func readImageMetadata(r *http.Request, field string) (map[string]string, error) {
	var body map[string]json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		return nil, badRequest("Malformed request body")
	}
	raw, ok := body[field]
	if !ok {
		return nil, badRequest("Malformed request body: '%s' is a required property", field)
	}
	var md map[string]any
	if err := json.Unmarshal(raw, &md); err != nil || md == nil {
		return nil, badRequest("Malformed request body: '%s' must be an object", field)
	}
	out := make(map[string]string, len(md))
	for k, v := range md {
		if k == "" || len(k) > 255 {
			return nil, badField(field, k, "is not a valid metadata key (1 to 255 characters)")
		}
		if glanceBase[k] {
			return nil, badField(field, k, "is an attribute of the image, not its metadata")
		}
		switch x := v.(type) {
		case string:
			out[k] = x
		case float64, bool:
			out[k] = fmt.Sprint(x)
		default:
			return nil, badField(field, k, "value must be a string")
		}
	}
	return out, nil
}

// metadataImage is the image of an image-metadata request, read through
// the image service once the microversion allows the proxy.
func (s *Service) metadataImage(r *http.Request) (map[string]any, error) {
	if err := s.imageProxyAllowed(r, maxImageMetaMinor); err != nil {
		return nil, err
	}
	return s.glanceImage(r)
}

// metadataBody is the metadata an image-metadata request's body sets
// (readImageMetadata), once the microversion allows the proxy.
func (s *Service) metadataBody(r *http.Request, field string) (map[string]string, error) {
	if err := s.imageProxyAllowed(r, maxImageMetaMinor); err != nil {
		return nil, err
	}
	return readImageMetadata(r, field)
}

func (s *Service) listImageMetadata(w http.ResponseWriter, r *http.Request) error {
	img, err := s.metadataImage(r)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"metadata": imageMetadata(img)})
	return nil
}

// mergeImageMetadata is POST /images/{id}/metadata: the keys given are
// set, the others kept.
func (s *Service) mergeImageMetadata(w http.ResponseWriter, r *http.Request) error {
	md, err := s.metadataBody(r, "metadata")
	if err != nil {
		return err
	}
	img, err := s.patchImage(r, setOps(md))
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"metadata": imageMetadata(img)})
	return nil
}

// replaceImageMetadata is PUT /images/{id}/metadata: the image's
// properties become exactly those given, in one change.
func (s *Service) replaceImageMetadata(w http.ResponseWriter, r *http.Request) error {
	md, err := s.metadataBody(r, "metadata")
	if err != nil {
		return err
	}
	img, err := s.glanceImage(r)
	if err != nil {
		return err
	}
	var ops []any
	for k := range imageMetadata(img) {
		if _, keep := md[k]; !keep {
			ops = append(ops, removeOp(k))
		}
	}
	if img, err = s.patchImage(r, append(ops, setOps(md)...)); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"metadata": imageMetadata(img)})
	return nil
}

func (s *Service) showImageMetadataItem(w http.ResponseWriter, r *http.Request) error {
	img, err := s.metadataImage(r)
	if err != nil {
		return err
	}
	key := pathParam(r, "key")
	v, ok := imageMetadata(img)[key]
	if !ok {
		return notFound("Invalid metadata key")
	}
	api.JSON(w, http.StatusOK, map[string]any{"meta": map[string]any{key: v}})
	return nil
}

// setImageMetadataItem is PUT /images/{id}/metadata/{key}: the body names
// that key alone.
func (s *Service) setImageMetadataItem(w http.ResponseWriter, r *http.Request) error {
	md, err := s.metadataBody(r, "meta")
	if err != nil {
		return err
	}
	key := pathParam(r, "key")
	if len(md) > 1 {
		return badRequest("Request body contains too many items")
	}
	if _, ok := md[key]; !ok {
		return badRequest("Request body and URI mismatch")
	}
	img, err := s.patchImage(r, setOps(md))
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"meta": map[string]any{key: imageMetadata(img)[key]}})
	return nil
}

func (s *Service) deleteImageMetadataItem(w http.ResponseWriter, r *http.Request) error {
	img, err := s.metadataImage(r)
	if err != nil {
		return err
	}
	key := pathParam(r, "key")
	if _, ok := imageMetadata(img)[key]; !ok {
		return notFound("Invalid metadata key")
	}
	if _, err := s.patchImage(r, []any{removeOp(key)}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
