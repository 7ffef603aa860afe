package compute

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Errors are store errors (so they cross the Raft log from the FSM handlers
// to the proposer with their kind) whose message may start with Nova's
// fault name ("overLimit: Quota exceeded ..."); writeError turns that name
// into the body's key. Without one, the key follows the status.

// faultNames are the keys of Nova's error bodies this service writes.
var faultNames = map[string]bool{
	"badRequest": true, "unauthorized": true, "forbidden": true, "itemNotFound": true, "badMethod": true,
	"notAcceptable": true, "conflictingRequest": true, "overLimit": true, "notImplemented": true,
	"computeFault": true, "serviceUnavailable": true,
}

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

// writeError writes Nova's error body: {"<fault>": {"code", "message"}}.
func writeError(w http.ResponseWriter, _ *http.Request, p api.Problem) {
	status, msg := p.Status, p.Msg
	name := faultFor(status)
	if faultNames[p.Fault] {
		name = p.Fault
	} else if n, rest, ok := strings.Cut(msg, ": "); ok && faultNames[n] {
		name, msg = n, rest
	}
	if status == http.StatusUnauthorized {
		// keystonemiddleware answers 401s in front of Nova, in its format.
		api.JSON(w, status, map[string]any{"error": map[string]any{"code": status, "title": "Unauthorized", "message": msg}})
		return
	}
	api.JSON(w, status, map[string]any{name: map[string]any{"code": status, "message": msg}})
}

// apiError builds an error of status whose body key is name ("" for the
// status's own).
func apiError(status int, name, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if name != "" {
		msg = name + ": " + msg
	}
	switch status {
	case http.StatusNotFound:
		return store.NotFoundf("%s", msg)
	case http.StatusConflict:
		return store.Conflictf("%s", msg)
	case http.StatusForbidden:
		return store.Forbiddenf("%s", msg)
	case http.StatusBadRequest:
		return store.Invalidf("%s", msg)
	}
	return api.Errorf(status, "%s", msg)
}

func badRequest(format string, args ...any) error {
	return apiError(http.StatusBadRequest, "", format, args...)
}

// badField is Nova's schema-validation 400, naming the attribute.
func badField(field string, value any, reason string, args ...any) error {
	return badRequest("Invalid input for field/attribute %s. Value: %s. %s", field, valueText(value), fmt.Sprintf(reason, args...))
}

func notFound(format string, args ...any) error {
	return apiError(http.StatusNotFound, "", format, args...)
}

func conflict(format string, args ...any) error {
	return apiError(http.StatusConflict, "", format, args...)
}

func forbidden(format string, args ...any) error {
	return apiError(http.StatusForbidden, "", format, args...)
}

// overQuota is Nova's 403 for a quota a request would exceed.
func overQuota(format string, args ...any) error {
	return apiError(http.StatusForbidden, "overLimit", format, args...)
}

// policyDenied is Nova's 403 for a rule the caller's roles do not pass.
func policyDenied(rule string) error {
	return forbidden("Policy doesn't allow %s to be performed.", rule)
}

func serverNotFound(id string) error { return notFound("Instance %s could not be found.", id) }

func flavorNotFound(id string) error { return notFound("Flavor %s could not be found.", id) }

func keypairNotFound(user, name string) error {
	return notFound("Keypair %s not found for user %s", name, user)
}

func groupNotFound(id string) error { return notFound("Instance group %s could not be found.", id) }

// stateConflict is Nova's InstanceInvalidState.
func stateConflict(action, id, attr, state string) error {
	return conflict("Cannot '%s' instance %s while it is in %s %s", action, id, attr, state)
}
