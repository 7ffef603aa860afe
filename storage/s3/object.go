package s3

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/storage/object"
)

func (q *request) objectOp() {
	write := q.r.Method != http.MethodGet && q.r.Method != http.MethodHead
	if !q.requireAuth(write) {
		return
	}
	if len(q.key) > maxKeyLength {
		q.fail("KeyTooLongError", http.StatusBadRequest, "your key is too long (at most 1024 bytes)")
		return
	}
	if err := object.CheckName("key", q.key, maxKeyLength); err != nil {
		q.fail("InvalidArgument", http.StatusBadRequest, err.Error())
		return
	}
	if q.r.Method != http.MethodDelete && q.refuseEncryption() {
		return
	}
	if v := q.q.Get("versionId"); q.q.Has("versionId") && !validVersionID(v) {
		// A malformed id names nothing, and must not act on the current
		// object.
		q.fail("InvalidArgument", http.StatusBadRequest, "Invalid version id specified")
		return
	}
	if q.q.Has("acl") {
		if q.currentVersionOnly("acl") {
			q.objectACL()
		}
		return
	}
	if q.q.Has("tagging") {
		if q.currentVersionOnly("tagging") {
			q.objectTagging()
		}
		return
	}
	if q.q.Has("versionId") && (q.r.Method == http.MethodPut || q.r.Method == http.MethodPost) {
		// A write makes a new version; it cannot name one.
		q.fail("InvalidArgument", http.StatusBadRequest, "versionId is not taken by a "+q.r.Method+" of an object")
		return
	}
	for _, sub := range objectSubresources {
		// Never taken for the object itself: a DELETE ?tagging must not
		// delete the object, a GET ?attributes not send its bytes.
		if q.q.Has(sub) {
			q.fail("NotImplemented", http.StatusNotImplemented, "the object sub-resource ?"+sub+" is not implemented")
			return
		}
	}
	switch q.r.Method {
	case http.MethodPut:
		switch {
		case q.q.Has("uploadId"):
			q.uploadPart()
		case !q.writeACLHolds():
		case q.r.Header.Get("x-amz-copy-source") != "":
			q.copyObject()
		default:
			q.putObject()
		}
	case http.MethodPost:
		switch {
		case q.q.Has("uploads") && !q.writeACLHolds():
		case q.q.Has("uploads"):
			q.createUpload()
		case q.q.Has("uploadId"):
			q.completeUpload()
		default:
			q.fail("MethodNotAllowed", http.StatusMethodNotAllowed, "POST on an object is ?uploads or ?uploadId")
		}
	case http.MethodGet, http.MethodHead:
		if q.q.Has("uploadId") {
			q.listParts()
			return
		}
		q.getObject()
	case http.MethodDelete:
		if q.q.Has("uploadId") {
			q.abortUpload()
			return
		}
		q.deleteObject()
	default:
		q.fail("MethodNotAllowed", http.StatusMethodNotAllowed, "the method is not allowed against this resource")
	}
}

// objectSubresources are the query parameters naming a sub-resource of an
// object that this store does not keep.
var objectSubresources = []string{"attributes", "legal-hold", "restore", "retention", "select", "torrent"}

// refuseEncryption answers NotImplemented to a request asking for
// server-side encryption (SSE-S3, SSE-KMS or SSE-C, of the object or of a
// copy's source): storing the bytes in clear while the client believes them
// encrypted, or serving them without the key it must present, would be
// worse than refusing.
func (q *request) refuseEncryption() bool {
	for k := range q.r.Header {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "x-amz-server-side-encryption") || strings.HasPrefix(lk, "x-amz-copy-source-server-side-encryption") {
			q.fail("NotImplemented", http.StatusNotImplemented, "server-side encryption is not implemented (header "+lk+")")
			return true
		}
	}
	return false
}

