package compute

import (
	"math"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

var (
	flavorIDPattern = regexp.MustCompile(`^[a-zA-Z0-9. _-]+$`)
	specKeyPattern  = regexp.MustCompile(`^[a-zA-Z0-9-_:. ]{1,255}$`)
)

// canUseFlavor: public flavors are everyone's; a private one is its
// access list's and the admins'.
func canUseFlavor(tx *memdb.Txn, p *api.Principal, f *Flavor) bool {
	if f.Public || p.IsAdmin() {
		return true
	}
	return p.ProjectID != "" && store.Get[FlavorAccess](tx, tAccess, f.ID+"/"+p.ProjectID) != nil
}

func visibleFlavor(tx *memdb.Txn, p *api.Principal, id string) (*Flavor, error) {
	f := store.Get[Flavor](tx, tFlavors, id)
	if f == nil || !canUseFlavor(tx, p, f) {
		return nil, flavorNotFound(id)
	}
	return f, nil
}

func (s *Service) flavorView(r *http.Request, f *Flavor, detail bool) map[string]any {
	v := map[string]any{"id": f.ID, "name": f.Name, "links": s.links(r, "flavors", f.ID)}
	if atLeast(r, 55) {
		v["description"] = nil
		if f.Description != "" {
			v["description"] = f.Description
		}
	}
	if !detail {
		return v
	}
	var swap any = f.Swap
	if f.Swap == 0 && !atLeast(r, 75) {
		swap = ""
	}
	v["ram"], v["vcpus"], v["disk"], v["swap"] = f.RAM, f.VCPUs, f.Disk, swap
	v["OS-FLV-EXT-DATA:ephemeral"] = f.Ephemeral
	v["OS-FLV-DISABLED:disabled"] = false
	v["os-flavor-access:is_public"] = f.Public
	v["rxtx_factor"] = f.RxTxFactor
	if atLeast(r, 61) {
		specs := map[string]string{}
		for k, x := range f.ExtraSpecs {
			specs[k] = x
		}
		v["extra_specs"] = specs
	}
	return v
}

func (s *Service) listFlavors(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tx, ok := s.read(w, r)
		if !ok {
			return
		}
		p := principal(r)
		q := r.URL.Query()
		minRAM, minDisk := 0, 0
		for _, f := range []struct {
			name string
			dst  *int
		}{{"minRam", &minRAM}, {"minDisk", &minDisk}} {
			if v := q.Get(f.name); v != "" {
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 {
					s.fail(w, r, badRequest("Invalid %s filter [%s]", f.name, v))
					return
				}
				*f.dst = n
			}
		}
		// is_public: admins choose (default public ones and their
		// project's private ones; "none" for all); others always see
		// the public flavors and those shared with their project.
		var public *bool
		t := true
		public = &t
		if v := q.Get("is_public"); v != "" && p.IsAdmin() {
			if strings.EqualFold(v, "none") {
				public = nil
			} else if b, ok := queryBool(v); ok {
				public = &b
			} else {
				s.fail(w, r, badRequest("Invalid is_public filter [%s]", v))
				return
			}
		}
		var rows []*Flavor
		for _, f := range store.All[Flavor](tx, tFlavors, "id") {
			switch {
			case f.RAM < minRAM || f.Disk < minDisk:
				continue
			case !p.IsAdmin() && !canUseFlavor(tx, p, f):
				continue
			case public != nil && *public && !f.Public && !canUseFlavor(tx, &api.Principal{ProjectID: p.ProjectID}, f):
				continue
			case public != nil && !*public && f.Public:
				continue
			}
			rows = append(rows, f)
		}
		sortKey, sortDir := q.Get("sort_key"), q.Get("sort_dir")
		if sortKey == "" {
			sortKey = "flavorid"
		}
		if sortDir == "" {
			sortDir = "asc"
		}
		keyOf := map[string]func(f *Flavor) any{
			"flavorid": func(f *Flavor) any { return f.ID }, "id": func(f *Flavor) any { return f.ID },
			"name": func(f *Flavor) any { return f.Name }, "memory_mb": func(f *Flavor) any { return f.RAM },
			"vcpus": func(f *Flavor) any { return f.VCPUs }, "root_gb": func(f *Flavor) any { return f.Disk },
			"ephemeral_gb": func(f *Flavor) any { return f.Ephemeral }, "swap": func(f *Flavor) any { return f.Swap },
			"rxtx_factor": func(f *Flavor) any { return f.RxTxFactor }, "created_at": func(f *Flavor) any { return f.Created.Unix() },
		}[sortKey]
		if keyOf == nil {
			s.fail(w, r, badRequest("Invalid input for query parameters sort_key. Value: %s.", sortKey))
			return
		}
		if sortDir != "asc" && sortDir != "desc" {
			s.fail(w, r, badRequest("Invalid input for query parameters sort_dir. Value: %s.", sortDir))
			return
		}
		sort.SliceStable(rows, func(i, j int) bool {
			c := compareAny(keyOf(rows[i]), keyOf(rows[j]))
			if c == 0 {
				c = strings.Compare(rows[i].ID, rows[j].ID)
			}
			if sortDir == "desc" {
				return c > 0
			}
			return c < 0
		})
		ids := make([]string, len(rows))
		for i, f := range rows {
			ids[i] = f.ID
		}
		from, to, next, err := page(q, ids)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		out := make([]any, 0, to-from)
		for _, f := range rows[from:to] {
			out = append(out, s.flavorView(r, f, detail))
		}
		body := map[string]any{"flavors": out}
		if next != "" {
			body["flavors_links"] = []any{link("next", s.nextHref(r, next))}
		}
		api.JSON(w, http.StatusOK, body)
	}
}

