package swift

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/api/apitest"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/storage/object"
	"github.com/rackstack/rackstack/storage/object/objecttest"
)

var principals = apitest.Tokens{
	"alice-tok":  {UserID: "alice", ProjectID: "p1", Roles: []string{"member"}},
	"reader-tok": {UserID: "rita", ProjectID: "p1", Roles: []string{"reader"}},
	"bob-tok":    {UserID: "bob", ProjectID: "p2", Roles: []string{"member"}},
	"admin-tok":  {UserID: "root", ProjectID: "p0", Roles: []string{"admin"}},
}

type env struct{ *objecttest.Served }

// with returns e reporting to t (a subtest).
func (e *env) with(t *testing.T) *env { return &env{e.Served.With(t)} }

// newEnv serves Swift over an object store of one node with six disks.
func newEnv(t *testing.T) *env {
	t.Helper()
	return &env{objecttest.Serve(t, 6, 4096, func(svc *object.Service) http.Handler { return &Handler{Store: svc, Auth: principals} })}
}

type response struct {
	status int
	header http.Header
	body   string
}

// do sends one request; hdr is name/value pairs.
func (e *env) do(method, path, token, body string, hdr ...string) response {
	e.T.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.Srv.URL+path, rd)
	if err != nil {
		e.T.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := e.Srv.Client().Do(req)
	if err != nil {
		e.T.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.T.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{status: res.StatusCode, header: res.Header, body: string(b)}
}

// must is do that fails the test unless the status is want.
func (e *env) must(want int, method, path, token, body string, hdr ...string) response {
	e.T.Helper()
	r := e.do(method, path, token, body, hdr...)
	if r.status != want {
		e.T.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, want, r.body)
	}
	return r
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

const alice = "alice-tok"

func TestContainerLifecycle(t *testing.T) {
	e := newEnv(t)
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c", alice, "")
	e.must(http.StatusAccepted, "PUT", "/v1/AUTH_p1/c", alice, "", "X-Container-Meta-Color", "blue")
	r := e.must(http.StatusNoContent, "GET", "/v1/AUTH_p1/c", alice, "")
	if got := r.header.Get("X-Container-Meta-Color"); got != "blue" {
		t.Errorf("container meta = %q, want blue", got)
	}
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c/o", alice, "data")
	e.must(http.StatusConflict, "DELETE", "/v1/AUTH_p1/c", alice, "")
	e.must(http.StatusNoContent, "DELETE", "/v1/AUTH_p1/c/o", alice, "")
	e.must(http.StatusNoContent, "DELETE", "/v1/AUTH_p1/c", alice, "")
	e.must(http.StatusNotFound, "GET", "/v1/AUTH_p1/c", alice, "")
	e.must(http.StatusNotFound, "DELETE", "/v1/AUTH_p1/c", alice, "")
}

func TestObjectPutETag(t *testing.T) {
	tests := map[string]struct {
		etag   string
		status int
	}{
		"no etag":     {"", http.StatusCreated},
		"good etag":   {md5hex("hello"), http.StatusCreated},
		"quoted etag": {`"` + md5hex("hello") + `"`, http.StatusCreated},
		"wrong etag":  {md5hex("other"), http.StatusUnprocessableEntity},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c", alice, "")
			var hdr []string
			if tc.etag != "" {
				hdr = []string{"Etag", tc.etag}
			}
			r := e.must(tc.status, "PUT", "/v1/AUTH_p1/c/o", alice, "hello", hdr...)
			if tc.status != http.StatusCreated {
				e.must(http.StatusNotFound, "HEAD", "/v1/AUTH_p1/c/o", alice, "")
				c := e.must(http.StatusNoContent, "HEAD", "/v1/AUTH_p1/c", alice, "")
				if got := c.header.Get("X-Container-Object-Count"); got != "0" {
					t.Errorf("object count after failed PUT = %s, want 0", got)
				}
				return
			}
			if got := r.header.Get("Etag"); got != md5hex("hello") {
				t.Errorf("Etag = %q, want %s", got, md5hex("hello"))
			}
			if got := e.must(http.StatusOK, "GET", "/v1/AUTH_p1/c/o", alice, "").body; got != "hello" {
				t.Errorf("body = %q", got)
			}
		})
	}
}

func TestObjectGetHead(t *testing.T) {
	e := newEnv(t)
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c", alice, "")
	body := "0123456789abcdefghij"
	before := time.Now().Add(-time.Second).Truncate(time.Second)
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c/dir/o", alice, body,
		"Content-Type", "text/plain", "X-Object-Meta-Color", "red", "Content-Disposition", "attachment")
	for _, method := range []string{"GET", "HEAD"} {
		t.Run(method, func(t *testing.T) {
			e := e.with(t)
			r := e.must(http.StatusOK, method, "/v1/AUTH_p1/c/dir/o", alice, "")
			want := map[string]string{
				"Content-Length":      "20",
				"Etag":                md5hex(body),
				"Content-Type":        "text/plain",
				"X-Object-Meta-Color": "red",
				"Content-Disposition": "attachment",
				"Accept-Ranges":       "bytes",
			}
			for k, v := range want {
				if got := r.header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			lm, err := http.ParseTime(r.header.Get("Last-Modified"))
			if err != nil || lm.Before(before) || lm.After(time.Now().Add(time.Second)) {
				t.Errorf("Last-Modified = %q (%v)", r.header.Get("Last-Modified"), err)
			}
			wantBody := body
			if method == "HEAD" {
				wantBody = ""
			}
			if r.body != wantBody {
				t.Errorf("body = %q, want %q", r.body, wantBody)
			}
		})
	}

	ranges := map[string]struct {
		status     int
		header     string
		body       string
		contentRng string
	}{
		"first five":    {header: "bytes=0-4", status: http.StatusPartialContent, body: "01234", contentRng: "bytes 0-4/20"},
		"open end":      {header: "bytes=15-", status: http.StatusPartialContent, body: "fghij", contentRng: "bytes 15-19/20"},
		"suffix":        {header: "bytes=-3", status: http.StatusPartialContent, body: "hij", contentRng: "bytes 17-19/20"},
		"past end":      {header: "bytes=10-99", status: http.StatusPartialContent, body: "abcdefghij", contentRng: "bytes 10-19/20"},
		"unsatisfiable": {header: "bytes=20-30", status: http.StatusRequestedRangeNotSatisfiable, contentRng: "bytes */20"},
	}
	for name, tc := range ranges {
		t.Run(name, func(t *testing.T) {
			e := e.with(t)
			r := e.must(tc.status, "GET", "/v1/AUTH_p1/c/dir/o", alice, "", "Range", tc.header)
			if got := r.header.Get("Content-Range"); got != tc.contentRng {
				t.Errorf("Content-Range = %q, want %q", got, tc.contentRng)
			}
			if tc.status == http.StatusPartialContent && r.body != tc.body {
				t.Errorf("body = %q, want %q", r.body, tc.body)
			}
		})
	}

	t.Run("if-none-match", func(t *testing.T) {
		e := e.with(t)
		e.must(http.StatusNotModified, "GET", "/v1/AUTH_p1/c/dir/o", alice, "", "If-None-Match", `"`+md5hex(body)+`"`)
		e.must(http.StatusPreconditionFailed, "GET", "/v1/AUTH_p1/c/dir/o", alice, "", "If-Match", `"nope"`)
	})
	t.Run("missing", func(t *testing.T) {
		e := e.with(t)
		e.must(http.StatusNotFound, "GET", "/v1/AUTH_p1/c/nope", alice, "")
		e.must(http.StatusNotFound, "GET", "/v1/AUTH_p1/nope/o", alice, "")
	})
}

