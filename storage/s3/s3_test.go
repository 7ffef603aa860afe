package s3

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/storage/object"
	"github.com/rackstack/rackstack/storage/object/objecttest"
	"github.com/rackstack/rackstack/storage/s3/sigv4"
)

type credential struct {
	who    *api.Principal
	secret string
}

// fakeCreds maps EC2 access keys to principals and secrets.
type fakeCreds map[string]credential

func (f fakeCreds) EC2Principal(_ context.Context, access string) (*api.Principal, string, error) {
	c, ok := f[access]
	if !ok {
		return nil, "", store.NotFoundf("credential %s not found", access)
	}
	return c.who, c.secret, nil
}

var creds = fakeCreds{
	"alice-key":  {&api.Principal{UserID: "alice", ProjectID: "p1", ProjectName: "one", Roles: []string{"member"}}, "alice-secret"},
	"reader-key": {&api.Principal{UserID: "rita", ProjectID: "p1", ProjectName: "one", Roles: []string{"reader"}}, "reader-secret"},
	"bob-key":    {&api.Principal{UserID: "bob", ProjectID: "p2", ProjectName: "two", Roles: []string{"member"}}, "bob-secret"},
}

const alice = "alice-key"

type env struct{ *objecttest.Served }

// with returns e reporting to t (a subtest).
func (e *env) with(t *testing.T) *env { return &env{e.Served.With(t)} }

