package compute

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/events/eventstate"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// withSnapshots gives the fixture's service a fake agent-side snapshot
// path and the standard flavors, as the server snapshot tests need.
func (f *fixture) withSnapshots() *fakeSnapshots {
	snaps := &fakeSnapshots{}
	f.svc.cfg.Snapshots = snaps
	f.stdFlavors()
	return snaps
}

// fakeSnapshots records the images createImage asks for.
type fakeSnapshots struct {
	mu        sync.Mutex
	made      map[string]SnapshotImage
	owners    map[string]string // image → principal's project
	discarded []string
	n         int
}

func (f *fakeSnapshots) CreateSnapshot(_ context.Context, p *api.Principal, n SnapshotImage) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	id := fmt.Sprintf("snap-%d", f.n)
	if f.made == nil {
		f.made, f.owners = map[string]SnapshotImage{}, map[string]string{}
	}
	f.made[id], f.owners[id] = n, p.ProjectID
	return id, nil
}

func (f *fakeSnapshots) Discard(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.discarded = append(f.discarded, id)
	return nil
}

func (f *fixture) imageStep(c computestate.ImageStepCmd) error {
	c.Now = f.now
	_, err := f.local.Propose(context.Background(), computestate.CmdImageStep, c)
	return err
}

// createImage of an image-backed server: refused naming the field for
// bad input, 404 for another project, 403 for a reader, 409 for a state
// Nova refuses; else a queued image with the snapshot's properties, the
// server in task_state image_snapshot until its node's agent says the
// snapshot is done, and a createImage action whose event says how it
// ended. From 2.45 the answer is the image id, before it a Location.
func TestCreateImage(t *testing.T) {
	f := newFixtureWith(t, eventstate.Schema())
	snaps := f.withSnapshots()
	id := f.server(alice, "vm")
	path := "/v2.1/servers/" + id + "/action"
	create := func(tok, version string, arg any, status int, inMsg ...string) resp {
		t.Helper()
		fault := map[int]string{400: "badRequest", 403: "forbidden", 404: "itemNotFound", 409: "conflictingRequest", 501: "notImplemented"}[status]
		f.expect("POST", path, tok, version, map[string]any{"createImage": arg}, status, fault, inMsg...)
		return f.do("GET", "/v2.1/servers/"+id, tok, "", nil)
	}
	ok := map[string]any{"name": "snap1"}
	// Still building: Nova refuses it.
	create(alice, "2.45", ok, 409, "vm_state building")
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})

	create(alice, "2.45", "x", 400, "not of type 'object'")
	create(alice, "2.45", map[string]any{}, 400, "name", "required")
	create(alice, "2.45", map[string]any{"name": " snap"}, 400, "name")
	create(alice, "2.45", map[string]any{"name": strings.Repeat("n", 256)}, 400, "name")
	create(alice, "2.45", map[string]any{"name": "s", "metadata": "x"}, 400, "metadata")
	create(alice, "2.45", map[string]any{"name": "s", "metadata": map[string]any{"k": 1}}, 400, "metadata")
	create(alice, "2.45", map[string]any{"name": "s", "disk_format": "raw"}, 400, "disk_format")
	many := map[string]any{}
	for i := range 129 {
		many[fmt.Sprint("k", i)] = "v"
	}
	create(alice, "2.45", map[string]any{"name": "s", "metadata": many}, 403, "metadata_items")
	create(bob, "2.45", ok, 404)
	create(carol, "2.45", ok, 403, createImageRule)
	f.expect("POST", "/v2.1/servers/"+id+"x/action", alice, "2.45", map[string]any{"createImage": ok}, 404, "itemNotFound")
	// Locked by an admin: the owner may not, an admin may.
	f.action(admin, id, map[string]any{"lock": nil}, 202)
	create(alice, "2.45", ok, 409, "locked")
	f.action(admin, id, map[string]any{"unlock": nil}, 202)
	if snaps.n != 0 {
		t.Fatalf("refused requests made %d images", snaps.n)
	}

	r := f.do("POST", path, alice, "2.45", map[string]any{"createImage": map[string]any{"name": "snap1",
		"metadata": map[string]any{"purpose": "backup", "image_type": "mine"}}})
	if r.code != 202 || r.body["image_id"] != "snap-1" || r.header.Get("Location") != "" {
		t.Fatalf("createImage at 2.45: %d %v Location %q", r.code, r.body, r.header.Get("Location"))
	}
	made := snaps.made["snap-1"]
	want := map[string]string{"image_type": "mine", "purpose": "backup", "instance_uuid": id, "user_id": "u-alice", "base_image_ref": img1}
	if made.Name != "snap1" || made.Project != projA || made.BaseImage != img1 || made.MinDisk != f.row(id).RootGB ||
		fmt.Sprint(made.Properties) != fmt.Sprint(want) {
		t.Fatalf("image asked for: %+v", made)
	}
	row := f.row(id)
	if row.TaskState != "image_snapshot" || row.SnapshotImage != "snap-1" || row.Status != "ACTIVE" {
		t.Fatalf("server while snapshotting: %s %q %q", row.Status, row.TaskState, row.SnapshotImage)
	}
	if sv := f.show(alice, id, ""); sv["OS-EXT-STS:task_state"] != "image_snapshot" || sv["status"] != "ACTIVE" {
		t.Fatalf("shown while snapshotting: %v %v", sv["status"], sv["OS-EXT-STS:task_state"])
	}
	create(alice, "2.45", ok, 409, "task_state image_snapshot")
	f.action(alice, id, map[string]any{"os-stop": nil}, 409)
	// The guest's reports (a restarted agent's) do not end it; its steps do.
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, RebootSeq: 1})
	if row := f.row(id); row.TaskState != "image_snapshot" {
		t.Fatalf("a report ended the snapshot: %q", row.TaskState)
	}
	if err := f.imageStep(computestate.ImageStepCmd{ServerID: id, ImageID: "other", Task: "image_uploading"}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a step of another image: %v", err)
	}
	if err := f.imageStep(computestate.ImageStepCmd{ServerID: id, ImageID: "snap-1", Task: "image_uploading"}); err != nil {
		t.Fatal(err)
	}
	if row := f.row(id); row.TaskState != "image_uploading" {
		t.Fatalf("after the upload step: %q", row.TaskState)
	}
	if err := f.imageStep(computestate.ImageStepCmd{ServerID: id, ImageID: "snap-1", Result: "Success"}); err != nil {
		t.Fatal(err)
	}
	if row := f.row(id); row.TaskState != "" || row.SnapshotImage != "" || row.Status != "ACTIVE" {
		t.Fatalf("after the snapshot: %s %q %q", row.Status, row.TaskState, row.SnapshotImage)
	}
	act := snapshotAction(t, f, id)
	if act.UserID != "u-alice" || act.Message != "" || act.Events[0].Event != "compute_snapshot_instance" || act.Events[0].Result != "Success" ||
		act.Events[0].Finish.IsZero() || act.Events[0].Host != row.Host {
		t.Fatalf("createImage action: %+v", act)
	}
	if ev := f.events(id); !strings.Contains(ev, "createImage") {
		t.Fatalf("event log: %s", ev)
	}

	// A stopped server, before 2.45: a Location and no body; a failed
	// snapshot ends with the event's error and the server as it was.
	f.action(alice, id, map[string]any{"os-stop": nil}, 202)
	f.report(id, Observed{Status: "SHUTOFF", PowerState: 4, RebootSeq: 1})
	f.now = f.now.Add(time.Minute)
	r = f.do("POST", path, alice, "2.44", map[string]any{"createImage": ok})
	if loc := r.header.Get("Location"); r.code != 202 || len(r.body) != 0 || !strings.HasSuffix(loc, "/image/v2/images/snap-2") {
		t.Fatalf("createImage at 2.44: %d %v Location %q", r.code, r.body, loc)
	}
	if err := f.imageStep(computestate.ImageStepCmd{ServerID: id, ImageID: "snap-2", Result: "Error", Details: "qemu-img convert: no space"}); err != nil {
		t.Fatal(err)
	}
	if row := f.row(id); row.TaskState != "" || row.Status != "SHUTOFF" || row.SnapshotImage != "" {
		t.Fatalf("after a failed snapshot: %s %q", row.Status, row.TaskState)
	}
	if act := snapshotAction(t, f, id); act.Message != "Error" || act.Events[0].Result != "Error" || !strings.Contains(act.Events[0].Details, "no space") {
		t.Fatalf("failed createImage action: %+v", act)
	}

	// An admin snapshots another project's server: the image is the
	// server's project's.
	f.expect("POST", path, admin, "2.45", map[string]any{"createImage": ok}, 202, "")
	if made := snaps.made["snap-3"]; made.Project != projA || made.Properties["user_id"] != "u-admin" {
		t.Fatalf("admin's snapshot: %+v", made)
	}
}

