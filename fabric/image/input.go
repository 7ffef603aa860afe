package image

import (
	"encoding/json"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/rackstack/rackstack/fabric/api"
)

// Formats Glance accepts by default.
var (
	diskFormats      = []string{"ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"}
	containerFormats = []string{"ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"}
	visibilities     = []string{VisibilityCommunity, VisibilityPublic, VisibilityPrivate, VisibilityShared}
)

// Limits, as Glance's default quotas.
const (
	maxTags       = 128 // image_tag_quota
	maxProperties = 128 // image_property_quota
	maxMembers    = 128 // image_member_quota
	maxInt        = math.MaxInt32
)

var uuidPattern = regexp.MustCompile(`^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$`)

// readOnlyAttrs are the attributes only the service sets.
var readOnlyAttrs = map[string]bool{
	"created_at": true, "updated_at": true, "status": true, "checksum": true, "os_hash_algo": true,
	"os_hash_value": true, "size": true, "virtual_size": true, "direct_url": true, "self": true,
	"file": true, "schema": true, "stores": true, "locations": true,
}

// reservedAttrs may not be used as properties.
var reservedAttrs = map[string]bool{"location": true, "deleted": true, "deleted_at": true}

// reservedPrefix is Glance's namespace for its own properties.
const reservedPrefix = "os_glance"

// checkSettable refuses attributes no client may set, with Glance's 403s.
func checkSettable(field string) error {
	switch {
	case readOnlyAttrs[field]:
		return readOnly(field)
	case reservedAttrs[field], strings.HasPrefix(field, reservedPrefix):
		return reserved(field)
	}
	return nil
}

// isBase reports whether field is an attribute of the image itself rather
// than an extra property.
func isBase(field string) bool {
	switch field {
	case "id", "name", "visibility", "protected", "os_hidden", "min_disk", "min_ram",
		"disk_format", "container_format", "tags", "owner":
		return true
	}
	return readOnlyAttrs[field]
}

func textOf(v any) string {
	if s, ok := v.(string); ok {
		return "'" + s + "'"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func quoted(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = "'" + s + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// str reads a string attribute of at most max characters with the kit's
// reader, which also refuses NUL, CR and other control characters and
// invalid UTF-8 (a name must print and log as what it is).
func str(field string, v any, max int) (string, error) {
	if _, ok := v.(string); !ok {
		return "", badField(field, "%s is not of type 'string'", textOf(v))
	}
	in := api.NewInput(api.Object{field: v}, wording{})
	s := in.Str(field, "", max)
	return s, in.Err
}

// checkText refuses text a client may not set (see str).
func checkText(field, s string) error {
	_, err := str(field, s, 0)
	return err
}

func oneOf(field string, v any, allowed []string, nullable bool) (string, error) {
	if v == nil && nullable {
		return "", nil
	}
	s, ok := v.(string)
	if !ok || !slices.Contains(allowed, s) {
		return "", badField(field, "%s is not one of %s", textOf(v), quoted(allowed))
	}
	return s, nil
}

func boolean(field string, v any) (bool, error) {
	b, ok := v.(bool)
	if !ok {
		return false, badField(field, "%s is not of type 'boolean'", textOf(v))
	}
	return b, nil
}

func nonNegInt(field string, v any) (int, error) {
	f, ok := v.(float64)
	if !ok || f != math.Trunc(f) {
		return 0, badField(field, "%s is not of type 'integer'", textOf(v))
	}
	if f < 0 {
		return 0, badField(field, "%s is less than the minimum of 0", textOf(v))
	}
	if f > maxInt {
		return 0, badField(field, "%s is greater than the maximum of %d", textOf(v), maxInt)
	}
	return int(f), nil
}

// tagList reads a list of tags, dropping repeats.
func tagList(field string, v any) ([]string, error) {
	l, ok := v.([]any)
	if !ok {
		return nil, badField(field, "%s is not of type 'array'", textOf(v))
	}
	out := []string{}
	for _, x := range l {
		t, err := str(field, x, 255)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	if len(out) > maxTags {
		return nil, tooLarge("Maximum number of tags exceeded: attempted %d, maximum %d.", len(out), maxTags)
	}
	return out, nil
}

// setAttr sets one attribute or extra property of img from a client's
// value, checking it as Glance's image schema and policy do. creating is
// true for a new image (where id may be chosen).
func setAttr(p *api.Principal, img *Image, field string, v any, creating bool) error {
	if err := checkSettable(field); err != nil {
		return err
	}
	var err error
	switch field {
	case "id":
		if !creating {
			return readOnly(field)
		}
		s, ok := v.(string)
		if !ok || !uuidPattern.MatchString(s) {
			return badField(field, "%s does not match the UUID pattern", textOf(v))
		}
		img.ID = strings.ToLower(s)
	case "name":
		if v == nil {
			img.Name = ""
			return nil
		}
		img.Name, err = str(field, v, 255)
	case "visibility":
		var vis string
		if vis, err = oneOf(field, v, visibilities, false); err != nil {
			return err
		}
		if vis == VisibilityPublic && img.Visibility != VisibilityPublic && !p.IsAdmin() {
			return forbidden("You are not authorized to complete publicize_image action.")
		}
		img.Visibility = vis
	case "protected":
		img.Protected, err = boolean(field, v)
	case "os_hidden":
		img.Hidden, err = boolean(field, v)
	case "min_disk":
		img.MinDisk, err = nonNegInt(field, v)
	case "min_ram":
		img.MinRAM, err = nonNegInt(field, v)
	case "disk_format", "container_format":
		allowed := diskFormats
		cur := &img.DiskFormat
		if field == "container_format" {
			allowed, cur = containerFormats, &img.ContainerFormat
		}
		var f string
		if f, err = oneOf(field, v, allowed, true); err != nil {
			return err
		}
		if !creating && f != *cur && img.Status != StatusQueued {
			return forbidden("Attribute %s can be only replaced for a queued image.", field)
		}
		*cur = f
	case "tags":
		img.Tags, err = tagList(field, v)
	case "owner":
		var o string
		if v != nil {
			if o, err = str(field, v, 255); err != nil {
				return err
			}
		}
		if o != img.Owner && !p.IsAdmin() {
			if creating {
				return forbidden("You are not permitted to create images owned by '%s'.", o)
			}
			return forbidden("You are not permitted to modify 'owner' on this image.")
		}
		img.Owner = o
	default:
		return setProperty(img, field, v)
	}
	return err
}

// setProperty sets an extra property: Glance's schema takes strings only.
func setProperty(img *Image, key string, v any) error {
	if key == "" || len(key) > 255 {
		return badRequest("Custom property names must have 1 to 255 characters.")
	}
	if err := checkText(key, key); err != nil {
		return err
	}
	s, err := str(key, v, 0)
	if err != nil {
		return err
	}
	if (key == "kernel_id" || key == "ramdisk_id") && !uuidPattern.MatchString(s) {
		return badField(key, "%s does not match the UUID pattern", textOf(v))
	}
	if _, exists := img.Properties[key]; !exists && len(img.Properties) >= maxProperties {
		return tooLarge("Maximum number of image properties exceeded: attempted %d, maximum %d.", len(img.Properties)+1, maxProperties)
	}
	if img.Properties == nil {
		img.Properties = map[string]string{}
	}
	img.Properties[key] = s
	return nil
}
