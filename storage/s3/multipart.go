package s3

import (
	"encoding/xml"
	"errors"
	"net/http"
	"strconv"

	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/storage/object"
)

type initiateResult struct {
	XMLName  xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ InitiateMultipartUploadResult"`
	Bucket   string   `xml:"Bucket"`
	Key      string   `xml:"Key"`
	UploadID string   `xml:"UploadId"`
}

func (q *request) createUpload() {
	a, ok := q.attrs()
	if !ok {
		return
	}
	if a.Tags, ok = q.tagHeader(); !ok {
		return
	}
	u, err := q.h.Store.CreateUpload(q.r.Context(), q.project(), q.bucket, q.key, a)
	if err != nil {
		q.bucketFail(err)
		return
	}
	writeXML(q.w, http.StatusOK, initiateResult{Bucket: q.bucket, Key: q.key, UploadID: u.ID})
}

// upload finds the upload named by ?uploadId for this bucket and key.
func (q *request) upload() (*object.Upload, bool) {
	return q.answerUpload(q.findUpload())
}

func (q *request) findUpload() (*object.Upload, error) {
	u, err := q.h.Store.Upload(q.r.Context(), q.project(), q.bucket, q.q.Get("uploadId"))
	if err == nil && u.Name != q.key {
		err = store.NotFoundf("upload is for another key")
	}
	return u, err
}

// answerUpload answers NoSuchUpload or the error of a failed lookup.
func (q *request) answerUpload(u *object.Upload, err error) (*object.Upload, bool) {
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			q.fail("NoSuchUpload", http.StatusNotFound, "the specified multipart upload does not exist; the upload ID may be invalid, or the upload may have been aborted or completed")
			return nil, false
		}
		q.failErr(err)
		return nil, false
	}
	return u, true
}

func (q *request) uploadPart() {
	n, err := strconv.Atoi(q.q.Get("partNumber"))
	if err != nil || n < 1 || n > object.MaxParts {
		q.fail("InvalidArgument", http.StatusBadRequest, "partNumber must be an integer between 1 and 10000")
		return
	}
	if q.r.Header.Get("x-amz-copy-source") != "" {
		q.uploadPartCopy(n)
		return
	}
	size, sum, ok := q.uploadBody()
	if !ok {
		return
	}
	u, ok := q.upload()
	if !ok {
		return
	}
	p, err := q.h.Store.PutPart(q.bodyContext(), u, n, q.r.Body, size, sum)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			q.fail("NoSuchUpload", http.StatusNotFound, "the upload was completed or aborted while the part was sent")
			return
		}
		q.failErr(err)
		return
	}
	q.w.Header().Set("ETag", quote(p.Part.ETag))
	q.w.WriteHeader(http.StatusOK)
}

type completeRequest struct {
	Parts []struct {
		PartNumber int    `xml:"PartNumber"`
		ETag       string `xml:"ETag"`
	} `xml:"Part"`
}

type completeResult struct {
	XMLName  xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CompleteMultipartUploadResult"`
	Location string   `xml:"Location"`
	Bucket   string   `xml:"Bucket"`
	Key      string   `xml:"Key"`
	ETag     string   `xml:"ETag"`
}

func (q *request) completeUpload() {
	// The body first: a repeated completion must have its signed body
	// checked too.
	var req completeRequest
	if !q.decodeXML(&req) {
		return
	}
	u, err := q.findUpload()
	if errors.Is(err, store.ErrNotFound) && q.completedAlready() {
		return
	}
	if _, ok := q.answerUpload(u, err); !ok {
		return
	}
	if len(req.Parts) == 0 {
		q.fail("MalformedXML", http.StatusBadRequest, "the request lists no parts")
		return
	}
	parts := make([]object.CompletePart, 0, len(req.Parts))
	for _, p := range req.Parts {
		last := len(parts) - 1
		switch {
		case last >= 0 && p.PartNumber == parts[last].Number:
			// A part sent twice is listed twice by clients that record
			// every upload of it: the later one is the part, as in S3.
			parts[last].ETag = p.ETag
		case last >= 0 && p.PartNumber < parts[last].Number:
			q.fail("InvalidPartOrder", http.StatusBadRequest, "the list of parts was not in ascending order; parts must be ordered by part number")
			return
		default:
			parts = append(parts, object.CompletePart{Number: p.PartNumber, ETag: p.ETag})
		}
	}
	o, err := q.h.Store.CompleteUpload(q.r.Context(), u, parts)
	if err != nil {
		if errors.Is(err, store.ErrInvalid) {
			q.fail("InvalidPart", http.StatusBadRequest, "one or more of the specified parts could not be found or its entity tag did not match: "+err.Error())
			return
		}
		if errors.Is(err, store.ErrNotFound) && q.completedAlready() {
			return // a concurrent completion of the same upload won
		}
		q.failErr(err)
		return
	}
	setVersionHeader(q.w.Header(), o)
	writeXML(q.w, http.StatusOK, completeResult{Location: q.r.URL.Path, Bucket: q.bucket, Key: q.key, ETag: quote(o.ETag)})
}

