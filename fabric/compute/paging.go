package compute

import (
	"cmp"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// Nova pages its collections its own way, not api.Listing's: an unknown
// marker is a 400, a limit is capped at 1000, and only a "next" link is
// given, when a page is full.

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

// paged is a page of views under key, with its "next" link.
func (s *Service) paged(r *http.Request, key string, views []any, next string) map[string]any {
	body := map[string]any{key: views}
	if next != "" {
		q := r.URL.Query()
		q.Set("marker", next)
		href := s.apiURL(r) + strings.TrimPrefix(r.URL.Path, "/v2.1") + "?" + q.Encode()
		body[key+"_links"] = []any{link("next", href)}
	}
	return body
}

// sortRows orders rows by key (ties by id), descending when desc.
func sortRows[T any](rows []*T, key func(*T) any, id func(*T) string, desc bool) {
	sort.SliceStable(rows, func(i, j int) bool {
		c := compareAny(key(rows[i]), key(rows[j]))
		if c == 0 {
			c = strings.Compare(id(rows[i]), id(rows[j]))
		}
		if desc {
			return c > 0
		}
		return c < 0
	})
}

func compareAny(a, b any) int {
	switch x := a.(type) {
	case string:
		return strings.Compare(x, b.(string))
	case int:
		return x - b.(int)
	case int64:
		return cmp.Compare(x, b.(int64))
	case float64:
		return cmp.Compare(x, b.(float64))
	}
	return 0
}
