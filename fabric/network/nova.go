package network

import (
	"context"
	"errors"
	"net/netip"
	"sort"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// ServerPorts is the networking the compute service needs for servers:
// the networks a project may attach to, and ports made, bound and
// deleted on a server's behalf. Its callers are trusted and in-process;
// the principal is the end user where visibility matters.
type ServerPorts struct{ s *Service }

// ServerPorts returns the compute service's view of networking.
func (s *Service) ServerPorts() *ServerPorts { return &ServerPorts{s: s} }

// Network returns a network p may attach servers to (its project's, or
// a shared one).
func (sp *ServerPorts) Network(ctx context.Context, p *api.Principal, id string) (Network, error) {
	tx, err := sp.s.cfg.Repl.Read(ctx)
	if err != nil {
		return Network{}, err
	}
	n, err := sp.s.networks(tx).Get(tx, p, id)
	if err != nil {
		return Network{}, err
	}
	return *n, nil
}

// Networks lists the networks p's servers may attach to: its project's
// and the shared ones.
func (sp *ServerPorts) Networks(ctx context.Context, p *api.Principal) ([]Network, error) {
	tx, err := sp.s.cfg.Repl.Read(ctx)
	if err != nil {
		return nil, err
	}
	var out []Network
	for _, n := range store.All[Network](tx, tNetworks, "id") {
		if sharedWith(tx, n, p.ProjectID) {
			out = append(out, *n)
		}
	}
	// The project's own first, as Nova lists them, then by age.
	sort.SliceStable(out, func(i, j int) bool {
		if oi, oj := out[i].Project == p.ProjectID, out[j].Project == p.ProjectID; oi != oj {
			return oi
		}
		return out[i].CreatedAt.Before(out[j].CreatedAt)
	})
	return out, nil
}

// Port returns a port and its network's name; with p non-nil, only one p
// may see.
func (sp *ServerPorts) Port(ctx context.Context, p *api.Principal, id string) (Port, string, error) {
	tx, err := sp.s.cfg.Repl.Read(ctx)
	if err != nil {
		return Port{}, "", err
	}
	var pt *Port
	if p != nil {
		if pt, err = sp.s.ports(tx).Get(tx, p, id); err != nil {
			return Port{}, "", err
		}
	} else if pt = store.Get[Port](tx, tPorts, id); pt == nil {
		return Port{}, "", notFound("port", id)
	}
	name := ""
	if n := store.Get[Network](tx, tNetworks, pt.NetworkID); n != nil {
		name = n.Name
	}
	return *pt, name, nil
}

// ServerPortRequest asks for a server's port.
type ServerPortRequest struct {
	NetworkID   string
	FixedIP     string // "" = one address per subnet version, as usual
	Project     string
	DeviceID    string
	DeviceOwner string
	// SecurityGroups are names or ids in Project; none (or just
	// "default") means the project's default group.
	SecurityGroups []string
}

// Create makes a port on a network p may use, with MAC and addresses
// allocated as for any port.
func (sp *ServerPorts) Create(ctx context.Context, p *api.Principal, req ServerPortRequest) (Port, error) {
	s := sp.s
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return Port{}, err
	}
	n, err := s.networks(tx).Get(tx, p, req.NetworkID)
	if err != nil {
		return Port{}, err
	}
	// Nova's network:attach_external_network is admin-only: every project
	// sees an external network, but it is the routers' to use, and a
	// guest's port on it would sit on the operator's outside segment.
	if n.External && !sharedWith(tx, n, p.ProjectID) && !p.IsAdmin() {
		return Port{}, store.Fault(store.KindForbidden, "ExternalNetworkAttachForbidden",
			"It is not allowed to create an interface on external network %s", n.ID)
	}
	now := s.now()
	spec := portSpec{Port: Port{ID: api.NewUUID(), NetworkID: n.ID, Project: req.Project, DeviceID: req.DeviceID,
		DeviceOwner: req.DeviceOwner, Status: "DOWN", VNICType: "normal", AdminStateUp: true, CreatedAt: now, UpdatedAt: now}}
	ownerLater := false
	if req.FixedIP != "" {
		a, err := netip.ParseAddr(req.FixedIP)
		if err != nil {
			return Port{}, badInput("fixed_ips", "%v", err)
		}
		spec.IPs = &[]ipRequest{{IP: a.String()}}
		// Nova makes a port with the address asked for before it names
		// the port's owner, and Neutron lets a port of no owner take an
		// IPv6 subnet's subnet-router anycast address (the only one of a
		// /128): such a port is made as Nova makes it, in two steps.
		ownerLater = subnetRouterAnycast(tx, n.ID, a)
		if ownerLater {
			spec.Port.DeviceOwner = ""
		}
	}
	named := false
	for _, g := range req.SecurityGroups {
		if g != "default" {
			named = true
		}
	}
	if named {
		if tx, err = s.ensureDefaultGroup(ctx, tx, req.Project); err != nil {
			return Port{}, err
		}
		for _, name := range req.SecurityGroups {
			id := ""
			for _, g := range store.All[SecurityGroup](tx, tGroups, "project", req.Project) {
				if g.ID == name || g.Name == name || (name == "default" && g.Default) {
					id = g.ID
					break
				}
			}
			if id == "" {
				return Port{}, store.Fault(store.KindInvalid, "SecurityGroupNotFound", "Unable to find security_group with name or id '%s'", name)
			}
			spec.Port.SecurityGroups = append(spec.Port.SecurityGroups, id)
		}
		spec.GroupsGiven = true
	}
	var rows []Port
	if _, err := api.Propose(ctx, s.cfg.Repl, cmdPortCreate, portCreateCmd{Ports: []portSpec{spec}, Defaults: s.defaultsFor(tx, req.Project)}, &rows); err != nil {
		return Port{}, err
	}
	if !ownerLater {
		return rows[0], nil
	}
	var row Port
	if _, err := api.Propose(ctx, s.cfg.Repl, cmdPortUpdate, portUpdateCmd{ID: rows[0].ID, DeviceOwner: &req.DeviceOwner, Now: s.now()}, &row); err != nil {
		// The port is the server's to give back, whatever became of the
		// update.
		if derr := sp.Delete(context.WithoutCancel(ctx), rows[0].ID); derr != nil && !errors.Is(derr, store.ErrNotFound) {
			s.log.Warn("network: delete a server port whose owner could not be set", "port", rows[0].ID, "err", derr)
		}
		return Port{}, err
	}
	return row, nil
}

