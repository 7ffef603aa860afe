package s3

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"net/http"
	"net/url"
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
	switch q.r.Method {
	case http.MethodPut:
		switch {
		case q.q.Has("uploadId"):
			q.uploadPart()
		case q.r.Header.Get("x-amz-copy-source") != "":
			q.copyObject()
		case q.q.Has("tagging"), q.q.Has("acl"):
			q.fail("NotImplemented", http.StatusNotImplemented, "object tagging and ACLs are not implemented")
		default:
			q.putObject()
		}
	case http.MethodPost:
		switch {
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
		if q.q.Has("tagging") || q.q.Has("acl") {
			q.fail("NotImplemented", http.StatusNotImplemented, "object tagging and ACLs are not implemented")
			return
		}
		q.getObject()
	case http.MethodDelete:
		if q.q.Has("uploadId") {
			q.abortUpload()
			return
		}
		err := q.h.Store.Delete(q.r.Context(), q.project(), q.bucket, q.key)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			q.failErr(err)
			return
		}
		if errors.Is(err, store.ErrNotFound) {
			if _, cerr := q.h.Store.Container(q.r.Context(), q.project(), q.bucket); cerr != nil {
				q.bucketFail(cerr)
				return
			}
		}
		q.w.WriteHeader(http.StatusNoContent)
	default:
		q.fail("MethodNotAllowed", http.StatusMethodNotAllowed, "the method is not allowed against this resource")
	}
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

// bodySize checks the declared length of an upload.
func (q *request) bodySize() (int64, bool) {
	size := q.r.ContentLength
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
	o, err := q.h.Store.Put(q.r.Context(), q.project(), q.bucket, q.key, q.r.Body, object.PutOptions{Attrs: a, Size: size, MD5: sum})
	if err != nil {
		q.bucketFail(err) // the only thing that can be missing is the bucket
		return
	}
	q.w.Header().Set("ETag", quote(o.ETag))
	q.w.WriteHeader(http.StatusOK)
}

type copyObjectResult struct {
	XMLName      xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CopyObjectResult"`
	LastModified string   `xml:"LastModified"`
	ETag         string   `xml:"ETag"`
}

func (q *request) copyObject() {
	src := q.r.Header.Get("x-amz-copy-source")
	if i := strings.Index(src, "?"); i >= 0 {
		src = src[:i]
	}
	if u, err := url.PathUnescape(src); err == nil {
		src = u
	}
	sb, sk, ok := strings.Cut(strings.TrimPrefix(src, "/"), "/")
	if !ok || sb == "" || sk == "" {
		q.fail("InvalidArgument", http.StatusBadRequest, "x-amz-copy-source must be bucket/key")
		return
	}
	ctx := q.r.Context()
	from, err := q.h.Store.Head(ctx, q.project(), sb, sk)
	if err != nil {
		q.noSuchKey(err, sb, sk)
		return
	}
	var a object.Attrs
	switch q.r.Header.Get("x-amz-metadata-directive") {
	case "", "COPY":
		if sb == q.bucket && sk == q.key {
			q.fail("InvalidRequest", http.StatusBadRequest, "this copy request is illegal because it is trying to copy an object to itself without changing the object's metadata")
			return
		}
		a = object.Attrs{ContentType: from.ContentType, Meta: from.Meta, Headers: from.Headers}
	case "REPLACE":
		if a, ok = q.attrs(); !ok {
			return
		}
	default:
		q.fail("InvalidArgument", http.StatusBadRequest, "x-amz-metadata-directive must be COPY or REPLACE")
		return
	}
	if m := q.r.Header.Get("x-amz-copy-source-if-match"); m != "" && strings.Trim(m, `"`) != from.ETag {
		q.fail("PreconditionFailed", http.StatusPreconditionFailed, "x-amz-copy-source-if-match did not match")
		return
	}
	o, err := q.h.Store.Copy(ctx, from, q.project(), q.bucket, q.key, a)
	if err != nil {
		q.bucketFail(err) // the only thing that can be missing is the bucket
		return
	}
	writeXML(q.w, http.StatusOK, copyObjectResult{LastModified: isoTime(o.Modified), ETag: quote(o.ETag)})
}

// noSuchKey answers for a missing object (or bucket): the request's own, or
// a copy's source.
func (q *request) noSuchKey(err error, bucket, key string) {
	if !errors.Is(err, store.ErrNotFound) {
		q.failErr(err)
		return
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

func (q *request) getObject() {
	ctx := q.r.Context()
	plain := q.w.Header().Clone()
	o, err := q.h.Store.Head(ctx, q.project(), q.bucket, q.key)
	if err != nil {
		q.noSuchKey(err, q.bucket, q.key)
		return
	}
	h := q.w.Header()
	h.Set("Content-Type", o.ContentType)
	h.Set("ETag", quote(o.ETag))
	h.Set("Last-Modified", o.Modified.UTC().Format(http.TimeFormat))
	h.Set("Accept-Ranges", "bytes")
	for k, v := range o.Headers {
		h.Set(k, v)
	}
	for k, v := range o.Meta {
		h.Set("x-amz-meta-"+k, v)
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
	off, n, partial, err := api.ParseRange(q.r.Header.Get("Range"), o.Size)
	if errors.Is(err, api.ErrRange) {
		h.Set("Content-Range", "bytes */"+strconv.FormatInt(o.Size, 10))
		q.fail("InvalidRange", http.StatusRequestedRangeNotSatisfiable, "the requested range is not satisfiable")
		return
	}
	if pn := q.q.Get("partNumber"); pn != "" && pn != "1" {
		q.fail("InvalidPartNumber", http.StatusRequestedRangeNotSatisfiable, "the requested partnumber is not satisfiable")
		return
	}
	h.Set("Content-Length", strconv.FormatInt(n, 10))
	status := http.StatusOK
	if partial {
		h.Set("Content-Range", api.ContentRange(off, n, o.Size))
		status = http.StatusPartialContent
	}
	if q.r.Method == http.MethodHead {
		q.w.WriteHeader(status)
		return
	}
	body := &api.BodyWriter{W: q.w, Status: status}
	switch err := q.h.Store.Read(ctx, o, off, n, body); {
	case err == nil:
		body.Send()
	case !body.Sent():
		api.ResetHeaders(q.w.Header(), plain)
		q.failErr(err) // InternalError, as S3 answers when it cannot serve stored bytes
	default:
		// The status is sent: the body ends short of its Content-Length,
		// and net/http closes the connection. The store logged why.
	}
}
