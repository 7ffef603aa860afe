package compute

import (
	"context"
	"slices"
	"testing"

	"github.com/rackstack/rackstack/fabric/baremetal/bmstate"
)

// A bare-metal flavor's required traits pick a node that has them and
// reach the deploy in instance_info.traits (where the node's deploy
// templates are matched); a trait whose template names a step this cloud
// cannot run refuses the server, naming the step, with no node claimed.
func TestBaremetalTraitsSelectDeployTemplates(t *testing.T) {
	f := newBaremetalFixture(t)
	f.addNode(nodeA, "baremetal-small", bmstate.StateAvailable)
	f.addNode(nodeB, "baremetal-small", bmstate.StateAvailable)
	f.putNode(nodeB, func(n *bmstate.Node) { n.Traits = []string{"CUSTOM_NETBOOT", "CUSTOM_RAID"} })
	for _, tmpl := range []bmstate.DeployTemplate{
		{ID: "t1", Name: "CUSTOM_NETBOOT", Steps: []map[string]any{{"interface": "management", "step": "set_boot_device", "args": map[string]any{"device": "pxe", "persistent": true}, "priority": 50}}},
		{ID: "t2", Name: "CUSTOM_RAID", Steps: []map[string]any{{"interface": "raid", "step": "create_configuration", "args": map[string]any{}, "priority": 50}}},
	} {
		if _, err := f.local.Propose(context.Background(), bmstate.CmdPutDeployTemplate, bmstate.PutDeployTemplateCmd{Row: tmpl}); err != nil {
			t.Fatal(err)
		}
	}
	f.flavor("bm-raid", "bm.raid", 1, 1, 1)
	f.expect("POST", "/v2.1/flavors/bm-raid/os-extra_specs", admin, "", map[string]any{"extra_specs": map[string]any{
		"resources:CUSTOM_BAREMETAL_SMALL": "1", "trait:CUSTOM_RAID": "required"}}, 200, "")
	f.expect("POST", "/v2.1/servers", alice, "", map[string]any{"server": map[string]any{"name": "m", "imageRef": img1, "flavorRef": "bm-raid"}},
		400, "badRequest", "raid.create_configuration cannot run here")
	if n := f.node(nodeB); n.InstanceUUID != "" {
		t.Fatalf("a refused server claimed %s", n.ID)
	}

	f.flavor("bm-net", "bm.net", 1, 1, 1)
	f.expect("POST", "/v2.1/flavors/bm-net/os-extra_specs", admin, "", map[string]any{"extra_specs": map[string]any{
		"resources:CUSTOM_BAREMETAL_SMALL": "1", "trait:CUSTOM_NETBOOT": "required", "trait:CUSTOM_OTHER": "forbidden"}}, 200, "")
	body := f.expect("POST", "/v2.1/servers", alice, "", map[string]any{"server": map[string]any{"name": "m", "imageRef": img1, "flavorRef": "bm-net"}}, 202, "")
	id := body["server"].(map[string]any)["id"].(string)
	n := f.node(nodeB)
	traits, _ := n.InstanceInfo["traits"].([]any)
	if n.InstanceUUID != id || !slices.Equal(traits, []any{"CUSTOM_NETBOOT"}) {
		t.Fatalf("the server took node %s (instance %q, traits %v), want %s with the required trait", n.ID, n.InstanceUUID, n.InstanceInfo["traits"], nodeB)
	}
	// No node left with the trait: Nova's no valid host.
	body = f.expect("POST", "/v2.1/servers", alice, "", map[string]any{"server": map[string]any{"name": "m2", "imageRef": img1, "flavorRef": "bm-net"}}, 202, "")
	if sv := f.row(body["server"].(map[string]any)["id"].(string)); sv.Status != "ERROR" || f.node(nodeA).InstanceUUID != "" {
		t.Fatalf("a second server with the trait: %s, node %s holds %q", sv.Status, nodeA, f.node(nodeA).InstanceUUID)
	}
}
