package volume

import (
	"net/http"
	"strings"
	"testing"
)

// badFieldAs checks a 400 whose message names field, for token.
func (f *fixture) badFieldAs(token string, minor int, method, path string, body any, field string) {
	f.t.Helper()
	r := f.call(method, path, token, body, "OpenStack-API-Version", "volume "+versionText(minor))
	if _, msg := fault(f.t, r); r.Code != http.StatusBadRequest || !strings.Contains(msg, "field/attribute "+field+".") {
		f.t.Fatalf("%s %s %v at 3.%d: %d %s, want 400 naming %s", method, path, body, minor, r.Code, r.Raw, field)
	}
}

// 3.53: bodies are checked against Cinder's schemas before the handler
// runs; a body that does not fit is a 400 naming the field, and below
// 3.53 the handlers' own checks alone decide, as before.
func TestBodySchemasFrom353(t *testing.T) {
	f := newFixture(t)
	vol := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)

	// Volume create: an unknown key is refused from 3.53 (Cinder's
	// create_volume_v353 closes the object), taken before.
	f.at(52, http.StatusAccepted, "POST", "volumes", alice, map[string]any{"volume": map[string]any{"size": 1, "colour": "blue"}})
	f.badFieldAs(alice, 53, "POST", "volumes", map[string]any{"volume": map[string]any{"size": 1, "colour": "blue"}}, "colour")
	f.badFieldAs(alice, 53, "POST", "volumes", map[string]any{"volume": map[string]any{"size": 0}}, "size")
	f.badFieldAs(alice, 53, "POST", "volumes", map[string]any{"volume": map[string]any{"size": "1x"}}, "size")
	f.badFieldAs(alice, 53, "POST", "volumes", map[string]any{"volume": map[string]any{"size": 1, "name": strings.Repeat("n", 256)}}, "name")
	f.badFieldAs(alice, 53, "POST", "volumes", map[string]any{"volume": map[string]any{"size": 1, "snapshot_id": "not-a-uuid"}}, "snapshot_id")
	f.badFieldAs(alice, 53, "POST", "volumes", map[string]any{"volume": map[string]any{"size": 1, "metadata": map[string]any{"k": 1}}}, "k")
	f.badFieldAs(alice, 53, "POST", "volumes", map[string]any{"vol": map[string]any{"size": 1}}, "volume")
	f.badFieldAs(alice, 53, "POST", "volumes", map[string]any{"volume": map[string]any{"size": 1}, "extra": 1}, "extra")
	made := f.at(53, http.StatusAccepted, "POST", "volumes", alice, map[string]any{"volume": map[string]any{"size": "2", "name": "ok", "metadata": map[string]any{"a": "b"}}})
	if v := made["volume"].(map[string]any); v["size"] != float64(2) || v["name"] != "ok" {
		t.Fatalf("created %v", v)
	}

	// Volume update: at least one known key from 3.53.
	f.badFieldAs(alice, 53, "PUT", "volumes/"+vol, map[string]any{"volume": map[string]any{}}, "volume")
	f.badFieldAs(alice, 53, "PUT", "volumes/"+vol, map[string]any{"volume": map[string]any{"name": 5}}, "name")
	f.at(53, http.StatusOK, "PUT", "volumes/"+vol, alice, map[string]any{"volume": map[string]any{"name": "renamed"}})

	// Actions: each checked by its own schema; other names reach the
	// handler, which answers them as before.
	f.badFieldAs(alice, 53, "POST", "volumes/"+vol+"/action", map[string]any{"os-extend": map[string]any{"new_size": 3, "now": true}}, "now")
	f.badFieldAs(alice, 53, "POST", "volumes/"+vol+"/action", map[string]any{"os-extend": map[string]any{}}, "new_size")
	f.badFieldAs(alice, 53, "POST", "volumes/"+vol+"/action", map[string]any{"os-set_bootable": map[string]any{"bootable": "maybe"}}, "bootable")
	f.badFieldAs(alice, 53, "POST", "volumes/"+vol+"/action", map[string]any{"os-volume_upload_image": map[string]any{"image_name": "i", "disk_format": "iso"}}, "disk_format")
	f.at(53, http.StatusAccepted, "POST", "volumes/"+vol+"/action", alice, map[string]any{"os-extend": map[string]any{"new_size": "2"}})
	f.at(53, http.StatusBadRequest, "POST", "volumes/"+vol+"/action", alice, map[string]any{"os-no-such-action": nil})

	// Snapshots, metadata, types, quotas, backups, transfers,
	// attachments, groups: one misfit each.
	f.badFieldAs(alice, 53, "POST", "snapshots", map[string]any{"snapshot": map[string]any{"volume_id": vol, "forced": true}}, "forced")
	f.badFieldAs(alice, 53, "POST", "snapshots", map[string]any{"snapshot": map[string]any{"name": "s"}}, "volume_id")
	f.badFieldAs(alice, 53, "POST", "volumes/"+vol+"/metadata", map[string]any{"metadata": map[string]any{"bad key!": "v"}}, "bad key!")
	f.badFieldAs(alice, 53, "PUT", "volumes/"+vol+"/metadata/a", map[string]any{"meta": map[string]any{"a": "1", "b": "2"}}, "meta")
	f.badFieldAs(admin, 53, "POST", "types", map[string]any{"volume_type": map[string]any{"name": ""}}, "name")
	f.badFieldAs(admin, 53, "POST", "types", map[string]any{"volume_type": map[string]any{"name": "t", "is_public": false}}, "is_public")
	f.badFieldAs(admin, 53, "PUT", "os-quota-sets/"+projA, map[string]any{"quota_set": map[string]any{}}, "quota_set")
	f.badFieldAs(alice, 53, "POST", "backups", map[string]any{"backup": map[string]any{"volume_id": vol, "incremental": "sometimes"}}, "incremental")
	f.badFieldAs(alice, 53, "POST", "volume-transfers", map[string]any{"transfer": map[string]any{"volume_id": vol, "no_snapshots": true}}, "no_snapshots")
	f.badFieldAs(alice, 53, "POST", "attachments", map[string]any{"attachment": map[string]any{"volume_uuid": vol, "mode": "ro"}}, "mode")
	f.badFieldAs(alice, 53, "POST", "groups", map[string]any{"group": map[string]any{"group_type": "gt", "volume_types": []any{}}}, "volume_types")
	f.badFieldAs(alice, 53, "POST", "groups/action", map[string]any{"create-from-src": map[string]any{"name": "x"}}, "create-from-src")

	// The body is checked after the caller's access: no token is 401,
	// a member's admin-only call 403, whatever the body.
	if r := f.call("POST", "volumes", "", map[string]any{"volume": map[string]any{"colour": 1}}, mv("53")...); r.Code != http.StatusUnauthorized {
		t.Fatalf("no token: %d %s", r.Code, r.Raw)
	}
	if r := f.call("POST", "types", alice, map[string]any{"volume_type": map[string]any{"colour": 1}}, mv("53")...); r.Code != http.StatusForbidden {
		t.Fatalf("member creating a type: %d %s", r.Code, r.Raw)
	}
	// Another project's volume: the body fits, the handler refuses it.
	f.at(53, http.StatusNotFound, "PUT", "volumes/"+vol, bob, map[string]any{"volume": map[string]any{"name": "mine"}})
	// A body that is not JSON is a 400 still.
	if r := f.call("POST", "volumes", alice, "{", mv("53")...); r.Code != http.StatusBadRequest {
		t.Fatalf("malformed JSON: %d %s", r.Code, r.Raw)
	}
}

