package s3

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

const bob = "bob-key"

func versioningBody(status string) []byte {
	return []byte(`<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>` + status + `</Status></VersioningConfiguration>`)
}

// listedVersion is a Version or DeleteMarker element of a listing, in
// document order.
type listedVersion struct {
	Marker    bool
	Key       string
	VersionID string
	IsLatest  bool
}

type listedVersions struct {
	Truncated            bool
	NextKey, NextVersion string
	Entries              []listedVersion
	CommonPrefixes       []string
}

// listVersionsXML reads a ListVersionsResult keeping the order of its
// Version and DeleteMarker elements.
func (e *env) listVersionsXML(query string) listedVersions {
	e.T.Helper()
	r := e.must(http.StatusOK, "", "GET", "/bkt?versions&"+query, alice, nil)
	var raw struct {
		IsTruncated         bool   `xml:"IsTruncated"`
		NextKeyMarker       string `xml:"NextKeyMarker"`
		NextVersionIDMarker string `xml:"NextVersionIdMarker"`
		Entries             []struct {
			XMLName   xml.Name
			Key       string `xml:"Key"`
			VersionID string `xml:"VersionId"`
			IsLatest  bool   `xml:"IsLatest"`
			Prefix    string `xml:"Prefix"`
		} `xml:",any"`
	}
	if err := xml.Unmarshal(r.body, &raw); err != nil {
		e.T.Fatal(err)
	}
	out := listedVersions{Truncated: raw.IsTruncated, NextKey: raw.NextKeyMarker, NextVersion: raw.NextVersionIDMarker}
	for _, en := range raw.Entries {
		switch en.XMLName.Local {
		case "Version", "DeleteMarker":
			out.Entries = append(out.Entries, listedVersion{en.XMLName.Local == "DeleteMarker", en.Key, en.VersionID, en.IsLatest})
		case "CommonPrefixes":
			out.CommonPrefixes = append(out.CommonPrefixes, en.Prefix)
		}
	}
	return out
}

