package compute

import (
	"cmp"
	"errors"
	"reflect"
	"slices"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/baremetal/bmstate"
	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/scheduler"
	"github.com/rackstack/rackstack/fabric/store"
)

// Servers.

// Nova's vm and task states this service uses.
const (
	vmBuilding  = "building"
	vmActive    = "active"
	vmStopped   = "stopped"
	vmPaused    = "paused"
	vmSuspended = "suspended"
	vmError     = "error"
)

// statusOf is Nova's status for a vm_state and task_state.
func statusOf(vm, task string) string {
	if vm != vmError && vm != vmBuilding {
		switch task {
		case "rebooting":
			return "REBOOT"
		case "rebooting_hard":
			return "HARD_REBOOT"
		}
	}
	if task == computestate.TaskMigrating && (vm == vmActive || vm == vmPaused) {
		return "MIGRATING"
	}
	if task == "rebuilding" && vm != vmBuilding {
		return "REBUILD"
	}
	if st := resizeStatus(vm, task); st != "" {
		return st
	}
	switch vm {
	case vmBuilding:
		return "BUILD"
	case vmActive:
		return "ACTIVE"
	case vmStopped:
		return "SHUTOFF"
	case vmPaused:
		return "PAUSED"
	case vmSuspended:
		return "SUSPENDED"
	case vmError:
		return "ERROR"
	case computestate.VMRescued:
		return "RESCUE"
	case vmShelved:
		return "SHELVED"
	case computestate.VMShelvedOffloaded:
		return "SHELVED_OFFLOADED"
	}
	return "UNKNOWN"
}

func setState(s *Server, vm, task string) {
	s.VMState, s.TaskState, s.Status = vm, task, statusOf(vm, task)
}

// diskGB is what a server claims of its host's disk: root, ephemeral and
// swap.
func diskGB(s *Server) int {
	return max(s.RootGB, s.Flavor.Disk) + s.Flavor.Ephemeral + (s.Flavor.Swap+1023)/1024
}

// hostsWithUsage adds to each host what the servers placed on it claim,
// read from the same transaction that will record the new placement.
func hostsWithUsage(tx *memdb.Txn, hosts []scheduler.Host) []scheduler.Host {
	out := make([]scheduler.Host, len(hosts))
	claims := migratingClaims(tx)
	for i, h := range hosts {
		h.UsedVCPUs, h.UsedMemoryMB, h.UsedDiskGB, h.Servers = 0, 0, 0, nil
		// The API sends each node's own zone; its aggregates' is read
		// here, from the state the placement is recorded in.
		h.AZ = computestate.NodeAZ(tx, h.Name, h.AZ)
		for _, s := range store.All[Server](tx, tServers, "host", h.Name) {
			if s.Baremetal != "" {
				// On a node of its own: its conductor's host gives it
				// nothing.
				continue
			}
			// A resize holds the larger of its flavors until it is
			// confirmed or reverted, so that its revert always fits.
			f := resizeClaim(s)
			h.UsedVCPUs += f.VCPUs
			h.UsedMemoryMB += f.RAM
			h.UsedDiskGB += diskGB(s)
			h.Servers = append(h.Servers, s.ID)
		}
		for _, s := range claims[h.Name] {
			h.UsedVCPUs += s.Flavor.VCPUs
			h.UsedMemoryMB += s.Flavor.RAM
			h.UsedDiskGB += diskGB(s)
			h.Servers = append(h.Servers, s.ID)
		}
		out[i] = h
	}
	return out
}

// place picks a host for a virtual machine with the scheduler, from the
// capacity the servers in the state leave; none is Nova's build failure:
// the server exists, in ERROR, with a fault that says why, holding no
// capacity and no ports.
func place(tx *memdb.Txn, s *Server, group *ServerGroup, c serverCreateCmd) error {
	req := scheduler.Request{VCPUs: s.Flavor.VCPUs, MemoryMB: s.Flavor.RAM, DiskGB: diskGB(s), AZ: s.AZ, Host: c.ForceHost}
	if group != nil {
		req.Group = &scheduler.Group{Policy: group.Policy, Members: group.Members, MaxPerHost: group.MaxPerHost}
	}
	hosts := hostsWithUsage(tx, c.Hosts)
	host, err := scheduler.Select(hosts, req, c.Scheduler)
	switch {
	case errors.Is(err, scheduler.ErrNoValidHost):
		buildFailed(s, err.Error(), c.Now)
	case err != nil:
		return err
	default:
		s.Host = host
		if s.AZ == "" {
			// No zone asked for: any host would do, and the server is
			// in its host's zone from now on, as Nova records it.
			for _, h := range hosts {
				if h.Name == host {
					s.AZ = h.AZ
				}
			}
		}
		setState(s, vmBuilding, "spawning")
	}
	return nil
}

