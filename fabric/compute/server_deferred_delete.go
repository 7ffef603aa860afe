package compute

import "net/http"

// Nova's os-deferred-delete actions. This cloud has no deferred delete (as
// Nova with its default reclaim_instance_interval of 0): a deleted server
// goes at once and is never SOFT_DELETED. So forceDelete is a delete of a
// server in any state, and restore, which Nova allows only from
// soft-deleted, is always a conflict.

const (
	forceDeleteRule = "os_compute_api:os-deferred-delete:force"
	restoreRule     = "os_compute_api:os-deferred-delete:restore"
)

// forceDelete deletes a server as DELETE does, answering 202 as Nova's
// action does; a locked server is refused by the delete itself.
func (s *Service) forceDelete(w http.ResponseWriter, r *http.Request, arg any) error {
	sv, err := s.readServer(r, forceDeleteRule)
	if err != nil {
		return err
	}
	if _, err := readActionArg("forceDelete", arg); err != nil {
		return err
	}
	if _, err := s.act(r, sv, "delete", false); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// restore answers what Nova answers for a server that is not
// soft-deleted: a locked server's 409 first, then the state's.
func (s *Service) restore(r *http.Request, arg any) error {
	sv, err := s.readServer(r, restoreRule)
	if err != nil {
		return err
	}
	if _, err := readActionArg("restore", arg); err != nil {
		return err
	}
	if err := refuseLocked(r, sv); err != nil {
		return err
	}
	return stateConflict("restore", sv.ID, "vm_state", sv.VMState)
}
