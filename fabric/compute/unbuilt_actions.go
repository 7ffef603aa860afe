package compute

import (
	"net/http"
)

// unbuiltAction is a server action of Nova's API reference ("Servers -
// run an action") this cloud does not have: the policy rule Nova checks
// for it and whether that rule is admin-only by default.
type unbuiltAction struct {
	rule  string
	admin bool
}

// unbuiltActions are Nova's documented server actions not built here. A
// client asking for one is told it is not implemented (501), after the
// server is found and the caller's right to act on it checked as for the
// actions that exist; a key Nova does not document stays 400.
var unbuiltActions = map[string]unbuiltAction{
	"changePassword":     {rule: "os_compute_api:os-admin-password"},
	"trigger_crash_dump": {rule: "os_compute_api:servers:trigger_crash_dump"},
	"os-getSPICEConsole": {rule: "os_compute_api:os-remote-consoles"},
	"os-getRDPConsole":   {rule: "os_compute_api:os-remote-consoles"},
	"injectNetworkInfo":  {rule: "os_compute_api:os-admin-actions:inject_network_info", admin: true},
	"resetNetwork":       {rule: "os_compute_api:os-admin-actions:reset_network", admin: true},
	"addFixedIp":         {rule: "os_compute_api:os-multinic:add"},
	"removeFixedIp":      {rule: "os_compute_api:os-multinic:remove"},
}

// otherAction answers an action key serverAction has no handler for: a
// bare-metal server's refusal of what only a VM can do, 501 for Nova's
// documented actions not built, 400 for any other key.
func (s *Service) otherAction(r *http.Request, key string) error {
	if vmOnlyActions[key] {
		if sv, err := s.readServer(r, ""); err == nil && isBaremetal(sv) {
			return badRequest("%s is not supported for bare-metal servers.", key)
		}
	}
	u, ok := unbuiltActions[key]
	if !ok {
		return badRequest("There is no such action: %s", key)
	}
	if _, err := s.readServer(r, u.rule); err != nil {
		return err
	}
	if u.admin && !principal(r).IsAdmin() {
		return policyDenied(u.rule)
	}
	return notImplemented("The server action %s is not implemented by this cloud.", key)
}