// buildFailed puts a server that found no place in ERROR with the fault
// that says why; it holds no capacity and no ports.
func buildFailed(s *Server, why string, now time.Time) {
	setState(s, vmError, "")
	s.Fault = &Fault{Code: 500, Message: why, Created: now}
	s.Ports, s.CreatedPorts = []string{}, nil
}

type serverCreateCmd struct {
	// Servers are the new rows, building, without a host.
	Servers []Server `json:"servers"`
	// Hosts are the nodes that were up when the request came, with their
	// capacity; what they have in use is read from the state here.
	Hosts     []scheduler.Host `json:"hosts"`
	Scheduler scheduler.Config `json:"scheduler"`
	// ForceHost is an admin's requested host ("" = any).
	ForceHost string    `json:"force_host,omitempty"`
	RequestID string    `json:"request_id"`
	Now       time.Time `json:"now"`
	// Baremetal, for a bare-metal flavor, is the node to claim for each
	// server instead of a host.
	Baremetal *baremetalClaim `json:"baremetal,omitempty"`
	// DeleteBootVolume deletes the server's boot volume with it.
	DeleteBootVolume bool `json:"delete_boot_volume,omitempty"`
	// BootTag is the boot volume attachment's device tag.
	BootTag string `json:"boot_tag,omitempty"`
	// Volumes are data volumes attached to the (one) server as it is
	// created (the legacy block_device_mapping's entries not on vda).
	Volumes []createVolume `json:"volumes,omitempty"`
	// Deferred creates the (one) server without a host, in
	// block_device_mapping: its BlockDevices are made first, then it is
	// placed (serverBuildCmd).
	Deferred bool `json:"deferred,omitempty"`
}

// createVolume is a data volume a create attaches, with the attachment's
// id (made by the API: an apply makes none).
type createVolume struct {
	VolumeID            string `json:"volume_id"`
	AttachmentID        string `json:"attachment_id"`
	DeleteOnTermination bool   `json:"delete_on_termination,omitempty"`
	Tag                 string `json:"tag,omitempty"`
}

