package network

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// External describes an external network an operator's cloud starts with,
// such as rackd dev's "public": flat on a physical network (one of
// Config.Flat), with one IPv4 subnet whose gateway is outside the cloud.
type External struct {
	Name    string
	Project string // the owner (the admin project)
	Physnet string
	CIDR    netip.Prefix
	Gateway netip.Addr
}

// EnsureExternal makes the external network x unless a network of its name
// exists; it returns the network's id.
func (s *Service) EnsureExternal(ctx context.Context, x External) (string, error) {
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return "", fmt.Errorf("ensure external network %s: %w", x.Name, err)
	}
	for _, n := range store.All[Network](tx, tNetworks, "id") {
		if n.Name == x.Name {
			return n.ID, nil
		}
	}
	now := s.now()
	n := Network{ID: api.NewUUID(), Project: x.Project, Name: x.Name, External: true, Flat: x.Physnet, MTU: 1500,
		AdminStateUp: true, CreatedAt: now, UpdatedAt: now}
	if _, err := s.cfg.Repl.Propose(ctx, cmdNetworkCreate, networkCreateCmd{Networks: []Network{n}, VLANMin: s.cfg.VLANMin, VLANMax: s.cfg.VLANMax}); err != nil {
		return "", fmt.Errorf("create external network %s: %w", x.Name, err)
	}
	pfx := x.CIDR.Masked()
	sn := Subnet{ID: api.NewUUID(), NetworkID: n.ID, Project: x.Project, Name: x.Name + "-subnet", CIDR: pfx.String(),
		GatewayIP: x.Gateway.String(), IPVersion: 4, DNSNameservers: []string{}, HostRoutes: []HostRoute{},
		AllocationPools: defaultPools(pfx, x.Gateway.String()), CreatedAt: now, UpdatedAt: now}
	if _, err := s.cfg.Repl.Propose(ctx, cmdSubnetCreate, subnetCreateCmd{Subnets: []Subnet{sn}}); err != nil {
		return "", fmt.Errorf("create subnet of external network %s: %w", x.Name, err)
	}
	return n.ID, nil
}
