package compute

import (
	"net/http"
	"slices"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/store"
)

// Updating os-services: an admin disables a node's nova-compute (the
// scheduler places nothing more there; Nova's ComputeFilter) or forces
// it down (it reads as down whatever its heartbeats say: the scheduler
// skips it, os-services, os-hypervisors and the zones show it down, and
// its servers may be evacuated, as Nova's forced_down lets an operator
// fence a host it knows is gone before the heartbeats time out). Up to
// 2.52 by host and binary on the action paths (enable, disable,
// disable-log-reason, and force-down from 2.11); from 2.53 by the
// service's uuid, PUT /os-services/{id} with status, disabled_reason and
// forced_down. Only nova-compute can be changed: the conductor and
// scheduler of a node are its rackd, up with its heartbeats.
//
// The state is one row per node (computestate.ServiceState), set by one
// command, answered once Raft committed it; a node without a row is
// enabled and up by its heartbeats. Crash safety is the log's: the
// command is applied on replay or was never acknowledged.

const (
	servicesRule     = "os_compute_api:os-services:update"
	cmdServiceUpdate = "compute.service.update"
	tServiceStates   = computestate.TableServiceStates
)

// serviceUpdateCmd changes a node's service state; nil leaves a field.
type serviceUpdateCmd struct {
	Host           string    `json:"host"`
	Disabled       *bool     `json:"disabled,omitempty"`
	DisabledReason *string   `json:"disabled_reason,omitempty"`
	ForcedDown     *bool     `json:"forced_down,omitempty"`
	Now            time.Time `json:"now"`
}

func applyServiceUpdate(tx *memdb.Txn, c serviceUpdateCmd) (any, error) {
	if c.Host == "" {
		return nil, badRequest("a service update names its host")
	}
	st := computestate.ServiceStateOf(tx, c.Host)
	set(&st.Disabled, c.Disabled)
	set(&st.DisabledReason, c.DisabledReason)
	set(&st.ForcedDown, c.ForcedDown)
	if !st.Disabled {
		st.DisabledReason = ""
	}
	st.Updated = c.Now
	if !st.Disabled && !st.ForcedDown {
		// Back to the state of a node without a row.
		if cur := store.Get[computestate.ServiceState](tx, tServiceStates, c.Host); cur != nil {
			return st, tx.Delete(tServiceStates, cur)
		}
		return st, nil
	}
	return st, tx.Insert(tServiceStates, &st)
}

// withServiceStates applies what admins set to the nodes: a forced-down
// node is down.
func withServiceStates(tx *memdb.Txn, hs []Host) []Host {
	for i := range hs {
		if computestate.ServiceStateOf(tx, hs[i].Name).ForcedDown {
			hs[i].Up = false
		}
	}
	return hs
}

// updateService is PUT /os-services/{id}: from 2.53 the service by its
// uuid; before, the action named by the path.
func (s *Service) updateService(w http.ResponseWriter, r *http.Request) error {
	if err := requireAdmin(r, servicesRule); err != nil {
		return err
	}
	id := pathParam(r, "id")
	if !atLeast(r, 53) {
		return s.serviceAction(w, r, id)
	}
	o, err := readRaw(r)
	if err != nil {
		return err
	}
	if err := allowOnly(o, "status", "disabled_reason", "forced_down"); err != nil {
		return err
	}
	hs, tx, err := s.hostList(r)
	if err != nil {
		return err
	}
	var host *Host
	binary := ""
	for i, h := range hs {
		for _, b := range serviceBinaries {
			if serviceUUID(b, h.Name) == id {
				host, binary = &hs[i], b
			}
		}
	}
	if host == nil {
		return notFound("Service %s could not be found.", id)
	}
	c := serviceUpdateCmd{Host: host.Name, Now: s.now()}
	in := newInput(o)
	status := str(in, "status", false, 0, 0)
	reason := optStr(in, "disabled_reason", 255)
	if _, ok := o["forced_down"]; ok {
		fd := boolean(in, "forced_down", false)
		c.ForcedDown = &fd
	}
	switch {
	case in.Err != nil:
		return in.Err
	case status != "" && status != "enabled" && status != "disabled":
		return badField("status", status, "'%s' is not one of ['enabled', 'disabled']", status)
	case status == "" && c.ForcedDown == nil:
		return badRequest("At least one of status or forced_down must be specified.")
	case o["disabled_reason"] != nil && status != "disabled":
		return badRequest("Specifying 'disabled_reason' with status other than 'disabled' is not allowed.")
	case binary != "nova-compute":
		return badRequest("Updating a %s service is not supported. Only nova-compute services can be updated.", binary)
	}
	if status != "" {
		d := status == "disabled"
		c.Disabled, c.DisabledReason = &d, &reason
	}
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdServiceUpdate, c, nil); err != nil {
		return err
	}
	if tx, err = s.cfg.Repl.Read(r.Context()); err != nil {
		return err
	}
	h := withServiceStates(tx, []Host{*host})[0]
	api.JSON(w, http.StatusOK, map[string]any{"service": s.serviceView(r, tx, binary, h)})
	return nil
}

// serviceAction is an update before 2.53: PUT /os-services/enable,
// disable, disable-log-reason or force-down (2.11), naming the host and
// binary in the body.
func (s *Service) serviceAction(w http.ResponseWriter, r *http.Request, action string) error {
	fields := map[string][]string{"enable": {"host", "binary"}, "disable": {"host", "binary"},
		"disable-log-reason": {"host", "binary", "disabled_reason"}}
	if atLeast(r, 11) {
		fields["force-down"] = []string{"host", "binary", "forced_down"}
	}
	allowed, ok := fields[action]
	if !ok {
		return unknownResource()
	}
	o, err := readRaw(r)
	if err != nil {
		return err
	}
	if err := allowOnly(o, allowed...); err != nil {
		return err
	}
	in := newInput(o)
	host := str(in, "host", true, 1, 255)
	binary := str(in, "binary", true, 1, 255)
	c := serviceUpdateCmd{Host: host, Now: s.now()}
	out := map[string]any{"host": host, "binary": binary}
	switch action {
	case "enable", "disable":
		d := action == "disable"
		reason := ""
		c.Disabled, c.DisabledReason = &d, &reason
		out["status"] = map[bool]string{true: "disabled", false: "enabled"}[d]
	case "disable-log-reason":
		d, reason := true, str(in, "disabled_reason", true, 1, 255)
		c.Disabled, c.DisabledReason = &d, &reason
		out["status"], out["disabled_reason"] = "disabled", reason
	case "force-down":
		if v, ok := o["forced_down"].(bool); ok {
			c.ForcedDown = &v
			out["forced_down"] = v
		} else {
			in.Fail(badField("forced_down", o["forced_down"], "%s is not of type 'boolean'", api.Text(o["forced_down"])))
		}
	}
	if in.Err != nil {
		return in.Err
	}
	hs, _, err := s.hostList(r)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(hs, func(h Host) bool { return h.Name == host }) || !slices.Contains(serviceBinaries, binary) {
		return notFound("Service %s on host %s could not be found.", binary, host)
	}
	if binary != "nova-compute" {
		return badRequest("Updating a %s service is not supported. Only nova-compute services can be updated.", binary)
	}
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdServiceUpdate, c, nil); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"service": out})
	return nil
}

// serviceUUID is a service's id from 2.53 (serviceID's).
func serviceUUID(binary, host string) string {
	if binary == "nova-compute" {
		return hostUUID("service", host)
	}
	return hostUUID("service", binary+"@"+host)
}
