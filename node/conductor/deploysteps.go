package conductor

import (
	"context"
	"fmt"
	"strings"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/baremetal/bmstate"
)

// Deploy steps (bmstate.DeploySteps) split at the image write: the agent
// runs the in-band steps with it, the BMC the out-of-band ones, before
// the agent boots or after it wrote, in priority order.

// stepsAround returns the steps that run before and after
// deploy.write_image.
func stepsAround(plan []bmstate.DeployStep) (before, after []bmstate.DeployStep) {
	for i, s := range plan {
		if s.Name() == bmstate.StepWriteImage {
			return plan[:i], plan[i+1:]
		}
	}
	return nil, plan
}

// runOutOfBand runs the BMC's steps of a deploy in order and returns the
// power state the last one left; a step that fails, or one that is not
// the BMC's, ends it with an error naming the step.
func runOutOfBand(ctx context.Context, b BMC, steps []bmstate.DeployStep) (string, error) {
	power := ""
	for _, s := range steps {
		var err error
		switch s.Name() {
		case bmstate.StepEraseMetadata:
			continue // the agent's, with the write
		case bmstate.StepSetBootDevice:
			device, _ := s.Args["device"].(string)
			persistent, _ := s.Args["persistent"].(bool)
			err = b.SetBootDevice(ctx, device, persistent)
		case bmstate.StepPrepareBoot:
			err = b.SetBootDevice(ctx, BootDisk, true)
		case bmstate.StepBootInstance:
			var on bool
			if on, err = b.PowerState(ctx); err == nil {
				action := PowerOn
				if on {
					action = PowerReset
				}
				power, err = setPower(ctx, b, action)
			}
		default:
			err = fmt.Errorf("no such step here")
		}
		if err != nil {
			return power, fmt.Errorf("deploy step %s (priority %d): %w", s.Name(), s.Priority, err)
		}
	}
	return power, nil
}

// planDeploy is the node's deploy plan from the state, or the reason it
// cannot be deployed.
func planDeploy(txn *memdb.Txn, n *bmstate.Node) ([]bmstate.DeployStep, error) {
	plan, err := bmstate.DeploySteps(txn, n)
	if err != nil {
		return nil, fmt.Errorf("plan deploy steps: %w", err)
	}
	return plan, nil
}

// stepNames lists steps for the node's event log.
func stepNames(steps []bmstate.DeployStep) string {
	var names []string
	for _, s := range steps {
		names = append(names, fmt.Sprintf("%s(%d)", s.Name(), s.Priority))
	}
	return strings.Join(names, ", ")
}
