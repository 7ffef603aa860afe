package network

import "time"

// Command handlers, one file per entity (networks_fsm.go, ports_fsm.go…),
// registered in Schema. They run in the FSM on every node: deterministic, no
// clock, no I/O, no randomness. Ids and times come in the command; VLAN
// ids, MACs and addresses are chosen here from the state alone, so that
// two concurrent requests can never get the same one.

// idCmd names the one row a command acts on (a delete); Admin says the
// proposer holds the admin role.
type idCmd struct {
	ifMatch
	ID    string    `json:"id"`
	Admin bool      `json:"admin,omitempty"`
	Now   time.Time `json:"now"`
}

// set applies an optional update field.
func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// touch marks a row changed: Neutron's updated_at and revision_number.
func touch(updated *time.Time, rev *int, now time.Time) {
	*updated = now
	*rev++
}

// dhcpOwner is the device_owner of ports the network itself owns: they
// go with the network and never keep it or its subnets in use.
const dhcpOwner = "network:dhcp"
