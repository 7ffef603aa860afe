package swift

// Versioned writes: Swift's legacy versioned_writes middleware. A container
// with X-Versions-Location (stack mode) or X-History-Location (history
// mode) names an archive container in the same account. Every write that
// replaces an object of the container (PUT, copy, manifest, form or
// archive upload) first copies the object it replaces into the archive as
// <3 hex digits: length of the name><name>/<its timestamp>. A DELETE in
// stack mode puts the newest archived version back in place (and removes
// it from the archive); in history mode it archives the object, adds a
// zero-byte delete marker, then deletes it.
//
// Nothing is lost midway: every step copies before it overwrites or
// deletes, so a failure (or a crash) between two steps leaves at worst an
// archived version twice, never a version only in flight. As in Swift, the
// steps are separate writes: two writers racing on one name may each
// archive the same version, and one's replaced version may not be archived.

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/storage/object"
)

// deleteMarkerType is the content type of a history mode's delete marker,
// as Swift writes it (a swift_ parameter no client sets).
const deleteMarkerType = "application/x-deleted;swift_versions_deleted=1"

// versionsAttrs reads X-Versions-Location, X-History-Location and their
// X-Remove- headers into c, as Swift's container_request: both set at
// once is a 400; an empty value, or a remove header, turns versioning
// off; a value wins over a remove header in the same request.
func (q *request) versionsAttrs(c *object.Container) bool {
	h := q.r.Header
	vals := map[string]string{}
	for _, k := range []string{"X-Versions-Location", "X-History-Location"} {
		if v, ok := h[k]; ok {
			vals[k] = strings.Join(v, ",")
		}
	}
	vl, hasV := vals["X-Versions-Location"]
	hl, hasH := vals["X-History-Location"]
	if hasV && hasH {
		switch {
		case hl == "":
			hasH = false
		case vl != "":
			fail(q.w, q.r, http.StatusBadRequest, "Only one of X-Versions-Location or X-History-Location may be specified")
			return false
		default:
			hasV = false
		}
	}
	if hasV || hasH {
		val, mode := vl, object.VersionsStack
		if !hasV {
			val, mode = hl, object.VersionsHistory
		}
		if val == "" {
			c.Versions, c.VersionsMode = "", ""
			return true
		}
		name, err := url.PathUnescape(val)
		if err != nil || strings.Contains(name, "/") {
			fail(q.w, q.r, http.StatusPreconditionFailed, "Container name cannot contain slashes")
			return false
		}
		if err := object.CheckName("container", name, maxContainerName); err != nil {
			fail(q.w, q.r, http.StatusBadRequest, "Bad Request: the versions location: "+err.Error())
			return false
		}
		c.Versions, c.VersionsMode = val, mode
		return true
	}
	if h.Get("X-Remove-Versions-Location") != "" || h.Get("X-Remove-History-Location") != "" {
		c.Versions, c.VersionsMode = "", ""
	}
	return true
}

// versionsHeader shows a container's versioning as Swift does: the
// location under the header that set it.
func versionsHeader(h http.Header, c *object.Container) {
	if c.Versions == "" {
		return
	}
	if c.VersionsMode == object.VersionsHistory {
		h.Set("X-History-Location", c.Versions)
	} else {
		h.Set("X-Versions-Location", c.Versions)
	}
}

// archiveOf is the archive container of container and its mode ("" if
// the container is not versioned or not found: the write then fails or
// succeeds on its own).
func (q *request) archiveOf(container string) (archive, mode string, err error) {
	c, err := q.h.Store.Container(q.r.Context(), q.project, container)
	if errors.Is(err, store.ErrNotFound) || err == nil && c.Versions == "" {
		return "", "", nil
	}
	if err != nil {
		return "", "", err
	}
	archive, uerr := url.PathUnescape(c.Versions)
	if uerr != nil {
		archive = c.Versions
	}
	mode = c.VersionsMode
	if mode == "" {
		mode = object.VersionsStack
	}
	return archive, mode, nil
}

