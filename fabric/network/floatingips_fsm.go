package network

import (
	"net/netip"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// fipSpec is one floating IP to make: FIP holds the ids and times; its
// address comes from SubnetID or IP (else the network's first IPv4
// subnet with one free), held by a new port PortID; Assoc, when set,
// associates it at once.
type fipSpec struct {
	FIP      FloatingIP `json:"fip"`
	SubnetID string     `json:"subnet_id,omitempty"`
	IP       string     `json:"ip,omitempty"`
	Assoc    *fipAssoc  `json:"assoc,omitempty"`
}

// fipAssoc is the port (and, optionally, which of its addresses) a
// floating IP forwards to.
type fipAssoc struct {
	PortID  string `json:"port_id"`
	FixedIP string `json:"fixed_ip,omitempty"`
}

type fipCreateCmd struct {
	FIPs []fipSpec `json:"fips"`
}

func applyFIPCreate(tx *memdb.Txn, c fipCreateCmd) (any, error) {
	out := make([]FloatingIP, 0, len(c.FIPs))
	for _, sp := range c.FIPs {
		f := sp.FIP
		if store.Get[FloatingIP](tx, tFloatingIPs, f.ID) != nil {
			return nil, store.Conflictf("floating IP %s exists", f.ID)
		}
		n, err := externalNetwork(tx, f.NetworkID, f.Project, "floatingip")
		if err != nil {
			return nil, err
		}
		req := ipRequest{SubnetID: sp.SubnetID, IP: sp.IP}
		if req.SubnetID == "" && req.IP == "" {
			if req.SubnetID = firstSubnet(tx, n.ID, floatingIPOwner, 4); req.SubnetID == "" {
				return nil, badRequest("floatingip", "No IPv4 subnet on external network %s", n.ID)
			}
		}
		off := false
		p, err := createPort(tx, portSpec{
			Port: Port{ID: f.PortID, NetworkID: n.ID, DeviceOwner: floatingIPOwner, DeviceID: f.ID, AdminStateUp: true,
				Status: "N/A", VNICType: "normal", CreatedAt: f.CreatedAt, UpdatedAt: f.CreatedAt},
			IPs: &[]ipRequest{req}, PortSecurity: &off, GroupsGiven: true,
		})
		if err != nil {
			return nil, err
		}
		if a, _ := netip.ParseAddr(p.FixedIPs[0].IP); !a.Is4() {
			return nil, badRequest("floatingip", "Floating IPs are IPv4; %s is not", a)
		}
		f.IP = p.FixedIPs[0].IP
		if sp.Assoc != nil {
			if err := associate(tx, &f, *sp.Assoc); err != nil {
				return nil, err
			}
		}
		if err := tx.Insert(tFloatingIPs, &f); err != nil {
			return nil, err
		}
		if err := checkQuota(tx, f.Project, "floatingip"); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// associate points f at a port's fixed address, through the router that
// joins the port's subnet to f's external network.
func associate(tx *memdb.Txn, f *FloatingIP, a fipAssoc) error {
	if err := fipHasForwardings(tx, f.ID); err != nil {
		return err
	}
	p := store.Get[Port](tx, tPorts, a.PortID)
	if p == nil {
		return notFound("port", a.PortID)
	}
	if len(p.DeviceOwner) >= 8 && p.DeviceOwner[:8] == "network:" {
		return badRequest("floatingip", "Port %s has owner %s and therefore cannot be bound to a floating IP", p.ID, p.DeviceOwner)
	}
	var fixed *FixedIP
	var v4 []FixedIP
	for i, ip := range p.FixedIPs {
		addr, _ := netip.ParseAddr(ip.IP)
		if a.FixedIP != "" && ip.IP == a.FixedIP {
			fixed = &p.FixedIPs[i]
		}
		if addr.Is4() {
			v4 = append(v4, ip)
		}
	}
	switch {
	case a.FixedIP != "" && fixed == nil:
		return badRequest("floatingip", "Port %s does not have fixed ip %s", p.ID, a.FixedIP)
	case a.FixedIP != "":
		if addr, _ := netip.ParseAddr(fixed.IP); !addr.Is4() {
			return badRequest("floatingip", "Cannot create floating IP and bind it to %s, since that is not an IPv4 address", fixed.IP)
		}
	case len(v4) == 0:
		return badRequest("floatingip", "Cannot add floating IP to port %s that has no fixed IPv4 addresses", p.ID)
	case len(v4) > 1:
		return badRequest("floatingip", "Port %s has multiple fixed IPv4 addresses. Must provide a specific IPv4 address when assigning a floating IP", p.ID)
	default:
		fixed = &v4[0]
	}
	router := routerFor(tx, fixed.SubnetID, f.NetworkID)
	if router == "" {
		return store.Fault(store.KindNotFound, "ExternalGatewayForFloatingIPNotFound",
			"External network %s is not reachable from subnet %s.  Therefore, cannot associate Port %s with a Floating IP.", f.NetworkID, fixed.SubnetID, p.ID)
	}
	for _, o := range store.All[FloatingIP](tx, tFloatingIPs, "fixed_port", p.ID) {
		if o.ID != f.ID && o.FixedIP == fixed.IP && o.NetworkID == f.NetworkID {
			return store.Fault(store.KindConflict, "FloatingIPPortAlreadyAssociated",
				"Cannot associate floating IP %s (%s) with port %s using fixed IP %s, as that fixed IP already has a floating IP on external network %s.",
				f.IP, f.ID, p.ID, fixed.IP, f.NetworkID)
		}
	}
	f.FixedPortID, f.FixedIP, f.RouterID = p.ID, fixed.IP, router
	return nil
}

// routerFor is the router with an interface on subnet and its gateway on
// the external network, "" if there is none.
func routerFor(tx *memdb.Txn, subnet, external string) string {
	var out string
	for _, r := range store.All[Router](tx, tRouters, "id") {
		if r.Gateway == nil || r.Gateway.NetworkID != external {
			continue
		}
		if _, ok := routerSubnets(tx, r.ID)[subnet]; ok && (out == "" || r.ID < out) {
			out = r.ID
		}
	}
	return out
}

func disassociate(f *FloatingIP) {
	f.FixedPortID, f.FixedIP, f.RouterID = "", "", ""
	f.Status = "DOWN"
}

type fipUpdateCmd struct {
	ifMatch
	ID          string  `json:"id"`
	Description *string `json:"description,omitempty"`
	// SetPort applies Assoc: nil disassociates.
	SetPort bool      `json:"set_port,omitempty"`
	Assoc   *fipAssoc `json:"assoc,omitempty"`
	Now     time.Time `json:"now"`
}

func applyFIPUpdate(tx *memdb.Txn, c fipUpdateCmd) (any, error) {
	old, err := current(tx, tFloatingIPs, "floatingip", c.ID, c.ifMatch, func(r *FloatingIP) int { return r.Revision })
	if err != nil {
		return nil, err
	}
	f := *old
	set(&f.Description, c.Description)
	if c.SetPort {
		disassociate(&f)
		if c.Assoc != nil {
			if err := associate(tx, &f, *c.Assoc); err != nil {
				return nil, err
			}
		}
	}
	touch(&f.UpdatedAt, &f.Revision, c.Now)
	return f, tx.Insert(tFloatingIPs, &f)
}

func applyFIPDelete(tx *memdb.Txn, c idCmd) (any, error) {
	f, err := current(tx, tFloatingIPs, "floatingip", c.ID, c.ifMatch, func(r *FloatingIP) int { return r.Revision })
	if err != nil {
		return nil, err
	}
	if p := store.Get[Port](tx, tPorts, f.PortID); p != nil {
		if err := deletePort(tx, p); err != nil {
			return nil, err
		}
	}
	if err := dropFIPForwardings(tx, f.ID); err != nil {
		return nil, err
	}
	return nil, tx.Delete(tFloatingIPs, f)
}

// releaseFloatingIPs disassociates the floating IPs of a port going away,
// as Neutron does.
func releaseFloatingIPs(tx *memdb.Txn, portID string, now time.Time) error {
	for _, old := range store.All[FloatingIP](tx, tFloatingIPs, "fixed_port", portID) {
		f := *old
		disassociate(&f)
		touch(&f.UpdatedAt, &f.Revision, now)
		if err := tx.Insert(tFloatingIPs, &f); err != nil {
			return err
		}
	}
	return nil
}

type fipStatusCmd struct {
	ID     string    `json:"id"`
	Status string    `json:"status"`
	Now    time.Time `json:"now"`
}

func applyFIPStatus(tx *memdb.Txn, c fipStatusCmd) (any, error) {
	old := store.Get[FloatingIP](tx, tFloatingIPs, c.ID)
	if old == nil {
		return nil, notFound("floatingip", c.ID)
	}
	if old.Status == c.Status || old.FixedPortID == "" && c.Status == "ACTIVE" {
		return nil, nil
	}
	f := *old
	f.Status = c.Status
	touch(&f.UpdatedAt, &f.Revision, c.Now)
	return nil, tx.Insert(tFloatingIPs, &f)
}