// 3.54: attachment create takes the attach mode; before, "mode" is an
// unknown key. A read-only volume is attached "ro" whatever is asked,
// and refuses "rw".
func TestAttachmentMode354(t *testing.T) {
	f := newFixture(t)
	vol := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	create := func(mode any) map[string]any {
		a := map[string]any{"volume_uuid": vol, "instance_uuid": "0f5c4b9a-2d6e-4f1a-a3b1-c2d3e4f5a6b7"}
		if mode != nil {
			a["mode"] = mode
		}
		return map[string]any{"attachment": a}
	}
	f.badFieldAs(alice, 52, "POST", "attachments", create("ro"), "mode")
	f.badFieldAs(alice, 53, "POST", "attachments", create("ro"), "mode")
	f.badFieldAs(alice, 54, "POST", "attachments", create("wo"), "mode")
	f.at(54, http.StatusNotFound, "POST", "attachments", bob, create("ro"))
	a := f.at(54, http.StatusOK, "POST", "attachments", alice, create("ro"))["attachment"].(map[string]any)
	if a["attach_mode"] != "ro" {
		t.Fatalf("attachment %v", a)
	}
	shown := f.at(54, http.StatusOK, "GET", "attachments/"+a["id"].(string), alice, nil)["attachment"].(map[string]any)
	if shown["attach_mode"] != "ro" {
		t.Fatalf("shown %v", shown)
	}
	f.at(54, http.StatusOK, "DELETE", "attachments/"+a["id"].(string), alice, nil)
	if a := f.at(54, http.StatusOK, "POST", "attachments", alice, create("rw"))["attachment"].(map[string]any); a["attach_mode"] != "rw" {
		t.Fatalf("rw attachment %v", a)
	}
}

// cinderclient's attachment-create sends an empty connector for a
// reservation: it is taken as none; a real connector (an outside host)
// is still refused naming it.
func TestAttachmentEmptyConnector(t *testing.T) {
	f := newFixture(t)
	vol := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	body := func(c any) map[string]any {
		return map[string]any{"attachment": map[string]any{"volume_uuid": vol, "instance_uuid": "0f5c4b9a-2d6e-4f1a-a3b1-c2d3e4f5a6b7", "connector": c}}
	}
	f.badFieldAs(alice, 27, "POST", "attachments", body(map[string]any{"initiator": "iqn.x"}), "connector")
	if a := f.at(54, http.StatusOK, "POST", "attachments", alice, body(map[string]any{}))["attachment"].(map[string]any); a["status"] != "reserved" {
		t.Fatalf("attachment %v", a)
	}
}
