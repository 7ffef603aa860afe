package sigv4

import (
	"context"
	"crypto/hmac"
	"encoding/hex"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// credential is the parsed Credential=AKID/date/region/service/aws4_request.
type credential struct {
	accessKey string
	scope     scope
}

// authParams are the parts of a signature common to both auth mechanisms.
type authParams struct {
	cred      credential
	signed    []string
	signature []byte
}

// malformedFunc builds the error for a malformed auth parameter; the code
// differs between header auth and presigned URLs.
type malformedFunc func(format string, args ...any) *Error

func headerMalformed(format string, args ...any) *Error {
	return newError("AuthorizationHeaderMalformed", format, args...)
}

func queryMalformed(format string, args ...any) *Error {
	return newError("AuthorizationQueryParametersError", format, args...)
}

// parseCredential parses "AKID/20130524/us-east-1/s3/aws4_request". The
// access key is everything before the last four components.
func parseCredential(v string, bad malformedFunc) (credential, error) {
	parts := strings.Split(v, "/")
	if len(parts) < 5 {
		return credential{}, bad("credential %q is not of the form <access key>/<yyyymmdd>/<region>/<service>/aws4_request", v)
	}
	n := len(parts)
	c := credential{
		accessKey: strings.Join(parts[:n-4], "/"),
		scope:     scope{date: parts[n-4], region: parts[n-3], service: parts[n-2]},
	}
	switch {
	case c.accessKey == "":
		return credential{}, bad("credential %q has an empty access key", v)
	case !validDate(c.scope.date):
		return credential{}, bad("credential %q has an invalid date %q, want yyyymmdd", v, c.scope.date)
	case c.scope.region == "":
		return credential{}, bad("credential %q has an empty region", v)
	case c.scope.service == "":
		return credential{}, bad("credential %q has an empty service", v)
	case parts[n-1] != scopeTerminal:
		return credential{}, bad("credential %q must end with %q", v, scopeTerminal)
	}
	return c, nil
}

func validDate(s string) bool {
	if len(s) != 8 {
		return false
	}
	_, err := time.Parse(dateLayout, s)
	return err == nil
}

// parseSignedHeaders parses "host;range;x-amz-date". host must be signed.
func parseSignedHeaders(v string, bad malformedFunc) ([]string, error) {
	if v == "" {
		return nil, bad("SignedHeaders is empty")
	}
	names := strings.Split(v, ";")
	host := false
	for _, n := range names {
		if n == "" {
			return nil, bad("SignedHeaders %q has an empty header name", v)
		}
		if n == "host" {
			host = true
		}
	}
	if !host {
		return nil, bad("SignedHeaders %q must include host", v)
	}
	return names, nil
}

// parseSignature decodes a 64-hex-digit signature.
func parseSignature(v string, bad malformedFunc) ([]byte, error) {
	sig, err := hex.DecodeString(v)
	if err != nil || len(sig) != 32 {
		return nil, bad("signature %q is not 64 hex digits", v)
	}
	return sig, nil
}

// parseAuthorization parses an "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..." header.
func parseAuthorization(h string) (authParams, error) {
	alg, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	if alg != algorithm {
		if strings.HasPrefix(alg, algorithm) || strings.HasPrefix(alg, "Credential=") {
			return authParams{}, headerMalformed("Authorization header must start with %q followed by a space", algorithm)
		}
		return authParams{}, newError("InvalidArgument", "unsupported Authorization type %q; only %s is supported", alg, algorithm)
	}
	fields := map[string]string{}
	for f := range strings.SplitSeq(rest, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		name, value, ok := strings.Cut(f, "=")
		if !ok {
			return authParams{}, headerMalformed("Authorization header component %q is not name=value", f)
		}
		switch name {
		case "Credential", "SignedHeaders", "Signature":
		default:
			return authParams{}, headerMalformed("Authorization header has unknown component %q", name)
		}
		if _, dup := fields[name]; dup {
			return authParams{}, headerMalformed("Authorization header has %s more than once", name)
		}
		fields[name] = value
	}
	for _, name := range []string{"Credential", "SignedHeaders", "Signature"} {
		if _, ok := fields[name]; !ok {
			return authParams{}, headerMalformed("Authorization header is missing %s", name)
		}
	}
	return parseAuthParams(fields["Credential"], fields["SignedHeaders"], fields["Signature"], headerMalformed)
}

// parseAuthParams parses the three signature parameters.
func parseAuthParams(cred, signed, sig string, bad malformedFunc) (authParams, error) {
	var a authParams
	var err error
	if a.cred, err = parseCredential(cred, bad); err != nil {
		return authParams{}, err
	}
	if a.signed, err = parseSignedHeaders(signed, bad); err != nil {
		return authParams{}, err
	}
	if a.signature, err = parseSignature(sig, bad); err != nil {
		return authParams{}, err
	}
	return a, nil
}

// requestTime returns the request time from X-Amz-Date, or failing that Date,
// and its ISO 8601 basic form used in the string to sign.
func requestTime(r *http.Request) (string, time.Time, error) {
	if v := r.Header.Get("X-Amz-Date"); v != "" {
		t, err := time.Parse(amzDateLayout, v)
		if err != nil || len(v) != len(amzDateLayout) {
			return "", time.Time{}, newError("AccessDenied", "x-amz-date %q is not of the form yyyymmddThhmmssZ", v)
		}
		return v, t, nil
	}
	if v := r.Header.Get("Date"); v != "" {
		t, err := http.ParseTime(v)
		if err != nil {
			return "", time.Time{}, newError("AccessDenied", "Date header %q is not a valid HTTP date", v)
		}
		t = t.UTC()
		return t.Format(amzDateLayout), t, nil
	}
	return "", time.Time{}, newError("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header")
}

// payloadHash returns the x-amz-content-sha256 value to use in the canonical
// request for header auth.
func payloadHash(r *http.Request) (string, error) {
	v := r.Header.Get("X-Amz-Content-Sha256")
	switch {
	case v == "":
		if r.ContentLength == 0 {
			return EmptyPayloadHash, nil
		}
		return "", newError("MissingSecurityHeader", "missing x-amz-content-sha256 header on a request with a body")
	case v == UnsignedPayload, v == StreamingPayload, isHexSHA256(v):
		return v, nil
	case strings.HasPrefix(v, "STREAMING-"):
		return "", newError("InvalidArgument", "unsupported x-amz-content-sha256 %q; supported: %s, %s or a hex SHA-256", v, UnsignedPayload, StreamingPayload)
	}
	return "", newError("InvalidArgument", "x-amz-content-sha256 %q must be %s, %s or a hex SHA-256", v, UnsignedPayload, StreamingPayload)
}

// checkAllAmzSigned rejects requests carrying x-amz-* headers that the
// signature does not cover, as S3 does: they could otherwise be injected.
func checkAllAmzSigned(r *http.Request, signed []string) error {
	set := make(map[string]bool, len(signed))
	for _, n := range signed {
		set[strings.ToLower(n)] = true
	}
	var unsigned []string
	for k := range r.Header {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "x-amz-") && !set[lk] {
			unsigned = append(unsigned, lk)
		}
	}
	if len(unsigned) == 0 {
		return nil
	}
	sort.Strings(unsigned)
	return newError("AccessDenied", "there were headers present in the request which were not signed: %s", strings.Join(unsigned, ", "))
}

