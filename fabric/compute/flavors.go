package compute

import (
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

var flavorIDPattern = regexp.MustCompile(`^[a-zA-Z0-9. _-]+$`)

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
		v["extra_specs"] = copyMap(f.ExtraSpecs)
	}
	return v
}

// flavorFilter is what a flavor list asks for: minRam, minDisk and, for
// admins, is_public (nil: all).
type flavorFilter struct {
	minRAM, minDisk int
	public          *bool
}

func readFlavorFilter(p *api.Principal, q url.Values) (flavorFilter, error) {
	t := true
	ff := flavorFilter{public: &t}
	for _, f := range []struct {
		name string
		dst  *int
	}{{"minRam", &ff.minRAM}, {"minDisk", &ff.minDisk}} {
		if v := q.Get(f.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return ff, badRequest("Invalid %s filter [%s]", f.name, v)
			}
			*f.dst = n
		}
	}
	// is_public: admins choose (default public ones and their project's
	// private ones; "none" for all); others always see the public
	// flavors and those shared with their project.
	if v := q.Get("is_public"); v != "" && p.IsAdmin() {
		if strings.EqualFold(v, "none") {
			ff.public = nil
		} else if b, ok := queryBool(v); ok {
			ff.public = &b
		} else {
			return ff, badRequest("Invalid is_public filter [%s]", v)
		}
	}
	return ff, nil
}

func (ff flavorFilter) keeps(tx *memdb.Txn, p *api.Principal, f *Flavor) bool {
	switch {
	case f.RAM < ff.minRAM || f.Disk < ff.minDisk:
		return false
	case !p.IsAdmin() && !canUseFlavor(tx, p, f):
		return false
	case ff.public != nil && *ff.public && !f.Public && !canUseFlavor(tx, &api.Principal{ProjectID: p.ProjectID}, f):
		return false
	case ff.public != nil && !*ff.public && f.Public:
		return false
	}
	return true
}

// flavorSortKeys are the sort_key values of a flavor list.
var flavorSortKeys = map[string]func(f *Flavor) any{
	"flavorid": func(f *Flavor) any { return f.ID }, "id": func(f *Flavor) any { return f.ID },
	"name": func(f *Flavor) any { return f.Name }, "memory_mb": func(f *Flavor) any { return f.RAM },
	"vcpus": func(f *Flavor) any { return f.VCPUs }, "root_gb": func(f *Flavor) any { return f.Disk },
	"ephemeral_gb": func(f *Flavor) any { return f.Ephemeral }, "swap": func(f *Flavor) any { return f.Swap },
	"rxtx_factor": func(f *Flavor) any { return f.RxTxFactor }, "created_at": func(f *Flavor) any { return f.Created.Unix() },
}

func (s *Service) listFlavors(detail bool) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p := principal(r)
		q := r.URL.Query()
		ff, err := readFlavorFilter(p, q)
		if err != nil {
			return err
		}
		sortKey, sortDir := q.Get("sort_key"), q.Get("sort_dir")
		if sortKey == "" {
			sortKey = "flavorid"
		}
		if sortDir == "" {
			sortDir = "asc"
		}
		keyOf := flavorSortKeys[sortKey]
		if keyOf == nil {
			return badRequest("Invalid input for query parameters sort_key. Value: %s.", sortKey)
		}
		if sortDir != "asc" && sortDir != "desc" {
			return badRequest("Invalid input for query parameters sort_dir. Value: %s.", sortDir)
		}
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		var rows []*Flavor
		for _, f := range store.All[Flavor](tx, tFlavors, "id") {
			if ff.keeps(tx, p, f) {
				rows = append(rows, f)
			}
		}
		sortRows(rows, keyOf, func(f *Flavor) string { return f.ID }, sortDir == "desc")
		ids := make([]string, len(rows))
		for i, f := range rows {
			ids[i] = f.ID
		}
		from, to, next, err := page(q, ids)
		if err != nil {
			return err
		}
		out := make([]any, 0, to-from)
		for _, f := range rows[from:to] {
			out = append(out, s.flavorView(r, f, detail))
		}
		api.JSON(w, http.StatusOK, s.paged(r, "flavors", out, next))
		return nil
	}
}

func (s *Service) showFlavor(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	f, err := visibleFlavor(tx, principal(r), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"flavor": s.flavorView(r, f, true)})
	return nil
}

