package swift

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/storage/blob"
	"github.com/rackstack/rackstack/storage/object"
)

func (q *request) objectOp() {
	if err := object.CheckName("object", q.name, maxObjectName); err != nil {
		fail(q.w, q.r, http.StatusBadRequest, "Bad Request: "+err.Error())
		return
	}
	if q.refuseVersionWrite() {
		return
	}
	switch q.r.Method {
	case http.MethodPut:
		q.putObject()
	case "COPY":
		q.copyMethod()
	case http.MethodGet, http.MethodHead:
		q.getObject()
	case http.MethodPost:
		q.postObject()
	case http.MethodDelete:
		q.deleteObject()
	default:
		fail(q.w, q.r, http.StatusMethodNotAllowed, "Method Not Allowed")
	}
}

// attrs reads the object attributes of a PUT or POST.
func (q *request) attrs(old map[string]string) (object.Attrs, bool) {
	set, remove, err := metaFrom(q.r.Header, "X-Object-Meta-", false)
	if err != nil {
		fail(q.w, q.r, http.StatusBadRequest, "Bad Request: "+err.Error())
		return object.Attrs{}, false
	}
	a := object.Attrs{
		ContentType: q.r.Header.Get("Content-Type"),
		Meta:        mergeMeta(old, set, remove),
		Headers:     api.KeepHeaders(q.r.Header),
	}
	if at, ok := q.deleteAt(); !ok {
		return object.Attrs{}, false
	} else if at != "" {
		if a.Headers == nil {
			a.Headers = map[string]string{}
		}
		a.Headers[object.DeleteAtHeader] = at
	}
	if m := q.r.Header.Get(dloHeader); m != "" {
		if c, _, ok := strings.Cut(strings.TrimPrefix(m, "/"), "/"); !ok || c == "" {
			fail(q.w, q.r, http.StatusBadRequest, "Bad Request: X-Object-Manifest must be in the format container/prefix")
			return object.Attrs{}, false
		}
		if a.Headers == nil {
			a.Headers = map[string]string{}
		}
		a.Headers[dloHeader] = m
	}
	return a, true
}

// deleteAt reads X-Delete-After or X-Delete-At as Swift's
// check_delete_headers does: the delete time to store ("" if none), or
// false once it has answered 400 with Swift's text.
func (q *request) deleteAt() (string, bool) {
	at, msg := parseDeleteAt(q.h.now(), q.r.Header.Get("X-Delete-At"), q.r.Header.Get("X-Delete-After"))
	if msg != "" {
		fail(q.w, q.r, http.StatusBadRequest, msg)
		return "", false
	}
	return at, true
}

// parseDeleteAt is Swift's check_delete_headers on an X-Delete-At and
// an X-Delete-After value ("" when absent; After wins): the delete time
// to store ("" if none), or Swift's message for a bad value.
func parseDeleteAt(now time.Time, at, after string) (string, string) {
	nowSec := float64(now.UnixNano()) / 1e9
	if after != "" {
		n, err := strconv.ParseInt(strings.TrimSpace(after), 10, 64)
		if err != nil {
			return "", "Non-integer X-Delete-After"
		}
		// Swift: the delete time is now+N truncated to the second, and
		// must be after now.
		due := now.Unix() + min(n, object.MaxDeleteAt)
		if n < 0 || float64(due) <= nowSec {
			return "", "X-Delete-After in past"
		}
		at = strconv.FormatInt(due, 10)
	}
	if at == "" {
		return "", ""
	}
	n, err := strconv.ParseInt(strings.TrimSpace(at), 10, 64)
	if err != nil {
		return "", "Non-integer X-Delete-At"
	}
	if float64(n) <= nowSec {
		return "", "X-Delete-At in past"
	}
	return object.FormatDeleteAt(n), ""
}

