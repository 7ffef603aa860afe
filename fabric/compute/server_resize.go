package compute

import (
	"net/http"
	"slices"
	"sort"
	"strconv"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/scheduler"
	"github.com/rackstack/rackstack/fabric/store"
)

// Nova's resize, confirmResize and revertResize of a virtual machine.
//
// A server is resized on the host it runs on (Nova's
// allow_resize_to_same_host; nothing here moves a guest between hosts).
// One command (cmdServerResize) checks the request against the state --
// lock, vm_state active or stopped with no task, a new flavor, a root
// disk not smaller, the project's cores and ram quota for the upsize,
// the host's room for the larger of the two flavors -- and, all fine,
// gives the server the new flavor, keeps the old one (OldFlavor), bumps
// ResizeSeq and opens a migration record (status migrating): status
// RESIZE, task_state resize_finish. Its node's agent powers the guest
// off, grows a local root disk that the new flavor makes larger (a boot
// volume is not touched) and starts the guest again with the new vCPUs
// and RAM -- a stopped server stays stopped, as Nova keeps the power
// state -- then reports with the ResizeSeq done: vm_state resized
// (VERIFY_RESIZE), migration finished. No room on the host is Nova's
// NoValidHost after the API answered 202: the server is left as it was,
// the migration in error and the resize action's event says why.
//
// confirmResize (204) drops the old flavor: ACTIVE, or SHUTOFF for a
// server resized stopped; migration confirmed. revertResize (202)
// restores the old flavor and the node restarts the guest with it
// (REVERT_RESIZE, then ACTIVE or SHUTOFF; migration reverted). A root
// disk the resize grew stays grown: Nova reverts to the disk it kept on
// the source host, and here there is only the one disk, which qcow2
// cannot shrink safely under a guest's filesystem.
//
// While a resize waits for its confirm, quotas count the new flavor (as
// Nova counts an instance's current flavor) and the host keeps the
// larger of the two, so the revert always fits; a revert that upsizes is
// checked against the quota as Nova does.
//
// Every step is one command, and the node's part is keyed by ResizeSeq
// in its instance record, written once the step is done: a rackd that
// restarts in the middle does the step again (power off, grow to at
// least RootGB, start) and reports it, so a resize always ends resized
// (or in ERROR saying why), never half applied.

const (
	resizeRule        = "os_compute_api:servers:resize"
	confirmResizeRule = "os_compute_api:servers:confirm_resize"
	revertResizeRule  = "os_compute_api:servers:revert_resize"
)

// resizeStatus is Nova's status for the resize states, "" for others.
func resizeStatus(vm, task string) string {
	switch {
	case task == computestate.TaskResizeReverting:
		return "REVERT_RESIZE"
	case task == computestate.TaskResizeFinish, task == computestate.TaskResizeMigrating:
		return "RESIZE"
	case vm == computestate.VMResized:
		return "VERIFY_RESIZE"
	}
	return ""
}

// resizeClaim is what a server holds of its host: its flavor, or while a
// resize is not confirmed the larger of its flavors' vCPUs and RAM.
func resizeClaim(s *Server) Flavor {
	f := s.Flavor
	if o := s.OldFlavor; o != nil {
		f.VCPUs, f.RAM = max(f.VCPUs, o.VCPUs), max(f.RAM, o.RAM)
	}
	return f
}

