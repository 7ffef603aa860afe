package network

import (
	"net/http"
	"sort"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Neutron's L3 agent scheduler (l3_agent_scheduler), as it reads for
// distributed routers. A node's L3 agent routes for a router when the node
// hosts a port on one of the router's networks, as the node's dataplane
// decides it (node/ports.addL3): that is where Neutron's DVR schedules a
// router onto agents in "dvr" mode. Where a router runs follows from where
// its ports are, so an admin cannot move it by hand; Neutron refuses that
// for its "dvr" agents too, and so do we.

const l3AgentType = "L3 agent"

// routerHosts are the nodes whose L3 agents route for the router r: those
// hosting an enabled port on a network r has an interface on.
func routerHosts(tx *memdb.Txn, r *Router) map[string]bool {
	hosts := map[string]bool{}
	if !r.AdminStateUp {
		return hosts
	}
	nets := map[string]bool{}
	for _, p := range store.All[Port](tx, tPorts, "device", r.ID) {
		if p.DeviceOwner == routerInterfaceOwner {
			nets[p.NetworkID] = true
		}
	}
	for n := range nets {
		for _, p := range store.All[Port](tx, tPorts, "network", n) {
			if p.HostID != "" && p.AdminStateUp {
				hosts[p.HostID] = true
			}
		}
	}
	return hosts
}

// routerL3Agents lists the L3 agents routing for the router {id}.
func (s *Service) routerL3Agents(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	p := principal(r)
	rt, err := s.routers(tx).Get(tx, p, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	hosts := routerHosts(tx, rt)
	return s.writeAgentsOn(w, r, l3AgentType, func(host string) bool { return hosts[host] })
}

// agentL3Routers lists the routers the L3 agent {id} routes for.
func (s *Service) agentL3Routers(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	agent, err := s.agentOfType(r.Context(), p, chi.URLParam(r, "id"), l3AgentType)
	if err != nil {
		return err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	host := agent["host"].(string)
	routers := store.All[Router](tx, tRouters, "id")
	sort.Slice(routers, func(i, j int) bool { return routers[i].ID < routers[j].ID })
	out := []api.View{}
	for _, rt := range routers {
		if routerHosts(tx, rt)[host] {
			out = append(out, s.routerView(tx, p, rt))
		}
	}
	api.JSON(w, http.StatusOK, map[string]any{"routers": out})
	return nil
}

// scheduleL3Router refuses to add a router to an L3 agent by hand: every
// agent here is in "dvr" mode.
func (s *Service) scheduleL3Router(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.agentOfType(r.Context(), principal(r), chi.URLParam(r, "id"), l3AgentType); err != nil {
		return err
	}
	var body map[string]any
	if err := api.DecodeLoose(r, &body); err != nil {
		return err
	}
	rd := input(body)
	if id := rd.Str("router_id", "", 64); rd.Err == nil && id == "" {
		return badInput("router_id", "'router_id' is a required property")
	}
	if rd.Err != nil {
		return rd.Err
	}
	return store.Fault(store.KindConflict, "DVRL3CannotAssignToDvrAgent",
		"Not allowed to manually assign a router to an agent in 'dvr' mode: a router is routed by the nodes hosting ports on its networks.")
}

// unscheduleL3Router refuses to remove a router from an L3 agent by hand.
func (s *Service) unscheduleL3Router(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.agentOfType(r.Context(), principal(r), chi.URLParam(r, "id"), l3AgentType); err != nil {
		return err
	}
	return store.Fault(store.KindConflict, "DVRL3CannotRemoveFromDvrAgent",
		"Not allowed to manually remove a router from an agent in 'dvr' mode: a router is routed by the nodes hosting ports on its networks.")
}
