package compute

import (
	"testing"

	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// Device tags: on a create's NICs and volumes at 2.32 and from 2.42
// (refused in between, naming the field), on volume and interface
// attaches from 2.49; shown by os-interface and os-volume_attachments
// from 2.70; a detached NIC's tag goes with it.
func TestDeviceTags(t *testing.T) {
	f := newFixtureWith(t, volstate.Schema())
	f.stdFlavors()
	data := f.volume(projA)
	body := func(tag string) map[string]any {
		return map[string]any{"server": map[string]any{"name": "vm", "imageRef": img1, "flavorRef": "small",
			"networks":                []any{map[string]any{"uuid": netA, "tag": tag}, map[string]any{"uuid": netA}},
			"block_device_mapping_v2": []any{map[string]any{"source_type": "volume", "destination_type": "volume", "uuid": data, "boot_index": 1, "tag": "data"}}}}
	}
	f.expect("POST", "/v2.1/servers", alice, "2.31", body("nic"), 400, "badRequest", "'tag' was unexpected")
	f.expect("POST", "/v2.1/servers", alice, "2.36", body("nic"), 400, "badRequest", "'tag' was unexpected")
	f.expect("POST", "/v2.1/servers", alice, "2.42", body("a,b"), 400, "badRequest", "networks.tag")
	if v := f.vol(data); len(v.Attachments) != 0 {
		t.Fatalf("a refused create attached the volume: %+v", v)
	}
	id := f.expect("POST", "/v2.1/servers", alice, "2.32", body("nic"), 202, "")["server"].(map[string]any)["id"].(string)
	sv := f.row(id)
	if len(sv.Ports) != 2 || sv.NICTags[sv.Ports[0]] != "nic" || len(sv.NICTags) != 1 {
		t.Fatalf("NIC tags %v of ports %v", sv.NICTags, sv.Ports)
	}
	if v := f.vol(data); len(v.Attachments) != 1 || v.Attachments[0].Tag != "data" {
		t.Fatalf("volume attachment %+v", v.Attachments)
	}
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})

	ifaces := func(version string) map[string]any {
		out := map[string]any{}
		for _, raw := range f.expect("GET", "/v2.1/servers/"+id+"/os-interface", alice, version, nil, 200, "")["interfaceAttachments"].([]any) {
			m := raw.(map[string]any)
			out[m["port_id"].(string)] = m["tag"]
		}
		return out
	}
	if got := ifaces("2.70"); got[sv.Ports[0]] != "nic" || got[sv.Ports[1]] != nil {
		t.Fatalf("os-interface tags at 2.70: %v", got)
	}
	if _, ok := f.expect("GET", "/v2.1/servers/"+id+"/os-interface/"+sv.Ports[0], alice, "2.69", nil, 200, "")["interfaceAttachment"].(map[string]any)["tag"]; ok {
		t.Fatal("os-interface shows tag before 2.70")
	}
	// Interface attach with a tag (2.49), and detach.
	f.expect("POST", "/v2.1/servers/"+id+"/os-interface", alice, "2.48", map[string]any{"interfaceAttachment": map[string]any{"net_id": netA, "tag": "x"}}, 400, "badRequest", "tag")
	att := f.expect("POST", "/v2.1/servers/"+id+"/os-interface", alice, "2.70", map[string]any{"interfaceAttachment": map[string]any{"net_id": netA, "tag": "hot"}}, 200, "")["interfaceAttachment"].(map[string]any)
	port := att["port_id"].(string)
	if att["tag"] != "hot" || f.row(id).NICTags[port] != "hot" {
		t.Fatalf("attached interface %v, tags %v", att, f.row(id).NICTags)
	}
	f.expect("DELETE", "/v2.1/servers/"+id+"/os-interface/"+port, alice, "2.70", nil, 202, "")
	if _, ok := f.row(id).NICTags[port]; ok {
		t.Fatalf("a detached port keeps its tag: %v", f.row(id).NICTags)
	}

	// Volume attachments.
	vas := func() map[string]any {
		out := map[string]any{}
		for _, raw := range f.expect("GET", "/v2.1/servers/"+id+"/os-volume_attachments", alice, "2.70", nil, 200, "")["volumeAttachments"].([]any) {
			m := raw.(map[string]any)
			out[m["volumeId"].(string)] = m["tag"]
		}
		return out
	}
	other := f.volume(projA)
	f.expect("POST", "/v2.1/servers/"+id+"/os-volume_attachments", alice, "2.48", map[string]any{"volumeAttachment": map[string]any{"volumeId": other, "tag": "o"}}, 400, "badRequest", "tag")
	f.expect("POST", "/v2.1/servers/"+id+"/os-volume_attachments", alice, "2.49", map[string]any{"volumeAttachment": map[string]any{"volumeId": other, "tag": "o/x"}}, 400, "badRequest", "tag")
	got := f.expect("POST", "/v2.1/servers/"+id+"/os-volume_attachments", alice, "2.70", map[string]any{"volumeAttachment": map[string]any{"volumeId": other, "tag": "other"}}, 200, "")["volumeAttachment"].(map[string]any)
	if got["tag"] != "other" {
		t.Fatalf("attachment %v", got)
	}
	if got := vas(); got[data] != "data" || got[other] != "other" {
		t.Fatalf("os-volume_attachments tags %v", got)
	}
}