// versionPrefix is the archive names' prefix for an object: its name's
// length in bytes as three hex digits, the name, a slash.
func versionPrefix(name string) string { return fmt.Sprintf("%03x%s/", len(name), name) }

// versionName is the archive name of the version of name written at t,
// the timestamp as Swift's Timestamp.internal writes it.
func versionName(name string, t time.Time) string {
	return versionPrefix(name) + fmt.Sprintf("%016.05f", float64(t.UnixNano())/1e9)
}

// openArchive checks that the archive exists and that the caller may
// write objects in it: a 412 or a 403 otherwise, as Swift answers a
// failed archive write. A request signed with a temp URL or form key (no
// principal) was let write into the versioned container by its owner's
// key, which is what Swift's tempurl authorizes too.
func (q *request) openArchive(archive string) error {
	c, err := q.h.Store.Container(q.r.Context(), q.project, archive)
	if errors.Is(err, store.ErrNotFound) {
		return api.Errorf(http.StatusPreconditionFailed, "the versions container %s does not exist", archive)
	}
	if err != nil {
		return err
	}
	if q.who != nil && !q.who.CanWrite(q.project) && !granted(c.WriteACL, q.who) {
		return api.Errorf(http.StatusForbidden, "writing the versions container %s was denied", archive)
	}
	return nil
}

// archiveFailed maps a failed archive step as Swift does: a client error
// (a missing container, a quota) is 412, anything else is itself.
func archiveFailed(err error) error {
	var ae *api.Error
	if errors.As(err, &ae) && (ae.Status == http.StatusPreconditionFailed || ae.Status == http.StatusForbidden) {
		return err
	}
	if st := fileStatus(err); st >= 400 && st < 500 {
		return api.Errorf(http.StatusPreconditionFailed, "the current version could not be archived: %v", err)
	}
	return err
}

// copyVersion writes src at container/name with all its attributes. A
// static large object's manifest is copied as a manifest, as Swift's
// archive keeps it.
func (q *request) copyVersion(src *object.Object, container, name string) error {
	a := object.Attrs{ContentType: src.ContentType, Meta: src.Meta, Headers: src.Headers}
	var err error
	if len(src.Segments) > 0 && src.Headers[dloHeader] == "" {
		segs := append([]object.Segment(nil), src.Segments...)
		_, err = q.h.Store.PutManifest(q.r.Context(), q.project, container, name, segs, a)
	} else {
		_, err = q.h.Store.Copy(q.r.Context(), src, q.project, container, name, a)
	}
	return err
}

// archiveCurrent copies the current object container/name, if there is
// one, into archive, and returns the time its archived name holds (zero
// when there was nothing to archive). A version already there under its
// name (a retry after a failure past this step) is not copied twice.
func (q *request) archiveCurrent(archive, container, name string) (time.Time, error) {
	ctx := q.r.Context()
	cur, err := q.h.Store.Head(ctx, q.project, container, name)
	if errors.Is(err, store.ErrNotFound) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	if err := q.openArchive(archive); err != nil {
		return time.Time{}, err
	}
	at := cur.Modified
	for range 10 {
		vn := versionName(name, at)
		old, err := q.h.Store.Head(ctx, q.project, archive, vn)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return at, archiveFailed(q.copyVersion(cur, archive, vn))
		case err != nil:
			return time.Time{}, err
		case old.ETag == cur.ETag && old.Size == cur.Size:
			return at, nil
		}
		// Another version has this time (timestamps are to the
		// millisecond): take the next name, still in time order.
		at = at.Add(10 * time.Microsecond)
	}
	return time.Time{}, api.Errorf(http.StatusConflict, "too many versions of %s at one time", name)
}

// archiveBeforeWrite archives what a write to container/name is about
// to replace, if the container is versioned.
func (q *request) archiveBeforeWrite(container, name string) error {
	archive, _, err := q.archiveOf(container)
	if err != nil || archive == "" {
		return err
	}
	_, err = q.archiveCurrent(archive, container, name)
	return err
}

