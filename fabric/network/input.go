package network

import (
	"encoding/json"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/rackstack/rackstack/fabric/api"

	"github.com/rackstack/rackstack/fabric/store"
)

// obj is a decoded JSON object from a request body, read attribute by
// attribute so that every bad value is reported with its name.
type obj map[string]any

// bodies decodes {"<one>": {...}} or, for a bulk create, {"<many>": [...]}.
// many is "" where bulk is not supported; bulk reports which form came.
func bodies(r *http.Request, one, many string) (objs []obj, bulk bool, err error) {
	var top map[string]any
	if err := api.DecodeLoose(r, &top); err != nil {
		return nil, false, err
	}
	if inner, ok := top[one]; ok {
		m, ok := inner.(map[string]any)
		if !ok {
			return nil, false, badInput(one, "%s is not a dictionary", jsonText(inner))
		}
		return []obj{m}, false, nil
	}
	if list, ok := top[many]; ok && many != "" {
		items, ok := list.([]any)
		if !ok || len(items) == 0 {
			return nil, true, badInput(many, "a non-empty list of %s objects is required", one)
		}
		out := make([]obj, 0, len(items))
		for _, it := range items {
			m, ok := it.(map[string]any)
			if !ok {
				return nil, true, badInput(many, "%s is not a dictionary", jsonText(it))
			}
			out = append(out, m)
		}
		return out, true, nil
	}
	return nil, false, store.Fault(store.KindInvalid, "HTTPBadRequest", "Resource body required")
}

// attrSpec says which attributes a resource takes in a POST and in a PUT.
type attrSpec map[string]struct{ post, put bool }

// newAttrSpec builds an attrSpec from space-separated attribute names:
// those a POST and a PUT may set, those only a POST may set, and the
// read-only ones (named so that setting them says so).
func newAttrSpec(both, postOnly, readOnly string) attrSpec {
	sp := attrSpec{}
	for _, a := range strings.Fields(both) {
		sp[a] = struct{ post, put bool }{true, true}
	}
	for _, a := range strings.Fields(postOnly) {
		sp[a] = struct{ post, put bool }{true, false}
	}
	for _, a := range strings.Fields(readOnly) {
		sp[a] = struct{ post, put bool }{false, false}
	}
	return sp
}

// check refuses attributes the resource does not have or that the method
// may not set, in Neutron's words.
func (sp attrSpec) check(o obj, method string) error {
	var unknown []string
	for k := range o {
		a, ok := sp[k]
		switch {
		case !ok:
			unknown = append(unknown, k)
		case method == http.MethodPost && !a.post:
			return badInput(k, "Attribute '%s' not allowed in POST", k)
		case method == http.MethodPut && !a.put:
			return badInput(k, "Cannot update read-only attribute %s", k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return store.Fault(store.KindInvalid, "HTTPBadRequest", "Unrecognized attribute(s) '%s'", strings.Join(unknown, ", "))
	}
	return nil
}

// reader reads attributes of one object and keeps the first error, so a
// handler reads in a row and checks once.
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

func (r *reader) isNull(f string) bool { v, ok := r.o[f]; return ok && v == nil }

// str reads a string attribute of at most max characters (def when absent).
func (r *reader) str(f, def string, max int) string {
	v, ok := r.o[f]
	if !ok || r.err != nil {
		return def
	}
	if v == nil {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		r.fail(badInput(f, "%s is not a valid string", jsonText(v)))
		return def
	}
	if max > 0 && utf8.RuneCountInString(s) > max {
		r.fail(badInput(f, "'%s' exceeds maximum length of %d", s, max))
		return def
	}
	return s
}

// boolean reads a boolean attribute; like Neutron it takes "true"/"false"
// strings and 0/1 too.
func (r *reader) boolean(f string, def bool) bool {
	v, ok := r.o[f]
	if !ok || r.err != nil {
		return def
	}
	b, ok := toBool(v)
	if !ok {
		r.fail(badInput(f, "'%s' cannot be converted to boolean", textOf(v)))
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
	case float64:
		if x == 0 || x == 1 {
			return x == 1, true
		}
	}
	return false, false
}

// integer reads an optional integer attribute (a number or a string of
// digits); nil when absent or null.
func (r *reader) integer(f string) *int {
	v, ok := r.o[f]
	if !ok || v == nil || r.err != nil {
		return nil
	}
	n, ok := toInt(v)
	if !ok {
		r.fail(badInput(f, "'%s' is not an integer", textOf(v)))
		return nil
	}
	return &n
}

func toInt(v any) (int, bool) {
	switch x := v.(type) {
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > 1<<31 {
			return 0, false
		}
		return int(x), true
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(x))
		return n, err == nil
	}
	return 0, false
}

// list reads an optional list attribute; null reads as empty.
func (r *reader) list(f string) []any {
	v, ok := r.o[f]
	if !ok || v == nil || r.err != nil {
		return nil
	}
	l, ok := v.([]any)
	if !ok {
		r.fail(badInput(f, "'%s' is not a list", textOf(v)))
		return nil
	}
	return l
}

// strs reads an optional list of strings.
func (r *reader) strs(f string) []string {
	out := []string{}
	for _, x := range r.list(f) {
		s, ok := x.(string)
		if !ok {
			r.fail(badInput(f, "'%s' is not a valid string", textOf(x)))
			return nil
		}
		out = append(out, s)
	}
	return out
}

// dicts reads an optional list of objects.
func (r *reader) dicts(f string) []obj {
	var out []obj
	for _, x := range r.list(f) {
		m, ok := x.(map[string]any)
		if !ok {
			r.fail(badInput(f, "'%s' is not a dictionary", textOf(x)))
			return nil
		}
		out = append(out, m)
	}
	return out
}

// project reads tenant_id/project_id (which must agree) and checks that
// the caller may create in that project.
func (r *reader) project(p *api.Principal) string {
	t := r.str("tenant_id", "", 255)
	pr := r.str("project_id", "", 255)
	if r.err != nil {
		return ""
	}
	if t != "" && pr != "" && t != pr {
		r.fail(badInput("project_id", "'project_id' and 'tenant_id' do not match"))
		return ""
	}
	proj := pr
	if proj == "" {
		proj = t
	}
	if proj == "" {
		proj = p.ProjectID
	}
	if proj == "" {
		r.fail(badInput("project_id", "'project_id' is required when the token has no project scope"))
		return ""
	}
	if !p.IsAdmin() && proj != p.ProjectID {
		r.fail(policyDenied("create:project_id"))
	}
	if !p.CanWrite(proj) {
		r.fail(policyDenied("create"))
	}
	return proj
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// textOf prints a value the way Neutron's messages quote it.
func textOf(v any) string {
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
	}
	return jsonText(v)
}

// noDuplicates checks that a list has no duplicates.
func noDuplicates(field string, items []string) error {
	seen := map[string]bool{}
	for _, s := range items {
		if seen[s] {
			return badInput(field, "Duplicate items in the list: '%s'", s)
		}
		seen[s] = true
	}
	return nil
}
