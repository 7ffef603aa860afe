package compute

import (
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/rackstack/rackstack/fabric/api"
)

// Request bodies are read with api.Input, worded as Nova's JSON-schema
// validation words its 400s. The readers below are Nova's own types
// (parameter_types: name, integer-or-string, its boolean enum, metadata)
// on top of it.

// novaWording words a bad attribute as Nova does: "Invalid input for
// field/attribute X. Value: V. reason".
type novaWording struct{}

func (novaWording) BadField(field string, v any, reason string) error {
	return badField(field, v, "%s", reason)
}

func (novaWording) Missing(field string) error { return missing(field) }

func newInput(o api.Object) *api.Input { return api.NewInput(o, novaWording{}) }

// readBody decodes {"<key>": {...}} and refuses other top-level keys
// except those in also; it returns the inner object and the whole body.
func readBody(r *http.Request, key string, also ...string) (api.Object, api.Object, error) {
	top, err := readRaw(r)
	if err != nil {
		return nil, nil, err
	}
	if err := allowOnly(top, append([]string{key}, also...)...); err != nil {
		return nil, nil, err
	}
	inner, ok := top[key]
	if !ok {
		return nil, nil, badRequest("Invalid input for field/attribute %s. Value: %s. '%s' is a required property", key, api.Text(top), key)
	}
	m, ok := inner.(map[string]any)
	if !ok {
		return nil, nil, badField(key, inner, "%s is not of type 'object'", api.Text(inner))
	}
	return m, top, nil
}

// readRaw decodes any JSON object; a body that is not one is Nova's 400.
func readRaw(r *http.Request) (api.Object, error) {
	var top map[string]any
	if err := api.DecodeLoose(r, &top); err != nil {
		return nil, badRequest("%s", api.ProblemOf(err).Msg)
	}
	return top, nil
}

// allowOnly refuses attributes not in names, as Nova's schemas do
// (additionalProperties: false).
func allowOnly(o api.Object, names ...string) error {
	extra := api.Unexpected(o, names...)
	if len(extra) == 0 {
		return nil
	}
	for i, k := range extra {
		extra[i] = "'" + k + "'"
	}
	verb := "was"
	if len(extra) > 1 {
		verb = "were"
	}
	return badRequest("Additional properties are not allowed (%s %s unexpected)", strings.Join(extra, ", "), verb)
}

// str reads a string of min..max characters (max 0: no limit); required
// fails when absent.
func str(in *api.Input, f string, required bool, min, max int) string {
	v, ok := in.Obj[f]
	if in.Err != nil {
		return ""
	}
	if !ok {
		if required {
			in.Fail(missing(f))
		}
		return ""
	}
	s, ok := v.(string)
	if !ok {
		in.Fail(badField(f, v, "%s is not of type 'string'", api.Text(v)))
		return ""
	}
	n := utf8.RuneCountInString(s)
	switch {
	case n < min && min == 1:
		in.Fail(badField(f, s, "'%s' is too short", s))
	case n < min:
		in.Fail(badField(f, s, "'%s' is too short (minimum %d characters)", s, min))
	case max > 0 && n > max:
		in.Fail(badField(f, s, "'%s' is too long", s))
	}
	return s
}

// optStr is str for an optional attribute that may be null (read as "").
func optStr(in *api.Input, f string, max int) string {
	if in.IsNull(f) {
		return ""
	}
	return str(in, f, false, 0, max)
}

// name reads a resource name: 1-255 characters, not only spaces, no
// leading or trailing whitespace (Nova's parameter_types.name).
func name(in *api.Input, f string, required bool) string {
	s := str(in, f, required, 1, 255)
	if in.Err == nil && s != "" && (strings.TrimSpace(s) != s || hasControl(s)) {
		in.Fail(badField(f, s, "'%s' does not match the name pattern: no leading or trailing whitespace and no control characters", s))
	}
	return s
}

func hasControl(s string) bool {
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			return true
		}
	}
	return false
}

// integer reads an integer (a number or a string of digits, as Nova
// takes them) within lo..hi; def when absent.
func integer(in *api.Input, f string, required bool, def, lo, hi int) int {
	v, ok := in.Obj[f]
	if in.Err != nil {
		return def
	}
	if !ok || (v == nil && !required) {
		if required {
			in.Fail(missing(f))
		}
		return def
	}
	n, ok := api.ToInt(v)
	switch {
	case !ok:
		in.Fail(badField(f, v, "%s is not of type 'integer', 'string'", api.Text(v)))
	case n < lo:
		in.Fail(badField(f, v, "%s is less than the minimum of %d", api.Text(v), lo))
	case n > hi:
		in.Fail(badField(f, v, "%s is greater than the maximum of %d", api.Text(v), hi))
	default:
		return n
	}
	return def
}

// boolean reads Nova's boolean, which also takes "true"/"false",
// "1"/"0", "yes"/"no", "on"/"off".
func boolean(in *api.Input, f string, def bool) bool {
	v, ok := in.Obj[f]
	if !ok || in.Err != nil {
		return def
	}
	b, ok := api.ToBool(v)
	if !ok {
		in.Fail(badField(f, v, "%s is not one of [True, 'True', 'TRUE', 'true', '1', 'ON', 'On', 'on', 'YES', 'Yes', 'yes', False, 'False', 'FALSE', 'false', '0', 'OFF', 'Off', 'off', 'NO', 'No', 'no']", api.Text(v)))
		return def
	}
	return b
}

// array reads an optional list; null reads as empty.
func array(in *api.Input, f string) []any {
	v, ok := in.Obj[f]
	if !ok || v == nil || in.Err != nil {
		return nil
	}
	l, ok := v.([]any)
	if !ok {
		in.Fail(badField(f, v, "%s is not of type 'array'", api.Text(v)))
		return nil
	}
	return l
}

// metadata reads a {string: string} object whose keys are 1-255 and values
// 0-255 characters.
func metadata(in *api.Input, f string) map[string]string {
	v, ok := in.Obj[f]
	if !ok || in.Err != nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		in.Fail(badField(f, v, "%s is not of type 'object'", api.Text(v)))
		return nil
	}
	out, err := stringMap(f, m, 255)
	in.Fail(err)
	return out
}

func stringMap(f string, m map[string]any, maxValue int) (map[string]string, error) {
	out := make(map[string]string, len(m))
	for k, x := range m {
		s, ok := x.(string)
		if !ok {
			return nil, badField(f, m, "%s is not of type 'string'", api.Text(x))
		}
		if k == "" || utf8.RuneCountInString(k) > 255 {
			return nil, badField(f, m, "'%s' does not match any of the regexes: '^[a-zA-Z0-9-_:. ]{1,255}$'", k)
		}
		if utf8.RuneCountInString(s) > maxValue {
			return nil, badField(f, m, "'%s' is too long", s)
		}
		out[k] = s
	}
	return out, nil
}

// queryBool reads a boolean query parameter as oslo's strict
// bool_from_string does.
func queryBool(v string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "t", "true", "on", "y", "yes":
		return true, true
	case "0", "f", "false", "off", "n", "no":
		return false, true
	}
	return false, false
}
