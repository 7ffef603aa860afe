package conductor

import (
	"context"
	"fmt"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/baremetal/bmstate"
	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/provision/agentapi"
)

// OpInspect is the AgentBoot.Op of an inspection (clean and deploy use
// agentapi's op names).
const OpInspect = "inspect"

// goneKey in DriverInternalInfo holds the server a torn-down node
// carried until the compute service was told it is gone: the report
// survives a restart without keeping the node tied to the server.
const goneKey = "undeployed_instance"

// bootStates are the working states that boot the agent: their op and
// the state they wait in.
var bootStates = map[string]struct{ op, wait string }{
	bmstate.StateInspecting: {OpInspect, bmstate.StateInspectWait},
	bmstate.StateCleaning:   {agentapi.OpClean, bmstate.StateCleanWait},
	bmstate.StateDeploying:  {agentapi.OpDeploy, bmstate.StateDeployWait},
}

// step moves one of this conductor's nodes on from where its row is.
func (c *Conductor) step(ctx context.Context, txn *memdb.Txn, n *bmstate.Node, syncPower bool) error {
	working := bmstate.Working(n.ProvisionState)
	if !working {
		// Requests through the API come first; the node's row changes,
		// and the next pass (the watch fires) sees the rest.
		if n.BootDeviceSeq > n.BootDeviceDone {
			return c.bootDeviceRequest(ctx, n)
		}
		if n.TargetPowerState != "" {
			return c.powerRequest(ctx, n)
		}
	}
	if bs, ok := bootStates[n.ProvisionState]; ok && n.Agent != nil && n.Agent.Op == bs.op && n.Agent.Done {
		// The agent finished before the node was moved to its wait state
		// (rackd stopped in between): wait takes its result from here.
		return c.toWait(ctx, n)
	}
	if to, ok := fakeDone(n); ok {
		return c.fakeWork(ctx, n, to)
	}
	switch n.ProvisionState {
	case bmstate.StateVerifying:
		return c.verify(ctx, n, bmstate.StateManageable)
	case bmstate.StateAdopting:
		// Ironic's adoption: a machine deployed elsewhere is taken over
		// as it runs once its BMC answers; nothing is written to it.
		return c.verify(ctx, n, bmstate.StateActive)
	case bmstate.StateInspecting:
		return c.startBoot(ctx, n, agentapi.Command{Op: agentapi.OpWait})
	case bmstate.StateCleaning:
		return c.startBoot(ctx, n, agentapi.Command{ID: newUUID(), Op: agentapi.OpClean, Clean: &agentapi.CleanArgs{}})
	case bmstate.StateDeploying:
		return c.deploy(ctx, txn, n)
	case bmstate.StateInspectWait, bmstate.StateCleanWait, bmstate.StateDeployWait:
		return c.wait(ctx, txn, n)
	case bmstate.StateDeleting:
		return c.teardown(ctx, n)
	}
	if err := c.reportServer(ctx, txn, n); err != nil {
		return err
	}
	if n.Agent != nil {
		// An aborted operation, or one the API moved on from: its token
		// must stop working.
		_, _, err := c.change(ctx, n.ID, func(m *bmstate.Node) bool {
			if bmstate.Working(m.ProvisionState) || m.Agent == nil || m.Agent.ID != n.Agent.ID {
				return false
			}
			m.Agent = nil
			return true
		})
		return err
	}
	if syncPower {
		c.syncPower(ctx, n)
	}
	return nil
}

// fakeDone says where a node whose working state is carried out by one
// of Ironic's "fake" interfaces goes: fake-hardware nodes (Ironic's test
// driver, which tempest and operators' dry runs use) inspect, clean and
// deploy nothing and finish at once, as in Ironic. Cleaning comes from
// the deploy interface, as Ironic's clean steps do.
func fakeDone(n *bmstate.Node) (string, bool) {
	iface := map[string]string{
		bmstate.StateInspecting: "inspect", bmstate.StateCleaning: "deploy", bmstate.StateDeploying: "deploy",
	}[n.ProvisionState]
	if iface == "" || n.Interfaces[iface] != "fake" || n.Agent != nil {
		return "", false
	}
	switch n.ProvisionState {
	case bmstate.StateInspecting:
		return bmstate.StateManageable, true
	case bmstate.StateDeploying:
		return bmstate.StateActive, true
	}
	return bmstate.CleanedTo(n), true
}

