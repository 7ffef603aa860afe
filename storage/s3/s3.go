// Package s3 serves the Amazon S3 REST API (path style) on the object store.
// Requests are signed with AWS Signature Version 4 using Keystone EC2
// credentials; a credential acts as its user on its project, and buckets
// are the project's containers (the same ones Swift shows).
package s3

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/storage/blob"
	"github.com/rackstack/rackstack/storage/object"
	"github.com/rackstack/rackstack/storage/s3/sigv4"
)

// Credentials resolves EC2 access keys (Keystone's identity service).
type Credentials interface {
	EC2Principal(ctx context.Context, access string) (*api.Principal, string, error)
}

// Handler serves S3 under Prefix (e.g. "/s3"). It must see the request path
// as the client signed it, so mount it without stripping the prefix.
type Handler struct {
	Store  *object.Service
	Creds  Credentials
	Prefix string
	Now    func() time.Time
	// Region is the S3 location this endpoint serves (default us-east-1,
	// what S3 clients sign for when not told otherwise). Requests signed
	// for another region are refused, as S3 does.
	Region string
	// SendStall is how long a GET waits for the client to take each
	// write of the body before it gives up on it (default
	// DefaultSendStall): a client that stops reading must not hold the
	// blocks the object is read into.
	SendStall time.Duration
}

// DefaultSendStall bounds each write of an object's body to a client.
const DefaultSendStall = time.Minute

func (h *Handler) sendStall() time.Duration {
	if h.SendStall > 0 {
		return h.SendStall
	}
	return DefaultSendStall
}

// DefaultRegion is the S3 location when Handler.Region is empty.
const DefaultRegion = "us-east-1"

func (h *Handler) region() string {
	if h.Region == "" {
		return DefaultRegion
	}
	return h.Region
}

// Limits.
const (
	maxKeyLength   = 1024
	maxUserMeta    = 2 << 10
	maxObjectSize  = 5 << 30
	maxListKeys    = 1000
	maxDeleteKeys  = 1000
	maxXMLBodySize = 1 << 20
)

// request is one S3 call being served.
// bodyContext is the request's context, letting the blob store bound how
// long the body may take to fill a stripe (blob.WithBodyDeadline), so a
// client that trickles its body does not hold a stripe's blocks for as
// long as it takes.
func (q *request) bodyContext() context.Context {
	return blob.WithBodyDeadline(q.r.Context(), http.NewResponseController(q.w).SetReadDeadline)
}

type request struct {
	h      *Handler
	w      http.ResponseWriter
	r      *http.Request
	bucket string
	key    string
	who    *api.Principal // nil when anonymous
	q      url.Values
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, h.Prefix)
	path = strings.TrimPrefix(path, "/")
	bucket, key, _ := strings.Cut(path, "/")
	q := &request{h: h, w: w, r: r, bucket: bucket, key: key, q: r.URL.Query()}
	continueEmpty(w, r)
	w.Header().Set("x-amz-request-id", api.RequestID(r.Context()))
	if !q.authenticate() {
		return
	}
	switch {
	case bucket == "":
		if r.Method != http.MethodGet {
			q.fail("MethodNotAllowed", http.StatusMethodNotAllowed, "the service endpoint only lists buckets")
			return
		}
		q.listBuckets()
	case key == "":
		q.bucketOp()
	default:
		q.objectOp()
	}
}

// continueEmpty sends the interim "100 Continue" to a request that
// expects one but has an empty body. Go's server sends it only when the
// handler reads a body, so such a request (botocore puts "Expect:
// 100-continue" on every PUT, even of an empty file) got its final
// response where botocore waits for the 100. botocore then keeps that
// status line and parses the next response on the same pooled connection
// against it (boto/botocore#3755): the response's length is lost, the
// client waits out its 60 s read timeout and sends the request again. An
// `aws s3 cp --recursive` of a directory with an empty file stalled a
// minute that way. RFC 9110 §10.1.1 lets a server send the 100 whether or
// not there is content, as S3 does.
func continueEmpty(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength == 0 && r.ProtoAtLeast(1, 1) && strings.EqualFold(r.Header.Get("Expect"), "100-continue") {
		w.WriteHeader(http.StatusContinue)
	}
}

