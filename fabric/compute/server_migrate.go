package compute

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/scheduler"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// Nova's cold migration (the migrate action, admin): the server moves to
// another host the scheduler picks (within its availability zone, with
// room for its flavor, as its server group allows; an admin may name the
// host from 2.56, which is checked as any), keeping its flavor, ports and
// volumes, and waits in VERIFY_RESIZE for a confirm or revert as a
// resize does (server_resize.go): the two share the resize's states,
// ResizeSeq, OldFlavor (the same flavor here) and the migration record,
// of type "migration".
//
// The steps, each one command:
//
//  1. cmdServerMigrate checks the request against the state (not
//     locked unless by an admin, vm_state active or stopped, no task)
//     and schedules: no other host up is Nova's NoValidHost, a 400; a
//     host that cannot take it is the resize's NoValidHost after the
//     202 (the server as it was, the migration in error, the action's
//     event saying why). All fine: MigrateTo the host, MigrateImage the
//     image (hidden, made by the API before the command for a local
//     root disk, discarded when the command is refused), ResizeSeq
//     bumped, task_state resize_migrating (RESIZE). The new host holds
//     the server's claim from now on.
//  2. The source's agent powers the guest off and copies its local
//     disk into the image (node/instances/migrate.go), then reports
//     SHUTOFF with the ResizeSeq. That report (migrateReport) gives the
//     server to the new host: Host the new one, MigrateFrom the source,
//     the volumes' attachments moved to the new host (whose export takes
//     each volume's writer fence), ResizeSeq bumped, task_state
//     resize_finish. The ports are bound to the new host after it.
//  3. The new host makes the disk from the image, deletes the image,
//     starts the guest unless it was stopped, and reports with the
//     ResizeSeq: resizeReport's VERIFY_RESIZE, migration finished.
//  4. confirmResize clears MigrateFrom: the source removes its copy as
//     any guest not its own. revertResize gives the server back to
//     MigrateFrom (Host, volumes; ports after the command) with a new
//     ResizeSeq: the source starts the guest from the disk it kept, as
//     a resize's revert, and the new host removes its copy.
//
// Crash safety: each step is one Raft command, and each node's part is
// keyed by ResizeSeq in its instance record, written only once the part
// is done. A rackd that dies in step 2 powers the guest off and copies
// the disk again (an image already active was uploaded: not again); in
// step 3 it makes the disk again unless it was renamed into place
// (made beside, then renamed), and starts the guest. A report lost is
// made again on the next pass (each report carries the ResizeSeq done).
// Reports name their node, and a node that is not the server's host is
// not heard (applyServerReport), so a source that reports late cannot
// undo the move. The source's copy is removed only once a confirm is
// committed, so a migration is never half applied: the server runs (or
// is stopped) on one host, and until the confirm the other keeps what a
// revert needs. A failure the source reports (its disk cannot be
// copied) leaves the server on the source in ERROR, the migration in
// error; one the new host reports leaves it in ERROR there, and the
// source keeps its copy until the server is deleted.

const migrateRule = "os_compute_api:os-migrate-server:migrate"