func TestObjectPostReplacesMeta(t *testing.T) {
	e := newEnv(t)
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c", alice, "")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c/o", alice, "x",
		"Content-Type", "text/plain", "X-Object-Meta-A", "1", "X-Object-Meta-B", "2")
	e.must(http.StatusAccepted, "POST", "/v1/AUTH_p1/c/o", alice, "", "X-Object-Meta-C", "3")
	r := e.must(http.StatusOK, "HEAD", "/v1/AUTH_p1/c/o", alice, "")
	if r.header.Get("X-Object-Meta-A") != "" || r.header.Get("X-Object-Meta-B") != "" || r.header.Get("X-Object-Meta-C") != "3" {
		t.Errorf("meta after POST: A=%q B=%q C=%q, want only C=3",
			r.header.Get("X-Object-Meta-A"), r.header.Get("X-Object-Meta-B"), r.header.Get("X-Object-Meta-C"))
	}
	if got := r.header.Get("Content-Type"); got != "text/plain" {
		t.Errorf("Content-Type after POST = %q, want it kept", got)
	}
	e.must(http.StatusNotFound, "POST", "/v1/AUTH_p1/c/nope", alice, "", "X-Object-Meta-C", "3")

	// Headers such as Content-Disposition are replaced as a whole too, as
	// Swift's object server writes a POST's metadata: the ones the POST
	// sends are the ones kept, one sent empty is none (gophercloud clears
	// Content-Disposition that way), the content type stays.
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c/h", alice, "x", "Content-Type", "text/csv", "Content-Disposition", "inline", "Content-Encoding", "gzip")
	e.must(http.StatusAccepted, "POST", "/v1/AUTH_p1/c/h", alice, "", "Content-Language", "en", "Content-Encoding", "gzip")
	r = e.must(http.StatusOK, "HEAD", "/v1/AUTH_p1/c/h", alice, "")
	if _, left := r.header["Content-Disposition"]; left || r.header.Get("Content-Encoding") != "gzip" || r.header.Get("Content-Language") != "en" || r.header.Get("Content-Type") != "text/csv" {
		t.Errorf("headers after a POST of Content-Language and Content-Encoding: %v", r.header)
	}
	e.must(http.StatusAccepted, "POST", "/v1/AUTH_p1/c/h", alice, "", "Content-Encoding", "")
	r = e.must(http.StatusOK, "HEAD", "/v1/AUTH_p1/c/h", alice, "")
	if _, left := r.header["Content-Encoding"]; left || r.header.Get("Content-Language") != "" {
		t.Errorf("headers after a POST of an empty Content-Encoding: %v", r.header)
	}
}

func TestObjectCopy(t *testing.T) {
	tests := map[string]struct {
		method string
		path   string
		hdr    []string
		meta   string // X-Object-Meta-A of the copy
	}{
		"COPY method":          {"COPY", "/v1/AUTH_p1/c/src", []string{"Destination", "/c2/dst"}, "1"},
		"COPY without slash":   {"COPY", "/v1/AUTH_p1/c/src", []string{"Destination", "c2/dst"}, "1"},
		"X-Copy-From":          {"PUT", "/v1/AUTH_p1/c2/dst", []string{"X-Copy-From", "/c/src"}, "1"},
		"X-Copy-From new meta": {"PUT", "/v1/AUTH_p1/c2/dst", []string{"X-Copy-From", "c/src", "X-Object-Meta-A", "2"}, "2"},
		"fresh metadata":       {"PUT", "/v1/AUTH_p1/c2/dst", []string{"X-Copy-From", "c/src", "X-Fresh-Metadata", "true"}, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c", alice, "")
			e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c2", alice, "")
			e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c/src", alice, "payload", "X-Object-Meta-A", "1", "Content-Type", "text/x-src")
			r := e.must(http.StatusCreated, tc.method, tc.path, alice, "", tc.hdr...)
			if got := r.header.Get("X-Copied-From"); got != "c/src" {
				t.Errorf("X-Copied-From = %q", got)
			}
			g := e.must(http.StatusOK, "GET", "/v1/AUTH_p1/c2/dst", alice, "")
			if g.body != "payload" || g.header.Get("Etag") != md5hex("payload") {
				t.Errorf("copy = %q etag %s", g.body, g.header.Get("Etag"))
			}
			if got := g.header.Get("X-Object-Meta-A"); got != tc.meta {
				t.Errorf("X-Object-Meta-A = %q, want %q", got, tc.meta)
			}
			if got := g.header.Get("Content-Type"); got != "text/x-src" {
				t.Errorf("Content-Type = %q, want the source's", got)
			}
		})
	}

	e := newEnv(t)
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c", alice, "")
	e.must(http.StatusPreconditionFailed, "COPY", "/v1/AUTH_p1/c/src", alice, "", "Destination", "nocontainer")
	e.must(http.StatusPreconditionFailed, "PUT", "/v1/AUTH_p1/c/dst", alice, "", "X-Copy-From", "/c")
	e.must(http.StatusNotFound, "PUT", "/v1/AUTH_p1/c/dst", alice, "", "X-Copy-From", "/c/missing")
}

func TestObjectDelete(t *testing.T) {
	e := newEnv(t)
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c", alice, "")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c/o", alice, "abc")
	e.must(http.StatusNoContent, "DELETE", "/v1/AUTH_p1/c/o", alice, "")
	e.must(http.StatusNotFound, "DELETE", "/v1/AUTH_p1/c/o", alice, "")
	e.must(http.StatusNotFound, "GET", "/v1/AUTH_p1/c/o", alice, "")
}

// listFixture makes container c holding names.
func listFixture(t *testing.T, names ...string) *env {
	e := newEnv(t)
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c", alice, "")
	for _, n := range names {
		e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c/"+n, alice, n)
	}
	return e
}

