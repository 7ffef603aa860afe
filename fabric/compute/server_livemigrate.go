package compute

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/scheduler"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// Nova's live migration (os-migrateLive, admin): the guest keeps running
// while QEMU copies its memory, and its local root disk (block
// migration), to another host, then runs there. The server shows
// MIGRATING (task_state migrating) throughout and ACTIVE (or PAUSED) on
// its new host after; its migration record, of type live-migration, is
// listed by os-migrations and, while it runs, by the server's
// migrations (2.23), which an admin may abort (2.24) or force to
// complete (2.22).
//
// The steps, each one Raft command keyed by Live.Seq (the log index of
// the first), the nodes' parts in node/instances/livemigrate.go:
//
//  1. cmdServerLiveMigrate checks the request (active or paused, no
//     task, no encrypted volume) and schedules as a
//     cold migration does (moveTargets; the admin's host, checked as
//     any): MigrateTo the destination, which holds the server's claim
//     from now on, Live set, task_state migrating, the record
//     preparing.
//  2. The source reports its guest's root disk size and plugged disks.
//     The destination makes a blank disk of that size for a local root
//     disk, the taps and config drive, starts QEMU waiting for the
//     stream (-incoming defer, paused), its volumes (a boot volume too)
//     as placeholders (nothing opened), and serves the blank disk over
//     NBD: step prepared with the addresses; the record running.
//  3. The source mirrors a local disk into that export, then runs QEMU's
//     migration; QEMU stops at pre-switchover, the mirror is ended in
//     sync, and the migration finishes: the source's guest is stopped
//     for good. Step switched (from the source, or from the
//     destination, whose QEMU saw the stream complete) gives the server
//     to the destination: Host, the volumes' attachments (whose export
//     there takes each volume's writer fence), and the ports after the
//     command.
//  4. The destination opens the volumes' exports (the new fence), puts
//     them under the placeholders, ends its NBD server and lets the
//     guest run: step done, task_state none, the record completed.
//
// Failure and the unknown: the source reports failed (or cancelled,
// after an abort) only when its QEMU says the migration failed or was
// cancelled, or was never started: then the destination never ran the
// guest and the source's guest runs on; the server stays where it was,
// ACTIVE, the record error, and the destination, no longer named,
// removes what it made as any guest not its own. The destination
// reports failed only before it is prepared. A rackd that dies
// mid-way asks QEMU (which outlives it) where the migration is on its
// next pass and carries on from there; nothing is undone on a guess. A
// switched server is never given back: a step of a run that is over,
// or from a node the run does not name, changes nothing.
//
// Until the switched command commits, the destination's guest never
// runs (its QEMU waits paused, -S) and the source's can always run on:
// QEMU resumes a source whose migration failed, or even completed
// (cont), so a failure or an abort from either node before the switch
// is safe to take whatever QEMU did meanwhile. After it, only the
// destination's guest may run.
//
// Two writers: a volume is exported by one node at a time, the one its
// attachment names, which takes its writer fence; until the switched
// command the destination's QEMU has placeholders (null nodes, opened
// by no one) where the volumes go. The switched command is proposed
// only once QEMU's migration has completed, when the source's guest is
// stopped for good and its block layer flushed and inactive; only then
// does the attachment move, the destination's export fence the source
// off (a late write of the source is refused), and the destination's
// guest run.

const (
	liveMigrateRule   = "os_compute_api:os-migrate-server:migrate_live"
	migrationsIndex   = "os_compute_api:servers:migrations:index"
	migrationsShow    = "os_compute_api:servers:migrations:show"
	migrationsDelete  = "os_compute_api:servers:migrations:delete"
	migrationsForce   = "os_compute_api:servers:migrations:force_complete"
	liveMigrateAction = "os-migrateLive"
)

