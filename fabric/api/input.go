package api

import (
	"encoding/json"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Object is a decoded JSON object from a request body.
type Object = map[string]any

// Wording is how a service words a bad attribute: every service reads
// input with the same Input, and each words its 400s as its OpenStack
// counterpart does (Nova's "Invalid input for field/attribute X. Value: V.
// reason", Neutron's "Invalid input for X. Reason: reason.").
type Wording interface {
	// BadField is a 400 naming field, whose value v fails for reason.
	BadField(field string, v any, reason string) error
	// Missing is a 400 for a required field that is absent.
	Missing(field string) error
}

// Input reads the attributes of one object and keeps the first error, so a
// handler reads in a row and checks once. Every error names the field.
type Input struct {
	Obj  Object
	Word Wording
	Err  error
}

// NewInput reads o, wording errors with w.
func NewInput(o Object, w Wording) *Input { return &Input{Obj: o, Word: w} }

// Fail records err unless an earlier error is recorded.
func (in *Input) Fail(err error) {
	if in.Err == nil && err != nil {
		in.Err = err
	}
}

// Has reports whether field is present (even null).
func (in *Input) Has(field string) bool { _, ok := in.Obj[field]; return ok }

// IsNull reports whether field is present and null.
func (in *Input) IsNull(field string) bool { v, ok := in.Obj[field]; return ok && v == nil }

// Str reads a string field of at most max characters (0: no limit), def
// when absent; null reads as "". Strings with NUL, other control
// characters than tab and newline, or invalid UTF-8 are refused.
func (in *Input) Str(field, def string, max int) string {
	v, ok := in.Obj[field]
	if !ok || in.Err != nil {
		return def
	}
	if v == nil {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		in.Fail(in.Word.BadField(field, v, Text(v)+" is not of type 'string'"))
		return def
	}
	if max > 0 && utf8.RuneCountInString(s) > max {
		in.Fail(in.Word.BadField(field, s, "'"+s+"' is too long (at most "+strconv.Itoa(max)+" characters)"))
		return def
	}
	if bad := badText(s); bad != "" {
		in.Fail(in.Word.BadField(field, s, bad))
		return def
	}
	return s
}

// Required reads a string field that must be present, a string and not
// empty.
func (in *Input) Required(field string, max int) string {
	if in.Err != nil {
		return ""
	}
	if v, ok := in.Obj[field]; !ok || v == nil {
		in.Fail(in.Word.Missing(field))
		return ""
	}
	s := in.Str(field, "", max)
	if in.Err == nil && strings.TrimSpace(s) == "" {
		in.Fail(in.Word.BadField(field, s, "'"+field+"' must not be empty"))
	}
	return s
}

// badText says what is wrong with s as text a client may set, or "".
func badText(s string) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	for _, c := range s {
		if (c < 0x20 && c != '\t' && c != '\n') || c == 0x7f {
			return "contains a control character"
		}
	}
	return ""
}

// Bool reads a boolean field, def when absent. Like the OpenStack services
// it also takes "true"/"false", "1"/"0", "yes"/"no" and "on"/"off".
func (in *Input) Bool(field string, def bool) bool {
	v, ok := in.Obj[field]
	if !ok || in.Err != nil {
		return def
	}
	b, ok := ToBool(v)
	if !ok {
		in.Fail(in.Word.BadField(field, v, "'"+Text(v)+"' is not a boolean"))
		return def
	}
	return b
}

// Int reads an optional integer field (a number or a string of digits)
// within lo..hi; nil when absent or null.
func (in *Input) Int(field string, lo, hi int) *int {
	v, ok := in.Obj[field]
	if !ok || v == nil || in.Err != nil {
		return nil
	}
	n, ok := ToInt(v)
	switch {
	case !ok:
		in.Fail(in.Word.BadField(field, v, "'"+Text(v)+"' is not an integer"))
		return nil
	case n < lo:
		in.Fail(in.Word.BadField(field, v, Text(v)+" is less than the minimum of "+strconv.Itoa(lo)))
		return nil
	case n > hi:
		in.Fail(in.Word.BadField(field, v, Text(v)+" is greater than the maximum of "+strconv.Itoa(hi)))
		return nil
	}
	return &n
}

// List reads an optional list field; null reads as empty.
func (in *Input) List(field string) []any {
	v, ok := in.Obj[field]
	if !ok || v == nil || in.Err != nil {
		return nil
	}
	l, ok := v.([]any)
	if !ok {
		in.Fail(in.Word.BadField(field, v, "'"+Text(v)+"' is not a list"))
		return nil
	}
	return l
}

// Strs reads an optional list of strings.
func (in *Input) Strs(field string) []string {
	out := []string{}
	for _, x := range in.List(field) {
		s, ok := x.(string)
		if !ok {
			in.Fail(in.Word.BadField(field, x, "'"+Text(x)+"' is not a string"))
			return nil
		}
		if bad := badText(s); bad != "" {
			in.Fail(in.Word.BadField(field, s, bad))
			return nil
		}
		out = append(out, s)
	}
	return out
}

// Objects reads an optional list of objects.
func (in *Input) Objects(field string) []Object {
	var out []Object
	for _, x := range in.List(field) {
		m, ok := x.(map[string]any)
		if !ok {
			in.Fail(in.Word.BadField(field, x, "'"+Text(x)+"' is not a dictionary"))
			return nil
		}
		out = append(out, m)
	}
	return out
}

// Obj reads an optional object field; nil when absent or null.
func (in *Input) Object(field string) Object {
	v, ok := in.Obj[field]
	if !ok || v == nil || in.Err != nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		in.Fail(in.Word.BadField(field, v, Text(v)+" is not of type 'object'"))
		return nil
	}
	return m
}

// ReadObject decodes a JSON body that must be an object (unknown
// attributes are the caller's to refuse, with Only or its own spec).
func ReadObject(r *http.Request) (Object, error) {
	var top map[string]any
	if err := DecodeLoose(r, &top); err != nil {
		return nil, err
	}
	if top == nil {
		return nil, Errorf(http.StatusBadRequest, "the request body must be a JSON object")
	}
	return top, nil
}

// Unexpected lists o's keys that are not in names, sorted; nil if none.
func Unexpected(o Object, names ...string) []string {
	ok := make(map[string]bool, len(names))
	for _, n := range names {
		ok[n] = true
	}
	var extra []string
	for k := range o {
		if !ok[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	return extra
}

// ToBool reads a JSON boolean, or a string or 0/1 that means one.
func ToBool(v any) (bool, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "true", "1", "yes", "on":
			return true, true
		case "false", "0", "no", "off":
			return false, true
		}
	case float64:
		if x == 0 || x == 1 {
			return x == 1, true
		}
	}
	return false, false
}

// ToInt reads a JSON number without a fraction, or a string of digits,
// within 32 bits.
func ToInt(v any) (int, bool) {
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

// Text prints a value the way the OpenStack services quote it in messages
// (Python's str of it).
func Text(v any) string {
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
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return strconv.FormatInt(int64(x), 10)
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	b, _ := json.Marshal(v)
	return string(b)
}