func TestContainerListing(t *testing.T) {
	e := listFixture(t, "a/1", "a/2", "a/b/3", "b", "c/x", "d")
	tests := map[string]struct {
		query  string
		status int
		want   string // text listing, names joined by ","
	}{
		"all":              {"", http.StatusOK, "a/1,a/2,a/b/3,b,c/x,d"},
		"prefix":           {"?prefix=a/", http.StatusOK, "a/1,a/2,a/b/3"},
		"delimiter":        {"?delimiter=/", http.StatusOK, "a/,b,c/,d"},
		"prefix delimiter": {"?prefix=a/&delimiter=/", http.StatusOK, "a/1,a/2,a/b/"},
		"path":             {"?path=a", http.StatusOK, "a/1,a/2,a/b/"},
		"marker":           {"?marker=a/2", http.StatusOK, "a/b/3,b,c/x,d"},
		"marker subdir":    {"?marker=a/&delimiter=/", http.StatusOK, "b,c/,d"},
		"limit":            {"?limit=2", http.StatusOK, "a/1,a/2"},
		"limit delimiter":  {"?limit=2&delimiter=/", http.StatusOK, "a/,b"},
		"end_marker":       {"?end_marker=b", http.StatusOK, "a/1,a/2,a/b/3"},
		"marker and end":   {"?marker=a/1&end_marker=c", http.StatusOK, "a/2,a/b/3,b"},
		"limit 0":          {"?limit=0", http.StatusNoContent, ""},
		"nothing matches":  {"?prefix=zz", http.StatusNoContent, ""},
		"limit max":        {"?limit=10000", http.StatusOK, "a/1,a/2,a/b/3,b,c/x,d"},
		"limit too big":    {"?limit=10001", http.StatusPreconditionFailed, ""},
		"limit negative":   {"?limit=-1", http.StatusPreconditionFailed, ""},
		"unknown format":   {"?format=txt", http.StatusOK, "a/1,a/2,a/b/3,b,c/x,d"}, // plain, as Swift
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := e.with(t)
			r := e.must(tc.status, "GET", "/v1/AUTH_p1/c"+tc.query, alice, "")
			if tc.status >= 300 {
				return
			}
			got := strings.ReplaceAll(strings.TrimSuffix(r.body, "\n"), "\n", ",")
			if got != tc.want {
				t.Errorf("listing = %q, want %q", got, tc.want)
			}
			if tc.status == http.StatusOK && r.header.Get("X-Container-Object-Count") != "6" {
				t.Errorf("X-Container-Object-Count = %q", r.header.Get("X-Container-Object-Count"))
			}
		})
	}

	t.Run("json", func(t *testing.T) {
		e := e.with(t)
		r := e.must(http.StatusOK, "GET", "/v1/AUTH_p1/c?format=json&delimiter=/&prefix=a/", alice, "")
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type = %q", ct)
		}
		var rows []map[string]any
		if err := json.Unmarshal([]byte(r.body), &rows); err != nil {
			t.Fatalf("decode %q: %v", r.body, err)
		}
		if len(rows) != 3 {
			t.Fatalf("rows = %v", rows)
		}
		if rows[0]["name"] != "a/1" || rows[0]["hash"] != md5hex("a/1") || rows[0]["bytes"] != float64(3) ||
			rows[0]["content_type"] == nil || rows[0]["last_modified"] == nil {
			t.Errorf("row 0 = %v", rows[0])
		}
		if rows[2]["subdir"] != "a/b/" || rows[2]["name"] != nil {
			t.Errorf("row 2 = %v, want a subdir entry", rows[2])
		}
	})
	t.Run("json empty", func(t *testing.T) {
		e := e.with(t)
		r := e.do("GET", "/v1/AUTH_p1/c?format=json&prefix=zz", alice, "")
		if r.status != http.StatusOK || strings.TrimSpace(r.body) != "[]" {
			t.Errorf("empty json listing: %d %q, want 200 []", r.status, r.body)
		}
	})
	t.Run("accept json", func(t *testing.T) {
		e := e.with(t)
		r := e.must(http.StatusOK, "GET", "/v1/AUTH_p1/c?limit=1", alice, "", "Accept", "application/json")
		if !strings.HasPrefix(r.body, "[") {
			t.Errorf("body = %q, want JSON", r.body)
		}
	})
}

func TestAccountListing(t *testing.T) {
	e := newEnv(t)
	for _, c := range []string{"alpha", "beta", "gamma"} {
		e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/"+c, alice, "")
	}
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/alpha/o1", alice, "12345")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/alpha/o2", alice, "678")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/beta/o", alice, "9")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p2/other", "bob-tok", "")

	r := e.must(http.StatusOK, "GET", "/v1/AUTH_p1", alice, "")
	if r.body != "alpha\nbeta\ngamma\n" {
		t.Errorf("listing = %q", r.body)
	}
	for k, v := range map[string]string{"X-Account-Container-Count": "3", "X-Account-Object-Count": "3", "X-Account-Bytes-Used": "9"} {
		if got := r.header.Get(k); got != v {
			t.Errorf("%s = %q, want %s", k, got, v)
		}
	}
	r = e.must(http.StatusOK, "GET", "/v1/AUTH_p1/?format=json&marker=alpha&limit=1", alice, "")
	var rows []struct {
		Name  string `json:"name"`
		Count int64  `json:"count"`
		Bytes int64  `json:"bytes"`
	}
	if err := json.Unmarshal([]byte(r.body), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Name != "beta" || rows[0].Count != 1 || rows[0].Bytes != 1 {
		t.Errorf("rows = %+v", rows)
	}
	e.must(http.StatusPreconditionFailed, "GET", "/v1/AUTH_p1?limit=10001", alice, "")
	if got := e.must(http.StatusOK, "GET", "/v1/AUTH_p1?format=txt", alice, "").body; got != "alpha\nbeta\ngamma\n" {
		t.Errorf("format=txt (plain, as Swift) = %q", got)
	}
	r = e.must(http.StatusNoContent, "GET", "/v1/AUTH_p3", "admin-tok", "")
	if r.header.Get("X-Account-Container-Count") != "0" {
		t.Errorf("empty account count = %q", r.header.Get("X-Account-Container-Count"))
	}
}