// liveMigrate is the os-migrateLive action.
func (s *Service) liveMigrate(w http.ResponseWriter, r *http.Request, arg any) error {
	sv, _, err := s.readMovedServer(r, liveMigrateRule, liveMigrateAction)
	if err != nil {
		return err
	}
	host, shared, err := readLiveMigrate(r, arg)
	if err != nil {
		return err
	}
	if err := checkActionable(sv, true, liveMigrateAction, vmActive, vmPaused); err != nil {
		return err
	}
	if shared && sv.BootVolume == "" {
		// A local root disk has no shared storage to migrate it over
		// (Nova's pre-check, after the state's).
		return badRequest("Migration pre-check error: Live migration can not be used without shared storage except a booted from volume VM which does not have a local disk.")
	}
	if err := liveMigratable(r.Context(), s, sv); err != nil {
		return err
	}
	if host == sv.Host {
		return badRequest("Unable to migrate instance (%s) to current host (%s).", sv.ID, host)
	}
	hosts, err := s.moveTargets(r, sv, host)
	if err != nil {
		return err
	}
	if err := otherHostUp(hosts, sv.Host); err != nil {
		return err
	}
	c := serverLiveMigrateCmd{moveCmd: s.newMove(r, sv.ID, host, hosts)}
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdServerLiveMigrate, c, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// readLiveMigrate checks os-migrateLive's body as Nova's schema does at
// the request's microversion and returns the host asked for ("" for
// the scheduler's choice) and whether a migration over shared storage
// (block_migration false) was asked for.
func readLiveMigrate(r *http.Request, arg any) (host string, shared bool, err error) {
	o, ok := arg.(map[string]any)
	if !ok {
		return "", false, badField(liveMigrateAction, arg, "%s is not of type 'object'", api.Text(arg))
	}
	allowed := []string{"host", "block_migration"}
	required := []string{"host", "block_migration"}
	switch {
	case !atLeast(r, 25):
		allowed = append(allowed, "disk_over_commit")
		required = append(required, "disk_over_commit")
	case atLeast(r, 30) && !atLeast(r, 68):
		allowed = append(allowed, "force")
	}
	if err := allowOnly(o, allowed...); err != nil {
		return "", false, err
	}
	for _, k := range required {
		if _, ok := o[k]; !ok {
			return "", false, badField(liveMigrateAction, arg, "'%s' is a required property", k)
		}
	}
	bm := o["block_migration"]
	if _, isBool := asBool(bm); !isBool && !(atLeast(r, 25) && bm == "auto") {
		if atLeast(r, 25) {
			return "", false, badField("block_migration", bm, "%s is not one of ['auto'] or of type 'boolean'", api.Text(bm))
		}
		return "", false, badField("block_migration", bm, "%s is not of type 'boolean'", api.Text(bm))
	}
	if b, _ := asBool(bm); bm != "auto" && !b {
		shared = true
	}
	if v, ok := o["disk_over_commit"]; ok {
		if _, isBool := asBool(v); !isBool {
			return "", false, badField("disk_over_commit", v, "%s is not of type 'boolean'", api.Text(v))
		}
	}
	if v, ok := o["force"]; ok {
		if _, isBool := asBool(v); !isBool {
			return "", false, badField("force", v, "%s is not of type 'boolean'", api.Text(v))
		}
	}
	switch h := o["host"].(type) {
	case nil:
		return "", shared, nil
	case string:
		if h == "" || len(h) > 255 {
			return "", false, badField("host", h, "'%s' is too short or too long", h)
		}
		return h, shared, nil
	default:
		return "", false, badField("host", h, "%s is not of type 'string', 'null'", api.Text(h))
	}
}

// asBool is Nova's boolean parameter: true or false, or the strings
// and numbers oslo's strutils reads as one.
func asBool(v any) (bool, bool) {
	switch b := v.(type) {
	case bool:
		return b, true
	case string:
		switch strings.ToLower(b) {
		case "true", "yes", "on", "1", "y", "t":
			return true, true
		case "false", "no", "off", "0", "n", "f":
			return false, true
		}
	case float64:
		if b == 0 || b == 1 {
			return b == 1, true
		}
	}
	return false, false
}

// liveMigratable refuses what this cloud's live migration cannot move:
// encrypted volumes (their LUKS layer cannot sit on a placeholder). A
// volume still attaching or detaching moves with the server: its
// attachment names the new host at the switch, whose volume agent then
// plugs or unplugs it.
func liveMigratable(ctx context.Context, s *Service, sv *Server) error {
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return err
	}
	for _, v := range volstate.VolumesOfServer(tx, sv.ID) {
		if v.Key != "" {
			return badRequest("Migration pre-check error: live migration of a server with an encrypted volume (%s) is not supported by this cloud.", v.ID)
		}
	}
	return nil
}

