package network

import (
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

type scopeCreateCmd struct {
	Scopes []AddressScope `json:"scopes"`
}

func applyScopeCreate(tx *memdb.Txn, c scopeCreateCmd) (any, error) {
	out := make([]AddressScope, 0, len(c.Scopes))
	for _, sc := range c.Scopes {
		if store.Get[AddressScope](tx, tAddressScopes, sc.ID) != nil {
			return nil, store.Conflictf("address scope %s exists", sc.ID)
		}
		if err := tx.Insert(tAddressScopes, &sc); err != nil {
			return nil, err
		}
		out = append(out, sc)
	}
	return out, nil
}

type scopeUpdateCmd struct {
	ifMatch
	ID     string    `json:"id"`
	Name   *string   `json:"name,omitempty"`
	Shared *bool     `json:"shared,omitempty"`
	Now    time.Time `json:"now"`
}

func applyScopeUpdate(tx *memdb.Txn, c scopeUpdateCmd) (any, error) {
	old, err := current(tx, tAddressScopes, "address_scope", c.ID, c.ifMatch, func(r *AddressScope) int { return r.Revision })
	if err != nil {
		return nil, err
	}
	sc := *old
	set(&sc.Name, c.Name)
	if c.Shared != nil && !*c.Shared && old.Shared {
		// Other projects' pools may be in it.
		return nil, store.Fault(store.KindInvalid, "AddressScopeUpdateError",
			"Unable to update address scope %s : Shared address scope can't be unshared.", sc.ID)
	}
	set(&sc.Shared, c.Shared)
	touch(&sc.UpdatedAt, &sc.Revision, c.Now)
	return sc, tx.Insert(tAddressScopes, &sc)
}

func applyScopeDelete(tx *memdb.Txn, c idCmd) (any, error) {
	sc, err := current(tx, tAddressScopes, "address_scope", c.ID, c.ifMatch, func(r *AddressScope) int { return r.Revision })
	if err != nil {
		return nil, err
	}
	if raw, _ := tx.First(tSubnetPools, "address_scope", sc.ID); raw != nil {
		return nil, store.Fault(store.KindConflict, "AddressScopeInUse",
			"Unable to complete operation on address scope %s. There are one or more subnet pools in use on the address scope.", sc.ID)
	}
	return nil, tx.Delete(tAddressScopes, sc)
}

// checkPoolScope checks, when a pool is created or changed, that its
// address scope still exists and that no other pool of it overlaps it.
func checkPoolScope(tx *memdb.Txn, sp *SubnetPool) error {
	if sp.AddressScopeID == "" {
		return nil
	}
	sc := store.Get[AddressScope](tx, tAddressScopes, sp.AddressScopeID)
	if sc == nil {
		return notFound("address_scope", sp.AddressScopeID)
	}
	if sc.IPVersion != sp.IPVersion {
		return store.Fault(store.KindInvalid, "IllegalSubnetPoolIpVersionAssociationToAddressScope",
			"Illegal subnetpool association: subnetpool of IPv%d cannot be associated with address scope %s of IPv%d.", sp.IPVersion, sc.ID, sc.IPVersion)
	}
	return scopeOverlap(tx, sp)
}