func compareAny(a, b any) int {
	switch x := a.(type) {
	case string:
		return strings.Compare(x, b.(string))
	case int:
		return x - b.(int)
	case int64:
		y := b.(int64)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	case float64:
		y := b.(float64)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
	}
	return 0
}

// page applies limit and marker (an id of ids) to a sorted list; next is
// the marker of the next page, "" when this page reaches the end.
func page(q url.Values, ids []string) (from, to int, next string, err error) {
	from, to = 0, len(ids)
	if m := q.Get("marker"); m != "" {
		at := -1
		for i, id := range ids {
			if id == m {
				at = i
				break
			}
		}
		if at < 0 {
			return 0, 0, "", badRequest("marker [%s] not found", m)
		}
		from = at + 1
	}
	limit := 1000
	if l := q.Get("limit"); l != "" {
		n, e := strconv.Atoi(l)
		if e != nil || n < 0 {
			return 0, 0, "", badRequest("Invalid input for query parameters limit. Value: %s. '%s' does not match '^[0-9]*$'", l, l)
		}
		limit = min(n, 1000)
	}
	if to-from > limit {
		to = from + limit
	}
	if q.Get("limit") != "" && to-from == limit && limit > 0 {
		next = ids[to-1]
	}
	return from, to, next, nil
}

func (s *Service) nextHref(r *http.Request, marker string) string {
	q := r.URL.Query()
	q.Set("marker", marker)
	return s.apiURL(r) + strings.TrimPrefix(r.URL.Path, "/v2.1") + "?" + q.Encode()
}

