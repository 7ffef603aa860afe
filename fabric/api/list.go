package api

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// View is a resource as the API shows it: its JSON object.
type View = map[string]any

// Filter decides whether a view passes a query parameter's values.
type Filter func(v View, values []string) (bool, error)

// Listing answers collection GETs the OpenStack way, over the views of
// the rows a caller may see: a query parameter naming a view attribute
// filters on it (repeated values are alternatives; "attr__contains",
// "__startswith", "__endswith" and their case-insensitive "i" forms match
// strings), fields= selects attributes, sort_key/sort_dir order,
// limit/marker/page_reverse page, and with a limit the body carries
// "<key>_links".
type Listing struct {
	Key  string // the collection's key in the body: "networks"
	Word Wording
	// Filters are parameters with their own meaning; they take precedence
	// over attribute matching.
	Filters map[string]Filter
	// Reserved are parameters that are neither filters nor paging (a
	// service's own, such as Nova's "all_tenants").
	Reserved []string
	// Base is the URL the links are built on (scheme://host plus any
	// mount prefix); nil uses the request's host.
	Base func(r *http.Request) string
	// Cinder's paging, off by default: ZeroLimit makes limit=0 an empty
	// page (not "no limit"); Offset reads offset=N, skipping N entries
	// after the marker; MissingMarker, if set, is the error for a marker
	// no row the caller sees has (else such a marker has nothing after
	// it).
	ZeroLimit     bool
	Offset        bool
	MissingMarker func(marker string) error
	// FullPageNext gives a full page a next link even when nothing
	// follows (Cinder's), so a client learns the end from an empty page.
	FullPageNext bool
	// NeutronLinks words the links as Neutron's get_pagination_links: a
	// next link unless a forward page came short, a previous one unless
	// a reverse page did, also on an empty page (without a marker: the
	// previous page of the end is the last one), so a client walks back
	// from the end.
	NeutronLinks bool
	// SortKeys, if set, are the keys a list may be sorted by, checked
	// even when the list is empty.
	SortKeys []string
}

var pagingParams = map[string]bool{"fields": true, "sort_key": true, "sort_dir": true, "limit": true, "marker": true, "page_reverse": true}

var stringOps = []struct {
	suffix string
	fold   bool
	match  func(s, sub string) bool
}{
	{"__icontains", true, strings.Contains}, {"__contains", false, strings.Contains},
	{"__istartswith", true, strings.HasPrefix}, {"__startswith", false, strings.HasPrefix},
	{"__iendswith", true, strings.HasSuffix}, {"__endswith", false, strings.HasSuffix},
}

func (l Listing) reserved(k string) bool {
	if pagingParams[k] {
		return true
	}
	for _, r := range l.Reserved {
		if r == k {
			return true
		}
	}
	return false
}

// Matches reports whether v passes every filter of q.
func (l Listing) Matches(v View, q url.Values) (bool, error) {
	for k, want := range q {
		if l.reserved(k) {
			continue
		}
		if f, ok := l.Filters[k]; ok {
			hit, err := f(v, want)
			if err != nil || !hit {
				return false, err
			}
			continue
		}
		if got, ok := v[k]; ok {
			if !MatchValue(got, want) {
				return false, nil
			}
			continue
		}
		for _, op := range stringOps {
			attr, ok := strings.CutSuffix(k, op.suffix)
			if !ok {
				continue
			}
			s, isStr := v[attr].(string)
			if !isStr {
				break
			}
			hit := false
			for _, w := range want {
				if op.fold {
					hit = hit || op.match(strings.ToLower(s), strings.ToLower(w))
				} else {
					hit = hit || op.match(s, w)
				}
			}
			if !hit {
				return false, nil
			}
			break
		}
		// Other unknown parameters are ignored, as the services do.
	}
	return true, nil
}