func TestStaticLargeObject(t *testing.T) {
	e := newEnv(t)
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c", alice, "")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/segs", alice, "")
	seg1, seg2 := strings.Repeat("A", 5000), strings.Repeat("B", 3000)
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/segs/1", alice, seg1)
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/segs/2", alice, seg2)
	manifest := func(etag1 string) string {
		return fmt.Sprintf(`[{"path":"/segs/1","etag":%q,"size_bytes":5000},{"path":"segs/2","etag":%q,"size_bytes":null}]`, etag1, md5hex(seg2))
	}

	t.Run("bad manifests", func(t *testing.T) {
		e := e.with(t)
		for name, m := range map[string]string{
			"wrong etag":    manifest(md5hex("nope")),
			"wrong size":    `[{"path":"/segs/1","size_bytes":1}]`,
			"missing seg":   `[{"path":"/segs/9"}]`,
			"not json":      `{`,
			"empty list":    `[]`,
			"bad path":      `[{"path":"segs"}]`,
			"range present": `[{"path":"/segs/1","range":"0-1"}]`,
		} {
			r := e.do("PUT", "/v1/AUTH_p1/c/big?multipart-manifest=put", alice, m)
			if r.status != http.StatusBadRequest {
				t.Errorf("%s: status %d, want 400: %s", name, r.status, r.body)
			}
		}
		e.must(http.StatusNotFound, "HEAD", "/v1/AUTH_p1/c/big", alice, "")
	})

	r := e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c/big?multipart-manifest=put", alice, manifest(md5hex(seg1)),
		"X-Object-Meta-Kind", "slo", "Content-Type", "text/x-big")
	wantETag := `"` + md5hex(md5hex(seg1)+md5hex(seg2)) + `"`
	if got := r.header.Get("Etag"); got != wantETag {
		t.Errorf("manifest PUT Etag = %q, want %s", got, wantETag)
	}
	g := e.must(http.StatusOK, "GET", "/v1/AUTH_p1/c/big", alice, "")
	if g.body != seg1+seg2 {
		t.Errorf("SLO body has %d bytes, want the %d of both segments", len(g.body), len(seg1+seg2))
	}
	for k, v := range map[string]string{"X-Static-Large-Object": "True", "Etag": wantETag, "Content-Length": "8000", "X-Object-Meta-Kind": "slo", "Content-Type": "text/x-big"} {
		if got := g.header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	g = e.must(http.StatusPartialContent, "GET", "/v1/AUTH_p1/c/big", alice, "", "Range", "bytes=4998-5001")
	if g.body != "AABB" {
		t.Errorf("range across segments = %q", g.body)
	}

	g = e.must(http.StatusOK, "GET", "/v1/AUTH_p1/c/big?multipart-manifest=get", alice, "")
	var segs []struct {
		Name  string `json:"name"`
		Hash  string `json:"hash"`
		Bytes int64  `json:"bytes"`
	}
	if err := json.Unmarshal([]byte(g.body), &segs); err != nil {
		t.Fatalf("manifest %q: %v", g.body, err)
	}
	if len(segs) != 2 || segs[0].Name != "/segs/1" || segs[0].Hash != md5hex(seg1) || segs[0].Bytes != 5000 ||
		segs[1].Name != "/segs/2" || segs[1].Bytes != 3000 {
		t.Errorf("manifest = %+v", segs)
	}

	l := e.must(http.StatusOK, "GET", "/v1/AUTH_p1/c?format=json", alice, "")
	if !strings.Contains(l.body, `"slo_etag"`) {
		t.Errorf("listing of an SLO lacks slo_etag: %s", l.body)
	}

	e.must(http.StatusNoContent, "DELETE", "/v1/AUTH_p1/c/big?multipart-manifest=delete", alice, "")
	for _, p := range []string{"/v1/AUTH_p1/c/big", "/v1/AUTH_p1/segs/1", "/v1/AUTH_p1/segs/2"} {
		e.must(http.StatusNotFound, "HEAD", p, alice, "")
	}
}

func TestSLOPlainDeleteKeepsSegments(t *testing.T) {
	e := newEnv(t)
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c", alice, "")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c/s", alice, "seg")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c/big?multipart-manifest=put", alice, `[{"path":"/c/s"}]`)
	e.must(http.StatusNoContent, "DELETE", "/v1/AUTH_p1/c/big", alice, "")
	e.must(http.StatusOK, "HEAD", "/v1/AUTH_p1/c/s", alice, "")
}

func TestAuth(t *testing.T) {
	e := newEnv(t)
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c", alice, "")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c/o", alice, "secret")
	tests := map[string]struct {
		method, path, token string
		status              int
	}{
		"no token":             {"GET", "/v1/AUTH_p1/c/o", "", http.StatusUnauthorized},
		"no token account":     {"GET", "/v1/AUTH_p1", "", http.StatusUnauthorized},
		"bad token":            {"GET", "/v1/AUTH_p1/c/o", "forged", http.StatusUnauthorized},
		"other project read":   {"GET", "/v1/AUTH_p1/c/o", "bob-tok", http.StatusForbidden},
		"other project list":   {"GET", "/v1/AUTH_p1/c", "bob-tok", http.StatusForbidden},
		"other project write":  {"PUT", "/v1/AUTH_p1/c/x", "bob-tok", http.StatusForbidden},
		"other project delete": {"DELETE", "/v1/AUTH_p1/c/o", "bob-tok", http.StatusForbidden},
		"reader get":           {"GET", "/v1/AUTH_p1/c/o", "reader-tok", http.StatusOK},
		"reader list":          {"GET", "/v1/AUTH_p1/c", "reader-tok", http.StatusOK},
		"reader put":           {"PUT", "/v1/AUTH_p1/c/x", "reader-tok", http.StatusForbidden},
		"reader post":          {"POST", "/v1/AUTH_p1/c/o", "reader-tok", http.StatusForbidden},
		"reader delete":        {"DELETE", "/v1/AUTH_p1/c/o", "reader-tok", http.StatusForbidden},
		"reader copy":          {"COPY", "/v1/AUTH_p1/c/o", "reader-tok", http.StatusForbidden},
		"admin get":            {"GET", "/v1/AUTH_p1/c/o", "admin-tok", http.StatusOK},
		"admin put":            {"PUT", "/v1/AUTH_p1/c/admin", "admin-tok", http.StatusCreated},
		"no token private":     {"HEAD", "/v1/AUTH_p1/c/o", "", http.StatusUnauthorized},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := e.with(t)
			body := ""
			if tc.method == "PUT" {
				body = "x"
			}
			r := e.must(tc.status, tc.method, tc.path, tc.token, body, "Destination", "c/copy")
			if tc.status == http.StatusUnauthorized && tc.token == "" && r.header.Get("Www-Authenticate") == "" {
				t.Errorf("401 without Www-Authenticate")
			}
		})
	}
	e.must(http.StatusNotFound, "HEAD", "/v1/AUTH_p1/c/x", alice, "")
	e.must(http.StatusNotFound, "HEAD", "/v1/AUTH_p1/c/copy", alice, "")
	e.must(http.StatusOK, "HEAD", "/v1/AUTH_p1/c/o", alice, "")
}

func TestPublicContainer(t *testing.T) {
	e := newEnv(t)
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/pub", alice, "", "X-Container-Read", ".r:*")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/pub/o", alice, "hello")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/priv", alice, "")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/priv/o", alice, "hello")

	if r := e.must(http.StatusOK, "GET", "/v1/AUTH_p1/pub/o", "", ""); r.body != "hello" {
		t.Errorf("anonymous GET = %q", r.body)
	}
	e.must(http.StatusOK, "GET", "/v1/AUTH_p1/pub/o", "bob-tok", "")
	e.must(http.StatusUnauthorized, "GET", "/v1/AUTH_p1/pub", "", "")
	e.must(http.StatusUnauthorized, "PUT", "/v1/AUTH_p1/pub/x", "", "x")
	e.must(http.StatusUnauthorized, "DELETE", "/v1/AUTH_p1/pub/o", "", "")
	e.must(http.StatusForbidden, "DELETE", "/v1/AUTH_p1/pub/o", "bob-tok", "")
	e.must(http.StatusUnauthorized, "GET", "/v1/AUTH_p1/priv/o", "", "")
	e.must(http.StatusUnauthorized, "GET", "/v1/AUTH_p1", "", "")

	e.must(http.StatusNoContent, "POST", "/v1/AUTH_p1/pub", alice, "", "X-Container-Read", ".r:*,.rlistings")
	if r := e.must(http.StatusOK, "GET", "/v1/AUTH_p1/pub", "", ""); r.body != "o\n" {
		t.Errorf("anonymous listing = %q", r.body)
	} else if r.header.Get("X-Container-Read") != "" {
		t.Errorf("anonymous listing shows the ACL %q", r.header.Get("X-Container-Read"))
	}
	e.must(http.StatusNoContent, "POST", "/v1/AUTH_p1/pub", alice, "", "X-Remove-Container-Read", "x")
	e.must(http.StatusUnauthorized, "GET", "/v1/AUTH_p1/pub/o", "", "")
}

