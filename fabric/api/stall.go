package api

import (
	"net/http"
	"time"
)

// StallWriter bounds each Write of a response body: it must be taken by
// the client within Stall. A client that stops reading without closing
// its connection would otherwise keep the handler, and whatever memory it
// sends from (the stripe blocks of an object read), for as long as the
// connection lives. Any speed above one write per Stall goes through, so a
// large body on a slow link is not cut short. Call Done once the body is
// written.
type StallWriter struct {
	http.ResponseWriter
	rc    *http.ResponseController
	Stall time.Duration
}

// NewStallWriter wraps w; stall <= 0 leaves writes unbounded.
func NewStallWriter(w http.ResponseWriter, stall time.Duration) *StallWriter {
	return &StallWriter{ResponseWriter: w, rc: http.NewResponseController(w), Stall: stall}
}

func (s *StallWriter) Write(p []byte) (int, error) {
	if s.Stall > 0 {
		// A writer without deadlines (a test recorder) cannot stall.
		_ = s.rc.SetWriteDeadline(time.Now().Add(s.Stall))
	}
	return s.ResponseWriter.Write(p)
}

// Done clears the deadline: the connection may serve another request,
// which the last one's deadline must not cut short.
func (s *StallWriter) Done() {
	if s.Stall > 0 {
		_ = s.rc.SetWriteDeadline(time.Time{})
	}
}

// Unwrap lets http.ResponseController reach the real writer.
func (s *StallWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
