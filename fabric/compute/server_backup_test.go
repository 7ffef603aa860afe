package compute

import (
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/events/eventstate"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// createBackup: the fields Nova requires, refused by name; the snapshot
// path of createImage with an image_type=backup image carrying its
// backup_type, the server in task_state image_backup with the rotation
// its agent applies once the image is made, a createBackup action; 2.45
// answers the image id, before it a Location unless rotation is 0.
func TestCreateBackup(t *testing.T) {
	f := newFixtureWith(t, eventstate.Schema())
	snaps := f.withSnapshots()
	id := f.server(alice, "vm")
	path := "/v2.1/servers/" + id + "/action"
	backup := func(tok, version string, arg any, status int, inMsg ...string) {
		t.Helper()
		fault := map[int]string{400: "badRequest", 403: "forbidden", 404: "itemNotFound", 409: "conflictingRequest", 501: "notImplemented"}[status]
		f.expect("POST", path, tok, version, map[string]any{"createBackup": arg}, status, fault, inMsg...)
	}
	ok := map[string]any{"name": "daily-1", "backup_type": "daily", "rotation": 2}
	backup(alice, "2.45", ok, 409, "createBackup", "vm_state building")
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})

	backup(alice, "2.45", "x", 400, "not of type 'object'")
	backup(alice, "2.45", map[string]any{"backup_type": "daily", "rotation": 1}, 400, "name", "required")
	backup(alice, "2.45", map[string]any{"name": "b", "rotation": 1}, 400, "backup_type", "required")
	backup(alice, "2.45", map[string]any{"name": "b", "backup_type": "daily"}, 400, "rotation", "required")
	backup(alice, "2.45", map[string]any{"name": "b", "backup_type": 7, "rotation": 1}, 400, "backup_type")
	backup(alice, "2.45", map[string]any{"name": "b", "backup_type": "daily", "rotation": -1}, 400, "rotation", "minimum")
	backup(alice, "2.45", map[string]any{"name": "b", "backup_type": "daily", "rotation": "two"}, 400, "rotation")
	backup(alice, "2.45", map[string]any{"name": " b", "backup_type": "daily", "rotation": 1}, 400, "name")
	backup(alice, "2.45", map[string]any{"name": "b", "backup_type": "daily", "rotation": 1, "metadata": "x"}, 400, "metadata")
	backup(alice, "2.45", map[string]any{"name": "b", "backup_type": "daily", "rotation": 1, "extra": 1}, 400, "extra")
	backup(bob, "2.45", ok, 404)
	backup(carol, "2.45", ok, 403, createBackupRule)
	f.action(admin, id, map[string]any{"lock": nil}, 202)
	backup(alice, "2.45", ok, 409, "locked")
	f.action(admin, id, map[string]any{"unlock": nil}, 202)
	if snaps.n != 0 {
		t.Fatalf("refused requests made %d images", snaps.n)
	}

	r := f.do("POST", path, alice, "2.45", map[string]any{"createBackup": map[string]any{"name": "daily-1", "backup_type": "daily",
		"rotation": "2", "metadata": map[string]any{"purpose": "dr", "backup_type": "mine"}}})
	if r.code != 202 || r.body["image_id"] != "snap-1" || r.header.Get("Location") != "" {
		t.Fatalf("createBackup at 2.45: %d %v Location %q", r.code, r.body, r.header.Get("Location"))
	}
	made := snaps.made["snap-1"]
	p := made.Properties
	if made.Name != "daily-1" || made.Project != projA || p["image_type"] != "backup" || p["backup_type"] != "daily" ||
		p["instance_uuid"] != id || p["purpose"] != "dr" || p["user_id"] != "u-alice" || p["base_image_ref"] != img1 {
		t.Fatalf("image asked for: %+v", made)
	}
	row := f.row(id)
	if row.TaskState != "image_backup" || row.SnapshotImage != "snap-1" || row.SnapshotBackup == nil ||
		*row.SnapshotBackup != (computestate.Backup{Type: "daily", Rotation: 2}) || row.Status != "ACTIVE" {
		t.Fatalf("server while backing up: %s %q %q %+v", row.Status, row.TaskState, row.SnapshotImage, row.SnapshotBackup)
	}
	backup(alice, "2.45", ok, 409, "task_state image_backup")
	f.expect("POST", path, alice, "2.45", map[string]any{"createImage": map[string]any{"name": "s"}}, 409, "conflictingRequest", "image_backup")
	for _, task := range []string{"image_pending_upload", "image_uploading"} {
		if err := f.imageStep(computestate.ImageStepCmd{ServerID: id, ImageID: "snap-1", Task: task}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.imageStep(computestate.ImageStepCmd{ServerID: id, ImageID: "snap-1", Result: "Success"}); err != nil {
		t.Fatal(err)
	}
	if row := f.row(id); row.TaskState != "" || row.SnapshotImage != "" || row.SnapshotBackup != nil {
		t.Fatalf("after the backup: %q %q %+v", row.TaskState, row.SnapshotImage, row.SnapshotBackup)
	}
	var act *Action
	for _, a := range store.All[Action](f.local.State.Txn(), tActions, "server", id) {
		if a.Action == "createBackup" {
			act = a
		}
	}
	if act == nil || len(act.Events) != 1 || act.Events[0].Event != "compute_backup_instance" || act.Events[0].Result != "Success" {
		t.Fatalf("createBackup action: %+v", act)
	}

	// Before 2.45: a Location, none for a backup no rotation keeps.
	r = f.do("POST", path, alice, "2.44", map[string]any{"createBackup": ok})
	if loc := r.header.Get("Location"); r.code != 202 || len(r.body) != 0 || !strings.HasSuffix(loc, "/image/v2/images/snap-2") {
		t.Fatalf("createBackup at 2.44: %d %v Location %q", r.code, r.body, loc)
	}
	if err := f.imageStep(computestate.ImageStepCmd{ServerID: id, ImageID: "snap-2", Result: "Success"}); err != nil {
		t.Fatal(err)
	}
	r = f.do("POST", path, alice, "2.44", map[string]any{"createBackup": map[string]any{"name": "b", "backup_type": "daily", "rotation": 0}})
	if r.code != 202 || r.header.Get("Location") != "" {
		t.Fatalf("createBackup rotation 0 at 2.44: %d Location %q", r.code, r.header.Get("Location"))
	}
	if row := f.row(id); row.SnapshotBackup == nil || row.SnapshotBackup.Rotation != 0 || row.TaskState != "image_backup" {
		t.Fatalf("rotation 0 backup: %q %+v", row.TaskState, row.SnapshotBackup)
	}
}

// A volume-backed server is refused with 400, as Nova does; without an
// image service createBackup is not built (501). No image is made.
func TestCreateBackupRefusals(t *testing.T) {
	f := newFixtureWith(t, volstate.Schema())
	snaps := f.withSnapshots()
	vol := f.volume(projA)
	id := f.server(alice, "vm", "imageRef", "", "block_device_mapping_v2", bfv("volume", vol, 0, false))
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	ok := map[string]any{"createBackup": map[string]any{"name": "b", "backup_type": "daily", "rotation": 1}}
	f.expect("POST", "/v2.1/servers/"+id+"/action", alice, "2.45", ok, 400, "badRequest", "volume-backed")
	if snaps.n != 0 || f.row(id).TaskState != "" {
		t.Fatalf("a refused createBackup made %d images", snaps.n)
	}

	g := newFixture(t)
	g.stdFlavors()
	vm := g.server(alice, "vm")
	g.report(vm, Observed{Status: "ACTIVE", PowerState: 1})
	g.expect("POST", "/v2.1/servers/"+vm+"/action", alice, "", ok, 501, "notImplemented", "createBackup")
}
