package network

import (
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

type addrGroupCreateCmd struct {
	Groups []AddressGroup `json:"groups"`
}

func applyAddrGroupCreate(tx *memdb.Txn, c addrGroupCreateCmd) (any, error) {
	out := make([]AddressGroup, 0, len(c.Groups))
	for _, ag := range c.Groups {
		if store.Get[AddressGroup](tx, tAddressGroups, ag.ID) != nil {
			return nil, store.Conflictf("address group %s exists", ag.ID)
		}
		if err := tx.Insert(tAddressGroups, &ag); err != nil {
			return nil, err
		}
		out = append(out, ag)
	}
	return out, nil
}

// addrGroupUpdateCmd changes a group's name or description, or adds and
// removes addresses (merged into the addresses the group has when it is
// applied).
type addrGroupUpdateCmd struct {
	ifMatch
	ID          string    `json:"id"`
	Name        *string   `json:"name,omitempty"`
	Description *string   `json:"description,omitempty"`
	Add         []string  `json:"add,omitempty"`
	Remove      []string  `json:"remove,omitempty"`
	Now         time.Time `json:"now"`
}

func applyAddrGroupUpdate(tx *memdb.Txn, c addrGroupUpdateCmd) (any, error) {
	old, err := current(tx, tAddressGroups, "address_group", c.ID, c.ifMatch, func(r *AddressGroup) int { return r.Revision })
	if err != nil {
		return nil, err
	}
	ag := *old
	set(&ag.Name, c.Name)
	set(&ag.Description, c.Description)
	if len(c.Add) > 0 || len(c.Remove) > 0 {
		if ag.Addresses, err = mergeAddresses(ag.ID, old.Addresses, c.Add, c.Remove); err != nil {
			return nil, err
		}
	}
	touch(&ag.UpdatedAt, &ag.Revision, c.Now)
	return ag, tx.Insert(tAddressGroups, &ag)
}

func applyAddrGroupDelete(tx *memdb.Txn, c idCmd) (any, error) {
	ag, err := current(tx, tAddressGroups, "address_group", c.ID, c.ifMatch, func(r *AddressGroup) int { return r.Revision })
	if err != nil {
		return nil, err
	}
	if raw, _ := tx.First(tRules, "remote_address_group", ag.ID); raw != nil {
		return nil, store.Fault(store.KindConflict, "AddressGroupInUse",
			"Address group %s is in use on one or more security group rules.", ag.ID)
	}
	if err := dropAddrGroupPolicies(tx, ag.ID); err != nil {
		return nil, err
	}
	return nil, tx.Delete(tAddressGroups, ag)
}