func TestBadInput(t *testing.T) {
	e := newEnv(t)
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c", alice, "")
	many := []string{}
	for i := 0; i <= maxMetaCount; i++ {
		many = append(many, fmt.Sprintf("X-Object-Meta-K%d", i), "v")
	}
	bigMeta := []string{}
	for i := 0; i < 20; i++ {
		bigMeta = append(bigMeta, fmt.Sprintf("X-Object-Meta-K%d", i), strings.Repeat("v", 250))
	}
	tests := map[string]struct {
		method, path string
		hdr          []string
		status       int
	}{
		"meta name 128":      {"PUT", "/v1/AUTH_p1/c/o", []string{"X-Object-Meta-" + strings.Repeat("n", 128), "v"}, http.StatusCreated},
		"meta name 129":      {"PUT", "/v1/AUTH_p1/c/o", []string{"X-Object-Meta-" + strings.Repeat("n", 129), "v"}, http.StatusBadRequest},
		"meta value 256":     {"PUT", "/v1/AUTH_p1/c/o", []string{"X-Object-Meta-N", strings.Repeat("v", 256)}, http.StatusCreated},
		"meta value 257":     {"PUT", "/v1/AUTH_p1/c/o", []string{"X-Object-Meta-N", strings.Repeat("v", 257)}, http.StatusBadRequest},
		"91 meta items":      {"PUT", "/v1/AUTH_p1/c/o", many, http.StatusBadRequest},
		"meta over 4096":     {"PUT", "/v1/AUTH_p1/c/o", bigMeta, http.StatusBadRequest},
		"container meta":     {"PUT", "/v1/AUTH_p1/c2", []string{"X-Container-Meta-N", strings.Repeat("v", 257)}, http.StatusBadRequest},
		"post meta":          {"POST", "/v1/AUTH_p1/c", []string{"X-Container-Meta-" + strings.Repeat("n", 129), "v"}, http.StatusBadRequest},
		"container 256":      {"PUT", "/v1/AUTH_p1/" + strings.Repeat("c", 256), nil, http.StatusCreated},
		"container 257":      {"PUT", "/v1/AUTH_p1/" + strings.Repeat("c", 257), nil, http.StatusBadRequest},
		"empty container":    {"PUT", "/v1/AUTH_p1//o", nil, http.StatusBadRequest},
		"object 1024":        {"PUT", "/v1/AUTH_p1/c/" + strings.Repeat("o", 1024), nil, http.StatusCreated},
		"object 1025":        {"PUT", "/v1/AUTH_p1/c/" + strings.Repeat("o", 1025), nil, http.StatusBadRequest},
		"not an account":     {"GET", "/v1/p1", nil, http.StatusNotFound},
		"not v1":             {"GET", "/v2/AUTH_p1", nil, http.StatusNotFound},
		"account PUT":        {"PUT", "/v1/AUTH_p1", nil, http.StatusMethodNotAllowed},
		"object PATCH":       {"PATCH", "/v1/AUTH_p1/c/o", nil, http.StatusMethodNotAllowed},
		"copy no dest":       {"COPY", "/v1/AUTH_p1/c/o", nil, http.StatusPreconditionFailed},
		"post missing cont.": {"POST", "/v1/AUTH_p1/nope", nil, http.StatusNotFound},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := e.with(t)
			body := ""
			if tc.method == "PUT" && strings.Count(tc.path, "/") > 3 {
				body = "x"
			}
			e.must(tc.status, tc.method, tc.path, alice, body, tc.hdr...)
		})
	}
}

// raw sends a hand-written request on its own connection and returns the
// response status (0 if the server sent none). It waits for the server to
// close the connection, so the request is finished when it returns. With
// hangUp the client closes its side after the request, as a client that
// dies mid-upload does (the server then cancels the request's context).
func (e *env) raw(req string, hangUp bool) int {
	e.T.Helper()
	conn, err := net.Dial("tcp", e.Srv.Listener.Addr().String())
	if err != nil {
		e.T.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, req); err != nil {
		e.T.Fatal(err)
	}
	if hangUp {
		conn.(*net.TCPConn).CloseWrite()
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)
	status := 0
	if line, err := br.ReadString('\n'); err == nil {
		if f := strings.Fields(line); len(f) >= 2 {
			status, _ = strconv.Atoi(f[1])
		}
	}
	io.Copy(io.Discard, br)
	return status
}

func TestBodyLength(t *testing.T) {
	e := newEnv(t)
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c", alice, "")
	head := "PUT /v1/AUTH_p1/c/%s HTTP/1.1\r\nHost: x\r\nX-Auth-Token: alice-tok\r\nConnection: close\r\n%s\r\n%s"

	t.Run("no length", func(t *testing.T) {
		e := e.with(t)
		if st := e.raw(fmt.Sprintf(head, "nolen", "", ""), false); st != http.StatusLengthRequired {
			t.Errorf("status %d, want 411", st)
		}
		e.must(http.StatusNotFound, "HEAD", "/v1/AUTH_p1/c/nolen", alice, "")
	})
	t.Run("zero length", func(t *testing.T) {
		e := e.with(t)
		if st := e.raw(fmt.Sprintf(head, "empty", "Content-Length: 0\r\n", ""), false); st != http.StatusCreated {
			t.Errorf("status %d, want 201", st)
		}
		e.must(http.StatusOK, "HEAD", "/v1/AUTH_p1/c/empty", alice, "")
	})
	t.Run("chunked", func(t *testing.T) {
		e := e.with(t)
		if st := e.raw(fmt.Sprintf(head, "chunked", "Transfer-Encoding: chunked\r\n", "5\r\nhello\r\n0\r\n\r\n"), false); st != http.StatusCreated {
			t.Errorf("status %d, want 201", st)
		}
		if r := e.must(http.StatusOK, "GET", "/v1/AUTH_p1/c/chunked", alice, ""); r.body != "hello" {
			t.Errorf("chunked body = %q", r.body)
		}
	})
	t.Run("short body", func(t *testing.T) {
		e := e.with(t)
		st := e.raw(fmt.Sprintf(head, "short", "Content-Length: 100\r\n", strings.Repeat("x", 50)), true)
		if st == http.StatusCreated {
			t.Errorf("short body stored (201)")
		}
		e.must(http.StatusNotFound, "HEAD", "/v1/AUTH_p1/c/short", alice, "")
		c := e.must(http.StatusNoContent, "HEAD", "/v1/AUTH_p1/c", alice, "")
		if got := c.header.Get("X-Container-Object-Count"); got != "2" {
			t.Errorf("object count = %s, want 2 (empty, chunked)", got)
		}
	})
	t.Run("short body recorder", func(t *testing.T) {
		e := e.with(t)
		// A body that ends cleanly before its declared length.
		req := httptest.NewRequest("PUT", "/v1/AUTH_p1/c/short2", strings.NewReader("abc"))
		req.ContentLength = 10
		req.Header.Set("X-Auth-Token", alice)
		req.Header.Set("Content-Length", "10")
		w := httptest.NewRecorder()
		(&Handler{Store: e.Svc, Auth: principals}).ServeHTTP(w, req)
		if w.Code != 499 {
			t.Errorf("status %d, want 499", w.Code)
		}
		e.must(http.StatusNotFound, "HEAD", "/v1/AUTH_p1/c/short2", alice, "")
	})
}

