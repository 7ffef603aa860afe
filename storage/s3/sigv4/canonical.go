package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// param is one decoded query parameter, in the order it appeared.
type param struct {
	key, value string
}

// parseQuery splits a raw query into decoded parameters. '+' decodes to a
// space, as the AWS SDKs and S3 treat it. Empty pieces ("a&&b") are skipped.
// With strict set, an invalid %-escape is an error; otherwise the raw text is
// kept (Sign and Presign have no way to report errors).
func parseQuery(raw string, strict bool) ([]param, error) {
	var params []param
	for piece := range strings.SplitSeq(raw, "&") {
		if piece == "" {
			continue
		}
		k, v, _ := strings.Cut(piece, "=")
		dk, err := url.QueryUnescape(k)
		if err != nil {
			if strict {
				return nil, newError("InvalidArgument", "malformed query parameter name %q: %v", k, err)
			}
			dk = k
		}
		dv, err := url.QueryUnescape(v)
		if err != nil {
			if strict {
				return nil, newError("InvalidArgument", "malformed value for query parameter %q: %v", dk, err)
			}
			dv = v
		}
		params = append(params, param{dk, dv})
	}
	return params, nil
}

// canonicalQuery returns the SigV4 canonical query string: names and values
// URI-encoded, sorted by name then value, joined as "name=value" with '&'.
// Parameters named skip are left out.
func canonicalQuery(params []param, skip string) string {
	enc := make([]param, 0, len(params))
	for _, p := range params {
		if skip != "" && p.key == skip {
			continue
		}
		enc = append(enc, param{uriEncode(p.key, false), uriEncode(p.value, false)})
	}
	sort.Slice(enc, func(i, j int) bool {
		if enc[i].key != enc[j].key {
			return enc[i].key < enc[j].key
		}
		return enc[i].value < enc[j].value
	})
	var b strings.Builder
	for i, p := range enc {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.key)
		b.WriteByte('=')
		b.WriteString(p.value)
	}
	return b.String()
}

// isUnreserved reports whether c is left as is by SigV4 URI encoding.
func isUnreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~'
}

// uriEncode encodes every byte except unreserved ones (and '/' when
// keepSlash) as %XX with upper-case hex.
func uriEncode(s string, keepSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) || keepSlash && c == '/' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// escapedPath returns the path as the client sent it: RawPath when it is a
// valid encoding of Path (Go only keeps it when it differs from the default
// encoding, e.g. "%2F" inside a segment), else Go's encoding of Path.
func escapedPath(u *url.URL) string {
	if u.RawPath != "" {
		if p, err := url.PathUnescape(u.RawPath); err == nil && p == u.Path {
			return u.RawPath
		}
	}
	return u.EscapedPath()
}

// canonicalURI returns the SigV4 canonical URI for S3: each path segment
// decoded once and re-encoded (no double encoding, no dot-segment removal).
func canonicalURI(u *url.URL) string {
	p := escapedPath(u)
	if p == "" {
		return "/"
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		d, err := url.PathUnescape(s)
		if err != nil {
			d = s // unreachable for a parsed URL; encode the raw text
		}
		segs[i] = uriEncode(d, false)
	}
	out := strings.Join(segs, "/")
	if !strings.HasPrefix(out, "/") {
		out = "/" + out
	}
	return out
}

// hostValue returns the Host the client sent (Go moves it out of r.Header).
func hostValue(r *http.Request) string {
	if r.Host != "" {
		return r.Host
	}
	if h := r.Header.Get("Host"); h != "" {
		return h
	}
	return r.URL.Host
}

// headerValues returns the raw values of a signed header, including the
// ones Go's server moves out of r.Header.
func headerValues(r *http.Request, name string) []string {
	switch name {
	case "host":
		return []string{hostValue(r)}
	case "content-length":
		if v := r.Header.Values("Content-Length"); len(v) > 0 {
			return v
		}
		if r.ContentLength >= 0 {
			return []string{strconv.FormatInt(r.ContentLength, 10)}
		}
	case "transfer-encoding":
		if v := r.Header.Values("Transfer-Encoding"); len(v) > 0 {
			return v
		}
		if len(r.TransferEncoding) > 0 {
			return []string{strings.Join(r.TransferEncoding, ",")}
		}
	}
	return r.Header.Values(name)
}

// trimAll trims a header value and collapses runs of spaces to one.
func trimAll(v string) string {
	v = strings.TrimSpace(v)
	if !strings.Contains(v, "  ") {
		return v
	}
	var b strings.Builder
	space := false
	for i := 0; i < len(v); i++ {
		if v[i] == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// canonicalHeaders returns "name:value\n" for each signed header, in the
// order given (the client's SignedHeaders order).
func canonicalHeaders(r *http.Request, signed []string) string {
	var b strings.Builder
	for _, name := range signed {
		vals := headerValues(r, strings.ToLower(name))
		b.WriteString(name)
		b.WriteByte(':')
		for i, v := range vals {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(trimAll(v))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// canonicalRequest assembles the SigV4 canonical request.
func canonicalRequest(r *http.Request, query string, signed []string, payloadHash string) string {
	return strings.Join([]string{
		r.Method,
		canonicalURI(r.URL),
		query,
		canonicalHeaders(r, signed),
		strings.Join(signed, ";"),
		payloadHash,
	}, "\n")
}

// scope identifies the credential scope date/region/service/aws4_request.
type scope struct {
	date, region, service string
}

func (s scope) String() string {
	return s.date + "/" + s.region + "/" + s.service + "/" + scopeTerminal
}

// stringToSign returns the SigV4 string to sign for a canonical request.
func stringToSign(amzDate string, sc scope, canonical string) string {
	return algorithm + "\n" + amzDate + "\n" + sc.String() + "\n" + hashHex([]byte(canonical))
}

// signingKey derives the SigV4 signing key for a secret and scope.
func signingKey(secret string, sc scope) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), sc.date)
	k = hmacSHA256(k, sc.region)
	k = hmacSHA256(k, sc.service)
	return hmacSHA256(k, scopeTerminal)
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func hashHex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// isHexSHA256 reports whether s is 64 hex digits.
func isHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
