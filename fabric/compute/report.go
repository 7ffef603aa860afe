package compute

import (
	"context"
	"fmt"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Report records what a node observed of one of its servers. It proposes
// one command, which moves the server's vm_state and clears its
// task_state when the observation completes the task (a stop that
// reached SHUTOFF, a reboot whose sequence number came back, a build
// that reached ACTIVE). Gone, for a deleted server, removes it; its ports
// are then deleted (those this service made) or unbound (the client's).
//
// The bare-metal conductor reports a bare-metal server the same way:
// ACTIVE once its node is deployed (or powered on again), SHUTOFF once
// powered off, ERROR with the fault when a deploy or a tear-down failed,
// and Gone when the node, cleaned, is available again. A reboot is done
// when the node has no power target pending (the conductor need not
// count reboots in Observed.RebootSeq).
func (s *Service) Report(ctx context.Context, serverID string, o Observed) error {
	switch o.Status {
	case "ACTIVE", "SHUTOFF", "PAUSED", "SUSPENDED", "ERROR":
	case "":
		if !o.Gone {
			return fmt.Errorf("report server %s: no status: %w", serverID, store.ErrInvalid)
		}
	default:
		return fmt.Errorf("report server %s: status %q: %w", serverID, o.Status, store.ErrInvalid)
	}
	// A deleted server's ports go before its row, as Nova deallocates the
	// network before it destroys the instance: a client whose `server
	// delete --wait` has returned may delete the network at once.
	released := false
	if o.Gone {
		if sv := s.deletedServer(ctx, serverID); sv != nil {
			s.releasePorts(context.WithoutCancel(ctx), sv)
			released = true
		}
	}
	var res actionResult
	if _, err := api.Propose(ctx, s.cfg.Repl, cmdServerReport, serverReportCmd{ID: serverID, Observed: o, Now: s.now(), RequestID: requestID(ctx)}, &res); err != nil {
		return fmt.Errorf("report server %s: %w", serverID, err)
	}
	if res.Removed && !released {
		s.releasePorts(context.WithoutCancel(ctx), &res.Server)
	}
	if sv := res.Server; o.Node != "" && sv.MigrateFrom == o.Node && sv.Host != o.Node {
		// The source's report gave a migrating server to its new host
		// (server_migrate.go): its ports follow it.
		s.bindPortsTo(ctx, &sv, sv.Host)
	}
	return nil
}

// deletedServer is the server if it is there and asked to be deleted, and
// nil if it is not or cannot be read (the ports then go after the row).
func (s *Service) deletedServer(ctx context.Context, id string) *Server {
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return nil
	}
	sv := store.Get[Server](tx, tServers, id)
	if sv == nil || sv.Want != "deleted" {
		return nil
	}
	return sv
}
