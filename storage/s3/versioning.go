package s3

// Bucket versioning (PutBucketVersioning, GetBucketVersioning,
// ListObjectVersions, ?versionId on objects). The versions themselves are
// the object store's (storage/object/versions.go), shared with Swift's
// X-Versions-Enabled; this file maps them to S3's requests and headers.

import (
	"encoding/xml"
	"errors"
	"net/http"
	"strings"

	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/storage/object"
)

// nullVersion is the version id S3 gives objects written while a bucket
// was not versioned, or while its versioning was suspended.
const nullVersion = object.NullVersion

// validVersionID: the version ids the store gives ("null", or 16 or 32
// lowercase hex digits). Another is malformed, and S3 answers it
// InvalidArgument rather than NoSuchVersion.
func validVersionID(v string) bool {
	if v == nullVersion {
		return true
	}
	if len(v) != 16 && len(v) != 32 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// versioned reports whether an object was written in a versioned (or
// suspended) bucket: S3 then names its version in x-amz-version-id, "null"
// included. (An object written before versioning was first enabled does
// not say "null"; the store does not know, without another read of the
// bucket, that its bucket is versioned now.)
func versioned(o *object.Object) bool { return o.VersionID != "" || o.Seq != 0 }

func setVersionHeader(h http.Header, o *object.Object) {
	if versioned(o) {
		h.Set("x-amz-version-id", object.ShownVersion(o.VersionID))
	}
}

type versioningConfiguration struct {
	XMLName   xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ VersioningConfiguration"`
	Status    string   `xml:"Status,omitempty"`
	MfaDelete string   `xml:"MfaDelete,omitempty"`
}

// refuseMFA answers NotImplemented to a request that carries an MFA token
// (x-amz-mfa): MFA delete is not built, and a delete or a configuration
// that asked for it must not pass as if it had been checked.
func (q *request) refuseMFA() bool {
	if q.r.Header.Get("x-amz-mfa") != "" {
		q.fail("NotImplemented", http.StatusNotImplemented, "MFA delete is not implemented (header x-amz-mfa)")
		return true
	}
	return false
}

// bucketVersioning answers GET and PUT ?versioning.
func (q *request) bucketVersioning() {
	ctx := q.r.Context()
	switch q.r.Method {
	case http.MethodGet:
		c, err := q.h.Store.Container(ctx, q.project(), q.bucket)
		if err != nil {
			q.bucketFail(err)
			return
		}
		writeXML(q.w, http.StatusOK, versioningConfiguration{Status: c.Versioning})
	case http.MethodPut:
		if q.refuseMFA() {
			return
		}
		// Any namespace (or none), as clients send it.
		var cfg struct {
			XMLName   xml.Name `xml:"VersioningConfiguration"`
			Status    string   `xml:"Status"`
			MfaDelete string   `xml:"MfaDelete"`
		}
		if !q.decodeXML(&cfg) {
			return
		}
		switch cfg.MfaDelete {
		case "", "Disabled":
		case "Enabled":
			q.fail("NotImplemented", http.StatusNotImplemented, "MFA delete is not implemented (MfaDelete Enabled)")
			return
		default:
			q.fail("IllegalVersioningConfigurationException", http.StatusBadRequest, "MfaDelete must be Enabled or Disabled")
			return
		}
		if cfg.Status != object.VersioningEnabled && cfg.Status != object.VersioningSuspended {
			q.fail("IllegalVersioningConfigurationException", http.StatusBadRequest, "Status must be Enabled or Suspended")
			return
		}
		err := q.h.Store.SetVersioning(ctx, q.project(), q.bucket, cfg.Status)
		if errors.Is(err, store.ErrInvalid) {
			q.fail("InvalidBucketState", http.StatusConflict, strings.TrimSpace(err.Error()))
			return
		}
		if err != nil {
			q.bucketFail(err)
			return
		}
		q.w.WriteHeader(http.StatusOK)
	default:
		q.fail("NotImplemented", http.StatusNotImplemented, "the bucket sub-resource ?versioning is not implemented for "+q.r.Method)
	}
}

// versionEntry is a Version or a DeleteMarker element (its XMLName says
// which): S3 lists the two interleaved, in the store's order.
type versionEntry struct {
	XMLName      xml.Name
	Key          string `xml:"Key"`
	VersionID    string `xml:"VersionId"`
	IsLatest     bool   `xml:"IsLatest"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag,omitempty"`
	Size         *int64 `xml:"Size,omitempty"`
	StorageClass string `xml:"StorageClass,omitempty"`
	Owner        owner  `xml:"Owner"`
}

type listVersionsResult struct {
	XMLName             xml.Name       `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListVersionsResult"`
	Name                string         `xml:"Name"`
	Prefix              string         `xml:"Prefix"`
	KeyMarker           string         `xml:"KeyMarker"`
	VersionIDMarker     string         `xml:"VersionIdMarker"`
	NextKeyMarker       string         `xml:"NextKeyMarker,omitempty"`
	NextVersionIDMarker string         `xml:"NextVersionIdMarker,omitempty"`
	MaxKeys             int            `xml:"MaxKeys"`
	Delimiter           string         `xml:"Delimiter,omitempty"`
	EncodingType        string         `xml:"EncodingType,omitempty"`
	IsTruncated         bool           `xml:"IsTruncated"`
	Entries             []versionEntry `xml:"Version"`
	CommonPrefixes      []commonPrefix `xml:"CommonPrefixes"`
}

// listVersions answers ListObjectVersions: every version and delete
// marker, newest first within a key, paged by key-marker and
// version-id-marker.
func (q *request) listVersions(c *object.Container) {
	maxKeys, ok := q.count("max-keys", maxListKeys)
	if !ok {
		return
	}
	enc, encode, ok := q.encoding()
	if !ok {
		return
	}
	vm := q.q.Get("version-id-marker")
	if vm != "" && !validVersionID(vm) {
		q.fail("InvalidArgument", http.StatusBadRequest, "invalid version-id-marker: "+vm)
		return
	}
	if vm != "" && q.q.Get("key-marker") == "" {
		q.fail("InvalidArgument", http.StatusBadRequest, "a version-id-marker cannot be specified without a key-marker")
		return
	}
	o := object.VersionListOptions{Prefix: q.q.Get("prefix"), Delimiter: q.q.Get("delimiter"), KeyMarker: q.q.Get("key-marker"), VersionMarker: vm, Limit: maxKeys}
	out := listVersionsResult{
		Name: c.Name, Prefix: encode(o.Prefix), Delimiter: encode(o.Delimiter), KeyMarker: encode(o.KeyMarker),
		VersionIDMarker: vm, MaxKeys: maxKeys, EncodingType: enc,
	}
	var entries []object.VersionEntry
	var more bool
	if maxKeys > 0 {
		var err error
		if entries, more, err = q.h.Store.ListVersions(q.r.Context(), q.project(), q.bucket, o); err != nil {
			q.bucketFail(err)
			return
		}
	}
	for _, e := range entries {
		if e.Subdir != "" {
			out.CommonPrefixes = append(out.CommonPrefixes, commonPrefix{Prefix: encode(e.Subdir)})
			continue
		}
		ob := e.Object
		v := versionEntry{
			XMLName: xml.Name{Local: "Version"}, Key: encode(ob.Name), VersionID: object.ShownVersion(ob.VersionID), IsLatest: e.IsLatest,
			LastModified: isoTime(ob.Modified), Owner: q.owner(),
		}
		if ob.DeleteMarker {
			v.XMLName.Local = "DeleteMarker"
		} else {
			size := ob.Size
			v.ETag, v.Size, v.StorageClass = quote(ob.ETag), &size, "STANDARD"
		}
		out.Entries = append(out.Entries, v)
	}
	if more && len(entries) > 0 {
		out.IsTruncated = true
		last := entries[len(entries)-1]
		out.NextKeyMarker = encode(last.Subdir)
		if last.Object != nil {
			out.NextKeyMarker = encode(last.Object.Name)
			out.NextVersionIDMarker = object.ShownVersion(last.Object.VersionID)
		}
	}
	writeXML(q.w, http.StatusOK, out)
}

// deleteObject answers DeleteObject: without versionId it deletes the
// current object (in a versioned bucket: writes a delete marker); with
// one it removes that version for good.
func (q *request) deleteObject() {
	v := q.q.Get("versionId")
	if v != "" && q.refuseMFA() {
		return
	}
	res, err := q.h.Store.Remove(q.r.Context(), q.project(), q.bucket, q.key, v)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		q.failErr(err)
		return
	}
	if errors.Is(err, store.ErrNotFound) {
		// A missing key or version: deleted already, as S3 answers,
		// unless the bucket is missing.
		if _, cerr := q.h.Store.Container(q.r.Context(), q.project(), q.bucket); cerr != nil {
			q.bucketFail(cerr)
			return
		}
		if v != "" {
			q.w.Header().Set("x-amz-version-id", v)
		}
	} else if v != "" || res.DeleteMarker {
		q.w.Header().Set("x-amz-version-id", res.VersionID)
		if res.DeleteMarker {
			q.w.Header().Set("x-amz-delete-marker", "true")
		}
	}
	q.w.WriteHeader(http.StatusNoContent)
}

