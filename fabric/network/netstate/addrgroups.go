package netstate

import "time"

// AddressGroup is a named set of CIDRs a security group rule can take
// as its remote (remote_address_group_id): the rule matches what comes
// from (ingress) or goes to (egress) any of them, and nothing when the
// set is empty.
type AddressGroup struct {
	ID          string `json:"id"`
	Project     string `json:"project"`
	Name        string `json:"name"`
	Description string `json:"description"`
	// Addresses are normalized CIDRs (host bits zero, a bare address a
	// /32 or /128), sorted, each once.
	Addresses []string  `json:"addresses"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Revision  int       `json:"revision"`
}

// TableAddressGroups holds the address groups.
const TableAddressGroups = "network_address_groups"
