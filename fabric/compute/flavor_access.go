package compute

import (
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// A flavor's access list (os-flavor-access) and extra specs.

var specKeyPattern = regexp.MustCompile(`^[a-zA-Z0-9-_:. ]{1,255}$`)

func accessView(tx *memdb.Txn, flavorID string) []any {
	out := []any{}
	rows := store.All[FlavorAccess](tx, tAccess, "flavor", flavorID)
	sort.Slice(rows, func(i, j int) bool { return rows[i].Project < rows[j].Project })
	for _, a := range rows {
		out = append(out, map[string]any{"flavor_id": a.FlavorID, "tenant_id": a.Project})
	}
	return out
}

func (s *Service) listFlavorAccess(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	f := store.Get[Flavor](tx, tFlavors, chi.URLParam(r, "id"))
	if f == nil {
		return flavorNotFound(chi.URLParam(r, "id"))
	}
	if f.Public {
		return notFound("Access list not available for public flavors.")
	}
	api.JSON(w, http.StatusOK, map[string]any{"flavor_access": accessView(tx, f.ID)})
	return nil
}

// flavorAction adds or removes a project's access; the rule the caller
// must pass depends on the action, so the role check is here.
func (s *Service) flavorAction(w http.ResponseWriter, r *http.Request) error {
	o, err := readRaw(r)
	if err != nil {
		return err
	}
	id := chi.URLParam(r, "id")
	var action string
	for _, a := range []string{"addTenantAccess", "removeTenantAccess"} {
		if _, ok := o[a]; ok {
			action = a
		}
	}
	if action == "" || len(o) != 1 {
		return badRequest("There is no such action: %s", strings.Join(api.Unexpected(o), ", "))
	}
	if err := requireAdmin(r, "os_compute_api:os-flavor-access:"+strings.TrimSuffix(action, "TenantAccess")+"_tenant_access"); err != nil {
		return err
	}
	inner, _ := o[action].(map[string]any)
	if inner == nil {
		return badField(action, o[action], "%s is not of type 'object'", api.Text(o[action]))
	}
	if err := allowOnly(inner, "tenant"); err != nil {
		return err
	}
	in := newInput(inner)
	tenant := str(in, "tenant", true, 1, 255)
	if in.Err != nil {
		return in.Err
	}
	c := flavorAccessCmd{ID: id, Project: tenant, Add: action == "addTenantAccess", PublicConflict: atLeast(r, 7)}
	tx, err := api.Propose(r.Context(), s.cfg.Repl, cmdFlavorAccess, c, nil)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"flavor_access": accessView(tx, id)})
	return nil
}

// Extra specs.

func (s *Service) specsFlavor(r *http.Request) (*Flavor, error) {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return nil, err
	}
	return visibleFlavor(tx, principal(r), chi.URLParam(r, "id"))
}

func (s *Service) listExtraSpecs(w http.ResponseWriter, r *http.Request) error {
	f, err := s.specsFlavor(r)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"extra_specs": copyMap(f.ExtraSpecs)})
	return nil
}

func (s *Service) showExtraSpec(w http.ResponseWriter, r *http.Request) error {
	f, err := s.specsFlavor(r)
	if err != nil {
		return err
	}
	key := chi.URLParam(r, "key")
	v, ok := f.ExtraSpecs[key]
	if !ok {
		return notFound("Flavor %s has no extra specs with key %s.", f.ID, key)
	}
	api.JSON(w, http.StatusOK, map[string]any{key: v})
	return nil
}

// standardClasses are the placement resource classes a flavor may
// override with resources:<CLASS>=<amount> (Nova's standard classes that
// a server can ask for).
var standardClasses = map[string]bool{
	"VCPU": true, "MEMORY_MB": true, "DISK_GB": true, "PCPU": true, "VGPU": true, "VGPU_DISPLAY_HEAD": true,
	"SRIOV_NET_VF": true, "NET_BW_EGR_KILOBIT_PER_SEC": true, "NET_BW_IGR_KILOBIT_PER_SEC": true, "MEM_ENCRYPTION_CONTEXT": true,
}

