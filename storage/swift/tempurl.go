package swift

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Temporary URLs (Swift's tempurl middleware): anyone holding a URL signed
// with one of the account's or container's Temp-URL keys may make the one
// request it was signed for until it expires, without a token. The
// signature is an HMAC of "METHOD\nEXPIRES\nPATH" (with "ip=RANGE\n" first
// when the URL is bound to addresses, and PATH "prefix:/v1/..." for a URL
// valid for every object under a prefix).

// tempURLMethods are the methods a temporary URL can be signed for.
var tempURLMethods = []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodDelete}

// tempURLKeys are the metadata names (lower-case, as stored) of the keys.
var tempURLKeys = []string{"temp-url-key", "temp-url-key-2"}

// isTempURLKey reports whether a metadata name holds a temp URL key, which
// only those who may write see: whoever has the key can sign writes.
func isTempURLKey(name string) bool {
	for _, k := range tempURLKeys {
		if strings.EqualFold(name, k) {
			return true
		}
	}
	return false
}

// tempURL is a request's temp URL parameters.
type tempURL struct {
	sig     string
	expires time.Time
	prefix  string // temp_url_prefix, "" for a single object
	ipRange string // temp_url_ip_range, "" for any address
}

// tempURLOf reads the temp URL parameters; ok is false when the request
// has none.
func tempURLOf(r *http.Request) (t tempURL, ok bool, err error) {
	q := r.URL.Query()
	if !q.Has("temp_url_sig") && !q.Has("temp_url_expires") {
		return t, false, nil
	}
	t.sig, t.prefix, t.ipRange = q.Get("temp_url_sig"), q.Get("temp_url_prefix"), q.Get("temp_url_ip_range")
	if t.sig == "" {
		return t, true, fmt.Errorf("temp_url_sig is missing")
	}
	exp := q.Get("temp_url_expires")
	if n, perr := strconv.ParseInt(exp, 10, 64); perr == nil {
		t.expires = time.Unix(n, 0)
	} else if ts, perr := time.Parse("2006-01-02T15:04:05Z", exp); perr == nil {
		t.expires = ts
	} else {
		return t, true, fmt.Errorf("temp_url_expires %q is neither a Unix time nor an ISO 8601 UTC time", exp)
	}
	return t, true, nil
}

// digest splits a signature into its hash and raw bytes: hex for SHA-1,
// SHA-256 or SHA-512 by length, or "<name>:<base64>".
func (t tempURL) digest() (func() hash.Hash, []byte, bool) {
	byName := map[string]func() hash.Hash{"sha1": sha1.New, "sha256": sha256.New, "sha512": sha512.New}
	if name, b64, ok := strings.Cut(t.sig, ":"); ok {
		h := byName[name]
		raw, err := base64.URLEncoding.DecodeString(b64 + strings.Repeat("=", (4-len(b64)%4)%4))
		if err != nil {
			raw, err = base64.StdEncoding.DecodeString(b64)
		}
		return h, raw, h != nil && err == nil
	}
	raw, err := hex.DecodeString(t.sig)
	if err != nil {
		return nil, nil, false
	}
	switch len(raw) {
	case sha1.Size:
		return sha1.New, raw, true
	case sha256.Size:
		return sha256.New, raw, true
	case sha512.Size:
		return sha512.New, raw, true
	}
	return nil, nil, false
}

// authorizeTempURL lets a tokenless request through when its temp URL is
// valid for it; otherwise it answers 401 as Swift does.
func (q *request) authorizeTempURL(t tempURL, parseErr error) bool {
	deny := func() bool {
		q.w.Header().Set("Www-Authenticate", `Swift realm="AUTH_`+q.project+`"`)
		fail(q.w, q.r, http.StatusUnauthorized, "Unauthorized: Temp URL invalid")
		return false
	}
	if parseErr != nil || !slices.Contains(tempURLMethods, q.r.Method) || q.name == "" || !q.h.now().Before(t.expires) {
		return deny()
	}
	if t.prefix != "" && !strings.HasPrefix(q.name, t.prefix) {
		return deny()
	}
	if t.ipRange != "" && !remoteIn(q.r.RemoteAddr, t.ipRange) {
		return deny()
	}
	newHash, sig, ok := t.digest()
	if !ok {
		return deny()
	}
	keys := q.tempURLKeys()
	if len(keys) == 0 {
		return deny()
	}
	// A HEAD may use a URL signed for GET, HEAD or PUT, as in Swift.
	methods := []string{q.r.Method}
	if q.r.Method == http.MethodHead {
		methods = []string{http.MethodHead, http.MethodGet, http.MethodPut}
	}
	for _, p := range q.signedPaths(t) {
		for _, m := range methods {
			// An ISO 8601 expiry is signed as its Unix time.
			body := m + "\n" + strconv.FormatInt(t.expires.Unix(), 10) + "\n" + p
			if t.ipRange != "" {
				body = "ip=" + t.ipRange + "\n" + body
			}
			for _, key := range keys {
				mac := hmac.New(newHash, []byte(key))
				mac.Write([]byte(body))
				if hmac.Equal(mac.Sum(nil), sig) {
					q.w = &tempURLWriter{ResponseWriter: q.w, q: q}
					return true
				}
			}
		}
	}
	return deny()
}

