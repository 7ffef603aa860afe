package s3

import (
	"encoding/base64"
	"encoding/xml"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/storage/object"
)

type owner struct {
	ID          string `xml:"ID"`
	DisplayName string `xml:"DisplayName"`
}

func (q *request) owner() owner {
	return owner{ID: q.who.ProjectID, DisplayName: q.who.ProjectName}
}

type bucketEntry struct {
	Name         string `xml:"Name"`
	CreationDate string `xml:"CreationDate"`
}

type listAllMyBuckets struct {
	XMLName xml.Name      `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListAllMyBucketsResult"`
	Owner   owner         `xml:"Owner"`
	Buckets []bucketEntry `xml:"Buckets>Bucket"`
}

func (q *request) listBuckets() {
	if !q.requireAuth(false) {
		return
	}
	cs, err := q.h.Store.Containers(q.r.Context(), q.project())
	if err != nil {
		q.failErr(err)
		return
	}
	out := listAllMyBuckets{Owner: q.owner(), Buckets: []bucketEntry{}}
	for _, c := range cs {
		out.Buckets = append(out.Buckets, bucketEntry{Name: c.Name, CreationDate: isoTime(c.Created)})
	}
	writeXML(q.w, http.StatusOK, out)
}

// bucketFail answers for a missing bucket.
func (q *request) bucketFail(err error) {
	if errors.Is(err, store.ErrNotFound) {
		q.failBody(errorBody{Code: "NoSuchBucket", Message: "the specified bucket does not exist"}, http.StatusNotFound)
		return
	}
	q.failErr(err)
}

func (q *request) bucketOp() {
	write := q.r.Method != http.MethodGet && q.r.Method != http.MethodHead
	if !q.requireAuth(write) {
		return
	}
	switch q.r.Method {
	case http.MethodPut:
		q.createBucket()
		return
	case http.MethodPost:
		if q.q.Has("delete") {
			q.deleteObjects()
			return
		}
		q.fail("MethodNotAllowed", http.StatusMethodNotAllowed, "POST on a bucket is only ?delete")
		return
	}
	c, err := q.h.Store.Container(q.r.Context(), q.project(), q.bucket)
	if err != nil {
		q.bucketFail(err)
		return
	}
	switch q.r.Method {
	case http.MethodHead:
		q.w.Header().Set("x-amz-bucket-region", "us-east-1")
		q.w.WriteHeader(http.StatusOK)
	case http.MethodDelete:
		if err := q.h.Store.DeleteContainer(q.r.Context(), q.project(), q.bucket); err != nil {
			if errors.Is(err, store.ErrConflict) {
				q.fail("BucketNotEmpty", http.StatusConflict, "the bucket you tried to delete is not empty")
				return
			}
			q.bucketFail(err)
			return
		}
		q.w.WriteHeader(http.StatusNoContent)
	case http.MethodGet:
		switch {
		case q.q.Has("location"):
			// S3 answers an empty constraint for us-east-1.
			loc := q.h.region()
			if loc == DefaultRegion {
				loc = ""
			}
			writeXML(q.w, http.StatusOK, struct {
				XMLName  xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ LocationConstraint"`
				Location string   `xml:",chardata"`
			}{Location: loc})
		case q.q.Has("versioning"):
			writeXML(q.w, http.StatusOK, struct {
				XMLName xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ VersioningConfiguration"`
			}{})
		case q.q.Has("uploads"):
			q.listUploads()
		case q.q.Has("acl"), q.q.Has("policy"), q.q.Has("lifecycle"), q.q.Has("cors"), q.q.Has("tagging"), q.q.Has("encryption"):
			q.fail("NotImplemented", http.StatusNotImplemented, "this bucket sub-resource is not implemented")
		default:
			q.listObjects(c)
		}
	default:
		q.fail("MethodNotAllowed", http.StatusMethodNotAllowed, "the method is not allowed against this resource")
	}
}

func (q *request) createBucket() {
	if !validBucket(q.bucket) {
		q.fail("InvalidBucketName", http.StatusBadRequest, "bucket names are 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit")
		return
	}
	if q.r.ContentLength > 0 {
		var cfg struct {
			LocationConstraint string `xml:"LocationConstraint"`
		}
		if !q.decodeXML(&cfg) {
			return
		}
	}
	c := object.Container{Project: q.project(), Name: q.bucket}
	if q.r.Header.Get("x-amz-acl") == "public-read" {
		c.ReadACL = ".r:*"
	}
	if _, err := q.h.Store.PutContainer(q.r.Context(), c, true); err != nil {
		if errors.Is(err, store.ErrConflict) {
			q.fail("BucketAlreadyOwnedByYou", http.StatusConflict, "your previous request to create the named bucket succeeded and you already own it")
			return
		}
		q.failErr(err)
		return
	}
	q.w.Header().Set("Location", "/"+q.bucket)
	q.w.WriteHeader(http.StatusOK)
}

