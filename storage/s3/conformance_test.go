package s3

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/storage/object"
	"github.com/rackstack/rackstack/storage/s3/sigv4"
)

// Tests for behaviours S3 conformance suites and SDKs check.

func TestUserMetadataKeysAreReturnedAsSent(t *testing.T) {
	e := newEnv(t)
	e.bucket("bkt")
	e.put("/bkt/k", "v", "x-amz-meta-foo", "bar", "X-Amz-Meta-Mixed-Case", "x")
	for _, method := range []string{"GET", "HEAD"} {
		// A recorder keeps the header map as the handler wrote it; an
		// HTTP client would canonicalise the names it reads.
		req := e.request(method, "/bkt/k", nil)
		sigv4.Sign(req, alice, creds[alice].secret, "us-east-1", sha256hex(nil), time.Now())
		rec := httptest.NewRecorder()
		(&Handler{Store: e.Svc, Creds: creds}).ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", method, rec.Code, rec.Body)
		}
		h := rec.Result().Header
		if got := h["x-amz-meta-foo"]; len(got) != 1 || got[0] != "bar" {
			t.Errorf("%s: x-amz-meta-foo = %q in %v", method, got, h)
		}
		if got := h["x-amz-meta-mixed-case"]; len(got) != 1 || got[0] != "x" {
			t.Errorf("%s: x-amz-meta-mixed-case = %q in %v", method, got, h)
		}
		if _, ok := h["X-Amz-Meta-Foo"]; ok {
			t.Errorf("%s: metadata key canonicalised: %v", method, h)
		}
	}
}

func TestBucketSubresourcesAreNotImplemented(t *testing.T) {
	e := newEnv(t)
	e.bucket("bkt")
	e.put("/bkt/k", "v")
	body := []byte(`<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>`)
	for _, sub := range []string{"encryption", "policy", "object-lock", "lifecycle", "cors", "website", "replication"} {
		t.Run(sub, func(t *testing.T) {
			e := e.with(t)
			// On an existing bucket: not BucketAlreadyOwnedByYou.
			e.must(http.StatusNotImplemented, "NotImplemented", "PUT", "/bkt?"+sub, alice, body)
			// On a new one: not a CreateBucket.
			e.must(http.StatusNotImplemented, "NotImplemented", "PUT", "/fresh?"+sub, alice, body)
			e.must(http.StatusNotFound, "", "HEAD", "/fresh", alice, nil)
			// A DELETE of the configuration must not delete the bucket.
			e.must(http.StatusNotImplemented, "NotImplemented", "DELETE", "/bkt?"+sub, alice, nil)
		})
	}
	e.must(http.StatusOK, "", "HEAD", "/bkt", alice, nil)
	e.must(http.StatusNotImplemented, "NotImplemented", "GET", "/bkt?object-lock", alice, nil)
	// Object sub-resources likewise: the object stays, its bytes unsent.
	e.must(http.StatusNotImplemented, "NotImplemented", "DELETE", "/bkt/k?legal-hold", alice, nil)
	e.must(http.StatusNotImplemented, "NotImplemented", "GET", "/bkt/k?attributes", alice, nil)
	e.must(http.StatusNotImplemented, "NotImplemented", "PUT", "/bkt/k?retention", alice, body)
	if got := e.get("/bkt/k"); got != "v" {
		t.Errorf("object after sub-resource requests: %q", got)
	}
	// What is built still works, with the query parameters SDKs add.
	e.must(http.StatusOK, "", "PUT", "/other?x-id=CreateBucket", alice, nil)
	e.must(http.StatusOK, "", "GET", "/bkt?versioning", alice, nil)
}