// subnetRouterAnycast says whether a is the first address (the
// subnet-router anycast) of one of network's IPv6 subnets.
func subnetRouterAnycast(tx *memdb.Txn, network string, a netip.Addr) bool {
	if !a.Is6() {
		return false
	}
	for _, sn := range store.All[Subnet](tx, tSubnets, "network", network) {
		if p, err := netip.ParsePrefix(sn.CIDR); err == nil && p.Addr() == a {
			return true
		}
	}
	return false
}

// Bind gives a port to a device on a host; deviceID "" releases it (and
// its host). A port another device holds is a conflict.
func (sp *ServerPorts) Bind(ctx context.Context, portID, deviceID, host string) error {
	s := sp.s
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return err
	}
	pt := store.Get[Port](tx, tPorts, portID)
	if pt == nil {
		return notFound("port", portID)
	}
	if deviceID != "" && pt.DeviceID != "" && pt.DeviceID != deviceID {
		return store.Fault(store.KindConflict, "PortInUse", "Unable to complete operation on port %s for network %s. Port already has an attached device %s.", pt.ID, pt.NetworkID, pt.DeviceID)
	}
	c := portUpdateCmd{ID: portID, DeviceID: &deviceID, HostID: &host, Now: s.now()}
	if deviceID == "" {
		owner := ""
		c.DeviceOwner = &owner
	} else if pt.DeviceOwner == "" {
		owner := "compute:nova"
		c.DeviceOwner = &owner
	}
	_, err = api.Propose(ctx, s.cfg.Repl, cmdPortUpdate, c, nil)
	return err
}

// Delete deletes a port.
func (sp *ServerPorts) Delete(ctx context.Context, portID string) error {
	_, err := api.Propose(ctx, sp.s.cfg.Repl, cmdPortDelete, idCmd{ID: portID, Now: sp.s.now()}, nil)
	return err
}
