package network

import (
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/network/netstate"
	"github.com/rackstack/rackstack/fabric/store"
)

// Trunk commands. Every rule that depends on other rows (a port is the
// parent or a subport of one trunk at most, a VLAN id once per trunk, a
// subport free of any device, its MTU within the parent's) is checked
// here, in the apply, against the state the command lands on, so two
// racing requests cannot both pass it; an apply that fails writes
// nothing. The subports' device_id, device_owner and binding:host_id are
// written in the same apply as the trunk, as Neutron's trunk plugin sets
// them after its commit: a subport is never half in a trunk.

const (
	cmdTrunkCreate   = "network.trunk.create"
	cmdTrunkUpdate   = "network.trunk.update"
	cmdTrunkDelete   = "network.trunk.delete"
	cmdTrunkSubports = "network.trunk.subports"
)

func trunkHandlers() map[string]store.Handler {
	return map[string]store.Handler{
		cmdTrunkCreate:   store.Typed(applyTrunkCreate),
		cmdTrunkUpdate:   store.Typed(applyTrunkUpdate),
		cmdTrunkDelete:   store.Typed(applyTrunkDelete),
		cmdTrunkSubports: store.Typed(applyTrunkSubports),
	}
}

type trunkCreateCmd struct {
	Trunk Trunk     `json:"trunk"`
	Now   time.Time `json:"now"`
}

func applyTrunkCreate(tx *memdb.Txn, c trunkCreateCmd) (any, error) {
	t := c.Trunk
	if store.Get[Trunk](tx, tTrunks, t.ID) != nil {
		return nil, store.Conflictf("trunk %s exists", t.ID)
	}
	parent := store.Get[Port](tx, tPorts, t.PortID)
	if parent == nil {
		return nil, notFound("port", t.PortID)
	}
	if tr := trunkOfSubport(tx, parent.ID); tr != nil {
		return nil, trunkPortInUse(parent.ID)
	}
	if trunkOfParent(tx, parent.ID) != nil {
		return nil, parentPortInUse(parent.ID)
	}
	subs := t.SubPorts
	t.SubPorts = nil
	if err := addSubPorts(tx, &t, parent, subs, c.Now); err != nil {
		return nil, err
	}
	if err := tx.Insert(tTrunks, &t); err != nil {
		return nil, err
	}
	return []Trunk{t}, nil
}

// addSubPorts adds subs to t (not yet written), each checked as Neutron's
// SubPortsValidator does against other rows (their own shape, a VLAN id
// in 1-4094 among them, was read by readSubPorts), and makes each port
// the trunk's subport.
func addSubPorts(tx *memdb.Txn, t *Trunk, parent *Port, subs []SubPort, now time.Time) error {
	for _, sp := range subs {
		if sp.PortID == parent.ID {
			return parentPortInUse(sp.PortID)
		}
		pt := store.Get[Port](tx, tPorts, sp.PortID)
		if pt == nil {
			return notFound("port", sp.PortID)
		}
		for _, o := range t.SubPorts {
			if o.PortID == sp.PortID {
				return trunkPortInUse(pt.ID)
			}
			if o.SegmentationType == sp.SegmentationType && o.SegmentationID == sp.SegmentationID {
				return store.Fault(store.KindConflict, "DuplicateSubPort",
					"segmentation_type %s and segmentation_id %d already in use on trunk %s.", sp.SegmentationType, sp.SegmentationID, t.ID)
			}
		}
		if mtu, parentMTU := portMTU(tx, pt), portMTU(tx, parent); parentMTU > 0 && mtu > parentMTU {
			return store.Fault(store.KindConflict, "SubPortMtuGreaterThanTrunkPortMtu",
				"MTU %d of subport %s cannot be greater than MTU %d of trunk %s.", mtu, pt.ID, parentMTU, t.ID)
		}
		if trunkOfSubport(tx, pt.ID) != nil {
			return trunkPortInUse(pt.ID)
		}
		if trunkOfParent(tx, pt.ID) != nil {
			return parentPortInUse(pt.ID)
		}
		if pt.DeviceID != "" {
			return store.Fault(store.KindConflict, "PortInUse",
				"Unable to complete operation on port %s for network %s. Port already has an attached device %s.", pt.ID, pt.NetworkID, pt.DeviceID)
		}
		t.SubPorts = append(t.SubPorts, sp)
		p := *pt
		p.DeviceID, p.DeviceOwner, p.HostID = t.ID, netstate.SubPortOwner, parent.HostID
		touch(&p.UpdatedAt, &p.Revision, now)
		if err := tx.Insert(tPorts, &p); err != nil {
			return err
		}
	}
	return nil
}

// releaseSubPort gives a port back from its trunk: no device, no owner,
// unbound, as Neutron's trunk plugin leaves it.
func releaseSubPort(tx *memdb.Txn, id string, now time.Time) error {
	pt := store.Get[Port](tx, tPorts, id)
	if pt == nil {
		return nil
	}
	p := *pt
	p.DeviceID, p.DeviceOwner, p.HostID = "", "", ""
	touch(&p.UpdatedAt, &p.Revision, now)
	return tx.Insert(tPorts, &p)
}

// portMTU is the MTU of a port's network (0: unknown).
func portMTU(tx *memdb.Txn, p *Port) int {
	if n := store.Get[Network](tx, tNetworks, p.NetworkID); n != nil {
		return n.MTU
	}
	return 0
}

type trunkUpdateCmd struct {
	ifMatch
	ID           string    `json:"id"`
	Name         *string   `json:"name,omitempty"`
	Description  *string   `json:"description,omitempty"`
	AdminStateUp *bool     `json:"admin_state_up,omitempty"`
	Now          time.Time `json:"now"`
}