// signedPaths are the paths a client may have signed: the Swift path
// ("/v1/AUTH_…/c/o", as Swift itself serves it) and the path as requested
// (under the prefix rackd mounts Swift at, as a client that signs its
// endpoint's path has it).
func (q *request) signedPaths(t tempURL) []string {
	var paths []string
	add := func(p string) {
		if t.prefix != "" {
			// The object part of the path is replaced by the prefix.
			p = "prefix:" + strings.TrimSuffix(p, q.name) + t.prefix
		}
		for _, have := range paths {
			if have == p {
				return
			}
		}
		paths = append(paths, p)
	}
	add(q.r.URL.Path)
	if u, err := url.ParseRequestURI(q.r.RequestURI); err == nil && strings.HasSuffix(u.Path, q.r.URL.Path) {
		add(u.Path)
	}
	return paths
}

// tempURLKeys are the account's and the container's keys.
func (q *request) tempURLKeys() []string {
	var keys []string
	if a, err := q.h.Store.Account(q.r.Context(), q.project); err == nil {
		for _, k := range tempURLKeys {
			if v := a.Meta[k]; v != "" {
				keys = append(keys, v)
			}
		}
	}
	if c, err := q.h.Store.Container(q.r.Context(), q.project, q.container); err == nil {
		for _, k := range tempURLKeys {
			if v := c.Meta[k]; v != "" {
				keys = append(keys, v)
			}
		}
	}
	return keys
}

// remoteIn reports whether the client address is in an IP or CIDR range.
func remoteIn(remote, ipRange string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	if p, err := netip.ParsePrefix(ipRange); err == nil {
		return p.Contains(addr.Unmap())
	}
	want, err := netip.ParseAddr(ipRange)
	return err == nil && want == addr.Unmap()
}

// tempURLResponse adjusts a response served through a temp URL as Swift
// does: user metadata other than X-Object-Meta-Public-* is not shown, and
// a GET is a download named after the object unless ?inline or ?filename
// say otherwise.
func (q *request) tempURLResponse() {
	h := q.w.Header()
	for k := range h {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "x-object-meta-") && !strings.HasPrefix(lk, "x-object-meta-public-") {
			delete(h, k)
		}
	}
	if q.r.Method != http.MethodGet {
		return
	}
	v := q.r.URL.Query()
	name := v.Get("filename")
	switch {
	case v.Has("inline") && name != "":
		h.Set("Content-Disposition", dispositionWithName("inline", name))
	case v.Has("inline"):
		h.Set("Content-Disposition", "inline")
	case name != "":
		h.Set("Content-Disposition", dispositionWithName("attachment", name))
	case h.Get("Content-Disposition") == "":
		h.Set("Content-Disposition", dispositionWithName("attachment", path.Base(q.name)))
	}
}

// tempURLWriter applies tempURLResponse just before the status is sent.
type tempURLWriter struct {
	http.ResponseWriter
	q    *request
	sent bool
}

func (w *tempURLWriter) WriteHeader(status int) {
	if !w.sent {
		w.sent = true
		if status < 300 {
			w.q.tempURLResponse()
		}
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *tempURLWriter) Write(b []byte) (int, error) {
	if !w.sent {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *tempURLWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func dispositionWithName(kind, name string) string {
	return fmt.Sprintf(`%s; filename="%s"; filename*=UTF-8''%s`, kind, strings.ReplaceAll(name, `"`, `\"`), url.PathEscape(name))
}
