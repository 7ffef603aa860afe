package network

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Errors are store.ApplyErrors (store.Fault) whose Fault is Neutron's
// exception name ("NetworkNotFound"): they cross the Raft log from the FSM
// handlers to the proposer with their kind and name as data, and
// writeError puts the name in the body's "type".

// badInput is a 400 that names the attribute at fault, as Neutron words it.
func badInput(field, format string, args ...any) error {
	return &store.ApplyError{Kind: store.KindInvalid, Fault: "HTTPBadRequest", Field: field,
		Msg: fmt.Sprintf("Invalid input for %s. Reason: %s.", field, strings.TrimSuffix(fmt.Sprintf(format, args...), "."))}
}

// invalidInput is Neutron's InvalidInput (400) for a problem of the request
// as a whole.
func invalidInput(format string, args ...any) error {
	return store.Fault(store.KindInvalid, "InvalidInput", "Invalid input for operation: %s.", strings.TrimSuffix(fmt.Sprintf(format, args...), "."))
}

func notFound(kind, id string) error {
	switch kind {
	case "security_group":
		return store.Fault(store.KindNotFound, "SecurityGroupNotFound", "Security group %s does not exist", id)
	case "security_group_rule":
		return store.Fault(store.KindNotFound, "SecurityGroupRuleNotFound", "Security group rule %s does not exist", id)
	case "floatingip":
		return store.Fault(store.KindNotFound, "FloatingIPNotFound", "Floating IP %s could not be found", id)
	case "subnetpool":
		return store.Fault(store.KindNotFound, "SubnetPoolNotFound", "Subnet pool %s could not be found.", id)
	case "address_scope":
		return store.Fault(store.KindNotFound, "AddressScopeNotFound", "Address scope %s could not be found.", id)
	case "metering_label":
		return store.Fault(store.KindNotFound, "MeteringLabelNotFound", "Metering label %s does not exist", id)
	case "metering_label_rule":
		return store.Fault(store.KindNotFound, "MeteringLabelRuleNotFound", "Metering label rule %s does not exist", id)
	case "address_group":
		return store.Fault(store.KindNotFound, "AddressGroupNotFound", "Address group %s could not be found.", id)
	case "qos_policy":
		return qosPolicyNotFound(id)
	case "trunk":
		return trunkNotFound(id)
	case "agent":
		return store.Fault(store.KindNotFound, "AgentNotFound", "Agent %s could not be found.", id)
	}
	typ := map[string]string{"network": "Network", "subnet": "Subnet", "port": "Port", "router": "Router"}[kind]
	return store.Fault(store.KindNotFound, typ+"NotFound", "%s %s could not be found.", typ, id)
}

// policyDenied is Neutron's 403 for a policy rule the caller does not
// pass; it is also the routes' Denied.
func policyDenied(action string) error {
	return store.Fault(store.KindForbidden, "PolicyNotAuthorized", "(rule:%s) is disallowed by policy.", action)
}

// faultOfStatus is the type Neutron gives an error that has no name of
// its own: webob's exception for the status.
var faultOfStatus = map[int]string{
	http.StatusBadRequest: "HTTPBadRequest", http.StatusUnauthorized: "HTTPUnauthorized", http.StatusForbidden: "HTTPForbidden",
	http.StatusNotFound: "HTTPNotFound", http.StatusMethodNotAllowed: "HTTPMethodNotAllowed", http.StatusConflict: "HTTPConflict",
	http.StatusPreconditionFailed: "HTTPPreconditionFailed", http.StatusRequestEntityTooLarge: "HTTPRequestEntityTooLarge",
	http.StatusServiceUnavailable: "HTTPServiceUnavailable",
}

// writeError writes Neutron's error body.
func writeError(w http.ResponseWriter, _ *http.Request, p api.Problem) {
	typ := p.Fault
	if typ == "" {
		typ = faultOfStatus[p.Status]
	}
	if typ == "" {
		typ = "HTTPInternalServerError"
	}
	api.JSON(w, p.Status, map[string]any{"NeutronError": map[string]any{"type": typ, "message": p.Msg, "detail": ""}})
}

// badRequest is Neutron's BadRequest for a resource ("Bad router request:
// …").
func badRequest(resource, format string, args ...any) error {
	return store.Fault(store.KindInvalid, "BadRequest", "Bad %s request: %s.", resource, strings.TrimSuffix(fmt.Sprintf(format, args...), "."))
}
