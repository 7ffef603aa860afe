package network

import (
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// checkNetworkOwnership is Neutron's network ownership check on a POST of
// a port or subnet (its OwnershipValidationHook): a non-admin's resource
// goes only on a network shared with its project (by flag or RBAC
// policy) or one of the resource's own project.
// Networks the caller cannot see were refused before, 404 as if absent;
// this refuses the visible rest, unshared external networks, with 403 and
// Neutron's message. An external network is the routers' and floating
// IPs' to use: a member's port there would sit on the operator's outside
// segment.
func checkNetworkOwnership(tx *memdb.Txn, p *api.Principal, n *Network, project, resource string) error {
	if p.IsAdmin() || sharedWith(tx, n, project) {
		return nil
	}
	return store.Fault(store.KindForbidden, "HTTPForbidden", "Tenant %s not allowed to create %s on this network", project, resource)
}
