package s3

import (
	"encoding/base64"
	"encoding/xml"
	"errors"
	"net/http"
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
	XMLName           xml.Name      `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListAllMyBucketsResult"`
	Owner             owner         `xml:"Owner"`
	Buckets           []bucketEntry `xml:"Buckets>Bucket"`
	ContinuationToken string        `xml:"ContinuationToken,omitempty"`
	Prefix            *string       `xml:"Prefix,omitempty"`
}

// maxBuckets is the largest page ListBuckets gives.
const maxBuckets = 10000

// listBuckets answers ListBuckets, paged by max-buckets and
// continuation-token (the last name of the previous page) as S3 pages it.
func (q *request) listBuckets() {
	if !q.requireAuth(false) {
		return
	}
	limit := maxBuckets
	if s := q.q.Get("max-buckets"); q.q.Has("max-buckets") {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxBuckets {
			q.fail("InvalidArgument", http.StatusBadRequest, "max-buckets must be an integer between 1 and 10000")
			return
		}
		limit = n
	}
	after := ""
	if tok := q.q.Get("continuation-token"); tok != "" {
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil {
			q.fail("InvalidArgument", http.StatusBadRequest, "the continuation token provided is incorrect")
			return
		}
		after = string(raw)
	}
	cs, err := q.h.Store.Containers(q.r.Context(), q.project())
	if err != nil {
		q.failErr(err)
		return
	}
	out := listAllMyBuckets{Owner: q.owner(), Buckets: []bucketEntry{}}
	if q.q.Has("prefix") {
		p := q.q.Get("prefix")
		out.Prefix = &p
	}
	for _, c := range cs {
		if c.Name <= after || !strings.HasPrefix(c.Name, q.q.Get("prefix")) {
			continue
		}
		if len(out.Buckets) == limit {
			out.ContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(out.Buckets[limit-1].Name))
			break
		}
		out.Buckets = append(out.Buckets, bucketEntry{Name: c.Name, CreationDate: isoTime(c.Created)})
	}
	writeXML(q.w, http.StatusOK, out)
}

// bucketSubresources are the query parameters naming a sub-resource of a
// bucket (its configuration) rather than the bucket itself.
var bucketSubresources = []string{
	"accelerate", "acl", "analytics", "cors", "encryption", "intelligent-tiering",
	"inventory", "lifecycle", "location", "logging", "metadataTable", "metrics",
	"notification", "object-lock", "ownershipControls", "policy", "policyStatus",
	"publicAccessBlock", "replication", "requestPayment", "tagging", "uploads",
	"versioning", "versions", "website",
}