// authenticate verifies the signature, if any, and resolves who acts.
// Anonymous requests go on; each operation checks what it allows.
func (q *request) authenticate() bool {
	signed := q.r.Header.Get("Authorization") != "" || q.q.Get("X-Amz-Signature") != "" || q.q.Get("X-Amz-Credential") != ""
	if !signed {
		return true
	}
	if strings.HasPrefix(q.r.Header.Get("Authorization"), "AWS ") {
		q.fail("InvalidRequest", http.StatusBadRequest, "signature version 2 is not supported; use AWS4-HMAC-SHA256")
		return false
	}
	lookup := func(ctx context.Context, access string) (string, error) {
		p, secret, err := q.h.Creds.EC2Principal(ctx, access)
		if errors.Is(err, store.ErrNotFound) {
			return "", sigv4.ErrUnknownAccessKey
		}
		if err != nil {
			return "", err
		}
		q.who = p
		return secret, nil
	}
	res, err := sigv4.Verify(q.r.Context(), q.r, lookup, q.h.now())
	if err != nil {
		q.who = nil
		q.failErr(err)
		return false
	}
	if res.Region != q.h.region() {
		q.who = nil
		code := "AuthorizationHeaderMalformed"
		if res.Presigned {
			code = "AuthorizationQueryParametersError"
		}
		msg := fmt.Sprintf("The authorization header is malformed; the region '%s' is wrong; expecting '%s'", res.Region, q.h.region())
		q.failBody(errorBody{Code: code, Message: msg, Region: q.h.region()}, http.StatusBadRequest)
		return false
	}
	return true
}

// canRead and canWrite apply the project's roles; anonymous callers may
// only read objects of public (".r:*") buckets.
func (q *request) canRead() bool {
	if q.who != nil {
		return q.who.CanRead(q.who.ProjectID)
	}
	return false
}

func (q *request) canWrite() bool {
	return q.who != nil && q.who.CanWrite(q.who.ProjectID)
}

// project is the namespace the request's buckets live in.
func (q *request) project() string {
	if q.who == nil {
		return ""
	}
	return q.who.ProjectID
}

// requireAuth answers AccessDenied for anonymous or read-only callers.
func (q *request) requireAuth(write bool) bool {
	if write && q.canWrite() || !write && q.canRead() {
		return true
	}
	if q.who == nil {
		q.fail("AccessDenied", http.StatusForbidden, "Access Denied: the request is not signed")
	} else {
		q.fail("AccessDenied", http.StatusForbidden, "Access Denied: your role on the project does not allow this")
	}
	return false
}

type errorBody struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	Resource  string   `xml:"Resource,omitempty"`
	Key       string   `xml:"Key,omitempty"`
	Bucket    string   `xml:"BucketName,omitempty"`
	RequestID string   `xml:"RequestId"`
	// For AuthorizationHeaderMalformed: the region to sign for.
	Region string `xml:"Region,omitempty"`
	// For SignatureDoesNotMatch, as S3 returns them.
	StringToSign     string `xml:"StringToSign,omitempty"`
	CanonicalRequest string `xml:"CanonicalRequest,omitempty"`
}

func (q *request) fail(code string, status int, msg string) {
	q.failBody(errorBody{Code: code, Message: msg}, status)
}

func (q *request) failBody(b errorBody, status int) {
	b.Resource, b.RequestID = q.r.URL.Path, api.RequestID(q.r.Context())
	if b.Bucket == "" {
		b.Bucket = q.bucket
	}
	if q.r.Method == http.MethodHead {
		q.w.WriteHeader(status)
		return
	}
	writeXML(q.w, status, b)
}

