package image

import (
	"cmp"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Listing as Glance does it: filters on the image's attributes (in:
// lists for some, operators for the times, size ranges, tags that must
// all be present) and on extra properties (any other parameter), sorting
// by one or more keys, and limit/marker paging with a next link.

const (
	defaultLimit = 25   // limit_param_default
	maxLimit     = 1000 // api_limit_max
)

var sortKeys = []string{"name", "status", "container_format", "disk_format", "size", "id", "created_at", "updated_at"}

var statuses = []string{StatusQueued, StatusSaving, StatusActive, "killed", "deleted", "pending_delete", StatusDeactivated, "uploading", "importing"}

// sortKey is one key of the order and its direction.
type sortKey struct {
	key  string
	desc bool
}

// listQuery is a parsed GET /v2/images.
type listQuery struct {
	visibility   string // "" for the default listing
	memberStatus string
	hidden       bool
	listing      api.Listing // its Filters filter; the rest is Glance's own
	order        []sortKey
	limit        int
	marker       string
}

// listParams are the parameters that choose which images are listed
// (listed) and how they are paged; every other parameter filters (filters).
var listParams = []string{"limit", "marker", "sort", "sort_key", "sort_dir", "visibility", "member_status", "os_hidden"}

func parseList(q url.Values) (*listQuery, error) {
	lq := &listQuery{memberStatus: MemberAccepted, limit: defaultLimit, marker: q.Get("marker")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, badRequest("limit param must be an integer")
		}
		if n < 0 {
			return nil, badRequest("limit param must be positive")
		}
		lq.limit = min(n, maxLimit)
	}
	if v := q.Get("visibility"); v != "" {
		if v != "all" && !slices.Contains(visibilities, v) {
			return nil, badRequest("Invalid visibility value: %s", v)
		}
		lq.visibility = v
	}
	if v := q.Get("member_status"); v != "" {
		if v != "all" && v != MemberPending && v != MemberAccepted && v != MemberRejected {
			return nil, badRequest("Invalid status: %s", v)
		}
		lq.memberStatus = v
	}
	if v := q.Get("os_hidden"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, badRequest("Invalid value for os_hidden: %s", v)
		}
		lq.hidden = b
	}
	filters, err := filters(q)
	if err != nil {
		return nil, err
	}
	lq.listing = api.Listing{Key: "images", Word: wording{}, Filters: filters, Reserved: listParams}
	if lq.order, err = parseSort(q); err != nil {
		return nil, err
	}
	return lq, nil
}

// filters are the filters of a query over image views, each read and
// checked before any image is: tags that must all be present, size
// ranges, times with operators, and any other parameter an attribute or
// extra property that must equal (or be "in:" a list).
func filters(q url.Values) (map[string]api.Filter, error) {
	out := map[string]api.Filter{}
	for k, vs := range q {
		if slices.Contains(listParams, k) {
			continue
		}
		var all []func(api.View) bool
		for _, v := range vs {
			f, err := filterOne(q, k, v)
			if err != nil {
				return nil, err
			}
			if f != nil {
				all = append(all, f)
			}
		}
		out[k] = func(v api.View, _ []string) (bool, error) {
			for _, f := range all {
				if !f(v) {
					return false, nil
				}
			}
			return true, nil
		}
	}
	return out, nil
}

// filterOne is the filter of one value of parameter k; nil when the value
// does not filter (a size bound counts once).
func filterOne(q url.Values, k, v string) (func(api.View) bool, error) {
	switch k {
	case "tag":
		return func(view api.View) bool { tags, _ := view["tags"].([]string); return slices.Contains(tags, v) }, nil
	case "size_min", "size_max":
		if v != q.Get(k) || v == "" {
			return nil, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return nil, badRequest("Value of %s must be a non-negative integer, got %q.", k, v)
		}
		return func(view api.View) bool {
			size, ok := view["size"].(int64)
			return ok && (k == "size_min" && size >= n || k == "size_max" && size <= n)
		}, nil
	case "created_at", "updated_at":
		return timeFilter(k, v)
	}
	return attrFilter(k, v)
}

// notFiltered are attributes of a view that are neither filtered on nor
// extra properties (which cannot have these names): filtering on them
// lists nothing, as Glance's property filter does.
var notFiltered = map[string]bool{"tags": true, "self": true, "file": true, "schema": true}

