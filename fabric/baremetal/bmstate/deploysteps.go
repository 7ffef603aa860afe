package bmstate

import (
	"cmp"
	"fmt"
	"slices"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// Deploy steps. A deploy runs Ironic's default steps — the agent writes
// the image (deploy.write_image, 80), the BMC sets the boot device to
// disk (deploy.prepare_instance_boot, 60) and starts the machine from it
// (deploy.boot_instance, 20) — plus the steps of every deploy template
// (1.55) named by one of the node's instance traits
// (instance_info.traits), highest priority first. A template step with a
// default step's name changes that step's priority; priority 0 leaves a
// step out (never a default one: they are the deploy).
//
// Only steps this cloud really performs are run; a template naming any
// other (BIOS, RAID, firmware: the ramdisk agent and the BMC drivers do
// none) makes the deploy fail with last_error naming it, and a server or
// deploy request whose traits select such a template is refused.
// Templates themselves are accepted as Ironic accepts them: what a step
// means is decided when it is to run.

// DeployStep is one step of a deploy, as Ironic's deploy_step.
type DeployStep struct {
	Interface string         `json:"interface"`
	Step      string         `json:"step"`
	Args      map[string]any `json:"args"`
	Priority  int            `json:"priority"`
}

// Name is the step's interface.step.
func (s DeployStep) Name() string { return s.Interface + "." + s.Step }

// The steps that run, and who runs them.
const (
	StepWriteImage   = "deploy.write_image"
	StepPrepareBoot  = "deploy.prepare_instance_boot"
	StepBootInstance = "deploy.boot_instance"
	// StepEraseMetadata is run by the agent just before it writes the
	// image: partition tables and filesystem signatures of every disk.
	StepEraseMetadata = "deploy.erase_devices_metadata"
	// StepSetBootDevice is a BMC call: args device (pxe or disk) and
	// persistent (default false).
	StepSetBootDevice = "management.set_boot_device"
)

// defaultDeploySteps are Ironic's agent deploy's own steps, as this
// cloud performs them.
func defaultDeploySteps() []DeployStep {
	return []DeployStep{
		{Interface: "deploy", Step: "write_image", Priority: 80, Args: map[string]any{}},
		{Interface: "deploy", Step: "prepare_instance_boot", Priority: 60, Args: map[string]any{}},
		{Interface: "deploy", Step: "boot_instance", Priority: 20, Args: map[string]any{}},
	}
}

// InstanceTraits are the traits a deploy asks for (instance_info.traits).
func InstanceTraits(n *Node) []string {
	var out []string
	switch v := n.InstanceInfo["traits"].(type) {
	case []any:
		for _, t := range v {
			if s, ok := t.(string); ok {
				out = append(out, s)
			}
		}
	case []string:
		out = append(out, v...)
	}
	return out
}

// DeploySteps is the plan of n's deploy, in the order the steps run: the
// defaults merged with the steps of the templates its instance traits
// name. The error (invalid: a 400 where a request asked for it) names the
// template and the step that cannot run here, and why.
func DeploySteps(tx *memdb.Txn, n *Node) ([]DeployStep, error) {
	return PlanDeploySteps(tx, InstanceTraits(n))
}

// PlanDeploySteps is DeploySteps for the given instance traits.
func PlanDeploySteps(tx *memdb.Txn, traits []string) ([]DeployStep, error) {
	steps := defaultDeploySteps()
	for _, trait := range traits {
		raw, _ := tx.First(DeployTemplateTable, "name", trait)
		if raw == nil {
			continue
		}
		t := raw.(*DeployTemplate)
		for _, m := range t.Steps {
			st, err := templateStep(m)
			if err != nil {
				return nil, store.Invalidf("Deploy template %s (trait %s): %v.", t.ID, t.Name, err)
			}
			if i := slices.IndexFunc(steps, func(d DeployStep) bool { return d.Name() == st.Name() }); i >= 0 {
				if st.Priority == 0 && i < 3 {
					return nil, store.Invalidf("Deploy template %s (trait %s): step %s cannot be disabled: it is the deploy itself.", t.ID, t.Name, st.Name())
				}
				steps[i] = st
				continue
			}
			steps = append(steps, st)
		}
	}
	steps = slices.DeleteFunc(steps, func(s DeployStep) bool { return s.Priority == 0 })
	slices.SortStableFunc(steps, func(a, b DeployStep) int { return cmp.Compare(b.Priority, a.Priority) })
	write := slices.IndexFunc(steps, func(s DeployStep) bool { return s.Name() == StepWriteImage })
	for i, s := range steps {
		if s.Name() == StepEraseMetadata && i > write {
			return nil, store.Invalidf("Deploy step %s (priority %d) would run after %s (priority %d) and erase the image just written: give it a higher priority.",
				s.Name(), s.Priority, StepWriteImage, steps[write].Priority)
		}
		if (s.Name() == StepPrepareBoot || s.Name() == StepBootInstance) && i < write {
			return nil, store.Invalidf("Deploy step %s (priority %d) must run after %s (priority %d).", s.Name(), s.Priority, StepWriteImage, steps[write].Priority)
		}
	}
	return steps, nil
}

// templateStep reads one step of a template and checks it is one this
// cloud runs, with arguments it understands.
func templateStep(m map[string]any) (DeployStep, error) {
	st := DeployStep{Args: map[string]any{}}
	st.Interface, _ = m["interface"].(string)
	st.Step, _ = m["step"].(string)
	if a, ok := m["args"].(map[string]any); ok {
		st.Args = a
	}
	switch p := m["priority"].(type) {
	case int:
		st.Priority = p
	case int64:
		st.Priority = int(p)
	case float64:
		st.Priority = int(p)
	}
	switch st.Name() {
	case StepWriteImage, StepPrepareBoot, StepBootInstance, StepEraseMetadata:
		if len(st.Args) > 0 {
			return st, fmt.Errorf("step %s takes no arguments", st.Name())
		}
	case StepSetBootDevice:
		if d, _ := st.Args["device"].(string); d != "pxe" && d != "disk" {
			return st, fmt.Errorf("step %s needs args.device pxe or disk, not %v", st.Name(), st.Args["device"])
		}
		for k, v := range st.Args {
			if _, isBool := v.(bool); k == "persistent" && !isBool || k != "device" && k != "persistent" {
				return st, fmt.Errorf("step %s takes args device and persistent (a boolean), not %s=%v", st.Name(), k, v)
			}
		}
	default:
		return st, fmt.Errorf("step %s cannot run here: the deploy runs only %s, %s, %s, %s and %s (this cloud's agent and BMC drivers do no BIOS, RAID or firmware work)",
			st.Name(), StepEraseMetadata, StepWriteImage, StepSetBootDevice, StepPrepareBoot, StepBootInstance)
	}
	return st, nil
}