func (s *Service) resize(w http.ResponseWriter, r *http.Request, arg any) error {
	sv, err := s.readServer(r, resizeRule)
	if err != nil {
		return err
	}
	if isBaremetal(sv) {
		return badRequest("resize is not supported for bare-metal servers.")
	}
	m, ok := arg.(map[string]any)
	if !ok {
		return badField("resize", arg, "%s is not of type 'object'", api.Text(arg))
	}
	if err := allowOnly(m, "flavorRef", "OS-DCF:diskConfig"); err != nil {
		return err
	}
	var ref string
	switch v := m["flavorRef"].(type) {
	case nil:
		if _, has := m["flavorRef"]; !has {
			return badField("flavorRef", arg, "'flavorRef' is a required property")
		}
		return badField("flavorRef", v, "None is not of type 'string', 'integer'")
	case string:
		ref = v
	case float64:
		ref = strconv.FormatFloat(v, 'f', -1, 64)
	default:
		return badField("flavorRef", v, "%s is not of type 'string', 'integer'", api.Text(v))
	}
	if ref == "" {
		return badField("flavorRef", ref, "'' is too short")
	}
	p := principal(r)
	c := serverResizeCmd{ID: sv.ID, MigrationID: api.NewUUID(), UserID: p.UserID, RequestID: requestID(r.Context()), Now: s.now(),
		Admin: p.IsAdmin(), Scheduler: s.cfg.Scheduler}
	in := newInput(m)
	var v4, v6, desc *string
	readChangedAttrs(in, &v4, &v6, &c.DiskConfig, &desc)
	if in.Err != nil {
		return in.Err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	f, err := visibleFlavor(tx, p, refID(ref))
	if err != nil {
		return badField("flavorRef", ref, "Unable to locate requested flavor.")
	}
	if computestate.BaremetalClass(f) != "" {
		return badField("flavorRef", ref, "Flavor %s is a bare-metal flavor: a virtual machine cannot be resized to it.", f.ID)
	}
	c.Flavor = *f
	c.Flavor.ExtraSpecs = maps(f.ExtraSpecs)
	if c.Hosts, err = s.schedulerHosts(r.Context()); err != nil {
		return err
	}
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdServerResize, c, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// endResize is confirmResize (204) or revertResize (202).
func (s *Service) endResize(w http.ResponseWriter, r *http.Request, key string, arg any) error {
	rule := confirmResizeRule
	if key == computestate.ActionRevertResize {
		rule = revertResizeRule
	}
	sv, err := s.readServer(r, rule)
	if err != nil {
		return err
	}
	if isBaremetal(sv) {
		return badRequest("%s is not supported for bare-metal servers.", key)
	}
	if _, err := readActionArg(key, arg); err != nil {
		return err
	}
	p := principal(r)
	c := serverResizeEndCmd{ID: sv.ID, Action: key, UserID: p.UserID, RequestID: requestID(r.Context()), Now: s.now(), Admin: p.IsAdmin()}
	var res actionResult
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdServerResizeEnd, c, &res); err != nil {
		return err
	}
	if res.Server.Host != sv.Host {
		// A cold migration reverted: the ports go back with it.
		s.bindPortsTo(r.Context(), &res.Server, res.Server.Host)
	}
	if key == computestate.ActionConfirmResize {
		w.WriteHeader(http.StatusNoContent)
	} else {
		w.WriteHeader(http.StatusAccepted)
	}
	return nil
}

type serverResizeCmd struct {
	ID     string `json:"id"`
	Flavor Flavor `json:"flavor"`
	// DiskConfig, when set, replaces the server's OS-DCF:diskConfig.
	DiskConfig  *string          `json:"disk_config,omitempty"`
	MigrationID string           `json:"migration_id"`
	Hosts       []scheduler.Host `json:"hosts"`
	Scheduler   scheduler.Config `json:"scheduler"`
	UserID      string           `json:"user_id"`
	RequestID   string           `json:"request_id"`
	Admin       bool             `json:"admin,omitempty"`
	Now         time.Time        `json:"now"`
	// index is the command's log index: the migration's integer id.
	index uint64
}

func resizeEvents(c serverResizeCmd) eventMeta {
	return eventMeta{ids: []string{c.ID}, user: c.UserID, request: c.RequestID, action: computestate.ActionResize, now: c.Now}
}

func applyServerResize(tx *memdb.Txn, c serverResizeCmd) (any, error) {
	old := store.Get[Server](tx, tServers, c.ID)
	if old == nil || old.Hidden {
		return nil, serverNotFound(c.ID)
	}
	if isBaremetal(old) || computestate.BaremetalClass(&c.Flavor) != "" {
		return nil, badRequest("resize is not supported for bare-metal servers.")
	}
	if err := checkActionable(old, c.Admin, computestate.ActionResize, vmActive, vmStopped); err != nil {
		return nil, err
	}
	if c.Flavor.ID == old.Flavor.ID {
		return nil, badField("flavorRef", c.Flavor.ID, "Resize requires a flavor change.")
	}
	if old.BootVolume == "" {
		switch {
		case c.Flavor.Disk == 0 && old.Flavor.Disk != 0:
			return nil, badField("flavorRef", c.Flavor.ID, "Resize to zero disk flavor is not allowed.")
		case c.Flavor.Disk < old.Flavor.Disk:
			return nil, badField("flavorRef", c.Flavor.ID, "Resizing to a smaller disk flavor is not allowed: flavor %s has a %d GB root disk, the server's has %d GB.",
				c.Flavor.ID, c.Flavor.Disk, old.Flavor.Disk)
		}
	}
	if eph := ephemeralGB(old); c.Flavor.Ephemeral < eph {
		// Its ephemeral disks stay as they are (localdisks.go): the new
		// flavor must hold them, as Nova's libvirt driver refuses to
		// resize a disk down.
		return nil, badField("flavorRef", c.Flavor.ID, "Unable to resize disk down: flavor %s has %d GB of ephemeral disk, the server's ephemeral disks have %d GB.",
			c.Flavor.ID, c.Flavor.Ephemeral, eph)
	}
	if err := checkQuotaAdd(tx, old.Project, usage{Cores: c.Flavor.VCPUs - old.Flavor.VCPUs, RAM: c.Flavor.RAM - old.Flavor.RAM}); err != nil {
		return nil, err
	}
	s := *old
	s.Updated = c.Now
	s.OldFlavor = &old.Flavor
	s.Flavor = c.Flavor
	s.OldLocalDisks, s.LocalDisks = old.LocalDisks, resizedLocalDisks(old, c.Flavor)
	if s.BootVolume == "" {
		s.RootGB = max(old.RootGB, c.Flavor.Disk)
	}
	mig := &Migration{ID: c.MigrationID, Seq: c.index, ServerID: s.ID, Project: s.Project, UserID: c.UserID, Type: "resize",
		Status: "migrating", SourceCompute: s.Host, DestCompute: s.Host, OldFlavorID: old.Flavor.ID, NewFlavorID: c.Flavor.ID,
		OldFlavorSeq: old.Flavor.Seq, NewFlavorSeq: c.Flavor.Seq,
		Created: c.Now, Updated: c.Now}
	if store.Get[Migration](tx, tMigrations, mig.ID) != nil {
		return nil, store.Conflictf("migration %s exists", mig.ID)
	}
	act := &Action{ID: s.ID + "/" + c.RequestID, ServerID: s.ID, Project: s.Project, UserID: c.UserID,
		Action: computestate.ActionResize, RequestID: c.RequestID, Start: c.Now}
	// The host must hold the larger of both flavors (the others' claims
	// as they are, this server's as it would be).
	var hosts []scheduler.Host
	for _, h := range hostsWithUsage(tx, c.Hosts) {
		if h.Name == s.Host {
			was := resizeClaim(old)
			h.UsedVCPUs -= was.VCPUs
			h.UsedMemoryMB -= was.RAM
			h.UsedDiskGB -= diskGB(old)
			hosts = append(hosts, h)
		}
	}
	claim := resizeClaim(&s)
	req := scheduler.Request{VCPUs: claim.VCPUs, MemoryMB: claim.RAM, DiskGB: diskGB(&s), Host: s.Host}
	if _, err := scheduler.Select(hosts, req, c.Scheduler); err != nil {
		// Nova's NoValidHost of a resize: the server stays as it was and
		// the action says why.
		why := "No valid host was found. "
		if len(hosts) == 0 {
			why += "The server's host " + s.Host + " is not up."
		} else {
			why += err.Error()
		}
		mig.Status = "error"
		act.Message = "Error"
		act.Events = []ActionEvent{{Event: "conductor_migrate_server", Start: c.Now, Finish: c.Now, Result: "Error", Details: why}}
		if err := tx.Insert(tMigrations, mig); err != nil {
			return nil, err
		}
		return actionResult{Server: *old}, tx.Insert(tActions, act)
	}
	set(&s.DiskConfig, c.DiskConfig)
	s.ResizeSeq++
	s.Migration = mig.ID
	setState(&s, s.VMState, computestate.TaskResizeFinish)
	act.Events = []ActionEvent{{Event: "compute_prep_resize", Start: c.Now, Finish: c.Now, Result: "Success", Host: s.Host}}
	if err := tx.Insert(tServers, &s); err != nil {
		return nil, err
	}
	if err := tx.Insert(tMigrations, mig); err != nil {
		return nil, err
	}
	return actionResult{Server: s}, tx.Insert(tActions, act)
}

type serverResizeEndCmd struct {
	ID        string    `json:"id"`
	Action    string    `json:"action"` // confirmResize, revertResize
	UserID    string    `json:"user_id"`
	RequestID string    `json:"request_id"`
	Admin     bool      `json:"admin,omitempty"`
	Now       time.Time `json:"now"`
}

func resizeEndEvents(c serverResizeEndCmd) eventMeta {
	return eventMeta{ids: []string{c.ID}, user: c.UserID, request: c.RequestID, action: c.Action, now: c.Now}
}

// applyServerResizeEnd confirms or reverts the resize a server waits in
// (VERIFY_RESIZE).
func applyServerResizeEnd(tx *memdb.Txn, c serverResizeEndCmd) (any, error) {
	if c.Action != computestate.ActionConfirmResize && c.Action != computestate.ActionRevertResize {
		return nil, store.Invalidf("unknown resize action %q", c.Action)
	}
	old := store.Get[Server](tx, tServers, c.ID)
	if old == nil || old.Hidden {
		return nil, serverNotFound(c.ID)
	}
	if err := checkActionable(old, c.Admin, c.Action, computestate.VMResized); err != nil {
		return nil, err
	}
	mig := store.Get[Migration](tx, tMigrations, old.Migration)
	if mig == nil || old.OldFlavor == nil {
		return nil, badRequest("Instance has not been resized.")
	}
	s := *old
	s.Updated = c.Now
	m := *mig
	m.Updated = c.Now
	act := &Action{ID: s.ID + "/" + c.RequestID, ServerID: s.ID, Project: s.Project, UserID: c.UserID,
		Action: c.Action, RequestID: c.RequestID, Start: c.Now}
	if c.Action == computestate.ActionConfirmResize {
		// A cold migration's source removes its copy now.
		s.OldFlavor, s.Migration, s.MigrateFrom, s.MigrateImage = nil, "", "", ""
		s.OldLocalDisks = nil
		setState(&s, resumedState(&s), "")
		m.Status = "confirmed"
		act.Events = []ActionEvent{{Event: "compute_confirm_resize", Start: c.Now, Finish: c.Now, Result: "Success", Host: s.Host}}
	} else {
		// The revert takes the old flavor back: a downsize undone is an
		// upsize, within the quota as Nova checks it.
		if err := checkQuotaAdd(tx, s.Project, usage{Cores: old.OldFlavor.VCPUs - old.Flavor.VCPUs, RAM: old.OldFlavor.RAM - old.Flavor.RAM}); err != nil {
			return nil, err
		}
		// The guest gets the old flavor back at once: the host still
		// holds the larger of both until the node reports the revert.
		s.Flavor, s.OldFlavor = *old.OldFlavor, nil
		s.LocalDisks, s.OldLocalDisks = old.OldLocalDisks, nil
		if s.MigrateFrom != "" {
			// A cold migration's: back to its source, which kept its
			// disk, with its volumes (server_migrate.go).
			s.Host, s.MigrateFrom, s.MigrateImage = s.MigrateFrom, "", ""
			if err := moveVolumes(tx, s.ID, s.Host, c.Now); err != nil {
				return nil, err
			}
		}
		s.ResizeSeq++
		setState(&s, s.VMState, computestate.TaskResizeReverting)
		m.Status = "reverting"
		act.Events = []ActionEvent{{Event: "compute_revert_resize", Start: c.Now, Finish: c.Now, Result: "Success", Host: s.Host}}
	}
	if err := tx.Insert(tServers, &s); err != nil {
		return nil, err
	}
	if err := tx.Insert(tMigrations, &m); err != nil {
		return nil, err
	}
	return actionResult{Server: s}, tx.Insert(tActions, act)
}

// resumedState is the vm_state a server goes back to after a resize
// ends: stopped when it was resized stopped, as Nova keeps the power
// state, else active.
func resumedState(s *Server) string {
	if s.Want == "stopped" {
		return vmStopped
	}
	return vmActive
}

// resizeReport takes a node's report of a server being resized or
// reverted, or waiting in VERIFY_RESIZE, and says whether it did:
// applyServerReport's other rules then do not apply. A report from
// before the step (a lower ResizeSeq) changes nothing but the power
// state; the step's report finishes it.
func resizeReport(tx *memdb.Txn, s *Server, c serverReportCmd) (bool, error) {
	if s.Want == "deleted" {
		return false, nil
	}
	if s.TaskState == "" && s.VMState == computestate.VMResized {
		return true, nil // waiting for its confirm or revert
	}
	if s.TaskState == computestate.TaskResizeMigrating {
		return migrateReport(tx, s, c)
	}
	revert := s.TaskState == computestate.TaskResizeReverting
	if s.TaskState != computestate.TaskResizeFinish && !revert {
		return false, nil
	}
	o := c.Observed
	if o.ResizeSeq < s.ResizeSeq {
		return true, nil
	}
	ev := ActionEvent{Event: "compute_finish_resize", Start: c.Now, Finish: c.Now, Result: "Success", Host: s.Host}
	action, status := computestate.ActionResize, "finished"
	if m := store.Get[Migration](tx, tMigrations, s.Migration); m != nil && m.Type == computestate.MigrationCold {
		action = computestate.ActionMigrate
	}
	if revert {
		ev.Event, action, status = "compute_finish_revert_resize", computestate.ActionRevertResize, "reverted"
	}
	switch o.Status {
	case "ERROR":
		// The guest could not be restarted with the flavor: Nova's
		// resize in ERROR. It keeps the flavor it has now.
		setState(s, vmError, "")
		s.Fault = &Fault{Code: 500, Message: cmpOr(o.Fault, "the node could not restart the guest with its new flavor"), Created: c.Now}
		s.OldFlavor = nil
		ev.Result, ev.Details, status = "Error", s.Fault.Message, "error"
	case "ACTIVE", "SHUTOFF":
		s.Fault = nil
		if revert {
			setState(s, resumedState(s), "")
		} else {
			setState(s, computestate.VMResized, "")
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
	if status != "finished" {
		s.Migration = ""
	}
	if a := lastAction(tx, s.ID, action); a != nil {
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

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// lastAction is the server's latest instance action named name.
func lastAction(tx *memdb.Txn, server, name string) *Action {
	var out *Action
	for _, a := range store.All[Action](tx, tActions, "server", server) {
		if a.Action == name && (out == nil || !a.Start.Before(out.Start)) {
			out = a
		}
	}
	return out
}

// removeMigrations drops a removed server's migration records (Nova
// soft-deletes them with the instance and lists them no more).
func removeMigrations(tx *memdb.Txn, server string) error {
	for _, m := range store.All[Migration](tx, tMigrations, "server", server) {
		if err := tx.Delete(tMigrations, m); err != nil {
			return err
		}
	}
	return nil
}

// migrationView is a migration as Nova shows it at the request's
// microversion.
func migrationView(r *http.Request, m *Migration) map[string]any {
	v := map[string]any{
		"id": m.Seq, "instance_uuid": m.ServerID, "status": m.Status,
		"source_compute": m.SourceCompute, "source_node": m.SourceCompute, "dest_compute": m.DestCompute, "dest_node": m.DestCompute,
		"dest_host": m.DestCompute, "old_instance_type_id": flavorSeq(m.OldFlavorSeq), "new_instance_type_id": flavorSeq(m.NewFlavorSeq),
		"created_at": pyTime(m.Created), "updated_at": pyTime(m.Updated),
	}
	if atLeast(r, 23) {
		v["migration_type"] = m.Type
	}
	if atLeast(r, 59) {
		v["uuid"] = m.ID
	}
	if atLeast(r, 80) {
		v["user_id"], v["project_id"] = m.UserID, m.Project
	}
	return v
}

// sortMigrations orders migrations newest first, as Nova lists them.
func sortMigrations(ms []*Migration) {
	sort.SliceStable(ms, func(i, j int) bool {
		if !ms[i].Created.Equal(ms[j].Created) {
			return ms[i].Created.After(ms[j].Created)
		}
		return ms[i].Seq > ms[j].Seq
	})
}

// flavorSeq is a flavor's integer id as os-migrations shows it: null
// for a flavor made before those were kept.
func flavorSeq(seq uint64) any {
	if seq == 0 {
		return nil
	}
	return seq
}
