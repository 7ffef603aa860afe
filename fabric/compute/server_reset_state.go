package compute

import (
	"net/http"

	"github.com/rackstack/rackstack/fabric/api"
)

// Nova's os-resetState: an admin puts a server stuck in a task or in
// ERROR back to active (or marks it error). As in Nova it changes the
// record only -- vm_state, no task -- not what runs on the node: the
// server's wanted state (Want) stays, so a node still converging (a stop
// under way) goes on and reports where it got to.

const resetStateRule = "os_compute_api:os-admin-actions:reset_state"

// resetStates are the states os-resetState takes.
var resetStates = []string{vmActive, vmError}

// readResetState checks {"os-resetState": {"state": "active"|"error"}}.
func readResetState(arg any) (string, error) {
	m, ok := arg.(map[string]any)
	if !ok {
		return "", badField("os-resetState", arg, "%s is not of type 'object'", api.Text(arg))
	}
	if err := allowOnly(m, "state"); err != nil {
		return "", err
	}
	v, present := m["state"]
	if !present {
		return "", missing("state")
	}
	st, _ := v.(string)
	for _, ok := range resetStates {
		if st == ok {
			return st, nil
		}
	}
	return "", badField("state", v, "%s is not one of ['active', 'error']", api.Text(v))
}

func (s *Service) resetState(w http.ResponseWriter, r *http.Request, arg any) error {
	sv, err := s.readServer(r, resetStateRule)
	if err != nil {
		return err
	}
	p := principal(r)
	if !p.IsAdmin() {
		return policyDenied(resetStateRule)
	}
	state, err := readResetState(arg)
	if err != nil {
		return err
	}
	ctx := r.Context()
	c := serverActionCmd{ID: sv.ID, Action: "resetState", State: state, UserID: p.UserID, RequestID: requestID(ctx),
		Now: s.now(), Admin: true, Owner: p.ProjectID == sv.Project}
	if _, err := api.Propose(ctx, s.cfg.Repl, cmdServerAction, c, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// applyResetState sets the vm_state c asks for, with no task.
func applyResetState(s *Server, c serverActionCmd) error {
	if !c.Admin {
		return policyDenied(resetStateRule)
	}
	switch c.State {
	case vmActive, vmError:
	default:
		return badField("state", c.State, "'%s' is not one of ['active', 'error']", c.State)
	}
	setState(s, c.State, "")
	// A rescued server reset out of rescue boots its own disk when its
	// guest next starts, as Nova's next hard reboot defines the guest
	// without the rescue disk: no unrescue is possible from here.
	s.RescueImage, s.RescueStable = "", false
	return nil
}