// fakeWork finishes a fake interface's operation: the power it leaves
// (on after a deploy, off after cleaning) is set through the node's BMC
// unless that too is fake, the rest is only recorded.
func (c *Conductor) fakeWork(ctx context.Context, n *bmstate.Node, to string) error {
	from := n.ProvisionState
	power := n.PowerState
	// Ironic's fake deploy and clean steps make no power actions on a
	// fake power interface either.
	if from != bmstate.StateInspecting && n.Interfaces["power"] != "fake" {
		err := c.withBMC(ctx, n, func(ctx context.Context, b BMC) error {
			var err error
			if from == bmstate.StateDeploying {
				power, err = bootFrom(ctx, b, BootDisk, true)
			} else {
				power, err = powerOff(ctx, b)
			}
			return err
		})
		if err != nil {
			return c.fail(ctx, n.ID, from, fmt.Sprintf("Failed to finish %s of node %s: its BMC failed: %v", from, n.ID, err))
		}
	}
	_, _, err := c.change(ctx, n.ID, func(m *bmstate.Node) bool {
		if m.ProvisionState != from || m.Agent != nil {
			return false
		}
		now := c.now()
		m.ProvisionState, m.TargetProvisionState = to, ""
		m.ProvisionUpdatedAt = now
		m.PowerState, m.LastError = power, ""
		if from == bmstate.StateInspecting {
			m.InspectedAt = now
		}
		c.event(m, "INFO", "provisioning", from+" → "+to+": nothing to do for the fake interfaces")
		return true
	})
	return err
}

// fail puts a node that is in state from into its failure state with
// last_error; the agent's token stops working.
func (c *Conductor) fail(ctx context.Context, id, from, msg string) error {
	_, changed, err := c.change(ctx, id, func(m *bmstate.Node) bool {
		if m.ProvisionState != from {
			return false
		}
		now := c.now()
		m.ProvisionState = bmstate.Failed(from)
		m.TargetProvisionState = ""
		m.ProvisionUpdatedAt = now
		m.LastError = msg
		m.Agent = nil
		c.event(m, "ERROR", "provisioning", from+" failed: "+msg)
		return true
	})
	if changed {
		c.log().Warn("conductor: node failed", "node", id, "state", from, "to", bmstate.Failed(from), "err", msg)
	}
	return err
}

// verify checks the BMC credentials with a real BMC call (manage,
// adopt) and moves the node to "to".
func (c *Conductor) verify(ctx context.Context, n *bmstate.Node, to string) error {
	from := n.ProvisionState
	power, err := c.readPower(ctx, n)
	if err != nil {
		return c.fail(ctx, n.ID, from, fmt.Sprintf("Failed to verify the BMC of node %s: %v", n.ID, err))
	}
	_, _, cerr := c.change(ctx, n.ID, func(m *bmstate.Node) bool {
		if m.ProvisionState != from {
			return false
		}
		m.ProvisionState, m.TargetProvisionState = to, ""
		m.ProvisionUpdatedAt = c.now()
		m.PowerState, m.LastError = power, ""
		c.event(m, "INFO", "provisioning", from+" → "+to+": the BMC answers, "+power)
		return true
	})
	return cerr
}