// newEnv serves S3 over an object store of one node with six disks.
func newEnv(t *testing.T) *env {
	t.Helper()
	return &env{objecttest.Serve(t, 6, 64<<10, func(svc *object.Service) http.Handler { return &Handler{Store: svc, Creds: creds} })}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

// errorCode decodes an S3 error body ("" if it is not one).
func (r response) errorCode() string {
	var b struct {
		XMLName xml.Name `xml:"Error"`
		Code    string   `xml:"Code"`
	}
	if xml.Unmarshal(r.body, &b) != nil {
		return ""
	}
	return b.Code
}

func sha256hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func md5hex(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

// request builds a request to path (already escaped) with hdr as
// name/value pairs.
func (e *env) request(method, path string, body []byte, hdr ...string) *http.Request {
	e.T.Helper()
	req, err := http.NewRequest(method, e.Srv.URL+path, bytes.NewReader(body))
	if err != nil {
		e.T.Fatal(err)
	}
	if body == nil {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return req
}

func (e *env) send(req *http.Request) response {
	e.T.Helper()
	res, err := e.Srv.Client().Do(req)
	if err != nil {
		e.T.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.T.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// do sends a request signed by access (unsigned if "") over the SHA-256 of
// its body.
func (e *env) do(method, path, access string, body []byte, hdr ...string) response {
	e.T.Helper()
	req := e.request(method, path, body, hdr...)
	if access != "" {
		sigv4.Sign(req, access, creds[access].secret, "us-east-1", sha256hex(body), time.Now())
	}
	return e.send(req)
}

// must is do that fails the test unless the status is want; for an error
// status it also checks the XML error code (if code is not "").
func (e *env) must(want int, code, method, path, access string, body []byte, hdr ...string) response {
	e.T.Helper()
	r := e.do(method, path, access, body, hdr...)
	e.check(r, want, code, method+" "+path)
	return r
}

func (e *env) check(r response, want int, code, what string) {
	e.T.Helper()
	if r.status != want {
		e.T.Fatalf("%s: got %s, want %d %s", what, r, want, code)
	}
	if want < 300 || want == http.StatusNotModified {
		return
	}
	if strings.HasPrefix(what, "HEAD") {
		if len(r.body) != 0 {
			e.T.Errorf("%s: HEAD error has a body: %q", what, r.body)
		}
		return
	}
	if ct := r.header.Get("Content-Type"); ct != "application/xml" {
		e.T.Errorf("%s: error Content-Type %q", what, ct)
	}
	if got := r.errorCode(); got == "" || code != "" && got != code {
		e.T.Errorf("%s: error code %q, want %q: %s", what, got, code, r.body)
	}
}

func (e *env) bucket(name string) {
	e.T.Helper()
	e.must(http.StatusOK, "", "PUT", "/"+name, alice, nil)
}

func (e *env) put(path, data string, hdr ...string) response {
	e.T.Helper()
	return e.must(http.StatusOK, "", "PUT", path, alice, []byte(data), hdr...)
}

func (e *env) get(path string) string {
	e.T.Helper()
	return string(e.must(http.StatusOK, "", "GET", path, alice, nil).body)
}

type listBuckets struct {
	Owner struct {
		ID string `xml:"ID"`
	} `xml:"Owner"`
	Buckets []struct {
		Name         string `xml:"Name"`
		CreationDate string `xml:"CreationDate"`
	} `xml:"Buckets>Bucket"`
}

func (e *env) bucketNames(access string) []string {
	e.T.Helper()
	var out listBuckets
	r := e.must(http.StatusOK, "", "GET", "/", access, nil)
	if err := xml.Unmarshal(r.body, &out); err != nil {
		e.T.Fatal(err)
	}
	var names []string
	for _, b := range out.Buckets {
		if _, err := time.Parse(time.RFC3339, b.CreationDate); err != nil {
			e.T.Errorf("bucket %s CreationDate %q: %v", b.Name, b.CreationDate, err)
		}
		names = append(names, b.Name)
	}
	return names
}

func TestBucketLifecycle(t *testing.T) {
	e := newEnv(t)
	e.must(http.StatusOK, "", "PUT", "/photos", alice, nil)
	e.must(http.StatusConflict, "BucketAlreadyOwnedByYou", "PUT", "/photos", alice, nil)
	e.must(http.StatusOK, "", "PUT", "/docs", alice, []byte(`<CreateBucketConfiguration><LocationConstraint>us-east-1</LocationConstraint></CreateBucketConfiguration>`))
	e.must(http.StatusBadRequest, "MalformedXML", "PUT", "/bad-config", alice, []byte(`<Create`))

	for name, bucket := range map[string]string{
		"uppercase and underscore": "Bad_Name",
		"too short":                "ab",
		"leading hyphen":           "-abc",
		"trailing dot":             "abc.",
		"double dot":               "a..b",
		"too long":                 strings.Repeat("a", 64),
	} {
		t.Run(name, func(t *testing.T) {
			e := e.with(t)
			e.must(http.StatusBadRequest, "InvalidBucketName", "PUT", "/"+bucket, alice, nil)
		})
	}
	e.must(http.StatusOK, "", "PUT", "/"+strings.Repeat("a", 63), alice, nil)

	if got := strings.Join(e.bucketNames(alice), ","); got != "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa,docs,photos" {
		t.Errorf("buckets = %s", got)
	}
	e.must(http.StatusOK, "", "HEAD", "/photos", alice, nil)
	e.must(http.StatusNotFound, "", "HEAD", "/nope", alice, nil)
	e.must(http.StatusNotFound, "NoSuchBucket", "GET", "/nope", alice, nil)
	e.must(http.StatusNotFound, "NoSuchBucket", "DELETE", "/nope", alice, nil)
	e.must(http.StatusNotFound, "NoSuchBucket", "PUT", "/nope/key", alice, []byte("x"))
	e.must(http.StatusNotFound, "NoSuchBucket", "GET", "/nope/key", alice, nil)

	e.put("/photos/cat.jpg", "meow")
	e.must(http.StatusConflict, "BucketNotEmpty", "DELETE", "/photos", alice, nil)
	e.must(http.StatusNoContent, "", "DELETE", "/photos/cat.jpg", alice, nil)
	e.must(http.StatusNoContent, "", "DELETE", "/photos/cat.jpg", alice, nil) // missing keys delete fine
	e.must(http.StatusNoContent, "", "DELETE", "/photos", alice, nil)
	e.must(http.StatusNotFound, "", "HEAD", "/photos", alice, nil)
	e.must(http.StatusNotFound, "NoSuchBucket", "GET", "/photos?acl", alice, nil)
	if r := e.must(http.StatusOK, "", "GET", "/docs?location", alice, nil); !bytes.Contains(r.body, []byte("LocationConstraint")) {
		t.Errorf("location = %s", r.body)
	}
}

func TestPutObject(t *testing.T) {
	body := []byte("the quick brown fox")
	sum := md5.Sum(body)
	goodMD5 := base64.StdEncoding.EncodeToString(sum[:])
	otherSum := md5.Sum([]byte("other"))
	tests := map[string]struct {
		payload string // x-amz-content-sha256 to sign; "" for the body's
		hdr     []string
		status  int
		code    string
	}{
		"signed payload":      {"", nil, http.StatusOK, ""},
		"unsigned payload":    {sigv4.UnsignedPayload, nil, http.StatusOK, ""},
		"payload mismatch":    {sha256hex([]byte("something else")), nil, http.StatusBadRequest, "XAmzContentSHA256Mismatch"},
		"empty hash, body":    {sigv4.EmptyPayloadHash, nil, http.StatusBadRequest, "XAmzContentSHA256Mismatch"},
		"good Content-MD5":    {"", []string{"Content-MD5", goodMD5}, http.StatusOK, ""},
		"wrong Content-MD5":   {"", []string{"Content-MD5", base64.StdEncoding.EncodeToString(otherSum[:])}, http.StatusBadRequest, "BadDigest"},
		"unsigned, wrong MD5": {sigv4.UnsignedPayload, []string{"Content-MD5", base64.StdEncoding.EncodeToString(otherSum[:])}, http.StatusBadRequest, "BadDigest"},
		"malformed MD5":       {"", []string{"Content-MD5", "not base64!"}, http.StatusBadRequest, "InvalidDigest"},
		"short MD5":           {"", []string{"Content-MD5", base64.StdEncoding.EncodeToString([]byte("short"))}, http.StatusBadRequest, "InvalidDigest"},
		"metadata 2 KB":       {"", []string{"x-amz-meta-big", strings.Repeat("v", 2048-3)}, http.StatusOK, ""},
		"metadata too large":  {"", []string{"x-amz-meta-big", strings.Repeat("v", 2048-2)}, http.StatusBadRequest, "MetadataTooLarge"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.bucket("bkt")
			req := e.request("PUT", "/bkt/fox", body, tc.hdr...)
			payload := tc.payload
			if payload == "" {
				payload = sha256hex(body)
			}
			sigv4.Sign(req, alice, creds[alice].secret, "us-east-1", payload, time.Now())
			r := e.send(req)
			e.check(r, tc.status, tc.code, "PUT /b/fox")
			if tc.status != http.StatusOK {
				e.must(http.StatusNotFound, "NoSuchKey", "GET", "/bkt/fox", alice, nil)
				return
			}
			if got := r.header.Get("ETag"); got != `"`+md5hex(body)+`"` {
				t.Errorf("ETag = %s", got)
			}
			if got := e.get("/bkt/fox"); got != string(body) {
				t.Errorf("GET = %q", got)
			}
		})
	}

	t.Run("overwrite kept on failure", func(t *testing.T) {
		e := newEnv(t)
		e.bucket("bkt")
		e.put("/bkt/k", "first")
		req := e.request("PUT", "/bkt/k", []byte("second"))
		sigv4.Sign(req, alice, creds[alice].secret, "us-east-1", sha256hex([]byte("third!")), time.Now())
		e.check(e.send(req), http.StatusBadRequest, "XAmzContentSHA256Mismatch", "PUT /b/k")
		if got := e.get("/bkt/k"); got != "first" {
			t.Errorf("after a failed overwrite GET = %q, want first", got)
		}
	})
}

func TestGetObject(t *testing.T) {
	e := newEnv(t)
	e.bucket("bkt")
	data := "0123456789"
	e.put("/bkt/dir/obj", data, "Content-Type", "text/plain", "x-amz-meta-color", "red", "x-amz-meta-Size", "L", "Cache-Control", "no-cache")
	for _, method := range []string{"GET", "HEAD"} {
		t.Run(method, func(t *testing.T) {
			e := e.with(t)
			r := e.must(http.StatusOK, "", method, "/bkt/dir/obj", alice, nil)
			for k, v := range map[string]string{
				"Content-Type": "text/plain", "Content-Length": "10", "ETag": `"` + md5hex([]byte(data)) + `"`,
				"X-Amz-Meta-Color": "red", "X-Amz-Meta-Size": "L", "Cache-Control": "no-cache",
			} {
				if got := r.header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if _, err := http.ParseTime(r.header.Get("Last-Modified")); err != nil {
				t.Errorf("Last-Modified: %v", err)
			}
			if method == "GET" && string(r.body) != data {
				t.Errorf("body = %q", r.body)
			}
		})
	}
	ranges := map[string]struct {
		rng, body, contentRange string
		status                  int
	}{
		"head":          {"bytes=0-3", "0123", "bytes 0-3/10", http.StatusPartialContent},
		"tail":          {"bytes=-2", "89", "bytes 8-9/10", http.StatusPartialContent},
		"open":          {"bytes=7-", "789", "bytes 7-9/10", http.StatusPartialContent},
		"unsatisfiable": {"bytes=10-", "", "bytes */10", http.StatusRequestedRangeNotSatisfiable},
	}
	for name, tc := range ranges {
		t.Run(name, func(t *testing.T) {
			e := e.with(t)
			r := e.must(tc.status, "InvalidRange", "GET", "/bkt/dir/obj", alice, nil, "Range", tc.rng)
			if got := r.header.Get("Content-Range"); got != tc.contentRange {
				t.Errorf("Content-Range = %q, want %q", got, tc.contentRange)
			}
			if tc.status == http.StatusPartialContent && string(r.body) != tc.body {
				t.Errorf("body = %q, want %q", r.body, tc.body)
			}
		})
	}
	r := e.must(http.StatusOK, "", "GET", "/bkt/dir/obj?response-content-type=application%2Fjson", alice, nil)
	if got := r.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("response-content-type override = %q", got)
	}
	e.must(http.StatusNotModified, "", "GET", "/bkt/dir/obj", alice, nil, "If-None-Match", `"`+md5hex([]byte(data))+`"`)
	e.must(http.StatusPreconditionFailed, "PreconditionFailed", "GET", "/bkt/dir/obj", alice, nil, "If-Match", `"abc"`)
	r = e.must(http.StatusNotFound, "NoSuchKey", "GET", "/bkt/missing", alice, nil)
	if !bytes.Contains(r.body, []byte("<Key>missing</Key>")) {
		t.Errorf("NoSuchKey body lacks the key: %s", r.body)
	}
	e.must(http.StatusNotFound, "", "HEAD", "/bkt/missing", alice, nil)
	e.must(http.StatusNotFound, "", "HEAD", "/nobucket/missing", alice, nil)
}

func TestCopyObject(t *testing.T) {
	tests := map[string]struct {
		dst       string
		hdr       []string
		status    int
		code      string
		wantMeta  string
		wantCType string
	}{
		"copy":             {"/bkt2/dst", nil, http.StatusOK, "", "1", "text/src"},
		"copy directive":   {"/bkt2/dst", []string{"x-amz-metadata-directive", "COPY", "x-amz-meta-a", "ignored"}, http.StatusOK, "", "1", "text/src"},
		"replace":          {"/bkt2/dst", []string{"x-amz-metadata-directive", "REPLACE", "x-amz-meta-a", "2", "Content-Type", "text/new"}, http.StatusOK, "", "2", "text/new"},
		"replace on self":  {"/bkt/src", []string{"x-amz-metadata-directive", "REPLACE", "x-amz-meta-a", "3"}, http.StatusOK, "", "3", "application/octet-stream"},
		"copy onto self":   {"/bkt/src", nil, http.StatusBadRequest, "InvalidRequest", "", ""},
		"bad directive":    {"/bkt2/dst", []string{"x-amz-metadata-directive", "MOVE"}, http.StatusBadRequest, "InvalidArgument", "", ""},
		"if-match fails":   {"/bkt2/dst", []string{"x-amz-copy-source-if-match", `"nope"`}, http.StatusPreconditionFailed, "PreconditionFailed", "", ""},
		"no dest bucket":   {"/bkt3/dst", nil, http.StatusNotFound, "NoSuchBucket", "", ""},
		"missing source":   {"/bkt2/dst", []string{"x-amz-copy-source", "/bkt/nope"}, http.StatusNotFound, "NoSuchKey", "", ""},
		"no source bucket": {"/bkt2/dst", []string{"x-amz-copy-source", "/bkt9/src"}, http.StatusNotFound, "NoSuchBucket", "", ""},
		"bad source":       {"/bkt2/dst", []string{"x-amz-copy-source", "b"}, http.StatusBadRequest, "InvalidArgument", "", ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.bucket("bkt")
			e.bucket("bkt2")
			e.put("/bkt/src", "payload", "x-amz-meta-a", "1", "Content-Type", "text/src")
			hdr := append([]string{"x-amz-copy-source", "/bkt/src"}, tc.hdr...)
			r := e.must(tc.status, tc.code, "PUT", tc.dst, alice, nil, hdr...)
			if tc.status != http.StatusOK {
				return
			}
			var res struct {
				ETag         string `xml:"ETag"`
				LastModified string `xml:"LastModified"`
			}
			if err := xml.Unmarshal(r.body, &res); err != nil || res.ETag != `"`+md5hex([]byte("payload"))+`"` || res.LastModified == "" {
				t.Errorf("CopyObjectResult %s (%v)", r.body, err)
			}
			g := e.must(http.StatusOK, "", "GET", tc.dst, alice, nil)
			if string(g.body) != "payload" {
				t.Errorf("copy body = %q", g.body)
			}
			if got := g.header.Get("x-amz-meta-a"); got != tc.wantMeta {
				t.Errorf("x-amz-meta-a = %q, want %q", got, tc.wantMeta)
			}
			if got := g.header.Get("Content-Type"); got != tc.wantCType {
				t.Errorf("Content-Type = %q, want %q", got, tc.wantCType)
			}
		})
	}
}

type deleteResultXML struct {
	Deleted []struct {
		Key string `xml:"Key"`
	} `xml:"Deleted"`
	Errors []struct {
		Key string `xml:"Key"`
	} `xml:"Error"`
}

func TestDeleteObjects(t *testing.T) {
	for _, quiet := range []bool{false, true} {
		t.Run(fmt.Sprintf("quiet=%v", quiet), func(t *testing.T) {
			e := newEnv(t)
			e.bucket("bkt")
			e.put("/bkt/a", "1")
			e.put("/bkt/b", "2")
			e.put("/bkt/keep", "3")
			body := fmt.Sprintf(`<Delete><Quiet>%v</Quiet><Object><Key>a</Key></Object><Object><Key>b</Key></Object><Object><Key>never</Key></Object></Delete>`, quiet)
			r := e.must(http.StatusOK, "", "POST", "/bkt?delete", alice, []byte(body))
			var res deleteResultXML
			if err := xml.Unmarshal(r.body, &res); err != nil {
				t.Fatal(err)
			}
			want := 3
			if quiet {
				want = 0
			}
			if len(res.Deleted) != want || len(res.Errors) != 0 {
				t.Errorf("result = %s, want %d deleted and no errors", r.body, want)
			}
			e.must(http.StatusNotFound, "NoSuchKey", "GET", "/bkt/a", alice, nil)
			e.must(http.StatusNotFound, "NoSuchKey", "GET", "/bkt/b", alice, nil)
			e.must(http.StatusOK, "", "HEAD", "/bkt/keep", alice, nil)
		})
	}
	e := newEnv(t)
	e.bucket("bkt")
	e.must(http.StatusBadRequest, "MalformedXML", "POST", "/bkt?delete", alice, []byte(`<Delete>`))
	e.must(http.StatusBadRequest, "MalformedXML", "POST", "/bkt?delete", alice, []byte(`<Delete></Delete>`))
	e.must(http.StatusNotFound, "NoSuchBucket", "POST", "/nope?delete", alice, []byte(`<Delete><Object><Key>a</Key></Object></Delete>`))
	e.must(http.StatusForbidden, "AccessDenied", "POST", "/bkt?delete", "reader-key", []byte(`<Delete><Object><Key>a</Key></Object></Delete>`))
}

type listResult struct {
	Name                  string `xml:"Name"`
	Prefix                string `xml:"Prefix"`
	Delimiter             string `xml:"Delimiter"`
	MaxKeys               int    `xml:"MaxKeys"`
	IsTruncated           bool   `xml:"IsTruncated"`
	KeyCount              int    `xml:"KeyCount"`
	Marker                string `xml:"Marker"`
	NextMarker            string `xml:"NextMarker"`
	NextContinuationToken string `xml:"NextContinuationToken"`
	EncodingType          string `xml:"EncodingType"`
	Contents              []struct {
		Key  string `xml:"Key"`
		ETag string `xml:"ETag"`
		Size int64  `xml:"Size"`
	} `xml:"Contents"`
	CommonPrefixes []struct {
		Prefix string `xml:"Prefix"`
	} `xml:"CommonPrefixes"`
}

// names lists keys then common prefixes, comma-joined.
func (l listResult) names() string {
	var out []string
	for _, c := range l.Contents {
		out = append(out, c.Key)
	}
	for _, p := range l.CommonPrefixes {
		out = append(out, p.Prefix+"(p)")
	}
	return strings.Join(out, ",")
}

func (e *env) list(query string) listResult {
	e.T.Helper()
	r := e.must(http.StatusOK, "", "GET", "/bkt?"+query, alice, nil)
	var out listResult
	if err := xml.Unmarshal(r.body, &out); err != nil {
		e.T.Fatal(err)
	}
	return out
}

func TestListObjects(t *testing.T) {
	e := newEnv(t)
	e.bucket("bkt")
	keys := []string{"a/1", "a/2", "a/b/3", "b", "c d+e", "c/x", "d"}
	for _, k := range keys {
		e.put("/bkt/"+url.PathEscape(k), k)
	}
	tests := map[string]struct {
		query     string
		want      string
		truncated bool
	}{
		"v2 all":              {"list-type=2", "a/1,a/2,a/b/3,b,c d+e,c/x,d", false},
		"v2 prefix":           {"list-type=2&prefix=a/", "a/1,a/2,a/b/3", false},
		"v2 delimiter":        {"list-type=2&delimiter=/", "b,c d+e,d,a/(p),c/(p)", false},
		"v2 prefix delimiter": {"list-type=2&prefix=a/&delimiter=/", "a/1,a/2,a/b/(p)", false},
		"v2 start-after":      {"list-type=2&start-after=b", "c d+e,c/x,d", false},
		"v2 max-keys":         {"list-type=2&max-keys=2", "a/1,a/2", true},
		"v2 max-keys 0":       {"list-type=2&max-keys=0", "", false},
		"v1 marker":           {"marker=a/b/3", "b,c d+e,c/x,d", false},
		"v1 max-keys":         {"max-keys=3&delimiter=/", "b,c d+e,a/(p)", true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := e.with(t)
			l := e.list(tc.query)
			if got := l.names(); got != tc.want {
				t.Errorf("names = %q, want %q", got, tc.want)
			}
			if l.IsTruncated != tc.truncated || l.Name != "bkt" {
				t.Errorf("IsTruncated = %v, Name %q", l.IsTruncated, l.Name)
			}
		})
	}

	t.Run("v2 paging", func(t *testing.T) {
		e := e.with(t)
		var got []string
		tok := ""
		for page := 0; ; page++ {
			if page > len(keys) {
				t.Fatal("paging does not end")
			}
			q := "list-type=2&max-keys=2"
			if tok != "" {
				q += "&continuation-token=" + url.QueryEscape(tok)
			}
			l := e.list(q)
			if l.KeyCount != len(l.Contents)+len(l.CommonPrefixes) {
				t.Errorf("KeyCount = %d for %d entries", l.KeyCount, len(l.Contents))
			}
			for _, c := range l.Contents {
				got = append(got, c.Key)
			}
			if !l.IsTruncated {
				break
			}
			if l.NextContinuationToken == "" {
				t.Fatal("truncated without NextContinuationToken")
			}
			tok = l.NextContinuationToken
		}
		if strings.Join(got, ",") != strings.Join(keys, ",") {
			t.Errorf("paged keys = %q, want %q", got, keys)
		}
	})
	t.Run("v2 paging with delimiter", func(t *testing.T) {
		e := e.with(t)
		var got []string
		tok := ""
		for page := 0; page <= len(keys); page++ {
			q := "list-type=2&max-keys=1&delimiter=/"
			if tok != "" {
				q += "&continuation-token=" + url.QueryEscape(tok)
			}
			l := e.list(q)
			got = append(got, l.names())
			if !l.IsTruncated {
				break
			}
			tok = l.NextContinuationToken
		}
		if strings.Join(got, ",") != "a/(p),b,c d+e,c/(p),d" {
			t.Errorf("pages = %q", got)
		}
	})
	t.Run("v1 paging", func(t *testing.T) {
		e := e.with(t)
		l := e.list("max-keys=2")
		if !l.IsTruncated || l.NextMarker != "a/2" {
			t.Fatalf("first page: truncated %v NextMarker %q", l.IsTruncated, l.NextMarker)
		}
		l = e.list("max-keys=10&marker=" + url.QueryEscape(l.NextMarker))
		if l.names() != "a/b/3,b,c d+e,c/x,d" || l.IsTruncated || l.Marker != "a/2" {
			t.Errorf("second page %q truncated %v marker %q", l.names(), l.IsTruncated, l.Marker)
		}
	})
	t.Run("encoding-type=url", func(t *testing.T) {
		e := e.with(t)
		l := e.list("list-type=2&encoding-type=url&prefix=c")
		if l.EncodingType != "url" || len(l.Contents) != 2 {
			t.Fatalf("listing %+v", l)
		}
		// As S3 encodes: "/" stays, space is %20 and "+" is %2B, so a
		// client (boto3, given EncodingType itself) reads exactly these.
		if got := l.names(); got != "c%20d%2Be,c/x" {
			t.Errorf("encoded keys %q, want c%%20d%%2Be,c/x", got)
		}
		l = e.list("list-type=2&encoding-type=url&delimiter=/&prefix=" + url.QueryEscape("c "))
		if l.Prefix != "c%20" || l.Delimiter != "/" {
			t.Errorf("encoded Prefix %q Delimiter %q, want c%%20 and /", l.Prefix, l.Delimiter)
		}
		l = e.list("encoding-type=url&delimiter=/")
		if got := l.names(); got != "b,c%20d%2Be,d,a/(p),c/(p)" {
			t.Errorf("v1 encoded listing %q", got)
		}
	})
	t.Run("empty continuation token is echoed", func(t *testing.T) {
		e := e.with(t)
		r := e.must(http.StatusOK, "", "GET", "/bkt?list-type=2&continuation-token=", alice, nil)
		if !bytes.Contains(r.body, []byte("<ContinuationToken></ContinuationToken>")) {
			t.Errorf("no empty ContinuationToken in %s", r.body)
		}
		var l listResult
		if err := xml.Unmarshal(r.body, &l); err != nil || len(l.Contents) != len(keys) {
			t.Errorf("listing with an empty token: %d keys (%v), want all %d", len(l.Contents), err, len(keys))
		}
	})
	e.must(http.StatusBadRequest, "InvalidArgument", "GET", "/bkt?list-type=2&max-keys=x", alice, nil)
	e.must(http.StatusBadRequest, "InvalidArgument", "GET", "/bkt?list-type=2&encoding-type=base64", alice, nil)
	e.must(http.StatusBadRequest, "InvalidArgument", "GET", "/bkt?list-type=2&continuation-token=%21%21", alice, nil)
	if got := e.get("/bkt/" + url.PathEscape("c d+e")); got != "c d+e" {
		t.Errorf("GET key with space and plus = %q", got)
	}
}

type uploadsXML struct {
	Uploads []struct {
		Key      string `xml:"Key"`
		UploadID string `xml:"UploadId"`
	} `xml:"Upload"`
}

func (e *env) createUpload(key string) string {
	e.T.Helper()
	r := e.must(http.StatusOK, "", "POST", "/bkt/"+key+"?uploads", alice, nil, "x-amz-meta-kind", "multi", "Content-Type", "video/mp4")
	var res struct {
		UploadID string `xml:"UploadId"`
		Key      string `xml:"Key"`
	}
	if err := xml.Unmarshal(r.body, &res); err != nil || res.UploadID == "" || res.Key != key {
		e.T.Fatalf("initiate: %s (%v)", r.body, err)
	}
	return res.UploadID
}

func (e *env) uploadPart(key, id string, n int, data []byte) string {
	e.T.Helper()
	r := e.must(http.StatusOK, "", "PUT", fmt.Sprintf("/bkt/%s?partNumber=%d&uploadId=%s", key, n, id), alice, data)
	return r.header.Get("ETag")
}

func completeBody(parts ...any) []byte {
	var b strings.Builder
	b.WriteString("<CompleteMultipartUpload>")
	for i := 0; i+1 < len(parts); i += 2 {
		fmt.Fprintf(&b, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", parts[i], parts[i+1])
	}
	b.WriteString("</CompleteMultipartUpload>")
	return []byte(b.String())
}

func TestMultipartUpload(t *testing.T) {
	e := newEnv(t)
	e.bucket("bkt")
	part1 := bytes.Repeat([]byte("x"), object.MinPartSize)
	part2 := []byte("tail")
	small := []byte("tiny")

	id := e.createUpload("video")
	other := e.createUpload("other")
	etag1 := e.uploadPart("video", id, 1, part1)
	etag2 := e.uploadPart("video", id, 2, part2)
	if etag1 != `"`+md5hex(part1)+`"` {
		t.Errorf("part 1 ETag = %s", etag1)
	}

	var lp struct {
		Parts []struct {
			PartNumber int    `xml:"PartNumber"`
			ETag       string `xml:"ETag"`
			Size       int64  `xml:"Size"`
		} `xml:"Part"`
	}
	r := e.must(http.StatusOK, "", "GET", "/bkt/video?uploadId="+id, alice, nil)
	if err := xml.Unmarshal(r.body, &lp); err != nil {
		t.Fatal(err)
	}
	if len(lp.Parts) != 2 || lp.Parts[0].PartNumber != 1 || lp.Parts[0].Size != int64(len(part1)) || lp.Parts[1].ETag != etag2 {
		t.Errorf("ListParts = %+v", lp.Parts)
	}

	var ups uploadsXML
	r = e.must(http.StatusOK, "", "GET", "/bkt?uploads", alice, nil)
	if err := xml.Unmarshal(r.body, &ups); err != nil {
		t.Fatal(err)
	}
	if len(ups.Uploads) != 2 || ups.Uploads[0].Key != "other" || ups.Uploads[1].UploadID != id {
		t.Errorf("ListMultipartUploads = %+v", ups.Uploads)
	}

	failures := map[string]struct {
		body []byte
		code string
	}{
		"wrong etag":   {completeBody(1, etag1, 2, `"`+md5hex([]byte("nope"))+`"`), "InvalidPart"},
		"missing part": {completeBody(1, etag1, 3, etag2), "InvalidPart"},
		"out of order": {completeBody(2, etag2, 1, etag1), "InvalidPartOrder"},
		"no parts":     {completeBody(), "MalformedXML"},
		"not xml":      {[]byte("<Complete"), "MalformedXML"},
	}
	for name, tc := range failures {
		t.Run(name, func(t *testing.T) {
			e := e.with(t)
			e.must(http.StatusBadRequest, tc.code, "POST", "/bkt/video?uploadId="+id, alice, tc.body)
		})
	}
	e.must(http.StatusNotFound, "NoSuchKey", "GET", "/bkt/video", alice, nil)

	r = e.must(http.StatusOK, "", "POST", "/bkt/video?uploadId="+id, alice, completeBody(1, etag1, 2, etag2))
	raw1, _ := hex.DecodeString(md5hex(part1))
	raw2, _ := hex.DecodeString(md5hex(part2))
	wantETag := `"` + md5hex(append(raw1, raw2...)) + `-2"`
	var cr struct {
		ETag string `xml:"ETag"`
		Key  string `xml:"Key"`
	}
	if err := xml.Unmarshal(r.body, &cr); err != nil || cr.ETag != wantETag || cr.Key != "video" {
		t.Errorf("complete = %s, want ETag %s (%v)", r.body, wantETag, err)
	}
	g := e.must(http.StatusOK, "", "GET", "/bkt/video", alice, nil)
	if !bytes.Equal(g.body, append(append([]byte{}, part1...), part2...)) {
		t.Errorf("GET after complete: %d bytes, want %d", len(g.body), len(part1)+len(part2))
	}
	if g.header.Get("ETag") != wantETag || g.header.Get("X-Amz-Meta-Kind") != "multi" || g.header.Get("Content-Type") != "video/mp4" {
		t.Errorf("headers ETag %s meta %q type %q", g.header.Get("ETag"), g.header.Get("X-Amz-Meta-Kind"), g.header.Get("Content-Type"))
	}
	g = e.must(http.StatusPartialContent, "", "GET", "/bkt/video", alice, nil, "Range", fmt.Sprintf("bytes=%d-", len(part1)-1))
	if string(g.body) != "xtail" {
		t.Errorf("range across parts = %q", g.body)
	}
	e.must(http.StatusNotFound, "NoSuchUpload", "GET", "/bkt/video?uploadId="+id, alice, nil)

	// A part under the minimum that is not the last one.
	s1 := e.uploadPart("other", other, 1, small)
	s2 := e.uploadPart("other", other, 2, part2)
	e.must(http.StatusBadRequest, "EntityTooSmall", "POST", "/bkt/other?uploadId="+other, alice, completeBody(1, s1, 2, s2))
	e.must(http.StatusNoContent, "", "DELETE", "/bkt/other?uploadId="+other, alice, nil)
	e.must(http.StatusNotFound, "NoSuchUpload", "DELETE", "/bkt/other?uploadId="+other, alice, nil)
	e.must(http.StatusNotFound, "NoSuchUpload", "GET", "/bkt/other?uploadId="+other, alice, nil)
	e.must(http.StatusNotFound, "NoSuchUpload", "PUT", "/bkt/other?partNumber=3&uploadId="+other, alice, small)
	e.must(http.StatusNotFound, "NoSuchKey", "GET", "/bkt/other", alice, nil)

	// A single small part is fine: it is the last.
	one := e.createUpload("one")
	p := e.uploadPart("one", one, 1, small)
	e.must(http.StatusNotFound, "NoSuchUpload", "POST", "/bkt/other?uploadId="+one, alice, completeBody(1, p))
	e.must(http.StatusOK, "", "POST", "/bkt/one?uploadId="+one, alice, completeBody(1, p))
	if got := e.get("/bkt/one"); got != "tiny" {
		t.Errorf("single-part object = %q", got)
	}
	e.must(http.StatusBadRequest, "InvalidArgument", "PUT", "/bkt/one?partNumber=0&uploadId="+one, alice, small)
	e.must(http.StatusBadRequest, "InvalidArgument", "PUT", "/bkt/one?partNumber=10001&uploadId="+one, alice, small)

	r = e.must(http.StatusOK, "", "GET", "/bkt?uploads", alice, nil)
	ups = uploadsXML{}
	if err := xml.Unmarshal(r.body, &ups); err != nil || len(ups.Uploads) != 0 {
		t.Errorf("uploads left: %s", r.body)
	}
	e.must(http.StatusNotFound, "NoSuchBucket", "POST", "/nope/k?uploads", alice, nil)
}

func TestAuth(t *testing.T) {
	e := newEnv(t)
	e.bucket("bkt")
	e.put("/bkt/k", "secret")
	e.must(http.StatusOK, "", "PUT", "/bobs", "bob-key", nil)

	t.Run("unsigned", func(t *testing.T) {
		e := e.with(t)
		for _, p := range []string{"/", "/bkt", "/bkt/k"} {
			e.must(http.StatusForbidden, "AccessDenied", "GET", p, "", nil)
		}
		e.must(http.StatusForbidden, "AccessDenied", "PUT", "/bkt/new", "", []byte("x"))
	})
	t.Run("wrong secret", func(t *testing.T) {
		e := e.with(t)
		req := e.request("GET", "/bkt/k", nil)
		sigv4.Sign(req, alice, "not-the-secret", "us-east-1", sigv4.EmptyPayloadHash, time.Now())
		e.check(e.send(req), http.StatusForbidden, "SignatureDoesNotMatch", "GET /b/k")
	})
	t.Run("unknown key", func(t *testing.T) {
		e := e.with(t)
		req := e.request("GET", "/bkt/k", nil)
		sigv4.Sign(req, "who-key", "x", "us-east-1", sigv4.EmptyPayloadHash, time.Now())
		e.check(e.send(req), http.StatusForbidden, "InvalidAccessKeyId", "GET /b/k")
	})
	t.Run("another region", func(t *testing.T) {
		e := e.with(t)
		req := e.request("GET", "/bkt/k", nil)
		sigv4.Sign(req, alice, creds[alice].secret, "eu-west-1", sigv4.EmptyPayloadHash, time.Now())
		r := e.send(req)
		e.check(r, http.StatusBadRequest, "AuthorizationHeaderMalformed", "GET /b/k")
		// The region to sign for, which s3cmd (signing "US" by default)
		// reads to send the request again.
		if !bytes.Contains(r.body, []byte("<Region>us-east-1</Region>")) {
			t.Errorf("no Region in %s", r.body)
		}
		u := sigv4.Presign(e.request("GET", "/bkt/k", nil), alice, creds[alice].secret, "eu-west-1", time.Hour, time.Now())
		e.check(e.send(e.request("GET", strings.TrimPrefix(u, e.Srv.URL), nil)), http.StatusBadRequest, "AuthorizationQueryParametersError", "GET /b/k")
	})
	t.Run("signature v2", func(t *testing.T) {
		e := e.with(t)
		req := e.request("GET", "/bkt/k", nil, "Authorization", "AWS alice-key:c2lnbmF0dXJl")
		e.check(e.send(req), http.StatusBadRequest, "InvalidRequest", "GET /b/k")
	})
	t.Run("tampered", func(t *testing.T) {
		e := e.with(t)
		req := e.request("GET", "/bkt/k", nil)
		sigv4.Sign(req, alice, creds[alice].secret, "us-east-1", sigv4.EmptyPayloadHash, time.Now())
		req.URL.Path = "/bkt/other"
		e.check(e.send(req), http.StatusForbidden, "SignatureDoesNotMatch", "GET /b/other")
	})
	t.Run("reader", func(t *testing.T) {
		e := e.with(t)
		if got := string(e.must(http.StatusOK, "", "GET", "/bkt/k", "reader-key", nil).body); got != "secret" {
			t.Errorf("reader GET = %q", got)
		}
		e.must(http.StatusOK, "", "GET", "/bkt", "reader-key", nil)
		e.must(http.StatusForbidden, "AccessDenied", "PUT", "/bkt/k", "reader-key", []byte("overwrite"))
		e.must(http.StatusForbidden, "AccessDenied", "DELETE", "/bkt/k", "reader-key", nil)
		e.must(http.StatusForbidden, "AccessDenied", "PUT", "/readers", "reader-key", nil)
		e.must(http.StatusForbidden, "AccessDenied", "POST", "/bkt/k?uploads", "reader-key", nil)
		if got := e.get("/bkt/k"); got != "secret" {
			t.Errorf("after reader writes GET = %q", got)
		}
	})
	t.Run("tenant isolation", func(t *testing.T) {
		e := e.with(t)
		e.must(http.StatusNotFound, "NoSuchBucket", "GET", "/bkt/k", "bob-key", nil)
		e.must(http.StatusNotFound, "NoSuchBucket", "GET", "/bkt", "bob-key", nil)
		e.must(http.StatusNotFound, "NoSuchBucket", "DELETE", "/bkt/k", "bob-key", nil)
		e.must(http.StatusNotFound, "", "HEAD", "/bkt", "bob-key", nil)
		if got := strings.Join(e.bucketNames("bob-key"), ","); got != "bobs" {
			t.Errorf("bob's buckets = %q", got)
		}
		if got := strings.Join(e.bucketNames(alice), ","); got != "bkt" {
			t.Errorf("alice's buckets = %q", got)
		}
		e.must(http.StatusOK, "", "HEAD", "/bkt/k", alice, nil)
	})
	t.Run("presigned", func(t *testing.T) {
		e := e.with(t)
		req := e.request("GET", "/bkt/k", nil)
		u := sigv4.Presign(req, alice, creds[alice].secret, "us-east-1", time.Hour, time.Now())
		r := e.send(e.request("GET", strings.TrimPrefix(u, e.Srv.URL), nil))
		if r.status != http.StatusOK || string(r.body) != "secret" {
			t.Errorf("presigned GET: %s", r)
		}
		r = e.send(e.request("PUT", strings.TrimPrefix(u, e.Srv.URL), []byte("x")))
		e.check(r, http.StatusForbidden, "SignatureDoesNotMatch", "PUT presigned for GET")

		expired := sigv4.Presign(req, alice, creds[alice].secret, "us-east-1", time.Minute, time.Now().Add(-time.Hour))
		e.check(e.send(e.request("GET", strings.TrimPrefix(expired, e.Srv.URL), nil)), http.StatusForbidden, "AccessDenied", "GET expired")

		put := sigv4.Presign(e.request("PUT", "/bkt/up", nil), alice, creds[alice].secret, "us-east-1", time.Hour, time.Now())
		if r := e.send(e.request("PUT", strings.TrimPrefix(put, e.Srv.URL), []byte("uploaded"))); r.status != http.StatusOK {
			t.Errorf("presigned PUT: %s", r)
		}
		if got := e.get("/bkt/up"); got != "uploaded" {
			t.Errorf("presigned PUT stored %q", got)
		}
	})
	t.Run("method not allowed", func(t *testing.T) {
		e := e.with(t)
		e.must(http.StatusMethodNotAllowed, "MethodNotAllowed", "DELETE", "/", alice, nil)
		e.must(http.StatusMethodNotAllowed, "MethodNotAllowed", "POST", "/bkt", alice, nil)
	})
}

func TestKeyNames(t *testing.T) {
	e := newEnv(t)
	e.bucket("bkt")
	e.must(http.StatusBadRequest, "KeyTooLongError", "PUT", "/bkt/"+strings.Repeat("k", 1025), alice, []byte("x"))
	e.put("/bkt/"+strings.Repeat("k", 1024), "x")
	for _, k := range []string{"dir/sub/", "ümlaut", "a%b", "semi;colon", "tilde~"} {
		e.put("/bkt/"+url.PathEscape(k), k)
		if got := e.get("/bkt/" + url.PathEscape(k)); got != k {
			t.Errorf("key %q: GET = %q", k, got)
		}
	}
}

// TestXMLBodyPayloadHash checks that an XML request body is acted on only
// once all of it has been read and matched the signed hash, even when the
// document ends well before the body does.
func TestXMLBodyPayloadHash(t *testing.T) {
	padding := strings.Repeat(" ", 10000)
	tests := map[string]struct {
		method, path string
		doc          string
	}{
		"DeleteObjects": {"POST", "/bkt?delete", `<Delete><Object><Key>k</Key></Object></Delete>`},
		"CreateBucket":  {"PUT", "/other", `<CreateBucketConfiguration></CreateBucketConfiguration>`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.bucket("bkt")
			e.put("/bkt/k", "keep me")
			body := []byte(tc.doc + padding)
			signed := []byte(tc.doc + padding[1:] + "x")
			req := e.request(tc.method, tc.path, body)
			sigv4.Sign(req, alice, creds[alice].secret, "us-east-1", sha256hex(signed), time.Now())
			e.check(e.send(req), http.StatusBadRequest, "XAmzContentSHA256Mismatch", tc.method+" "+tc.path)
			e.must(http.StatusOK, "", "HEAD", "/bkt/k", alice, nil)
			e.must(http.StatusNotFound, "", "HEAD", "/other", alice, nil)
		})
	}
}

func TestMissingContentLength(t *testing.T) {
	e := newEnv(t)
	e.bucket("bkt")
	req := e.request("PUT", "/bkt/k", nil)
	req.Body = io.NopCloser(strings.NewReader("streamed")) // unknown length: chunked
	req.ContentLength = -1
	sigv4.Sign(req, alice, creds[alice].secret, "us-east-1", sigv4.UnsignedPayload, time.Now())
	e.check(e.send(req), http.StatusLengthRequired, "MissingContentLength", "PUT /bkt/k")
	e.must(http.StatusNotFound, "NoSuchKey", "GET", "/bkt/k", alice, nil)
}

func TestXMLBodyLimit(t *testing.T) {
	doc := `<Delete><Object><Key>k</Key></Object></Delete>`
	tests := map[string]struct {
		size   int
		status int
	}{
		"at the limit":   {maxXMLBodySize, http.StatusOK},
		"over the limit": {maxXMLBodySize + 1, http.StatusBadRequest},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.bucket("bkt")
			body := []byte(doc + strings.Repeat(" ", tc.size-len(doc)))
			e.must(tc.status, "MalformedXML", "POST", "/bkt?delete", alice, body)
		})
	}
}

