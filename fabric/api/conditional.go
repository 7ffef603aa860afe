package api

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Ranges, conditional requests and stored headers: the HTTP side of
// serving stored bytes (objects, image data), shared by Swift, S3 and image.

// ErrRange means a Range header cannot be satisfied.
var ErrRange = errors.New("the requested range is not satisfiable")

// ParseRange reads a Range header for an object of size bytes. It returns
// the window to send and whether it is partial. A header it does not handle
// (several ranges, other units) means the whole object, as RFC 9110 allows.
func ParseRange(h string, size int64) (offset, length int64, partial bool, err error) {
	spec, ok := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	if h == "" || !ok || strings.Contains(spec, ",") {
		return 0, size, false, nil
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return 0, size, false, nil
	}
	if first == "" { // suffix: the last N bytes
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil || n < 0 {
			return 0, size, false, nil
		}
		if n == 0 {
			return 0, 0, false, ErrRange
		}
		n = min(n, size)
		return size - n, n, true, nil
	}
	lo, err := strconv.ParseInt(first, 10, 64)
	if err != nil || lo < 0 {
		return 0, size, false, nil
	}
	hi := size - 1
	if last != "" {
		if hi, err = strconv.ParseInt(last, 10, 64); err != nil || hi < lo {
			return 0, size, false, nil
		}
		hi = min(hi, size-1)
	}
	if lo >= size {
		return 0, 0, false, ErrRange
	}
	return lo, hi - lo + 1, true, nil
}

// ContentRange is the Content-Range header of a partial response.
func ContentRange(offset, length, size int64) string {
	return "bytes " + strconv.FormatInt(offset, 10) + "-" + strconv.FormatInt(offset+length-1, 10) + "/" + strconv.FormatInt(size, 10)
}

func etagMatches(list, etag string) bool {
	for _, e := range strings.Split(list, ",") {
		e = strings.TrimPrefix(strings.TrimSpace(e), "W/")
		if e == "*" || strings.Trim(e, `"`) == etag {
			return true
		}
	}
	return false
}

// Preconditions evaluates If-Match, If-None-Match, If-Modified-Since and
// If-Unmodified-Since for a read of a resource with etag, last modified at
// modified: 0 to go on, else the status to answer (304 or 412).
func Preconditions(r *http.Request, etag string, modified time.Time) int {
	if h := r.Header.Get("If-Match"); h != "" && !etagMatches(h, etag) {
		return http.StatusPreconditionFailed
	}
	if h := r.Header.Get("If-Unmodified-Since"); h != "" && r.Header.Get("If-Match") == "" {
		if t, err := http.ParseTime(h); err == nil && modified.Truncate(time.Second).After(t) {
			return http.StatusPreconditionFailed
		}
	}
	if h := r.Header.Get("If-None-Match"); h != "" {
		if etagMatches(h, etag) {
			return http.StatusNotModified
		}
	} else if h := r.Header.Get("If-Modified-Since"); h != "" {
		if t, err := http.ParseTime(h); err == nil && !modified.Truncate(time.Second).After(t) {
			return http.StatusNotModified
		}
	}
	return 0
}

// StoredHeaders are the response headers a stored object keeps from its
// PUT.
var StoredHeaders = []string{"Content-Disposition", "Content-Encoding", "Content-Language", "Cache-Control", "Expires"}

// KeepHeaders picks the stored headers out of a request.
func KeepHeaders(h http.Header) map[string]string {
	var out map[string]string
	for _, k := range StoredHeaders {
		if v := h.Get(k); v != "" {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}

// BodyWriter sends a response's status line and headers only with the
// first byte of the body. A handler streaming stored bytes sets its headers,
// writes through it, and can still answer an error when the data cannot be
// read before anything was sent, instead of a 200 with a truncated body.
type BodyWriter struct {
	W      http.ResponseWriter
	Status int
	sent   bool
}

func (b *BodyWriter) Write(p []byte) (int, error) {
	b.Send()
	return b.W.Write(p)
}

// Send sends the status now (for an empty body) unless it was sent.
func (b *BodyWriter) Send() {
	if !b.sent {
		b.sent = true
		b.W.WriteHeader(b.Status)
	}
}

// Sent reports whether the status line has gone out.
func (b *BodyWriter) Sent() bool { return b.sent }

// ResetHeaders makes h hold exactly the headers of saved again: after the
// headers of a success were set, an error response must not carry them
// (a Content-Length above all).
func ResetHeaders(h, saved http.Header) {
	for k := range h {
		delete(h, k)
	}
	for k, v := range saved {
		h[k] = v
	}
}

// SendRange sends n bytes at off of a body of size bytes, read by read:
// 200 with Content-Length, or for a partial window 206 with its
// Content-Range; a HEAD gets the headers only. The status waits for the
// first byte, so a read that fails before anything is sent gets the
// headers reset to saved and its error returned for the caller to answer
// in its own format. Once the status is sent a failure can only end the
// body short of its Content-Length (net/http then closes the connection),
// and SendRange returns nil: the reader logged why.
func SendRange(w http.ResponseWriter, r *http.Request, off, n, size int64, partial bool, saved http.Header, read func(w io.Writer) error) error {
	h := w.Header()
	h.Set("Content-Length", strconv.FormatInt(n, 10))
	status := http.StatusOK
	if partial {
		h.Set("Content-Range", ContentRange(off, n, size))
		status = http.StatusPartialContent
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return nil
	}
	body := &BodyWriter{W: w, Status: status}
	err := read(body)
	switch {
	case err == nil:
		body.Send()
	case !body.Sent():
		ResetHeaders(h, saved)
		return err
	}
	return nil
}