// attrText is an attribute's value in a view as a filter compares it: ok
// is false for an extra property the image does not have, and for sizes
// it has none of.
func attrText(view api.View, k string) (string, bool) {
	v, ok := view[k]
	if !ok || notFiltered[k] {
		return "", false
	}
	switch x := v.(type) {
	case nil:
		return "", k != "size" && k != "virtual_size"
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case int:
		return strconv.Itoa(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	}
	return "", false
}

// inList are the attributes whose filter may be "in:a,b,c".
var inList = map[string]bool{"id": true, "name": true, "status": true, "disk_format": true, "container_format": true}

func attrFilter(k, v string) (func(api.View) bool, error) {
	want := []string{v}
	if rest, ok := strings.CutPrefix(v, "in:"); ok && inList[k] {
		want = nil
		for _, x := range strings.Split(rest, ",") {
			want = append(want, strings.Trim(strings.TrimSpace(x), `"`))
		}
	}
	switch k {
	case "status":
		for _, w := range want {
			if !slices.Contains(statuses, w) {
				return nil, badRequest("Invalid status value: %s", w)
			}
		}
	case "protected":
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, badRequest("Invalid value for protected: %s", v)
		}
		want = []string{strconv.FormatBool(b)}
	}
	return func(view api.View) bool {
		got, ok := attrText(view, k)
		return ok && slices.Contains(want, got)
	}, nil
}

// timeFilter reads "[op:]time" (op one of gt gte lt lte eq neq).
func timeFilter(k, v string) (func(api.View) bool, error) {
	op, ts := "eq", v
	if i := strings.Index(v, ":"); i > 0 && !strings.ContainsAny(v[:i], "0123456789") {
		op, ts = v[:i], v[i+1:]
	}
	t, err := time.Parse(time.RFC3339, ts)
	if err != nil {
		if t, err = time.Parse("2006-01-02T15:04:05", ts); err != nil {
			return nil, badRequest("Unable to parse datetime '%s' of %s.", ts, k)
		}
	}
	var ok func(c int) bool
	switch op {
	case "gt":
		ok = func(c int) bool { return c > 0 }
	case "gte":
		ok = func(c int) bool { return c >= 0 }
	case "lt":
		ok = func(c int) bool { return c < 0 }
	case "lte":
		ok = func(c int) bool { return c <= 0 }
	case "eq":
		ok = func(c int) bool { return c == 0 }
	case "neq":
		ok = func(c int) bool { return c != 0 }
	default:
		return nil, badRequest("Invalid operator %s for %s.", op, k)
	}
	return func(view api.View) bool {
		// Views show times to the second, as they are stored.
		s, _ := view[k].(string)
		at, err := time.Parse(time.RFC3339, s)
		return err == nil && ok(at.Compare(t))
	}, nil
}

// parseSort reads sort=k1:dir,k2 or sort_key=...&sort_dir=..., and adds
// Glance's tie breakers (created_at, id).
func parseSort(q url.Values) ([]sortKey, error) {
	var out []sortKey
	checkKey := func(k string) error {
		if !slices.Contains(sortKeys, k) {
			return badRequest("Invalid sort key: %s. It must be one of the following: %s.", k, strings.Join(sortKeys, ", "))
		}
		return nil
	}
	checkDir := func(d string) (bool, error) {
		switch d {
		case "asc":
			return false, nil
		case "desc", "":
			return true, nil
		}
		return false, badRequest("Invalid sort direction: %s", d)
	}
	switch {
	case q.Has("sort") && (q.Has("sort_key") || q.Has("sort_dir")):
		return nil, badRequest("Old and new sorting syntax cannot be combined")
	case q.Has("sort"):
		for _, part := range strings.Split(q.Get("sort"), ",") {
			k, d, _ := strings.Cut(strings.TrimSpace(part), ":")
			if err := checkKey(k); err != nil {
				return nil, err
			}
			desc, err := checkDir(d)
			if err != nil {
				return nil, err
			}
			out = append(out, sortKey{k, desc})
		}
	default:
		keys, dirs := q["sort_key"], q["sort_dir"]
		if len(dirs) > 1 && len(dirs) != len(keys) || len(keys) == 0 && len(dirs) > 1 {
			return nil, badRequest("Number of sort dirs does not match the number of sort keys")
		}
		for i, k := range keys {
			if err := checkKey(k); err != nil {
				return nil, err
			}
			d := ""
			if len(dirs) == 1 {
				d = dirs[0]
			} else if len(dirs) > 1 {
				d = dirs[i]
			}
			desc, err := checkDir(d)
			if err != nil {
				return nil, err
			}
			out = append(out, sortKey{k, desc})
		}
		if len(keys) == 0 && len(dirs) == 1 {
			desc, err := checkDir(dirs[0])
			if err != nil {
				return nil, err
			}
			out = append(out, sortKey{"created_at", desc})
		}
	}
	for _, k := range []string{"created_at", "id"} {
		if !slices.ContainsFunc(out, func(s sortKey) bool { return s.key == k }) {
			out = append(out, sortKey{k, true})
		}
	}
	return out, nil
}