// attrs reads Content-Type, x-amz-meta-* and the stored headers.
func (q *request) attrs() (object.Attrs, bool) {
	meta := map[string]string{}
	total := 0
	for k, vs := range q.r.Header {
		name, ok := strings.CutPrefix(strings.ToLower(k), "x-amz-meta-")
		if !ok || name == "" {
			continue
		}
		v := strings.Join(vs, ",")
		meta[name] = v
		total += len(name) + len(v)
	}
	if total > maxUserMeta {
		q.fail("MetadataTooLarge", http.StatusBadRequest, "your metadata headers exceed the maximum allowed metadata size of 2 KB")
		return object.Attrs{}, false
	}
	if len(meta) == 0 {
		meta = nil
	}
	return object.Attrs{ContentType: q.r.Header.Get("Content-Type"), Meta: meta, Headers: api.KeepHeaders(q.r.Header)}, true
}

// contentMD5 decodes Content-MD5 (base64) into hex; "" if absent.
func (q *request) contentMD5() (string, bool) {
	v := q.r.Header.Get("Content-MD5")
	if v == "" {
		return "", true
	}
	raw, err := base64.StdEncoding.DecodeString(v)
	if err != nil || len(raw) != 16 {
		q.fail("InvalidDigest", http.StatusBadRequest, "the Content-MD5 you specified is not valid")
		return "", false
	}
	return hex.EncodeToString(raw), true
}

// bodySize checks the declared length of an upload. A body sent with
// Transfer-Encoding: chunked has no Content-Length; S3 then takes its
// length from x-amz-decoded-content-length.
func (q *request) bodySize() (int64, bool) {
	size := q.r.ContentLength
	if v := q.r.Header.Get("x-amz-decoded-content-length"); size < 0 && v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			q.fail("InvalidArgument", http.StatusBadRequest, "x-amz-decoded-content-length must be a non-negative integer")
			return 0, false
		}
		size = n
	}
	if size < 0 {
		q.fail("MissingContentLength", http.StatusLengthRequired, "you must provide the Content-Length HTTP header")
		return 0, false
	}
	if size > maxObjectSize {
		q.fail("EntityTooLarge", http.StatusBadRequest, "your proposed upload exceeds the maximum allowed object size")
		return 0, false
	}
	return size, true
}

// uploadBody checks what a PUT says about its body: its length and, if
// given, its Content-MD5 (returned as hex).
func (q *request) uploadBody() (size int64, md5 string, ok bool) {
	if size, ok = q.bodySize(); !ok {
		return 0, "", false
	}
	md5, ok = q.contentMD5()
	return size, md5, ok
}

func (q *request) putObject() {
	size, sum, ok := q.uploadBody()
	if !ok {
		return
	}
	a, ok := q.attrs()
	if !ok {
		return
	}
	if a.Tags, ok = q.tagHeader(); !ok {
		return
	}
	o, err := q.h.Store.Put(q.bodyContext(), q.project(), q.bucket, q.key, q.r.Body, object.PutOptions{Attrs: a, Size: size, MD5: sum})
	if err != nil {
		q.bucketFail(err) // the only thing that can be missing is the bucket
		return
	}
	q.w.Header().Set("ETag", quote(o.ETag))
	setVersionHeader(q.w.Header(), o)
	q.w.WriteHeader(http.StatusOK)
}

type copyObjectResult struct {
	XMLName      xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CopyObjectResult"`
	LastModified string   `xml:"LastModified"`
	ETag         string   `xml:"ETag"`
}

