package identity

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/rackstack/rackstack/fabric/api"
)

// wording words a bad attribute as Keystone does: "Invalid input for
// field/attribute <field>: <reason>".
type wording struct{}

func (wording) BadField(field string, _ any, reason string) error {
	return api.BadField(field, "%s", reason)
}

func (wording) Missing(field string) error {
	return api.BadField(field, "'%s' is a required property", field)
}

// maxName is the longest string attribute Keystone stores (its columns are
// 255 wide); names of domains and projects are shorter (64).
const maxName = 255

// body decodes {"<key>": {...}} and returns a reader of the inner object.
func body(r *http.Request, key string) (*api.Input, error) {
	top, err := topObject(r, key)
	if err != nil {
		return nil, err
	}
	inner, ok := top[key].(map[string]any)
	if !ok {
		return nil, api.BadField(key, "'%s' is a required property and must be an object", key)
	}
	return api.NewInput(inner, wording{}), nil
}

// topObject decodes the request's JSON object, refusing invalid UTF-8 by
// the attribute of top[key] that holds it.
func topObject(r *http.Request, key string) (api.Object, error) {
	raw, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, api.MaxBodyBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, api.Errorf(http.StatusRequestEntityTooLarge, "request body exceeds %d bytes", api.MaxBodyBytes)
	}
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	// encoding/json turns invalid UTF-8 into U+FFFD without a word, so a
	// name of bad bytes would be stored as something else: refuse it.
	if !utf8.Valid(raw) {
		return nil, api.BadField(badUTF8Field(raw, key), "is not valid UTF-8")
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	return api.ReadObject(r)
}

// str reads an optional string attribute of at most maxName characters,
// def when absent. Text with control characters (NUL, CR, LF in a name…)
// or invalid UTF-8 is refused by api.Input.
func str(in *api.Input, field, def string) string {
	s := in.Str(field, def, 0)
	tooLong(in, field, s, maxName)
	return s
}

// required reads a string attribute that must be present and not blank.
func required(in *api.Input, field string) string {
	s := in.Required(field, 0)
	tooLong(in, field, s, maxName)
	return s
}

// name reads a name: required when creating (def == ""), at most max
// characters, and on one line.
func name(in *api.Input, def string, create bool, max int) string {
	var s string
	if create {
		s = in.Required("name", 0)
	} else {
		s = in.Str("name", def, 0)
	}
	if in.Err == nil && strings.ContainsAny(s, "\n\t") {
		in.Fail(api.BadField("name", "'%s' must be on one line, without tabs", "name"))
	}
	tooLong(in, "name", s, max)
	return s
}

// tooLong reports a field longer than n characters.
func tooLong(in *api.Input, field, v string, n int) {
	if in.Err == nil && utf8.RuneCountInString(v) > n {
		in.Fail(api.BadField(field, "'%s' is too long (at most %d characters)", field, n))
	}
}

// boolean reads an optional boolean attribute, def when absent. Unlike
// api.Input.Bool it takes only JSON booleans, as Keystone's schema does.
func boolean(in *api.Input, field string, def bool) bool {
	v, ok := in.Obj[field]
	if !ok || in.Err != nil {
		return def
	}
	b, ok := v.(bool)
	if !ok {
		in.Fail(api.BadField(field, "%s is not of type 'boolean'", jsonText(v)))
		return def
	}
	return b
}

// strs reads an optional list of strings, def when absent.
func strs(in *api.Input, field string, def []string) []string {
	v, ok := in.Obj[field]
	if !ok || in.Err != nil {
		return def
	}
	if v == nil {
		return []string{}
	}
	if _, ok := v.([]any); !ok {
		in.Fail(api.BadField(field, "%s is not of type 'array'", jsonText(v)))
		return def
	}
	return in.Strs(field)
}

// extras are the attributes not in known, kept as Keystone keeps extra
// attributes of users, projects, groups, roles and endpoints.
func extras(in *api.Input, known ...string) map[string]any {
	skip := map[string]bool{"id": true, "links": true}
	for _, k := range known {
		skip[k] = true
	}
	var out map[string]any
	for k, v := range in.Obj {
		if !skip[k] {
			if out == nil {
				out = map[string]any{}
			}
			out[k] = v
		}
	}
	return out
}

// mergeExtras is old with the extra attributes of an update laid over it.
func mergeExtras(old map[string]any, in *api.Input, known ...string) map[string]any {
	ex := extras(in, known...)
	if ex == nil {
		return old
	}
	out := map[string]any{}
	for k, v := range old {
		out[k] = v
	}
	for k, v := range ex {
		out[k] = v
	}
	return out
}

// withExtras is view with a row's extra attributes under it: the row's own
// attributes win.
func withExtras(extra map[string]any, view api.View) api.View {
	for k, x := range extra {
		if _, own := view[k]; !own {
			view[k] = x
		}
	}
	return view
}

// badUTF8Field names the attribute of body[key] holding invalid UTF-8,
// or key itself when it cannot tell.
func badUTF8Field(raw []byte, key string) string {
	var top map[string]map[string]json.RawMessage
	if json.Unmarshal(raw, &top) == nil {
		for f, v := range top[key] {
			if !utf8.Valid(v) || !utf8.ValidString(f) {
				return f
			}
		}
	}
	return key
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// checkTags checks project tags as Keystone does: at most 80, each at most
// 255 characters, no '/' or ','.
func checkTags(in *api.Input, tags []string) {
	if in.Err != nil {
		return
	}
	if len(tags) > 80 {
		in.Fail(api.BadField("tags", "at most 80 tags are allowed"))
		return
	}
	for _, t := range tags {
		if t == "" || utf8.RuneCountInString(t) > 255 || strings.ContainsAny(t, "/,") {
			in.Fail(api.BadField("tags", "invalid tag %q: 1 to 255 characters, without '/' or ','", t))
			return
		}
	}
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
