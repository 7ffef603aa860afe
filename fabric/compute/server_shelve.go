package compute

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/scheduler"
	"github.com/rackstack/rackstack/fabric/store"
)

// Nova's shelve, shelveOffload and unshelve of a virtual machine.
//
// shelve of an image-backed server is createImage's snapshot (one path:
// snapshotServer's image, the node agent's copy) into "<name>-shelved",
// the guest powered off first (Server.SnapshotShelve); once the image is
// made the server is offloaded at once, as Nova's default
// shelved_offload_time 0 does: vm_state shelved_offloaded, no host, so
// its node's agent removes the guest and its directory and the host's
// capacity is free. A volume-backed server has no image to make: it is
// offloaded at once (its volume keeps its disk).
//
// Since nothing stays shelved (not offloaded), shelveOffload (admin)
// finds no server in vm_state shelved: Nova's 409 for the others.
//
// unshelve schedules the server again (an admin's or a member's
// availability_zone from 2.77), and its new host's agent builds it from
// the shelved image with the same ports, then deletes the image; the
// server is ACTIVE.

const (
	shelveRule         = "os_compute_api:os-shelve:shelve"
	shelveOffloadRule  = "os_compute_api:os-shelve:shelve_offload"
	unshelveRule       = "os_compute_api:os-shelve:unshelve"
	unshelveToHostRule = "os_compute_api:os-shelve:unshelve_to_host"
	vmShelved          = "shelved"
)

func (s *Service) shelve(w http.ResponseWriter, r *http.Request, arg any) error {
	sv, err := s.readServer(r, shelveRule)
	if err != nil {
		return err
	}
	if isBaremetal(sv) {
		return badRequest("shelve is not supported for bare-metal servers.")
	}
	if _, err := readActionArg("shelve", arg); err != nil {
		return err
	}
	if sv.BootVolume != "" {
		if err := refuseLocked(r, sv); err != nil {
			return err
		}
		if err := snapshottable(sv, computestate.ActionShelve); err != nil {
			return err
		}
		p := principal(r)
		c := serverImageCmd{ID: sv.ID, UserID: p.UserID, RequestID: requestID(r.Context()), Now: s.now(), Admin: p.IsAdmin(), Shelve: true}
		if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdServerImage, c, nil); err != nil {
			return err
		}
		s.unbindHost(r.Context(), sv)
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
	return s.snapshotServer(w, r, sv, sv.Name+"-shelved", nil, nil, true)
}

// unbindHost leaves an offloaded server's ports bound to it but to no
// host, as Nova's offload does.
func (s *Service) unbindHost(ctx context.Context, sv *Server) {
	if s.cfg.Ports == nil {
		return
	}
	for _, id := range sv.Ports {
		if err := s.cfg.Ports.Bind(context.WithoutCancel(ctx), id, sv.ID, ""); err != nil && api.StatusOf(err) != http.StatusNotFound {
			s.log.Warn("compute: unbind the port of an offloaded server", "server", sv.ID, "port", id, "err", err)
		}
	}
}

func (s *Service) shelveOffload(r *http.Request, arg any) error {
	sv, err := s.readServer(r, shelveOffloadRule)
	if err != nil {
		return err
	}
	if isBaremetal(sv) {
		return badRequest("shelveOffload is not supported for bare-metal servers.")
	}
	if !principal(r).IsAdmin() {
		return policyDenied(shelveOffloadRule)
	}
	if _, err := readActionArg("shelveOffload", arg); err != nil {
		return err
	}
	// shelve offloads at once: no server waits in vm_state shelved.
	return stateConflict("shelveOffload", sv.ID, "vm_state", sv.VMState)
}