var customClassPattern = regexp.MustCompile(`^CUSTOM_[A-Z0-9_]+$`)

// checkResourceSpec checks a resources:<CLASS> extra spec as Nova's
// extra-spec validation does: a known class and a whole amount. A custom
// class is a bare-metal node's (Ironic's flavors): a server takes one
// whole node, so its amount is 1 (or 0, which asks for nothing).
func checkResourceSpec(key, value string) error {
	class, ok := strings.CutPrefix(key, "resources:")
	if !ok {
		return nil
	}
	custom := customClassPattern.MatchString(class)
	if !custom && !standardClasses[class] {
		return badRequest("Validation failed; extra spec %s: %s is not a standard resource class and not a custom one (CUSTOM_[A-Z0-9_]+).", key, class)
	}
	n, err := strconv.Atoi(strings.TrimSpace(value))
	switch {
	case err != nil || n < 0:
		return badRequest("Validation failed; extra spec %s: value %q is not a whole number 0 or more.", key, value)
	case custom && n > 1:
		return badRequest("Validation failed; extra spec %s: value %q: a bare-metal resource class is asked for as 1 (one whole node) or 0.", key, value)
	}
	return nil
}

// readSpecs reads {key: value} extra specs; numbers and booleans become
// strings, as Nova stores them.
func readSpecs(field string, v any) (map[string]string, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, badField(field, v, "%s is not of type 'object'", api.Text(v))
	}
	out := map[string]string{}
	for k, x := range m {
		if !specKeyPattern.MatchString(k) {
			return nil, badField(field, v, "'%s' does not match any of the regexes: '^[a-zA-Z0-9-_:. ]{1,255}$'", k)
		}
		var sv string
		switch y := x.(type) {
		case string:
			sv = y
		case float64, bool:
			sv = api.Text(y)
		default:
			return nil, badField(field, v, "%s is not of type 'string', 'number', 'boolean'", api.Text(x))
		}
		if len(sv) > 255 {
			return nil, badField(field, v, "'%s' is too long", sv)
		}
		if err := checkResourceSpec(k, sv); err != nil {
			return nil, err
		}
		out[k] = sv
	}
	return out, nil
}

func (s *Service) setExtraSpecs(w http.ResponseWriter, r *http.Request) error {
	top, err := readRaw(r)
	if err != nil {
		return err
	}
	if err := allowOnly(top, "extra_specs"); err != nil {
		return err
	}
	if _, ok := top["extra_specs"]; !ok {
		return missing("extra_specs")
	}
	specs, err := readSpecs("extra_specs", top["extra_specs"])
	if err != nil {
		return err
	}
	if atLeast(r, 86) {
		if err := validateSpecs(specs); err != nil {
			return err
		}
	}
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdFlavorSpecs, flavorSpecsCmd{ID: chi.URLParam(r, "id"), Set: specs}, nil); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"extra_specs": specs})
	return nil
}

func (s *Service) updateExtraSpec(w http.ResponseWriter, r *http.Request) error {
	key := chi.URLParam(r, "key")
	top, err := readRaw(r)
	if err != nil {
		return err
	}
	specs, err := readSpecs("extra_specs", map[string]any(top))
	if err != nil {
		return err
	}
	if len(specs) > 1 {
		return badRequest("Request body contains too many items")
	}
	if _, ok := specs[key]; !ok {
		return badRequest("Request body and URI mismatch")
	}
	if atLeast(r, 86) {
		if err := validateSpecs(specs); err != nil {
			return err
		}
	}
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdFlavorSpecs, flavorSpecsCmd{ID: chi.URLParam(r, "id"), Set: specs}, nil); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{key: specs[key]})
	return nil
}

func (s *Service) deleteExtraSpec(w http.ResponseWriter, r *http.Request) error {
	c := flavorSpecsCmd{ID: chi.URLParam(r, "id"), Unset: chi.URLParam(r, "key")}
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdFlavorSpecs, c, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