// withHeaders is the stored headers of a copy: the source's (without
// its delete time), each replaced by the one the request sends (a) and
// removed where the request sends it empty ("Content-Disposition:"
// takes it away); the delete time only the request's.
func withHeaders(req http.Header, a, old map[string]string) map[string]string {
	out := map[string]string{}
	maps.Copy(out, object.WithoutDeleteAt(old))
	maps.Copy(out, a)
	for _, k := range api.StoredHeaders {
		if vs, sent := req[http.CanonicalHeaderKey(k)]; sent && len(vs) > 0 && strings.TrimSpace(vs[0]) == "" {
			delete(out, k)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// putContentType is the content type a PUT stores, as Swift's proxy
// decides it: the one sent, unless none is sent or X-Detect-Content-Type
// is true, when it is guessed from the object name's extension
// (application/octet-stream when nothing matches). The guess is the bare
// media type, without the charset Go's table adds to some (Swift's
// Python mimetypes adds none).
func (q *request) putContentType(sent string) string {
	detect, _ := strconv.ParseBool(q.r.Header.Get("X-Detect-Content-Type"))
	if sent != "" && !detect {
		return sent
	}
	guess, _, _ := strings.Cut(mime.TypeByExtension(path.Ext(q.name)), ";")
	if guess = strings.TrimSpace(guess); guess == "" {
		return "application/octet-stream"
	}
	return guess
}

// dloHeader marks a dynamic large object: its bytes are the objects under
// a container/prefix, in name order, found at read time.
const dloHeader = "X-Object-Manifest"

// dynamicView resolves a dynamic large object into a manifest of its
// current segments.
func (q *request) dynamicView(o *object.Object) (*object.Object, error) {
	c, prefix, _ := strings.Cut(strings.TrimPrefix(o.Headers[dloHeader], "/"), "/")
	if u, err := url.PathUnescape(prefix); err == nil {
		prefix = u
	}
	entries, _, err := q.h.Store.List(q.r.Context(), q.project, c, object.ListOptions{Prefix: prefix, Limit: 10000})
	if err != nil {
		return nil, err
	}
	view := *o
	view.Segments, view.Size = nil, 0
	etags := ""
	for _, e := range entries {
		if e.Object == nil || len(e.Object.Segments) > 0 {
			continue
		}
		view.Segments = append(view.Segments, object.Segment{Container: c, Name: e.Object.Name, Size: e.Object.Size, ETag: e.Object.ETag})
		view.Size += e.Object.Size
		etags += e.Object.ETag
	}
	sum := md5.Sum([]byte(etags))
	view.ETag = hex.EncodeToString(sum[:])
	return &view, nil
}

// splitPath parses "/container/object" (URL-encoded, leading slash
// optional) as X-Copy-From and Destination carry it.
func splitPath(p string) (container, name string, ok bool) {
	if u, err := url.PathUnescape(p); err == nil {
		p = u
	}
	container, name, ok = strings.Cut(strings.TrimPrefix(p, "/"), "/")
	return container, name, ok && container != "" && name != ""
}

func (q *request) putObject() {
	ctx := q.r.Context()
	if src := q.r.Header.Get("X-Copy-From"); src != "" {
		sc, sn, ok := splitPath(src)
		if !ok {
			fail(q.w, q.r, http.StatusPreconditionFailed, "Precondition Failed: X-Copy-From header must be of the form <container name>/<object name>")
			return
		}
		q.copy(sc, sn, q.container, q.name)
		return
	}
	if q.r.URL.Query().Get("multipart-manifest") == "put" {
		q.putManifest()
		return
	}
	size := q.r.ContentLength
	// Go's server reports a body without Content-Length or chunked
	// encoding as empty; Swift wants the length said.
	if !chunked(q.r) && (size < 0 || q.r.Header.Get("Content-Length") == "") {
		fail(q.w, q.r, http.StatusLengthRequired, "Length Required: Content-Length or chunked transfer encoding is required")
		return
	}
	if size > maxFileSize {
		fail(q.w, q.r, http.StatusRequestEntityTooLarge, "Request Entity Too Large: the object is larger than "+strconv.Itoa(maxFileSize)+" bytes")
		return
	}
	a, ok := q.attrs(nil)
	if !ok {
		return
	}
	a.ContentType = q.putContentType(a.ContentType)
	body := io.Reader(q.r.Body)
	if size < 0 {
		// Chunked: bound it by the maximum object size.
		body = io.LimitReader(q.r.Body, maxFileSize+1)
	}
	// The blob store bounds how long the body may take to fill a stripe,
	// so a client that trickles it does not hold a stripe's blocks for as
	// long as it takes.
	if !q.versionedWrite(q.container, q.name) {
		return
	}
	bodyCtx := blob.WithBodyDeadline(ctx, http.NewResponseController(q.w).SetReadDeadline)
	o, err := q.h.Store.Put(bodyCtx, q.project, q.container, q.name, body, object.PutOptions{
		Attrs: a, Size: size, MD5: strings.Trim(q.r.Header.Get("Etag"), `"`), Synced: q.syncedAt,
	})
	if err != nil {
		q.failErr(err)
		return
	}
	if size < 0 && o.Size > maxFileSize {
		// This version only: in a versioned container a plain delete
		// would keep it and write a marker over it.
		q.h.Store.Remove(ctx, q.project, q.container, q.name, object.ShownVersion(o.VersionID))
		fail(q.w, q.r, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
		return
	}
	q.w.Header().Set("Etag", o.ETag)
	q.w.Header().Set("Last-Modified", o.Modified.UTC().Format(http.TimeFormat))
	objectVersionHeader(q.w.Header(), o)
	q.w.WriteHeader(http.StatusCreated)
}

func chunked(r *http.Request) bool {
	for _, te := range r.TransferEncoding {
		if te == "chunked" {
			return true
		}
	}
	return false
}

// copy stores a copy of source at destination; metadata is the source's
// merged with the request's unless X-Fresh-Metadata is true.
func (q *request) copy(srcContainer, srcName, dstContainer, dstName string) {
	ctx := q.r.Context()
	if q.who == nil || !q.who.CanRead(q.project) {
		// A copy reads another object: a temp URL grants one object.
		fail(q.w, q.r, http.StatusForbidden, "Forbidden")
		return
	}
	src, err := q.headObject(srcContainer, srcName)
	if err != nil {
		q.failErr(err)
		return
	}
	old := src.Meta
	if strings.EqualFold(q.r.Header.Get("X-Fresh-Metadata"), "true") {
		old = nil
	}
	a, ok := q.attrs(old)
	if !ok {
		return
	}
	if a.ContentType == "" {
		a.ContentType = src.ContentType
	}
	a.Headers = withHeaders(q.r.Header, a.Headers, src.Headers)
	if !q.versionedWrite(dstContainer, dstName) {
		return
	}
	o, err := q.h.Store.Copy(ctx, src, q.project, dstContainer, dstName, a)
	if err != nil {
		q.failErr(err)
		return
	}
	q.objectHeaders(o)
	h := q.w.Header()
	h.Set("X-Copied-From", srcContainer+"/"+url.PathEscape(srcName))
	h.Set("X-Copied-From-Last-Modified", src.Modified.UTC().Format(http.TimeFormat))
	h.Set("Last-Modified", o.Modified.UTC().Format(http.TimeFormat))
	q.w.WriteHeader(http.StatusCreated)
}

func (q *request) copyMethod() {
	dst := q.r.Header.Get("Destination")
	dc, dn, ok := splitPath(dst)
	if !ok {
		fail(q.w, q.r, http.StatusPreconditionFailed, "Precondition Failed: Destination header must be of the form <container name>/<object name>")
		return
	}
	q.copy(q.container, q.name, dc, dn)
}

type manifestEntry struct {
	Path  string `json:"path"`
	ETag  string `json:"etag"`
	Size  *int64 `json:"size_bytes"`
	Range string `json:"range"`
}

func (q *request) putManifest() {
	raw, err := io.ReadAll(io.LimitReader(q.r.Body, 8<<20+1))
	if err != nil {
		fail(q.w, q.r, http.StatusBadRequest, "Bad Request: reading the manifest failed")
		return
	}
	if len(raw) > 8<<20 {
		fail(q.w, q.r, http.StatusRequestEntityTooLarge, "Request Entity Too Large: manifest larger than 8 MiB")
		return
	}
	var entries []manifestEntry
	if err := json.Unmarshal(raw, &entries); err != nil {
		fail(q.w, q.r, http.StatusBadRequest, "Bad Request: the manifest must be a JSON list of {path, etag, size_bytes}: "+err.Error())
		return
	}
	if len(entries) == 0 || len(entries) > maxManifestSegs {
		fail(q.w, q.r, http.StatusBadRequest, "Bad Request: a manifest lists 1 to "+strconv.Itoa(maxManifestSegs)+" segments")
		return
	}
	segs := make([]object.Segment, 0, len(entries))
	for i, e := range entries {
		c, n, ok := splitPath(e.Path)
		if !ok || e.Range != "" {
			fail(q.w, q.r, http.StatusBadRequest, "Bad Request: segment "+strconv.Itoa(i)+": path must be /container/object (ranges are not supported)")
			return
		}
		sg := object.Segment{Container: c, Name: n, ETag: e.ETag}
		if e.Size != nil {
			sg.Size = *e.Size
		}
		segs = append(segs, sg)
	}
	a, ok := q.attrs(nil)
	if !ok {
		return
	}
	a.ContentType = q.putContentType(a.ContentType)
	if !q.versionedWrite(q.container, q.name) {
		return
	}
	o, err := q.h.Store.PutManifest(q.r.Context(), q.project, q.container, q.name, segs, a)
	if err != nil {
		q.failErr(err)
		return
	}
	q.w.Header().Set("Etag", `"`+o.ETag+`"`)
	q.w.Header().Set("Last-Modified", o.Modified.UTC().Format(http.TimeFormat))
	q.w.WriteHeader(http.StatusCreated)
}

func (q *request) objectHeaders(o *object.Object) {
	h := q.w.Header()
	h.Set("Content-Type", o.ContentType)
	h.Set("Last-Modified", o.Modified.UTC().Format(http.TimeFormat))
	h.Set("X-Timestamp", timestamp(o.Modified))
	h.Set("Accept-Ranges", "bytes")
	if len(o.Segments) > 0 && o.Headers[dloHeader] == "" {
		h.Set("Etag", `"`+o.ETag+`"`)
		h.Set("X-Static-Large-Object", "True")
	} else if o.Headers[dloHeader] != "" {
		h.Set("Etag", `"`+o.ETag+`"`)
	} else {
		h.Set("Etag", o.ETag)
	}
	for k, v := range o.Headers {
		h.Set(k, v)
	}
	objectVersionHeader(h, o)
	writeMeta(q.w, "X-Object-Meta-", o.Meta)
}

func (q *request) getObject() {
	ctx := q.r.Context()
	plain := q.w.Header().Clone()
	o, err := q.headObject(q.container, q.name)
	if err != nil {
		q.failErr(err)
		return
	}
	if len(o.Segments) > 0 && q.r.URL.Query().Get("multipart-manifest") == "get" {
		q.getManifest(o)
		return
	}
	if o.Headers[dloHeader] != "" && q.r.URL.Query().Get("multipart-manifest") != "get" {
		if o, err = q.dynamicView(o); err != nil {
			q.failErr(err)
			return
		}
	}
	q.objectHeaders(o)
	if st := api.Preconditions(q.r, o.ETag, o.Modified); st != 0 {
		q.w.WriteHeader(st)
		return
	}
	off, n, partial, err := api.ParseRange(q.r.Header.Get("Range"), o.Size)
	if errors.Is(err, api.ErrRange) {
		q.w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(o.Size, 10))
		fail(q.w, q.r, http.StatusRequestedRangeNotSatisfiable, "Requested Range Not Satisfiable")
		return
	}
	sw := api.NewStallWriter(q.w, q.h.sendStall())
	err = api.SendRange(sw, q.r, off, n, o.Size, partial, plain, func(w io.Writer) error {
		return q.h.Store.Read(ctx, o, off, n, w)
	})
	sw.Done()
	if err != nil {
		q.failErr(err)
	}
}

func (q *request) getManifest(o *object.Object) {
	out := make([]map[string]any, 0, len(o.Segments))
	for _, s := range o.Segments {
		out = append(out, map[string]any{"name": "/" + s.Container + "/" + s.Name, "hash": s.ETag, "bytes": s.Size, "content_type": "application/octet-stream"})
	}
	b, _ := json.Marshal(out)
	q.w.Header().Set("Content-Type", "application/json; charset=utf-8")
	q.w.Header().Set("X-Static-Large-Object", "True")
	q.w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	q.w.WriteHeader(http.StatusOK)
	if q.r.Method != http.MethodHead {
		q.w.Write(b)
	}
}

func (q *request) postObject() {
	ctx := q.r.Context()
	o, err := q.h.Store.Head(ctx, q.project, q.container, q.name)
	if err != nil {
		q.failErr(err)
		return
	}
	// Swift's POST replaces the user metadata as a whole, and with it the
	// headers an object keeps (Content-Disposition, Content-Encoding,
	// Cache-Control, Content-Language, Expires, X-Delete-At,
	// X-Object-Manifest): those the request sends are the ones it keeps,
	// as Swift's object server writes them (its .meta replaces the data
	// file's; openstacksdk's object tests check it). Its content type,
	// ETag and large-object segments stay.
	a, ok := q.attrs(nil)
	if !ok {
		return
	}
	if _, err := q.h.Store.SetMeta(ctx, o, a); err != nil {
		q.failErr(err)
		return
	}
	q.w.WriteHeader(http.StatusAccepted)
}

func (q *request) deleteObject() {
	ctx := q.r.Context()
	if v, ok := q.versionParam(); ok {
		q.deleteVersion(v)
		return
	}
	if q.synced && !q.syncedAt.IsZero() {
		q.deleteSynced()
		return
	}
	if q.r.URL.Query().Get("multipart-manifest") == "delete" {
		o, err := q.h.Store.Head(ctx, q.project, q.container, q.name)
		if err != nil {
			q.failErr(err)
			return
		}
		for _, s := range o.Segments {
			if err := q.versionedDelete(s.Container, s.Name); err != nil && api404(err) {
				continue
			} else if err != nil {
				q.failErr(err)
				return
			}
		}
	}
	if err := q.versionedDelete(q.container, q.name); err != nil {
		q.failErr(err)
		return
	}
	q.w.WriteHeader(http.StatusNoContent)
}

func api404(err error) bool { return errors.Is(err, store.ErrNotFound) }