func applyServerCreate(tx *memdb.Txn, c serverCreateCmd) (any, error) {
	if len(c.Servers) == 0 {
		return nil, store.Invalidf("no servers to create")
	}
	project := c.Servers[0].Project
	if err := checkServerQuota(tx, project, c.Servers); err != nil {
		return nil, err
	}
	var group *ServerGroup
	if gid := c.Servers[0].Group; gid != "" {
		g := store.Get[ServerGroup](tx, tGroups, gid)
		if g == nil {
			return nil, badRequest("Invalid input for field/attribute group. Value: %s. Instance group %s could not be found.", gid, gid)
		}
		ng := *g
		ng.Members = slices.Clone(g.Members)
		group = &ng
		if limit := quotaLimit(tx, project, "server_group_members"); limit >= 0 && len(group.Members)+len(c.Servers) > limit {
			return nil, overQuota("Quota exceeded, too many servers in group")
		}
	}
	out := make([]Server, 0, len(c.Servers))
	for _, s := range c.Servers {
		if store.Get[Server](tx, tServers, s.ID) != nil {
			return nil, store.Conflictf("server %s exists", s.ID)
		}
		if c.Deferred {
			if s.TaskState != taskBlockDeviceMapping || len(s.BlockDevices) == 0 {
				return nil, store.Invalidf("a deferred create names its block devices")
			}
			if err := reserveVolumes(tx, &s, c.Now); err != nil {
				return nil, err
			}
		} else if c.Baremetal != nil {
			if err := claimNode(tx, &s, c); err != nil {
				return nil, err
			}
		} else if err := place(tx, &s, group, c); err != nil {
			return nil, err
		}
		if err := attachBootVolume(tx, &s, c); err != nil {
			return nil, err
		}
		if err := attachDataVolumes(tx, &s, c); err != nil {
			return nil, err
		}
		if group != nil {
			group.Members = append(group.Members, s.ID)
		}
		if err := tx.Insert(tServers, &s); err != nil {
			return nil, err
		}
		if err := tx.Insert(tActions, &Action{ID: s.ID + "/" + c.RequestID, ServerID: s.ID, Project: s.Project, UserID: s.UserID,
			Action: "create", RequestID: c.RequestID, Start: c.Now}); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	if group != nil {
		if err := tx.Insert(tGroups, group); err != nil {
			return nil, err
		}
	}
	return out, nil
}

type serverUpdateCmd struct {
	ID          string  `json:"id"`
	Name        *string `json:"name,omitempty"`
	Hostname    *string `json:"hostname,omitempty"`
	Description *string `json:"description,omitempty"`
	AccessIPv4  *string `json:"access_ipv4,omitempty"`
	AccessIPv6  *string `json:"access_ipv6,omitempty"`
	DiskConfig  *string `json:"disk_config,omitempty"`
	// Metadata replaces all metadata; MetadataSet merges into it;
	// MetadataDelete removes one key.
	Metadata       *map[string]string `json:"metadata,omitempty"`
	MetadataSet    map[string]string  `json:"metadata_set,omitempty"`
	MetadataDelete string             `json:"metadata_delete,omitempty"`
	MetadataLimit  int                `json:"metadata_limit,omitempty"`
	// AddGroup and RemoveGroup are a security group (by name) added to
	// or removed from the server's ports.
	AddGroup    string    `json:"add_group,omitempty"`
	RemoveGroup string    `json:"remove_group,omitempty"`
	Now         time.Time `json:"now"`
}

func applyServerUpdate(tx *memdb.Txn, c serverUpdateCmd) (any, error) {
	old := store.Get[Server](tx, tServers, c.ID)
	if old == nil || old.Hidden {
		return nil, serverNotFound(c.ID)
	}
	s := *old
	set(&s.Name, c.Name)
	set(&s.HostnameSet, c.Hostname)
	set(&s.Description, c.Description)
	set(&s.AccessIPv4, c.AccessIPv4)
	set(&s.AccessIPv6, c.AccessIPv6)
	set(&s.DiskConfig, c.DiskConfig)
	if c.Metadata != nil || c.MetadataSet != nil || c.MetadataDelete != "" {
		md := map[string]string{}
		if c.Metadata == nil {
			for k, v := range old.Metadata {
				md[k] = v
			}
		} else {
			for k, v := range *c.Metadata {
				md[k] = v
			}
		}
		for k, v := range c.MetadataSet {
			md[k] = v
		}
		if c.MetadataDelete != "" {
			if _, ok := md[c.MetadataDelete]; !ok {
				return nil, notFound("Metadata item was not found")
			}
			delete(md, c.MetadataDelete)
		}
		limit := quotaLimit(tx, s.Project, "metadata_items")
		if limit >= 0 && len(md) > limit {
			return nil, overQuota("Quota exceeded for metadata_items: Requested %d, but already used 0 of %d metadata_items", len(md), limit)
		}
		s.Metadata = md
	}
	if c.AddGroup != "" && !slices.Contains(s.SecurityGroups, c.AddGroup) {
		s.SecurityGroups = append(slices.Clone(s.SecurityGroups), c.AddGroup)
	}
	if c.RemoveGroup != "" {
		s.SecurityGroups = slices.DeleteFunc(slices.Clone(s.SecurityGroups), func(g string) bool { return g == c.RemoveGroup })
	}
	s.Updated = c.Now
	return s, tx.Insert(tServers, &s)
}

type serverActionCmd struct {
	ID     string `json:"id"`
	Action string `json:"action"` // stop start reboot pause unpause suspend resume delete
	Hard   bool   `json:"hard,omitempty"`
	// HostDown marks a delete whose node is down: the server leaves the
	// API at once and its node tears it down when it returns.
	HostDown  bool      `json:"host_down,omitempty"`
	UserID    string    `json:"user_id"`
	RequestID string    `json:"request_id"`
	Now       time.Time `json:"now"`
	// Admin says the caller is an admin (a locked server's actions are
	// theirs only); Owner that the caller acts in the server's project.
	Admin bool `json:"admin,omitempty"`
	Owner bool `json:"owner,omitempty"`
	// Reason is a lock's locked_reason.
	Reason string `json:"reason,omitempty"`
	// State is the vm_state an os-resetState sets.
	State string `json:"state,omitempty"`
}

// actionResult is what an action or a report did; Removed says the row is
// gone, and with it the ports to release.
type actionResult struct {
	Server  Server `json:"server"`
	Removed bool   `json:"removed,omitempty"`
}

// transitions are Nova's allowed vm_states for each action (task_state
// must be none), the task it starts and the state the node must reach.
var transitions = map[string]struct {
	from       []string
	task, want string
}{
	"stop":    {[]string{vmActive, vmError}, "powering-off", "stopped"},
	"start":   {[]string{vmStopped}, "powering-on", "active"},
	"pause":   {[]string{vmActive}, "pausing", "paused"},
	"unpause": {[]string{vmPaused}, "unpausing", "active"},
	"suspend": {[]string{vmActive}, "suspending", "suspended"},
	"resume":  {[]string{vmSuspended}, "resuming", "active"},
}

func applyServerAction(tx *memdb.Txn, c serverActionCmd) (any, error) {
	old := store.Get[Server](tx, tServers, c.ID)
	if old == nil || old.Hidden {
		return nil, serverNotFound(c.ID)
	}
	s := *old
	s.Updated = c.Now
	name := c.Action
	if unsupportedOnBaremetal[c.Action] && isBaremetal(&s) {
		return nil, baremetalNotSupported(c.Action, s.ID)
	}
	if err := checkLock(&s, c); err != nil {
		return nil, err
	}
	switch c.Action {
	case "resetState":
		if err := applyResetState(&s, c); err != nil {
			return nil, err
		}
	case "lock", "unlock":
		noop, err := applyLock(&s, c)
		if err != nil || noop {
			return actionResult{Server: *old}, err
		}
	case "delete":
		if s.Host == "" && s.Baremetal == "" && s.BuildRun == "" {
			// Never placed: nothing runs anywhere, so it goes now.
			return actionResult{Server: s, Removed: true}, removeServer(tx, &s, c.Now)
		}
		if s.Host == "" && s.Baremetal == "" {
			// Its volumes are being made: gone for the API now, removed
			// by its build once the volume in hand is made, with the
			// volumes made for it (bdmbuild.go). The existing volumes
			// reserved for it are given back now: it is never placed.
			setState(&s, s.VMState, "deleting")
			s.Want, s.Hidden = "deleted", true
			if err := unreserveVolumes(tx, &s, c.Now); err != nil {
				return nil, store.WrapApplyError(err)
			}
			break
		}
		if s.Baremetal != "" {
			// The node tears down (deleting → cleaning → available) and
			// its conductor reports the server Gone; a node that no
			// longer holds it has nothing to tear down. Deleting again
			// retries a tear-down that failed.
			n, err := bmstate.Release(tx, s.ID, c.Now)
			if err != nil {
				return nil, err
			}
			if n == nil {
				return actionResult{Server: s, Removed: true}, removeServer(tx, &s, c.Now)
			}
		}
		if s.TaskState == "deleting" && !c.HostDown {
			return actionResult{Server: *old}, nil
		}
		setState(&s, s.VMState, "deleting")
		s.Want = "deleted"
		s.Hidden = c.HostDown
	case "reboot":
		name = "reboot"
		hardFrom := []string{vmActive, vmStopped, vmPaused, vmSuspended, vmError}
		switch {
		case !c.Hard && s.VMState != vmActive:
			return nil, stateConflict("reboot", s.ID, "vm_state", s.VMState)
		case c.Hard && !slices.Contains(hardFrom, s.VMState):
			return nil, stateConflict("reboot", s.ID, "vm_state", s.VMState)
		case s.TaskState != "" && !(c.Hard && s.TaskState == "rebooting"):
			return nil, stateConflict("reboot", s.ID, "task_state", s.TaskState)
		}
		task := "rebooting"
		if c.Hard {
			task = "rebooting_hard"
		}
		setState(&s, s.VMState, task)
		s.RebootSeq++
		s.RebootHard = c.Hard
		s.Want = "active"
	default:
		t, ok := transitions[c.Action]
		if !ok {
			return nil, store.Invalidf("unknown server action %q", c.Action)
		}
		if !slices.Contains(t.from, s.VMState) {
			return nil, stateConflict(c.Action, s.ID, "vm_state", s.VMState)
		}
		if s.TaskState != "" {
			return nil, stateConflict(c.Action, s.ID, "task_state", s.TaskState)
		}
		setState(&s, s.VMState, t.task)
		s.Want = t.want
	}
	if target := nodePower(c.Action); target != "" && s.Baremetal != "" {
		if _, err := bmstate.RequestPower(tx, s.ID, target, c.Now); err != nil {
			return nil, err
		}
	}
	if err := tx.Insert(tServers, &s); err != nil {
		return nil, err
	}
	if err := tx.Insert(tActions, &Action{ID: s.ID + "/" + c.RequestID, ServerID: s.ID, Project: s.Project, UserID: c.UserID,
		Action: name, RequestID: c.RequestID, Start: c.Now}); err != nil {
		return nil, err
	}
	return actionResult{Server: s}, nil
}

// removeServer deletes a server's row with its group membership and
// console tokens, and detaches its volumes. A server that ran leaves its
// usage record (terminated now), for the usage report, and keeps its
// action log beside it, which Nova lists for a deleted server from 2.21;
// both go together after usageRetention (pruneUsage). A server that never
// ran leaves neither.
func removeServer(tx *memdb.Txn, s *Server, now time.Time) error {
	if err := recordUsage(tx, s, now); err != nil {
		return err
	}
	if err := leaveGroup(tx, s); err != nil {
		return err
	}
	if err := releaseVolumes(tx, s); err != nil {
		return err
	}
	if s.LaunchedAt.IsZero() {
		if err := removeActions(tx, s.ID); err != nil {
			return err
		}
	}
	for _, t := range store.All[ConsoleToken](tx, tConsoles, "server", s.ID) {
		if err := tx.Delete(tConsoles, t); err != nil {
			return err
		}
	}
	if err := removeMigrations(tx, s.ID); err != nil {
		return err
	}
	return tx.Delete(tServers, s)
}

// removeActions deletes a server's action log.
func removeActions(tx *memdb.Txn, id string) error {
	for _, a := range store.All[Action](tx, tActions, "server", id) {
		if err := tx.Delete(tActions, a); err != nil {
			return err
		}
	}
	return nil
}

type serverReportCmd struct {
	ID       string    `json:"id"`
	Observed Observed  `json:"observed"`
	Now      time.Time `json:"now"`
	// RequestID names the instance action recorded when the observation
	// is one the system acts on (a guest that stopped on its own).
	RequestID string `json:"request_id,omitempty"`
}

func applyServerReport(tx *memdb.Txn, c serverReportCmd) (any, error) {
	o := c.Observed
	old := store.Get[Server](tx, tServers, c.ID)
	if old == nil {
		return nil, serverNotFound(c.ID)
	}
	if o.Gone {
		if old.Want != "deleted" {
			return nil, conflict("server %s is gone but was not deleted", c.ID)
		}
		if old.Baremetal != "" {
			if err := bmstate.Unclaim(tx, old.ID, c.Now); err != nil {
				return nil, err
			}
		}
		return actionResult{Server: *old, Removed: true}, removeServer(tx, old, c.Now)
	}
	if o.Node != "" && o.Node != old.Host {
		// From a node the server left (migrated or evacuated away): it
		// is not that node's to report.
		return actionResult{Server: *old}, nil
	}
	s := *old
	s.PowerState = o.PowerState
	// A resize's or a rescue's report is theirs to take.
	stepped, err := resizeReport(tx, &s, c)
	if err != nil {
		return nil, err
	}
	if !stepped {
		if stepped, err = rescueReport(tx, &s, c); err != nil {
			return nil, err
		}
	}
	// A live migration's steps are its own commands: the source's
	// reports meanwhile give only the power state.
	stepped = stepped || liveMigrating(&s)
	if s.Want == "deleted" && s.Baremetal != "" && o.Status == "ERROR" && s.TaskState == "deleting" {
		// The node's tear-down failed (the conductor left it in error):
		// the server shows it, and deleting it again retries.
		setState(&s, vmError, "")
		s.Fault = &Fault{Code: 500, Message: cmp.Or(o.Fault, "the tear-down of the bare-metal node failed"), Created: c.Now}
	}
	if s.Want != "deleted" && !stepped {
		switch o.Status {
		case "ERROR":
			setState(&s, vmError, "")
			s.StopAfterRebuild = false
			msg := o.Fault
			if msg == "" {
				msg = "the node reported an error"
			}
			if old.Fault == nil || old.Fault.Message != msg {
				s.Fault = &Fault{Code: 500, Message: msg, Created: c.Now}
			}
		case "ACTIVE":
			rebooting := s.TaskState == "rebooting" || s.TaskState == "rebooting_hard"
			switch {
			case s.Want != "active":
				if s.VMState == vmBuilding {
					setState(&s, vmActive, s.TaskState)
				}
			case rebooting && o.RebootSeq < s.RebootSeq && !(s.Baremetal != "" && nodePowerSettled(tx, &s)):
				// still rebooting
			case s.TaskState == "rebuilding" && o.RebuildSeq < s.RebuildSeq:
				// an ACTIVE from before the rebuild: still rebuilding
			case s.TaskState == "rebuilding" && s.StopAfterRebuild:
				// Rebuilt from stopped: stopped again, as Nova's
				// rebuild returns an instance to its original state.
				setState(&s, vmActive, "powering-off")
				s.Want, s.StopAfterRebuild, s.Fault = "stopped", false, nil
			default:
				setState(&s, vmActive, "")
				s.Fault = nil
				s.ShelvedImage = "" // unshelved: its agent deleted the image
				if s.LaunchedAt.IsZero() {
					s.LaunchedAt = c.Now
				}
			}
		case "SHUTOFF":
			switch {
			case s.Want == "stopped":
				setState(&s, vmStopped, "")
			case s.TaskState == "" && s.VMState == vmActive:
				// The guest shut itself down (or crashed): as Nova's
				// power-state sync does, the system stops the server
				// rather than starting it again, and says so in the
				// action log.
				setState(&s, vmStopped, "")
				s.Want = "stopped"
				if err := tx.Insert(tActions, stoppedByItself(&s, c)); err != nil {
					return nil, err
				}
			}
		case "PAUSED":
			if s.Want == "paused" {
				setState(&s, vmPaused, "")
			}
		case "SUSPENDED":
			if s.Want == "suspended" {
				setState(&s, vmSuspended, "")
			}
		default:
			return nil, store.Invalidf("observed status %q is not one of ACTIVE, SHUTOFF, PAUSED, SUSPENDED, ERROR", o.Status)
		}
	}
	if s.SnapshotImage != "" && computestate.SnapshotTask(old.TaskState) && s.VMState != vmError {
		// A snapshot runs: its steps (CmdImageStep) move the task state,
		// not the guest's power state.
		setState(&s, s.VMState, old.TaskState)
	}
	if err := evacuateReport(tx, &s, c); err != nil {
		return nil, err
	}
	probe := s
	probe.Updated = old.Updated
	if reflect.DeepEqual(&probe, old) {
		return actionResult{Server: *old}, nil
	}
	s.Updated = c.Now
	return actionResult{Server: s}, tx.Insert(tServers, &s)
}

// Console tokens.

type consoleTokenCmd struct {
	Token ConsoleToken `json:"token"`
	Now   time.Time    `json:"now"`
}

func applyConsoleToken(tx *memdb.Txn, c consoleTokenCmd) (any, error) {
	if s := store.Get[Server](tx, tServers, c.Token.ServerID); s == nil || s.Hidden {
		return nil, serverNotFound(c.Token.ServerID)
	}
	// Expired tokens go whenever a new one comes.
	for _, t := range store.All[ConsoleToken](tx, tConsoles, "id") {
		if !c.Now.Before(t.Expires) {
			if err := tx.Delete(tConsoles, t); err != nil {
				return nil, err
			}
		}
	}
	if store.Get[ConsoleToken](tx, tConsoles, c.Token.ID) != nil {
		return nil, store.Conflictf("console token exists")
	}
	return nil, tx.Insert(tConsoles, &c.Token)
}

// stoppedByItself is the instance action that records a guest that
// stopped without being asked: a stop by the system (no user), whose one
// event succeeded when the guest shut down and failed, saying why, when
// it crashed.
func stoppedByItself(s *Server, c serverReportCmd) *Action {
	req := c.RequestID
	if req == "" {
		req = "req-" + c.Now.UTC().Format("20060102T150405.000000000")
	}
	ev := ActionEvent{Event: "compute_stop_instance", Start: c.Now, Finish: c.Now, Result: "Success", Host: s.Host}
	a := &Action{ID: s.ID + "/" + req, ServerID: s.ID, Project: s.Project, Action: "stop", RequestID: req, Start: c.Now}
	if c.Observed.Fault != "" {
		ev.Result, ev.Details = "Error", c.Observed.Fault
		a.Message = "Error"
	}
	a.Events = []ActionEvent{ev}
	return a
}
