//go:build integration

package integration

import (
	"encoding/json"
	"strings"
	"testing"
)

// useEraseTemplate makes the next deploy of node (a rebuild) run a deploy
// template, as an operator asks for it with the CLI: the agent erases the
// disks' metadata before it writes the image (priority 90, above the
// write's 80) and the BMC sets the boot device after the default
// boot-to-disk.
func useEraseTemplate(t *testing.T, env []string, node string) {
	t.Helper()
	openstack(t, env, "baremetal", "deploy", "template", "create", "CUSTOM_ERASE_FIRST", "--steps",
		`[{"interface": "deploy", "step": "erase_devices_metadata", "args": {}, "priority": 90},
		  {"interface": "management", "step": "set_boot_device", "args": {"device": "disk", "persistent": true}, "priority": 50}]`)
	openstack(t, env, "baremetal", "node", "set", node, "--instance-info", `traits=["CUSTOM_ERASE_FIRST"]`)
}

// checkErasedBeforeWrite: the deploy's history says the agent erased the
// metadata and wrote the image (the machine booted it: the erase came
// first).
func checkErasedBeforeWrite(t *testing.T, env []string, node string) {
	t.Helper()
	out := openstack(t, env, "--os-baremetal-api-version", "1.78", "baremetal", "node", "history", "list", "-f", "json", node)
	var history []map[string]any
	if err := json.Unmarshal([]byte(out), &history); err != nil {
		t.Fatalf("node history: %v\n%s", err, out)
	}
	for _, h := range history {
		if d, _ := h["Description of the event"].(string); strings.Contains(d, "erased metadata") && strings.Contains(d, "sha256 ok") {
			return
		}
	}
	t.Errorf("no deploy of %s says it erased the metadata and wrote the image:\n%s", node, out)
}

// checkTemplateRefused: a deploy whose instance traits select a template
// with a step no agent or BMC here runs (RAID) is refused, naming it; the
// node stays as it was.
func checkTemplateRefused(t *testing.T, env []string, node, image string) {
	t.Helper()
	openstack(t, env, "baremetal", "deploy", "template", "create", "CUSTOM_RAID1", "--steps",
		`[{"interface": "raid", "step": "create_configuration", "args": {}, "priority": 10}]`)
	openstack(t, env, "baremetal", "node", "set", node, "--instance-info", "image_source="+image, "--instance-info", `traits=["CUSTOM_RAID1"]`)
	before := showNode(t, env, node).ProvisionState
	out, err := openstackErr(env, "baremetal", "node", "deploy", node)
	if err == nil || !strings.Contains(out, "raid.create_configuration cannot run here") {
		t.Errorf("deploy with a RAID template step: %v\n%s", err, out)
	}
	if now := showNode(t, env, node).ProvisionState; now != before {
		t.Errorf("a refused deploy moved the node from %s to %s", before, now)
	}
	openstack(t, env, "baremetal", "node", "unset", node, "--instance-info", "traits")
}