func applyTrunkUpdate(tx *memdb.Txn, c trunkUpdateCmd) (any, error) {
	old, err := current(tx, tTrunks, "trunk", c.ID, c.ifMatch, func(r *Trunk) int { return r.Revision })
	if err != nil {
		return nil, err
	}
	t := *old
	set(&t.Name, c.Name)
	set(&t.Description, c.Description)
	set(&t.AdminStateUp, c.AdminStateUp)
	touch(&t.UpdatedAt, &t.Revision, c.Now)
	return t, tx.Insert(tTrunks, &t)
}

// applyTrunkDelete deletes an enabled trunk and frees its subports. The
// dataplane reprograms a bound parent's device as it goes (it can trunk
// and untrunk a bound port, as Neutron's OVS and OVN drivers can), so a
// bound parent does not keep its trunk (no TrunkInUse).
func applyTrunkDelete(tx *memdb.Txn, c idCmd) (any, error) {
	t, err := current(tx, tTrunks, "trunk", c.ID, c.ifMatch, func(r *Trunk) int { return r.Revision })
	if err != nil {
		return nil, err
	}
	if !t.AdminStateUp {
		return nil, trunkDisabled(t.ID)
	}
	for _, sp := range t.SubPorts {
		if err := releaseSubPort(tx, sp.PortID, c.Now); err != nil {
			return nil, err
		}
	}
	return nil, tx.Delete(tTrunks, t)
}

// trunkSubportsCmd adds subports to a trunk or removes them (by port).
type trunkSubportsCmd struct {
	ID     string    `json:"id"`
	Add    []SubPort `json:"add,omitempty"`
	Remove []string  `json:"remove,omitempty"`
	Now    time.Time `json:"now"`
}

func applyTrunkSubports(tx *memdb.Txn, c trunkSubportsCmd) (any, error) {
	old := store.Get[Trunk](tx, tTrunks, c.ID)
	if old == nil {
		return nil, trunkNotFound(c.ID)
	}
	if !old.AdminStateUp {
		return nil, trunkDisabled(old.ID)
	}
	t := *old
	t.SubPorts = append([]SubPort(nil), old.SubPorts...)
	for _, id := range c.Remove {
		i := subPortIndex(t.SubPorts, id)
		if i < 0 {
			return nil, store.Fault(store.KindNotFound, "SubPortNotFound",
				"SubPort on trunk %s with parent port %s could not be found.", t.ID, id)
		}
		t.SubPorts = append(t.SubPorts[:i], t.SubPorts[i+1:]...)
		if err := releaseSubPort(tx, id, c.Now); err != nil {
			return nil, err
		}
	}
	if len(c.Add) > 0 {
		parent := store.Get[Port](tx, tPorts, t.PortID)
		if parent == nil {
			return nil, notFound("port", t.PortID)
		}
		if err := addSubPorts(tx, &t, parent, c.Add, c.Now); err != nil {
			return nil, err
		}
	}
	touch(&t.UpdatedAt, &t.Revision, c.Now)
	return t, tx.Insert(tTrunks, &t)
}

func subPortIndex(subs []SubPort, port string) int {
	for i, sp := range subs {
		if sp.PortID == port {
			return i
		}
	}
	return -1
}

// trunkOfParent is the trunk whose parent port is id, or nil.
func trunkOfParent(tx *memdb.Txn, id string) *Trunk {
	raw, _ := tx.First(tTrunks, "port", id)
	t, _ := raw.(*Trunk)
	return t
}

// trunkOfSubport is the trunk port id is a subport of, or nil.
func trunkOfSubport(tx *memdb.Txn, id string) *Trunk {
	for _, t := range store.All[Trunk](tx, tTrunks, "id") {
		if subPortIndex(t.SubPorts, id) >= 0 {
			return t
		}
	}
	return nil
}

// checkTrunkPortDelete refuses to delete a port a trunk holds, as
// Neutron's trunk plugin does before a port's deletion.
func checkTrunkPortDelete(tx *memdb.Txn, id string) error {
	if t := trunkOfSubport(tx, id); t != nil {
		return store.Fault(store.KindConflict, "PortInUseAsSubPort", "Port %s is currently a subport for trunk %s.", id, t.ID)
	}
	if t := trunkOfParent(tx, id); t != nil {
		return store.Fault(store.KindConflict, "PortInUseAsTrunkParent", "Port %s is currently a parent port for trunk %s.", id, t.ID)
	}
	return nil
}

// followTrunkParent binds a trunk's subports where its parent port p is
// now bound (Neutron's drivers do it by update_subport_bindings), so the
// node that hosts the parent's device hosts them too.
func followTrunkParent(tx *memdb.Txn, p *Port, now time.Time) error {
	t := trunkOfParent(tx, p.ID)
	if t == nil {
		return nil
	}
	for _, sp := range t.SubPorts {
		pt := store.Get[Port](tx, tPorts, sp.PortID)
		if pt == nil || pt.HostID == p.HostID {
			continue
		}
		q := *pt
		q.HostID = p.HostID
		touch(&q.UpdatedAt, &q.Revision, now)
		if err := tx.Insert(tPorts, &q); err != nil {
			return err
		}
	}
	return nil
}

func trunkNotFound(id string) error {
	return store.Fault(store.KindNotFound, "TrunkNotFound", "Trunk %s could not be found.", id)
}

func trunkDisabled(id string) error {
	return store.Fault(store.KindConflict, "TrunkDisabled", "Trunk %s is currently disabled.", id)
}

func trunkPortInUse(id string) error {
	return store.Fault(store.KindConflict, "TrunkPortInUse", "Port %s is in use by another trunk.", id)
}

func parentPortInUse(id string) error {
	return store.Fault(store.KindConflict, "ParentPortInUse", "Port %s is currently in use and is not eligible for use as a parent port.", id)
}