func TestServerSideEncryptionIsRefused(t *testing.T) {
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("k"), 32))
	ssec := []string{
		"x-amz-server-side-encryption-customer-algorithm", "AES256",
		"x-amz-server-side-encryption-customer-key", key,
		"x-amz-server-side-encryption-customer-key-MD5", "bm90LWNoZWNrZWQ=",
	}
	e := newEnv(t)
	e.bucket("bkt")
	e.put("/bkt/plain", "in clear")
	id := e.createUpload("mp")
	tests := map[string]struct {
		method, path string
		hdr          []string
		absent       string // a key that must not exist afterwards
	}{
		"SSE-S3 put":      {"PUT", "/bkt/s3", []string{"x-amz-server-side-encryption", "AES256"}, "/bkt/s3"},
		"SSE-KMS put":     {"PUT", "/bkt/kms", []string{"x-amz-server-side-encryption", "aws:kms", "x-amz-server-side-encryption-aws-kms-key-id", "k1"}, "/bkt/kms"},
		"SSE-C put":       {"PUT", "/bkt/c", ssec, "/bkt/c"},
		"SSE-C copy":      {"PUT", "/bkt/copy", append([]string{"x-amz-copy-source", "/bkt/plain"}, ssec...), "/bkt/copy"},
		"copy SSE source": {"PUT", "/bkt/copy2", []string{"x-amz-copy-source", "/bkt/plain", "x-amz-copy-source-server-side-encryption-customer-algorithm", "AES256"}, "/bkt/copy2"},
		"SSE multipart":   {"POST", "/bkt/enc?uploads", []string{"x-amz-server-side-encryption", "AES256"}, ""},
		"SSE-C part":      {"PUT", "/bkt/mp?partNumber=1&uploadId=" + id, ssec, ""},
		"SSE-C get":       {"GET", "/bkt/plain", ssec, ""},
		"SSE-C head":      {"HEAD", "/bkt/plain", ssec, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := e.with(t)
			e.must(http.StatusNotImplemented, "NotImplemented", tc.method, tc.path, alice, []byte("secret"), tc.hdr...)
			if tc.absent != "" {
				e.must(http.StatusNotFound, "NoSuchKey", "GET", tc.absent, alice, nil)
			}
		})
	}
	var ups uploadsXML
	r := e.must(http.StatusOK, "", "GET", "/bkt?uploads", alice, nil)
	if err := xml.Unmarshal(r.body, &ups); err != nil || len(ups.Uploads) != 1 {
		t.Errorf("uploads after a refused encrypted one: %s", r.body)
	}
	r = e.must(http.StatusOK, "", "GET", "/bkt/mp?uploadId="+id, alice, nil)
	if bytes.Contains(r.body, []byte("<Part>")) {
		t.Errorf("a refused encrypted part was stored: %s", r.body)
	}
}

func TestRepeatedCompleteMultipartUpload(t *testing.T) {
	e := newEnv(t)
	e.bucket("bkt")
	id := e.createUpload("k")
	etag := e.uploadPart("k", id, 1, []byte("only"))
	first := e.must(http.StatusOK, "", "POST", "/bkt/k?uploadId="+id, alice, completeBody(1, etag))
	again := e.must(http.StatusOK, "", "POST", "/bkt/k?uploadId="+id, alice, completeBody(1, etag))
	var a, b completeResult
	if xml.Unmarshal(first.body, &a) != nil || xml.Unmarshal(again.body, &b) != nil || a.ETag == "" || a.ETag != b.ETag {
		t.Errorf("first completion %s, repeated %s: want the same ETag", first.body, again.body)
	}
	// Once the key holds another object, the upload is gone for good.
	e.put("/bkt/k", "newer")
	e.must(http.StatusNotFound, "NoSuchUpload", "POST", "/bkt/k?uploadId="+id, alice, completeBody(1, etag))
	// Another upload's id on the same key is no completion of it.
	e.must(http.StatusNotFound, "NoSuchUpload", "POST", "/bkt/k?uploadId=nope", alice, completeBody(1, etag))
}

func TestResentPartReplacesIt(t *testing.T) {
	e := newEnv(t)
	e.bucket("bkt")
	id := e.createUpload("k")
	first := e.uploadPart("k", id, 1, []byte("AAAA"))
	second := e.uploadPart("k", id, 1, []byte("BBBB"))
	// Clients that record every upload of a part list it twice; the part
	// is what was uploaded last.
	e.must(http.StatusOK, "", "POST", "/bkt/k?uploadId="+id, alice, completeBody(1, first, 1, second))
	if got := e.get("/bkt/k"); got != "BBBB" {
		t.Errorf("object = %q, want the re-sent part BBBB", got)
	}
	id = e.createUpload("k2")
	p1 := e.uploadPart("k2", id, 1, bytes.Repeat([]byte("x"), object.MinPartSize))
	p2 := e.uploadPart("k2", id, 2, []byte("y"))
	e.must(http.StatusBadRequest, "InvalidPartOrder", "POST", "/bkt/k2?uploadId="+id, alice, completeBody(1, p1, 2, p2, 1, p1))
}

