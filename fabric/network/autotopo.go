package network

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Auto-allocated topology (auto-allocated-topology), as Neutron's
// services/auto_allocate builds it: GET /v2.0/auto-allocated-topology/
// {project} gives the project's network, allocating first, if it has none,
// a network with a subnet from each default subnet pool (IPv4, and IPv6
// where there is a default IPv6 pool) and a router with its gateway on
// the default external network (is_default) and an interface on each
// subnet. It is one command (autotopo_fsm.go): all or nothing, and two
// requests at once get the same topology. ?fields=dry-run only checks
// that one could be allocated. DELETE takes it down again. Admins act for
// any project, others for their own.

func (s *Service) autoTopologyRoutes() []api.Route {
	const token = api.Authenticated
	return []api.Route{
		{Method: http.MethodGet, Path: "/v2.0/auto-allocated-topology/{project}", Access: token, Rule: "get_auto_allocated_topology", Handle: s.getAutoTopology},
		{Method: http.MethodDelete, Path: "/v2.0/auto-allocated-topology/{project}", Access: token, Rule: "delete_auto_allocated_topology", Handle: s.deleteAutoTopology},
	}
}

// topologyProject is the project a request acts for: the caller's when
// the client sent "None" (as Neutron's _validate takes it), and another's
// only for an admin (403 NotAuthorized).
func topologyProject(r *http.Request, p *api.Principal) (string, error) {
	project := chi.URLParam(r, "project")
	if project == "None" || project == "" {
		project = p.ProjectID
	}
	if !p.IsAdmin() && project != p.ProjectID {
		return "", store.Fault(store.KindForbidden, "NotAuthorized", "Not authorized.")
	}
	return project, nil
}

func topologyView(id, project string) map[string]any {
	return map[string]any{"auto_allocated_topology": map[string]any{"id": id, "tenant_id": project, "project_id": project}}
}

func (s *Service) getAutoTopology(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	project, err := topologyProject(r, p)
	if err != nil {
		return err
	}
	dryRun := false
	for _, f := range r.URL.Query()["fields"] {
		if f != "dry-run" {
			return badRequest("auto_allocate", "Unrecognized field")
		}
		dryRun = true
	}
	if dryRun {
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		if err := s.checkAutoRequirements(tx); err != nil {
			return err
		}
		api.JSON(w, http.StatusOK, topologyView("dry-run=pass", project))
		return nil
	}
	t, err := s.allocateTopology(r.Context(), project)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, topologyView(t.NetworkID, project))
	return nil
}

// checkAutoRequirements is the dry run: a default external network this
// cloud's routers can reach, and a default subnet pool.
func (s *Service) checkAutoRequirements(tx *memdb.Txn) error {
	ext, err := defaultExternal(tx)
	if err != nil {
		return err
	}
	if err := s.checkGatewayReach(ext); err != nil {
		return autoAllocationFailure(routerReason)
	}
	_, err = defaultSubnetPools(tx)
	return err
}

// allocateTopology returns project's topology, allocating it if it has
// none. The apply checks everything again against the state it is
// applied to; the checks here only fail fast, without a proposal.
func (s *Service) allocateTopology(ctx context.Context, project string) (AutoTopology, error) {
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return AutoTopology{}, err
	}
	if t := store.Get[AutoTopology](tx, tAutoTopologies, project); t != nil {
		return *t, nil
	}
	if err := s.checkAutoRequirements(tx); err != nil {
		return AutoTopology{}, err
	}
	c := autoTopologyCmd{Project: project, NetworkID: api.NewUUID(), SubnetIDs: [2]string{api.NewUUID(), api.NewUUID()},
		RouterID: api.NewUUID(), GatewayPortID: api.NewUUID(), InterfacePortIDs: [2]string{api.NewUUID(), api.NewUUID()},
		VLANMin: s.cfg.VLANMin, VLANMax: s.cfg.VLANMax, Defaults: s.defaultsFor(tx, project), Now: s.now()}
	var t AutoTopology
	if _, err := api.Propose(ctx, s.cfg.Repl, cmdAutoTopology, c, &t); err != nil {
		return AutoTopology{}, err
	}
	return t, nil
}

func (s *Service) deleteAutoTopology(w http.ResponseWriter, r *http.Request) error {
	project, err := topologyProject(r, principal(r))
	if err != nil {
		return err
	}
	if _, err := s.cfg.Repl.Propose(r.Context(), cmdAutoTopologyDelete, autoTopologyDeleteCmd{Project: project, Now: s.now()}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// isDefault reads is_default (auto-allocated-topology), which only admins
// may set, as in Neutron's policy; nil when absent.
func isDefault(rd *api.Input, p *api.Principal, action string) *bool {
	if !rd.Has("is_default") {
		return nil
	}
	v := rd.Bool("is_default", false)
	if rd.Err == nil && !p.IsAdmin() {
		rd.Fail(policyDenied(action + ":is_default"))
	}
	return &v
}

// AutoAllocatedNetwork is the network of p's project's auto-allocated
// topology, allocated if it has none: what Nova's networks "auto" boots
// on where the project has no network.
func (sp *ServerPorts) AutoAllocatedNetwork(ctx context.Context, p *api.Principal) (Network, error) {
	t, err := sp.s.allocateTopology(ctx, p.ProjectID)
	if err != nil {
		return Network{}, err
	}
	return sp.Network(ctx, p, t.NetworkID)
}
