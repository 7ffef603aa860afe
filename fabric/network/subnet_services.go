package network

import (
	"slices"
	"strings"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Subnet service types (Neutron's subnet-service-types): a subnet may
// name the device owners whose ports get their addresses there
// ("compute:nova", "network:floatingip", "network:router_gateway"). The
// allocator then gives such a port an address of a subnet naming its
// owner before one of a subnet naming none, and never gives another
// port an address of a subnet with service types (but a DHCP port one
// of any subnet with DHCP on), as Neutron's IPAM does.

// A service type is a device owner: "<owner>:<kind>", the owner part not
// empty ("compute:nova", "network:floatingip", "trunk:subport"). Neutron
// 3.1's neutron-lib held them to the network:, neutron: and compute:
// prefixes, but neutron-tempest-plugin's
// test_allocate_ips_are_from_correct_subnet makes subnets of
// "test:type_1", as the Neutron it gates accepts: any owner is taken,
// and a string that is no device owner at all ("nova") is refused.
func validServiceType(st string) bool {
	owner, _, ok := strings.Cut(st, ":")
	return ok && strings.TrimSpace(owner) != "" && strings.TrimSpace(st) == st
}

// readServiceTypes reads "service_types": device owners, each once.
func readServiceTypes(rd *api.Input) []string {
	if rd.Has("service_types") && rd.IsNull("service_types") {
		return []string{}
	}
	out := []string{}
	for _, st := range rd.Strs("service_types") {
		if !validServiceType(st) {
			rd.Fail(&store.ApplyError{Kind: store.KindInvalid, Fault: "InvalidSubnetServiceType", Field: "service_types",
				Msg: "Subnet service type " + st + " does not correspond to a valid device owner."})
			return nil
		}
		if len(st) > 255 {
			rd.Fail(badInput("service_types", "'%s' exceeds maximum length of 255", st))
			return nil
		}
		if !slices.Contains(out, st) {
			out = append(out, st)
		}
	}
	return out
}

// servesOwner says whether a port of device owner may get an address of
// subnet s: s names no service type, or names owner, or the port is a
// DHCP port and s has DHCP on.
func servesOwner(s *Subnet, owner string) bool {
	return len(s.ServiceTypes) == 0 || slices.Contains(s.ServiceTypes, owner) ||
		(owner == "network:dhcp" && s.EnableDHCP)
}

// forOwner is the subnets a port of owner may have addresses on, those
// naming a service type first (Neutron's priority), each part in the
// order given.
func forOwner(subnets []*Subnet, owner string) []*Subnet {
	var typed, plain []*Subnet
	for _, s := range subnets {
		switch {
		case !servesOwner(s, owner):
		case len(s.ServiceTypes) > 0:
			typed = append(typed, s)
		default:
			plain = append(plain, s)
		}
	}
	return append(typed, plain...)
}

// noMatchingSubnet is Neutron's error for a port whose device owner no
// subnet of the network serves.
func noMatchingSubnet(network, owner string) error {
	return store.Fault(store.KindInvalid, "IpAddressGenerationFailureNoMatchingSubnet",
		"No valid service subnet for the given device owner, network %s, service type %s.", network, owner)
}
