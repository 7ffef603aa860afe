package network

import (
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

type networkCreateCmd struct {
	// Networks with SegmentationID 0 get the lowest free VLAN of
	// [VLANMin, VLANMax].
	Networks []Network         `json:"networks"`
	VLANMin  int               `json:"vlan_min"`
	VLANMax  int               `json:"vlan_max"`
	Defaults []defaultGroupCmd `json:"defaults,omitempty"`
}

func applyNetworkCreate(tx *memdb.Txn, c networkCreateCmd) (any, error) {
	if err := ensureDefaults(tx, c.Defaults); err != nil {
		return nil, err
	}
	out := make([]Network, 0, len(c.Networks))
	for _, n := range c.Networks {
		if n.Flat != "" {
			for _, o := range store.All[Network](tx, tNetworks, "id") {
				if o.Flat == n.Flat {
					return nil, store.Fault(store.KindConflict, "FlatNetworkInUse", "Unable to create the flat network. Physical network %s is in use.", n.Flat)
				}
			}
			// A flat network has no VLAN; a negative id keeps the unique
			// vlan index free of it and out of the dataplane's VLANs.
			n.SegmentationID = -1 - flatIndex(tx)
		} else if n.SegmentationID == 0 {
			vlan, ok := lowestFreeVLAN(tx, c.VLANMin, c.VLANMax)
			if !ok {
				return nil, store.Fault(store.KindConflict, "NoNetworkAvailable", "Unable to create the network. No tenant network is available for allocation.")
			}
			n.SegmentationID = vlan
		} else if raw, _ := tx.First(tNetworks, "vlan", n.SegmentationID); raw != nil {
			return nil, store.Fault(store.KindConflict, "VlanIdInUse", "Unable to create the network. The VLAN %d on physical network %s is in use.", n.SegmentationID, physicalNetwork)
		}
		if store.Get[Network](tx, tNetworks, n.ID) != nil {
			return nil, store.Conflictf("network %s exists", n.ID)
		}
		if n.QoSPolicyID == "" {
			n.QoSPolicyID = defaultQoS(tx, n.Project) // qos-default
		}
		if err := checkQoSUse(tx, n.Project, n.QoSPolicyID); err != nil {
			return nil, err
		}
		if err := checkOneDefault(tx, &n); err != nil {
			return nil, err
		}
		if err := tx.Insert(tNetworks, &n); err != nil {
			return nil, err
		}
		if err := checkQuota(tx, n.Project, "network"); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// flatIndex is the number of flat networks there are.
func flatIndex(tx *memdb.Txn) int {
	k := 0
	for _, n := range store.All[Network](tx, tNetworks, "id") {
		if n.Flat != "" {
			k++
		}
	}
	return k
}

func lowestFreeVLAN(tx *memdb.Txn, lo, hi int) (int, bool) {
	used := map[int]bool{}
	for _, n := range store.All[Network](tx, tNetworks, "id") {
		used[n.SegmentationID] = true
	}
	for v := lo; v <= hi; v++ {
		if !used[v] {
			return v, true
		}
	}
	return 0, false
}

type networkUpdateCmd struct {
	ifMatch
	ID           string    `json:"id"`
	Name         *string   `json:"name,omitempty"`
	Description  *string   `json:"description,omitempty"`
	AdminStateUp *bool     `json:"admin_state_up,omitempty"`
	Shared       *bool     `json:"shared,omitempty"`
	PortSecurity *bool     `json:"port_security,omitempty"`
	External     *bool     `json:"external,omitempty"`
	MTU          *int      `json:"mtu,omitempty"`
	Now          time.Time `json:"now"`
	// QoSPolicy sets qos_policy_id ("": none); nil leaves it.
	QoSPolicy *string `json:"qos_policy,omitempty"`
	// IsDefault sets is_default (of an external network); nil leaves it.
	IsDefault *bool `json:"is_default,omitempty"`
}

func applyNetworkUpdate(tx *memdb.Txn, c networkUpdateCmd) (any, error) {
	old, err := current(tx, tNetworks, "network", c.ID, c.ifMatch, func(r *Network) int { return r.Revision })
	if err != nil {
		return nil, err
	}
	n := *old
	set(&n.Name, c.Name)
	set(&n.Description, c.Description)
	set(&n.AdminStateUp, c.AdminStateUp)
	set(&n.PortSecurity, c.PortSecurity)
	if c.QoSPolicy != nil {
		if err := checkQoSUse(tx, n.Project, *c.QoSPolicy); err != nil {
			return nil, err
		}
		n.QoSPolicyID = *c.QoSPolicy
	}
	if c.Shared != nil && !*c.Shared && old.Shared {
		for _, p := range store.All[Port](tx, tPorts, "network", n.ID) {
			if p.Project != n.Project && !strings.HasPrefix(p.DeviceOwner, "network:") && !hasPolicy(tx, n.ID, actShared, p.Project) {
				return nil, store.Fault(store.KindConflict, "InvalidSharedSetting", "Unable to reconfigure sharing settings for network %s. Multiple tenants are using it.", n.ID)
			}
		}
		for _, s := range store.All[Subnet](tx, tSubnets, "network", n.ID) {
			if s.Project != n.Project && !hasPolicy(tx, n.ID, actShared, s.Project) {
				return nil, store.Fault(store.KindConflict, "InvalidSharedSetting", "Unable to reconfigure sharing settings for network %s. Multiple tenants are using it.", n.ID)
			}
		}
	}
	set(&n.Shared, c.Shared)
	if c.External != nil && !*c.External && n.External {
		for _, p := range store.All[Port](tx, tPorts, "network", n.ID) {
			if p.DeviceOwner == routerGatewayOwner || p.DeviceOwner == floatingIPOwner {
				return nil, store.Fault(store.KindConflict, "ExternalNetworkInUse", "External network %s cannot be updated to be non-external, as it has existing gateway ports.", n.ID)
			}
		}
	}
	if c.External != nil {
		// router:external is the "*" access_as_external policy: set, the
		// network is external to every project; unset, to none, and its
		// policies for single projects go too.
		n.ExternalScoped = false
		if !*c.External {
			for _, r := range store.All[RBACPolicy](tx, tRBAC, "object", n.ID) {
				if r.Action != actExternal {
					continue
				}
				if err := tx.Delete(tRBAC, r); err != nil {
					return nil, err
				}
			}
		}
	}
	set(&n.External, c.External)
	set(&n.IsDefault, c.IsDefault)
	if !n.External {
		n.IsDefault = false // only an external network is a default one
	}
	if err := checkOneDefault(tx, &n); err != nil {
		return nil, err
	}
	set(&n.MTU, c.MTU)
	if err := checkMTU6(tx, &n); err != nil {
		return nil, err
	}
	touch(&n.UpdatedAt, &n.Revision, c.Now)
	return n, tx.Insert(tNetworks, &n)
}

func applyNetworkDelete(tx *memdb.Txn, c idCmd) (any, error) {
	n, err := current(tx, tNetworks, "network", c.ID, c.ifMatch, func(r *Network) int { return r.Revision })
	if err != nil {
		return nil, err
	}
	ports := store.All[Port](tx, tPorts, "network", n.ID)
	for _, p := range ports {
		if p.DeviceOwner != dhcpOwner && !unusedFloatingIP(tx, p) {
			return nil, store.Fault(store.KindConflict, "NetworkInUse", "Unable to complete operation on network %s. There are one or more ports still in use on the network.", n.ID)
		}
	}
	// Floating IPs nothing uses go with their external network, as in
	// Neutron.
	for _, f := range store.All[FloatingIP](tx, tFloatingIPs, "id") {
		if f.NetworkID == n.ID {
			if err := tx.Delete(tFloatingIPs, f); err != nil {
				return nil, err
			}
		}
	}
	for _, p := range ports {
		if err := deletePort(tx, p); err != nil {
			return nil, err
		}
	}
	for _, s := range store.All[Subnet](tx, tSubnets, "network", n.ID) {
		if err := tx.Delete(tSubnets, s); err != nil {
			return nil, err
		}
	}
	if err := dropNetworkPolicies(tx, n.ID); err != nil {
		return nil, err
	}
	if err := dropTopologyOfNetwork(tx, n.ID); err != nil {
		return nil, err
	}
	return nil, tx.Delete(tNetworks, n)
}

// unusedFloatingIP reports the port of a floating IP associated with no
// port.
func unusedFloatingIP(tx *memdb.Txn, p *Port) bool {
	if p.DeviceOwner != floatingIPOwner {
		return false
	}
	f := store.Get[FloatingIP](tx, tFloatingIPs, p.DeviceID)
	return f == nil || f.FixedPortID == ""
}