// Errors that say "not here, not now" are 503s S3 clients retry, not 500s.
func TestUnavailableErrors(t *testing.T) {
	for name, err := range map[string]error{
		"no leader": store.ErrNoLeader,
		"halted":    &store.HaltError{Index: 9, Command: "x.y", Reason: "unknown command type"},
		"no disks":  object.ErrNoDisks,
	} {
		t.Run(name, func(t *testing.T) {
			w := httptest.NewRecorder()
			q := &request{w: w, r: httptest.NewRequest("GET", "/b/k", nil), bucket: "b"}
			q.failErr(fmt.Errorf("read: %w", err))
			if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "<Code>ServiceUnavailable</Code>") {
				t.Errorf("%d %s", w.Code, w.Body)
			}
		})
	}
}

// A GET whose data cannot be reconstructed answers InternalError before any
// header of the object is sent, never a 200 with a cut-off body.
func TestUnreadableObjectIsInternalError(t *testing.T) {
	e := newEnv(t)
	e.must(http.StatusOK, "", "PUT", "/bkt", alice, nil)
	body := bytes.Repeat([]byte("0123456789"), 60000) // several stripes
	e.must(http.StatusOK, "", "PUT", "/bkt/o", alice, body)
	o, err := e.Svc.Head(context.Background(), "p1", "bkt", "o")
	if err != nil {
		t.Fatal(err)
	}
	objecttest.LoseShards(t, e.Disks, o, o.Parts[0].Layout.M+1)
	r := e.must(http.StatusInternalServerError, "InternalError", "GET", "/bkt/o", alice, nil)
	if r.header.Get("ETag") != "" || r.header.Get("Last-Modified") != "" {
		t.Errorf("the error carries the object's headers: %v", r.header)
	}
	e.must(http.StatusInternalServerError, "InternalError", "GET", "/bkt/o", alice, nil, "Range", "bytes=300000-300009")
	e.must(http.StatusOK, "", "HEAD", "/bkt/o", alice, nil)
}

