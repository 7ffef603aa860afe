package network

import (
	"net/netip"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

type poolCreateCmd struct {
	Pools []SubnetPool `json:"pools"`
}

func applyPoolCreate(tx *memdb.Txn, c poolCreateCmd) (any, error) {
	out := make([]SubnetPool, 0, len(c.Pools))
	for _, sp := range c.Pools {
		if store.Get[SubnetPool](tx, tSubnetPools, sp.ID) != nil {
			return nil, store.Conflictf("subnet pool %s exists", sp.ID)
		}
		if err := oneDefaultPool(tx, &sp); err != nil {
			return nil, err
		}
		if err := checkPoolScope(tx, &sp); err != nil {
			return nil, err
		}
		if err := tx.Insert(tSubnetPools, &sp); err != nil {
			return nil, err
		}
		if err := checkQuota(tx, sp.Project, "subnetpool"); err != nil {
			return nil, err
		}
		out = append(out, sp)
	}
	return out, nil
}

// oneDefaultPool refuses a second default pool of an IP version: a
// subnet that asks for the default must find one.
func oneDefaultPool(tx *memdb.Txn, sp *SubnetPool) error {
	if !sp.IsDefault {
		return nil
	}
	if d := defaultPoolOf(tx, sp.IPVersion); d != nil && d.ID != sp.ID {
		return store.Fault(store.KindConflict, "InvalidInput", "Invalid input for operation: A default subnetpool for this IP family has already been set (%s).", d.ID)
	}
	return nil
}

type poolUpdateCmd struct {
	ifMatch
	ID               string    `json:"id"`
	Name             *string   `json:"name,omitempty"`
	Description      *string   `json:"description,omitempty"`
	Prefixes         *[]string `json:"prefixes,omitempty"`
	MinPrefixlen     *int      `json:"min_prefixlen,omitempty"`
	MaxPrefixlen     *int      `json:"max_prefixlen,omitempty"`
	DefaultPrefixlen *int      `json:"default_prefixlen,omitempty"`
	IsDefault        *bool     `json:"is_default,omitempty"`
	AddressScopeID   *string   `json:"address_scope_id,omitempty"`
	// SetDefaultQuota says the request sets default_quota, to
	// DefaultQuota (nil: none).
	SetDefaultQuota bool `json:"set_default_quota,omitempty"`
	DefaultQuota    *int `json:"default_quota,omitempty"`
	// AddPrefixes and RemovePrefixes change the prefixes the pool has
	// when the command is applied (add_prefixes, remove_prefixes).
	AddPrefixes    []string  `json:"add_prefixes,omitempty"`
	RemovePrefixes []string  `json:"remove_prefixes,omitempty"`
	Now            time.Time `json:"now"`
}

func applyPoolUpdate(tx *memdb.Txn, c poolUpdateCmd) (any, error) {
	old, err := current(tx, tSubnetPools, "subnetpool", c.ID, c.ifMatch, func(r *SubnetPool) int { return r.Revision })
	if err != nil {
		return nil, err
	}
	sp := *old
	set(&sp.Name, c.Name)
	set(&sp.Description, c.Description)
	set(&sp.IsDefault, c.IsDefault)
	set(&sp.MinPrefixlen, c.MinPrefixlen)
	set(&sp.MaxPrefixlen, c.MaxPrefixlen)
	set(&sp.DefaultPrefixlen, c.DefaultPrefixlen)
	set(&sp.AddressScopeID, c.AddressScopeID)
	if c.SetDefaultQuota {
		sp.DefaultQuota = c.DefaultQuota
	}
	if c.Prefixes != nil {
		// Prefixes may grow, never shrink: the pool's subnets must stay
		// within it.
		next := &SubnetPool{Prefixes: *c.Prefixes}
		for _, p := range poolPrefixes(old) {
			if poolHolds(next, p) != nil {
				return nil, invalidInput("Illegal update to prefixes: the new prefixes must hold the old prefix %s", p)
			}
		}
		sp.Prefixes = *c.Prefixes
	}
	if len(c.AddPrefixes)+len(c.RemovePrefixes) > 0 {
		if err := prefixOps(tx, &sp, c.AddPrefixes, c.RemovePrefixes); err != nil {
			return nil, err
		}
	}
	if err := poolBounds(sp.IPVersion, sp.MinPrefixlen, sp.MaxPrefixlen, sp.DefaultPrefixlen, sp.Prefixes); err != nil {
		return nil, err
	}
	if err := oneDefaultPool(tx, &sp); err != nil {
		return nil, err
	}
	if err := checkPoolScope(tx, &sp); err != nil {
		return nil, err
	}
	touch(&sp.UpdatedAt, &sp.Revision, c.Now)
	return sp, tx.Insert(tSubnetPools, &sp)
}

func applyPoolDelete(tx *memdb.Txn, c idCmd) (any, error) {
	sp, err := current(tx, tSubnetPools, "subnetpool", c.ID, c.ifMatch, func(r *SubnetPool) int { return r.Revision })
	if err != nil {
		return nil, err
	}
	if raw, _ := tx.First(tSubnets, "subnetpool", sp.ID); raw != nil {
		return nil, store.Fault(store.KindConflict, "SubnetPoolInUse", "Unable to complete operation on subnet pool %s. Subnets are allocated from it.", sp.ID)
	}
	return nil, tx.Delete(tSubnetPools, sp)
}

// checkPoolSubnet checks, when a subnet of pool sp is created, that its
// range is still free in the pool: the proposer chose it from an earlier
// state.
func checkPoolSubnet(tx *memdb.Txn, s *Subnet, pfx netip.Prefix) error {
	sp := store.Get[SubnetPool](tx, tSubnetPools, s.SubnetPoolID)
	if sp == nil {
		return notFound("subnetpool", s.SubnetPoolID)
	}
	if err := poolHolds(sp, pfx); err != nil {
		return err
	}
	for _, o := range store.All[Subnet](tx, tSubnets, "subnetpool", sp.ID) {
		if op, err := netip.ParsePrefix(o.CIDR); err == nil && op.Overlaps(pfx) {
			return store.Fault(store.KindConflict, "SubnetAllocationError", "Failed to allocate subnet: %s overlaps subnet %s of subnet pool %s.", pfx, o.ID, sp.ID)
		}
	}
	return checkPoolQuota(tx, sp, s.Project, pfx)
}

// checkPoolQuota refuses a project's new subnet pfx of pool sp that would
// take the project past the pool's default_quota, counted as Neutron
// counts it: each subnet of the pool the project has is worth the /32s
// (IPv4) or /64s (IPv6) it spans, a longer prefix one. A quota of 0 is
// no quota, as in Neutron. It runs in the apply, so two subnets made at
// once cannot both slip under the cap.
func checkPoolQuota(tx *memdb.Txn, sp *SubnetPool, project string, pfx netip.Prefix) error {
	if sp.DefaultQuota == nil || *sp.DefaultQuota <= 0 {
		return nil
	}
	unit := 32
	if sp.IPVersion == 6 {
		unit = 64
	}
	units := func(bits int) uint64 {
		if bits >= unit {
			return 1
		}
		if unit-bits >= 40 {
			return 1 << 40 // past any quota (an int32)
		}
		return 1 << (unit - bits)
	}
	used := units(pfx.Bits())
	for _, o := range store.All[Subnet](tx, tSubnets, "subnetpool", sp.ID) {
		if op, err := netip.ParsePrefix(o.CIDR); err == nil && o.Project == project {
			used += units(op.Bits())
		}
	}
	if used > uint64(*sp.DefaultQuota) {
		return store.Fault(store.KindConflict, "SubnetPoolQuotaExceeded", "Per-tenant subnet pool prefix quota exceeded.")
	}
	return nil
}