// failErr maps an error to S3's code and status.
func (q *request) failErr(err error) {
	var se *sigv4.Error
	var small *object.PartTooSmallError
	var ae *api.Error
	switch {
	case errors.As(err, &se):
		q.failBody(errorBody{Code: se.Code, Message: se.Message, StringToSign: se.StringToSign, CanonicalRequest: se.CanonicalRequest}, se.Status)
	case errors.As(err, &small):
		q.fail("EntityTooSmall", http.StatusBadRequest, small.Error())
	case errors.Is(err, object.ErrIncomplete):
		q.fail("IncompleteBody", http.StatusBadRequest, "you did not provide the number of bytes specified by the Content-Length HTTP header")
	case errors.Is(err, object.ErrBadDigest):
		q.fail("BadDigest", http.StatusBadRequest, "the Content-MD5 you specified did not match what we received")
	case errors.Is(err, object.ErrContainerQuota):
		// Swift's s3api answers a container quota's 413 so.
		q.fail("EntityTooLarge", http.StatusBadRequest, "your upload exceeds the bucket's quota")
	case errors.Is(err, blob.ErrSource) && errors.Is(err, os.ErrDeadlineExceeded):
		q.fail("RequestTimeout", http.StatusBadRequest, "your socket connection to the server was not read from or written to within the timeout period")
	case errors.Is(err, blob.ErrSource):
		q.fail("IncompleteBody", http.StatusBadRequest, "reading the request body failed")
	case errors.Is(err, object.ErrNoDisks), errors.Is(err, blob.ErrQuorum), errors.Is(err, store.ErrNoLeader), errors.Is(err, store.ErrOutcomeUnknown):
		q.fail("ServiceUnavailable", http.StatusServiceUnavailable, "too few storage disks are available; please retry")
	case errors.Is(err, store.ErrHalted):
		q.fail("ServiceUnavailable", http.StatusServiceUnavailable, "this node stopped applying the cluster state (it runs an older rackd); use another node")
	case errors.Is(err, store.ErrUnavailable):
		q.fail("ServiceUnavailable", http.StatusServiceUnavailable, err.Error())
	case errors.As(err, &ae) && ae.Status == http.StatusBadRequest:
		q.fail("InvalidArgument", http.StatusBadRequest, ae.Msg)
	case errors.Is(err, store.ErrInvalid):
		q.fail("InvalidArgument", http.StatusBadRequest, err.Error())
	default:
		q.fail("InternalError", http.StatusInternalServerError, "we encountered an internal error; please try again")
	}
}

func writeXML(w http.ResponseWriter, status int, v any) {
	b, err := xml.Marshal(v)
	if err != nil {
		http.Error(w, "encode response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", fmt.Sprint(len(xml.Header)+len(b)))
	w.WriteHeader(status)
	w.Write([]byte(xml.Header))
	w.Write(b)
}

// decodeXML reads a bounded XML request body. It reads the body to its end
// even when the document stops earlier: only then has the body been checked
// against the signed payload hash.
func (q *request) decodeXML(v any) bool {
	body := &limitedBody{r: q.r, n: maxXMLBodySize}
	err := xml.NewDecoder(body).Decode(v)
	if err == nil {
		_, err = io.Copy(io.Discard, body)
	}
	if err != nil {
		var se *sigv4.Error
		if errors.As(err, &se) {
			q.failErr(se)
			return false
		}
		q.fail("MalformedXML", http.StatusBadRequest, "the XML you provided was not well-formed or did not validate against our published schema: "+err.Error())
		return false
	}
	return true
}

type limitedBody struct {
	r *http.Request
	n int64
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.n <= 0 {
		// A body of exactly the limit is fine: look for its end.
		var one [1]byte
		if n, err := l.r.Body.Read(one[:]); n == 0 && err != nil {
			return 0, err
		}
		return 0, errors.New("request body larger than 1 MiB")
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Body.Read(p)
	l.n -= int64(n)
	return n, err
}

func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func quote(etag string) string { return `"` + etag + `"` }

// validBucket applies S3's bucket naming rules.
func validBucket(name string) bool {
	if len(name) < 3 || len(name) > 63 {
		return false
	}
	for i, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' || c == '.':
			if i == 0 || i == len(name)-1 {
				return false
			}
		default:
			return false
		}
	}
	return !strings.Contains(name, "..")
}
