// Package sigv4 verifies AWS Signature Version 4 on incoming S3 requests.
//
// It supports the two ways S3 clients (awscli/botocore, s3cmd, rclone and
// the AWS SDKs) authenticate:
//
//   - header auth: "Authorization: AWS4-HMAC-SHA256 Credential=...,
//     SignedHeaders=..., Signature=..." with the payload hash in
//     x-amz-content-sha256 (a hex SHA-256, UNSIGNED-PAYLOAD, or
//     STREAMING-AWS4-HMAC-SHA256-PAYLOAD for aws-chunked uploads);
//   - presigned URLs: X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date,
//     X-Amz-Expires, X-Amz-SignedHeaders and X-Amz-Signature in the query.
//
// The server is region-agnostic: any region in the credential scope is
// accepted and reported in Result. Verify replaces the request body with a
// reader that checks the payload against the signed hash (or decodes and
// verifies an aws-chunked body), so handlers must treat an error from the
// body as fatal for the request.
package sigv4

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Payload hash values with a special meaning in x-amz-content-sha256.
const (
	// UnsignedPayload says the body is not covered by the signature.
	UnsignedPayload = "UNSIGNED-PAYLOAD"
	// StreamingPayload says the body is aws-chunked with a signature per chunk.
	StreamingPayload = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	// EmptyPayloadHash is the hex SHA-256 of the empty string.
	EmptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// Limits enforced by Verify.
const (
	// MaxClockSkew is how far the request time may be from now for header auth
	// (and how far in the future a presigned URL's X-Amz-Date may be).
	MaxClockSkew = 15 * time.Minute
	// MaxPresignExpiry is the longest X-Amz-Expires accepted (7 days).
	MaxPresignExpiry = 7 * 24 * time.Hour
	// MaxChunkSize is the largest aws-chunked chunk accepted.
	MaxChunkSize = 64 << 20
	// maxChunkLine bounds an aws-chunked chunk header line, CRLF included.
	maxChunkLine = 4 << 10
)

const (
	algorithm      = "AWS4-HMAC-SHA256"
	chunkAlgorithm = "AWS4-HMAC-SHA256-PAYLOAD"
	scopeTerminal  = "aws4_request"
	amzDateLayout  = "20060102T150405Z"
	dateLayout     = "20060102"
)

// Lookup returns the secret key for an access key id, or an error
// (ErrUnknownAccessKey when absent).
type Lookup func(ctx context.Context, accessKey string) (secret string, err error)

// Result describes a request whose signature was verified.
type Result struct {
	// AccessKey is the access key id from the credential scope.
	AccessKey string
	// Region is the region from the credential scope, whatever the client used.
	Region string
	// PayloadHash is the x-amz-content-sha256 value ("UNSIGNED-PAYLOAD",
	// "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", or hex sha256).
	PayloadHash string
	// Presigned is true when the request was authenticated by query parameters.
	Presigned bool
}

// Error is an authentication failure, carrying the S3 error code and HTTP
// status to return to the client.
//
// Codes used: AccessDenied, SignatureDoesNotMatch, InvalidAccessKeyId,
// AuthorizationHeaderMalformed, AuthorizationQueryParametersError,
// RequestTimeTooSkewed, XAmzContentSHA256Mismatch, MissingSecurityHeader,
// InvalidArgument and IncompleteBody. Status is 403 for signature and
// permission problems and 400 for malformed requests.
type Error struct {
	Code    string
	Status  int
	Message string

	// CanonicalRequest and StringToSign are what the server computed; they
	// are set for SignatureDoesNotMatch on the request signature, as S3 does
	// in its error response, to help debug clients. They hold no secret.
	CanonicalRequest string
	StringToSign     string
}

// Error returns "Code: Message".
func (e *Error) Error() string {
	return e.Code + ": " + e.Message
}

// ErrUnknownAccessKey is returned by a Lookup for an access key it does not know.
var ErrUnknownAccessKey = errors.New("unknown access key")

// newError builds an *Error with the status that belongs to code.
func newError(code, format string, args ...any) *Error {
	status := http.StatusForbidden
	switch code {
	case "AuthorizationHeaderMalformed", "AuthorizationQueryParametersError",
		"XAmzContentSHA256Mismatch", "MissingSecurityHeader",
		"InvalidArgument", "IncompleteBody":
		status = http.StatusBadRequest
	}
	return &Error{Code: code, Status: status, Message: fmt.Sprintf(format, args...)}
}

// Verify checks the request's signature, from the Authorization header or
// from a presigned URL query. now is the server's current time.
//
// Header auth allows MaxClockSkew between X-Amz-Date (or Date) and now.
// Presigned URLs are valid for X-Amz-Expires seconds (at most 7 days) and
// are always treated as UNSIGNED-PAYLOAD.
//
// On success r.Body is replaced:
//   - hex sha256: the body is passed through while hashed; when it ends (EOF,
//     or Content-Length bytes read) the reader returns an *Error
//     XAmzContentSHA256Mismatch if the hash differs, withholding the bytes of
//     that last read; a handler must discard what it read when the body
//     returns an error. An empty body is checked by Verify itself;
//   - STREAMING-AWS4-HMAC-SHA256-PAYLOAD: the aws-chunked body is decoded and
//     every chunk signature is checked before any of its bytes are returned
//     (chunks are buffered, at most MaxChunkSize each), and the final chunk
//     before the last data; read errors are *Error IncompleteBody,
//     SignatureDoesNotMatch or InvalidArgument, or the underlying read error;
//     r.ContentLength is set to x-amz-decoded-content-length and "aws-chunked"
//     is removed from Content-Encoding;
//   - UNSIGNED-PAYLOAD: the body is left alone.
//
// Authentication failures are returned as *Error. A Lookup error other than
// ErrUnknownAccessKey is returned wrapped, not as *Error (an internal error).
func Verify(ctx context.Context, r *http.Request, lookup Lookup, now time.Time) (Result, error) {
	if r == nil || r.URL == nil {
		return Result{}, errors.New("sigv4: nil request")
	}
	if lookup == nil {
		return Result{}, errors.New("sigv4: nil Lookup")
	}
	params, err := parseQuery(r.URL.RawQuery, true)
	if err != nil {
		return Result{}, err
	}
	auths := r.Header.Values("Authorization")
	presigned := isPresigned(params)
	switch {
	case len(auths) > 1:
		return Result{}, newError("InvalidArgument", "more than one Authorization header")
	case len(auths) == 1 && presigned:
		return Result{}, newError("InvalidArgument", "only one auth mechanism allowed; both Authorization header and X-Amz-* query parameters are present")
	case len(auths) == 1:
		return verifyHeaderAuth(ctx, r, auths[0], params, lookup, now)
	case presigned:
		return verifyPresigned(ctx, r, params, lookup, now)
	}
	return Result{}, newError("AccessDenied", "request is not signed: no Authorization header and no presigned query parameters")
}

// isPresigned reports whether the query carries presigned-URL parameters.
func isPresigned(params []param) bool {
	for _, p := range params {
		switch p.key {
		case "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature":
			return true
		}
	}
	return false
}

// lookupSecret calls lookup and maps an unknown key to InvalidAccessKeyId.
func lookupSecret(ctx context.Context, lookup Lookup, accessKey string) (string, error) {
	secret, err := lookup(ctx, accessKey)
	if errors.Is(err, ErrUnknownAccessKey) {
		return "", newError("InvalidAccessKeyId", "the access key id %q does not exist in our records", accessKey)
	}
	if err != nil {
		return "", fmt.Errorf("sigv4: looking up access key %q: %w", accessKey, err)
	}
	return secret, nil
}