// startBoot makes the agent boot of a working state (a new one, or the
// one a previous rackd made before it stopped), boots the machine into
// the ramdisk over its BMC, and moves to the wait state.
func (c *Conductor) startBoot(ctx context.Context, n *bmstate.Node, cmd agentapi.Command) error {
	state := n.ProvisionState
	bs := bootStates[state]
	if ag := n.Agent; ag == nil || ag.Op != bs.op || ag.Done {
		now := c.now()
		bootID := newUUID()
		boot := bmstate.AgentBoot{
			ID: bootID, TokenSHA256: hashToken(c.token(n.ID, bootID)), Op: bs.op, Command: cmd,
			Started: now, Deadline: now.Add(orDefault(c.CallbackTimeout, 10*time.Minute)),
		}
		m, _, err := c.change(ctx, n.ID, func(m *bmstate.Node) bool {
			if m.ProvisionState != state || (m.Agent != nil && m.Agent.Op == bs.op && !m.Agent.Done) {
				return false
			}
			b := boot
			m.Agent = &b
			m.LastError = ""
			if bs.op == OpInspect {
				m.InspectionStartedAt = now
			}
			c.event(m, "INFO", "provisioning", state+": booting the agent ramdisk to "+bs.op)
			return true
		})
		if err != nil {
			return err
		}
		if m.ProvisionState != state || m.Agent == nil {
			return nil
		}
		n = m
	}
	bootID := n.Agent.ID
	var power string
	err := c.withBMC(ctx, n, func(ctx context.Context, b BMC) error {
		p, err := bootFrom(ctx, b, BootPXE, false)
		power = p
		return err
	})
	if err != nil {
		return c.fail(ctx, n.ID, state, fmt.Sprintf("Failed to boot node %s into the agent ramdisk: %v", n.ID, err))
	}
	_, _, err = c.change(ctx, n.ID, func(m *bmstate.Node) bool {
		if m.ProvisionState != state || m.Agent == nil || m.Agent.ID != bootID {
			return false
		}
		now := c.now()
		m.ProvisionState = bs.wait
		m.ProvisionUpdatedAt = now
		m.PowerState = power
		if m.Agent.LastHeartbeat.IsZero() {
			// The machine was only now powered into PXE: its time to
			// call back starts here.
			m.Agent.Deadline = now.Add(orDefault(c.CallbackTimeout, 10*time.Minute))
		}
		c.event(m, "INFO", "provisioning", state+" → "+bs.wait+": powered into PXE, waiting for the agent")
		return true
	})
	return err
}

// toWait moves a working node whose agent already reported to the wait
// state, without booting anything.
func (c *Conductor) toWait(ctx context.Context, n *bmstate.Node) error {
	state, bootID := n.ProvisionState, n.Agent.ID
	_, _, err := c.change(ctx, n.ID, func(m *bmstate.Node) bool {
		if m.ProvisionState != state || m.Agent == nil || m.Agent.ID != bootID {
			return false
		}
		m.ProvisionState = bootStates[state].wait
		m.ProvisionUpdatedAt = c.now()
		c.event(m, "INFO", "provisioning", state+" → "+m.ProvisionState+": the agent had already reported")
		return true
	})
	return err
}

// wait watches a node whose agent is working: its result moves the node
// on, its silence past the deadline fails it.
func (c *Conductor) wait(ctx context.Context, txn *memdb.Txn, n *bmstate.Node) error {
	state := n.ProvisionState
	ag := n.Agent
	if ag == nil {
		return c.fail(ctx, n.ID, state, "the agent boot record is missing: nothing to wait for")
	}
	if !ag.Done {
		now := c.now()
		if !now.After(ag.Deadline) {
			return nil
		}
		var msg string
		if ag.LastHeartbeat.IsZero() {
			msg = fmt.Sprintf("timed out waiting for the agent: no call back since the boot at %s (%s allowed)",
				ag.Started.Format(time.RFC3339), orDefault(c.CallbackTimeout, 10*time.Minute))
		} else {
			msg = fmt.Sprintf("timed out waiting for the agent: no heartbeat since %s (%s allowed)",
				ag.LastHeartbeat.Format(time.RFC3339), orDefault(c.HeartbeatTimeout, 90*time.Second))
		}
		return c.fail(ctx, n.ID, state, msg)
	}
	if ag.Result == nil || !ag.Result.OK {
		why := "the agent reported a failure"
		if ag.Result != nil && ag.Result.Error != "" {
			why = ag.Result.Error
		}
		return c.fail(ctx, n.ID, state, fmt.Sprintf("the agent's %s failed: %s", ag.Op, why))
	}
	switch ag.Op {
	case OpInspect:
		return c.finish(ctx, n, bmstate.StateManageable, "inspected", powerOff)
	case agentapi.OpClean:
		return c.finish(ctx, n, bmstate.CleanedTo(n), "cleaned", powerOff)
	case agentapi.OpDeploy:
		// The steps after the write, from the plan as it stands now.
		plan, err := planDeploy(txn, n)
		if err != nil {
			return c.fail(ctx, n.ID, state, err.Error())
		}
		_, after := stepsAround(plan)
		return c.finish(ctx, n, bmstate.StateActive, "deployed", func(ctx context.Context, b BMC) (string, error) {
			return runOutOfBand(ctx, b, after)
		})
	}
	return c.fail(ctx, n.ID, state, "unknown agent operation "+ag.Op)
}

