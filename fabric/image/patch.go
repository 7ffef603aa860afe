package image

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/rackstack/rackstack/fabric/api"
)

// Image updates are JSON patches in one of Glance's two media types:
//
//	v2.1: [{"op": "replace", "path": "/name", "value": "x"}, ...]  (RFC 6902)
//	v2.0: [{"replace": "/name", "value": "x"}, ...]
//
// with add, replace and remove on one attribute or property each; all
// changes apply or none.
const (
	patchV21 = "application/openstack-images-v2.1-json-patch"
	patchV20 = "application/openstack-images-v2.0-json-patch"
)

// change is one operation of a patch.
type change struct {
	op    string // add, replace, remove
	path  string // the attribute or property
	value any
}

func parsePatch(r *http.Request) ([]change, bool, error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != patchV21 && ct != patchV20 {
		return nil, false, api.Errorf(http.StatusUnsupportedMediaType, "Unsupported Content-Type: use %s.", patchV21)
	}
	v20 := ct == patchV20
	raw, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, api.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, false, tooLarge("Request body exceeds %d bytes.", api.MaxBodyBytes)
		}
		return nil, false, badRequest("Malformed request body: %v", err)
	}
	if !utf8.Valid(raw) {
		return nil, false, badRequest("Malformed JSON patch: the body is not valid UTF-8.")
	}
	var ops []map[string]any
	if err := json.Unmarshal(raw, &ops); err != nil {
		return nil, false, badRequest("Malformed JSON patch: the body must be a list of operation objects.")
	}
	out := make([]change, 0, len(ops))
	for _, o := range ops {
		var c change
		var ptr any
		if v20 {
			n := 0
			for _, op := range []string{"add", "replace", "remove"} {
				if p, ok := o[op]; ok {
					c.op, ptr = op, p
					n++
				}
			}
			if n != 1 {
				return nil, false, badRequest("Operation objects must contain exactly one member named \"add\", \"remove\", or \"replace\".")
			}
		} else {
			op, _ := o["op"].(string)
			switch op {
			case "add", "replace", "remove":
			case "":
				return nil, false, badRequest("Operation objects must contain exactly one member named \"op\".")
			default:
				return nil, false, badRequest("Invalid operation: %q. Valid operations are add, replace and remove.", op)
			}
			c.op, ptr = op, o["path"]
		}
		p, err := decodePointer(ptr)
		if err != nil {
			return nil, false, err
		}
		c.path = p
		v, hasValue := o["value"]
		if c.op != "remove" {
			if !hasValue {
				return nil, false, badRequest("Operation objects must contain exactly one member named \"value\".")
			}
			c.value = v
		}
		out = append(out, c)
	}
	return out, v20, nil
}

// decodePointer reads a JSON pointer of one level ("/name").
func decodePointer(v any) (string, error) {
	s, ok := v.(string)
	if !ok || !strings.HasPrefix(s, "/") || len(s) < 2 {
		return "", badRequest("Pointer %s does not start with \"/\" or names nothing.", textOf(v))
	}
	parts := strings.Split(s[1:], "/")
	if len(parts) != 1 {
		return "", badRequest("Invalid JSON pointer for this resource: '%s'", s)
	}
	p := parts[0]
	if strings.Contains(strings.ReplaceAll(strings.ReplaceAll(p, "~0", ""), "~1", ""), "~") {
		return "", badRequest("Invalid JSON pointer: '%s'", s)
	}
	return strings.ReplaceAll(strings.ReplaceAll(p, "~1", "/"), "~0", "~"), nil
}

// applyChanges applies a patch to img as p may.
func applyChanges(p *api.Principal, img *Image, changes []change, v20 bool) error {
	for _, c := range changes {
		if c.path == "id" {
			return readOnly("id")
		}
		if err := checkSettable(c.path); err != nil {
			return err
		}
		base := isBase(c.path)
		_, exists := img.Properties[c.path]
		switch c.op {
		case "remove":
			if base {
				return forbidden("Property %s may not be removed.", c.path)
			}
			if !exists {
				return conflict("Property %s does not exist.", c.path)
			}
			delete(img.Properties, c.path)
			continue
		case "replace":
			if !base && !exists {
				return conflict("Property %s does not exist.", c.path)
			}
		case "add":
			if v20 && exists {
				return conflict("Property %s already present.", c.path)
			}
		}
		if err := setAttr(p, img, c.path, c.value, false); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) updateImage(w http.ResponseWriter, r *http.Request) error {
	changes, v20, err := parsePatch(r)
	if err != nil {
		return err
	}
	p := principal(r)
	img, err := s.change(r, "modify_image", func(img *Image) error {
		return applyChanges(p, img, changes, v20)
	})
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, view(img))
	return nil
}
