package network

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// bodies decodes {"<one>": {...}} or, for a bulk create, {"<many>": [...]}.
// many is "" where bulk is not supported; bulk reports which form came.
func bodies(r *http.Request, one, many string) (objs []api.Object, bulk bool, err error) {
	var top map[string]any
	if err := api.DecodeLoose(r, &top); err != nil {
		return nil, false, err
	}
	if inner, ok := top[one]; ok {
		m, ok := inner.(map[string]any)
		if !ok {
			return nil, false, badInput(one, "%s is not a dictionary", jsonText(inner))
		}
		return []api.Object{m}, false, nil
	}
	if list, ok := top[many]; ok && many != "" {
		items, ok := list.([]any)
		if !ok || len(items) == 0 {
			return nil, true, badInput(many, "a non-empty list of %s objects is required", one)
		}
		out := make([]api.Object, 0, len(items))
		for _, it := range items {
			m, ok := it.(map[string]any)
			if !ok {
				return nil, true, badInput(many, "%s is not a dictionary", jsonText(it))
			}
			// Neutron takes each item bare or wrapped as {one: {...}}
			// (prepare_request_body), which tempest's clients send.
			if inner, wrapped := m[one]; wrapped {
				if m, ok = inner.(map[string]any); !ok {
					return nil, true, badInput(many, "%s is not a dictionary", jsonText(inner))
				}
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
func (sp attrSpec) check(o api.Object, method string) error {
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

// neutronWording words bad input as Neutron does: "Invalid input for
// <field>. Reason: <reason>.", with neutron-lib's validator reasons.
type neutronWording struct{}

func (neutronWording) BadField(field string, _ any, reason string) error {
	return badInput(field, "%s", reason)
}

func (neutronWording) Missing(field string) error {
	return badInput(field, "'%s' is a required property", field)
}

func (neutronWording) NotString(v any) string { return "'" + api.Text(v) + "' is not a valid string" }

func (neutronWording) TooLong(s string, max int) string {
	return fmt.Sprintf("'%s' exceeds maximum length of %d", s, max)
}

func (neutronWording) NotBool(v any) string {
	return "'" + api.Text(v) + "' cannot be converted to boolean"
}

// input reads the attributes of one object in Neutron's words.
func input(o api.Object) *api.Input { return api.NewInput(o, neutronWording{}) }

// integer reads an optional integer attribute (a number or a string of
// digits); nil when absent or null.
func integer(in *api.Input, f string) *int { return in.Int(f, math.MinInt32, math.MaxInt32) }

// optStr reads an optional string attribute of an update: nil when absent.
func optStr(in *api.Input, f string, max int) *string {
	if !in.Has(f) {
		return nil
	}
	v := in.Str(f, "", max)
	return &v
}

// optBool reads an optional boolean attribute of an update: nil when
// absent.
func optBool(in *api.Input, f string, def bool) *bool {
	if !in.Has(f) {
		return nil
	}
	v := in.Bool(f, def)
	return &v
}

// project reads tenant_id/project_id (which must agree) and checks that
// the caller may create in that project.
func readProject(r *api.Input, p *api.Principal) string {
	t := r.Str("tenant_id", "", 255)
	pr := r.Str("project_id", "", 255)
	if r.Err != nil {
		return ""
	}
	if t != "" && pr != "" && t != pr {
		r.Fail(badInput("project_id", "'project_id' and 'tenant_id' do not match"))
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
		r.Fail(badInput("project_id", "'project_id' is required when the token has no project scope"))
		return ""
	}
	if !p.IsAdmin() && proj != p.ProjectID {
		// neutron-lib's _validate_privileges: a 400, before policy.
		r.Fail(store.Fault(store.KindInvalid, "HTTPBadRequest",
			"Specifying 'project_id' or 'tenant_id' other than the authenticated project in request requires admin or advsvc privileges"))
	}
	if !p.CanWrite(proj) {
		r.Fail(policyDenied("create"))
	}
	return proj
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
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
