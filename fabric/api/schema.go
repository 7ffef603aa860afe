package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"
)

// Schema is the shape a request body must have: the part of JSON Schema
// the OpenStack services validate bodies with (Cinder's
// cinder/api/schemas, Nova's nova/api/openstack/compute/schemas), as Go
// data. A Route's Body names the schema of the request's version; the
// kit validates the body before the handler runs, and a body that does
// not fit is a 400 naming the field, worded by the service's Wording.
type Schema struct {
	// Types are the JSON types allowed: object, array, string, integer,
	// number, boolean, null; none: any.
	Types []string
	// Properties are an object's known keys; Required those it must
	// have; Closed refuses any other key (additionalProperties: false)
	// unless Values takes it.
	Properties map[string]*Schema
	Required   []string
	Closed     bool
	// Values is the schema of the values of keys that are not
	// Properties, whose names match Keys (patternProperties: a map
	// such as metadata or extra specs).
	Values *Schema
	Keys   *regexp.Regexp
	// MinProps and MaxProps bound an object's number of keys (0: none).
	MinProps, MaxProps int
	// AnyOf: the object has all the keys of at least one set; OneOf:
	// of exactly one.
	AnyOf, OneOf [][]string
	// MinLen and MaxLen bound a string's length in characters (MaxLen 0:
	// none); Pattern must match it.
	MinLen, MaxLen int
	Pattern        *regexp.Regexp
	// Min and Max bound a number.
	Min, Max *float64
	// Enum lists the values allowed.
	Enum []any
	// Items is the schema of an array's items; MinItems its least
	// length; Unique refuses repeated items.
	Items    *Schema
	MinItems int
	Unique   bool
	// Bool is a boolean as the OpenStack services take it: true or false,
	// or a string or 0/1 that means one.
	Bool bool
	// UUID is a string that is a UUID, with or without its dashes.
	UUID bool
}

// Bound is a pointer to n, for Min and Max.
func Bound(n float64) *float64 { return &n }

// ObjectOf is a closed object schema of props with required keys.
func ObjectOf(props map[string]*Schema, required ...string) *Schema {
	return &Schema{Types: []string{"object"}, Properties: props, Required: required, Closed: true}
}

// Body is the schema of a body {key: inner}, nothing else.
func BodyOf(key string, inner *Schema) *Schema {
	return ObjectOf(map[string]*Schema{key: inner}, key)
}

// Clone copies s deeply enough to change its top-level fields and its
// properties' map.
func (s *Schema) Clone() *Schema {
	c := *s
	if s.Properties != nil {
		c.Properties = make(map[string]*Schema, len(s.Properties))
		for k, v := range s.Properties {
			c.Properties[k] = v
		}
	}
	c.Required = append([]string(nil), s.Required...)
	return &c
}

// With is a copy of s with more properties (a later version's schema).
func (s *Schema) With(props map[string]*Schema) *Schema {
	c := s.Clone()
	if c.Properties == nil {
		c.Properties = map[string]*Schema{}
	}
	for k, v := range props {
		c.Properties[k] = v
	}
	return c
}

// Validate checks v, the value of field, against s; the first misfit is
// an error naming the field it is in.
func (s *Schema) Validate(field string, v any, w Wording) error {
	if len(s.Types) > 0 && !s.typeOK(v) {
		return w.BadField(field, v, fmt.Sprintf("%s is not of type %s", pyRepr(v), typeList(s.Types)))
	}
	if s.Bool {
		if _, ok := ToBool(v); !ok && !(v == nil && s.allows("null")) {
			return w.BadField(field, v, fmt.Sprintf("%s is not one of the boolean values (true, false, 'true', 'false', '1', '0', 'yes', 'no', 'on', 'off')", pyRepr(v)))
		}
	}
	if len(s.Enum) > 0 && !inEnum(v, s.Enum) {
		return w.BadField(field, v, fmt.Sprintf("%s is not one of %s", pyRepr(v), pyRepr(s.Enum)))
	}
	switch x := v.(type) {
	case string:
		return s.checkString(field, x, w)
	case float64:
		if s.Min != nil && x < *s.Min {
			return w.BadField(field, v, fmt.Sprintf("%s is less than the minimum of %s", Text(x), Text(*s.Min)))
		}
		if s.Max != nil && x > *s.Max {
			return w.BadField(field, v, fmt.Sprintf("%s is greater than the maximum of %s", Text(x), Text(*s.Max)))
		}
	case []any:
		return s.checkArray(field, x, w)
	case map[string]any:
		return s.checkObject(field, x, w)
	}
	return nil
}

func (s *Schema) checkString(field, x string, w Wording) error {
	n := utf8.RuneCountInString(x)
	switch {
	case n < s.MinLen:
		return w.BadField(field, x, fmt.Sprintf("%s is too short", pyRepr(x)))
	case s.MaxLen > 0 && n > s.MaxLen:
		return w.BadField(field, x, fmt.Sprintf("%s is too long", pyRepr(x)))
	case s.Pattern != nil && !s.Pattern.MatchString(x):
		return w.BadField(field, x, fmt.Sprintf("%s does not match %s", pyRepr(x), pyRepr(s.Pattern.String())))
	case s.UUID && !isUUID(x):
		return w.BadField(field, x, fmt.Sprintf("%s is not a 'uuid'", pyRepr(x)))
	}
	if bad := badText(x); bad != "" {
		return w.BadField(field, x, bad)
	}
	return nil
}