// headVersion returns the object a GET, HEAD or copy names: the current
// one, or with version the version (a delete marker named by its version
// is answered 405 for a GET or HEAD, 400 for a copy, as S3 does). False
// once the failure is answered.
func (q *request) headVersion(bucket, key, version string, copying bool) (*object.Object, bool) {
	ctx := q.r.Context()
	if version == "" {
		o, err := q.h.Store.Head(ctx, q.project(), bucket, key)
		if err != nil {
			q.noSuchKey(err, bucket, key)
			return nil, false
		}
		return o, true
	}
	o, err := q.h.Store.HeadVersion(ctx, q.project(), bucket, key, version)
	if errors.Is(err, store.ErrNotFound) {
		if _, cerr := q.h.Store.Container(ctx, q.project(), bucket); cerr != nil {
			q.noSuchKey(cerr, bucket, key)
			return nil, false
		}
		q.failBody(errorBody{Code: "NoSuchVersion", Message: "the specified version does not exist", Key: key, Bucket: bucket}, http.StatusNotFound)
		return nil, false
	}
	if err != nil {
		q.failErr(err)
		return nil, false
	}
	if o.DeleteMarker {
		if copying {
			q.fail("InvalidRequest", http.StatusBadRequest, "the source of a copy request may not specifically refer to a delete marker by version id")
			return nil, false
		}
		h := q.w.Header()
		h.Set("x-amz-delete-marker", "true")
		h.Set("x-amz-version-id", object.ShownVersion(o.VersionID))
		h.Set("Last-Modified", o.Modified.UTC().Format(http.TimeFormat))
		q.fail("MethodNotAllowed", http.StatusMethodNotAllowed, "the specified method is not allowed against a delete marker")
		return nil, false
	}
	return o, true
}

// currentVersionOnly refuses a sub-resource request (?tagging, ?acl) that
// names a version other than the current one: those are kept only for the
// current object here, and acting on the current one instead would be
// wrong. False once answered.
func (q *request) currentVersionOnly(sub string) bool {
	v := q.q.Get("versionId")
	if !q.q.Has("versionId") {
		return true
	}
	o, err := q.h.Store.Head(q.r.Context(), q.project(), q.bucket, q.key)
	if err != nil {
		q.noSuchKey(err, q.bucket, q.key)
		return false
	}
	if object.ShownVersion(o.VersionID) != v {
		q.fail("NotImplemented", http.StatusNotImplemented, "?"+sub+" of a noncurrent version is not implemented")
		return false
	}
	return true
}
