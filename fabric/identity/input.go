package identity

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/rackstack/rackstack/fabric/api"
)

// obj is a decoded JSON object from a request body, read field by field so
// that every bad value is reported with its field name.
type obj map[string]any

// body decodes {"<key>": {...}} and returns the inner object.
func body(r *http.Request, key string) (obj, error) {
	var top map[string]any
	if err := api.DecodeLoose(r, &top); err != nil {
		return nil, err
	}
	inner, ok := top[key].(map[string]any)
	if !ok {
		return nil, api.BadField(key, "'%s' is a required property and must be an object", key)
	}
	return obj(inner), nil
}

func (o obj) has(f string) bool { _, ok := o[f]; return ok }

// str reads a string field; a required one must be present and non-empty.
func (o obj) str(f string, required bool) (string, error) {
	v, ok := o[f]
	if !ok || v == nil {
		if required {
			return "", api.BadField(f, "'%s' is a required property", f)
		}
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", api.BadField(f, "%s is not of type 'string'", jsonText(v))
	}
	if required && strings.TrimSpace(s) == "" {
		return "", api.BadField(f, "'%s' must not be empty", f)
	}
	if utf8.RuneCountInString(s) > 255 {
		return "", api.BadField(f, "'%s' is too long (at most 255 characters)", f)
	}
	return s, nil
}

// boolean reads an optional boolean field, def when absent.
func (o obj) boolean(f string, def bool) (bool, error) {
	v, ok := o[f]
	if !ok {
		return def, nil
	}
	b, ok := v.(bool)
	if !ok {
		return false, api.BadField(f, "%s is not of type 'boolean'", jsonText(v))
	}
	return b, nil
}

// strs reads an optional list of strings.
func (o obj) strs(f string) ([]string, error) {
	v, ok := o[f]
	if !ok || v == nil {
		return []string{}, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, api.BadField(f, "%s is not of type 'array'", jsonText(v))
	}
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, ok := x.(string)
		if !ok {
			return nil, api.BadField(f, "%s is not of type 'string'", jsonText(x))
		}
		out = append(out, s)
	}
	return out, nil
}

// extras are the fields not in known, kept as Keystone keeps extra
// attributes of users and projects.
func (o obj) extras(known ...string) map[string]any {
	skip := map[string]bool{"id": true, "links": true}
	for _, k := range known {
		skip[k] = true
	}
	var out map[string]any
	for k, v := range o {
		if !skip[k] {
			if out == nil {
				out = map[string]any{}
			}
			out[k] = v
		}
	}
	return out
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// str, boolean, strs collect the first error, so handlers read fields in a
// row and check once.
type reader struct {
	o   obj
	err error
}

func (r *reader) str(f string, required bool, def string) string {
	if r.err != nil {
		return def
	}
	if !r.o.has(f) && !required {
		return def
	}
	s, err := r.o.str(f, required)
	r.err = err
	return s
}

func (r *reader) boolean(f string, def bool) bool {
	if r.err != nil {
		return def
	}
	b, err := r.o.boolean(f, def)
	r.err = err
	return b
}

func (r *reader) strs(f string, def []string) []string {
	if r.err != nil || !r.o.has(f) {
		return def
	}
	s, err := r.o.strs(f)
	r.err = err
	return s
}

// ec2Blob is the blob of an EC2 credential.
type ec2Blob struct {
	Access string `json:"access"`
	Secret string `json:"secret"`
}

func parseEC2Blob(s string) (ec2Blob, error) {
	var b ec2Blob
	if err := json.Unmarshal([]byte(s), &b); err != nil || b.Access == "" || b.Secret == "" {
		return b, api.BadField("blob", "an ec2 credential blob must be a JSON object with 'access' and 'secret'")
	}
	return b, nil
}

func errorf(status int, format string, args ...any) error {
	return api.Errorf(status, "%s", fmt.Sprintf(format, args...))
}

// maxLen reports a field longer than n characters.
func (r *reader) maxLen(f, v string, n int) {
	if r.err == nil && utf8.RuneCountInString(v) > n {
		r.err = api.BadField(f, "'%s' is too long (at most %d characters)", f, n)
	}
}

// tags checks project tags as Keystone does: at most 80, each at most 255
// characters, no '/' or ','.
func (r *reader) tags(tags []string) {
	if r.err != nil {
		return
	}
	if len(tags) > 80 {
		r.err = api.BadField("tags", "at most 80 tags are allowed")
		return
	}
	for _, t := range tags {
		if t == "" || utf8.RuneCountInString(t) > 255 || strings.ContainsAny(t, "/,") {
			r.err = api.BadField("tags", "invalid tag %q: 1 to 255 characters, without '/' or ','", t)
			return
		}
	}
}
