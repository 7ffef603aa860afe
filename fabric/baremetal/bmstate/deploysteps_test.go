package bmstate

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/store"
)

func step(iface, name string, prio int, args map[string]any) map[string]any {
	if args == nil {
		args = map[string]any{}
	}
	// As a template's steps come back from the Raft log: JSON numbers.
	return map[string]any{"interface": iface, "step": name, "args": args, "priority": float64(prio)}
}

// TestPlanDeploySteps: the defaults, merged with the steps of the
// templates the traits name, highest priority first; what cannot run,
// or cannot run where its priority puts it, is refused naming it.
func TestPlanDeploySteps(t *testing.T) {
	for name, tc := range map[string]struct {
		steps []map[string]any
		want  string // the plan, or the error's text
	}{
		"no template steps": {nil,
			"deploy.write_image(80) deploy.prepare_instance_boot(60) deploy.boot_instance(20)"},
		"erase first, net boot after the boot to disk": {[]map[string]any{
			step("management", "set_boot_device", 50, map[string]any{"device": "pxe", "persistent": true}),
			step("deploy", "erase_devices_metadata", 90, nil)},
			"deploy.erase_devices_metadata(90) deploy.write_image(80) deploy.prepare_instance_boot(60) management.set_boot_device(50) deploy.boot_instance(20)"},
		"a default step's priority changed": {[]map[string]any{step("deploy", "prepare_instance_boot", 40, nil),
			step("management", "set_boot_device", 50, map[string]any{"device": "disk"})},
			"deploy.write_image(80) management.set_boot_device(50) deploy.prepare_instance_boot(40) deploy.boot_instance(20)"},
		"a step left out with priority 0": {[]map[string]any{step("deploy", "erase_devices_metadata", 0, nil)},
			"deploy.write_image(80) deploy.prepare_instance_boot(60) deploy.boot_instance(20)"},
		"RAID":                     {[]map[string]any{step("raid", "create_configuration", 10, nil)}, "raid.create_configuration cannot run here"},
		"BIOS":                     {[]map[string]any{step("bios", "apply_configuration", 10, nil)}, "bios.apply_configuration cannot run here"},
		"erase after the write":    {[]map[string]any{step("deploy", "erase_devices_metadata", 70, nil)}, "erase the image just written"},
		"the write disabled":       {[]map[string]any{step("deploy", "write_image", 0, nil)}, "cannot be disabled"},
		"boot before the write":    {[]map[string]any{step("deploy", "boot_instance", 90, nil)}, "must run after deploy.write_image"},
		"a boot device of nowhere": {[]map[string]any{step("management", "set_boot_device", 10, map[string]any{"device": "cdrom"})}, "args.device pxe or disk"},
		"an argument not taken":    {[]map[string]any{step("management", "set_boot_device", 10, map[string]any{"device": "pxe", "efi": true})}, "not efi=true"},
	} {
		t.Run(name, func(t *testing.T) {
			st := store.NewMemState(t, Schema())
			if tc.steps != nil {
				st.Put(DeployTemplateTable, &DeployTemplate{ID: "t1", Name: "CUSTOM_T", Steps: tc.steps, Revision: 1})
			}
			st.Put(DeployTemplateTable, &DeployTemplate{ID: "t2", Name: "CUSTOM_NOT_ASKED", Steps: []map[string]any{step("raid", "x", 1, nil)}, Revision: 1})
			n := &Node{ID: "n", InstanceInfo: map[string]any{"traits": []any{"CUSTOM_T", "CUSTOM_NO_TEMPLATE"}}}
			plan, err := DeploySteps(st.DB.Txn(false), n)
			if err != nil {
				if !strings.Contains(err.Error(), tc.want) || !errors.Is(err, store.ErrInvalid) {
					t.Fatalf("error %v, want one saying %q", err, tc.want)
				}
				return
			}
			var got []string
			for _, s := range plan {
				got = append(got, s.Name()+"("+strconv.Itoa(s.Priority)+")")
			}
			if strings.Join(got, " ") != tc.want {
				t.Fatalf("plan %s\nwant %s", strings.Join(got, " "), tc.want)
			}
		})
	}
}