// snapshotAction is the server's latest createImage action.
func snapshotAction(t *testing.T, f *fixture, id string) Action {
	t.Helper()
	var last *Action
	for _, a := range store.All[Action](f.local.State.Txn(), tActions, "server", id) {
		if a.Action == "createImage" && (last == nil || !a.Start.Before(last.Start)) {
			last = a
		}
	}
	if last == nil || len(last.Events) != 1 {
		t.Fatalf("no createImage action with one event: %+v", last)
	}
	return *last
}

// Without an image service to make images in, createImage is not built.
func TestCreateImageUnbuilt(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	id := f.server(alice, "vm")
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	f.expect("POST", "/v2.1/servers/"+id+"/action", alice, "", map[string]any{"createImage": map[string]any{"name": "s"}}, 501, "notImplemented")
	if row := f.row(id); row.TaskState != "" {
		t.Fatalf("task %q", row.TaskState)
	}
}

// What is not snapshotted here says so: a server booted from a volume
// when no volume service runs to snapshot it (501), and a bare-metal
// server (409, as for the other actions a whole machine cannot take). No
// image is made for either.
func TestCreateImageRefusals(t *testing.T) {
	f := newFixtureWith(t, volstate.Schema())
	snaps := f.withSnapshots()
	vol := f.volume(projA)
	id := f.server(alice, "vm", "imageRef", "", "block_device_mapping_v2", bfv("volume", vol, 0, false))
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	f.expect("POST", "/v2.1/servers/"+id+"/action", alice, "2.45", map[string]any{"createImage": map[string]any{"name": "s"}}, 501, "notImplemented", "boots from volume")

	b := newBaremetalFixture(t)
	b.svc.cfg.Snapshots = snaps
	b.addNode("node-1", "CUSTOM_BAREMETAL_SMALL", "available")
	bm := b.bmServer(alice, "metal")
	b.expect("POST", "/v2.1/servers/"+bm+"/action", alice, "2.45", map[string]any{"createImage": map[string]any{"name": "s"}}, 409, "conflictingRequest", "not supported for bare-metal")
	if snaps.n != 0 || f.row(id).TaskState != "" || b.row(bm).SnapshotImage != "" {
		t.Fatalf("a refused createImage made %d images", snaps.n)
	}
}
