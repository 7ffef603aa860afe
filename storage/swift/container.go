package swift

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/rackstack/rackstack/storage/object"
)

func (q *request) checkContainerName() bool {
	if len(q.container) > maxContainerName {
		fail(q.w, q.r, http.StatusBadRequest, fmt.Sprintf("Bad Request: Container name length of %d longer than %d", len(q.container), maxContainerName))
		return false
	}
	if err := object.CheckName("container", q.container, maxContainerName); err != nil {
		fail(q.w, q.r, http.StatusBadRequest, "Bad Request: "+err.Error())
		return false
	}
	return true
}

func (q *request) containerOp() {
	switch q.r.Method {
	case http.MethodPut:
		q.putContainer()
	case http.MethodPost:
		q.postContainer()
	case http.MethodGet, http.MethodHead:
		q.listContainer()
	case http.MethodDelete:
		if err := q.h.Store.DeleteContainer(q.r.Context(), q.project, q.container); err != nil {
			q.failErr(err)
			return
		}
		q.w.WriteHeader(http.StatusNoContent)
	default:
		fail(q.w, q.r, http.StatusMethodNotAllowed, "Method Not Allowed")
	}
}

// containerAttrs reads the container metadata and ACL headers over old.
func (q *request) containerAttrs(old object.Container) (object.Container, bool) {
	set, remove, err := metaFrom(q.r.Header, "X-Container-Meta-", true)
	if err != nil {
		fail(q.w, q.r, http.StatusBadRequest, "Bad Request: "+err.Error())
		return old, false
	}
	if msg, ok := checkQuotaMeta(set); !ok {
		fail(q.w, q.r, http.StatusBadRequest, msg)
		return old, false
	}
	c := old
	c.Meta = mergeMeta(old.Meta, set, remove)
	if v, ok := q.r.Header["X-Container-Read"]; ok {
		c.ReadACL = strings.Join(v, ",")
	}
	if q.r.Header.Get("X-Remove-Container-Read") != "" {
		c.ReadACL = ""
	}
	if v, ok := q.r.Header["X-Container-Write"]; ok {
		c.WriteACL = strings.Join(v, ",")
	}
	if !q.versionsAttrs(&c) || !q.versionedHeader(&c) || !q.syncAttrs(&c) {
		return old, false
	}
	return c, true
}

func (q *request) putContainer() {
	if !q.checkContainerName() {
		return
	}
	// The one storage policy /info lists is the only one a container
	// may ask for (Swift compares names without case); an unknown one
	// is refused as Swift does, not silently replaced by ours.
	if p := strings.TrimSpace(q.r.Header.Get("X-Storage-Policy")); p != "" && !strings.EqualFold(p, policyName) {
		fail(q.w, q.r, http.StatusBadRequest, "Invalid X-Storage-Policy '"+p+"'")
		return
	}
	old, err := q.h.Store.Container(q.r.Context(), q.project, q.container)
	if err != nil {
		old = &object.Container{Project: q.project, Name: q.container}
	}
	c, ok := q.containerAttrs(*old)
	if !ok {
		return
	}
	created, err := q.h.Store.PutContainer(q.r.Context(), c, false)
	if err != nil {
		q.failErr(err)
		return
	}
	if created {
		q.w.WriteHeader(http.StatusCreated)
	} else {
		q.w.WriteHeader(http.StatusAccepted)
	}
}

func (q *request) postContainer() {
	old, err := q.h.Store.Container(q.r.Context(), q.project, q.container)
	if err != nil {
		q.failErr(err)
		return
	}
	c, ok := q.containerAttrs(*old)
	if !ok {
		return
	}
	if err := q.h.Store.UpdateContainer(q.r.Context(), c); err != nil {
		q.failErr(err)
		return
	}
	q.w.WriteHeader(http.StatusNoContent)
}

func (q *request) listContainer() {
	ctx := q.r.Context()
	c, err := q.h.Store.Container(ctx, q.project, q.container)
	if err != nil {
		q.failErr(err)
		return
	}
	h := q.w.Header()
	h.Set("X-Container-Object-Count", strconv.FormatInt(c.Objects, 10))
	h.Set("X-Container-Bytes-Used", strconv.FormatInt(c.Bytes, 10))
	h.Set("X-Timestamp", timestamp(c.Created))
	h.Set("X-Storage-Policy", policyName)
	if c.ReadACL != "" && q.who != nil {
		h.Set("X-Container-Read", c.ReadACL)
	}
	if c.WriteACL != "" && q.who != nil {
		h.Set("X-Container-Write", c.WriteACL)
	}
	versionsHeader(h, c)
	versioningHeader(h, c)
	q.syncHeaders(h, c)
	writeMeta(q.w, "X-Container-Meta-", q.visibleMeta(c.Meta))
	format, limit, ok := q.listParams()
	if !ok {
		return
	}
	v := q.r.URL.Query()
	if v.Has("versions") {
		q.listVersions(format, limit)
		return
	}
	o := object.ListOptions{Prefix: v.Get("prefix"), Delimiter: v.Get("delimiter"), Marker: v.Get("marker"), EndMarker: v.Get("end_marker"), Limit: limit}
	if p := v.Get("path"); p != "" {
		o.Prefix, o.Delimiter = strings.TrimSuffix(p, "/")+"/", "/"
	}
	reverse := reverseParam(q.r)
	if reverse {
		// Backwards, marker is the upper bound and end_marker the lower.
		o.Marker, o.EndMarker, o.Limit = v.Get("end_marker"), v.Get("marker"), 0
	}
	l := &listing{root: "container", name: q.container}
	if limit == 0 {
		writeListing(q.w, q.r, format, l)
		return
	}
	entries, _, err := q.h.Store.List(ctx, q.project, q.container, o)
	if err != nil {
		q.failErr(err)
		return
	}
	if reverse {
		for i, j := 0, len(entries)-1; i < j; i, j = i+1, j-1 {
			entries[i], entries[j] = entries[j], entries[i]
		}
		entries = entries[:min(len(entries), limit)]
	}
	for _, e := range entries {
		if e.Subdir != "" {
			l.add(e.Subdir, nil, map[string]any{"subdir": e.Subdir})
			continue
		}
		ob := e.Object
		row := map[string]any{
			"name": ob.Name, "hash": ob.ETag, "bytes": ob.Size, "content_type": ob.ContentType,
			"last_modified": ob.Modified.UTC().Format("2006-01-02T15:04:05.000000"),
		}
		if len(ob.Segments) > 0 {
			row["slo_etag"] = `"` + ob.ETag + `"`
		}
		l.add(ob.Name, []string{"name", "hash", "bytes", "content_type", "last_modified"}, row)
	}
	writeListing(q.w, q.r, format, l)
}
