package volume

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// The readonly flag shows in the metadata as Cinder shows it, and a
// read-only volume is attached read-only: the attachment the node agent
// plugs says so, and so do the attachments API and the metadata.
func TestReadonlyFlagMakesAttachmentsReadOnly(t *testing.T) {
	f := newFixture(t)
	id := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	if _, ok := f.showVolume(alice, id)["metadata"].(map[string]any)["readonly"]; ok {
		t.Fatal("readonly shown before it was ever set")
	}
	f.expect(http.StatusBadRequest, "POST", "volumes/"+id+"/action", alice, map[string]any{"os-update_readonly_flag": map[string]any{}})
	f.expect(http.StatusBadRequest, "POST", "volumes/"+id+"/action", alice, map[string]any{"os-update_readonly_flag": map[string]any{"readonly": "maybe"}})
	f.expect(http.StatusNotFound, "POST", "volumes/"+id+"/action", bob, map[string]any{"os-update_readonly_flag": map[string]any{"readonly": true}})
	for _, ro := range []bool{false, true} {
		f.expect(http.StatusAccepted, "POST", "volumes/"+id+"/action", alice, map[string]any{"os-update_readonly_flag": map[string]any{"readonly": ro}})
		if got := f.showVolume(alice, id)["metadata"].(map[string]any)["readonly"]; got != pyBool(ro) {
			t.Fatalf("readonly=%v shows %v", ro, got)
		}
	}
	att := volstate.Attachment{ID: api.NewUUID(), ServerID: api.NewUUID(), Host: "n1", Device: "/dev/vdb"}
	res, err := f.local.Propose(context.Background(), volstate.CmdAttach, volstate.AttachCmd{VolumeID: id, Attachment: att})
	if err != nil {
		t.Fatal(err)
	}
	var v volstate.Volume
	if err := json.Unmarshal(res.Value, &v); err != nil {
		t.Fatal(err)
	}
	if v.Attachments[0].Mode != volstate.AttachReadOnly {
		t.Fatalf("attachment of a read-only volume: mode %q", v.Attachments[0].Mode)
	}
	if md := f.showVolume(alice, id)["metadata"].(map[string]any); md["attached_mode"] != "ro" {
		t.Fatalf("metadata %v", md)
	}
	r := f.call("GET", "attachments/detail", alice, nil, "OpenStack-API-Version", "volume 3.27")
	if a := r.Body["attachments"].([]any); len(a) != 1 || a[0].(map[string]any)["attach_mode"] != "ro" {
		t.Fatalf("attachments %s", r.Raw)
	}
	// Attached, the flag stays as the guest was given it.
	f.expect(http.StatusBadRequest, "POST", "volumes/"+id+"/action", alice, map[string]any{"os-update_readonly_flag": map[string]any{"readonly": false}})
}

// A read-only volume is never recorded as attached read-write.
func TestReadOnlyVolumeRefusesReadWriteAttach(t *testing.T) {
	f := newFixture(t)
	id := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	f.expect(http.StatusAccepted, "POST", "volumes/"+id+"/action", alice, map[string]any{"os-update_readonly_flag": map[string]any{"readonly": true}})
	inst := api.NewUUID()
	f.expect(http.StatusBadRequest, "POST", "volumes/"+id+"/action", alice, map[string]any{"os-attach": map[string]any{"instance_uuid": inst, "mountpoint": "/dev/vdb", "mode": "rw"}})
	f.expect(http.StatusAccepted, "POST", "volumes/"+id+"/action", alice, map[string]any{"os-attach": map[string]any{"instance_uuid": inst, "mountpoint": "/dev/vdb"}})
	if md := f.showVolume(alice, id)["metadata"].(map[string]any); md["attached_mode"] != "ro" {
		t.Fatalf("metadata %v", md)
	}
}
