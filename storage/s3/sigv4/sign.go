package sigv4

import (
	"encoding/hex"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Sign signs a request with header auth: it sets X-Amz-Date, X-Amz-Content-Sha256
// (to payloadHash, which may be a hex SHA-256 of the body, UnsignedPayload or
// StreamingPayload) and Authorization. It signs host, x-amz-date,
// x-amz-content-sha256 and any other x-amz-* headers present. The service is "s3".
func Sign(r *http.Request, accessKey, secret, region, payloadHash string, now time.Time) {
	if r.Header == nil {
		r.Header = http.Header{}
	}
	amzDate := now.UTC().Format(amzDateLayout)
	r.Header.Set("X-Amz-Date", amzDate)
	r.Header.Set("X-Amz-Content-Sha256", payloadHash)
	r.Header.Set("Authorization", authorization(r, accessKey, secret, region, payloadHash, amzDate, signedHeaderNames(r)))
}

// authorization computes the Authorization header value for the given
// signed header names (lower case, sorted) and payload hash.
func authorization(r *http.Request, accessKey, secret, region, payload, amzDate string, signed []string) string {
	sc := scope{date: amzDate[:8], region: region, service: "s3"}
	params, _ := parseQuery(r.URL.RawQuery, false)
	cr := canonicalRequest(r, canonicalQuery(params, ""), signed, payload)
	sig := hmacSHA256(signingKey(secret, sc), stringToSign(amzDate, sc, cr))
	return algorithm + " Credential=" + accessKey + "/" + sc.String() +
		", SignedHeaders=" + strings.Join(signed, ";") +
		", Signature=" + hex.EncodeToString(sig)
}

// signedHeaderNames returns host plus every x-amz-* header in r, lower case and sorted.
func signedHeaderNames(r *http.Request) []string {
	set := map[string]bool{"host": true}
	for k := range r.Header {
		if lk := strings.ToLower(k); strings.HasPrefix(lk, "x-amz-") {
			set[lk] = true
		}
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Presign returns r's URL with a presigned query (X-Amz-Algorithm,
// X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders and
// X-Amz-Signature) valid for expires from now. It signs host and any x-amz-*
// headers present in r, which the request made with the URL must then send.
// The payload is UNSIGNED-PAYLOAD. Verify accepts expires from 1s to 7 days.
// Existing query parameters are kept (re-encoded canonically); r is not modified.
func Presign(r *http.Request, accessKey, secret, region string, expires time.Duration, now time.Time) string {
	host := r.URL.Host
	if host == "" {
		host = hostValue(r)
	}
	rc := r.WithContext(r.Context()) // shallow copy, so that the signed host is the URL's
	rc.Host = host

	amzDate := now.UTC().Format(amzDateLayout)
	sc := scope{date: amzDate[:8], region: region, service: "s3"}
	signed := signedHeaderNames(rc)
	params, _ := parseQuery(r.URL.RawQuery, false)
	params = withoutPresignParams(params)
	params = append(params,
		param{"X-Amz-Algorithm", algorithm},
		param{"X-Amz-Credential", accessKey + "/" + sc.String()},
		param{"X-Amz-Date", amzDate},
		param{"X-Amz-Expires", strconv.FormatInt(int64(expires/time.Second), 10)},
		param{"X-Amz-SignedHeaders", strings.Join(signed, ";")},
	)
	query := canonicalQuery(params, "")
	cr := canonicalRequest(rc, query, signed, UnsignedPayload)
	sig := hmacSHA256(signingKey(secret, sc), stringToSign(amzDate, sc, cr))

	u := *r.URL
	u.Host = host
	if u.Scheme == "" {
		u.Scheme = "http"
		if r.TLS != nil {
			u.Scheme = "https"
		}
	}
	u.RawQuery = query + "&X-Amz-Signature=" + hex.EncodeToString(sig)
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}

// withoutPresignParams drops presign parameters left from an earlier signing.
func withoutPresignParams(params []param) []param {
	out := params[:0:0]
	for _, p := range params {
		switch p.key {
		case "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
			"X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token":
			continue
		}
		out = append(out, p)
	}
	return out
}
