package compute

import (
	"context"
	"errors"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// AutoNetworks is what Ports offers where the network service has
// Neutron's auto-allocated topology: networks "auto" (2.37) on a project
// with no network it may use boots on the project's auto-allocated
// network, allocated then if it has none, as Nova's
// _auto_allocate_network asks Neutron for it.
type AutoNetworks interface {
	// AutoAllocatedNetwork is the network of p's project's topology,
	// allocated if it has none.
	AutoAllocatedNetwork(ctx context.Context, p *api.Principal) (NetworkInfo, error)
}

// autoNetwork resolves networks "auto" where the project has no network:
// its auto-allocated one. Where none can be allocated (no default external
// network or subnet pool, the project's quota, no Ports that can) the
// request is refused as Nova refuses it, 400 UnableToAutoAllocateNetwork,
// with Neutron's reason after it; a failure of the cloud itself (the
// outcome of the allocation unknown) goes up unchanged.
func (s *Service) autoNetwork(ctx context.Context, p *api.Principal) (requestedNIC, error) {
	refused := "Unable to automatically allocate a network for project %s"
	auto, ok := s.cfg.Ports.(AutoNetworks)
	if !ok {
		return requestedNIC{}, badRequest(refused, p.ProjectID)
	}
	n, err := auto.AutoAllocatedNetwork(ctx, p)
	var why *store.ApplyError
	if errors.As(err, &why) {
		return requestedNIC{}, badRequest(refused+". %s", p.ProjectID, why.Msg)
	}
	if err != nil {
		return requestedNIC{}, err
	}
	return requestedNIC{NetworkID: n.ID}, nil
}
