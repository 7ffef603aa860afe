package s3

import (
	"encoding/xml"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/rackstack/rackstack/fabric/store"
)

// copySource reads x-amz-copy-source, "bucket/key" with an optional
// leading "/" and "?versionId=", URL-encoded as clients send it. The
// source is looked up in the caller's project: a bucket of another
// project is not there to copy from (NoSuchBucket), as for every other
// request.
func (q *request) copySource() (bucket, key, version string, ok bool) {
	src := q.r.Header.Get("x-amz-copy-source")
	if path, query, found := strings.Cut(src, "?"); found {
		src = path
		vs, err := url.ParseQuery(query)
		version = vs.Get("versionId")
		if err != nil || vs.Has("versionId") && !validVersionID(version) {
			// A malformed id names nothing, and must not copy the
			// current object.
			q.fail("InvalidArgument", http.StatusBadRequest, "Invalid version id specified in x-amz-copy-source")
			return "", "", "", false
		}
	}
	if u, err := url.PathUnescape(src); err == nil {
		src = u
	}
	bucket, key, ok = strings.Cut(strings.TrimPrefix(src, "/"), "/")
	if !ok || bucket == "" || key == "" {
		q.fail("InvalidArgument", http.StatusBadRequest, "x-amz-copy-source must be bucket/key")
		return "", "", "", false
	}
	return bucket, key, version, true
}

// copyRange is a parsed x-amz-copy-source-range: bytes first to last,
// both given, inclusive.
type copyRange struct{ first, last int64 }

// copySourceRange parses x-amz-copy-source-range. S3 takes only the form
// "bytes=first-last" (no suffix, open end or list) and answers
// InvalidArgument to anything else; whether the range fits the source is
// checked once the source is known.
func (q *request) copySourceRange() (*copyRange, bool) {
	h := q.r.Header.Get("x-amz-copy-source-range")
	if h == "" {
		return nil, true
	}
	bad := func() (*copyRange, bool) {
		q.fail("InvalidArgument", http.StatusBadRequest, "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy (got "+strconv.Quote(h)+")")
		return nil, false
	}
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok {
		return bad()
	}
	a, b, ok := strings.Cut(spec, "-")
	if !ok {
		return bad()
	}
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || first < 0 || last < first {
		return bad()
	}
	return &copyRange{first, last}, true
}

type copyPartResult struct {
	XMLName      xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CopyPartResult"`
	LastModified string   `xml:"LastModified"`
	ETag         string   `xml:"ETag"`
}

// uploadPartCopy answers UploadPartCopy: part n of the upload is a range
// (or the whole) of an existing object, copied as CopyObject copies.
func (q *request) uploadPartCopy(n int) {
	sb, sk, sv, ok := q.copySource()
	if !ok {
		return
	}
	rng, ok := q.copySourceRange()
	if !ok {
		return
	}
	u, ok := q.upload()
	if !ok {
		return
	}
	from, ok := q.copySourceObject(sb, sk, sv)
	if !ok {
		return
	}
	off, length := int64(0), from.Size
	if rng != nil {
		if rng.first >= from.Size || rng.last >= from.Size {
			q.fail("InvalidRange", http.StatusRequestedRangeNotSatisfiable, "the x-amz-copy-source-range "+strconv.Quote(q.r.Header.Get("x-amz-copy-source-range"))+" is not within the source's "+strconv.FormatInt(from.Size, 10)+" bytes")
			return
		}
		off, length = rng.first, rng.last-rng.first+1
	}
	if length > maxObjectSize {
		q.fail("EntityTooLarge", http.StatusBadRequest, "a copied part is at most 5 GiB: give a smaller x-amz-copy-source-range")
		return
	}
	p, err := q.h.Store.CopyPart(q.r.Context(), u, n, from, off, length)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			q.fail("NoSuchUpload", http.StatusNotFound, "the upload was completed or aborted while the part was copied")
			return
		}
		q.failErr(err)
		return
	}
	writeXML(q.w, http.StatusOK, copyPartResult{LastModified: isoTime(p.Modified), ETag: quote(p.Part.ETag)})
}
