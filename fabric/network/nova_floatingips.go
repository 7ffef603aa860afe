package network

import (
	"context"
	"net/netip"
	"sort"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Floating IPs for Nova's deprecated floating IP proxy (os-floating-ips,
// os-floating-ip-pools, addFloatingIp, removeFloatingIp). Nova asks
// Neutron with the caller's own credentials, so these calls take the
// caller and see, make and change only what Neutron's API would let the
// caller: another project's floating IP does not exist for a member.
// Every change is the network API's own command (cmdFIPCreate,
// cmdFIPUpdate, cmdFIPDelete) with its checks, so an association made
// through Nova is the one `openstack floating ip set --port` makes: the
// same row, router and dataplane programming, answered once committed.

// NovaFloatingIP is a floating IP as Nova's proxy shows it: the row, its
// external network's name (Nova's pool; the id when it has none) and
// the device of the port it forwards to (Nova's instance_id).
type NovaFloatingIP struct {
	FloatingIP
	Pool     string
	DeviceID string
}

func novaFIP(tx *memdb.Txn, f *FloatingIP) NovaFloatingIP {
	out := NovaFloatingIP{FloatingIP: *f, Pool: f.NetworkID}
	if n := store.Get[Network](tx, tNetworks, f.NetworkID); n != nil && n.Name != "" {
		out.Pool = n.Name
	}
	if pt := store.Get[Port](tx, tPorts, f.FixedPortID); pt != nil {
		out.DeviceID = pt.DeviceID
	}
	return out
}

// FloatingIPs lists project's floating IPs (Nova lists the caller's
// project's, an admin's too), oldest first.
func (sp *ServerPorts) FloatingIPs(ctx context.Context, project string) ([]NovaFloatingIP, error) {
	tx, err := sp.s.cfg.Repl.Read(ctx)
	if err != nil {
		return nil, err
	}
	var out []NovaFloatingIP
	for _, f := range store.All[FloatingIP](tx, tFloatingIPs, "id") {
		if f.Project == project {
			out = append(out, novaFIP(tx, f))
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

// FloatingIP returns floating IP id if p may see it.
func (sp *ServerPorts) FloatingIP(ctx context.Context, p *api.Principal, id string) (NovaFloatingIP, error) {
	tx, err := sp.s.cfg.Repl.Read(ctx)
	if err != nil {
		return NovaFloatingIP{}, err
	}
	f, err := sp.s.floatingIPs(tx).Get(tx, p, id)
	if err != nil {
		return NovaFloatingIP{}, err
	}
	return novaFIP(tx, f), nil
}

// FloatingIPByAddress finds the floating IP of address among those p may
// see: none is not found, several (on different external networks) a
// conflict, as Nova's FloatingIpMultipleFoundForAddress.
func (sp *ServerPorts) FloatingIPByAddress(ctx context.Context, p *api.Principal, address string) (NovaFloatingIP, error) {
	a, err := netip.ParseAddr(address)
	if err != nil {
		return NovaFloatingIP{}, badInput("floating_ip_address", "%v", err)
	}
	tx, err := sp.s.cfg.Repl.Read(ctx)
	if err != nil {
		return NovaFloatingIP{}, err
	}
	var found []NovaFloatingIP
	for _, f := range store.All[FloatingIP](tx, tFloatingIPs, "id") {
		if f.IP != a.String() {
			continue
		}
		if _, err := sp.s.floatingIPs(tx).Get(tx, p, f.ID); err == nil {
			found = append(found, novaFIP(tx, f))
		}
	}
	switch len(found) {
	case 0:
		return NovaFloatingIP{}, store.Fault(store.KindNotFound, "FloatingIpNotFoundForAddress", "Floating IP not found for address %s.", address)
	case 1:
		return found[0], nil
	}
	return NovaFloatingIP{}, store.Fault(store.KindConflict, "FloatingIpMultipleFoundForAddress", "Multiple floating IPs are found for address %s.", address)
}

// FloatingIPPools lists the external networks p may see, Nova's floating
// IP pools, oldest first.
func (sp *ServerPorts) FloatingIPPools(ctx context.Context, p *api.Principal) ([]Network, error) {
	tx, err := sp.s.cfg.Repl.Read(ctx)
	if err != nil {
		return nil, err
	}
	return externalNetworks(tx, p), nil
}

func externalNetworks(tx *memdb.Txn, p *api.Principal) []Network {
	var out []Network
	for _, n := range store.All[Network](tx, tNetworks, "id") {
		if n.External && canSeeNetwork(tx, p, n) {
			out = append(out, *n)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out
}

// poolNetwork finds the external network pool names (by id or name, as
// Nova's _get_floating_ip_pool_id_by_name_or_id). No pool is the
// default one: the external network marked is_default, else the only
// external network p sees.
func poolNetwork(tx *memdb.Txn, p *api.Principal, pool string) (*Network, error) {
	nets := externalNetworks(tx, p)
	var found []Network
	for _, n := range nets {
		switch {
		case pool == "" && n.IsDefault, pool != "" && n.ID == pool:
			return &n, nil
		case pool != "" && n.Name == pool:
			found = append(found, n)
		}
	}
	if pool == "" && len(nets) == 1 {
		found = nets
	}
	switch len(found) {
	case 0:
		return nil, store.Fault(store.KindNotFound, "FloatingIpPoolNotFound", "Floating IP pool not found.")
	case 1:
		return &found[0], nil
	}
	return nil, store.Fault(store.KindConflict, "", "Multiple floating IP pools matches found for name '%s'", pool)
}

// AllocateFloatingIP makes a floating IP for p's project on pool's
// external network ("" : the default pool), as Neutron's POST
// /floatingips with that floating_network_id: its quota, its address
// from the network's first IPv4 subnet with one free.
func (sp *ServerPorts) AllocateFloatingIP(ctx context.Context, p *api.Principal, pool string) (NovaFloatingIP, error) {
	s := sp.s
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return NovaFloatingIP{}, err
	}
	n, err := poolNetwork(tx, p, pool)
	if err != nil {
		return NovaFloatingIP{}, err
	}
	if !p.CanWrite(p.ProjectID) {
		return NovaFloatingIP{}, policyDenied("create_floatingip")
	}
	now := s.now()
	spec := fipSpec{FIP: FloatingIP{ID: api.NewUUID(), PortID: api.NewUUID(), Status: "DOWN", CreatedAt: now, UpdatedAt: now,
		NetworkID: n.ID, Project: p.ProjectID}}
	var rows []FloatingIP
	if tx, err = api.Propose(ctx, s.cfg.Repl, cmdFIPCreate, fipCreateCmd{FIPs: []fipSpec{spec}}, &rows); err != nil {
		return NovaFloatingIP{}, err
	}
	return novaFIP(tx, &rows[0]), nil
}

// ReleaseFloatingIP deletes floating IP id, which p must be able to
// change, as Neutron's DELETE /floatingips/{id} (disassociating it).
func (sp *ServerPorts) ReleaseFloatingIP(ctx context.Context, p *api.Principal, id string) error {
	s := sp.s
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return err
	}
	if _, err := s.writableFIP(tx, p, id, "delete_floatingip"); err != nil {
		return err
	}
	_, err = api.Propose(ctx, s.cfg.Repl, cmdFIPDelete, idCmd{ID: id, Admin: p.IsAdmin(), Now: s.now()}, nil)
	return err
}

// SetFloatingIPPort associates floating IP id with port portID (at
// fixedIP, "" : its only IPv4 address), or with portID "" disassociates
// it, as Neutron's PUT /floatingips/{id} with port_id: p must be able to
// change both, and the port's subnet must be routed to the floating
// IP's external network. revision, when not nil, is the floating IP's
// revision the caller decided on: a floating IP changed since is left
// as it is (a precondition error), not moved or disassociated on a
// stale reading.
func (sp *ServerPorts) SetFloatingIPPort(ctx context.Context, p *api.Principal, id, portID, fixedIP string, revision *int) error {
	s := sp.s
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return err
	}
	if _, err := s.writableFIP(tx, p, id, "update_floatingip"); err != nil {
		return err
	}
	c := fipUpdateCmd{ifMatch: ifMatch{IfRevision: revision}, ID: id, SetPort: true, Now: s.now()}
	if portID != "" {
		if fixedIP != "" {
			a, err := parseIP(fixedIP)
			if err != nil {
				return badInput("fixed_ip_address", "%v", err)
			}
			fixedIP = a.String()
		}
		if _, err := s.writablePort(tx, p, portID, "update_floatingip"); err != nil {
			return err
		}
		c.Assoc = &fipAssoc{PortID: portID, FixedIP: fixedIP}
	}
	_, err = api.Propose(ctx, s.cfg.Repl, cmdFIPUpdate, c, nil)
	return err
}