// subresource names the bucket sub-resource the request addresses, "" if
// none.
func (q *request) subresource() string {
	for _, s := range bucketSubresources {
		if q.q.Has(s) {
			return s
		}
	}
	return ""
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
	if q.q.Has("acl") {
		q.bucketACL()
		return
	}
	if q.q.Has("tagging") {
		q.bucketTagging()
		return
	}
	if q.q.Has("versioning") {
		q.bucketVersioning()
		return
	}
	// Configuration this store does not keep is refused, never taken for
	// the bucket itself: a PUT ?versioning is not a CreateBucket, and a
	// DELETE ?cors must not delete the bucket.
	if sub := q.subresource(); sub != "" && (q.r.Method == http.MethodPut || q.r.Method == http.MethodDelete) {
		q.fail("NotImplemented", http.StatusNotImplemented, "the bucket sub-resource ?"+sub+" is not implemented for "+q.r.Method)
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
		q.w.Header().Set("x-amz-bucket-region", q.h.region())
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
		case q.q.Has("uploads"):
			q.listUploads()
		case q.q.Has("versions"):
			q.listVersions(c)
		case q.subresource() != "":
			q.fail("NotImplemented", http.StatusNotImplemented, "the bucket sub-resource ?"+q.subresource()+" is not implemented")
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
	// public-read is kept as Swift's ".r:*" (anyone may read the
	// objects), as it was before ACLs were checked; any other grant is
	// refused.
	acl, ok := q.cannedACL("public-read")
	if !ok {
		return
	}
	c := object.Container{Project: q.project(), Name: q.bucket}
	if acl == "public-read" {
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
	ContinuationToken     *string        `xml:"ContinuationToken,omitempty"`
	NextContinuationToken string         `xml:"NextContinuationToken,omitempty"`
	StartAfter            string         `xml:"StartAfter,omitempty"`
	Contents              []objectEntry  `xml:"Contents"`
	CommonPrefixes        []commonPrefix `xml:"CommonPrefixes"`
}

// count is the query parameter name, a non-negative integer capped at most
// (and most when absent), or false when it was answered as invalid.
func (q *request) count(name string, most int) (int, bool) {
	s := q.q.Get(name)
	if s == "" {
		return most, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		q.fail("InvalidArgument", http.StatusBadRequest, name+" must be a non-negative integer")
		return 0, false
	}
	return min(n, most), true
}

// listObjects answers ListObjects (v1) and ListObjectsV2 (list-type=2).
func (q *request) listObjects(c *object.Container) {
	v2 := q.q.Get("list-type") == "2"
	maxKeys, ok := q.count("max-keys", maxListKeys)
	if !ok {
		return
	}
	enc, encode, ok := q.encoding()
	if !ok {
		return
	}
	o := object.ListOptions{Prefix: q.q.Get("prefix"), Delimiter: q.q.Get("delimiter"), Limit: maxKeys}
	out := listBucketResult{Name: c.Name, Prefix: encode(o.Prefix), Delimiter: encode(o.Delimiter), MaxKeys: maxKeys, EncodingType: enc}
	if v2 {
		out.StartAfter = encode(q.q.Get("start-after"))
		o.Marker = q.q.Get("start-after")
		if q.q.Has("continuation-token") {
			// An empty token is echoed too (and lists from the start),
			// as S3 does.
			tok := q.q.Get("continuation-token")
			raw, err := base64.RawURLEncoding.DecodeString(tok)
			if err != nil {
				q.fail("InvalidArgument", http.StatusBadRequest, "the continuation token provided is incorrect")
				return
			}
			out.ContinuationToken = &tok
			if tok != "" {
				o.Marker = string(raw)
			}
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

// encoding reads encoding-type and returns the encoder of key names for
// the response.
func (q *request) encoding() (string, func(string) string, bool) {
	enc := q.q.Get("encoding-type")
	switch enc {
	case "":
		return "", func(s string) string { return s }, true
	case "url":
		return enc, urlEncodeKey, true
	}
	q.fail("InvalidArgument", http.StatusBadRequest, "invalid encoding-type: "+enc)
	return "", nil, false
}

// urlEncodeKey encodes a key name as S3 does for encoding-type=url: every
// byte but the unreserved characters (RFC 3986) and "/" as %XX, so a space
// is %20 and "+" is %2B ("test_file(3).png" is "test_file%283%29.png").
func urlEncodeKey(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '_', c == '.', c == '~', c == '/':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

type deleteRequest struct {
	Quiet   bool `xml:"Quiet"`
	Objects []struct {
		Key       string `xml:"Key"`
		VersionID string `xml:"VersionId"`
	} `xml:"Object"`
}

type deletedEntry struct {
	Key                   string `xml:"Key"`
	VersionID             string `xml:"VersionId,omitempty"`
	DeleteMarker          bool   `xml:"DeleteMarker,omitempty"`
	DeleteMarkerVersionID string `xml:"DeleteMarkerVersionId,omitempty"`
}

type deleteError struct {
	Key       string `xml:"Key"`
	VersionID string `xml:"VersionId,omitempty"`
	Code      string `xml:"Code"`
	Message   string `xml:"Message"`
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
	if q.refuseMFA() {
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
		if o.VersionID != "" && !validVersionID(o.VersionID) {
			out.Errors = append(out.Errors, deleteError{Key: o.Key, VersionID: o.VersionID, Code: "NoSuchVersion", Message: "the version id is not one this store gives"})
			continue
		}
		res, err := q.h.Store.Remove(q.r.Context(), q.project(), q.bucket, o.Key, o.VersionID)
		switch {
		case err == nil, errors.Is(err, store.ErrNotFound):
			// Deleting a missing key or version succeeds in S3.
			if !req.Quiet {
				d := deletedEntry{Key: o.Key, VersionID: o.VersionID}
				if err == nil && res.DeleteMarker {
					d.DeleteMarker = true
					if o.VersionID == "" {
						d.DeleteMarkerVersionID = res.VersionID
					} else {
						d.DeleteMarkerVersionID = o.VersionID
					}
				}
				out.Deleted = append(out.Deleted, d)
			}
		case errors.Is(err, store.ErrInvalid):
			out.Errors = append(out.Errors, deleteError{Key: o.Key, VersionID: o.VersionID, Code: "NoSuchVersion", Message: strings.TrimSpace(err.Error())})
		default:
			out.Errors = append(out.Errors, deleteError{Key: o.Key, VersionID: o.VersionID, Code: "InternalError", Message: strings.TrimSpace(err.Error())})
		}
	}
	writeXML(q.w, http.StatusOK, out)
}