func (q *request) copyObject() {
	sb, sk, sv, ok := q.copySource()
	if !ok {
		return
	}
	ctx := q.r.Context()
	from, ok := q.copySourceObject(sb, sk, sv)
	if !ok {
		return
	}
	var a object.Attrs
	switch q.r.Header.Get("x-amz-metadata-directive") {
	case "", "COPY":
		if sb == q.bucket && sk == q.key && sv == "" {
			q.fail("InvalidRequest", http.StatusBadRequest, "this copy request is illegal because it is trying to copy an object to itself without changing the object's metadata")
			return
		}
		a = object.Attrs{ContentType: from.ContentType, Meta: from.Meta, Headers: object.WithoutDeleteAt(from.Headers)}
	case "REPLACE":
		if a, ok = q.attrs(); !ok {
			return
		}
	default:
		q.fail("InvalidArgument", http.StatusBadRequest, "x-amz-metadata-directive must be COPY or REPLACE")
		return
	}
	if a.Tags, ok = q.copyTags(from.Tags); !ok {
		return
	}
	o, err := q.h.Store.Copy(ctx, from, q.project(), q.bucket, q.key, a)
	if err != nil {
		q.bucketFail(err) // the only thing that can be missing is the bucket
		return
	}
	if versioned(from) {
		q.w.Header().Set("x-amz-copy-source-version-id", object.ShownVersion(from.VersionID))
	}
	setVersionHeader(q.w.Header(), o)
	writeXML(q.w, http.StatusOK, copyObjectResult{LastModified: isoTime(o.Modified), ETag: quote(o.ETag)})
}

// copySourceObject is the source of a copy (CopyObject, UploadPartCopy)
// in the caller's project, once its x-amz-copy-source-if-* conditions
// hold; false once the failure is answered.
func (q *request) copySourceObject(bucket, key, version string) (*object.Object, bool) {
	from, ok := q.headVersion(bucket, key, version, true)
	if !ok {
		return nil, false
	}
	if !copyConditionsHold(q.r.Header, from) {
		q.fail("PreconditionFailed", http.StatusPreconditionFailed, "at least one of the x-amz-copy-source-if-* preconditions you specified did not hold")
		return nil, false
	}
	return from, true
}

// copyConditions map CopyObject's source conditions to the HTTP
// conditional headers they mirror.
var copyConditions = map[string]string{
	"x-amz-copy-source-if-match":            "If-Match",
	"x-amz-copy-source-if-none-match":       "If-None-Match",
	"x-amz-copy-source-if-modified-since":   "If-Modified-Since",
	"x-amz-copy-source-if-unmodified-since": "If-Unmodified-Since",
}

// copyConditionsHold evaluates a copy's source conditions with the rules of
// a GET's (If-Match true overrides If-Unmodified-Since false; If-None-Match
// decides over If-Modified-Since). Where a GET would answer 304, a copy
// fails: S3 answers 412 for every condition of a copy.
func copyConditionsHold(h http.Header, src *object.Object) bool {
	cond := &http.Request{Header: http.Header{}}
	for from, to := range copyConditions {
		if v := h.Get(from); v != "" {
			cond.Header.Set(to, v)
		}
	}
	return api.Preconditions(cond, src.ETag, src.Modified) == 0
}

// noSuchKey answers for a missing object (or bucket): the request's own, or
// a copy's source.
func (q *request) noSuchKey(err error, bucket, key string) {
	if !errors.Is(err, store.ErrNotFound) {
		q.failErr(err)
		return
	}
	var del *object.DeletedError
	if errors.As(err, &del) && bucket == q.bucket && key == q.key {
		// The key's newest version is a delete marker.
		q.w.Header().Set("x-amz-delete-marker", "true")
		q.w.Header().Set("x-amz-version-id", del.VersionID)
	}
	if _, cerr := q.h.Store.Container(q.r.Context(), q.project(), bucket); cerr != nil {
		if errors.Is(cerr, store.ErrNotFound) {
			q.failBody(errorBody{Code: "NoSuchBucket", Message: "the specified bucket does not exist", Bucket: bucket}, http.StatusNotFound)
			return
		}
		q.failErr(cerr)
		return
	}
	q.failBody(errorBody{Code: "NoSuchKey", Message: "the specified key does not exist", Key: key, Bucket: bucket}, http.StatusNotFound)
}

// overrides are the response-* query parameters of a GET.
var overrides = map[string]string{
	"response-content-type": "Content-Type", "response-content-language": "Content-Language",
	"response-expires": "Expires", "response-cache-control": "Cache-Control",
	"response-content-disposition": "Content-Disposition", "response-content-encoding": "Content-Encoding",
}