func TestGetPartNumber(t *testing.T) {
	e := newEnv(t)
	e.bucket("bkt")
	part1 := bytes.Repeat([]byte("x"), object.MinPartSize)
	id := e.createUpload("mp")
	p1 := e.uploadPart("mp", id, 1, part1)
	p2 := e.uploadPart("mp", id, 2, []byte("tail"))
	e.must(http.StatusOK, "", "POST", "/bkt/mp?uploadId="+id, alice, completeBody(1, p1, 2, p2))
	e.put("/bkt/plain", "whole")

	r := e.must(http.StatusPartialContent, "", "GET", "/bkt/mp?partNumber=2", alice, nil)
	if string(r.body) != "tail" || r.header.Get("x-amz-mp-parts-count") != "2" {
		t.Errorf("part 2: %q, parts count %q", r.body, r.header.Get("x-amz-mp-parts-count"))
	}
	want := fmt.Sprintf("bytes %d-%d/%d", len(part1), len(part1)+3, len(part1)+4)
	if got := r.header.Get("Content-Range"); got != want {
		t.Errorf("part 2 Content-Range %q, want %q", got, want)
	}
	r = e.must(http.StatusPartialContent, "", "HEAD", "/bkt/mp?partNumber=1", alice, nil)
	if r.header.Get("Content-Length") != fmt.Sprint(len(part1)) || r.header.Get("x-amz-mp-parts-count") != "2" {
		t.Errorf("HEAD part 1: length %q, parts count %q", r.header.Get("Content-Length"), r.header.Get("x-amz-mp-parts-count"))
	}
	e.must(http.StatusBadRequest, "InvalidPart", "GET", "/bkt/mp?partNumber=3", alice, nil)

	r = e.must(http.StatusOK, "", "GET", "/bkt/plain?partNumber=1", alice, nil)
	if string(r.body) != "whole" || r.header.Get("x-amz-mp-parts-count") != "" {
		t.Errorf("plain part 1: %q, parts count %q", r.body, r.header.Get("x-amz-mp-parts-count"))
	}
	e.must(http.StatusBadRequest, "InvalidPart", "GET", "/bkt/plain?partNumber=2", alice, nil)
	e.must(http.StatusBadRequest, "InvalidArgument", "GET", "/bkt/plain?partNumber=0", alice, nil)
	e.must(http.StatusBadRequest, "InvalidRequest", "GET", "/bkt/plain?partNumber=1", alice, nil, "Range", "bytes=0-1")
}

func TestCopySourceConditions(t *testing.T) {
	e := newEnv(t)
	e.bucket("bkt")
	etag := e.put("/bkt/src", "payload").header.Get("ETag")
	past := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
	future := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	tests := map[string]struct {
		hdr  []string
		want int
	}{
		"if-match":                         {[]string{"x-amz-copy-source-if-match", etag}, http.StatusOK},
		"if-match, other":                  {[]string{"x-amz-copy-source-if-match", `"other"`}, http.StatusPreconditionFailed},
		"if-none-match":                    {[]string{"x-amz-copy-source-if-none-match", etag}, http.StatusPreconditionFailed},
		"if-none-match, other":             {[]string{"x-amz-copy-source-if-none-match", `"other"`}, http.StatusOK},
		"if-modified-since, past":          {[]string{"x-amz-copy-source-if-modified-since", past}, http.StatusOK},
		"if-modified-since, future":        {[]string{"x-amz-copy-source-if-modified-since", future}, http.StatusPreconditionFailed},
		"if-unmodified-since, past":        {[]string{"x-amz-copy-source-if-unmodified-since", past}, http.StatusPreconditionFailed},
		"if-unmodified-since, future":      {[]string{"x-amz-copy-source-if-unmodified-since", future}, http.StatusOK},
		"if-match true, unmodified false":  {[]string{"x-amz-copy-source-if-match", etag, "x-amz-copy-source-if-unmodified-since", past}, http.StatusOK},
		"if-none-match false, modified ok": {[]string{"x-amz-copy-source-if-none-match", etag, "x-amz-copy-source-if-modified-since", past}, http.StatusPreconditionFailed},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := e.with(t)
			dst := "/bkt/" + strings.NewReplacer(" ", "-", ",", "").Replace(name)
			code := ""
			if tc.want != http.StatusOK {
				code = "PreconditionFailed"
			}
			e.must(tc.want, code, "PUT", dst, alice, nil, append([]string{"x-amz-copy-source", "/bkt/src"}, tc.hdr...)...)
			if tc.want != http.StatusOK {
				e.must(http.StatusNotFound, "NoSuchKey", "GET", dst, alice, nil)
			}
		})
	}
}