func (s *Service) createFlavor(w http.ResponseWriter, r *http.Request) error {
	o, _, err := readBody(r, "flavor")
	if err != nil {
		return err
	}
	fields := []string{"name", "id", "ram", "vcpus", "disk", "OS-FLV-EXT-DATA:ephemeral", "swap", "rxtx_factor", "os-flavor-access:is_public"}
	if atLeast(r, 55) {
		fields = append(fields, "description")
	}
	if err := allowOnly(o, fields...); err != nil {
		return err
	}
	in := newInput(o)
	f := Flavor{Created: s.now(), Public: true, RxTxFactor: 1}
	f.Name = name(in, "name", true)
	f.RAM = integer(in, "ram", true, 0, 1, math.MaxInt32)
	f.VCPUs = integer(in, "vcpus", true, 0, 1, math.MaxInt32)
	f.Disk = integer(in, "disk", true, 0, 0, math.MaxInt32)
	f.Ephemeral = integer(in, "OS-FLV-EXT-DATA:ephemeral", false, 0, 0, math.MaxInt32)
	if v, ok := o["swap"]; ok && v != "" {
		f.Swap = integer(in, "swap", false, 0, 0, math.MaxInt32)
	}
	if v, ok := o["rxtx_factor"]; ok && v != nil {
		f.RxTxFactor = rxtxFactor(in, v)
	}
	f.Public = boolean(in, "os-flavor-access:is_public", true)
	f.Description = optStr(in, "description", 65535)
	f.ID = flavorID(in, o["id"])
	if in.Err != nil {
		return in.Err
	}
	if f.ID == "" {
		f.ID = api.NewUUID()
	}
	var row Flavor
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdFlavorCreate, flavorCreateCmd{Flavor: f}, &row); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"flavor": s.flavorView(r, &row, true)})
	return nil
}

// rxtxFactor reads a positive number (or a string of one).
func rxtxFactor(in *api.Input, v any) float64 {
	x, isNum := v.(float64)
	if !isNum {
		if sv, isStr := v.(string); isStr {
			n, err := strconv.ParseFloat(sv, 64)
			x, isNum = n, err == nil
		}
	}
	if !isNum || x <= 0 || x > math.MaxFloat32 {
		in.Fail(badField("rxtx_factor", v, "%s is not a number greater than 0", api.Text(v)))
	}
	return x
}

// flavorID reads a flavor's requested id: a string, a number, or
// nothing, null or "auto" for a new UUID ("").
func flavorID(in *api.Input, v any) string {
	if v == nil || v == "auto" {
		return ""
	}
	switch id := v.(type) {
	case string:
		if id == "" || len(id) > 255 || !flavorIDPattern.MatchString(id) || strings.TrimSpace(id) != id {
			in.Fail(badField("id", id, "'%s' does not match '^(?! )[a-zA-Z0-9. _-]+(?<! )$'", id))
		}
		return id
	case float64:
		return api.Text(id)
	}
	in.Fail(badField("id", v, "%s is not of type 'string', 'null'", api.Text(v)))
	return ""
}

func (s *Service) updateFlavor(w http.ResponseWriter, r *http.Request) error {
	// Before 2.55 the method does not exist, for admins or not.
	if !atLeast(r, 55) {
		return &api.Error{Status: http.StatusMethodNotAllowed, Msg: "The method is not allowed for the requested URL."}
	}
	if err := requireAdmin(r, "os_compute_api:os-flavor-manage:update"); err != nil {
		return err
	}
	o, _, err := readBody(r, "flavor")
	if err != nil {
		return err
	}
	if err := allowOnly(o, "description"); err != nil {
		return err
	}
	in := newInput(o)
	if !in.Has("description") {
		return badRequest("Invalid input for field/attribute flavor. Value: %s. 'description' is a required property", api.Text(o))
	}
	desc := optStr(in, "description", 65535)
	if in.Err != nil {
		return in.Err
	}
	var row Flavor
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdFlavorUpdate, flavorUpdateCmd{ID: chi.URLParam(r, "id"), Description: &desc}, &row); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"flavor": s.flavorView(r, &row, true)})
	return nil
}

func (s *Service) deleteFlavor(w http.ResponseWriter, r *http.Request) error {
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdFlavorDelete, idCmd{ID: chi.URLParam(r, "id")}, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