func TestInfo(t *testing.T) {
	e := newEnv(t)
	r := e.must(http.StatusOK, "GET", "/info", "", "")
	var info struct {
		Swift struct {
			MaxObjectName int `json:"max_object_name_length"`
			MaxMetaCount  int `json:"max_meta_count"`
		} `json:"swift"`
		SLO  map[string]any `json:"slo"`
		Bulk struct {
			MaxDeletes int `json:"max_deletes_per_request"`
		} `json:"bulk_delete"`
	}
	if err := json.Unmarshal([]byte(r.body), &info); err != nil {
		t.Fatal(err)
	}
	if info.Swift.MaxObjectName != maxObjectName || info.Swift.MaxMetaCount != maxMetaCount || info.SLO == nil || info.Bulk.MaxDeletes != maxBulkDeletes {
		t.Errorf("info = %+v", info)
	}
	// Only what is built is advertised.
	var all map[string]any
	json.Unmarshal([]byte(r.body), &all)
	for k := range all {
		switch k {
		case "swift", "slo", "bulk_delete", "bulk_upload", "tempurl", "container_quotas", "formpost", "staticweb", "versioned_writes", "object_versioning", "crossdomain":
		default:
			t.Errorf("/info advertises %q, which is not built", k)
		}
	}
}

// A GET whose data cannot be reconstructed answers 503 before any header
// of the object is sent, never a 200 with a cut-off body.
func TestUnreadableObjectIs503(t *testing.T) {
	e := newEnv(t)
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c", alice, "")
	body := strings.Repeat("0123456789", 5000) // several stripes
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c/o", alice, body)
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c/empty", alice, "")
	o, err := e.Svc.Head(context.Background(), "p1", "c", "o")
	if err != nil {
		t.Fatal(err)
	}
	objecttest.LoseShards(t, e.Disks, o, o.Parts[0].Layout.M+1)
	r := e.must(http.StatusServiceUnavailable, "GET", "/v1/AUTH_p1/c/o", alice, "")
	if r.header.Get("Etag") != "" || r.header.Get("Last-Modified") != "" {
		t.Errorf("the error carries the object's headers: %v", r.header)
	}
	if strings.Contains(r.body, "0123456789") {
		t.Errorf("the error carries object bytes: %q", r.body)
	}
	e.must(http.StatusServiceUnavailable, "GET", "/v1/AUTH_p1/c/o", alice, "", "Range", "bytes=30000-30009")
	// Metadata is whole: HEAD still answers, and so does an empty object.
	e.must(http.StatusOK, "HEAD", "/v1/AUTH_p1/c/o", alice, "")
	if r := e.must(http.StatusOK, "GET", "/v1/AUTH_p1/c/empty", alice, ""); r.body != "" || r.header.Get("Content-Length") != "0" {
		t.Errorf("empty object: %q, Content-Length %q", r.body, r.header.Get("Content-Length"))
	}
}

func TestBulkDelete(t *testing.T) {
	e := newEnv(t)
	for _, c := range []string{"c", "full", "gone"} {
		e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/"+c, alice, "")
	}
	for _, o := range []string{"c/a", "c/with space", "full/keep"} {
		e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/"+strings.ReplaceAll(o, " ", "%20"), alice, "x")
	}
	body := "/c/a\nc/with%20space\n/c/missing\n/c\n/full\n/gone\n"
	r := e.must(http.StatusOK, "POST", "/v1/AUTH_p1?bulk-delete", alice, body, "Accept", "application/json", "Content-Type", "text/plain")
	var res struct {
		Deleted  int         `json:"Number Deleted"`
		NotFound int         `json:"Number Not Found"`
		Status   string      `json:"Response Status"`
		Errors   [][2]string `json:"Errors"`
	}
	if err := json.Unmarshal([]byte(r.body), &res); err != nil {
		t.Fatalf("%v: %s", err, r.body)
	}
	want := [][2]string{{"/full", "409 Conflict"}}
	if res.Deleted != 4 || res.NotFound != 1 || res.Status != "400 Bad Request" || fmt.Sprint(res.Errors) != fmt.Sprint(want) {
		t.Errorf("report %+v, want 4 deleted (c/a, c/with space, c, gone), 1 not found, /full in conflict", res)
	}
	e.must(http.StatusNotFound, "HEAD", "/v1/AUTH_p1/c", alice, "")
	e.must(http.StatusNotFound, "HEAD", "/v1/AUTH_p1/gone", alice, "")
	e.must(http.StatusOK, "HEAD", "/v1/AUTH_p1/full/keep", alice, "")

	// DELETE works too; without Accept the report is Swift's text.
	r = e.must(http.StatusOK, "DELETE", "/v1/AUTH_p1?bulk-delete", alice, "full/keep\nfull\n")
	wantText := "Number Deleted: 2\nNumber Not Found: 0\nResponse Body: \nResponse Status: 200 OK\nErrors:\n"
	if r.body != wantText {
		t.Errorf("text report %q, want %q", r.body, wantText)
	}
	r = e.must(http.StatusOK, "POST", "/v1/AUTH_p1?bulk-delete", alice, "\n", "Accept", "application/xml")
	if !strings.Contains(r.body, "<response_status>400 Bad Request</response_status>") || !strings.Contains(r.body, "<number_deleted>0</number_deleted>") {
		t.Errorf("empty list, XML report %s", r.body)
	}
	e.must(http.StatusForbidden, "POST", "/v1/AUTH_p1?bulk-delete", "reader-tok", "c\n")
	e.must(http.StatusUnauthorized, "POST", "/v1/AUTH_p1?bulk-delete", "", "c\n")
}

// signTempURL signs a temp URL as python-swiftclient does and returns its
// query string.
func signTempURL(newHash func() hash.Hash, b64 bool, key, method, path string, expires time.Time, extra ...string) string {
	body := fmt.Sprintf("%s\n%d\n%s", method, expires.Unix(), path)
	v := url.Values{}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
		if extra[i] == "temp_url_ip_range" {
			body = "ip=" + extra[i+1] + "\n" + body
		}
	}
	mac := hmac.New(newHash, []byte(key))
	mac.Write([]byte(body))
	sig := hex.EncodeToString(mac.Sum(nil))
	if b64 {
		name := map[int]string{sha1.Size: "sha1", sha256.Size: "sha256", sha512.Size: "sha512"}[mac.Size()]
		sig = name + ":" + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	}
	v.Set("temp_url_sig", sig)
	if !v.Has("temp_url_expires") {
		v.Set("temp_url_expires", strconv.FormatInt(expires.Unix(), 10))
	}
	return v.Encode()
}