// TestEmptyBodyExpectContinue: a request that expects "100 Continue" gets
// it before the final response even when its body is empty, so a client
// that waits for the interim response (botocore) reads the final one as
// the final one, and the next request on the connection is answered as
// usual.
func TestEmptyBodyExpectContinue(t *testing.T) {
	e := newEnv(t)
	e.bucket("cont")
	conn, err := net.Dial("tcp", e.Srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	rd := bufio.NewReader(conn)
	// send writes a signed PUT of body on the connection and returns the
	// status lines of the responses up to the final one.
	send := func(key string, body []byte, expect bool) []string {
		t.Helper()
		req := e.request("PUT", "/cont/"+key, body)
		if expect {
			req.Header.Set("Expect", "100-continue")
		}
		sigv4.Sign(req, alice, creds[alice].secret, "us-east-1", sha256hex(body), time.Now())
		if err := req.Write(conn); err != nil {
			t.Fatal(err)
		}
		var lines []string
		for {
			res, err := http.ReadResponse(rd, req)
			if err != nil {
				t.Fatalf("PUT %s: %v (read so far: %q)", key, err, lines)
			}
			lines = append(lines, fmt.Sprintf("%d", res.StatusCode))
			if res.StatusCode >= 200 {
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				return lines
			}
		}
	}
	if got := strings.Join(send("empty", nil, true), " "); got != "100 200" {
		t.Errorf("empty PUT expecting 100-continue: responses %s, want 100 then 200", got)
	}
	if got := strings.Join(send("full", []byte("some bytes"), true), " "); got != "100 200" {
		t.Errorf("next PUT on the connection: responses %s, want 100 then 200", got)
	}
	if got := strings.Join(send("plain", nil, false), " "); got != "200" {
		t.Errorf("empty PUT without Expect: responses %s, want 200 alone", got)
	}
	if got := e.get("/cont/full"); got != "some bytes" {
		t.Errorf("GET full = %q", got)
	}
}

// A copy does not carry its source's delete time (Swift's X-Delete-At,
// set through the Swift API): the copy must not expire with it.
func TestCopyDoesNotCarryDeleteAt(t *testing.T) {
	e := newEnv(t)
	e.bucket("bkt")
	at := object.FormatDeleteAt(time.Now().Add(time.Hour).Unix())
	_, err := e.Svc.Put(context.Background(), "p1", "bkt", "src", strings.NewReader("payload"), object.PutOptions{
		Attrs: object.Attrs{Headers: map[string]string{object.DeleteAtHeader: at, "Cache-Control": "no-cache"}}, Size: 7,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.must(http.StatusOK, "", "PUT", "/bkt/dst", alice, nil, "x-amz-copy-source", "/bkt/src")
	o, err := e.Svc.Head(context.Background(), "p1", "bkt", "dst")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := o.Headers[object.DeleteAtHeader]; ok || o.Headers["Cache-Control"] != "no-cache" {
		t.Errorf("the copy's stored headers: %v", o.Headers)
	}
}
