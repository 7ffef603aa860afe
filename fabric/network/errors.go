package network

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Errors are store errors (so they cross the Raft log from the FSM handlers
// to the proposer with their kind) whose message starts with Neutron's
// exception name: "NetworkNotFound: Network x could not be found.".
// writeError splits that name into the body's "type".

// apiError builds an error of status with Neutron type typ.
func apiError(status int, typ, format string, args ...any) error {
	msg := typ + ": " + fmt.Sprintf(format, args...)
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

// badInput is a 400 that names the attribute at fault, as Neutron words it.
func badInput(field, format string, args ...any) error {
	return apiError(http.StatusBadRequest, "HTTPBadRequest", "Invalid input for %s. Reason: %s.", field, strings.TrimSuffix(fmt.Sprintf(format, args...), "."))
}

// invalidInput is Neutron's InvalidInput (400) for a problem of the request
// as a whole.
func invalidInput(format string, args ...any) error {
	return apiError(http.StatusBadRequest, "InvalidInput", "Invalid input for operation: %s.", strings.TrimSuffix(fmt.Sprintf(format, args...), "."))
}

func notFound(kind, id string) error {
	switch kind {
	case "security_group":
		return apiError(http.StatusNotFound, "SecurityGroupNotFound", "Security group %s does not exist", id)
	case "security_group_rule":
		return apiError(http.StatusNotFound, "SecurityGroupRuleNotFound", "Security group rule %s does not exist", id)
	}
	typ := map[string]string{"network": "Network", "subnet": "Subnet", "port": "Port"}[kind]
	return apiError(http.StatusNotFound, typ+"NotFound", "%s %s could not be found.", typ, id)
}

func policyDenied(action string) error {
	return apiError(http.StatusForbidden, "PolicyNotAuthorized", "(rule:%s) is disallowed by policy.", action)
}

var typeName = regexp.MustCompile(`^[A-Z][A-Za-z0-9]+$`)

// writeError writes Neutron's error body.
func writeError(w http.ResponseWriter, _ *http.Request, p api.Problem) {
	status, msg := p.Status, p.Msg
	typ := p.Fault
	if name, rest, ok := strings.Cut(msg, ": "); typ == "" && ok && typeName.MatchString(name) {
		typ, msg = name, rest
	}
	if typ == "" {
		typ = map[int]string{
			http.StatusBadRequest: "HTTPBadRequest", http.StatusUnauthorized: "HTTPUnauthorized", http.StatusForbidden: "HTTPForbidden",
			http.StatusNotFound: "HTTPNotFound", http.StatusMethodNotAllowed: "HTTPMethodNotAllowed", http.StatusConflict: "HTTPConflict",
			http.StatusRequestEntityTooLarge: "HTTPRequestEntityTooLarge", http.StatusServiceUnavailable: "HTTPServiceUnavailable",
		}[status]
		if typ == "" {
			typ = "HTTPInternalServerError"
		}
	}
	api.JSON(w, status, map[string]any{"NeutronError": map[string]any{"type": typ, "message": msg, "detail": ""}})
}