type serverLiveMigrateCmd struct {
	moveCmd
}

func liveMigrateEvents(c serverLiveMigrateCmd) eventMeta {
	return c.events(computestate.ActionLiveMigration)
}

func applyServerLiveMigrate(tx *memdb.Txn, c serverLiveMigrateCmd) (any, error) {
	old := store.Get[Server](tx, tServers, c.ID)
	if old == nil || old.Hidden {
		return nil, serverNotFound(c.ID)
	}
	if isBaremetal(old) {
		return nil, badRequest("%s is not supported for bare-metal servers.", liveMigrateAction)
	}
	if err := localDiskMove(old, "live-migrate"); err != nil {
		return nil, err
	}
	if !c.Admin {
		return nil, policyDenied(liveMigrateRule)
	}
	if err := checkActionable(old, c.Admin, liveMigrateAction, vmActive, vmPaused); err != nil {
		return nil, err
	}
	if c.Host == old.Host && c.Host != "" {
		return nil, badRequest("Unable to migrate instance (%s) to current host (%s).", old.ID, c.Host)
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
	req := scheduler.Request{VCPUs: old.Flavor.VCPUs, MemoryMB: old.Flavor.RAM, DiskGB: diskGB(old), AZ: old.AZ, Host: c.Host}
	if old.Group != "" {
		if g := store.Get[ServerGroup](tx, tGroups, old.Group); g != nil {
			req.Group = &scheduler.Group{Policy: g.Policy, Members: g.Members, MaxPerHost: g.MaxPerHost}
		}
	}
	host, err := scheduler.Select(hosts, req, c.Scheduler)
	if errors.Is(err, scheduler.ErrNoValidHost) {
		// Nova's live migration schedules before it answers: no host is
		// its 400, and nothing changes.
		return nil, badRequest("No valid host was found. %s", err.Error())
	}
	if err != nil {
		return nil, err
	}
	if store.Get[Migration](tx, tMigrations, c.MigrationID) != nil {
		return nil, store.Conflictf("migration %s exists", c.MigrationID)
	}
	mig := &Migration{ID: c.MigrationID, Seq: c.index, ServerID: old.ID, Project: old.Project, UserID: c.UserID,
		Type: computestate.MigrationLive, Status: "preparing", SourceCompute: old.Host, DestCompute: host,
		OldFlavorID: old.Flavor.ID, NewFlavorID: old.Flavor.ID, OldFlavorSeq: old.Flavor.Seq, NewFlavorSeq: old.Flavor.Seq,
		Created: c.Now, Updated: c.Now}
	act := &Action{ID: old.ID + "/" + c.RequestID, ServerID: old.ID, Project: old.Project, UserID: c.UserID,
		Action: computestate.ActionLiveMigration, RequestID: c.RequestID, Start: c.Now,
		Events: []ActionEvent{{Event: "conductor_live_migrate_instance", Start: c.Now, Finish: c.Now, Result: "Success"}}}
	s := *old
	s.Updated = c.Now
	s.Migration = mig.ID
	s.MigrateTo = host
	s.Live = &computestate.LiveMigration{Seq: c.index, Source: old.Host, Dest: host}
	setState(&s, s.VMState, computestate.TaskMigrating)
	if err := tx.Insert(tServers, &s); err != nil {
		return nil, err
	}
	if err := tx.Insert(tMigrations, mig); err != nil {
		return nil, err
	}
	return actionResult{Server: s}, tx.Insert(tActions, act)
}

// LiveMigrateStep records a node's step of a live migration; a switch
// binds the server's ports to its new host after the command.
func (s *Service) LiveMigrateStep(ctx context.Context, c computestate.LiveMigrateStepCmd) error {
	c.Now = s.now()
	var res actionResult
	if _, err := api.Propose(ctx, s.cfg.Repl, computestate.CmdLiveMigrateStep, c, &res); err != nil {
		return err
	}
	if c.Step == computestate.LiveSwitched && res.Server.ID != "" && res.Server.Host != "" {
		s.bindPortsTo(ctx, &res.Server, res.Server.Host)
	}
	return nil
}

// applyLiveMigrateStep takes a node's step: only one of the run under
// way, from a node it names, in its order.
func applyLiveMigrateStep(tx *memdb.Txn, c computestate.LiveMigrateStepCmd) (any, error) {
	old := store.Get[Server](tx, tServers, c.ServerID)
	if old == nil {
		return nil, serverNotFound(c.ServerID)
	}
	lm := old.Live
	if lm == nil || lm.Seq != c.Seq || old.Want == "deleted" {
		return actionResult{Server: *old}, nil
	}
	s := *old
	next := *lm
	s.Live = &next
	s.Updated = c.Now
	switched := old.Host == lm.Dest
	migStatus := ""
	var ev *ActionEvent
	switch c.Step {
	case computestate.LiveSource:
		if c.Node != lm.Source || switched || lm.RootBytes != 0 || c.RootBytes <= 0 {
			return actionResult{Server: *old}, nil
		}
		next.RootBytes, next.Disks = c.RootBytes, slices.Clone(c.Disks)
	case computestate.LivePrepared:
		if c.Node != lm.Dest || switched || lm.RootBytes == 0 || c.StreamAddr == "" || (c.DiskAddr == "" && old.BootVolume == "") {
			return actionResult{Server: *old}, nil
		}
		next.StreamAddr, next.DiskAddr = c.StreamAddr, c.DiskAddr
		migStatus = "running"
		ev = &ActionEvent{Event: "compute_pre_live_migration", Start: c.Now, Finish: c.Now, Result: "Success", Host: lm.Dest}
	case computestate.LiveSwitched:
		if (c.Node != lm.Source && c.Node != lm.Dest) || switched {
			return actionResult{Server: *old}, nil
		}
		s.Host, s.MigrateTo = lm.Dest, ""
		if err := moveVolumes(tx, s.ID, lm.Dest, c.Now); err != nil {
			return nil, err
		}
	case computestate.LiveDone:
		if c.Node != lm.Dest || !switched {
			return actionResult{Server: *old}, nil
		}
		s.Live, s.MigrateTo = nil, ""
		setState(&s, s.VMState, "")
		s.Fault = nil
		migStatus = "completed"
		ev = &ActionEvent{Event: "compute_live_migration", Start: c.Now, Finish: c.Now, Result: "Success", Host: lm.Source}
	case computestate.LiveFailed, computestate.LiveCancelled:
		// Before the switch only: a switched guest is never given back.
		// Either node may fail it before: the destination's guest never
		// ran, and the source's runs on (or, stopped by a migration
		// that completed there, is resumed: QEMU allows it).
		if switched || (c.Node != lm.Source && c.Node != lm.Dest) {
			return actionResult{Server: *old}, nil
		}
		s.Live, s.MigrateTo = nil, ""
		setState(&s, s.VMState, "")
		migStatus = "error"
		ev = &ActionEvent{Event: "compute_live_migration", Start: c.Now, Finish: c.Now, Result: "Error", Host: lm.Source,
			Details: cmpOr(c.Fault, "the live migration failed")}
		if c.Step == computestate.LiveCancelled {
			migStatus = "cancelled"
			ev.Result, ev.Details = "Success", ""
		}
	default:
		return nil, store.Invalidf("live migration step %q is not one of source, prepared, switched, done, failed, cancelled", c.Step)
	}
	if migStatus != "" {
		if m := store.Get[Migration](tx, tMigrations, old.Migration); m != nil {
			nm := *m
			nm.Status, nm.Updated = migStatus, c.Now
			if err := tx.Insert(tMigrations, &nm); err != nil {
				return nil, err
			}
		}
		if migStatus != "running" {
			s.Migration = ""
		}
	}
	if ev != nil {
		if a := lastAction(tx, s.ID, computestate.ActionLiveMigration); a != nil {
			na := *a
			na.Events = append(slices.Clone(a.Events), *ev)
			if ev.Result == "Error" {
				na.Message = "Error"
			}
			if err := tx.Insert(tActions, &na); err != nil {
				return nil, err
			}
		}
	}
	return actionResult{Server: s}, tx.Insert(tServers, &s)
}

// liveMigrating says a live migration runs: the nodes' reports then
// give only the guest's power state, the steps the rest.
func liveMigrating(s *Server) bool { return s.Live != nil }

// Server migrations (2.22–2.24): the server's live migration in progress.

// serverMigration is the {migration_id} of the {id} server's live
// migration, for rule (admin), at 2.23 or later (2.22 for
// force_complete's, 2.24 for the abort's).
func (s *Service) serverMigration(r *http.Request, rule string, from int) (*Server, *Migration, error) {
	if !atLeast(r, from) {
		return nil, nil, unknownResource()
	}
	sv, err := s.readServer(r, "")
	if err != nil {
		return nil, nil, err
	}
	if !principal(r).IsAdmin() {
		return nil, nil, policyDenied(rule)
	}
	mid := chi.URLParam(r, "mid")
	if mid == "" {
		return sv, nil, nil
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return nil, nil, err
	}
	for _, m := range store.All[Migration](tx, tMigrations, "server", sv.ID) {
		if strconv.FormatUint(m.Seq, 10) == mid || m.ID == mid {
			return sv, m, nil
		}
	}
	return nil, nil, notFound("Migration %s could not be found for instance %s.", mid, sv.ID)
}

// liveInProgress says whether a migration is a live one still running,
// as Nova's server migrations list them.
func liveInProgress(m *Migration) bool {
	return m.Type == computestate.MigrationLive && (m.Status == "queued" || m.Status == "preparing" || m.Status == "running")
}

// listServerMigrations is GET /servers/{id}/migrations.
func (s *Service) listServerMigrations(w http.ResponseWriter, r *http.Request) error {
	sv, _, err := s.serverMigration(r, migrationsIndex, 23)
	if err != nil {
		return err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	var ms []*Migration
	for _, m := range store.All[Migration](tx, tMigrations, "server", sv.ID) {
		if liveInProgress(m) {
			ms = append(ms, m)
		}
	}
	sortMigrations(ms)
	out := make([]any, 0, len(ms))
	for _, m := range ms {
		out = append(out, serverMigrationView(r, m))
	}
	api.JSON(w, http.StatusOK, map[string]any{"migrations": out})
	return nil
}

// showServerMigration is GET /servers/{id}/migrations/{mid}: Nova's 404
// for one that is not a live migration in progress.
func (s *Service) showServerMigration(w http.ResponseWriter, r *http.Request) error {
	sv, m, err := s.serverMigration(r, migrationsShow, 23)
	if err != nil {
		return err
	}
	if !liveInProgress(m) {
		return notFound("In-progress live migration %s is not found for server %s.", chi.URLParam(r, "mid"), sv.ID)
	}
	api.JSON(w, http.StatusOK, map[string]any{"migration": serverMigrationView(r, m)})
	return nil
}

// serverMigrationView is a live migration as the server's migrations
// show it. The byte counts are not tracked: QEMU's own figures stay on
// the node (Nova shows 0 for what its driver does not report).
func serverMigrationView(r *http.Request, m *Migration) map[string]any {
	v := map[string]any{
		"id": m.Seq, "server_uuid": m.ServerID, "status": m.Status,
		"source_compute": m.SourceCompute, "source_node": m.SourceCompute,
		"dest_compute": m.DestCompute, "dest_node": m.DestCompute, "dest_host": m.DestCompute,
		"memory_total_bytes": 0, "memory_processed_bytes": 0, "memory_remaining_bytes": 0,
		"disk_total_bytes": 0, "disk_processed_bytes": 0, "disk_remaining_bytes": 0,
		"created_at": pyTime(m.Created), "updated_at": pyTime(m.Updated),
	}
	if atLeast(r, 59) {
		v["uuid"] = m.ID
	}
	if atLeast(r, 80) {
		v["user_id"], v["project_id"] = m.UserID, m.Project
	}
	return v
}

// abortServerMigration is DELETE /servers/{id}/migrations/{mid} (2.24):
// the source cancels QEMU's migration, and the server stays where it
// is. Before 2.65 only a running one may be aborted; from 2.65 a
// preparing one too. A migration that has switched over is past
// aborting.
func (s *Service) abortServerMigration(w http.ResponseWriter, r *http.Request) error {
	sv, m, err := s.serverMigration(r, migrationsDelete, 24)
	if err != nil {
		return err
	}
	c := liveFlagCmd{ID: sv.ID, Migration: m.ID, Abort: true, Min65: atLeast(r, 65)}
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdServerLiveFlag, c, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// forceCompleteMigration is POST /servers/{id}/migrations/{mid}/action
// {"force_complete": null} (2.22): the source pauses the guest, so that
// its memory stops changing and the copy ends; the destination runs it.
func (s *Service) forceCompleteMigration(w http.ResponseWriter, r *http.Request) error {
	sv, m, err := s.serverMigration(r, migrationsForce, 22)
	if err != nil {
		return err
	}
	o, err := readRaw(r)
	if err != nil {
		return err
	}
	if _, ok := o["force_complete"]; !ok || len(o) != 1 {
		if err := allowOnly(o, "force_complete"); err != nil {
			return err
		}
		return missing("force_complete")
	}
	if o["force_complete"] != nil {
		return badField("force_complete", o["force_complete"], "%s is not of type 'null'", api.Text(o["force_complete"]))
	}
	c := liveFlagCmd{ID: sv.ID, Migration: m.ID, ForceComplete: true}
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdServerLiveFlag, c, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// liveFlagCmd asks the source of a live migration to abort it or to
// force it to complete.
type liveFlagCmd struct {
	ID            string `json:"id"`
	Migration     string `json:"migration"`
	Abort         bool   `json:"abort,omitempty"`
	ForceComplete bool   `json:"force_complete,omitempty"`
	// Min65: the request's microversion lets a preparing one be aborted.
	Min65 bool `json:"min_65,omitempty"`
}

func applyServerLiveFlag(tx *memdb.Txn, c liveFlagCmd) (any, error) {
	old := store.Get[Server](tx, tServers, c.ID)
	if old == nil || old.Hidden {
		return nil, serverNotFound(c.ID)
	}
	m := store.Get[Migration](tx, tMigrations, c.Migration)
	if m == nil || m.ServerID != old.ID {
		return nil, notFound("Migration %s could not be found for instance %s.", c.Migration, old.ID)
	}
	what := "force_complete"
	if c.Abort {
		what = "abort live migration"
	}
	if old.TaskState != computestate.TaskMigrating || old.Live == nil {
		return nil, stateConflict(what, old.ID, "task_state", cmpOr(old.TaskState, "None"))
	}
	if m.Type != computestate.MigrationLive || old.Migration != m.ID {
		return nil, badRequest("Migration %d for instance %s is not a live migration in progress.", m.Seq, old.ID)
	}
	ok := m.Status == "running" || (c.Abort && c.Min65 && (m.Status == "queued" || m.Status == "preparing"))
	if !ok || old.Host != old.Live.Source {
		status := m.Status
		if old.Host != old.Live.Source {
			status = "post-migrating"
		}
		if c.Abort {
			return nil, badRequest("Migration %d state of instance %s is %s. Cannot abort live migration while the migration is in this state.", m.Seq, old.ID, status)
		}
		return nil, badRequest("Migration %d state of instance %s is %s. Cannot force_complete while the migration is in this state.", m.Seq, old.ID, status)
	}
	s := *old
	lm := *old.Live
	lm.Abort = lm.Abort || c.Abort
	lm.ForceComplete = lm.ForceComplete || c.ForceComplete
	s.Live = &lm
	return actionResult{Server: s}, tx.Insert(tServers, &s)
}