// checkSignature computes the request signature and compares it with want.
// It returns the computed signature (the seed for aws-chunked bodies).
func checkSignature(r *http.Request, key []byte, a authParams, amzDate, query, payload string) ([]byte, error) {
	cr := canonicalRequest(r, query, a.signed, payload)
	sts := stringToSign(amzDate, a.cred.scope, cr)
	got := hmacSHA256(key, sts)
	if !hmac.Equal(got, a.signature) {
		e := newError("SignatureDoesNotMatch", "the request signature we calculated does not match the signature you provided; check your key and signing method")
		e.CanonicalRequest, e.StringToSign = cr, sts
		return nil, e
	}
	return got, nil
}

// verifyHeaderAuth verifies a request signed with the Authorization header.
func verifyHeaderAuth(ctx context.Context, r *http.Request, auth string, params []param, lookup Lookup, now time.Time) (Result, error) {
	a, err := parseAuthorization(auth)
	if err != nil {
		return Result{}, err
	}
	amzDate, t, err := requestTime(r)
	if err != nil {
		return Result{}, err
	}
	if a.cred.scope.date != amzDate[:8] {
		return Result{}, headerMalformed("credential date %q does not match request date %q", a.cred.scope.date, amzDate[:8])
	}
	if d := now.Sub(t); d > MaxClockSkew || d < -MaxClockSkew {
		return Result{}, newError("RequestTimeTooSkewed", "the difference between the request time %s and the server time %s is too large (max %s)",
			t.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), MaxClockSkew)
	}
	payload, err := payloadHash(r)
	if err != nil {
		return Result{}, err
	}
	if err := checkAllAmzSigned(r, a.signed); err != nil {
		return Result{}, err
	}
	secret, err := lookupSecret(ctx, lookup, a.cred.accessKey)
	if err != nil {
		return Result{}, err
	}
	key := signingKey(secret, a.cred.scope)
	seed, err := checkSignature(r, key, a, amzDate, canonicalQuery(params, ""), payload)
	if err != nil {
		return Result{}, err
	}
	if err := wrapBody(r, payload, key, amzDate, a.cred.scope, seed); err != nil {
		return Result{}, err
	}
	return Result{AccessKey: a.cred.accessKey, Region: a.cred.scope.region, PayloadHash: payload}, nil
}