func TestTempURL(t *testing.T) {
	e := newEnv(t)
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c", alice, "")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c/dir/o", alice, "data", "X-Object-Meta-Color", "red", "X-Object-Meta-Public-Tag", "t")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c/other", alice, "other")
	obj := "/v1/AUTH_p1/c/dir/o"
	soon := time.Now().Add(time.Hour)
	get := signTempURL(sha256.New, false, "akey", "GET", obj, soon)

	// No key set yet: nothing validates.
	e.must(http.StatusUnauthorized, "GET", obj+"?"+get, "", "")
	e.must(http.StatusNoContent, "POST", "/v1/AUTH_p1", alice, "", "X-Account-Meta-Temp-URL-Key", "akey")
	e.must(http.StatusNoContent, "POST", "/v1/AUTH_p1/c", alice, "", "X-Container-Meta-Temp-URL-Key", "ckey")

	r := e.must(http.StatusOK, "GET", obj+"?"+get, "", "")
	if r.body != "data" || r.header.Get("Content-Disposition") != `attachment; filename="o"; filename*=UTF-8''o` {
		t.Errorf("GET: %q, Content-Disposition %q", r.body, r.header.Get("Content-Disposition"))
	}
	if r.header.Get("X-Object-Meta-Color") != "" || r.header.Get("X-Object-Meta-Public-Tag") != "t" {
		t.Errorf("metadata through a temp URL: %v", r.header)
	}
	r = e.must(http.StatusOK, "GET", obj+"?"+get+"&inline", "", "")
	if r.header.Get("Content-Disposition") != "inline" {
		t.Errorf("inline: Content-Disposition %q", r.header.Get("Content-Disposition"))
	}
	e.must(http.StatusOK, "HEAD", obj+"?"+get, "", "") // a GET signature covers HEAD

	valid := map[string]string{
		"sha1 hex":          signTempURL(sha1.New, false, "akey", "GET", obj, soon),
		"sha512 base64":     signTempURL(sha512.New, true, "akey", "GET", obj, soon),
		"container key":     signTempURL(sha256.New, false, "ckey", "GET", obj, soon),
		"ISO 8601 expiry":   signTempURL(sha256.New, false, "akey", "GET", obj, soon, "temp_url_expires", soon.UTC().Format("2006-01-02T15:04:05Z")),
		"prefix":            signTempURL(sha256.New, false, "akey", "GET", "prefix:/v1/AUTH_p1/c/dir/", soon, "temp_url_prefix", "dir/"),
		"loopback IP range": signTempURL(sha256.New, false, "akey", "GET", obj, soon, "temp_url_ip_range", "127.0.0.0/8"),
	}
	for name, q := range valid {
		t.Run("valid "+name, func(t *testing.T) {
			if r := e.with(t).must(http.StatusOK, "GET", obj+"?"+q, "", ""); r.body != "data" {
				t.Errorf("body %q", r.body)
			}
		})
	}
	invalid := map[string]struct{ path, query string }{
		"expired":           {obj, signTempURL(sha256.New, false, "akey", "GET", obj, time.Now().Add(-time.Second))},
		"wrong key":         {obj, signTempURL(sha256.New, false, "nope", "GET", obj, soon)},
		"another object":    {"/v1/AUTH_p1/c/other", get},
		"signed for PUT":    {obj, signTempURL(sha256.New, false, "akey", "PUT", obj, soon)},
		"outside prefix":    {"/v1/AUTH_p1/c/other", valid["prefix"]},
		"other IP range":    {obj, signTempURL(sha256.New, false, "akey", "GET", obj, soon, "temp_url_ip_range", "10.0.0.0/8")},
		"bad expiry":        {obj, strings.Replace(get, "temp_url_expires=", "temp_url_expires=x", 1)},
		"bad signature":     {obj, "temp_url_sig=zz&temp_url_expires=" + strconv.FormatInt(soon.Unix(), 10)},
		"container listing": {"/v1/AUTH_p1/c", signTempURL(sha256.New, false, "akey", "GET", "/v1/AUTH_p1/c", soon)},
	}
	for name, tc := range invalid {
		t.Run("invalid "+name, func(t *testing.T) {
			e.with(t).must(http.StatusUnauthorized, "GET", tc.path+"?"+tc.query, "", "")
		})
	}

	// Writes signed for them.
	put := signTempURL(sha256.New, false, "akey", "PUT", "/v1/AUTH_p1/c/up", soon)
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c/up?"+put, "", "uploaded")
	if r := e.must(http.StatusOK, "GET", "/v1/AUTH_p1/c/up", alice, ""); r.body != "uploaded" {
		t.Errorf("PUT through a temp URL stored %q", r.body)
	}
	e.must(http.StatusForbidden, "PUT", "/v1/AUTH_p1/c/up?"+put, "", "", "X-Copy-From", "c/other")
	del := signTempURL(sha256.New, false, "akey", "DELETE", "/v1/AUTH_p1/c/up", soon)
	e.must(http.StatusNoContent, "DELETE", "/v1/AUTH_p1/c/up?"+del, "", "")

	// With a token too, the temp URL decides (Swift's tempurl middleware
	// runs ahead of auth): an expired one is refused, a valid one is
	// answered as a temp URL.
	e.must(http.StatusUnauthorized, "GET", obj+"?"+invalid["expired"].query, alice, "")
	if r := e.must(http.StatusOK, "GET", obj+"?"+get+"&inline", alice, ""); r.header.Get("Content-Disposition") != "inline" {
		t.Errorf("inline with a token: Content-Disposition %q", r.header.Get("Content-Disposition"))
	}

	// The keys are shown only to those who may write.
	if r := e.must(http.StatusNoContent, "HEAD", "/v1/AUTH_p1", alice, ""); r.header.Get("X-Account-Meta-Temp-Url-Key") != "akey" {
		t.Errorf("owner does not see the account key: %v", r.header)
	}
	for _, p := range []string{"/v1/AUTH_p1", "/v1/AUTH_p1/c"} {
		r := e.must(http.StatusNoContent, "HEAD", p, "reader-tok", "")
		for k := range r.header {
			if strings.Contains(strings.ToLower(k), "temp-url-key") {
				t.Errorf("a reader sees %s on %s", k, p)
			}
		}
	}

	// Signed over the path as the client requests it, under rackd's mount.
	mounted := httptest.NewServer(http.StripPrefix("/object", &Handler{Store: e.Svc, Auth: principals}))
	defer mounted.Close()
	q := signTempURL(sha256.New, false, "akey", "GET", "/object"+obj, soon)
	res, err := http.Get(mounted.URL + "/object" + obj + "?" + q)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("temp URL signed over the mounted path: %d", res.StatusCode)
	}
}

// The healthcheck answers without a token, as Swift's middleware does.
func TestHealthcheck(t *testing.T) {
	e := newEnv(t)
	r := e.must(http.StatusOK, "GET", "/healthcheck", "", "")
	if r.body != "OK" || r.header.Get("Content-Type") != "text/plain" || r.header.Get("X-Trans-Id") == "" {
		t.Errorf("healthcheck: %q %v", r.body, r.header)
	}
	e.must(http.StatusOK, "HEAD", "/healthcheck", "", "")
	e.must(http.StatusMethodNotAllowed, "POST", "/healthcheck", "", "")
}