func TestListBucketsPaged(t *testing.T) {
	e := newEnv(t)
	for _, b := range []string{"b-3", "b-1", "b-2", "c-1"} {
		e.bucket(b)
	}
	page := func(query string) (names []string, token string) {
		t.Helper()
		var out struct {
			listBuckets
			ContinuationToken string `xml:"ContinuationToken"`
		}
		r := e.must(http.StatusOK, "", "GET", "/?"+query, alice, nil)
		if err := xml.Unmarshal(r.body, &out); err != nil {
			t.Fatal(err)
		}
		for _, b := range out.Buckets {
			names = append(names, b.Name)
		}
		return names, out.ContinuationToken
	}
	var all []string
	query := "max-buckets=3"
	for pages := 0; ; pages++ {
		names, tok := page(query)
		if len(names) > 3 || pages > 2 {
			t.Fatalf("page %d: %v", pages, names)
		}
		all = append(all, names...)
		if tok == "" {
			break
		}
		query = "max-buckets=3&continuation-token=" + tok
	}
	if got := strings.Join(all, ","); got != "b-1,b-2,b-3,c-1" {
		t.Errorf("pages gave %s", got)
	}
	if names, tok := page("prefix=b-&max-buckets=2"); strings.Join(names, ",") != "b-1,b-2" || tok == "" {
		t.Errorf("prefix page %v token %q", names, tok)
	}
	for _, bad := range []string{"0", "10001", "x"} {
		e.must(http.StatusBadRequest, "InvalidArgument", "GET", "/?max-buckets="+bad, alice, nil)
	}
}

func TestChunkedUploadWithDecodedLength(t *testing.T) {
	e := newEnv(t)
	e.bucket("bkt")
	put := func(key, body, decoded string) response {
		req := e.request("PUT", "/bkt/"+key, nil)
		req.Body = io.NopCloser(strings.NewReader(body)) // unknown length: chunked
		req.ContentLength = -1
		req.Header.Set("x-amz-decoded-content-length", decoded)
		sigv4.Sign(req, alice, creds[alice].secret, "us-east-1", sha256hex([]byte(body)), time.Now())
		return e.send(req)
	}
	e.check(put("k", "streamed", "8"), http.StatusOK, "", "PUT /bkt/k")
	if got := e.get("/bkt/k"); got != "streamed" {
		t.Errorf("GET = %q", got)
	}
	e.check(put("short", "streamed", "9"), http.StatusBadRequest, "IncompleteBody", "PUT /bkt/short")
	e.check(put("long", "streamed", "7"), http.StatusBadRequest, "", "PUT /bkt/long")
	e.check(put("bad", "streamed", "-1"), http.StatusBadRequest, "InvalidArgument", "PUT /bkt/bad")
	for _, k := range []string{"short", "long", "bad"} {
		e.must(http.StatusNotFound, "NoSuchKey", "GET", "/bkt/"+k, alice, nil)
	}
}