func TestBucketVersioning(t *testing.T) {
	e := newEnv(t)
	e.bucket("bkt")
	e.put("/bkt/k", "zero")
	if r := e.must(http.StatusOK, "", "GET", "/bkt?versioning", alice, nil); bytes.Contains(r.body, []byte("<Status>")) {
		t.Fatalf("a never-versioned bucket has a status: %s", r.body)
	}
	e.must(http.StatusBadRequest, "IllegalVersioningConfigurationException", "PUT", "/bkt?versioning", alice, versioningBody("On"))
	e.must(http.StatusNotImplemented, "NotImplemented", "PUT", "/bkt?versioning", alice,
		[]byte(`<VersioningConfiguration><Status>Enabled</Status><MfaDelete>Enabled</MfaDelete></VersioningConfiguration>`))
	e.must(http.StatusNotImplemented, "NotImplemented", "PUT", "/bkt?versioning", alice, versioningBody("Enabled"), "x-amz-mfa", "123 456")
	e.must(http.StatusNotFound, "NoSuchBucket", "PUT", "/nobkt?versioning", alice, versioningBody("Enabled"))
	// Only the bucket's project may change it.
	e.must(http.StatusNotFound, "NoSuchBucket", "PUT", "/bkt?versioning", bob, versioningBody("Enabled"))
	if r := e.must(http.StatusOK, "", "GET", "/bkt?versioning", alice, nil); bytes.Contains(r.body, []byte("<Status>")) {
		t.Fatalf("refused requests changed the status: %s", r.body)
	}
	e.must(http.StatusOK, "", "PUT", "/bkt?versioning", alice, versioningBody("Enabled"))
	if r := e.must(http.StatusOK, "", "GET", "/bkt?versioning", alice, nil); !bytes.Contains(r.body, []byte("<Status>Enabled</Status>")) {
		t.Fatalf("status: %s", r.body)
	}

	v1 := e.put("/bkt/k", "one").header.Get("x-amz-version-id")
	v2 := e.put("/bkt/k", "two").header.Get("x-amz-version-id")
	if !validVersionID(v1) || !validVersionID(v2) || v1 == v2 || v1 == "null" {
		t.Fatalf("version ids %q %q", v1, v2)
	}
	if r := e.must(http.StatusOK, "", "GET", "/bkt/k", alice, nil); string(r.body) != "two" || r.header.Get("x-amz-version-id") != v2 {
		t.Fatalf("current: %s %v", r.body, r.header)
	}
	for v, want := range map[string]string{"null": "zero", v1: "one", v2: "two"} {
		if got := e.get("/bkt/k?versionId=" + v); got != want {
			t.Fatalf("version %s: %q want %q", v, got, want)
		}
	}
	e.must(http.StatusOK, "", "HEAD", "/bkt/k?versionId="+v1, alice, nil)
	e.must(http.StatusNotFound, "NoSuchVersion", "GET", "/bkt/k?versionId=0123456789abcdef", alice, nil)
	e.must(http.StatusBadRequest, "InvalidArgument", "GET", "/bkt/k?versionId=nope", alice, nil)
	// Another project sees none of it.
	e.must(http.StatusNotFound, "NoSuchBucket", "GET", "/bkt/k?versionId="+v1, bob, nil)
	e.must(http.StatusNotFound, "NoSuchBucket", "GET", "/bkt?versions", bob, nil)
	e.must(http.StatusNotFound, "NoSuchBucket", "DELETE", "/bkt/k?versionId="+v1, bob, nil)

	// Copy from an old version.
	r := e.must(http.StatusOK, "", "PUT", "/bkt/copy", alice, nil, "x-amz-copy-source", "/bkt/k?versionId="+v1)
	if r.header.Get("x-amz-copy-source-version-id") != v1 || !validVersionID(r.header.Get("x-amz-version-id")) {
		t.Fatalf("copy headers %v", r.header)
	}
	if got := e.get("/bkt/copy"); got != "one" {
		t.Fatalf("copy of v1: %q", got)
	}

	// DELETE without a version: a delete marker.
	r = e.must(http.StatusNoContent, "", "DELETE", "/bkt/k", alice, nil)
	marker := r.header.Get("x-amz-version-id")
	if r.header.Get("x-amz-delete-marker") != "true" || !validVersionID(marker) {
		t.Fatalf("delete headers %v", r.header)
	}
	r = e.must(http.StatusNotFound, "NoSuchKey", "GET", "/bkt/k", alice, nil)
	if r.header.Get("x-amz-delete-marker") != "true" || r.header.Get("x-amz-version-id") != marker {
		t.Fatalf("GET of a deleted key: %v", r.header)
	}
	e.must(http.StatusMethodNotAllowed, "MethodNotAllowed", "GET", "/bkt/k?versionId="+marker, alice, nil)
	e.must(http.StatusBadRequest, "InvalidRequest", "PUT", "/bkt/c2", alice, nil, "x-amz-copy-source", "/bkt/k?versionId="+marker)
	e.must(http.StatusNotFound, "NoSuchKey", "PUT", "/bkt/c2", alice, nil, "x-amz-copy-source", "/bkt/k")
	// Tags of a noncurrent version are not kept: refused, not applied
	// to the current object.
	e.must(http.StatusNotImplemented, "NotImplemented", "GET", "/bkt/copy?tagging&versionId="+v1, alice, nil)

	l := e.listVersionsXML("prefix=k")
	want := []listedVersion{{true, "k", marker, true}, {false, "k", v2, false}, {false, "k", v1, false}, {false, "k", "null", false}}
	if fmt.Sprint(l.Entries) != fmt.Sprint(want) {
		t.Fatalf("versions\n got  %v\n want %v", l.Entries, want)
	}
	// Paged one at a time, the same entries.
	var paged []listedVersion
	q := "prefix=k&max-keys=1"
	for i := 0; ; i++ {
		p := e.listVersionsXML(q)
		paged = append(paged, p.Entries...)
		if !p.Truncated {
			break
		}
		if i > 10 {
			t.Fatal("paging does not end")
		}
		q = "prefix=k&max-keys=1&key-marker=" + p.NextKey + "&version-id-marker=" + p.NextVersion
	}
	if fmt.Sprint(paged) != fmt.Sprint(want) {
		t.Fatalf("paged versions\n got  %v\n want %v", paged, want)
	}

	// Removing the current version for good promotes the next newest.
	e.must(http.StatusNoContent, "", "DELETE", "/bkt/k?versionId="+marker, alice, nil)
	e.must(http.StatusNoContent, "", "DELETE", "/bkt/k?versionId="+v2, alice, nil)
	if got := e.get("/bkt/k"); got != "one" {
		t.Fatalf("after removing the marker and v2: %q", got)
	}
	e.must(http.StatusNotImplemented, "NotImplemented", "DELETE", "/bkt/k?versionId="+v1, alice, nil, "x-amz-mfa", "123 456")
	e.must(http.StatusOK, "", "GET", "/bkt/k?versionId="+v1, alice, nil)

	// A bucket holding versions is not empty.
	e.must(http.StatusNoContent, "", "DELETE", "/bkt/copy", alice, nil)
	e.must(http.StatusNoContent, "", "DELETE", "/bkt/k", alice, nil)
	e.must(http.StatusConflict, "BucketNotEmpty", "DELETE", "/bkt", alice, nil)
	// DeleteObjects by version empties it.
	var del strings.Builder
	del.WriteString("<Delete>")
	all := e.listVersionsXML("")
	for _, v := range all.Entries {
		fmt.Fprintf(&del, "<Object><Key>%s</Key><VersionId>%s</VersionId></Object>", v.Key, v.VersionID)
	}
	del.WriteString("</Delete>")
	r = e.must(http.StatusOK, "", "POST", "/bkt?delete", alice, []byte(del.String()))
	if bytes.Contains(r.body, []byte("<Error>")) || !bytes.Contains(r.body, []byte("<DeleteMarker>true</DeleteMarker>")) {
		t.Fatalf("delete of every version: %s", r.body)
	}
	if l := e.listVersionsXML(""); len(l.Entries) != 0 {
		t.Fatalf("left after deleting every version: %v", l.Entries)
	}
	e.must(http.StatusNoContent, "", "DELETE", "/bkt", alice, nil)
}