func (s *Service) migrate(w http.ResponseWriter, r *http.Request, arg any) error {
	sv, p, err := s.readMovedServer(r, migrateRule, "migrate")
	if err != nil {
		return err
	}
	host := ""
	// Before 2.56 Nova validates no body: whatever it is, it is ignored.
	if arg != nil && atLeast(r, 56) {
		o, ok := arg.(map[string]any)
		if !ok {
			return badField("migrate", arg, "%s is not of type 'object', 'null'", api.Text(arg))
		}
		if err := allowOnly(o, "host"); err != nil {
			return err
		}
		if o["host"] != nil {
			in := newInput(o)
			host = str(in, "host", false, 1, 255)
			if in.Err != nil {
				return in.Err
			}
		}
	}
	if err := checkActionable(sv, true, computestate.ActionMigrate, vmActive, vmStopped); err != nil {
		return err
	}
	hosts, err := s.moveTargets(r, sv, host)
	if err != nil {
		return err
	}
	if err := otherHostUp(hosts, sv.Host); err != nil {
		return err
	}
	c := serverMigrateCmd{moveCmd: s.newMove(r, sv.ID, host, hosts)}
	if sv.BootVolume == "" {
		if s.cfg.Snapshots == nil {
			return notImplemented("The server action migrate is not implemented by this cloud.")
		}
		// The source's copy of the disk goes through an image of the
		// server's project, hidden: the new host makes the disk from
		// it, then deletes it.
		if c.Image, err = s.cfg.Snapshots.CreateSnapshot(r.Context(), p, SnapshotImage{Name: sv.Name + "-migrating", Project: sv.Project,
			BaseImage: sv.ImageID, MinDisk: sv.RootGB, Hidden: true,
			Properties: map[string]string{"image_type": "migration", "instance_uuid": sv.ID}}); err != nil {
			return err
		}
	}
	var res actionResult
	_, err = api.Propose(r.Context(), s.cfg.Repl, cmdServerMigrate, c, &res)
	if c.Image != "" && (api.Rejected(err) || (err == nil && res.Server.MigrateImage != c.Image)) {
		// Refused, or not scheduled: nothing will write the image. (An
		// unknown outcome leaves it: the source may be writing it.)
		if derr := s.cfg.Snapshots.Discard(context.WithoutCancel(r.Context()), c.Image); derr != nil {
			s.log.Warn("compute: delete the image of a migration not made", "server", sv.ID, "image", c.Image, "err", derr)
		}
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// readMovedServer reads the server an admin moves to another host with
// action (migrate, evacuate), under rule: a VM, not a bare-metal server.
func (s *Service) readMovedServer(r *http.Request, rule, action string) (*Server, *api.Principal, error) {
	sv, err := s.readServer(r, rule)
	if err != nil {
		return nil, nil, err
	}
	if isBaremetal(sv) {
		return nil, nil, badRequest("%s is not supported for bare-metal servers.", action)
	}
	p := principal(r)
	if !p.IsAdmin() {
		return nil, nil, policyDenied(rule)
	}
	return sv, p, nil
}

// moveTargets are the hosts a server may be moved to, for the scheduler;
// a host the admin names must be one of them and not the server's own.
func (s *Service) moveTargets(r *http.Request, sv *Server, host string) ([]scheduler.Host, error) {
	hosts, err := s.schedulerHosts(r.Context())
	if err != nil {
		return nil, err
	}
	if host != "" {
		if !slices.ContainsFunc(hosts, func(h scheduler.Host) bool { return h.Name == host }) {
			return nil, badField("host", host, "Compute host %s could not be found.", host)
		}
		if host == sv.Host {
			return nil, badField("host", host, "The target host can't be the same one.")
		}
	}
	return hosts, nil
}

// otherHostUp is Nova's NoValidHost, a 400, when no compute host but
// the server's own is up.
func otherHostUp(hosts []scheduler.Host, own string) error {
	for _, h := range hosts {
		if h.Up && h.Name != own {
			return nil
		}
	}
	return badRequest("No valid host was found. No compute host other than %s is up.", own)
}

// moveCmd is what the commands that move a server to another host (cold
// and live migration, evacuation) carry alike. Each embeds it, so its
// fields are the command's own in the log, as they were before.
type moveCmd struct {
	ID string `json:"id"`
	// Host is the admin's choice of host, "" for the scheduler's.
	Host        string           `json:"host,omitempty"`
	MigrationID string           `json:"migration_id"`
	Hosts       []scheduler.Host `json:"hosts"`
	Scheduler   scheduler.Config `json:"scheduler"`
	UserID      string           `json:"user_id"`
	RequestID   string           `json:"request_id"`
	Admin       bool             `json:"admin,omitempty"`
	Now         time.Time        `json:"now"`
	index       uint64
}

func (c *moveCmd) setIndex(i uint64) { c.index = i }

// newMove is an admin's request to move server id to host ("" for the
// scheduler's choice among hosts).
func (s *Service) newMove(r *http.Request, id, host string, hosts []scheduler.Host) moveCmd {
	return moveCmd{ID: id, Host: host, MigrationID: api.NewUUID(), UserID: api.PrincipalFrom(r.Context()).UserID, RequestID: requestID(r.Context()),
		Now: s.now(), Admin: true, Hosts: hosts, Scheduler: s.cfg.Scheduler}
}

// events are the event log's view of the move, as action.
func (c moveCmd) events(action string) eventMeta {
	return eventMeta{ids: []string{c.ID}, user: c.UserID, request: c.RequestID, action: action, now: c.Now}
}

type serverMigrateCmd struct {
	moveCmd
	// Image is the image the source copies a local root disk into.
	Image string `json:"image,omitempty"`
}

func migrateEvents(c serverMigrateCmd) eventMeta { return c.events(computestate.ActionMigrate) }

func applyServerMigrate(tx *memdb.Txn, c serverMigrateCmd) (any, error) {
	old := store.Get[Server](tx, tServers, c.ID)
	if old == nil || old.Hidden {
		return nil, serverNotFound(c.ID)
	}
	if isBaremetal(old) {
		return nil, badRequest("migrate is not supported for bare-metal servers.")
	}
	if err := localDiskMove(old, "migrate"); err != nil {
		return nil, err
	}
	if !c.Admin {
		return nil, policyDenied(migrateRule)
	}
	if err := checkActionable(old, c.Admin, computestate.ActionMigrate, vmActive, vmStopped); err != nil {
		return nil, err
	}
	if (old.BootVolume == "") != (c.Image != "") {
		return nil, store.Invalidf("a migration copies a local root disk through an image, and only it")
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
		Type: computestate.MigrationCold, Status: "migrating", SourceCompute: old.Host,
		OldFlavorID: old.Flavor.ID, NewFlavorID: old.Flavor.ID, OldFlavorSeq: old.Flavor.Seq, NewFlavorSeq: old.Flavor.Seq,
		Created: c.Now, Updated: c.Now}
	if store.Get[Migration](tx, tMigrations, mig.ID) != nil {
		return nil, store.Conflictf("migration %s exists", mig.ID)
	}
	act := &Action{ID: old.ID + "/" + c.RequestID, ServerID: old.ID, Project: old.Project, UserID: c.UserID,
		Action: computestate.ActionMigrate, RequestID: c.RequestID, Start: c.Now}
	req := scheduler.Request{VCPUs: old.Flavor.VCPUs, MemoryMB: old.Flavor.RAM, DiskGB: diskGB(old), AZ: old.AZ, Host: c.Host}
	if old.Group != "" {
		if g := store.Get[ServerGroup](tx, tGroups, old.Group); g != nil {
			req.Group = &scheduler.Group{Policy: g.Policy, Members: g.Members, MaxPerHost: g.MaxPerHost}
		}
	}
	host, err := scheduler.Select(hosts, req, c.Scheduler)
	switch {
	case errors.Is(err, scheduler.ErrNoValidHost):
		// Nova's NoValidHost of a migration after the 202: the server
		// stays as it was and the action says why.
		mig.Status = "error"
		act.Message = "Error"
		act.Events = []ActionEvent{{Event: "conductor_migrate_server", Start: c.Now, Finish: c.Now, Result: "Error",
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
	s.OldFlavor = &old.Flavor
	s.Migration = mig.ID
	s.MigrateTo, s.MigrateImage = host, c.Image
	s.ResizeSeq++
	setState(&s, s.VMState, computestate.TaskResizeMigrating)
	mig.DestCompute = host
	act.Events = []ActionEvent{
		{Event: "conductor_migrate_server", Start: c.Now, Finish: c.Now, Result: "Success"},
		{Event: "compute_prep_resize", Start: c.Now, Finish: c.Now, Result: "Success", Host: host},
	}
	if err := tx.Insert(tServers, &s); err != nil {
		return nil, err
	}
	if err := tx.Insert(tMigrations, mig); err != nil {
		return nil, err
	}
	return actionResult{Server: s}, tx.Insert(tActions, act)
}

// migrateReport takes the source's report of a server it saves for a
// cold migration (task_state resize_migrating) and says whether it did.
// The step's SHUTOFF gives the server to its new host; its ERROR leaves
// the server in ERROR on the source, the migration in error.
func migrateReport(tx *memdb.Txn, s *Server, c serverReportCmd) (bool, error) {
	if s.TaskState != computestate.TaskResizeMigrating || s.Want == "deleted" {
		return false, nil
	}
	o := c.Observed
	if o.ResizeSeq < s.ResizeSeq {
		return true, nil
	}
	ev := ActionEvent{Event: "compute_resize_instance", Start: c.Now, Finish: c.Now, Result: "Success", Host: s.Host}
	status := "post-migrating"
	switch o.Status {
	case "ERROR":
		setState(s, vmError, "")
		s.Fault = &Fault{Code: 500, Message: cmpOr(o.Fault, "the node could not save the guest for its migration"), Created: c.Now}
		s.OldFlavor, s.MigrateTo, s.MigrateImage = nil, "", ""
		ev.Result, ev.Details, status = "Error", s.Fault.Message, "error"
	case "SHUTOFF":
		s.MigrateFrom, s.Host, s.MigrateTo = s.Host, s.MigrateTo, ""
		s.ResizeSeq++
		setState(s, s.VMState, computestate.TaskResizeFinish)
		if err := moveVolumes(tx, s.ID, s.Host, c.Now); err != nil {
			return false, err
		}
	default:
		return true, nil
	}
	if m := store.Get[Migration](tx, tMigrations, s.Migration); m != nil {
		nm := *m
		nm.Status, nm.Updated = status, c.Now
		if err := tx.Insert(tMigrations, &nm); err != nil {
			return false, err
		}
	}
	if status == "error" {
		s.Migration = ""
	}
	if a := lastAction(tx, s.ID, computestate.ActionMigrate); a != nil {
		na := *a
		na.Events = append(slices.Clone(a.Events), ev)
		if ev.Result == "Error" {
			na.Message = "Error"
		}
		if err := tx.Insert(tActions, &na); err != nil {
			return false, err
		}
	}
	return true, nil
}

// moveVolumes moves the attachments of a server's volumes to host: that
// node's volume agent exports them (taking each one's writer fence, so
// the old host's writes are refused) and plugs them into the guest; the
// old host's unexports them.
func moveVolumes(tx *memdb.Txn, server, host string, now time.Time) error {
	for _, v := range volstate.VolumesOfServer(tx, server) {
		if len(v.Attachments) != 1 || v.Attachments[0].Host == host {
			continue
		}
		row := v.Clone()
		row.Attachments[0].Host = host
		row.UpdatedAt = now
		row.Revision++
		if err := tx.Insert(volstate.VolumeTable, row); err != nil {
			return err
		}
	}
	return nil
}

// migratingClaims are, per host, the servers a host holds the claim of
// without being their Host: a cold migration's new host while the
// source saves the server, its source until the migration is confirmed
// or reverted (so that a revert always fits).
func migratingClaims(tx *memdb.Txn) map[string][]*Server {
	out := map[string][]*Server{}
	for _, s := range store.All[Server](tx, tServers, "id") {
		if h := cmp.Or(s.MigrateTo, s.MigrateFrom); h != "" && h != s.Host && s.Baremetal == "" {
			out[h] = append(out[h], s)
		}
	}
	return out
}

// bindPortsTo binds a server's ports to host, its host now: a migration
// or an evacuation moved it there.
func (s *Service) bindPortsTo(ctx context.Context, sv *Server, host string) {
	if s.cfg.Ports == nil || host == "" {
		return
	}
	for _, id := range sv.Ports {
		if err := s.cfg.Ports.Bind(context.WithoutCancel(ctx), id, sv.ID, host); err != nil {
			s.log.Warn("compute: bind the port of a moved server", "server", sv.ID, "port", id, "host", host, "err", err)
		}
	}
}
