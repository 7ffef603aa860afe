package compute

import (
	"errors"
	"net/http"
	"slices"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/scheduler"
	"github.com/rackstack/rackstack/fabric/store"
)

// Nova's evacuate (admin): a server whose host is down is rebuilt on
// another host. Only when the host's compute service is down: this
// cloud knows that from the node's heartbeats (os-services' state, the
// scheduler's Host.Up; a node is down once it has missed them for the
// cluster's down-after, or once an admin forced its compute service down,
// os_services.go), and answers Nova's 400 "Compute service of X is
// still in use." otherwise.
//
// One command (cmdServerEvacuate) checks the server (vm_state active,
// stopped or error, no task) and schedules another host as a migration
// does (availability zone, room, server group; an admin's host checked);
// all fine, it gives the server to that host, moves its volumes'
// attachments there and starts a rebuild there (RebuildSeq, task_state
// rebuilding), with a migration record of type "evacuation"
// (pre-migrating, then done or failed with the rebuild). The new host's
// agent rebuilds it as any rebuild (node/instances): a server booted
// from an image gets a fresh disk from that image -- its local disk was
// on the lost node, as in Nova without shared storage -- and a server
// booted from a volume boots from that volume, whose data lives in the
// erasure-coded block store and so outlived its node: the new host's
// export takes the volume's writer fence, so a writer on the old node,
// were it still running, is refused. A stopped server is stopped again
// once rebuilt, as Nova keeps the power state. From 2.95 an evacuated
// server is left stopped, as Nova's, and no guest starts on the new
// host: the command gives it the new host stopped, with the rebuild
// (RebuildSeq) still to do, which its next start does there (the agent
// rebuilds a server whose RebuildSeq it has not done before booting
// it), so a guest whose old host was not really gone never runs twice
// until someone starts it. The ports are bound to
// the new host after the command.
//
// The old node, when it comes back, reads the state before it acts (its
// reads wait for the leader's log), finds the server is not its own any
// more and removes its guest, disk and taps as for any server not its
// own; a report it makes of the server is not heard (reports name their
// node; applyServerReport). The volume agent there unexports the
// volumes not attached there. Crash safety is the rebuild's: the command
// is one Raft entry, and the new host's rebuild is keyed by RebuildSeq
// in its instance record.

const evacuateRule = "os_compute_api:os-evacuate"