// completedAlready answers a CompleteMultipartUpload of an upload that no
// longer exists because it was completed into the object now under the key
// (a completed object keeps its upload's id as its version): S3 answers a
// repeated completion (a client retrying after a lost response) with the
// same result.
func (q *request) completedAlready() bool {
	o, err := q.h.Store.Head(q.r.Context(), q.project(), q.bucket, q.key)
	if err != nil || o.Version != q.q.Get("uploadId") {
		return false
	}
	setVersionHeader(q.w.Header(), o)
	writeXML(q.w, http.StatusOK, completeResult{Location: q.r.URL.Path, Bucket: q.bucket, Key: q.key, ETag: quote(o.ETag)})
	return true
}

func (q *request) abortUpload() {
	u, ok := q.upload()
	if !ok {
		return
	}
	if err := q.h.Store.AbortUpload(q.r.Context(), u); err != nil {
		q.failErr(err)
		return
	}
	q.w.WriteHeader(http.StatusNoContent)
}

type partEntry struct {
	PartNumber   int    `xml:"PartNumber"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int64  `xml:"Size"`
}

type listPartsResult struct {
	XMLName              xml.Name    `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListPartsResult"`
	Bucket               string      `xml:"Bucket"`
	Key                  string      `xml:"Key"`
	UploadID             string      `xml:"UploadId"`
	PartNumberMarker     int         `xml:"PartNumberMarker"`
	NextPartNumberMarker int         `xml:"NextPartNumberMarker"`
	MaxParts             int         `xml:"MaxParts"`
	IsTruncated          bool        `xml:"IsTruncated"`
	StorageClass         string      `xml:"StorageClass"`
	Parts                []partEntry `xml:"Part"`
}

func (q *request) listParts() {
	u, ok := q.upload()
	if !ok {
		return
	}
	ps, err := q.h.Store.Parts(q.r.Context(), u)
	if err != nil {
		q.failErr(err)
		return
	}
	maxParts, ok := q.count("max-parts", 1000)
	if !ok {
		return
	}
	marker := 0
	if s := q.q.Get("part-number-marker"); s != "" {
		if marker, err = strconv.Atoi(s); err != nil {
			q.fail("InvalidArgument", http.StatusBadRequest, "part-number-marker must be an integer")
			return
		}
	}
	out := listPartsResult{Bucket: q.bucket, Key: q.key, UploadID: u.ID, PartNumberMarker: marker, MaxParts: maxParts, StorageClass: "STANDARD"}
	for _, p := range ps {
		if p.Number <= marker {
			continue
		}
		if len(out.Parts) == maxParts {
			out.IsTruncated = true
			break
		}
		out.Parts = append(out.Parts, partEntry{PartNumber: p.Number, LastModified: isoTime(p.Modified), ETag: quote(p.Part.ETag), Size: p.Part.Size})
		out.NextPartNumberMarker = p.Number
	}
	writeXML(q.w, http.StatusOK, out)
}

type uploadEntry struct {
	Key          string `xml:"Key"`
	UploadID     string `xml:"UploadId"`
	Initiated    string `xml:"Initiated"`
	StorageClass string `xml:"StorageClass"`
	Owner        owner  `xml:"Owner"`
	Initiator    owner  `xml:"Initiator"`
}

type listUploadsResult struct {
	XMLName     xml.Name      `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListMultipartUploadsResult"`
	Bucket      string        `xml:"Bucket"`
	Prefix      string        `xml:"Prefix"`
	MaxUploads  int           `xml:"MaxUploads"`
	IsTruncated bool          `xml:"IsTruncated"`
	Uploads     []uploadEntry `xml:"Upload"`
}

func (q *request) listUploads() {
	ups, err := q.h.Store.Uploads(q.r.Context(), q.project(), q.bucket, q.q.Get("prefix"))
	if err != nil {
		q.failErr(err)
		return
	}
	out := listUploadsResult{Bucket: q.bucket, Prefix: q.q.Get("prefix"), MaxUploads: 1000}
	for _, u := range ups {
		if len(out.Uploads) == 1000 {
			out.IsTruncated = true
			break
		}
		out.Uploads = append(out.Uploads, uploadEntry{Key: u.Name, UploadID: u.ID, Initiated: isoTime(u.Created), StorageClass: "STANDARD", Owner: q.owner(), Initiator: q.owner()})
	}
	writeXML(q.w, http.StatusOK, out)
}
