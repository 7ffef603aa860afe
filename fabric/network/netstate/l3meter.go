package netstate

import "time"

// AddressScope is a set of subnet pools whose prefixes never overlap
// (Neutron's address-scope): addresses in one scope are unique, so a
// router routes between subnets of one scope without NAT.
type AddressScope struct {
	ID        string    `json:"id"`
	Project   string    `json:"project"`
	Name      string    `json:"name"`
	IPVersion int       `json:"ip_version"`
	Shared    bool      `json:"shared,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Revision  int       `json:"revision"`
}

// MeteringLabel counts the traffic through the external gateways of its
// project's routers (of every project's, when Shared) that its rules
// match.
type MeteringLabel struct {
	ID          string `json:"id"`
	Project     string `json:"project"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Shared      bool   `json:"shared,omitempty"`
}

// MeteringRule says which traffic of a direction its label counts, or,
// Excluded, does not count although another rule of the label matches.
// Remote is the far side's prefix (remote_ip_prefix); Source and
// Destination name the two sides explicitly instead. "" matches any.
type MeteringRule struct {
	ID          string `json:"id"`
	LabelID     string `json:"label_id"`
	Project     string `json:"project"`
	Direction   string `json:"direction"` // ingress (into the router from outside), egress
	Excluded    bool   `json:"excluded,omitempty"`
	Remote      string `json:"remote,omitempty"`
	Source      string `json:"source,omitempty"`
	Destination string `json:"destination,omitempty"`
}

// Table names of address scopes and metering.
const (
	TableAddressScopes  = "network_address_scopes"
	TableMeteringLabels = "network_metering_labels"
	TableMeteringRules  = "network_metering_rules"
)