// versionedWrite is archiveBeforeWrite for a request about to write:
// false once it has answered the failure.
func (q *request) versionedWrite(container, name string) bool {
	if err := q.archiveBeforeWrite(container, name); err != nil {
		q.failErr(err)
		return false
	}
	return true
}

// versionedDelete deletes container/name as its container's versioning
// says; it reports the error of the delete that answers the request.
func (q *request) versionedDelete(container, name string) error {
	archive, mode, err := q.archiveOf(container)
	switch {
	case err != nil:
		return err
	case archive == "":
		return q.plainDelete(container, name)
	case mode == object.VersionsHistory:
		return q.deletePush(archive, container, name)
	}
	return q.deletePop(archive, container, name)
}

// deletePush is a history mode DELETE: archive the object, write a delete
// marker, then delete it.
func (q *request) deletePush(archive, container, name string) error {
	ctx := q.r.Context()
	archived, err := q.archiveCurrent(archive, container, name)
	if err != nil {
		return err
	}
	if err := q.openArchive(archive); err != nil {
		return err
	}
	// The marker goes above the version just archived: that one's name
	// is its own time, to the millisecond and moved on past a name taken,
	// so within that millisecond it may be later than now.
	at := q.h.now()
	if !archived.IsZero() && !at.After(archived) {
		at = archived.Add(10 * time.Microsecond)
	}
	_, err = q.h.Store.Put(ctx, q.project, archive, versionName(name, at), strings.NewReader(""),
		object.PutOptions{Attrs: object.Attrs{ContentType: deleteMarkerType}, Size: 0})
	if err != nil {
		return archiveFailed(err)
	}
	return q.h.Store.Delete(ctx, q.project, container, name)
}

// archived lists the archived versions of name, oldest first (nil if
// the archive does not exist).
func (q *request) archived(archive, name string) ([]*object.Object, error) {
	var out []*object.Object
	o := object.ListOptions{Prefix: versionPrefix(name), Limit: containerListLimit}
	for {
		es, more, err := q.h.Store.List(q.r.Context(), q.project, archive, o)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			if e.Object != nil {
				out = append(out, e.Object)
			}
		}
		if !more || len(es) == 0 {
			return out, nil
		}
		o.Marker = es[len(es)-1].Name()
	}
}

// restore copies the archived version v over container/name; false if v
// is gone from the archive meanwhile (or has expired).
func (q *request) restore(v *object.Object, archive, container, name string) (bool, error) {
	src, err := q.h.Store.Head(q.r.Context(), q.project, archive, v.Name)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := q.copyVersion(src, container, name); err != nil {
		return false, archiveFailed(err)
	}
	return true, nil
}

// deletePop is a stack mode DELETE, as Swift's
// handle_obj_versions_delete_pop: the newest archived version replaces
// the object and leaves the archive; with none, the object is deleted. A
// delete marker on top (left by history mode) means the object was
// deleted: an object written since is deleted, else the version under
// the marker is restored and the marker removed.
func (q *request) deletePop(archive, container, name string) error {
	ctx := q.r.Context()
	versions, err := q.archived(archive, name)
	if err != nil {
		return err
	}
	if len(versions) > 0 {
		if err := q.openArchive(archive); err != nil {
			return err
		}
	}
	for i := len(versions) - 1; i >= 0; i-- {
		v := versions[i]
		if v.ContentType != deleteMarkerType {
			ok, err := q.restore(v, archive, container, name)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			return q.h.Store.Delete(ctx, q.project, archive, v.Name)
		}
		_, err := q.h.Store.Head(ctx, q.project, container, name)
		if err == nil {
			break // written since the marker: delete it
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		for j := i - 1; j >= 0 && versions[j].ContentType != deleteMarkerType; j-- {
			ok, err := q.restore(versions[j], archive, container, name)
			if err != nil {
				return err
			}
			if ok {
				if err := q.h.Store.Delete(ctx, q.project, archive, versions[j].Name); err != nil && !errors.Is(err, store.ErrNotFound) {
					return err
				}
				break
			}
		}
		return q.h.Store.Delete(ctx, q.project, archive, v.Name)
	}
	return q.h.Store.Delete(ctx, q.project, container, name)
}