func powerOff(ctx context.Context, b BMC) (string, error) { return setPower(ctx, b, PowerOff) }

// finish does the BMC step that ends an operation and moves the node to
// its target.
func (c *Conductor) finish(ctx context.Context, n *bmstate.Node, to, what string, do func(context.Context, BMC) (string, error)) error {
	state, bootID := n.ProvisionState, n.Agent.ID
	var power string
	err := c.withBMC(ctx, n, func(ctx context.Context, b BMC) error {
		p, err := do(ctx, b)
		power = p
		return err
	})
	if err != nil {
		return c.fail(ctx, n.ID, state, fmt.Sprintf("Failed to finish: node %s was %s, but its BMC failed: %v", n.ID, what, err))
	}
	_, _, err = c.change(ctx, n.ID, func(m *bmstate.Node) bool {
		if m.ProvisionState != state || m.Agent == nil || m.Agent.ID != bootID {
			return false
		}
		msg := ""
		if m.Agent.Result != nil {
			msg = m.Agent.Result.Message
		}
		m.ProvisionState, m.TargetProvisionState = to, ""
		m.ProvisionUpdatedAt = c.now()
		m.PowerState, m.LastError, m.Agent = power, "", nil
		ev := state + " → " + to + ": " + what
		if msg != "" {
			ev += " (" + msg + ")"
		}
		c.event(m, "INFO", "provisioning", ev)
		return true
	})
	return err
}

// deploy prepares what the agent writes — the raw image, the config
// drive, the root disk — and boots the agent to write it.
func (c *Conductor) deploy(ctx context.Context, txn *memdb.Txn, n *bmstate.Node) error {
	if ag := n.Agent; ag != nil && ag.Op == agentapi.OpDeploy && !ag.Done {
		// A previous rackd prepared it and stopped before the node
		// waited: the cache has the image.
		return c.startBoot(ctx, n, ag.Command)
	}
	from := bmstate.StateDeploying
	imageID, _ := n.InstanceInfo["image_source"].(string)
	if imageID == "" {
		return c.fail(ctx, n.ID, from, "instance_info has no image_source: nothing to deploy")
	}
	plan, err := planDeploy(txn, n)
	if err != nil {
		return c.fail(ctx, n.ID, from, err.Error())
	}
	before, _ := stepsAround(plan)
	img, err := c.rawImage(ctx, imageID)
	if err != nil {
		return c.fail(ctx, n.ID, from, fmt.Sprintf("Failed to prepare image %s: %v", imageID, err))
	}
	args := &agentapi.DeployArgs{ImageSize: img.Size, ImageSHA256: img.SHA256}
	for _, st := range before {
		if st.Name() == bmstate.StepEraseMetadata {
			args.EraseMetadata = true
		}
	}
	if len(before) > 0 {
		// The template steps before the write: the BMC's now, in order;
		// the agent's (the erase) with the write.
		if err := c.withBMC(ctx, n, func(ctx context.Context, b BMC) error {
			_, err := runOutOfBand(ctx, b, before)
			return err
		}); err != nil {
			return c.fail(ctx, n.ID, from, fmt.Sprintf("Failed to deploy node %s: %v", n.ID, err))
		}
		c.log().Info("conductor: deploy steps before the image write done", "node", n.ID, "steps", stepNames(before))
	}
	if cd := n.InstanceInfo["configdrive"]; isConfigDrive(cd) {
		// Given with the deploy through Ironic's API: it is what the
		// operator wants on the machine, server or not. (The compute
		// service's claim marks it true: the drive is the server's.)
		if err := c.instanceConfigDrive(ctx, n, cd); err != nil {
			return c.fail(ctx, n.ID, from, fmt.Sprintf("Failed to build the config drive: %v", err))
		}
		args.ConfigDrive = true
	} else if sv := store.Get[computestate.Server](txn, computestate.TableServers, n.InstanceUUID); sv != nil && n.InstanceUUID != "" {
		if err := c.buildConfigDrive(ctx, n.ID, *sv); err != nil {
			return c.fail(ctx, n.ID, from, fmt.Sprintf("Failed to build the config drive: %v", err))
		}
		args.ConfigDrive = true
	}
	if n.Inventory != nil {
		if args.RootDisk, err = rootDisk(n, img.Size); err != nil {
			return c.fail(ctx, n.ID, from, err.Error())
		}
	}
	return c.startBoot(ctx, n, agentapi.Command{ID: newUUID(), Op: agentapi.OpDeploy, Deploy: args})
}

