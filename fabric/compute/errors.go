package compute

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Errors carry Nova's fault name (the key of its error body) as data: a
// store.ApplyError's Fault when the error may cross the Raft log, an
// api.Error's before anything is proposed. Without one, the key follows
// the status.

// faultNames are the keys of Nova's error bodies this service writes.
var faultNames = map[string]bool{
	"badRequest": true, "unauthorized": true, "forbidden": true, "itemNotFound": true, "badMethod": true,
	"notAcceptable": true, "conflictingRequest": true, "overLimit": true, "notImplemented": true,
	"computeFault": true, "serviceUnavailable": true,
}

// writeError writes Nova's error body: {"<fault>": {"code", "message"}}.
// Fault names of other services (a port error of the network service
// passed through) are not Nova's: the key then follows the status.
func writeError(w http.ResponseWriter, _ *http.Request, p api.Problem) {
	name := p.Fault
	if !faultNames[name] {
		name = api.WSGIFault(p.Status)
	}
	api.WriteWSGIError(w, p.Status, name, p.Msg)
}

func badRequest(format string, args ...any) error {
	return store.Fault(store.KindInvalid, "", format, args...)
}

// badField is Nova's schema-validation 400, naming the attribute.
func badField(field string, value any, reason string, args ...any) error {
	msg := fmt.Sprintf("Invalid input for field/attribute %s. Value: %s. %s", field, api.Text(value), fmt.Sprintf(reason, args...))
	return &store.ApplyError{Kind: store.KindInvalid, Field: field, Msg: msg}
}

// missing is Nova's 400 for a required attribute that is absent.
func missing(field string) error {
	msg := fmt.Sprintf("Invalid input for field/attribute %s. Value: None. '%s' is a required property", field, field)
	return &store.ApplyError{Kind: store.KindInvalid, Field: field, Msg: msg}
}

func notFound(format string, args ...any) error {
	return store.Fault(store.KindNotFound, "", format, args...)
}

func conflict(format string, args ...any) error {
	return store.Fault(store.KindConflict, "", format, args...)
}

func forbidden(format string, args ...any) error {
	return store.Fault(store.KindForbidden, "", format, args...)
}

// overQuota is Nova's 403 for a quota a request would exceed.
func overQuota(format string, args ...any) error {
	return store.Fault(store.KindOverQuota, "overLimit", format, args...)
}

// notImplemented is Nova's 501 for what this cloud does not do.
func notImplemented(format string, args ...any) error {
	return &api.Error{Status: http.StatusNotImplemented, Msg: fmt.Sprintf(format, args...)}
}

// unknownResource is Nova's 404 for a path (or a path at a microversion)
// that does not exist.
func unknownResource() error {
	return &api.Error{Status: http.StatusNotFound, Msg: "The resource could not be found."}
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

// checkActionable refuses action on s as Nova's check_instance_lock and
// check_instance_state do, inside the command that acts: s locked (but
// for an admin), in none of vmStates, or with a task running; and a
// server never placed on a host, which has no guest to act on.
func checkActionable(s *Server, admin bool, action string, vmStates ...string) error {
	switch {
	case s.Locked && !admin:
		return serverLocked(s.ID)
	case !slices.Contains(vmStates, s.VMState):
		return stateConflict(action, s.ID, "vm_state", s.VMState)
	case s.TaskState != "":
		return stateConflict(action, s.ID, "task_state", s.TaskState)
	case s.Host == "":
		return conflict("Cannot '%s' instance %s: it was never placed on a host.", action, s.ID)
	}
	return nil
}

// stateConflict is Nova's InstanceInvalidState.
func stateConflict(action, id, attr, state string) error {
	return conflict("Cannot '%s' instance %s while it is in %s %s", action, id, attr, state)
}