// multipartCount is the number of parts of an object made by a multipart
// upload (its ETag ends in "-N"), 0 for any other object.
func multipartCount(o *object.Object) int {
	_, suffix, ok := strings.Cut(o.ETag, "-")
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(suffix)
	if err != nil || n != len(o.Parts) {
		return 0
	}
	return n
}

// partRange is the byte range of part pn: one of a multipart object's parts
// (206, as S3 answers), or the whole of any other object as its part 1.
func partRange(o *object.Object, count, pn int) (off, n int64, partial, ok bool) {
	if count == 0 {
		return 0, o.Size, false, pn == 1
	}
	if pn > count {
		return 0, 0, false, false
	}
	for _, p := range o.Parts[:pn-1] {
		off += p.Size
	}
	return off, o.Parts[pn-1].Size, true, true
}

func (q *request) getObject() {
	ctx := q.r.Context()
	plain := q.w.Header().Clone()
	o, ok := q.headVersion(q.bucket, q.key, q.q.Get("versionId"), false)
	if !ok {
		return
	}
	h := q.w.Header()
	setVersionHeader(h, o)
	h.Set("Content-Type", o.ContentType)
	h.Set("ETag", quote(o.ETag))
	h.Set("Last-Modified", o.Modified.UTC().Format(http.TimeFormat))
	h.Set("Accept-Ranges", "bytes")
	setTaggingCount(h, o.Tags)
	for k, v := range o.Headers {
		h.Set(k, v)
	}
	for k, v := range o.Meta {
		// Written into the map directly: Set would canonicalise the key
		// to X-Amz-Meta-Foo, and clients that take the name after the
		// prefix as sent (boto3) would see "Foo" for "foo".
		h["x-amz-meta-"+k] = []string{v}
	}
	for p, hdr := range overrides {
		if v := q.q.Get(p); v != "" {
			h.Set(hdr, v)
		}
	}
	if st := api.Preconditions(q.r, o.ETag, o.Modified); st != 0 {
		if st == http.StatusPreconditionFailed {
			q.fail("PreconditionFailed", st, "at least one of the preconditions you specified did not hold")
			return
		}
		q.w.WriteHeader(st)
		return
	}
	count := multipartCount(o)
	if count > 0 {
		h.Set("x-amz-mp-parts-count", strconv.Itoa(count))
	}
	var off, n int64
	var partial bool
	var err error
	if q.q.Has("partNumber") {
		if q.r.Header.Get("Range") != "" {
			q.fail("InvalidRequest", http.StatusBadRequest, "cannot specify both Range header and partNumber query parameter")
			return
		}
		pn, err := strconv.Atoi(q.q.Get("partNumber"))
		if err != nil || pn < 1 || pn > object.MaxParts {
			q.fail("InvalidArgument", http.StatusBadRequest, "partNumber must be an integer between 1 and 10000")
			return
		}
		if off, n, partial, ok = partRange(o, count, pn); !ok {
			q.fail("InvalidPart", http.StatusBadRequest, fmt.Sprintf("part %d does not exist: the object has %d part(s)", pn, max(count, 1)))
			return
		}
	} else {
		off, n, partial, err = api.ParseRange(q.r.Header.Get("Range"), o.Size)
		if errors.Is(err, api.ErrRange) {
			h.Set("Content-Range", "bytes */"+strconv.FormatInt(o.Size, 10))
			q.fail("InvalidRange", http.StatusRequestedRangeNotSatisfiable, "the requested range is not satisfiable")
			return
		}
	}
	sw := api.NewStallWriter(q.w, q.h.sendStall())
	err = api.SendRange(sw, q.r, off, n, o.Size, partial, plain, func(w io.Writer) error {
		return q.h.Store.Read(ctx, o, off, n, w)
	})
	sw.Done()
	if err != nil {
		q.failErr(err) // InternalError, as S3 answers when it cannot serve stored bytes
	}
}