// isConfigDrive says whether instance_info's configdrive is a drive of
// Ironic's forms (a dict, or a string: an ISO or its URL).
func isConfigDrive(v any) bool {
	switch v.(type) {
	case map[string]any, string:
		return true
	}
	return false
}

// teardown powers a deployed node off and hands it to cleaning; the
// server it carried is reported gone once the node is no more its.
func (c *Conductor) teardown(ctx context.Context, n *bmstate.Node) error {
	var power string
	err := c.withBMC(ctx, n, func(ctx context.Context, b BMC) error {
		p, err := powerOff(ctx, b)
		power = p
		return err
	})
	if err != nil {
		return c.fail(ctx, n.ID, bmstate.StateDeleting, fmt.Sprintf("Failed to tear down node %s: %v", n.ID, err))
	}
	_, _, err = c.change(ctx, n.ID, func(m *bmstate.Node) bool {
		if m.ProvisionState != bmstate.StateDeleting {
			return false
		}
		m.ProvisionState = bmstate.StateCleaning
		if m.TargetProvisionState == "" {
			m.TargetProvisionState = bmstate.StateAvailable
		}
		m.ProvisionUpdatedAt = c.now()
		m.PowerState, m.Agent = power, nil
		if m.InstanceUUID != "" {
			if m.DriverInternalInfo == nil {
				m.DriverInternalInfo = map[string]any{}
			}
			m.DriverInternalInfo[goneKey] = m.InstanceUUID
		}
		m.InstanceUUID, m.InstanceInfo = "", nil
		c.event(m, "INFO", "provisioning", "deleting → cleaning: powered off, instance removed")
		return true
	})
	return err
}

// reportServer tells the compute service what became of the server on a
// node, from the rows alone, so a report lost to a restart is made again.
func (c *Conductor) reportServer(ctx context.Context, txn *memdb.Txn, n *bmstate.Node) error {
	if gone, _ := n.DriverInternalInfo[goneKey].(string); gone != "" && c.Report != nil {
		if sv := store.Get[computestate.Server](txn, computestate.TableServers, gone); sv != nil {
			if err := c.Report(ctx, gone, computestate.Observed{Gone: true}); err != nil {
				return fmt.Errorf("report server %s gone: %w", gone, err)
			}
		}
		c.mu.Lock()
		delete(c.reported, gone)
		c.mu.Unlock()
		_, _, err := c.change(ctx, n.ID, func(m *bmstate.Node) bool {
			if m.DriverInternalInfo[goneKey] != gone {
				return false
			}
			delete(m.DriverInternalInfo, goneKey)
			return true
		})
		return err
	}
	if n.InstanceUUID == "" || c.Report == nil {
		return nil
	}
	sv := store.Get[computestate.Server](txn, computestate.TableServers, n.InstanceUUID)
	if sv == nil || sv.Want == "deleted" {
		return nil
	}
	var o computestate.Observed
	switch n.ProvisionState {
	case bmstate.StateActive:
		if n.TargetPowerState != "" {
			return nil // the server's stop, start or reboot is not done yet
		}
		// The server follows the machine's power, as a VM's follows its
		// guest: a stop, start or reboot through Nova completes, and a
		// machine switched off by hand shows SHUTOFF.
		o = computestate.Observed{Status: "ACTIVE", PowerState: 1, RebootSeq: sv.RebootSeq, RebuildSeq: sv.RebuildSeq}
		if n.PowerState == bmstate.PowerOff {
			o = computestate.Observed{Status: "SHUTOFF", PowerState: 4, RebootSeq: sv.RebootSeq, RebuildSeq: sv.RebuildSeq}
		}
	case bmstate.StateDeployFail:
		if sv.VMState != "building" && sv.TaskState != "rebuilding" {
			return nil
		}
		o = computestate.Observed{Status: "ERROR",
			Fault: fmt.Sprintf("Failed to provision instance %s on bare-metal node %s: %s", sv.ID, n.ID, n.LastError)}
	default:
		return nil
	}
	c.mu.Lock()
	last, seen := c.reported[sv.ID]
	c.mu.Unlock()
	if seen && last == o {
		return nil
	}
	if err := c.Report(ctx, sv.ID, o); err != nil {
		return fmt.Errorf("report server %s %s: %w", sv.ID, o.Status, err)
	}
	c.mu.Lock()
	if c.reported == nil {
		c.reported = map[string]computestate.Observed{}
	}
	c.reported[sv.ID] = o
	c.mu.Unlock()
	return nil
}

