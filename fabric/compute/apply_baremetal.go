package compute

import (
	"errors"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/baremetal/bmstate"
	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/store"
)

// Servers on bare metal. A server of a bare-metal flavor is placed on a
// whole node of the flavor's resource class instead of a host: the claim
// happens in the apply that creates the server, so two servers never
// take one node, and every later change of the server that the node
// must follow (delete, stop, start, reboot) changes the node in the same
// apply. The conductor that drives the node reports the server's state
// through Report, as a servers agent does for a virtual machine.

// noValidHost is Nova's fault for a server no node could take.
const noValidHost = "No valid host was found. There are not enough hosts available."

// baremetalClaim is what server create asks of the apply for a
// bare-metal flavor: a node of Class, whose instance_info gets Info (and
// each server's display_name).
type baremetalClaim struct {
	Class string         `json:"class"`
	Info  map[string]any `json:"info"`
}

// isBaremetal reports whether a server is of a bare-metal flavor (it may
// have no node: one whose claim failed).
func isBaremetal(s *Server) bool {
	return s.Baremetal != "" || computestate.BaremetalClass(&s.Flavor) != ""
}

// claimNode claims a node for a bare-metal server: the node starts
// deploying (the conductor acts on it), holding an Ironic allocation of
// the server's id, and the server records it, with the node's conductor
// as its host. No free node is Nova's build
// failure, with nothing claimed.
func claimNode(tx *memdb.Txn, s *Server, c serverCreateCmd) error {
	info := map[string]any{"display_name": s.Name}
	for k, v := range c.Baremetal.Info {
		info[k] = v
	}
	// A deploy template the traits select must be one the deploy can
	// run: refused here, not failed on the node later.
	if _, err := bmstate.PlanDeploySteps(tx, bmstate.InstanceTraits(&bmstate.Node{InstanceInfo: info})); err != nil {
		return err
	}
	n, err := bmstate.ClaimClass(tx, c.Baremetal.Class, s.ID, info, c.Now)
	var ae *store.ApplyError
	switch {
	case errors.As(err, &ae) && ae.Fault == bmstate.FaultNoNode:
		buildFailed(s, noValidHost, c.Now)
		return nil
	case err != nil:
		return err
	}
	if err := bmstate.Allocate(tx, n, s.ID, c.Now); err != nil {
		return err
	}
	if err := bmstate.PutClaimed(tx, n); err != nil {
		return err
	}
	s.Baremetal, s.Host = n.ID, n.Conductor
	s.Ports, s.CreatedPorts = []string{}, nil
	setState(s, vmBuilding, "spawning")
	return nil
}

// unsupportedOnBaremetal are the actions a machine cannot do: there is
// no hypervisor to pause or suspend it.
var unsupportedOnBaremetal = map[string]bool{"pause": true, "unpause": true, "suspend": true, "resume": true}

// baremetalNotSupported is the 409 for an action a bare-metal server
// cannot do.
func baremetalNotSupported(action, id string) error {
	return conflict("Cannot '%s' instance %s: %s is not supported for bare-metal servers.", action, id, action)
}

// nodePower is the node power target an action asks for: a soft reboot
// is a reset too (no hypervisor can ask the guest), as Nova's Ironic
// driver falls back to a hard reboot.
func nodePower(action string) string {
	switch action {
	case "stop":
		return bmstate.PowerOff
	case "start":
		return bmstate.PowerOn
	case "reboot":
		return bmstate.Rebooting
	}
	return ""
}

// nodePowerSettled reports whether the node a server is on has no power
// change pending (the conductor clears TargetPowerState once it acted):
// a reboot of a bare-metal server completes when the node is back on
// with nothing pending, as the conductor does not count reboots.
func nodePowerSettled(tx *memdb.Txn, s *Server) bool {
	n := bmstate.NodeByInstance(tx, s.ID)
	return n != nil && n.TargetPowerState == "" && n.PowerState != bmstate.PowerOff
}