func (s *Service) evacuate(w http.ResponseWriter, r *http.Request, arg any) error {
	sv, _, err := s.readMovedServer(r, evacuateRule, "evacuate")
	if err != nil {
		return err
	}
	o, ok := arg.(map[string]any)
	if !ok {
		return badField("evacuate", arg, "%s is not of type 'object'", api.Text(arg))
	}
	allowed := []string{"host", "adminPass"}
	if !atLeast(r, 14) {
		allowed = append(allowed, "onSharedStorage")
	}
	if atLeast(r, 29) && !atLeast(r, 68) {
		allowed = append(allowed, "force")
	}
	if err := allowOnly(o, allowed...); err != nil {
		return err
	}
	in := newInput(o)
	host := ""
	if o["host"] != nil {
		host = str(in, "host", false, 1, 255)
	}
	pass := ""
	if o["adminPass"] != nil {
		pass = str(in, "adminPass", false, 0, 255)
	}
	shared := false
	if !atLeast(r, 14) {
		v, has := o["onSharedStorage"]
		b, isBool := v.(bool)
		if !has {
			return badField("onSharedStorage", nil, "'onSharedStorage' is a required property")
		}
		if !isBool {
			return badField("onSharedStorage", v, "%s is not of type 'boolean'", api.Text(v))
		}
		shared = b
	}
	if f, has := o["force"]; has {
		if _, isBool := f.(bool); !isBool {
			return badField("force", f, "%s is not of type 'boolean'", api.Text(f))
		}
	}
	if in.Err != nil {
		return in.Err
	}
	if shared && sv.BootVolume == "" {
		// Nova's InvalidSharedStorage: a local disk is on no shared
		// storage here.
		return badField("onSharedStorage", shared, "Server %s's root disk is not on shared storage: it cannot be evacuated with onSharedStorage.", sv.ID)
	}
	if err := checkActionable(sv, true, computestate.ActionEvacuate, vmActive, vmStopped, vmError); err != nil {
		return err
	}
	hosts, err := s.moveTargets(r, sv, host)
	if err != nil {
		return err
	}
	c := serverEvacuateCmd{moveCmd: s.newMove(r, sv.ID, host, hosts), Stop: atLeast(r, 95)}
	var res actionResult
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdServerEvacuate, c, &res); err != nil {
		return err
	}
	if res.Server.Host != sv.Host {
		s.bindPortsTo(r.Context(), &res.Server, res.Server.Host)
	}
	if !atLeast(r, 14) {
		// Nova answers the admin password before 2.14 (the one given,
		// or one made); there is no agent to set it in the guest.
		if pass == "" {
			pass = randomText(12)
		}
		api.JSON(w, http.StatusOK, map[string]any{"adminPass": pass})
		return nil
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

type serverEvacuateCmd struct {
	moveCmd
	// Stop leaves the server stopped once rebuilt, whatever its state
	// was (2.95).
	Stop bool `json:"stop,omitempty"`
}

func evacuateEvents(c serverEvacuateCmd) eventMeta { return c.events(computestate.ActionEvacuate) }

// hostUp says whether host is up among hosts.
func hostUp(hosts []scheduler.Host, host string) bool {
	for _, h := range hosts {
		if h.Name == host {
			return h.Up
		}
	}
	return false
}

func applyServerEvacuate(tx *memdb.Txn, c serverEvacuateCmd) (any, error) {
	old := store.Get[Server](tx, tServers, c.ID)
	if old == nil || old.Hidden {
		return nil, serverNotFound(c.ID)
	}
	if isBaremetal(old) {
		return nil, badRequest("evacuate is not supported for bare-metal servers.")
	}
	if !c.Admin {
		return nil, policyDenied(evacuateRule)
	}
	if err := checkActionable(old, c.Admin, computestate.ActionEvacuate, vmActive, vmStopped, vmError); err != nil {
		return nil, err
	}
	if hostUp(c.Hosts, old.Host) {
		return nil, badRequest("Compute service of %s is still in use.", old.Host)
	}
	if c.Host == old.Host && c.Host != "" {
		return nil, badField("host", c.Host, "The target host can't be the same one.")
	}
	if err := otherHostUp(c.Hosts, old.Host); err != nil {
		return nil, err
	}
	var hosts []scheduler.Host
	for _, h := range hostsWithUsage(tx, c.Hosts) {
		if h.Name != old.Host {
			hosts = append(hosts, h)
		}
	}
	mig := &Migration{ID: c.MigrationID, Seq: c.index, ServerID: old.ID, Project: old.Project, UserID: c.UserID,
		Type: computestate.MigrationEvacuation, Status: "pre-migrating", SourceCompute: old.Host,
		OldFlavorID: old.Flavor.ID, NewFlavorID: old.Flavor.ID, OldFlavorSeq: old.Flavor.Seq, NewFlavorSeq: old.Flavor.Seq,
		Created: c.Now, Updated: c.Now}
	if store.Get[Migration](tx, tMigrations, mig.ID) != nil {
		return nil, store.Conflictf("migration %s exists", mig.ID)
	}
	act := &Action{ID: old.ID + "/" + c.RequestID, ServerID: old.ID, Project: old.Project, UserID: c.UserID,
		Action: computestate.ActionEvacuate, RequestID: c.RequestID, Start: c.Now}
	req := scheduler.Request{VCPUs: old.Flavor.VCPUs, MemoryMB: old.Flavor.RAM, DiskGB: diskGB(old), AZ: old.AZ, Host: c.Host}
	if old.Group != "" {
		if g := store.Get[ServerGroup](tx, tGroups, old.Group); g != nil {
			req.Group = &scheduler.Group{Policy: g.Policy, Members: g.Members, MaxPerHost: g.MaxPerHost}
		}
	}
	host, err := scheduler.Select(hosts, req, c.Scheduler)
	switch {
	case errors.Is(err, scheduler.ErrNoValidHost):
		// The server stays on its down host; the migration and the
		// action say why.
		mig.Status = "error"
		act.Message = "Error"
		act.Events = []ActionEvent{{Event: "conductor_rebuild_server", Start: c.Now, Finish: c.Now, Result: "Error",
			Details: "No valid host was found. " + err.Error()}}
		if err := tx.Insert(tMigrations, mig); err != nil {
			return nil, err
		}
		return actionResult{Server: *old}, tx.Insert(tActions, act)
	case err != nil:
		return nil, err
	}
	s := *old
	s.Updated = c.Now
	s.Host = host
	s.RebuildSeq++
	if err := moveVolumes(tx, s.ID, host, c.Now); err != nil {
		return nil, err
	}
	mig.DestCompute = host
	act.Events = []ActionEvent{{Event: "conductor_rebuild_server", Start: c.Now, Finish: c.Now, Result: "Success"},
		{Event: "compute_rebuild_instance", Start: c.Now, Host: host}}
	if c.Stop {
		// 2.95: the server is the new host's, stopped, and no guest
		// starts there: its rebuild (RebuildSeq, above) is what its
		// next start does, as any start of a server whose rebuild the
		// node has not done. Nothing is left for the new host to do
		// now, so the migration is done.
		s.Want, s.StopAfterRebuild, s.PowerState = "stopped", false, PowerShutdown
		setState(&s, vmStopped, "")
		mig.Status = "done"
		act.Events[1].Finish, act.Events[1].Result = c.Now, "Success"
	} else {
		s.Migration = mig.ID
		s.StopAfterRebuild = old.VMState == vmStopped
		s.Want = "active"
		setState(&s, s.VMState, "rebuilding")
	}
	if err := tx.Insert(tServers, &s); err != nil {
		return nil, err
	}
	if err := tx.Insert(tMigrations, mig); err != nil {
		return nil, err
	}
	return actionResult{Server: s}, tx.Insert(tActions, act)
}

// evacuateReport ends an evacuation's migration once the new host's
// report ended its rebuild: done, or failed when the rebuild failed.
func evacuateReport(tx *memdb.Txn, s *Server, c serverReportCmd) error {
	if s.Migration == "" || s.TaskState == "rebuilding" {
		return nil
	}
	m := store.Get[Migration](tx, tMigrations, s.Migration)
	if m == nil || m.Type != computestate.MigrationEvacuation {
		return nil
	}
	nm := *m
	nm.Status, nm.Updated = "done", c.Now
	result := "Success"
	if s.VMState == vmError {
		nm.Status, result = "failed", "Error"
	}
	s.Migration = ""
	if err := tx.Insert(tMigrations, &nm); err != nil {
		return err
	}
	if a := lastAction(tx, s.ID, computestate.ActionEvacuate); a != nil {
		na := *a
		na.Events = slices.Clone(a.Events)
		for i := range na.Events {
			if na.Events[i].Event == "compute_rebuild_instance" && na.Events[i].Finish.IsZero() {
				na.Events[i].Finish, na.Events[i].Result = c.Now, result
				if s.Fault != nil && result == "Error" {
					na.Events[i].Details = s.Fault.Message
				}
			}
		}
		if result == "Error" {
			na.Message = "Error"
		}
		return tx.Insert(tActions, &na)
	}
	return nil
}