// presignParam returns the single value of a required presign parameter.
func presignParam(params []param, name string) (string, error) {
	var v string
	n := 0
	for _, p := range params {
		if p.key == name {
			v = p.value
			n++
		}
	}
	switch n {
	case 0:
		return "", queryMalformed("presigned URL is missing query parameter %s", name)
	case 1:
		return v, nil
	}
	return "", queryMalformed("presigned URL has query parameter %s more than once", name)
}

// presignParams extracts the presign query parameters by name.
func presignParams(params []param) (map[string]string, error) {
	out := map[string]string{}
	for _, name := range []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature"} {
		v, err := presignParam(params, name)
		if err != nil {
			return nil, err
		}
		out[name] = v
	}
	if out["X-Amz-Algorithm"] != algorithm {
		return nil, queryMalformed("X-Amz-Algorithm %q is not supported; only %s is", out["X-Amz-Algorithm"], algorithm)
	}
	return out, nil
}

// presignWindow parses X-Amz-Date and X-Amz-Expires and checks now is inside.
func presignWindow(amzDate, expires string, now time.Time) error {
	t, err := time.Parse(amzDateLayout, amzDate)
	if err != nil || len(amzDate) != len(amzDateLayout) {
		return queryMalformed("X-Amz-Date %q is not of the form yyyymmddThhmmssZ", amzDate)
	}
	secs, err := strconv.ParseInt(expires, 10, 64)
	if err != nil || secs < 1 || secs > int64(MaxPresignExpiry/time.Second) {
		return queryMalformed("X-Amz-Expires %q must be a number of seconds from 1 to %d", expires, int64(MaxPresignExpiry/time.Second))
	}
	if t.Sub(now) > MaxClockSkew {
		return newError("AccessDenied", "request is not valid yet: X-Amz-Date %s is in the future", amzDate)
	}
	if now.After(t.Add(time.Duration(secs) * time.Second)) {
		return newError("AccessDenied", "request has expired: signed at %s for %d seconds", amzDate, secs)
	}
	return nil
}

// verifyPresigned verifies a request authenticated by presigned URL query parameters.
func verifyPresigned(ctx context.Context, r *http.Request, params []param, lookup Lookup, now time.Time) (Result, error) {
	q, err := presignParams(params)
	if err != nil {
		return Result{}, err
	}
	a, err := parseAuthParams(q["X-Amz-Credential"], q["X-Amz-SignedHeaders"], q["X-Amz-Signature"], queryMalformed)
	if err != nil {
		return Result{}, err
	}
	amzDate := q["X-Amz-Date"]
	if err := presignWindow(amzDate, q["X-Amz-Expires"], now); err != nil {
		return Result{}, err
	}
	if a.cred.scope.date != amzDate[:8] {
		return Result{}, queryMalformed("credential date %q does not match X-Amz-Date %q", a.cred.scope.date, amzDate[:8])
	}
	if err := checkAllAmzSigned(r, a.signed); err != nil {
		return Result{}, err
	}
	secret, err := lookupSecret(ctx, lookup, a.cred.accessKey)
	if err != nil {
		return Result{}, err
	}
	key := signingKey(secret, a.cred.scope)
	if _, err := checkSignature(r, key, a, amzDate, canonicalQuery(params, "X-Amz-Signature"), UnsignedPayload); err != nil {
		return Result{}, err
	}
	return Result{AccessKey: a.cred.accessKey, Region: a.cred.scope.region, PayloadHash: UnsignedPayload, Presigned: true}, nil
}