// Container quotas refuse a write past the bytes or the object count
// with 413 and store nothing; quota values must be whole numbers.
func TestContainerQuotas(t *testing.T) {
	e := newEnv(t)
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/q", alice, "", "X-Container-Meta-Quota-Bytes", "10", "X-Container-Meta-Quota-Count", "3")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/src", alice, "")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/src/big", alice, "0123456789ab")
	usage := func() (string, string) {
		r := e.must(http.StatusNoContent, "HEAD", "/v1/AUTH_p1/q", alice, "")
		return r.header.Get("X-Container-Bytes-Used"), r.header.Get("X-Container-Object-Count")
	}
	e.must(http.StatusRequestEntityTooLarge, "PUT", "/v1/AUTH_p1/q/o1", alice, "0123456789a")
	if b, n := usage(); b != "0" || n != "0" {
		t.Fatalf("after a refused PUT: %s bytes, %s objects", b, n)
	}
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/q/o1", alice, "0123456789")
	e.must(http.StatusRequestEntityTooLarge, "PUT", "/v1/AUTH_p1/q/o2", alice, "x")
	e.must(http.StatusRequestEntityTooLarge, "PUT", "/v1/AUTH_p1/q/big", alice, "", "X-Copy-From", "src/big")
	e.must(http.StatusRequestEntityTooLarge, "COPY", "/v1/AUTH_p1/src/big", alice, "", "Destination", "q/big")
	// The bytes quota lifted, the count still holds.
	e.must(http.StatusNoContent, "POST", "/v1/AUTH_p1/q", alice, "", "X-Remove-Container-Meta-Quota-Bytes", "x")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/q/o2", alice, "")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/q/o3", alice, "")
	e.must(http.StatusRequestEntityTooLarge, "PUT", "/v1/AUTH_p1/q/o4", alice, "")
	if b, n := usage(); b != "10" || n != "3" {
		t.Fatalf("after the count was reached: %s bytes, %s objects", b, n)
	}
	for _, bad := range [][2]string{{"X-Container-Meta-Quota-Bytes", "ten"}, {"X-Container-Meta-Quota-Count", "-1"}} {
		r := e.must(http.StatusBadRequest, "POST", "/v1/AUTH_p1/q", alice, "", bad[0], bad[1])
		if !strings.Contains(r.body, "quota") {
			t.Errorf("%s: %s: %q", bad[0], bad[1], r.body)
		}
	}
}

// Headers of Swift features not built are refused with 501, not stored
// and ignored; clearing one (an empty value) is harmless.
func TestUnbuiltFeaturesRefused(t *testing.T) {
	e := newEnv(t)
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c", alice, "")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c/plain", alice, "", "X-Symlink-Target", "")
	r := e.must(http.StatusNotImplemented, "PUT", "/v1/AUTH_p1/c/link", alice, "", "X-Symlink-Target", "c/target")
	if !strings.Contains(r.body, "symlinks") {
		t.Errorf("symlink refusal: %q", r.body)
	}
	e.must(http.StatusNotFound, "HEAD", "/v1/AUTH_p1/c/link", alice, "")
}

// A PUT without a Content-Type, or with X-Detect-Content-Type: true, has
// its type guessed from the name's extension, as Swift's proxy does
// (Terraform's object resource relies on it).
func TestObjectPutContentTypeGuess(t *testing.T) {
	tests := map[string]struct {
		name string
		hdr  []string
		want string
	}{
		"sent":               {"o.txt", []string{"Content-Type", "image/png"}, "image/png"},
		"none, by extension": {"dir/o.txt", nil, "text/plain"},
		"none, unknown":      {"o.zzunknown", nil, "application/octet-stream"},
		"none, no extension": {"o", nil, "application/octet-stream"},
		"detect overrides":   {"o.json", []string{"Content-Type", "text/plain", "X-Detect-Content-Type", "true"}, "application/json"},
		"detect false":       {"o.json", []string{"Content-Type", "text/plain", "X-Detect-Content-Type", "false"}, "text/plain"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c", alice, "")
			e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c/"+tc.name, alice, "x", tc.hdr...)
			if got := e.must(http.StatusOK, "HEAD", "/v1/AUTH_p1/c/"+tc.name, alice, "").header.Get("Content-Type"); got != tc.want {
				t.Errorf("Content-Type = %q, want %q", got, tc.want)
			}
		})
	}
}

// A container PUT naming a storage policy other than the one /info lists
// is a 400, as Swift's; ours, in any case, is taken.
func TestContainerStoragePolicy(t *testing.T) {
	e := newEnv(t)
	r := e.do("PUT", "/v1/AUTH_p1/c", alice, "", "X-Storage-Policy", "Policy-0")
	if r.status != http.StatusBadRequest || !strings.Contains(r.body, "X-Storage-Policy") {
		t.Fatalf("unknown policy: %d %s", r.status, r.body)
	}
	e.must(http.StatusNotFound, "HEAD", "/v1/AUTH_p1/c", alice, "")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c", alice, "", "X-Storage-Policy", "Erasure-Coded")
	if got := e.must(http.StatusNoContent, "HEAD", "/v1/AUTH_p1/c", alice, "").header.Get("X-Storage-Policy"); got != "erasure-coded" {
		t.Errorf("policy %q", got)
	}
}

// A POST that both removes and sets a metadata key keeps the value set,
// as Swift's proxy does (Terraform's account resource sends both when a
// key's case changes); the other removals still apply.
func TestMetaSetWinsOverRemove(t *testing.T) {
	e := newEnv(t)
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c", alice, "")
	for _, path := range []string{"/v1/AUTH_p1", "/v1/AUTH_p1/c"} {
		kind := "Account"
		if path != "/v1/AUTH_p1" {
			kind = "Container"
		}
		e.must(http.StatusNoContent, "POST", path, alice, "", "X-"+kind+"-Meta-Test", "true", "X-"+kind+"-Meta-Uppertest", "true")
		e.must(http.StatusNoContent, "POST", path, alice, "", "X-"+kind+"-Meta-test", "true",
			"X-Remove-"+kind+"-Meta-Test", "x", "X-Remove-"+kind+"-Meta-Uppertest", "x")
		h := e.must(http.StatusNoContent, "HEAD", path, alice, "").header
		if got := h.Get("X-" + kind + "-Meta-Test"); got != "true" {
			t.Errorf("%s: Test = %q, want true (set wins over remove)", path, got)
		}
		if got, ok := h["X-"+kind+"-Meta-Uppertest"]; ok {
			t.Errorf("%s: Uppertest = %q, want removed", path, got)
		}
	}
}

// noLeader is an authenticator on a node that cannot reach the leader to
// confirm its state is current.
type noLeader struct{}

func (noLeader) Validate(context.Context, string) (*api.Principal, error) {
	return nil, fmt.Errorf("read barrier: %w", store.ErrNoLeader)
}

// A token this node cannot check for want of a leader is not refused as
// invalid (401, which makes clients drop a good token): the request is
// answered 503, to be retried.
func TestTokenUncheckableWithoutLeaderIs503(t *testing.T) {
	e := newEnv(t)
	req := httptest.NewRequest("PUT", "/v1/AUTH_p1/c/o", strings.NewReader("abc"))
	req.Header.Set("X-Auth-Token", alice)
	w := httptest.NewRecorder()
	(&Handler{Store: e.Svc, Auth: noLeader{}}).ServeHTTP(w, req)
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503: %s", w.Code, w.Body)
	}
	e.must(http.StatusNotFound, "HEAD", "/v1/AUTH_p1/c/o", alice, "")
}
