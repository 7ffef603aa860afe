package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/rackstack/rackstack/fabric/store"
)

// Error is an error with an HTTP status, raised by a handler before any
// command is proposed. Fault is the service's own name for it (Nova's
// "badRequest", Neutron's "HTTPBadRequest"; "" for the status's default)
// and Field the request attribute at fault.
type Error struct {
	Status int
	Fault  string
	Msg    string
	Field  string
}

func (e *Error) Error() string { return e.Msg }

// Errorf builds an *Error.
func Errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Msg: fmt.Sprintf(format, args...)}
}

// BadField builds a 400 naming the offending field.
func BadField(field, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Field: field, Msg: fmt.Sprintf("Invalid input for field/attribute %s: %s", field, fmt.Sprintf(format, args...))}
}

// Sentinel errors for ProblemOf; services and the store wrap them.
var (
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("conflict")
	ErrForbidden    = errors.New("forbidden")
	ErrUnauthorized = errors.New("the request you have made requires authentication")
)

// Problem is an error as a client is told it: the status, the service's
// own fault name ("" for the status's default), the message and the field
// at fault.
type Problem struct {
	Status int
	Fault  string
	Msg    string
	Field  string
}

// ErrorWriter writes one service's error body for a problem.
type ErrorWriter func(w http.ResponseWriter, r *http.Request, p Problem)

// kindStatus is the status each store error kind answers.
var kindStatus = map[store.Kind]int{
	store.KindNotFound:  http.StatusNotFound,
	store.KindConflict:  http.StatusConflict,
	store.KindInvalid:   http.StatusBadRequest,
	store.KindForbidden: http.StatusForbidden,
	// Nova and Keystone answer 403 for an exceeded quota; services that
	// answer otherwise (Neutron's 409 OverQuota) use another kind.
	store.KindOverQuota: http.StatusForbidden,

	// A write made against another revision of the row (If-Match).
	store.KindPrecondition: http.StatusPreconditionFailed,
	// This node's or the leader's state halted at an entry from a newer
	// rackd: another node can serve the request; a write answered so may
	// have been applied elsewhere.
	store.KindHalted: http.StatusServiceUnavailable,
	// Refused everywhere until the cluster can apply it (a rolling
	// upgrade not finished): try again once it is.
	store.KindUnavailable: http.StatusServiceUnavailable,
}

// ProblemOf maps any error to what the client is told: this is the one
// place where store and service errors become statuses. Internal error
// text (a 500's cause) is never shown to clients.
func ProblemOf(err error) Problem {
	var ae *Error
	if errors.As(err, &ae) {
		return Problem{Status: ae.Status, Fault: ae.Fault, Msg: ae.Msg, Field: ae.Field}
	}
	var se *store.ApplyError
	if errors.As(err, &se) {
		if st, ok := kindStatus[se.Kind]; ok {
			return Problem{Status: st, Fault: se.Fault, Msg: se.Msg, Field: se.Field}
		}
	}
	switch {
	case errors.Is(err, ErrNotFound):
		return Problem{Status: http.StatusNotFound, Msg: err.Error()}
	case errors.Is(err, ErrConflict):
		return Problem{Status: http.StatusConflict, Msg: err.Error()}
	case errors.Is(err, ErrForbidden):
		return Problem{Status: http.StatusForbidden, Msg: err.Error()}
	case errors.Is(err, ErrUnauthorized):
		return Problem{Status: http.StatusUnauthorized, Msg: err.Error()}
	case errors.Is(err, store.ErrNoLeader), errors.Is(err, store.ErrNotLeader):
		return Problem{Status: http.StatusServiceUnavailable, Msg: "the cluster has no leader at the moment; retry shortly"}
	case errors.Is(err, store.ErrOutcomeUnknown):
		// The write may or may not have happened: the client must read
		// before it retries.
		return Problem{Status: http.StatusServiceUnavailable, Msg: err.Error()}
	}
	if st, ok := kindStatus[store.KindOf(err)]; ok {
		return Problem{Status: st, Msg: err.Error()}
	}
	return Problem{Status: http.StatusInternalServerError, Msg: "An unexpected error prevented the server from fulfilling your request."}
}

// StatusOf is the status ProblemOf gives err.
func StatusOf(err error) int { return ProblemOf(err).Status }

// Fail writes err with ew. A failure of the server logs its cause once,
// with the request id, since the client is not told it; a 503 (no leader,
// an unknown outcome) is a warning, and a 501 (a feature not built) is an
// answer, not a failure.
func Fail(w http.ResponseWriter, r *http.Request, ew ErrorWriter, err error) {
	p := ProblemOf(err)
	switch {
	case p.Status == http.StatusNotImplemented:
	case p.Status == http.StatusServiceUnavailable:
		Logger(r.Context()).Warn("request failed", "method", r.Method, "path", r.URL.Path, "status", p.Status, "err", err)
	case p.Status >= 500:
		Logger(r.Context()).Error("request failed", "method", r.Method, "path", r.URL.Path, "status", p.Status, "err", err)
	}
	ew(w, r, p)
}