// compareBy orders images by one key; images without data sort before
// those with by size, as NULLs do in Glance's database.
func compareBy(a, b *Image, k string) int {
	switch k {
	case "name":
		return cmp.Compare(a.Name, b.Name)
	case "status":
		return cmp.Compare(a.Status, b.Status)
	case "container_format":
		return cmp.Compare(a.ContainerFormat, b.ContainerFormat)
	case "disk_format":
		return cmp.Compare(a.DiskFormat, b.DiskFormat)
	case "size":
		if a.HasData() != b.HasData() {
			if a.HasData() {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.Size, b.Size)
	case "created_at":
		return a.CreatedAt.Compare(b.CreatedAt)
	case "updated_at":
		return a.UpdatedAt.Compare(b.UpdatedAt)
	}
	return cmp.Compare(a.ID, b.ID)
}

func compareImages(a, b *Image, order []sortKey) int {
	for _, o := range order {
		c := compareBy(a, b, o.key)
		if o.desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

// listed reports whether the default or visibility-filtered listing of p
// includes img, as Glance's database query decides it.
func listed(p *api.Principal, img *Image, lq *listQuery) bool {
	if img.Hidden != lq.hidden {
		return false
	}
	if lq.visibility != "" && lq.visibility != "all" && img.Visibility != lq.visibility {
		return false
	}
	mine := p.ProjectID != "" && img.Owner == p.ProjectID
	if lq.visibility == "" && img.Visibility == VisibilityCommunity && !mine {
		// Others' community images are listed only when asked for.
		return false
	}
	if p.IsAdmin() {
		return true
	}
	switch {
	case img.Visibility == VisibilityPublic, img.Visibility == VisibilityCommunity:
		return true
	case mine:
		return p.CanRead(img.Owner)
	case img.Visibility == VisibilityShared && p.ProjectID != "":
		m := img.MemberOf(p.ProjectID)
		return m != nil && (lq.memberStatus == "all" || m.Status == lq.memberStatus)
	}
	return false
}

func (s *Service) listImages(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	q := r.URL.Query()
	lq, err := parseList(q)
	if err != nil {
		return err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	var items []*Image
	for _, img := range store.All[Image](tx, tImages, "id") {
		if !listed(p, img, lq) {
			continue
		}
		if ok, err := lq.listing.Matches(view(img), q); err != nil {
			return err
		} else if ok {
			items = append(items, img)
		}
	}
	slices.SortFunc(items, func(a, b *Image) int { return compareImages(a, b, lq.order) })
	if lq.marker != "" {
		m := store.Get[Image](tx, tImages, lq.marker)
		if m == nil || !visible(p, m) {
			return badRequest("Invalid marker. Image %s could not be found.", lq.marker)
		}
		// The marker need not pass the filters: the page starts after
		// where it sorts.
		at, _ := slices.BinarySearchFunc(items, m, func(a, b *Image) int { return compareImages(a, b, lq.order) })
		if at < len(items) && items[at].ID == m.ID {
			at++
		}
		items = items[at:]
	}
	more := len(items) > lq.limit
	if more {
		items = items[:lq.limit]
	}
	api.JSON(w, http.StatusOK, listBody(q, items, more))
	return nil
}

// listBody is a page of images with Glance's links: first (the query
// without its marker) and, when more follow, next.
func listBody(q url.Values, items []*Image, more bool) map[string]any {
	views := make([]map[string]any, 0, len(items))
	for _, img := range items {
		views = append(views, view(img))
	}
	first := url.Values{}
	for k, v := range q {
		if k != "marker" {
			first[k] = v
		}
	}
	body := map[string]any{"images": views, "schema": "/v2/schemas/images", "first": "/v2/images"}
	if len(first) > 0 {
		body["first"] = "/v2/images?" + first.Encode()
	}
	if more && len(items) > 0 {
		next := url.Values{}
		for k, v := range first {
			next[k] = v
		}
		next.Set("marker", items[len(items)-1].ID)
		body["next"] = "/v2/images?" + next.Encode()
	}
	return body
}