func TestSuspendedVersioningWritesNull(t *testing.T) {
	e := newEnv(t)
	e.bucket("bkt")
	e.must(http.StatusOK, "", "PUT", "/bkt?versioning", alice, versioningBody("Enabled"))
	v1 := e.put("/bkt/k", "one").header.Get("x-amz-version-id")
	e.must(http.StatusOK, "", "PUT", "/bkt?versioning", alice, versioningBody("Suspended"))
	if r := e.must(http.StatusOK, "", "GET", "/bkt?versioning", alice, nil); !bytes.Contains(r.body, []byte("<Status>Suspended</Status>")) {
		t.Fatalf("status: %s", r.body)
	}
	for _, body := range []string{"null one", "null two"} {
		if v := e.put("/bkt/k", body).header.Get("x-amz-version-id"); v != "null" {
			t.Fatalf("a write while suspended has version %q", v)
		}
	}
	l := e.listVersionsXML("")
	want := []listedVersion{{false, "k", "null", true}, {false, "k", v1, false}}
	if fmt.Sprint(l.Entries) != fmt.Sprint(want) {
		t.Fatalf("versions\n got  %v\n want %v", l.Entries, want)
	}
	if got := e.get("/bkt/k?versionId=null"); got != "null two" {
		t.Fatalf("null version %q", got)
	}
	r := e.must(http.StatusNoContent, "", "DELETE", "/bkt/k", alice, nil)
	if r.header.Get("x-amz-version-id") != "null" || r.header.Get("x-amz-delete-marker") != "true" {
		t.Fatalf("delete while suspended: %v", r.header)
	}
	l = e.listVersionsXML("")
	want = []listedVersion{{true, "k", "null", true}, {false, "k", v1, false}}
	if fmt.Sprint(l.Entries) != fmt.Sprint(want) {
		t.Fatalf("versions after delete\n got  %v\n want %v", l.Entries, want)
	}
}

func TestMultipartUploadIsAVersion(t *testing.T) {
	e := newEnv(t)
	e.bucket("bkt")
	e.must(http.StatusOK, "", "PUT", "/bkt?versioning", alice, versioningBody("Enabled"))
	v1 := e.put("/bkt/mp", "small first").header.Get("x-amz-version-id")
	id := e.createUpload("mp")
	etag := e.uploadPart("mp", id, 1, []byte("the multipart version"))
	r := e.must(http.StatusOK, "", "POST", "/bkt/mp?uploadId="+id, alice, completeBody(1, etag))
	v2 := r.header.Get("x-amz-version-id")
	if !validVersionID(v2) || v2 == v1 {
		t.Fatalf("complete: version %q (first %q)", v2, v1)
	}
	// A retried completion answers the same version.
	if again := e.must(http.StatusOK, "", "POST", "/bkt/mp?uploadId="+id, alice, completeBody(1, etag)).header.Get("x-amz-version-id"); again != v2 {
		t.Fatalf("retried complete: version %q, want %q", again, v2)
	}
	if got := e.get("/bkt/mp?versionId=" + v1); got != "small first" {
		t.Fatalf("the version the upload replaced: %q", got)
	}
	if got := e.get("/bkt/mp"); got != "the multipart version" {
		t.Fatalf("current: %q", got)
	}
}
