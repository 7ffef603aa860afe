package swift

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// form is a form upload: its signed fields and its files, in order.
type form struct {
	path, redirect    string
	maxSize, maxCount int64
	expires           time.Time
	key               string
	newHash           func() hash.Hash
	b64               bool
	sig               string      // set: sent instead of the computed one
	extra             [][2]string // unsigned fields, sent before the files
	files             [][2]string
}

// sign signs the form as Swift's documentation (and tempest) do.
func (f form) sign() string {
	if f.sig != "" {
		return f.sig
	}
	body := fmt.Sprintf("%s\n%s\n%d\n%d\n%d", f.path, f.redirect, f.maxSize, f.maxCount, f.expires.Unix())
	newHash := f.newHash
	if newHash == nil {
		newHash = sha1.New
	}
	mac := hmac.New(newHash, []byte(f.key))
	mac.Write([]byte(body))
	if f.b64 {
		return "sha256:" + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	}
	return hex.EncodeToString(mac.Sum(nil))
}

// post sends the form without a token (or with one) and does not follow
// a redirect.
func (e *env) post(f form, token string) response {
	e.T.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, kv := range [][2]string{
		{"redirect", f.redirect}, {"max_file_size", strconv.FormatInt(f.maxSize, 10)},
		{"max_file_count", strconv.FormatInt(f.maxCount, 10)}, {"expires", strconv.FormatInt(f.expires.Unix(), 10)},
		{"signature", f.sign()},
	} {
		mw.WriteField(kv[0], kv[1])
	}
	for _, kv := range f.extra {
		mw.WriteField(kv[0], kv[1])
	}
	for i, file := range f.files {
		w, _ := mw.CreateFormFile("file"+strconv.Itoa(i), file[0])
		io.WriteString(w, file[1])
	}
	mw.Close()
	req, err := http.NewRequest("POST", e.Srv.URL+f.path, &b)
	if err != nil {
		e.T.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	c := *e.Srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := c.Do(req)
	if err != nil {
		e.T.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: string(body)}
}

func TestFormPost(t *testing.T) {
	e := newEnv(t)
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c", alice, "")
	soon := time.Now().Add(time.Hour)
	ok := form{path: "/v1/AUTH_p1/c/up-", maxSize: 100, maxCount: 3, expires: soon, key: "akey",
		files: [][2]string{{"a.txt", "alpha"}, {"b.txt", "bravo"}}}

	// No key set: no signature is valid.
	if r := e.post(ok, ""); r.status != http.StatusUnauthorized || !strings.Contains(r.body, "FormPost: Invalid Signature") {
		t.Fatalf("without a key: %d %q", r.status, r.body)
	}
	e.must(http.StatusNotFound, "HEAD", "/v1/AUTH_p1/c/up-a.txt", alice, "")
	e.must(http.StatusNoContent, "POST", "/v1/AUTH_p1", alice, "", "X-Account-Meta-Temp-URL-Key", "akey")
	e.must(http.StatusNoContent, "POST", "/v1/AUTH_p1/c", alice, "", "X-Container-Meta-Temp-URL-Key", "ckey")

	r := e.post(ok, "")
	if r.status != http.StatusCreated || r.body != "201 Created" {
		t.Fatalf("form: %d %q", r.status, r.body)
	}
	for name, want := range map[string]string{"up-a.txt": "alpha", "up-b.txt": "bravo"} {
		if got := e.must(http.StatusOK, "GET", "/v1/AUTH_p1/c/"+name, alice, "").body; got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}

	// A form for the container itself stores the bare file names; the
	// container's key in SHA-256 base64 signs it too.
	whole := form{path: "/v1/AUTH_p1/c", maxSize: 100, maxCount: 1, expires: soon, key: "ckey", newHash: sha256.New, b64: true,
		files: [][2]string{{"top", "t"}}}
	e.must(http.StatusUnauthorized, "POST", "/v1/AUTH_p1/c", "", "") // not a form: an anonymous POST is refused
	if r := e.post(whole, ""); r.status != http.StatusCreated {
		t.Fatalf("container form: %d %q", r.status, r.body)
	}
	e.must(http.StatusOK, "GET", "/v1/AUTH_p1/c/top", alice, "")

	// Redirects carry the outcome.
	red := ok
	red.redirect, red.files = "https://example.com/done?x=1", [][2]string{{"r", "r"}}
	r = e.post(red, "")
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "https://example.com/done?x=1&status=201&message=" {
		t.Fatalf("redirect: %d %q", r.status, r.header.Get("Location"))
	}

	cases := map[string]struct {
		f      form
		status int
		body   string
		absent string
	}{
		"expired":           {form{path: ok.path, maxSize: 100, maxCount: 3, expires: time.Now().Add(-time.Second), key: "akey", files: [][2]string{{"x1", "x"}}}, 401, "FormPost: Form Expired", "up-x1"},
		"wrong key":         {form{path: ok.path, maxSize: 100, maxCount: 3, expires: soon, key: "nope", files: [][2]string{{"x2", "x"}}}, 401, "FormPost: Invalid Signature", "up-x2"},
		"other path signed": {form{path: ok.path, maxSize: 100, maxCount: 3, expires: soon, key: "akey", sig: form{path: "/v1/AUTH_p1/c/elsewhere-", maxSize: 100, maxCount: 3, expires: soon, key: "akey"}.sign(), files: [][2]string{{"x3", "x"}}}, 401, "FormPost: Invalid Signature", "up-x3"},
		"too many files":    {form{path: ok.path, maxSize: 100, maxCount: 1, expires: soon, key: "akey", files: [][2]string{{"f1", "x"}, {"x4", "x"}}}, 400, "400 Bad Request\r\nFormPost: Max File Count Exceeded", "up-x4"},
		"file too large":    {form{path: ok.path, maxSize: 4, expires: soon, maxCount: 3, key: "akey", files: [][2]string{{"x5", "12345"}}}, 400, "FormPost: max_file_size exceeded", "up-x5"},
		"no files":          {form{path: ok.path, maxSize: 4, expires: soon, maxCount: 3, key: "akey"}, 400, "400 Bad Request\r\nFormPost: No Files To Process", ""},
		"bad object name":   {form{path: ok.path, maxSize: 4, expires: soon, maxCount: 3, key: "akey", files: [][2]string{{strings.Repeat("n", maxObjectName), "x"}}}, 400, "400 Bad Request", ""},
	}
	for name, c := range cases {
		r := e.post(c.f, "")
		if r.status != c.status || !strings.Contains(r.body, c.body) {
			t.Errorf("%s: %d %q, want %d %q", name, r.status, r.body, c.status, c.body)
		}
		if c.absent != "" {
			e.must(http.StatusNotFound, "HEAD", "/v1/AUTH_p1/c/"+c.absent, alice, "")
		}
	}
	// A file of exactly max_file_size fits.
	exact := form{path: ok.path, maxSize: 5, maxCount: 1, expires: soon, key: "akey", files: [][2]string{{"five", "12345"}}}
	if r := e.post(exact, ""); r.status != http.StatusCreated {
		t.Errorf("a file of max_file_size: %d %q", r.status, r.body)
	}

	// A token does not replace the signature, nor does another
	// project's token spoil a valid one.
	bad := ok
	bad.key = "nope"
	if r := e.post(bad, alice); r.status != http.StatusUnauthorized {
		t.Errorf("bad signature with a token: %d %q", r.status, r.body)
	}
	if r := e.post(whole, "bob-tok"); r.status != http.StatusCreated {
		t.Errorf("valid form with another project's token: %d %q", r.status, r.body)
	}

	// Container quotas hold.
	e.must(http.StatusNoContent, "POST", "/v1/AUTH_p1/c", alice, "", "X-Container-Meta-Quota-Count", "1")
	if r := e.post(form{path: ok.path, maxSize: 100, maxCount: 1, expires: soon, key: "akey", files: [][2]string{{"q", "x"}}}, ""); r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("over quota: %d %q", r.status, r.body)
	}
	e.must(http.StatusNotFound, "HEAD", "/v1/AUTH_p1/c/up-q", alice, "")
}

