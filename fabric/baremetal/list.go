package baremetal

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/rackstack/rackstack/fabric/api"
)

// maxLimit bounds a page, as Ironic's [api]max_limit.
const maxLimit = 1000

// listing is one collection as Ironic lists it: the kit's Listing does
// the filtering, sorting, fields and marker paging over full views (each
// carrying "id", its uuid, for the marker); this adds Ironic's rules
// (fields checked, no sorting on JSON fields, limit bounded), the short
// form of a list without detail, and the "next" link Ironic gives.
type listing struct {
	key string
	// short are the fields of a list without detail.
	short []string
	// known are every field of a full view (fields= is checked against
	// them).
	known []string
	// unsortable are the fields holding JSON objects.
	unsortable []string
	filters    map[string]api.Filter
	// since is the microversion each field appeared in: asking for a
	// newer one is 406, as in Ironic.
	since map[string]int
}

func (l listing) write(w http.ResponseWriter, r *http.Request, base string, views []api.View, detail bool) error {
	q := r.URL.Query()
	fields := api.Fields(q)
	if detail && len(fields) > 0 {
		return badRequestf("Can not specify ?detail=True and fields in the same request.")
	}
	var bad []string
	for _, f := range fields {
		if !slices.Contains(l.known, f) {
			bad = append(bad, f)
		}
	}
	if len(bad) > 0 {
		return badRequestf("Field(s) \"%s\" are not valid", strings.Join(bad, ", "))
	}
	for _, f := range fields {
		if since, ok := l.since[f]; ok && versionOf(r.Context()) < since {
			return versionError(f, since)
		}
	}
	for _, k := range q["sort_key"] {
		if slices.Contains(l.unsortable, k) || !slices.Contains(l.known, k) {
			return badRequestf("The sort_key value \"%s\" is an invalid field for sorting", k)
		}
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return badRequestf("Limit must be positive")
		}
		if n == 0 || n > maxLimit {
			q.Set("limit", strconv.Itoa(maxLimit))
			r = r.Clone(r.Context())
			r.URL.RawQuery = q.Encode()
		}
	}
	lst := api.Listing{Key: l.key, Word: wording{}, Filters: l.filters, Reserved: []string{"detail"},
		Base: func(*http.Request) string { return base }}
	body, err := lst.Page(r, views)
	if err != nil {
		return err
	}
	items, _ := body[l.key].([]api.View)
	out := make([]api.View, 0, len(items))
	for _, it := range items {
		if !slices.Contains(fields, "id") {
			delete(it, "id")
		}
		if !detail && len(fields) == 0 {
			it = api.Pick(it, l.short)
		}
		out = append(out, it)
	}
	res := map[string]any{l.key: out}
	if lk, ok := body[l.key+"_links"].([]any); ok {
		for _, x := range lk {
			if m, ok := x.(map[string]any); ok && m["rel"] == "next" {
				res["next"] = m["href"]
			}
		}
	}
	api.JSON(w, http.StatusOK, res)
	return nil
}
