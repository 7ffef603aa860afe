package main

import (
	"log/slog"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/baremetal"
	"github.com/rackstack/rackstack/fabric/cluster"
)

// defaultResourceClass is a new bare-metal node's resource class when its
// creator names none: the class a bare-metal flavor
// (resources:CUSTOM_BAREMETAL=1) asks for.
const defaultResourceClass = "baremetal"

// openBaremetal builds the Ironic API over the cluster: BMC passwords are
// sealed with the cluster key, and nodes go to the conductors that
// register in the state (a rackd with provisioning services).
func openBaremetal(o *options, node *cluster.Node, auth api.Authenticator, log *slog.Logger) (*baremetal.Service, error) {
	return baremetal.New(baremetal.Config{
		Repl: node, Auth: auth, Secrets: node.Secrets(), Log: log, PublicURL: o.PublicURL,
		DefaultResourceClass: defaultResourceClass,
	})
}