// powerRequest carries out the power state the API asked for and reads
// it back.
func (c *Conductor) powerRequest(ctx context.Context, n *bmstate.Node) error {
	seq, target := n.PowerSeq, n.TargetPowerState
	action := PowerOn
	switch target {
	case bmstate.PowerOff, bmstate.SoftOff:
		action = PowerOff
	case bmstate.Rebooting, bmstate.SoftBoot:
		action = PowerReset
	}
	var power string
	err := c.withBMC(ctx, n, func(ctx context.Context, b BMC) error {
		act := action
		if act == PowerReset {
			if on, err := b.PowerState(ctx); err == nil && !on {
				act = PowerOn
			}
		}
		p, err := setPower(ctx, b, act)
		power = p
		return err
	})
	_, _, cerr := c.change(ctx, n.ID, func(m *bmstate.Node) bool {
		if m.TargetPowerState == "" {
			return false
		}
		if m.PowerSeq == seq {
			m.TargetPowerState = ""
		}
		if power != "" {
			m.PowerState = power
		}
		if err != nil {
			m.LastError = fmt.Sprintf("Failed to change power state of node %s to %s: %v", m.ID, target, err)
			c.event(m, "ERROR", "power", m.LastError)
		} else {
			m.LastError = ""
			c.event(m, "INFO", "power", "power state set to "+target)
		}
		return true
	})
	return cerr
}

// bootDeviceRequest sets the boot device the API asked for.
func (c *Conductor) bootDeviceRequest(ctx context.Context, n *bmstate.Node) error {
	seq := n.BootDeviceSeq
	err := c.withBMC(ctx, n, func(ctx context.Context, b BMC) error {
		return b.SetBootDevice(ctx, n.BootDevice, n.BootDevicePersistent)
	})
	_, _, cerr := c.change(ctx, n.ID, func(m *bmstate.Node) bool {
		if m.BootDeviceDone >= seq {
			return false
		}
		m.BootDeviceDone = seq
		if err != nil {
			m.LastError = fmt.Sprintf("Failed to set boot device of node %s to %s: %v", m.ID, n.BootDevice, err)
			c.event(m, "ERROR", "management", m.LastError)
		} else {
			m.LastError = ""
			c.event(m, "INFO", "management", fmt.Sprintf("boot device set to %s (persistent %t)", n.BootDevice, n.BootDevicePersistent))
		}
		return true
	})
	return cerr
}

// syncPower records a power state that changed outside the conductor
// (someone pressed the button, a BMC rebooted the machine). It only
// records: an operation in progress owns the power.
func (c *Conductor) syncPower(ctx context.Context, n *bmstate.Node) {
	switch {
	case n.Maintenance, n.Driver == "", n.TargetPowerState != "",
		n.ProvisionState == bmstate.StateEnroll, bmstate.Working(n.ProvisionState):
		return
	}
	power, err := c.readPower(ctx, n)
	if err != nil {
		c.log().Warn("conductor: power sync", "node", n.ID, "err", err)
		return
	}
	if power == n.PowerState {
		return
	}
	was := n.PowerState
	_, _, err = c.change(ctx, n.ID, func(m *bmstate.Node) bool {
		if m.PowerState != was || m.TargetPowerState != "" || bmstate.Working(m.ProvisionState) {
			return false
		}
		m.PowerState = power
		if was == "" {
			was = "unknown"
		}
		c.event(m, "INFO", "power", fmt.Sprintf("power state sync: recorded %s, the BMC reports %s", was, power))
		return true
	})
	if err != nil {
		c.log().Warn("conductor: record power sync", "node", n.ID, "err", err)
	}
}
