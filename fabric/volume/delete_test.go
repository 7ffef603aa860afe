package volume

import (
	"context"
	"net/http"
	"testing"

	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

func action(name string, arg any) map[string]any { return map[string]any{name: arg} }

// An admin's os-force_delete deletes a volume whatever its status, but
// never an attached one; members may not force.
func TestForceDeleteVolume(t *testing.T) {
	f := newFixture(t)
	for _, status := range []string{"creating", "attaching", "error", "maintenance", "extending"} {
		vol := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
		f.expect(http.StatusAccepted, "POST", "volumes/"+vol+"/action", admin, action("os-reset_status", map[string]any{"status": status}))
		if status == "creating" {
			f.expect(http.StatusBadRequest, "DELETE", "volumes/"+vol, alice, nil)
		}
		f.expect(http.StatusForbidden, "POST", "volumes/"+vol+"/action", alice, action("os-force_delete", map[string]any{}))
		f.expect(http.StatusAccepted, "POST", "volumes/"+vol+"/action", admin, action("os-force_delete", map[string]any{}))
		f.expect(http.StatusNotFound, "GET", "volumes/"+vol, alice, nil)
		if _, ok := f.blocks.sizeOf(vol); ok {
			t.Fatalf("%s: blocks left", status)
		}
	}
	vol := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	if _, err := f.svc.changeVolume(context.Background(), vol, func(v *volstate.Volume) error {
		v.Status, v.Attachments = volstate.StatusInUse, []volstate.Attachment{{ID: "a1", ServerID: "s1"}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	f.expect(http.StatusBadRequest, "POST", "volumes/"+vol+"/action", admin, action("os-force_delete", map[string]any{}))
}

// DELETE ?cascade=true deletes the volume's snapshots with it; without
// it a volume with snapshots stays.
func TestDeleteVolumeCascade(t *testing.T) {
	f := newFixture(t)
	vol := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	var snaps []string
	for i := 0; i < 2; i++ {
		sn := f.expect(http.StatusAccepted, "POST", "snapshots", alice, map[string]any{"snapshot": map[string]any{"volume_id": vol}}).Body["snapshot"].(map[string]any)
		snaps = append(snaps, sn["id"].(string))
	}
	f.expect(http.StatusBadRequest, "DELETE", "volumes/"+vol, alice, nil)
	f.expect(http.StatusBadRequest, "DELETE", "volumes/"+vol+"?cascade=maybe", alice, nil)
	// A snapshot being made stops the cascade, and nothing is deleted.
	f.expect(http.StatusAccepted, "POST", "snapshots/"+snaps[1]+"/action", admin, action("os-reset_status", map[string]any{"status": "creating"}))
	f.expect(http.StatusBadRequest, "DELETE", "volumes/"+vol+"?cascade=true", alice, nil)
	if got := f.showVolume(alice, vol)["status"]; got != "available" {
		t.Fatalf("after a refused cascade: %v", got)
	}
	f.expect(http.StatusAccepted, "POST", "snapshots/"+snaps[1]+"/action", admin, action("os-reset_status", map[string]any{"status": "error"}))
	f.expect(http.StatusAccepted, "DELETE", "volumes/"+vol+"?cascade=true", alice, nil)
	f.expect(http.StatusNotFound, "GET", "volumes/"+vol, alice, nil)
	for _, sn := range snaps {
		f.expect(http.StatusNotFound, "GET", "snapshots/"+sn, alice, nil)
		if _, ok := f.blocks.sizeOf(sn); ok {
			t.Fatalf("snapshot %s: blocks left", sn)
		}
	}
}

// os-force_delete of a snapshot (admin) deletes it in any status;
// os-update_snapshot_status (the owner) moves it as a driver reports
// progress, only along Cinder's moves.
func TestSnapshotForceDeleteAndUpdateStatus(t *testing.T) {
	f := newFixture(t)
	vol := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	sn := f.expect(http.StatusAccepted, "POST", "snapshots", alice, map[string]any{"snapshot": map[string]any{"volume_id": vol}}).Body["snapshot"].(map[string]any)["id"].(string)
	path := "snapshots/" + sn + "/action"
	f.expect(http.StatusBadRequest, "POST", path, alice, action("os-update_snapshot_status", map[string]any{"status": "error"}))
	f.expect(http.StatusAccepted, "POST", path, admin, action("os-reset_status", map[string]any{"status": "creating"}))
	f.expect(http.StatusAccepted, "POST", path, alice, action("os-update_snapshot_status", map[string]any{"status": "error", "progress": "80%"}))
	got := f.expect(http.StatusOK, "GET", "snapshots/"+sn, alice, nil).Body["snapshot"].(map[string]any)
	if got["status"] != "error" || got["os-extended-snapshot-attributes:progress"] != "80%" {
		t.Fatalf("after update %v", got)
	}
	f.expect(http.StatusForbidden, "POST", path, alice, action("os-reset_status", map[string]any{"status": "deleting"}))
	f.expect(http.StatusAccepted, "POST", path, admin, action("os-reset_status", map[string]any{"status": "deleting"}))
	f.expect(http.StatusBadRequest, "DELETE", "snapshots/"+sn, alice, nil)
	f.expect(http.StatusForbidden, "POST", path, alice, action("os-force_delete", map[string]any{}))
	f.expect(http.StatusAccepted, "POST", path, admin, action("os-force_delete", map[string]any{}))
	f.expect(http.StatusNotFound, "GET", "snapshots/"+sn, alice, nil)
	f.expect(http.StatusBadRequest, "POST", "volumes/"+vol+"/action", alice, action("os-no_such_thing", map[string]any{}))
}

// Snapshot metadata: set, merged, replaced, one key shown, changed and
// deleted; another project sees none of it.
func TestSnapshotMetadata(t *testing.T) {
	f := newFixture(t)
	vol := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	sn := f.expect(http.StatusAccepted, "POST", "snapshots", alice, map[string]any{"snapshot": map[string]any{"volume_id": vol, "metadata": map[string]any{"a": "1"}}}).Body["snapshot"].(map[string]any)["id"].(string)
	md := "snapshots/" + sn + "/metadata"
	got := f.expect(http.StatusOK, "POST", md, alice, map[string]any{"metadata": map[string]any{"b": "2"}}).Body["metadata"].(map[string]any)
	if len(got) != 2 || got["a"] != "1" || got["b"] != "2" {
		t.Fatalf("merged %v", got)
	}
	got = f.expect(http.StatusOK, "PUT", md, alice, map[string]any{"metadata": map[string]any{"c": "3", "d": "4"}}).Body["metadata"].(map[string]any)
	if len(got) != 2 || got["c"] != "3" {
		t.Fatalf("replaced %v", got)
	}
	f.expect(http.StatusOK, "PUT", md+"/c", alice, map[string]any{"meta": map[string]any{"c": "33"}})
	f.expect(http.StatusBadRequest, "PUT", md+"/c", alice, map[string]any{"meta": map[string]any{"x": "33"}})
	if got := f.expect(http.StatusOK, "GET", md+"/c", alice, nil).Body["meta"].(map[string]any); got["c"] != "33" {
		t.Fatalf("key %v", got)
	}
	f.expect(http.StatusOK, "DELETE", md+"/d", alice, nil)
	f.expect(http.StatusNotFound, "DELETE", md+"/d", alice, nil)
	f.expect(http.StatusNotFound, "GET", md+"/d", alice, nil)
	if got := f.expect(http.StatusOK, "GET", md, alice, nil).Body["metadata"].(map[string]any); len(got) != 1 || got["c"] != "33" {
		t.Fatalf("at the end %v", got)
	}
	if got := f.expect(http.StatusOK, "GET", "snapshots/"+sn, alice, nil).Body["snapshot"].(map[string]any)["metadata"].(map[string]any); got["c"] != "33" {
		t.Fatalf("snapshot shows %v", got)
	}
	f.expect(http.StatusNotFound, "GET", md, bob, nil)
	f.expect(http.StatusNotFound, "POST", md, bob, map[string]any{"metadata": map[string]any{"b": "2"}})
	f.expect(http.StatusBadRequest, "POST", md, alice, map[string]any{"metadata": map[string]any{"b": 2}})
}

// A snapshot of a null volume_id is of no volume: 404, as Cinder; one
// without volume_id is a bad request.
func TestSnapshotOfNoVolume(t *testing.T) {
	f := newFixture(t)
	f.expect(http.StatusNotFound, "POST", "snapshots", alice, map[string]any{"snapshot": map[string]any{"volume_id": nil}})
	f.expect(http.StatusBadRequest, "POST", "snapshots", alice, map[string]any{"snapshot": map[string]any{"name": "x"}})
}

// os-force_detach (admin) ends an attachment: a recorded one at once,
// one Nova made by asking the node agent to unplug it (detaching).
func TestForceDetach(t *testing.T) {
	f := newFixture(t)
	vol := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	f.expect(http.StatusAccepted, "POST", "volumes/"+vol+"/action", alice, action("os-attach", map[string]any{"instance_uuid": "11111111-1111-1111-1111-111111111111", "mountpoint": "/dev/vdb"}))
	att := f.showVolume(alice, vol)["attachments"].([]any)[0].(map[string]any)["attachment_id"].(string)
	f.expect(http.StatusForbidden, "POST", "volumes/"+vol+"/action", alice, action("os-force_detach", map[string]any{"attachment_id": att}))
	f.expect(http.StatusBadRequest, "POST", "volumes/"+vol+"/action", admin, action("os-force_detach", map[string]any{"attachment_id": "22222222-1111-1111-1111-111111111111"}))
	f.expect(http.StatusAccepted, "POST", "volumes/"+vol+"/action", admin, action("os-force_detach", map[string]any{"attachment_id": att}))
	if got := f.showVolume(alice, vol)["status"]; got != "available" {
		t.Fatalf("after a forced detach: %v", got)
	}
	// Plugged by the node agent for Nova: the agent is asked to unplug.
	if _, err := f.svc.changeVolume(context.Background(), vol, func(v *volstate.Volume) error {
		v.Status, v.Attachments = volstate.StatusInUse, []volstate.Attachment{{ID: "a1", ServerID: "s1", Host: "n1"}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	f.expect(http.StatusAccepted, "POST", "volumes/"+vol+"/action", admin, action("os-force_detach", map[string]any{}))
	if got := f.showVolume(alice, vol)["status"]; got != "detaching" {
		t.Fatalf("a plugged volume force-detached: %v", got)
	}
}

// A legacy os-detach of a volume that is not attached does nothing, as
// Cinder's does.
func TestDetachOfADetachedVolume(t *testing.T) {
	f := newFixture(t)
	vol := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	f.expect(http.StatusAccepted, "POST", "volumes/"+vol+"/action", alice, action("os-detach", map[string]any{}))
	if got := f.showVolume(alice, vol)["status"]; got != "available" {
		t.Fatalf("status %v", got)
	}
}
