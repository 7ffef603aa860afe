package compute

import (
	"context"
	"fmt"
	"net/http"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/store"
)

// Nova's server password (os-server-password): the password a guest's
// agent (cloudbase-init and the like) posts once to the metadata service
// at /openstack/<version>/password, encrypted with the server's public
// key, kept with the server until its owner reads it and clears it.
// Clearing it does not change the guest's password, as in Nova.

// MaxServerPassword is the most a guest may post.
const MaxServerPassword = computestate.MaxPassword

const (
	passwordShowRule  = "os_compute_api:os-server-password:show"
	passwordClearRule = "os_compute_api:os-server-password:clear"
)

// serverPasswordCmd keeps the password a guest posted (Set), refused
// when one is kept, or clears it.
type serverPasswordCmd struct {
	ID       string    `json:"id"`
	Set      bool      `json:"set,omitempty"`
	Password string    `json:"password,omitempty"`
	Now      time.Time `json:"now"`
}

func applyServerPassword(tx *memdb.Txn, c serverPasswordCmd) (any, error) {
	old := store.Get[Server](tx, tServers, c.ID)
	if old == nil || old.Hidden {
		return nil, serverNotFound(c.ID)
	}
	if c.Set && old.Password != "" {
		return nil, conflict("Server %s already has a password; its owner clears it before another is posted.", c.ID)
	}
	s := *old
	s.Password = ""
	if c.Set {
		s.Password = c.Password
	}
	return nil, tx.Insert(tServers, &s)
}

func (s *Service) showServerPassword(w http.ResponseWriter, r *http.Request) error {
	sv, err := s.readServer(r, passwordShowRule)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"password": sv.Password})
	return nil
}

func (s *Service) clearServerPassword(w http.ResponseWriter, r *http.Request) error {
	sv, err := s.readServer(r, passwordClearRule)
	if err != nil {
		return err
	}
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdServerPassword, serverPasswordCmd{ID: sv.ID, Now: s.now()}, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// SetPassword keeps the password server's guest posted to the metadata
// service (which knows the server by the request's source address): at
// most MaxServerPassword bytes, once until it is cleared (a conflict
// otherwise).
func (s *Service) SetPassword(ctx context.Context, serverID, password string) error {
	if len(password) > MaxServerPassword {
		return fmt.Errorf("a server password is at most %d bytes, not %d: %w", MaxServerPassword, len(password), store.ErrInvalid)
	}
	if password == "" {
		return fmt.Errorf("an empty server password: %w", store.ErrInvalid)
	}
	_, err := api.Propose(ctx, s.cfg.Repl, cmdServerPassword, serverPasswordCmd{ID: serverID, Set: true, Password: password, Now: s.now()}, nil)
	return err
}
