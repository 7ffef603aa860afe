package network

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/rackstack/rackstack/fabric/api"
)

// Listing as Neutron does it, over the views (the JSON objects) of the
// rows a caller may see: any attribute is a filter (repeated values are
// alternatives; unknown attributes are ignored), fields= selects
// attributes, sort_key/sort_dir order, limit/marker/page_reverse page.

// reserved query parameters that are not filters.
var listParams = map[string]bool{"fields": true, "sort_key": true, "sort_dir": true, "limit": true, "marker": true, "page_reverse": true}

// matches reports whether view v passes every filter of q.
func matches(v map[string]any, q url.Values) bool {
	for k, want := range q {
		if listParams[k] {
			continue
		}
		if k == "tenant_id" || k == "project_id" {
			if !matchValue(v["project_id"], want) {
				return false
			}
			continue
		}
		if k == "fixed_ips" {
			if !matchFixedIPs(v[k], want) {
				return false
			}
			continue
		}
		got, ok := v[k]
		if !ok {
			continue // unknown filters are ignored
		}
		if !matchValue(got, want) {
			return false
		}
	}
	return true
}

func matchValue(got any, want []string) bool {
	for _, w := range want {
		switch g := got.(type) {
		case string:
			if g == w {
				return true
			}
		case bool:
			if b, ok := toBool(w); ok && b == g {
				return true
			}
		case int:
			if n, err := strconv.Atoi(w); err == nil && n == g {
				return true
			}
		case nil:
			if w == "" || w == "None" {
				return true
			}
		case []string:
			for _, x := range g {
				if x == w {
					return true
				}
			}
		case []map[string]any:
			// list of objects: filter like Neutron would not; accept all
			return true
		default:
			if fmt.Sprint(g) == w {
				return true
			}
		}
	}
	return false
}

// matchFixedIPs filters ports by fixed_ips=ip_address=X or subnet_id=Y:
// a port matches if one of its addresses satisfies every key given.
func matchFixedIPs(got any, want []string) bool {
	conds := map[string][]string{}
	for _, w := range want {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			continue
		}
		conds[k] = append(conds[k], v)
	}
	ips, _ := got.([]map[string]any)
	for _, ip := range ips {
		all := true
		for k, vs := range conds {
			val := fmt.Sprint(ip[strings.TrimSuffix(k, "_substr")])
			hit := false
			for _, v := range vs {
				if val == v || strings.HasSuffix(k, "_substr") && strings.Contains(val, v) {
					hit = true
				}
			}
			all = all && hit
		}
		if all {
			return true
		}
	}
	return false
}

func less(a, b any) int {
	switch x := a.(type) {
	case string:
		y, _ := b.(string)
		return strings.Compare(x, y)
	case int:
		y, _ := b.(int)
		return x - y
	case bool:
		y, _ := b.(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	case nil:
		if b == nil {
			return 0
		}
		return -1
	}
	if b == nil {
		return 1
	}
	return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
}

// list answers a collection GET: key is the collection name ("networks").
func (s *Service) list(w http.ResponseWriter, r *http.Request, key string, views []map[string]any) {
	q := r.URL.Query()
	var items []map[string]any
	for _, v := range views {
		if matches(v, q) {
			items = append(items, v)
		}
	}
	keys, dirs := q["sort_key"], q["sort_dir"]
	if len(dirs) > 0 && len(dirs) != len(keys) {
		writeError(w, r, api.Problem{Status: http.StatusBadRequest, Msg: "The number of sort_keys and sort_dirs must be same"})
		return
	}
	for i, k := range keys {
		if len(views) > 0 {
			if _, ok := views[0][k]; !ok {
				api.Fail(w, r, writeError, badInput("sort_key", "%s is an invalid attribute for sort_key", k))
				return
			}
		}
		if len(dirs) > 0 && dirs[i] != "asc" && dirs[i] != "desc" {
			api.Fail(w, r, writeError, badInput("sort_dir", "%s is an invalid value for sort_dir, valid value is 'asc' and 'desc'", dirs[i]))
			return
		}
	}
	reverse := false
	if v := q.Get("page_reverse"); v != "" {
		reverse, _ = toBool(v)
	}
	sort.SliceStable(items, func(i, j int) bool {
		for n, k := range keys {
			c := less(items[i][k], items[j][k])
			if len(dirs) > 0 && dirs[n] == "desc" {
				c = -c
			}
			if c != 0 {
				return (c < 0) != reverse
			}
		}
		return (less(items[i]["id"], items[j]["id"]) < 0) != reverse
	})
	limit := 0
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			api.Fail(w, r, writeError, badInput("limit", "'%s' is not a valid non-negative integer", l))
			return
		}
		limit = n
	}
	marker := q.Get("marker")
	if marker != "" {
		at := -1
		for i, it := range items {
			if it["id"] == marker {
				at = i
				break
			}
		}
		if at < 0 {
			// A marker that is not in the filtered list (deleted, or
			// filtered out) has nothing after it.
			items = items[:0:0]
		} else {
			items = items[at+1:]
		}
	}
	more := false
	if limit > 0 && len(items) > limit {
		items, more = items[:limit], true
	}
	if reverse {
		for i, j := 0, len(items)-1; i < j; i, j = i+1, j-1 {
			items[i], items[j] = items[j], items[i]
		}
	}
	fields := selectFields(q)
	out := make([]map[string]any, 0, len(items))
	for _, it := range items {
		out = append(out, pick(it, fields))
	}
	body := map[string]any{key: out}
	if limit > 0 {
		var links []any
		if len(items) > 0 {
			first, last := items[0]["id"].(string), items[len(items)-1]["id"].(string)
			if (more && !reverse) || (reverse && marker != "") {
				links = append(links, map[string]any{"rel": "next", "href": s.pageHref(r, last, false)})
			}
			if (marker != "" && !reverse) || (reverse && more) {
				links = append(links, map[string]any{"rel": "previous", "href": s.pageHref(r, first, true)})
			}
		}
		if links != nil {
			body[key+"_links"] = links
		}
	}
	api.JSON(w, http.StatusOK, body)
}

func (s *Service) pageHref(r *http.Request, marker string, reverse bool) string {
	q := r.URL.Query()
	q.Set("marker", marker)
	q.Del("page_reverse")
	if reverse {
		q.Set("page_reverse", "True")
	}
	return s.baseURL(r) + r.URL.Path + "?" + q.Encode()
}

// selectFields is the fields= list (repeated or comma-separated), nil for
// all.
func selectFields(q url.Values) []string {
	var out []string
	for _, f := range q["fields"] {
		for _, x := range strings.Split(f, ",") {
			if x = strings.TrimSpace(x); x != "" {
				out = append(out, x)
			}
		}
	}
	return out
}

func pick(v map[string]any, fields []string) map[string]any {
	if len(fields) == 0 {
		return v
	}
	out := map[string]any{}
	for _, f := range fields {
		if x, ok := v[f]; ok {
			out[f] = x
		}
	}
	return out
}

// show answers a single-resource GET, honouring fields=.
func show(w http.ResponseWriter, r *http.Request, key string, v map[string]any) {
	api.JSON(w, http.StatusOK, map[string]any{key: pick(v, selectFields(r.URL.Query()))})
}
