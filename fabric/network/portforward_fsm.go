package network

import (
	"fmt"
	"net/netip"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/network/netstate"
	"github.com/rackstack/rackstack/fabric/store"
)

// Port forwarding commands. Every rule that depends on other rows (the
// floating IP free of a port, the internal port and address, the router
// joining them, no duplicate) is checked here, in the apply, so two
// racing requests cannot both pass it; an apply that fails writes
// nothing.

type PortForwarding = netstate.PortForwarding

const tPortForwardings = netstate.TablePortForwardings

const (
	cmdPFCreate = "network.port_forwarding.create"
	cmdPFUpdate = "network.port_forwarding.update"
	cmdPFDelete = "network.port_forwarding.delete"
)

// portForwardingHandlers are the port forwarding commands' applies, for
// Schema.
func portForwardingHandlers() map[string]store.Handler {
	return map[string]store.Handler{
		cmdPFCreate: store.Typed(applyPFCreate),
		cmdPFUpdate: store.Typed(applyPFUpdate),
		cmdPFDelete: store.Typed(applyPFDelete),
	}
}

// pfCmd is a forwarding to write whole (create or update); an update's
// IfRevision is its floating IP's.
type pfCmd struct {
	PF  PortForwarding `json:"pf"`
	Now time.Time      `json:"now"`
}

func applyPFCreate(tx *memdb.Txn, c pfCmd) (any, error) {
	if store.Get[PortForwarding](tx, tPortForwardings, c.PF.ID) != nil {
		return nil, store.Conflictf("port forwarding %s exists", c.PF.ID)
	}
	return writePF(tx, c.PF, c.Now)
}

func applyPFUpdate(tx *memdb.Txn, c pfCmd) (any, error) {
	old := store.Get[PortForwarding](tx, tPortForwardings, c.PF.ID)
	if old == nil || old.FloatingIPID != c.PF.FloatingIPID {
		return nil, pfNotFound(c.PF.ID, c.PF.FloatingIPID)
	}
	return writePF(tx, c.PF, c.Now)
}

func applyPFDelete(tx *memdb.Txn, c pfCmd) (any, error) {
	old := store.Get[PortForwarding](tx, tPortForwardings, c.PF.ID)
	if old == nil || old.FloatingIPID != c.PF.FloatingIPID {
		return nil, pfNotFound(c.PF.ID, c.PF.FloatingIPID)
	}
	return nil, deletePFs(tx, c.Now, old)
}

func pfNotFound(id, fip string) error {
	return store.Fault(store.KindNotFound, "PortForwardingNotFound",
		"Port Forwarding %s could not be found for Floating IP %s.", id, fip)
}

// writePF checks pf against the state and stores it, pointing its
// floating IP at the router it goes through.
func writePF(tx *memdb.Txn, pf PortForwarding, now time.Time) (any, error) {
	old := store.Get[FloatingIP](tx, tFloatingIPs, pf.FloatingIPID)
	if old == nil {
		return nil, notFound("floatingip", pf.FloatingIPID)
	}
	f := *old
	if f.FixedPortID != "" {
		return nil, store.Fault(store.KindConflict, "FloatingIPPortAlreadyAssociated",
			"Cannot associate floating IP %s (%s) with port %s using fixed IP %s, as that fixed IP already has a floating IP on external network %s.",
			f.IP, f.ID, pf.InternalPortID, pf.InternalIP, f.NetworkID)
	}
	p := store.Get[Port](tx, tPorts, pf.InternalPortID)
	if p == nil {
		return nil, notFound("port", pf.InternalPortID)
	}
	if bound := store.All[FloatingIP](tx, tFloatingIPs, "fixed_port", p.ID); len(bound) > 0 {
		return nil, store.Fault(store.KindConflict, "PortHasBindingFloatingIP",
			"Cannot create port forwarding to floating IP %s (%s) with port %s using fixed IP %s, as that port already has a binding floating IP.",
			bound[0].IP, bound[0].ID, p.ID, pf.InternalIP)
	}
	subnet, err := pfInternalSubnet(p, &pf)
	if err != nil {
		return nil, err
	}
	router := routerFor(tx, subnet, f.NetworkID)
	if router == "" {
		return nil, badRequest("port_forwarding",
			"External network %s is not reachable from subnet %s. Cannot set Port forwarding for Port %s with Floating IP %s",
			f.NetworkID, subnet, p.ID, f.ID)
	}
	others := store.All[PortForwarding](tx, tPortForwardings, "fip", f.ID)
	if f.RouterID != "" && f.RouterID != router {
		for _, o := range others {
			if o.ID != pf.ID {
				return nil, badRequest("port_forwarding",
					"The Floating IP %s had been set on router %s, the internal Neutron port %s can not reach it", f.ID, f.RouterID, p.ID)
			}
		}
	}
	if err := pfUnique(tx, pf, others); err != nil {
		return nil, err
	}
	if err := tx.Insert(tPortForwardings, &pf); err != nil {
		return nil, err
	}
	if f.RouterID != router {
		f.RouterID = router
		touch(&f.UpdatedAt, &f.Revision, now)
		if err := tx.Insert(tFloatingIPs, &f); err != nil {
			return nil, err
		}
	}
	return pf, nil
}

// pfInternalSubnet checks pf's internal address is an IPv4 address of p
// (the port's first IPv4 one when none is given) and returns its subnet.
func pfInternalSubnet(p *Port, pf *PortForwarding) (string, error) {
	for _, ip := range p.FixedIPs {
		a, err := netip.ParseAddr(ip.IP)
		if err != nil || !a.Is4() {
			continue
		}
		if pf.InternalIP == "" {
			pf.InternalIP = ip.IP
		}
		if ip.IP == pf.InternalIP {
			return ip.SubnetID, nil
		}
	}
	if pf.InternalIP == "" {
		return "", badRequest("port_forwarding", "Requested internal port %s must allocate an IPv4 address at least", p.ID)
	}
	return "", badRequest("port_forwarding",
		"Requested internal IP address %s is not suitable for internal neutron port %s, as its fixed_ips are %s",
		pf.InternalIP, p.ID, fixedIPText(p.FixedIPs))
}

