package compute

import (
	"testing"

	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// os-volumes_boot is Nova's alias of the servers API: a server booted
// from a volume through it is the same server the servers API shows,
// lists, acts on and deletes.
func TestVolumesBootAlias(t *testing.T) {
	f := newFixtureWith(t, volstate.Schema())
	f.stdFlavors()
	vol := f.volume(projA)
	out := f.expect("POST", "/v2.1/os-volumes_boot", alice, "", map[string]any{"server": map[string]any{"name": "vm",
		"flavorRef": "small", "networks": []any{map[string]any{"uuid": netA}},
		"block_device_mapping_v2": bfv("volume", vol, 0, false)}}, 202, "")
	id, _ := out["server"].(map[string]any)["id"].(string)
	if row := f.row(id); row == nil || row.BootVolume != vol {
		t.Fatalf("server made through os-volumes_boot: %+v", row)
	}
	if sv := f.expect("GET", "/v2.1/os-volumes_boot/"+id, alice, "", nil, 200, "")["server"].(map[string]any); sv["name"] != "vm" {
		t.Fatalf("shown through the alias: %v", sv)
	}
	for _, path := range []string{"/v2.1/os-volumes_boot", "/v2.1/os-volumes_boot/detail"} {
		if l := f.expect("GET", path, alice, "", nil, 200, "")["servers"].([]any); len(l) != 1 || l[0].(map[string]any)["id"] != id {
			t.Fatalf("%s: %v", path, l)
		}
		if l := f.expect("GET", path, bob, "", nil, 200, "")["servers"].([]any); len(l) != 0 {
			t.Fatalf("%s for another project: %v", path, l)
		}
	}
	f.expect("GET", "/v2.1/os-volumes_boot/"+id, bob, "", nil, 404, "itemNotFound")
	f.expect("PUT", "/v2.1/os-volumes_boot/"+id, alice, "", map[string]any{"server": map[string]any{"name": "vm2"}}, 200, "")
	f.expect("POST", "/v2.1/os-volumes_boot/"+id+"/action", alice, "", map[string]any{"lock": nil}, 202, "")
	if row := f.row(id); row.Name != "vm2" || !row.Locked {
		t.Fatalf("after update and lock through the alias: %+v", row)
	}
	f.expect("POST", "/v2.1/os-volumes_boot/"+id+"/action", alice, "", map[string]any{"unlock": nil}, 202, "")
	f.expect("DELETE", "/v2.1/os-volumes_boot/"+id, bob, "", nil, 404, "itemNotFound")
	f.expect("DELETE", "/v2.1/os-volumes_boot/"+id, alice, "", nil, 204, "")
	f.expect("POST", "/v2.1/os-volumes_boot", carol, "", map[string]any{"server": map[string]any{"name": "x", "flavorRef": "small"}}, 403, "forbidden")
}