func (s *Schema) checkArray(field string, x []any, w Wording) error {
	if len(x) < s.MinItems {
		return w.BadField(field, x, fmt.Sprintf("%s is too short", pyRepr(x)))
	}
	seen := map[string]bool{}
	for _, item := range x {
		if s.Items != nil {
			if err := s.Items.Validate(field, item, w); err != nil {
				return err
			}
		}
		if s.Unique {
			b, _ := json.Marshal(item)
			if seen[string(b)] {
				return w.BadField(field, x, fmt.Sprintf("%s has non-unique elements", pyRepr(x)))
			}
			seen[string(b)] = true
		}
	}
	return nil
}

func (s *Schema) checkObject(field string, x map[string]any, w Wording) error {
	for _, k := range s.Required {
		if _, ok := x[k]; !ok {
			return w.Missing(k)
		}
	}
	if len(x) < s.MinProps {
		return w.BadField(field, x, fmt.Sprintf("%s does not have enough properties", pyRepr(x)))
	}
	if s.MaxProps > 0 && len(x) > s.MaxProps {
		return w.BadField(field, x, fmt.Sprintf("%s has too many properties", pyRepr(x)))
	}
	keys := make([]string, 0, len(x))
	for k := range x {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if p, ok := s.Properties[k]; ok {
			if err := p.Validate(k, x[k], w); err != nil {
				return err
			}
			continue
		}
		if s.Values != nil && (s.Keys == nil || s.Keys.MatchString(k)) {
			if err := s.Values.Validate(k, x[k], w); err != nil {
				return err
			}
			continue
		}
		if s.Closed {
			return w.BadField(k, x[k], fmt.Sprintf("Additional properties are not allowed (%s was unexpected)", pyRepr(k)))
		}
	}
	// After the keys: an unknown key is named before a missing choice.
	if len(s.AnyOf) > 0 && countSets(x, s.AnyOf) == 0 {
		return w.BadField(field, x, fmt.Sprintf("%s is not valid under any of the given schemas (it needs one of %s)", pyRepr(x), setsText(s.AnyOf)))
	}
	if len(s.OneOf) > 0 && countSets(x, s.OneOf) != 1 {
		return w.BadField(field, x, fmt.Sprintf("%s is not valid under exactly one of the given schemas (it needs exactly one of %s)", pyRepr(x), setsText(s.OneOf)))
	}
	return nil
}

func (s *Schema) allows(t string) bool {
	for _, x := range s.Types {
		if x == t {
			return true
		}
	}
	return false
}

func (s *Schema) typeOK(v any) bool {
	for _, t := range s.Types {
		if jsonIs(t, v) {
			return true
		}
	}
	return false
}

func jsonIs(t string, v any) bool {
	switch x := v.(type) {
	case nil:
		return t == "null"
	case bool:
		return t == "boolean"
	case string:
		return t == "string"
	case float64:
		return t == "number" || (t == "integer" && x == math.Trunc(x) && !math.IsInf(x, 0))
	case []any:
		return t == "array"
	case map[string]any:
		return t == "object"
	}
	return false
}

func inEnum(v any, enum []any) bool {
	b, _ := json.Marshal(v)
	for _, e := range enum {
		eb, _ := json.Marshal(e)
		if bytes.Equal(b, eb) {
			return true
		}
	}
	return false
}

func countSets(x map[string]any, sets [][]string) int {
	n := 0
	for _, set := range sets {
		all := true
		for _, k := range set {
			if _, ok := x[k]; !ok {
				all = false
			}
		}
		if all {
			n++
		}
	}
	return n
}

func setsText(sets [][]string) string {
	var parts []string
	for _, set := range sets {
		parts = append(parts, strings.Join(set, "+"))
	}
	return strings.Join(parts, ", ")
}

var uuidRE = regexp.MustCompile(`^(?i)[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$`)

func isUUID(s string) bool { return uuidRE.MatchString(s) }

func typeList(types []string) string {
	q := make([]string, len(types))
	for i, t := range types {
		q[i] = "'" + t + "'"
	}
	return strings.Join(q, ", ")
}

// pyRepr prints v as Python's repr, as jsonschema quotes values.
func pyRepr(v any) string {
	switch x := v.(type) {
	case string:
		return "'" + strings.ReplaceAll(x, "'", `\'`) + "'"
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = pyRepr(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = pyRepr(k) + ": " + pyRepr(x[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return Text(v)
}

// validateBody reads r's body, checks it against s, and gives the handler
// the same bytes to read.
func validateBody(r *http.Request, s *Schema, w Wording) error {
	raw, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxBodyBytes+1))
	if err != nil {
		return Errorf(http.StatusBadRequest, "reading the request body: %v", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	probe := r.Clone(r.Context())
	probe.Body = io.NopCloser(bytes.NewReader(raw))
	var v any
	if err := DecodeLoose(probe, &v); err != nil {
		return err
	}
	return s.Validate("body", v, w)
}

// schemaWording words body misfits for a service without its own
// Wording.
type schemaWording struct{}

func (schemaWording) BadField(field string, v any, reason string) error {
	return &Error{Status: http.StatusBadRequest, Field: field, Msg: fmt.Sprintf("Invalid input for field/attribute %s. Value: %s. %s", field, Text(v), reason)}
}

func (schemaWording) Missing(field string) error {
	return &Error{Status: http.StatusBadRequest, Field: field, Msg: fmt.Sprintf("Invalid input for field/attribute %s. Value: None. '%s' is a required property", field, field)}
}
