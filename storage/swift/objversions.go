package swift

// Object versioning: Swift's newer object_versioning (Swift 2.24+). A
// container with X-Versions-Enabled: true keeps every version of its
// objects; false suspends it (new writes are the "null" version, the old
// versions stay). A DELETE writes a delete marker; ?version-id= on GET,
// HEAD, COPY and DELETE names one version; GET container?versions lists
// them. The versions are the object store's (storage/object/versions.go),
// the same ones S3's bucket versioning shows, so a bucket versioned
// through S3 reads the same here. It excludes the legacy versioned writes
// (versions.go): a container has one or the other, as in Swift.

import (
	"errors"
	"net/http"
	"strings"

	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/storage/object"
)

// emptyETag is the ETag Swift lists for a delete marker (no bytes).
const emptyETag = "d41d8cd98f00b204e9800998ecf8427e"

// versionedHeader reads X-Versions-Enabled into c (an empty value changes
// nothing); false once a 400 is answered (a container using the legacy
// versioned writes cannot be versioned, nor the other way round).
func (q *request) versionedHeader(c *object.Container) bool {
	if v := strings.TrimSpace(q.r.Header.Get("X-Versions-Enabled")); v != "" {
		switch strings.ToLower(v) {
		case "true", "1", "yes", "on", "t", "y":
			c.Versioning = object.VersioningEnabled
		default:
			c.Versioning = object.VersioningSuspended
		}
	}
	if c.Versioning == object.VersioningEnabled && c.Versions != "" {
		fail(q.w, q.r, http.StatusBadRequest, "Bad Request: Cannot enable object versioning on a container that is already using the legacy versioned writes feature.")
		return false
	}
	if c.Versioning != "" && c.Versions != "" {
		fail(q.w, q.r, http.StatusBadRequest, "Bad Request: Cannot use the legacy versioned writes (X-Versions-Location, X-History-Location) on a container that has had object versioning (X-Versions-Enabled).")
		return false
	}
	return true
}

// versioningHeader shows the state as Swift does, once it was ever set.
func versioningHeader(h http.Header, c *object.Container) {
	switch c.Versioning {
	case object.VersioningEnabled:
		h.Set("X-Versions-Enabled", "True")
	case object.VersioningSuspended:
		h.Set("X-Versions-Enabled", "False")
	}
}

// objectVersionHeader names an object's version, for one written while
// its container was versioned (or suspended).
func objectVersionHeader(h http.Header, o *object.Object) {
	if o.VersionID != "" || o.Seq != 0 {
		h.Set("X-Object-Version-Id", object.ShownVersion(o.VersionID))
	}
}

// versionParam is ?version-id=, and whether it was given.
func (q *request) versionParam() (string, bool) {
	v := q.r.URL.Query()
	return v.Get("version-id"), v.Has("version-id")
}

// headObject is the object a GET, HEAD or COPY reads: the current one, or
// the version ?version-id= names (a delete marker is not found, as in
// Swift).
func (q *request) headObject(container, name string) (*object.Object, error) {
	v, ok := q.versionParam()
	if !ok {
		return q.h.Store.Head(q.r.Context(), q.project, container, name)
	}
	if v == "" {
		return nil, store.Invalidf("version-id: must not be empty")
	}
	o, err := q.h.Store.HeadVersion(q.r.Context(), q.project, container, name, v)
	if err == nil && o.DeleteMarker {
		q.w.Header().Set("X-Object-Version-Id", object.ShownVersion(o.VersionID))
		return nil, store.NotFoundf("version %s of %s is a delete marker", v, name)
	}
	return o, err
}

// refuseVersionWrite answers 400 to a PUT or POST naming a version: a
// write makes a new version, as Swift answers.
func (q *request) refuseVersionWrite() bool {
	if _, ok := q.versionParam(); ok && (q.r.Method == http.MethodPut || q.r.Method == http.MethodPost) {
		fail(q.w, q.r, http.StatusBadRequest, "Bad Request: version-id is only taken by GET, HEAD, COPY and DELETE")
		return true
	}
	return false
}

// deleteVersion answers DELETE ?version-id=: that version goes for good
// (no delete marker is written); if it was the current one, the newest
// older version becomes current.
func (q *request) deleteVersion(v string) {
	if v == "" {
		fail(q.w, q.r, http.StatusBadRequest, "Bad Request: version-id must not be empty")
		return
	}
	if q.r.URL.Query().Get("multipart-manifest") == "delete" {
		fail(q.w, q.r, http.StatusBadRequest, "Bad Request: multipart-manifest=delete does not take a version-id")
		return
	}
	res, err := q.h.Store.Remove(q.r.Context(), q.project, q.container, q.name, v)
	if err != nil {
		q.failErr(err)
		return
	}
	q.w.Header().Set("X-Object-Version-Id", res.VersionID)
	// As Swift: the version now current, "null" when the name has none
	// (gophercloud deletes by this id next); read in the same command.
	q.w.Header().Set("X-Object-Current-Version-Id", res.Current)
	q.w.WriteHeader(http.StatusNoContent)
}

// listVersions answers GET container?versions: JSON only, as Swift, with
// marker and version_marker paging.
func (q *request) listVersions(format listFormat, limit int) {
	if format != formatJSON {
		fail(q.w, q.r, http.StatusNotAcceptable, "Not Acceptable: a versions listing is JSON only")
		return
	}
	v := q.r.URL.Query()
	o := object.VersionListOptions{Prefix: v.Get("prefix"), Delimiter: v.Get("delimiter"), KeyMarker: v.Get("marker"), VersionMarker: v.Get("version_marker"), Limit: limit}
	if o.VersionMarker != "" && o.KeyMarker == "" {
		fail(q.w, q.r, http.StatusBadRequest, "Bad Request: version_marker param requires marker")
		return
	}
	l := &listing{root: "container", name: q.container}
	if limit == 0 {
		writeListing(q.w, q.r, format, l)
		return
	}
	entries, _, err := q.h.Store.ListVersions(q.r.Context(), q.project, q.container, o)
	if errors.Is(err, store.ErrNotFound) || err != nil {
		q.failErr(err)
		return
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
			"version_id":    object.ShownVersion(ob.VersionID), "is_latest": e.IsLatest,
		}
		if ob.DeleteMarker {
			row["hash"], row["content_type"] = emptyETag, deleteMarkerType
		}
		l.add(ob.Name, nil, row)
	}
	writeListing(q.w, q.r, format, l)
}

// plainDelete deletes an object of a container without legacy versioned
// writes. In a versioned container that writes a delete marker, named in
// X-Object-Version-Id of the request's own object; as in Swift, a name
// without a current object answers 404, the marker written all the same.
func (q *request) plainDelete(container, name string) error {
	res, err := q.h.Store.Remove(q.r.Context(), q.project, container, name, "")
	if err != nil {
		return err
	}
	if res.DeleteMarker && container == q.container && name == q.name {
		q.w.Header().Set("X-Object-Version-Id", res.VersionID)
	}
	if res.DeleteMarker && !res.Existed {
		return store.NotFoundf("object %s not found", name)
	}
	return nil
}
