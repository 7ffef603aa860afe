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

// writeError writes Cinder's error body: {"<fault>": {"code", "message"}}.
// An exceeded quota is 413 in Cinder (the kit's over-quota kind is 403,
// Nova's and Keystone's status).
func writeError(w http.ResponseWriter, _ *http.Request, p api.Problem) {
	if p.Fault == volstate.FaultOverLimit {
		p.Status = http.StatusRequestEntityTooLarge
	}
	api.WriteWSGIError(w, p.Status, api.WSGIFault(p.Status), p.Msg)
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

// missingMarker is Cinder's answer to a list marker the caller has no
// row of.
func missingMarker(marker string) error {
	return store.Fault(store.KindNotFound, "itemNotFound", "Marker %s could not be found.", marker)
}

// readAction reads the body of a POST …/action: an object holding
// exactly one action, its name and its argument.
func readAction(r *http.Request) (string, any, error) {
	top, err := api.ReadObject(r)
	if err != nil {
		return "", nil, err
	}
	if len(top) != 1 {
		return "", nil, badRequest("Invalid request body: exactly one action is expected, got %d.", len(top))
	}
	var action string
	var arg any
	for action, arg = range top {
	}
	return action, arg, nil
}