func fixedIPText(ips []FixedIP) string {
	out := "["
	for i, ip := range ips {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("{'subnet_id': '%s', 'ip_address': '%s'}", ip.SubnetID, ip.IP)
	}
	return out + "]"
}

// pfUnique refuses a second forwarding of the floating IP's protocol and
// an external port already forwarded, or of the internal port's address,
// protocol and a port already forwarded to (Neutron's unique constraints,
// answered 400 as Neutron does; ranges may not overlap either).
func pfUnique(tx *memdb.Txn, pf PortForwarding, sameFIP []*PortForwarding) error {
	for _, o := range sameFIP {
		if o.ID != pf.ID && o.Protocol == pf.Protocol && portsOverlap(o.ExternalPort, o.Count(), pf.ExternalPort, pf.Count()) {
			return pfDuplicate("floatingip_id=%s, external_port=%s, protocol=%s", pf.FloatingIPID, pfPortsText(pf.ExternalPort, pf.Count()), pf.Protocol)
		}
	}
	for _, o := range store.All[PortForwarding](tx, tPortForwardings, "port", pf.InternalPortID) {
		if o.ID != pf.ID && o.Protocol == pf.Protocol && o.InternalIP == pf.InternalIP && portsOverlap(o.InternalPort, o.Count(), pf.InternalPort, pf.Count()) {
			return pfDuplicate("internal_neutron_port_id=%s, socket=%s:%s, protocol=%s", pf.InternalPortID, pf.InternalIP, pfPortsText(pf.InternalPort, pf.Count()), pf.Protocol)
		}
	}
	return nil
}

// portsOverlap reports whether ports [a, a+n) and [b, b+m) share one.
func portsOverlap(a, n, b, m int) bool { return a < b+m && b < a+n }

// pfPortsText is a port, or a range as Neutron writes it.
func pfPortsText(first, n int) string {
	if n == 1 {
		return fmt.Sprint(first)
	}
	return pfRangeText(first, n)
}

func pfDuplicate(format string, args ...any) error {
	return badRequest("port_forwarding", "A duplicate port forwarding entry with same attributes already exists, conflicting values are {%s}", fmt.Sprintf(format, args...))
}

// deletePFs deletes forwardings, freeing the router of each floating IP
// left with none.
func deletePFs(tx *memdb.Txn, now time.Time, pfs ...*PortForwarding) error {
	fips := map[string]bool{}
	for _, pf := range pfs {
		if err := tx.Delete(tPortForwardings, pf); err != nil {
			return err
		}
		fips[pf.FloatingIPID] = true
	}
	for id := range fips {
		old := store.Get[FloatingIP](tx, tFloatingIPs, id)
		if old == nil || old.FixedPortID != "" || old.RouterID == "" {
			continue
		}
		if raw, _ := tx.First(tPortForwardings, "fip", id); raw != nil {
			continue
		}
		f := *old
		f.RouterID = ""
		touch(&f.UpdatedAt, &f.Revision, now)
		if err := tx.Insert(tFloatingIPs, &f); err != nil {
			return err
		}
	}
	return nil
}

// fipHasForwardings refuses to associate floating IP id with a port
// while it has port forwardings (Neutron's FipInUseByPortForwarding).
func fipHasForwardings(tx *memdb.Txn, id string) error {
	if raw, _ := tx.First(tPortForwardings, "fip", id); raw != nil {
		return store.Fault(store.KindConflict, "FipInUseByPortForwarding", "Floating IP %s in use by Port Forwarding resources.", id)
	}
	return nil
}

// dropFIPForwardings deletes the forwardings of a floating IP going away.
func dropFIPForwardings(tx *memdb.Txn, id string) error {
	for _, pf := range store.All[PortForwarding](tx, tPortForwardings, "fip", id) {
		if err := tx.Delete(tPortForwardings, pf); err != nil {
			return err
		}
	}
	return nil
}

// dropPortForwardings deletes the forwardings to a port going away, or
// those to addresses it no longer has (keep: its addresses now; nil when
// it goes), as Neutron does.
func dropPortForwardings(tx *memdb.Txn, portID string, keep []FixedIP, now time.Time) error {
	var gone []*PortForwarding
	for _, pf := range store.All[PortForwarding](tx, tPortForwardings, "port", portID) {
		still := false
		for _, ip := range keep {
			still = still || ip.IP == pf.InternalIP
		}
		if !still {
			gone = append(gone, pf)
		}
	}
	return deletePFs(tx, now, gone...)
}

// pfInterfaceInUse refuses to remove router r's interface on subnet
// (prefix pfx) while a port forwarding through r reaches an address on it.
func pfInterfaceInUse(tx *memdb.Txn, r *Router, subnet string, pfx netip.Prefix) error {
	for _, f := range store.All[FloatingIP](tx, tFloatingIPs, "router", r.ID) {
		for _, pf := range store.All[PortForwarding](tx, tPortForwardings, "fip", f.ID) {
			if a, err := netip.ParseAddr(pf.InternalIP); err == nil && pfx.Contains(a) {
				return store.Fault(store.KindConflict, "RouterInterfaceInUseByFloatingIP",
					"Router interface for subnet %s on router %s cannot be deleted, as it is required by one or more floating IPs.", subnet, r.ID)
			}
		}
	}
	return nil
}
