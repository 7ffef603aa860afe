package compute

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/rackstack/rackstack/fabric/api"
)

// obj is a decoded JSON object from a request body, read attribute by
// attribute so that every bad value is reported with its name, as Nova's
// JSON-schema validation words it.
type obj map[string]any

// body decodes {"<key>": {...}} and refuses other top-level keys except
// those in also.
func body(r *http.Request, key string, also ...string) (obj, obj, error) {
	var top map[string]any
	if err := api.DecodeLoose(r, &top); err != nil {
		var ae *api.Error
		if ok := asAPIError(err, &ae); ok {
			return nil, nil, badRequest("%s", ae.Msg)
		}
		return nil, nil, err
	}
	if err := allowOnly(top, append([]string{key}, also...)...); err != nil {
		return nil, nil, err
	}
	inner, ok := top[key]
	if !ok {
		return nil, nil, badRequest("Invalid input for field/attribute %s. Value: %s. '%s' is a required property", key, valueText(top), key)
	}
	m, ok := inner.(map[string]any)
	if !ok {
		return nil, nil, badField(key, inner, "%s is not of type 'object'", valueText(inner))
	}
	return m, top, nil
}

// rawBody decodes any JSON object.
func rawBody(r *http.Request) (obj, error) {
	var top map[string]any
	if err := api.DecodeLoose(r, &top); err != nil {
		var ae *api.Error
		if ok := asAPIError(err, &ae); ok {
			return nil, badRequest("%s", ae.Msg)
		}
		return nil, err
	}
	return top, nil
}

func asAPIError(err error, out **api.Error) bool {
	ae, ok := err.(*api.Error)
	if ok {
		*out = ae
	}
	return ok
}

// allowOnly refuses attributes not in names, as Nova's schemas do
// (additionalProperties: false).
func allowOnly(o map[string]any, names ...string) error {
	ok := map[string]bool{}
	for _, n := range names {
		ok[n] = true
	}
	var extra []string
	for k := range o {
		if !ok[k] {
			extra = append(extra, "'"+k+"'")
		}
	}
	if len(extra) == 0 {
		return nil
	}
	sort.Strings(extra)
	verb := "was"
	if len(extra) > 1 {
		verb = "were"
	}
	return badRequest("Additional properties are not allowed (%s %s unexpected)", strings.Join(extra, ", "), verb)
}

// reader reads attributes of one object and keeps the first error.
type reader struct {
	o   obj
	err error
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) has(f string) bool { _, ok := r.o[f]; return ok }

// str reads a string of min..max characters; required fails when absent.
func (r *reader) str(f string, required bool, min, max int) string {
	v, ok := r.o[f]
	if r.err != nil {
		return ""
	}
	if !ok {
		if required {
			r.fail(badRequest("Invalid input for field/attribute %s. Value: None. '%s' is a required property", f, f))
		}
		return ""
	}
	s, ok := v.(string)
	if !ok {
		r.fail(badField(f, v, "%s is not of type 'string'", valueText(v)))
		return ""
	}
	n := utf8.RuneCountInString(s)
	switch {
	case n < min && min == 1:
		r.fail(badField(f, s, "'%s' is too short", s))
	case n < min:
		r.fail(badField(f, s, "'%s' is too short (minimum %d characters)", s, min))
	case max > 0 && n > max:
		r.fail(badField(f, s, "'%s' is too long", s))
	}
	return s
}

// name reads a resource name: 1-255 characters, not only spaces, no
// leading or trailing whitespace (Nova's parameter_types.name).
func (r *reader) name(f string, required bool) string {
	s := r.str(f, required, 1, 255)
	if r.err == nil && s != "" && (strings.TrimSpace(s) != s || hasControl(s)) {
		r.fail(badField(f, s, "'%s' does not match the name pattern: no leading or trailing whitespace and no control characters", s))
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
func (r *reader) integer(f string, required bool, def, lo, hi int) int {
	v, ok := r.o[f]
	if r.err != nil {
		return def
	}
	if !ok || (v == nil && !required) {
		if required {
			r.fail(badRequest("Invalid input for field/attribute %s. Value: None. '%s' is a required property", f, f))
		}
		return def
	}
	n, ok := toInt(v)
	if !ok {
		r.fail(badField(f, v, "%s is not of type 'integer', 'string'", valueText(v)))
		return def
	}
	if n < lo {
		r.fail(badField(f, v, "%s is less than the minimum of %d", valueText(v), lo))
		return def
	}
	if n > hi {
		r.fail(badField(f, v, "%s is greater than the maximum of %d", valueText(v), hi))
		return def
	}
	return n
}

func toInt(v any) (int, bool) {
	switch x := v.(type) {
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > math.MaxInt32 {
			return 0, false
		}
		return int(x), true
	case string:
		s := strings.TrimSpace(x)
		if s == "" {
			return 0, false
		}
		n, err := strconv.Atoi(s)
		if err != nil || n > math.MaxInt32 || n < math.MinInt32 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}

// boolean reads a boolean; Nova's boolean type also takes "true"/"false",
// "1"/"0", "yes"/"no", "on"/"off".
func (r *reader) boolean(f string, def bool) bool {
	v, ok := r.o[f]
	if !ok || r.err != nil {
		return def
	}
	b, ok := toBool(v)
	if !ok {
		r.fail(badField(f, v, "%s is not one of [True, 'True', 'TRUE', 'true', '1', 'ON', 'On', 'on', 'YES', 'Yes', 'yes', False, 'False', 'FALSE', 'false', '0', 'OFF', 'Off', 'off', 'NO', 'No', 'no']", valueText(v)))
		return def
	}
	return b
}

func toBool(v any) (bool, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case string:
		switch strings.ToLower(x) {
		case "true", "1", "yes", "on":
			return true, true
		case "false", "0", "no", "off":
			return false, true
		}
	}
	return false, false
}

// metadata reads a {string: string} object whose keys are 1-255 and values
// 0-255 characters.
func (r *reader) metadata(f string) map[string]string {
	v, ok := r.o[f]
	if !ok || r.err != nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		r.fail(badField(f, v, "%s is not of type 'object'", valueText(v)))
		return nil
	}
	out, err := stringMap(f, m, 255)
	r.fail(err)
	return out
}

func stringMap(f string, m map[string]any, maxValue int) (map[string]string, error) {
	out := make(map[string]string, len(m))
	for k, x := range m {
		s, ok := x.(string)
		if !ok {
			return nil, badField(f, m, "%s is not of type 'string'", valueText(x))
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

// valueText prints a value roughly the way Nova's messages quote it.
func valueText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case float64:
		if x == math.Trunc(x) {
			return strconv.FormatInt(int64(x), 10)
		}
		return fmt.Sprint(x)
	}
	b, _ := json.Marshal(v)
	return string(b)
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