// A form's x_delete_after / x_delete_at set its objects' delete time,
// checked as on a PUT; a value that is not a number is refused.
func TestFormPostDeleteTime(t *testing.T) {
	e := newEnv(t)
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c", alice, "")
	e.must(http.StatusNoContent, "POST", "/v1/AUTH_p1", alice, "", "X-Account-Meta-Temp-URL-Key", "akey")
	f := form{path: "/v1/AUTH_p1/c/", maxSize: 100, maxCount: 1, expires: time.Now().Add(time.Hour), key: "akey",
		extra: [][2]string{{"x_delete_after", "600"}}, files: [][2]string{{"soon", "s"}}}
	if r := e.post(f, ""); r.status != http.StatusCreated {
		t.Fatalf("form with x_delete_after: %d %q", r.status, r.body)
	}
	h := e.must(http.StatusOK, "HEAD", "/v1/AUTH_p1/c/soon", alice, "")
	if at, _ := strconv.ParseInt(h.header.Get("X-Delete-At"), 10, 64); at < time.Now().Unix()+590 || at > time.Now().Unix()+610 {
		t.Fatalf("X-Delete-At %q, want about now+600", h.header.Get("X-Delete-At"))
	}
	for _, c := range []struct{ field, value, body string }{
		{"x_delete_at", "tomorrow", "FormPost: x_delete_at not an integer: Unix timestamp required."},
		{"x_delete_after", "1.5", "FormPost: x_delete_after not an integer: Number of seconds required."},
		{"x_delete_at", "1000000000", "X-Delete-At in past"},
	} {
		f.extra, f.files = [][2]string{{c.field, c.value}}, [][2]string{{"bad-" + c.field, "b"}}
		if r := e.post(f, ""); r.status != http.StatusBadRequest || !strings.Contains(strings.ToLower(r.body), strings.ToLower(c.body)) {
			t.Errorf("%s=%s: %d %q, want 400 %q", c.field, c.value, r.status, r.body, c.body)
		}
		e.must(http.StatusNotFound, "HEAD", "/v1/AUTH_p1/c/bad-"+c.field, alice, "")
	}
}

