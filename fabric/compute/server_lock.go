package compute

import (
	"net/http"

	"github.com/rackstack/rackstack/fabric/api"
)

// Nova's server lock (os-lock-server): a locked server refuses every
// state-changing action by a caller who is not an admin, whoever locked
// it (Nova's check_instance_lock); an admin may act on it. The owner's
// project locks it as "owner", an admin of another project as "admin";
// unlocking a lock someone else holds is for admins only (Nova's
// os_compute_api:os-lock-server:unlock:unlock_override).

const (
	lockRule           = "os_compute_api:os-lock-server:lock"
	unlockRule         = "os_compute_api:os-lock-server:unlock"
	unlockOverrideRule = "os_compute_api:os-lock-server:unlock:unlock_override"
)

// serverLocked is Nova's InstanceIsLocked.
func serverLocked(id string) error { return conflict("Instance %s is locked", id) }

// checkLock refuses an action on a locked server to a caller who is not
// an admin; lock and unlock themselves have their own rules.
func checkLock(s *Server, c serverActionCmd) error {
	if !s.Locked || c.Admin || c.Action == "lock" || c.Action == "unlock" {
		return nil
	}
	return serverLocked(s.ID)
}

// lockerOf is who a caller locks as: "owner" in the server's project,
// "admin" from another.
func lockerOf(c serverActionCmd) string {
	if c.Owner {
		return "owner"
	}
	return "admin"
}

// applyLock locks or unlocks s as c asks; noop says nothing changes (the
// owner locking a server already locked, as Nova returns early).
func applyLock(s *Server, c serverActionCmd) (noop bool, err error) {
	if c.Action == "lock" {
		if s.Locked && c.Owner {
			return true, nil
		}
		s.Locked, s.LockedBy = true, lockerOf(c)
		if c.Reason != "" {
			s.LockedReason = c.Reason
		}
		return false, nil
	}
	if s.LockedBy != "" && s.LockedBy != lockerOf(c) && !c.Admin {
		return false, policyDenied(unlockOverrideRule)
	}
	s.Locked, s.LockedBy, s.LockedReason = false, "", ""
	return false, nil
}

// lockServer answers {"lock": null} and, from 2.73, {"lock":
// {"locked_reason": "..."}}.
func (s *Service) lockServer(w http.ResponseWriter, r *http.Request, arg any) error {
	sv, err := s.readServer(r, lockRule)
	if err != nil {
		return err
	}
	reason := ""
	if atLeast(r, 73) && arg != nil {
		m, ok := arg.(map[string]any)
		if !ok {
			return badField("lock", arg, "%s is not of type 'object', 'null'", api.Text(arg))
		}
		if err := allowOnly(m, "locked_reason"); err != nil {
			return err
		}
		in := newInput(m)
		reason = optStr(in, "locked_reason", 255)
		if in.Err != nil {
			return in.Err
		}
	}
	return s.lockAction(w, r, sv, "lock", reason)
}

// unlockServer answers {"unlock": null}: a lock held by someone else
// (the owner's by an admin, an admin's by the owner) is lifted by an
// admin only.
func (s *Service) unlockServer(w http.ResponseWriter, r *http.Request) error {
	sv, err := s.readServer(r, unlockRule)
	if err != nil {
		return err
	}
	return s.lockAction(w, r, sv, "unlock", "")
}

func (s *Service) lockAction(w http.ResponseWriter, r *http.Request, sv *Server, action, reason string) error {
	p := principal(r)
	ctx := r.Context()
	c := serverActionCmd{ID: sv.ID, Action: action, UserID: p.UserID, RequestID: requestID(ctx), Now: s.now(),
		Admin: p.IsAdmin(), Owner: p.ProjectID == sv.Project, Reason: reason}
	if _, err := api.Propose(ctx, s.cfg.Repl, cmdServerAction, c, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// lockedFor refuses a change to the server of the request to a caller
// who is not an admin while it is locked, once rule lets the caller act
// on it; a server the caller cannot change is left for the handler to
// refuse.
func (s *Service) lockedFor(r *http.Request, rule string) error {
	sv, err := s.readServer(r, rule)
	if err != nil {
		return nil
	}
	return refuseLocked(r, sv)
}

// refuseLocked is Nova's check_instance_lock for a handler that does not
// go through applyServerAction.
func refuseLocked(r *http.Request, sv *Server) error {
	if sv.Locked && !principal(r).IsAdmin() {
		return serverLocked(sv.ID)
	}
	return nil
}
