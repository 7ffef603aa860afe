package identity

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"hash"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// OAuth 1.0a request signatures (RFC 5849), as Keystone's OS-OAUTH1
// checks them with oauthlib: the client signs the method, the URL it
// asked for and every parameter (the Authorization header's oauth_*,
// the query, and a form body) with HMAC over the consumer's secret and
// the token's.

// oauthRequest is what an OAuth-signed request carries.
type oauthRequest struct {
	params    map[string]string // the oauth_* parameters but the signature
	signature string
	method    string
	base      string // the signature base string
}

// oauthMaxSkew is how far a request's oauth_timestamp may be from now.
const oauthMaxSkew = 10 * time.Minute

var errOAuthHeader = errors.New("the request carries no OAuth Authorization header")

// parseOAuth reads an OAuth-signed request: its parameters and the base
// string the signature must be over. The body is read only if it is a
// form (and put back).
func parseOAuth(r *http.Request) (*oauthRequest, error) {
	h := r.Header.Get("Authorization")
	if !strings.HasPrefix(strings.ToLower(h), "oauth ") {
		return nil, errOAuthHeader
	}
	o := &oauthRequest{params: map[string]string{}}
	var all [][2]string
	for _, part := range strings.Split(h[len("OAuth "):], ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, errors.New("malformed OAuth parameter " + strconv.Quote(k))
		}
		v = strings.Trim(v, `"`)
		dk, err1 := url.PathUnescape(k)
		dv, err2 := url.PathUnescape(v)
		if err1 != nil || err2 != nil {
			return nil, errors.New("malformed OAuth parameter " + strconv.Quote(k))
		}
		switch {
		case dk == "realm":
			continue
		case dk == "oauth_signature":
			o.signature = dv
			continue
		case strings.HasPrefix(dk, "oauth_"):
			o.params[dk] = dv
		}
		all = append(all, [2]string{dk, dv})
	}
	for k, vs := range r.URL.Query() {
		for _, v := range vs {
			all = append(all, [2]string{k, v})
		}
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/x-www-form-urlencoded" && r.Body != nil {
		raw, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(strings.NewReader(string(raw)))
		form, err := url.ParseQuery(string(raw))
		if err != nil {
			return nil, errors.New("malformed form body")
		}
		for k, vs := range form {
			for _, v := range vs {
				all = append(all, [2]string{k, v})
			}
		}
	}
	for i := range all {
		all[i] = [2]string{oauthEscape(all[i][0]), oauthEscape(all[i][1])}
	}
	sort.Slice(all, func(i, j int) bool { // by name, then by value
		if all[i][0] != all[j][0] {
			return all[i][0] < all[j][0]
		}
		return all[i][1] < all[j][1]
	})
	enc := make([]string, 0, len(all))
	for _, p := range all {
		enc = append(enc, p[0]+"="+p[1])
	}
	o.method = o.params["oauth_signature_method"]
	o.base = strings.ToUpper(r.Method) + "&" + oauthEscape(requestBaseURL(r)) + "&" + oauthEscape(strings.Join(enc, "&"))
	return o, nil
}

// requestBaseURL is the URL the client asked for, as RFC 5849 3.4.1.2
// normalizes it: lower-case scheme and host, no default port, no query.
// The path is the one on the wire (r.RequestURI), before any prefix was
// stripped on the way to this handler.
func requestBaseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := strings.ToLower(r.Header.Get("X-Forwarded-Proto")); p == "http" || p == "https" {
		scheme = p
	}
	host := strings.ToLower(r.Host)
	if h, port, ok := strings.Cut(host, ":"); ok && !strings.Contains(port, ":") && (scheme == "http" && port == "80" || scheme == "https" && port == "443") {
		host = h
	}
	path := r.RequestURI
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if u, err := url.ParseRequestURI(path); err == nil {
		path = u.EscapedPath()
	}
	return scheme + "://" + host + path
}

// oauthEscape is RFC 5849 3.6's percent-encoding: everything but the
// unreserved characters, with upper-case hex.
func oauthEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte("0123456789ABCDEF"[c>>4])
		b.WriteByte("0123456789ABCDEF"[c&15])
	}
	return b.String()
}

// verify checks the signature with the consumer's and the token's
// secrets, and the request's freshness. HMAC-SHA1 (oauthlib's default,
// which Keystone's clients use), HMAC-SHA256 and, as Keystone takes it,
// PLAINTEXT (the secrets themselves, for use over TLS) are taken.
func (o *oauthRequest) verify(consumerSecret, tokenSecret string, now time.Time) error {
	var h func() hash.Hash
	switch o.method {
	case "HMAC-SHA1":
		h = sha1.New
	case "HMAC-SHA256":
		h = sha256.New
	case "PLAINTEXT":
	default:
		return errors.New("oauth_signature_method must be HMAC-SHA1, HMAC-SHA256 or PLAINTEXT")
	}
	if v, ok := o.params["oauth_version"]; ok && v != "1.0" {
		return errors.New("oauth_version must be 1.0")
	}
	if o.params["oauth_nonce"] == "" {
		return errors.New("oauth_nonce is missing")
	}
	ts, err := strconv.ParseInt(o.params["oauth_timestamp"], 10, 64)
	if err != nil {
		return errors.New("oauth_timestamp is missing or not a number")
	}
	if d := now.Sub(time.Unix(ts, 0)); d > oauthMaxSkew || d < -oauthMaxSkew {
		return errors.New("oauth_timestamp is too far from the server's time")
	}
	key := oauthEscape(consumerSecret) + "&" + oauthEscape(tokenSecret)
	want := key // PLAINTEXT: the key itself (RFC 5849 3.4.4)
	if h != nil {
		mac := hmac.New(h, []byte(key))
		mac.Write([]byte(o.base))
		want = base64.StdEncoding.EncodeToString(mac.Sum(nil))
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(o.signature)) != 1 {
		return errors.New("the OAuth signature does not match")
	}
	return nil
}
