package baremetal

import (
	"encoding/json"
	"net/http"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Errors are store errors (so they cross the Raft log with their kind) or
// api errors for the statuses the store has no kind for (406, 504). Their
// text is Ironic's message.

func badRequestf(format string, args ...any) error { return store.Invalidf(format, args...) }

func conflictf(format string, args ...any) error { return store.Conflictf(format, args...) }

func notFoundf(format string, args ...any) error { return store.NotFoundf(format, args...) }

func nodeNotFound(id string) error { return notFoundf("Node %s could not be found.", id) }

func portNotFound(id string) error { return notFoundf("Port %s could not be found.", id) }

// nodeLocked is Ironic's NodeLocked, for a node whose conductor is at
// work on it.
func nodeLocked(id, state string) error {
	return conflictf("Node %s is locked by its conductor while it is in state %q, please retry after the current operation is completed.", id, state)
}

// policyDenied is the 403 of a route whose role the caller lacks: every
// baremetal rule needs admin.
func policyDenied(rule string) error {
	return store.Forbiddenf("Access was denied to the following resource: %s", rule)
}

// wording words the kit's input errors as Ironic's API validation does.
type wording struct{}

func (wording) BadField(field string, v any, reason string) error {
	return &api.Error{Status: http.StatusBadRequest, Field: field,
		Msg: "Invalid input for field/attribute " + field + ". Value: '" + api.Text(v) + "'. " + reason}
}

func (wording) Missing(field string) error {
	return &api.Error{Status: http.StatusBadRequest, Field: field,
		Msg: "Invalid input for field/attribute " + field + ". Value: 'None'. Mandatory field missing."}
}

// writeError writes Ironic's error body: the fault is a JSON document
// carried as a string inside "error_message", as ironic's WSME layer does
// and python-ironicclient parses.
func writeError(w http.ResponseWriter, _ *http.Request, p api.Problem) {
	code := "Client"
	if p.Status >= 500 {
		code = "Server"
	}
	inner, _ := json.Marshal(map[string]any{"faultstring": p.Msg, "faultcode": code, "debuginfo": nil})
	api.JSON(w, p.Status, map[string]any{"error_message": string(inner)})
}