// MatchValue reports whether an attribute's value equals one of want.
func MatchValue(got any, want []string) bool {
	for _, w := range want {
		switch g := got.(type) {
		case string:
			if g == w {
				return true
			}
		case bool:
			if b, ok := ToBool(w); ok && b == g {
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
		case []map[string]any, map[string]any:
			return true // objects are not filtered on
		default:
			if fmt.Sprint(g) == w {
				return true
			}
		}
	}
	return false
}

// Compare orders two attribute values of the same attribute.
func Compare(a, b any) int {
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

// Write filters, sorts, pages and writes views as the collection.
func (l Listing) Write(w http.ResponseWriter, r *http.Request, views []View) error {
	body, err := l.Page(r, views)
	if err != nil {
		return err
	}
	JSON(w, http.StatusOK, body)
	return nil
}

// Page is Write's body, for callers that add to it.
func (l Listing) Page(r *http.Request, views []View) (map[string]any, error) {
	q := r.URL.Query()
	items := make([]View, 0, len(views))
	for _, v := range views {
		ok, err := l.Matches(v, q)
		if err != nil {
			return nil, err
		}
		if ok {
			items = append(items, v)
		}
	}
	keys, dirs := q["sort_key"], q["sort_dir"]
	if len(dirs) > 0 && len(dirs) != len(keys) {
		return nil, l.Word.BadField("sort_dir", dirs, "The number of sort_keys and sort_dirs must be same")
	}
	for i, k := range keys {
		if l.SortKeys != nil && !slices.Contains(l.SortKeys, k) {
			return nil, l.Word.BadField("sort_key", k, k+" is an invalid attribute for sort_key")
		}
		if len(views) > 0 {
			if _, ok := views[0][k]; !ok {
				return nil, l.Word.BadField("sort_key", k, k+" is an invalid attribute for sort_key")
			}
		}
		if len(dirs) > 0 && dirs[i] != "asc" && dirs[i] != "desc" {
			return nil, l.Word.BadField("sort_dir", dirs[i], dirs[i]+" is an invalid value for sort_dir, valid value is 'asc' and 'desc'")
		}
	}
	reverse := false
	if v := q.Get("page_reverse"); v != "" {
		reverse, _ = ToBool(v)
	}
	sort.SliceStable(items, func(i, j int) bool {
		for n, k := range keys {
			c := Compare(items[i][k], items[j][k])
			if len(dirs) > 0 && dirs[n] == "desc" {
				c = -c
			}
			if c != 0 {
				return (c < 0) != reverse
			}
		}
		return (Compare(items[i]["id"], items[j]["id"]) < 0) != reverse
	})
	limit, zeroLimit := 0, false
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return nil, l.Word.BadField("limit", s, "'"+s+"' is not a valid non-negative integer")
		}
		limit, zeroLimit = n, n == 0 && l.ZeroLimit
	}
	offset := 0
	if s := q.Get("offset"); s != "" && l.Offset {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return nil, l.Word.BadField("offset", s, "'"+s+"' is not a valid non-negative integer")
		}
		offset = n
	}
	marker := q.Get("marker")
	if marker != "" && l.MissingMarker != nil && !slices.ContainsFunc(views, func(v View) bool { return v["id"] == marker }) {
		return nil, l.MissingMarker(marker)
	}
	if marker != "" {
		at := -1
		for i, it := range items {
			if it["id"] == marker {
				at = i
				break
			}
		}
		if at < 0 {
			// A marker not in the filtered list (deleted, or filtered
			// out) has nothing after it.
			items = items[:0:0]
		} else {
			items = items[at+1:]
		}
	}
	items = items[min(offset, len(items)):]
	if zeroLimit {
		items = items[:0]
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
	fields := Fields(q)
	out := make([]View, 0, len(items))
	for _, it := range items {
		out = append(out, Pick(it, fields))
	}
	body := map[string]any{l.Key: out}
	if l.NeutronLinks {
		if limit > 0 {
			body[l.Key+"_links"] = l.neutronLinks(r, items, limit, reverse)
		}
		return body, nil
	}
	if limit > 0 && len(items) > 0 {
		var links []any
		first, _ := items[0]["id"].(string)
		last, _ := items[len(items)-1]["id"].(string)
		full := l.FullPageNext && len(items) == limit
		if ((more || full) && !reverse) || (reverse && marker != "") {
			links = append(links, map[string]any{"rel": "next", "href": l.href(r, last, false)})
		}
		if (marker != "" && !reverse) || (reverse && more) {
			links = append(links, map[string]any{"rel": "previous", "href": l.href(r, first, true)})
		}
		if links != nil {
			body[l.Key+"_links"] = links
		}
	}
	return body, nil
}