type versionsXML struct {
	IsTruncated         bool   `xml:"IsTruncated"`
	NextKeyMarker       string `xml:"NextKeyMarker"`
	NextVersionIDMarker string `xml:"NextVersionIdMarker"`
	Versions            []struct {
		Key       string `xml:"Key"`
		VersionID string `xml:"VersionId"`
		IsLatest  bool   `xml:"IsLatest"`
		ETag      string `xml:"ETag"`
		Size      int64  `xml:"Size"`
	} `xml:"Version"`
	CommonPrefixes []struct {
		Prefix string `xml:"Prefix"`
	} `xml:"CommonPrefixes"`
}

func TestListObjectVersions(t *testing.T) {
	e := newEnv(t)
	e.bucket("bkt")
	for _, k := range []string{"a", "b", "c/1", "d"} {
		e.put("/bkt/"+k, k)
	}
	list := func(query string) versionsXML {
		t.Helper()
		r := e.must(http.StatusOK, "", "GET", "/bkt?versions&"+query, alice, nil)
		if !bytes.Contains(r.body, []byte("<ListVersionsResult")) {
			t.Fatalf("not a ListVersionsResult: %s", r.body)
		}
		var out versionsXML
		if err := xml.Unmarshal(r.body, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	l := list("max-keys=2")
	if len(l.Versions) != 2 || !l.IsTruncated || l.NextKeyMarker != "b" || l.NextVersionIDMarker != "null" {
		t.Fatalf("first page %+v", l)
	}
	for _, v := range l.Versions {
		if v.VersionID != "null" || !v.IsLatest || v.Size != 1 || v.ETag != `"`+md5hex([]byte(v.Key))+`"` {
			t.Errorf("version %+v", v)
		}
	}
	l = list("key-marker=b&version-id-marker=null&delimiter=/")
	if len(l.Versions) != 1 || l.Versions[0].Key != "d" || len(l.CommonPrefixes) != 1 || l.CommonPrefixes[0].Prefix != "c/" || l.IsTruncated {
		t.Errorf("second page %+v", l)
	}
	e.must(http.StatusBadRequest, "InvalidArgument", "GET", "/bkt?versions&key-marker=a&version-id-marker=v2", alice, nil)
	for _, bad := range []string{"/bkt?versions&max-keys=-1", "/bkt?max-keys=x", "/bkt?list-type=2&max-keys=-2"} {
		e.must(http.StatusBadRequest, "InvalidArgument", "GET", bad, alice, nil)
	}

	// Emptying a bucket through its versions leaves it empty.
	var del strings.Builder
	del.WriteString("<Delete>")
	for _, v := range list("").Versions {
		fmt.Fprintf(&del, "<Object><Key>%s</Key><VersionId>%s</VersionId></Object>", v.Key, v.VersionID)
	}
	del.WriteString("</Delete>")
	// Another version id names nothing and leaves the object alone.
	e.must(http.StatusBadRequest, "InvalidArgument", "DELETE", "/bkt/a?versionId=v2", alice, nil)
	e.must(http.StatusBadRequest, "InvalidArgument", "GET", "/bkt/a?versionId=v2", alice, nil)
	e.must(http.StatusOK, "", "GET", "/bkt/a?versionId=null", alice, nil)
	r := e.must(http.StatusOK, "", "POST", "/bkt?delete", alice, []byte("<Delete><Object><Key>a</Key><VersionId>v2</VersionId></Object></Delete>"))
	if !bytes.Contains(r.body, []byte("<Code>NoSuchVersion</Code>")) {
		t.Errorf("delete of version v2: %s", r.body)
	}
	e.must(http.StatusOK, "", "HEAD", "/bkt/a", alice, nil)

	r = e.must(http.StatusOK, "", "POST", "/bkt?delete", alice, []byte(del.String()))
	if !bytes.Contains(r.body, []byte("<Deleted><Key>a</Key><VersionId>null</VersionId></Deleted>")) {
		t.Errorf("deleted versions not echoed: %s", r.body)
	}
	if l := list(""); len(l.Versions) != 0 {
		t.Errorf("after deleting every version: %+v", l.Versions)
	}
	e.must(http.StatusNoContent, "", "DELETE", "/bkt", alice, nil)
}