func (s *Service) showFlavor(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	f, err := visibleFlavor(tx, principal(r), chi.URLParam(r, "id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	api.JSON(w, http.StatusOK, map[string]any{"flavor": s.flavorView(r, f, true)})
}

func (s *Service) createFlavor(w http.ResponseWriter, r *http.Request) {
	if !requireAdmin(w, r, "os_compute_api:os-flavor-manage:create") {
		return
	}
	o, _, err := body(r, "flavor")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	fields := []string{"name", "id", "ram", "vcpus", "disk", "OS-FLV-EXT-DATA:ephemeral", "swap", "rxtx_factor", "os-flavor-access:is_public"}
	if atLeast(r, 55) {
		fields = append(fields, "description")
	}
	if err := allowOnly(o, fields...); err != nil {
		s.fail(w, r, err)
		return
	}
	rd := &reader{o: o}
	f := Flavor{Created: s.now(), Public: true, RxTxFactor: 1}
	f.Name = rd.name("name", true)
	f.RAM = rd.integer("ram", true, 0, 1, math.MaxInt32)
	f.VCPUs = rd.integer("vcpus", true, 0, 1, math.MaxInt32)
	f.Disk = rd.integer("disk", true, 0, 0, math.MaxInt32)
	f.Ephemeral = rd.integer("OS-FLV-EXT-DATA:ephemeral", false, 0, 0, math.MaxInt32)
	if v, ok := o["swap"]; ok && v != "" {
		f.Swap = rd.integer("swap", false, 0, 0, math.MaxInt32)
	}
	if v, ok := o["rxtx_factor"]; ok && v != nil {
		x, isNum := v.(float64)
		if !isNum {
			if sv, isStr := v.(string); isStr {
				n, err := strconv.ParseFloat(sv, 64)
				x, isNum = n, err == nil
			}
		}
		if !isNum || x <= 0 || x > math.MaxFloat32 {
			rd.fail(badField("rxtx_factor", v, "%s is not a number greater than 0", valueText(v)))
		}
		f.RxTxFactor = x
	}
	f.Public = rd.boolean("os-flavor-access:is_public", true)
	if v, ok := o["description"]; ok && v != nil {
		f.Description = rd.str("description", false, 0, 65535)
	}
	if v, ok := o["id"]; ok && v != nil && v != "auto" {
		switch id := v.(type) {
		case string:
			if id == "" || len(id) > 255 || !flavorIDPattern.MatchString(id) || strings.TrimSpace(id) != id {
				rd.fail(badField("id", id, "'%s' does not match '^(?! )[a-zA-Z0-9. _-]+(?<! )$'", id))
			}
			f.ID = id
		case float64:
			f.ID = valueText(id)
		default:
			rd.fail(badField("id", v, "%s is not of type 'string', 'null'", valueText(v)))
		}
	}
	if rd.err != nil {
		s.fail(w, r, rd.err)
		return
	}
	if f.ID == "" {
		f.ID = api.NewUUID()
	}
	c := flavorCreateCmd{Flavor: f}
	var row Flavor
	if err := s.propose(r.Context(), cmdFlavorCreate, c, &row); err != nil {
		s.fail(w, r, err)
		return
	}
	api.JSON(w, http.StatusOK, map[string]any{"flavor": s.flavorView(r, &row, true)})
}

func (s *Service) updateFlavor(w http.ResponseWriter, r *http.Request) {
	if !atLeast(r, 55) {
		writeError(w, r, api.Problem{Status: http.StatusMethodNotAllowed, Msg: "The method is not allowed for the requested URL."})
		return
	}
	if !requireAdmin(w, r, "os_compute_api:os-flavor-manage:update") {
		return
	}
	o, _, err := body(r, "flavor")
	if err == nil {
		err = allowOnly(o, "description")
	}
	if err == nil && !(&reader{o: o}).has("description") {
		err = badRequest("Invalid input for field/attribute flavor. Value: %s. 'description' is a required property", valueText(map[string]any(o)))
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rd := &reader{o: o}
	desc := ""
	if o["description"] != nil {
		desc = rd.str("description", false, 0, 65535)
	}
	if rd.err != nil {
		s.fail(w, r, rd.err)
		return
	}
	var row Flavor
	if err := s.propose(r.Context(), cmdFlavorUpdate, flavorUpdateCmd{ID: chi.URLParam(r, "id"), Description: &desc}, &row); err != nil {
		s.fail(w, r, err)
		return
	}
	api.JSON(w, http.StatusOK, map[string]any{"flavor": s.flavorView(r, &row, true)})
}

func (s *Service) deleteFlavor(w http.ResponseWriter, r *http.Request) {
	if !requireAdmin(w, r, "os_compute_api:os-flavor-manage:delete") {
		return
	}
	if err := s.propose(r.Context(), cmdFlavorDelete, idCmd{ID: chi.URLParam(r, "id")}, nil); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// Flavor access.

func accessView(tx *memdb.Txn, flavorID string) []any {
	out := []any{}
	rows := store.All[FlavorAccess](tx, tAccess, "flavor", flavorID)
	sort.Slice(rows, func(i, j int) bool { return rows[i].Project < rows[j].Project })
	for _, a := range rows {
		out = append(out, map[string]any{"flavor_id": a.FlavorID, "tenant_id": a.Project})
	}
	return out
}

func (s *Service) listFlavorAccess(w http.ResponseWriter, r *http.Request) {
	if !requireAdmin(w, r, "os_compute_api:os-flavor-access") {
		return
	}
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	f := store.Get[Flavor](tx, tFlavors, chi.URLParam(r, "id"))
	if f == nil {
		s.fail(w, r, flavorNotFound(chi.URLParam(r, "id")))
		return
	}
	if f.Public {
		s.fail(w, r, notFound("Access list not available for public flavors."))
		return
	}
	api.JSON(w, http.StatusOK, map[string]any{"flavor_access": accessView(tx, f.ID)})
}

func (s *Service) flavorAction(w http.ResponseWriter, r *http.Request) {
	o, err := rawBody(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	id := chi.URLParam(r, "id")
	var action string
	for _, a := range []string{"addTenantAccess", "removeTenantAccess"} {
		if _, ok := o[a]; ok {
			action = a
		}
	}
	if action == "" || len(o) != 1 {
		s.fail(w, r, badRequest("There is no such action: %s", strings.Join(keys(o), ", ")))
		return
	}
	if !requireAdmin(w, r, "os_compute_api:os-flavor-access:"+strings.TrimSuffix(action, "TenantAccess")+"_tenant_access") {
		return
	}
	inner, _ := o[action].(map[string]any)
	if inner == nil {
		s.fail(w, r, badField(action, o[action], "%s is not of type 'object'", valueText(o[action])))
		return
	}
	if err := allowOnly(inner, "tenant"); err != nil {
		s.fail(w, r, err)
		return
	}
	rd := &reader{o: inner}
	tenant := rd.str("tenant", true, 1, 255)
	if rd.err != nil {
		s.fail(w, r, rd.err)
		return
	}
	c := flavorAccessCmd{ID: id, Project: tenant, Add: action == "addTenantAccess", PublicConflict: atLeast(r, 7)}
	if err := s.propose(r.Context(), cmdFlavorAccess, c, nil); err != nil {
		s.fail(w, r, err)
		return
	}
	tx, err := s.afterWrite(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	api.JSON(w, http.StatusOK, map[string]any{"flavor_access": accessView(tx, id)})
}

func keys(o map[string]any) []string {
	out := make([]string, 0, len(o))
	for k := range o {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Extra specs.

func (s *Service) specsFlavor(w http.ResponseWriter, r *http.Request) (*Flavor, bool) {
	tx, ok := s.read(w, r)
	if !ok {
		return nil, false
	}
	f, err := visibleFlavor(tx, principal(r), chi.URLParam(r, "id"))
	if err != nil {
		s.fail(w, r, err)
		return nil, false
	}
	return f, true
}

func (s *Service) listExtraSpecs(w http.ResponseWriter, r *http.Request) {
	f, ok := s.specsFlavor(w, r)
	if !ok {
		return
	}
	specs := map[string]string{}
	for k, v := range f.ExtraSpecs {
		specs[k] = v
	}
	api.JSON(w, http.StatusOK, map[string]any{"extra_specs": specs})
}

func (s *Service) showExtraSpec(w http.ResponseWriter, r *http.Request) {
	f, ok := s.specsFlavor(w, r)
	if !ok {
		return
	}
	key := chi.URLParam(r, "key")
	v, ok := f.ExtraSpecs[key]
	if !ok {
		s.fail(w, r, notFound("Flavor %s has no extra specs with key %s.", f.ID, key))
		return
	}
	api.JSON(w, http.StatusOK, map[string]any{key: v})
}

// readSpecs reads {key: value} extra specs; numbers and booleans become
// strings, as Nova stores them.
func readSpecs(field string, v any) (map[string]string, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, badField(field, v, "%s is not of type 'object'", valueText(v))
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
			sv = valueText(y)
		default:
			return nil, badField(field, v, "%s is not of type 'string', 'number', 'boolean'", valueText(x))
		}
		if len(sv) > 255 {
			return nil, badField(field, v, "'%s' is too long", sv)
		}
		out[k] = sv
	}
	return out, nil
}

func (s *Service) setExtraSpecs(w http.ResponseWriter, r *http.Request) {
	if !requireAdmin(w, r, "os_compute_api:os-flavor-extra-specs:create") {
		return
	}
	top, err := rawBody(r)
	if err == nil {
		err = allowOnly(top, "extra_specs")
	}
	var specs map[string]string
	if err == nil {
		if _, ok := top["extra_specs"]; !ok {
			err = badRequest("Invalid input for field/attribute extra_specs. Value: None. 'extra_specs' is a required property")
		} else {
			specs, err = readSpecs("extra_specs", top["extra_specs"])
		}
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.propose(r.Context(), cmdFlavorSpecs, flavorSpecsCmd{ID: chi.URLParam(r, "id"), Set: specs}, nil); err != nil {
		s.fail(w, r, err)
		return
	}
	api.JSON(w, http.StatusOK, map[string]any{"extra_specs": specs})
}

func (s *Service) updateExtraSpec(w http.ResponseWriter, r *http.Request) {
	if !requireAdmin(w, r, "os_compute_api:os-flavor-extra-specs:update") {
		return
	}
	key := chi.URLParam(r, "key")
	top, err := rawBody(r)
	var specs map[string]string
	if err == nil {
		specs, err = readSpecs("extra_specs", map[string]any(top))
	}
	if err == nil {
		switch {
		case len(specs) > 1:
			err = badRequest("Request body contains too many items")
		case specs[key] == "" && len(specs) == 1:
			if _, ok := specs[key]; !ok {
				err = badRequest("Request body and URI mismatch")
			}
		case len(specs) == 0:
			err = badRequest("Request body and URI mismatch")
		}
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.propose(r.Context(), cmdFlavorSpecs, flavorSpecsCmd{ID: chi.URLParam(r, "id"), Set: specs}, nil); err != nil {
		s.fail(w, r, err)
		return
	}
	api.JSON(w, http.StatusOK, map[string]any{key: specs[key]})
}

func (s *Service) deleteExtraSpec(w http.ResponseWriter, r *http.Request) {
	if !requireAdmin(w, r, "os_compute_api:os-flavor-extra-specs:delete") {
		return
	}
	c := flavorSpecsCmd{ID: chi.URLParam(r, "id"), Unset: chi.URLParam(r, "key")}
	if err := s.propose(r.Context(), cmdFlavorSpecs, c, nil); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}