type objectEntry struct {
	Key          string `xml:"Key"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int64  `xml:"Size"`
	StorageClass string `xml:"StorageClass"`
	Owner        *owner `xml:"Owner,omitempty"`
}

type commonPrefix struct {
	Prefix string `xml:"Prefix"`
}

type listBucketResult struct {
	XMLName               xml.Name       `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListBucketResult"`
	Name                  string         `xml:"Name"`
	Prefix                string         `xml:"Prefix"`
	Delimiter             string         `xml:"Delimiter,omitempty"`
	MaxKeys               int            `xml:"MaxKeys"`
	EncodingType          string         `xml:"EncodingType,omitempty"`
	IsTruncated           bool           `xml:"IsTruncated"`
	Marker                *string        `xml:"Marker,omitempty"`
	NextMarker            string         `xml:"NextMarker,omitempty"`
	KeyCount              *int           `xml:"KeyCount,omitempty"`
	ContinuationToken     string         `xml:"ContinuationToken,omitempty"`
	NextContinuationToken string         `xml:"NextContinuationToken,omitempty"`
	StartAfter            string         `xml:"StartAfter,omitempty"`
	Contents              []objectEntry  `xml:"Contents"`
	CommonPrefixes        []commonPrefix `xml:"CommonPrefixes"`
}

// listObjects answers ListObjects (v1) and ListObjectsV2 (list-type=2).
func (q *request) listObjects(c *object.Container) {
	v2 := q.q.Get("list-type") == "2"
	maxKeys := maxListKeys
	if s := q.q.Get("max-keys"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			q.fail("InvalidArgument", http.StatusBadRequest, "max-keys must be a non-negative integer")
			return
		}
		maxKeys = min(n, maxListKeys)
	}
	enc := q.q.Get("encoding-type")
	if enc != "" && enc != "url" {
		q.fail("InvalidArgument", http.StatusBadRequest, "invalid encoding-type: "+enc)
		return
	}
	encode := func(s string) string {
		if enc == "url" {
			return url.QueryEscape(s)
		}
		return s
	}
	o := object.ListOptions{Prefix: q.q.Get("prefix"), Delimiter: q.q.Get("delimiter"), Limit: maxKeys}
	out := listBucketResult{Name: c.Name, Prefix: encode(o.Prefix), Delimiter: encode(o.Delimiter), MaxKeys: maxKeys, EncodingType: enc}
	if v2 {
		out.StartAfter = encode(q.q.Get("start-after"))
		o.Marker = q.q.Get("start-after")
		if tok := q.q.Get("continuation-token"); tok != "" {
			raw, err := base64.RawURLEncoding.DecodeString(tok)
			if err != nil {
				q.fail("InvalidArgument", http.StatusBadRequest, "the continuation token provided is incorrect")
				return
			}
			o.Marker, out.ContinuationToken = string(raw), tok
		}
	} else {
		m := q.q.Get("marker")
		o.Marker, out.Marker = m, &m
		*out.Marker = encode(m)
	}
	var entries []object.Entry
	var more bool
	if maxKeys > 0 {
		var err error
		entries, more, err = q.h.Store.List(q.r.Context(), q.project(), q.bucket, o)
		if err != nil {
			q.bucketFail(err)
			return
		}
	}
	fetchOwner := !v2 || q.q.Get("fetch-owner") == "true"
	for _, e := range entries {
		if e.Subdir != "" {
			out.CommonPrefixes = append(out.CommonPrefixes, commonPrefix{Prefix: encode(e.Subdir)})
			continue
		}
		ob := e.Object
		entry := objectEntry{Key: encode(ob.Name), LastModified: isoTime(ob.Modified), ETag: quote(ob.ETag), Size: ob.Size, StorageClass: "STANDARD"}
		if fetchOwner {
			ow := q.owner()
			entry.Owner = &ow
		}
		out.Contents = append(out.Contents, entry)
	}
	out.IsTruncated = more
	if more && len(entries) > 0 {
		last := entries[len(entries)-1].Name()
		if v2 {
			out.NextContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(last))
		} else {
			out.NextMarker = encode(last)
		}
	}
	if v2 {
		n := len(entries)
		out.KeyCount = &n
	}
	writeXML(q.w, http.StatusOK, out)
}

type deleteRequest struct {
	Quiet   bool `xml:"Quiet"`
	Objects []struct {
		Key string `xml:"Key"`
	} `xml:"Object"`
}

type deletedEntry struct {
	Key string `xml:"Key"`
}

type deleteError struct {
	Key     string `xml:"Key"`
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

type deleteResult struct {
	XMLName xml.Name       `xml:"http://s3.amazonaws.com/doc/2006-03-01/ DeleteResult"`
	Deleted []deletedEntry `xml:"Deleted"`
	Errors  []deleteError  `xml:"Error"`
}

func (q *request) deleteObjects() {
	if _, err := q.h.Store.Container(q.r.Context(), q.project(), q.bucket); err != nil {
		q.bucketFail(err)
		return
	}
	var req deleteRequest
	if !q.decodeXML(&req) {
		return
	}
	if len(req.Objects) == 0 || len(req.Objects) > maxDeleteKeys {
		q.fail("MalformedXML", http.StatusBadRequest, "a delete request names 1 to 1000 objects")
		return
	}
	var out deleteResult
	for _, o := range req.Objects {
		err := q.h.Store.Delete(q.r.Context(), q.project(), q.bucket, o.Key)
		switch {
		case err == nil, errors.Is(err, store.ErrNotFound):
			// Deleting a missing key succeeds in S3.
			if !req.Quiet {
				out.Deleted = append(out.Deleted, deletedEntry{Key: o.Key})
			}
		default:
			out.Errors = append(out.Errors, deleteError{Key: o.Key, Code: "InternalError", Message: strings.TrimSpace(err.Error())})
		}
	}
	writeXML(q.w, http.StatusOK, out)
}
