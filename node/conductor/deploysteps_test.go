package conductor

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/baremetal/bmstate"
	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/testenv"
	"github.com/rackstack/rackstack/provision/agentapi"
)

func (w *world) template(name string, steps ...map[string]any) {
	w.t.Helper()
	t := bmstate.DeployTemplate{ID: "tmpl-" + name, Name: name, Steps: steps, CreatedAt: w.clock.Now()}
	if _, err := w.local.Propose(w.ctx, bmstate.CmdPutDeployTemplate, bmstate.PutDeployTemplateCmd{Row: t}); err != nil {
		w.t.Fatal(err)
	}
}

// startDeploy puts a server's deploy on node id with the instance traits
// given, as the compute claim writes it, and passes until it waits for
// the agent or fails.
func startDeploy(t *testing.T, w *world, id string, traits ...any) *bmstate.Node {
	t.Helper()
	sv := computestate.Server{ID: serverID, Name: "bm1", Project: "p1", Status: "BUILD", VMState: "building", Want: "active", ImageID: "img-1", Metadata: map[string]string{}}
	if _, err := w.local.Propose(w.ctx, cmdPutServer, sv); err != nil {
		t.Fatal(err)
	}
	w.set(id, func(n *bmstate.Node) {
		n.ProvisionState, n.TargetProvisionState = bmstate.StateDeploying, bmstate.StateActive
		n.InstanceUUID = serverID
		n.InstanceInfo = map[string]any{"image_source": "img-1", "root_gb": 1, "configdrive": true, "traits": traits}
	})
	for range 20 {
		w.pass()
		if n := w.node(id); n.ProvisionState != bmstate.StateDeploying {
			return n
		}
	}
	t.Fatalf("node %s stays deploying", id)
	return nil
}

// TestDeployRunsTheTemplateSteps: the steps of the templates the
// instance traits name run in priority order around the image write — the
// agent erases the disks' metadata before it writes (priority 90 > 80),
// the BMC makes the machine boot from the network for good after the
// default boot-to-disk (50 < 60) and before the power cycle (20).
func TestDeployRunsTheTemplateSteps(t *testing.T) {
	testenv.RequireCommand(t, "genisoimage")
	w := newWorld(t)
	w.rack("node-1", pxeMAC, bmstate.StateAvailable)
	w.template("CUSTOM_NETBOOT",
		map[string]any{"interface": "management", "step": "set_boot_device", "args": map[string]any{"device": "pxe", "persistent": true}, "priority": 50},
		map[string]any{"interface": "deploy", "step": "erase_devices_metadata", "args": map[string]any{}, "priority": 90})
	w.template("CUSTOM_UNUSED", map[string]any{"interface": "raid", "step": "create_configuration", "args": map[string]any{}, "priority": 10})
	if n := startDeploy(t, w, "node-1", "CUSTOM_NETBOOT", "CUSTOM_OTHER"); n.ProvisionState != bmstate.StateDeployWait {
		t.Fatalf("deploy did not start: %s %q", n.ProvisionState, n.LastError)
	}
	a := w.agent(pxeMAC)
	cmd := a.heartbeat()
	if cmd.Op != agentapi.OpDeploy || cmd.Deploy == nil || !cmd.Deploy.EraseMetadata {
		t.Fatalf("agent told %+v, want a deploy that erases metadata first", cmd)
	}
	m := w.machines["10.0.0.1"]
	before := len(m.Calls())
	a.result(cmd, true, "erased metadata; wrote image, sha256 ok")
	w.pass()
	if n := w.node("node-1"); n.ProvisionState != bmstate.StateActive {
		t.Fatalf("after the deploy: %s %q", n.ProvisionState, n.LastError)
	}
	want := []string{"boot disk persistent=true", "boot pxe persistent=true", "power reset"}
	if got := m.Calls()[before:]; !slices.Equal(got, want) {
		t.Fatalf("BMC calls after the write %v, want %v", got, want)
	}
}

// TestDeployFailsOnAStepThatCannotRun: a template step no agent or BMC
// here can run fails the deploy with last_error naming it, before the
// machine is touched; so does a failing step, naming it and why.
func TestDeployFailsOnAStepThatCannotRun(t *testing.T) {
	testenv.RequireCommand(t, "genisoimage")
	w := newWorld(t)
	w.rack("node-1", pxeMAC, bmstate.StateAvailable)
	w.template("CUSTOM_RAID", map[string]any{"interface": "raid", "step": "create_configuration", "args": map[string]any{}, "priority": 85})
	m := w.machines["10.0.0.1"]
	before := len(m.Calls())
	n := startDeploy(t, w, "node-1", "CUSTOM_RAID")
	if n.ProvisionState != bmstate.StateDeployFail || !strings.Contains(n.LastError, "raid.create_configuration cannot run here") {
		t.Fatalf("deploy with a RAID step: %s %q", n.ProvisionState, n.LastError)
	}
	if got := m.Calls()[before:]; len(got) != 0 {
		t.Fatalf("the BMC was used for a deploy that cannot run: %v", got)
	}

	// A step the BMC refuses fails the deploy naming it.
	w2 := newWorld(t)
	w2.rack("node-1", pxeMAC, bmstate.StateAvailable)
	w2.template("CUSTOM_FLAKY", map[string]any{"interface": "management", "step": "set_boot_device", "args": map[string]any{"device": "disk"}, "priority": 95})
	w2.machines["10.0.0.1"].bootErr = errors.New("IPMI: boot device write refused")
	n = startDeploy(t, w2, "node-1", "CUSTOM_FLAKY")
	if n.ProvisionState != bmstate.StateDeployFail || !strings.Contains(n.LastError, "deploy step management.set_boot_device (priority 95): IPMI: boot device write refused") {
		t.Fatalf("deploy with a failing step: %s %q", n.ProvisionState, n.LastError)
	}
}