// neutronLinks are the links of a Neutron page (see NeutronLinks).
func (l Listing) neutronLinks(r *http.Request, items []View, limit int, reverse bool) []any {
	first, last := "", ""
	if len(items) > 0 {
		first, _ = items[0]["id"].(string)
		last, _ = items[len(items)-1]["id"].(string)
	}
	links := []any{}
	if !(len(items) < limit && !reverse) {
		links = append(links, map[string]any{"rel": "next", "href": l.href(r, last, false)})
	}
	if !(len(items) < limit && reverse) {
		links = append(links, map[string]any{"rel": "previous", "href": l.href(r, first, true)})
	}
	return links
}

// href is the link to the page after (before, reverse) marker; no
// marker is the first (with reverse: the last) page.
func (l Listing) href(r *http.Request, marker string, reverse bool) string {
	q := r.URL.Query()
	q.Set("marker", marker)
	if marker == "" {
		q.Del("marker")
	}
	q.Del("page_reverse")
	if reverse {
		q.Set("page_reverse", "True")
	}
	base := "http://" + r.Host
	if l.Base != nil {
		base = l.Base(r)
	}
	return base + r.URL.Path + "?" + q.Encode()
}

// Fields is the fields= list (repeated or comma-separated), nil for all.
func Fields(q url.Values) []string {
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

// Pick keeps fields of v (all of them when fields is empty).
func Pick(v View, fields []string) View {
	if len(fields) == 0 {
		return v
	}
	out := View{}
	for _, f := range fields {
		if x, ok := v[f]; ok {
			out[f] = x
		}
	}
	return out
}

// Show writes one resource as {"<key>": view}, honouring fields=.
func Show(w http.ResponseWriter, r *http.Request, key string, v View) error {
	JSON(w, http.StatusOK, map[string]any{key: Pick(v, Fields(r.URL.Query()))})
	return nil
}

// Collection is a state-store table served as an API collection: a
// resource's list and show are a declaration of how to see and show a
// row, not a copy of the plumbing.
type Collection[T any] struct {
	Table string // the state-store table (rows have a unique "id" index)
	One   string // the key of one resource in a body: "network"
	// Project is the project a row belongs to; Visible, where set,
	// decides instead (shared networks, public images).
	Project func(row *T) string
	Visible func(p *Principal, row *T) bool
	View    func(tx *memdb.Txn, p *Principal, row *T) View
	// NotFound is the service's 404 for an id; rows the caller may not
	// see are not found, never forbidden.
	NotFound func(id string) error
	Listing  Listing
}

func (c Collection[T]) visible(p *Principal, row *T) bool {
	if c.Visible != nil {
		return c.Visible(p, row)
	}
	return p.CanRead(c.Project(row))
}

// Get returns the row id if the caller may see it, else the 404.
func (c Collection[T]) Get(tx *memdb.Txn, p *Principal, id string) (*T, error) {
	row := store.Get[T](tx, c.Table, id)
	if row == nil || !c.visible(p, row) {
		return nil, c.NotFound(id)
	}
	return row, nil
}

// Views are the views of the rows the caller may see.
func (c Collection[T]) Views(tx *memdb.Txn, p *Principal) []View {
	var out []View
	for _, row := range store.All[T](tx, c.Table, "id") {
		if c.visible(p, row) {
			out = append(out, c.View(tx, p, row))
		}
	}
	return out
}

// List answers the collection GET.
func (c Collection[T]) List(w http.ResponseWriter, r *http.Request, tx *memdb.Txn) error {
	return c.Listing.Write(w, r, c.Views(tx, PrincipalFrom(r.Context())))
}

// Show answers the GET of one resource.
func (c Collection[T]) Show(w http.ResponseWriter, r *http.Request, tx *memdb.Txn, id string) error {
	p := PrincipalFrom(r.Context())
	row, err := c.Get(tx, p, id)
	if err != nil {
		return err
	}
	return Show(w, r, c.One, c.View(tx, p, row))
}

// HasTags is the test behind OpenStack's tag list filters (tags,
// tags-any, and their not- forms): whether have holds every one of want
// (all) or any of them.
func HasTags(have, want []string, all bool) bool {
	hits := 0
	for _, t := range want {
		if slices.Contains(have, t) {
			hits++
		}
	}
	if all {
		return hits == len(want)
	}
	return hits > 0
}