// countingReader counts what is read of it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// TestFormPostRefusedReadsTheRest: a form refused as its first file
// begins (a bad signature) has the rest of its body read before the
// answer, so a client still sending it (curl) reads the 401 rather than
// a reset connection.
func TestFormPostRefusedReadsTheRest(t *testing.T) {
	e := newEnv(t)
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c", alice, "")
	e.must(http.StatusNoContent, "POST", "/v1/AUTH_p1", alice, "", "X-Account-Meta-Temp-URL-Key", "akey")
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	f := form{path: "/v1/AUTH_p1/c/up-", maxSize: 8 << 20, maxCount: 1, expires: time.Now().Add(time.Hour), key: "wrong"}
	for _, kv := range [][2]string{{"redirect", ""}, {"max_file_size", strconv.FormatInt(f.maxSize, 10)}, {"max_file_count", "1"},
		{"expires", strconv.FormatInt(f.expires.Unix(), 10)}, {"signature", f.sign()}} {
		mw.WriteField(kv[0], kv[1])
	}
	w, _ := mw.CreateFormFile("file", "big")
	w.Write(bytes.Repeat([]byte("x"), 4<<20))
	mw.Close()
	total := int64(b.Len())
	body := &countingReader{r: &b}
	req := httptest.NewRequest("POST", "/v1/AUTH_p1/c/up-", body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	rec := httptest.NewRecorder()
	(&Handler{Store: e.Svc, Auth: principals}).ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("bad signature: %d %s", rec.Code, rec.Body)
	}
	if body.n != total {
		t.Fatalf("the refused form's body was read to %d of %d bytes before the answer", body.n, total)
	}
}