func (s *Service) unshelve(w http.ResponseWriter, r *http.Request, arg any) error {
	sv, err := s.readServer(r, unshelveRule)
	if err != nil {
		return err
	}
	if isBaremetal(sv) {
		return badRequest("unshelve is not supported for bare-metal servers.")
	}
	p := principal(r)
	c := serverUnshelveCmd{ID: sv.ID, UserID: p.UserID, RequestID: requestID(r.Context()), Now: s.now(), Admin: p.IsAdmin()}
	// Before 2.77 Nova validates no argument and reads none: whatever
	// is sent (Terraform sends {"availability_zone": ...}) is null.
	if arg != nil && atLeast(r, 77) {
		if err := s.readUnshelveArg(r, sv, arg, &c); err != nil {
			return err
		}
	}
	if err := refuseLocked(r, sv); err != nil {
		return err
	}
	if err := unshelvable(sv); err != nil {
		return err
	}
	hosts, err := s.schedulerHosts(r.Context())
	if err != nil {
		return err
	}
	c.Hosts, c.Scheduler = hosts, s.cfg.Scheduler
	var res actionResult
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdServerUnshelve, c, &res); err != nil {
		return err
	}
	if res.Server.Host != "" && s.cfg.Ports != nil {
		for _, id := range res.Server.Ports {
			if err := s.cfg.Ports.Bind(context.WithoutCancel(r.Context()), id, sv.ID, res.Server.Host); err != nil {
				s.log.Warn("compute: bind the port of an unshelved server", "server", sv.ID, "port", id, "err", err)
			}
		}
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// unshelvable refuses a server unshelve cannot take now: Nova's
// shelved or shelved_offloaded, with no task.
func unshelvable(sv *Server) error {
	if sv.VMState != computestate.VMShelvedOffloaded && sv.VMState != vmShelved {
		return stateConflict("unshelve", sv.ID, "vm_state", sv.VMState)
	}
	if sv.TaskState != "" {
		return stateConflict("unshelve", sv.ID, "task_state", sv.TaskState)
	}
	return nil
}

// offload leaves server s shelved with no host (Nova's
// shelved_offload_time 0): its node's agent removes the guest.
func offload(s *Server, image string) {
	s.ShelvedImage = image
	s.Host, s.PowerState, s.Want = "", 0, computestate.VMShelvedOffloaded
	setState(s, computestate.VMShelvedOffloaded, "")
}

type serverUnshelveCmd struct {
	ID        string    `json:"id"`
	UserID    string    `json:"user_id"`
	RequestID string    `json:"request_id"`
	Admin     bool      `json:"admin,omitempty"`
	Now       time.Time `json:"now"`
	// AZ is the zone asked for (2.77); Unpin (2.91, availability_zone
	// null) frees the server of its zone; Host (2.91) is the host asked
	// for.
	AZ        string           `json:"az,omitempty"`
	Unpin     bool             `json:"unpin,omitempty"`
	Host      string           `json:"host,omitempty"`
	Hosts     []scheduler.Host `json:"hosts"`
	Scheduler scheduler.Config `json:"scheduler"`
}

func serverUnshelveEvents(c serverUnshelveCmd) eventMeta {
	return eventMeta{ids: []string{c.ID}, user: c.UserID, request: c.RequestID, action: computestate.ActionUnshelve, now: c.Now}
}

// applyServerUnshelve places a shelved server on a host, where its agent
// builds it; no host for it is Nova's failed unshelve: the server stays
// shelved and the action says why.
func applyServerUnshelve(tx *memdb.Txn, c serverUnshelveCmd) (any, error) {
	old := store.Get[Server](tx, tServers, c.ID)
	if old == nil || old.Hidden {
		return nil, serverNotFound(c.ID)
	}
	if old.Locked && !c.Admin {
		return nil, serverLocked(old.ID)
	}
	if err := unshelvable(old); err != nil {
		return nil, err
	}
	s := *old
	s.Updated = c.Now
	act := &Action{ID: s.ID + "/" + c.RequestID, ServerID: s.ID, Project: s.Project, UserID: c.UserID,
		Action: computestate.ActionUnshelve, RequestID: c.RequestID, Start: c.Now}
	pinned := computestate.Pinned(&s)
	switch {
	case c.AZ != "":
		pinned = c.AZ
	case c.Unpin:
		pinned = ""
	}
	if c.Host != "" && pinned != "" {
		// Nova's UnshelveHostNotInAZ: the host must be in the zone the
		// server is (to be) held to.
		for _, h := range hostsWithUsage(tx, c.Hosts) {
			if h.Name == c.Host && h.AZ != pinned {
				return nil, conflict("Host \"%s\" is not in the availability zone \"%s\".", c.Host, pinned)
			}
		}
	}
	req := scheduler.Request{VCPUs: s.Flavor.VCPUs, MemoryMB: s.Flavor.RAM, DiskGB: diskGB(&s), AZ: pinned, Host: c.Host}
	if s.Group != "" {
		if g := store.Get[ServerGroup](tx, tGroups, s.Group); g != nil {
			req.Group = &scheduler.Group{Policy: g.Policy, Members: g.Members, MaxPerHost: g.MaxPerHost}
		}
	}
	host, err := scheduler.Select(hostsWithUsage(tx, c.Hosts), req, c.Scheduler)
	switch {
	case errors.Is(err, scheduler.ErrNoValidHost):
		act.Message = "Error"
		act.Events = []ActionEvent{{Event: "schedule_instances", Start: c.Now, Finish: c.Now, Result: "Error", Details: err.Error()}}
		return actionResult{Server: *old}, tx.Insert(tActions, act)
	case err != nil:
		return nil, err
	}
	s.Host = host
	s.PinnedAZ = &pinned
	for _, h := range hostsWithUsage(tx, c.Hosts) {
		if h.Name == host {
			s.AZ = h.AZ // the zone of where it runs, as Nova records it
		}
	}
	if err := unshelveVolumes(tx, &s, host, c.Now); err != nil {
		return nil, err
	}
	s.Want = "active"
	setState(&s, s.VMState, computestate.TaskUnshelving)
	if err := tx.Insert(tServers, &s); err != nil {
		return nil, err
	}
	return actionResult{Server: s}, tx.Insert(tActions, act)
}

// readUnshelveArg reads unshelve's argument: from 2.77 an object with
// availability_zone (required, a zone); from 2.91 availability_zone may
// be null (the server held to no zone from now on) or absent, and an
// admin may name the host. Either is for a shelved-offloaded server
// only (Nova's 409 otherwise); a host must exist and be in the zone the
// server is held to.
func (s *Service) readUnshelveArg(r *http.Request, sv *Server, arg any, c *serverUnshelveCmd) error {
	o, ok := arg.(map[string]any)
	if !ok {
		return badField("unshelve", arg, "%s is not of type 'null'", api.Text(arg))
	}
	fields := []string{"availability_zone"}
	if atLeast(r, 91) {
		fields = append(fields, "host")
	}
	if err := allowOnly(o, fields...); err != nil {
		return err
	}
	in := newInput(o)
	switch {
	case atLeast(r, 91) && in.IsNull("availability_zone"):
		c.Unpin = true
	case atLeast(r, 91) && !in.Has("availability_zone"):
	default:
		c.AZ = str(in, "availability_zone", true, 1, 255)
	}
	c.Host = str(in, "host", false, 1, 255)
	if in.Err != nil {
		return in.Err
	}
	if c.Host != "" && !principal(r).IsAdmin() {
		return policyDenied(unshelveToHostRule)
	}
	if (in.Has("availability_zone") || c.Host != "") && sv.VMState != computestate.VMShelvedOffloaded {
		return conflict("Specifying availability_zone or host when unshelving server %s with %s status is not supported. The server status must be SHELVED_OFFLOADED.", sv.ID, sv.Status)
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	if c.AZ != "" {
		if known, err := s.zoneKnown(r.Context(), tx, c.AZ); err != nil {
			return err
		} else if !known {
			return badRequest("The requested availability zone is not available")
		}
	}
	if c.Host != "" {
		hs, err := s.schedulerHosts(r.Context())
		if err != nil {
			return err
		}
		found := false
		for _, h := range hostsWithUsage(tx, hs) {
			if h.Name == c.Host {
				found = true
				if pinned := cmp.Or(c.AZ, computestate.Pinned(sv)); pinned != "" && !c.Unpin && h.AZ != pinned {
					return conflict("Host \"%s\" is not in the availability zone \"%s\".", c.Host, pinned)
				}
			}
		}
		if !found {
			return badRequest("Compute host %s could not be found.", c.Host)
		}
	}
	return nil
}
