package volume

import (
	"fmt"
	"net/http"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// Errors carry Cinder's fault name (the key of its error body) as data:
// a store.ApplyError's Fault when the error crosses the Raft log, an
// api.Error's before anything is proposed. Without one the key follows
// the status, as Cinder's wsgi Fault does.

func faultFor(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "badRequest"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "itemNotFound"
	case http.StatusMethodNotAllowed:
		return "badMethod"
	case http.StatusNotAcceptable:
		return "notAcceptable"
	case http.StatusConflict:
		return "conflictingRequest"
	case http.StatusRequestEntityTooLarge:
		return "overLimit"
	case http.StatusNotImplemented:
		return "notImplemented"
	case http.StatusServiceUnavailable:
		return "serviceUnavailable"
	}
	return "computeFault"
}

// writeError writes Cinder's error body: {"<fault>": {"code", "message"}}.
// An exceeded quota is 413 in Cinder (the kit's over-quota kind is 403,
// Nova's and Keystone's status).
func writeError(w http.ResponseWriter, _ *http.Request, p api.Problem) {
	if p.Fault == volstate.FaultOverLimit {
		p.Status = http.StatusRequestEntityTooLarge
	}
	if p.Status == http.StatusUnauthorized {
		// keystonemiddleware answers 401s in front of Cinder, in its format.
		api.JSON(w, p.Status, map[string]any{"error": map[string]any{"code": p.Status, "title": "Unauthorized", "message": p.Msg}})
		return
	}
	api.JSON(w, p.Status, map[string]any{faultFor(p.Status): map[string]any{"code": p.Status, "message": p.Msg}})
}

// policyDenied is Cinder's 403 for a rule the caller does not pass.
func policyDenied(rule string) error {
	return &api.Error{Status: http.StatusForbidden, Msg: fmt.Sprintf("Policy doesn't allow %s to be performed.", rule)}
}

func badRequest(format string, args ...any) error {
	return &api.Error{Status: http.StatusBadRequest, Msg: fmt.Sprintf(format, args...)}
}

func notFound(kind, id string) error {
	return store.Fault(store.KindNotFound, "itemNotFound", "%s %s could not be found.", kind, id)
}

// cinderWording words a bad attribute as Cinder's schema validation does.
type cinderWording struct{}

func (cinderWording) BadField(field string, v any, reason string) error {
	return &api.Error{Status: http.StatusBadRequest, Field: field,
		Msg: fmt.Sprintf("Invalid input for field/attribute %s. Value: %s. %s", field, api.Text(v), reason)}
}

func (cinderWording) Missing(field string) error {
	return &api.Error{Status: http.StatusBadRequest, Field: field,
		Msg: fmt.Sprintf("Invalid input for field/attribute %s. Value: None. '%s' is a required property", field, field)}
}

func newInput(o api.Object) *api.Input { return api.NewInput(o, cinderWording{}) }
