package compute

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/events/eventstate"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

func rescueBody(fields map[string]any) map[string]any {
	return map[string]any{"rescue": fields}
}

// A rescue is refused, saying why and naming the field, before anything
// changes: a malformed body, an unknown or inactive rescue image, a
// server locked, paused or busy, a volume-backed server; an unrescue of
// a server not rescued.
func TestRescueRefusals(t *testing.T) {
	f := newFixtureWith(t, volstate.Schema())
	f.stdFlavors()
	id := f.server(alice, "vm")
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	path := "/v2.1/servers/" + id + "/action"
	f.expect("POST", path, alice, "", map[string]any{"rescue": "now"}, 400, "badRequest", "rescue")
	f.expect("POST", path, alice, "", rescueBody(map[string]any{"adminPass": 5}), 400, "badRequest", "adminPass")
	f.expect("POST", path, alice, "", rescueBody(map[string]any{"x": 1}), 400, "badRequest", "'x'")
	f.expect("POST", path, alice, "", rescueBody(map[string]any{"rescue_image_ref": "nope"}), 400, "badRequest", "rescue_image_ref", "'nope' is not a 'uuid'")
	f.expect("POST", path, alice, "", rescueBody(map[string]any{"rescue_image_ref": 7}), 400, "badRequest", "rescue_image_ref")
	f.expect("POST", path, alice, "", rescueBody(map[string]any{"rescue_image_ref": "44444444-4444-4444-8444-444444444444"}), 400, "badRequest", "rescue_image_ref", "not supported")
	f.expect("POST", path, alice, "", rescueBody(map[string]any{"rescue_image_ref": imgQueued}), 400, "badRequest", "rescue_image_ref", "not active")
	bdmImage := "55555555-5555-4555-8555-555555555555"
	f.svc.cfg.Images.(fakeImages)[bdmImage] = ImageInfo{ID: bdmImage, Status: "active", Properties: map[string]string{"block_device_mapping": `[{"boot_index": 0}]`}}
	f.expect("POST", path, alice, "", rescueBody(map[string]any{"rescue_image_ref": bdmImage}), 400, "badRequest", "rescue_image_ref", "snapshot of volumes")
	f.expect("POST", path, bob, "", rescueBody(nil), 404, "itemNotFound")
	f.expect("POST", "/v2.1/servers/"+id+"x/action", alice, "", rescueBody(nil), 404, "itemNotFound")
	f.expect("POST", path, carol, "", rescueBody(nil), 403, "forbidden")
	f.action(alice, id, map[string]any{"unrescue": nil}, 409, "Cannot 'unrescue' instance "+id+" while it is in vm_state active")
	// Its argument is not read (Nova's schema takes any): the state is.
	f.action(alice, id, map[string]any{"unrescue": map[string]any{"x": 1}}, 409, "vm_state active")
	// Locked by an admin: 409 for the owner.
	f.expect("POST", path, admin, "", map[string]any{"lock": nil}, 202, "")
	f.action(alice, id, rescueBody(nil), 409, "is locked")
	f.expect("POST", path, admin, "", map[string]any{"unlock": nil}, 202, "")
	// A task in progress, then paused.
	f.action(alice, id, map[string]any{"pause": nil}, 202)
	f.action(alice, id, rescueBody(nil), 409, "Cannot 'rescue' instance "+id+" while it is in task_state pausing")
	f.report(id, Observed{Status: "PAUSED", PowerState: 3})
	f.action(alice, id, rescueBody(nil), 409, "Cannot 'rescue' instance "+id+" while it is in vm_state paused")
	if sv := f.row(id); sv.RescueSeq != 0 || sv.RescueImage != "" || sv.Status != "PAUSED" {
		t.Fatalf("a refused rescue changed the server: %+v", sv)
	}
	for _, a := range f.expect("GET", "/v2.1/servers/"+id+"/os-instance-actions", alice, "", nil, 200, "")["instanceActions"].([]any) {
		if n := a.(map[string]any)["action"]; n == "rescue" || n == "unrescue" {
			t.Fatalf("a refused %s left an instance action", n)
		}
	}
	// Volume-backed: Nova's 400 before 2.87.
	vol := f.volume(projA)
	out := f.expect("POST", "/v2.1/servers", alice, "", map[string]any{"server": map[string]any{"name": "bfv",
		"flavorRef": "small", "networks": []any{map[string]any{"uuid": netA}},
		"block_device_mapping_v2": bfv("volume", vol, 0, false)}}, 202, "")
	bid := out["server"].(map[string]any)["id"].(string)
	f.report(bid, Observed{Status: "ACTIVE", PowerState: 1})
	f.expect("POST", "/v2.1/servers/"+bid+"/action", alice, "", rescueBody(nil), 400, "badRequest", "Cannot rescue a volume-backed instance")
	if sv := f.row(bid); sv.RescueSeq != 0 || sv.Status != "ACTIVE" {
		t.Fatalf("a refused rescue changed the volume-backed server: %+v", sv)
	}
	// 2.87: a volume-backed server is rescued with a rescue image that
	// has both hw_rescue_bus and hw_rescue_device (a stable rescue);
	// without them, or before 2.87, or without an image, refused.
	stable, half := "44444444-4444-4444-8444-444444444444", "55555555-5555-4555-8555-555555555555"
	f.svc.cfg.Images.(fakeImages)[stable] = ImageInfo{ID: stable, Status: "active", Properties: map[string]string{"hw_rescue_bus": "virtio", "hw_rescue_device": "disk"}}
	f.svc.cfg.Images.(fakeImages)[half] = ImageInfo{ID: half, Status: "active", Properties: map[string]string{"hw_rescue_device": "disk"}}
	path = "/v2.1/servers/" + bid + "/action"
	f.expect("POST", path, alice, "2.86", rescueBody(map[string]any{"rescue_image_ref": stable}), 400, "badRequest", "Cannot rescue a volume-backed instance")
	f.expect("POST", path, alice, "2.87", rescueBody(nil), 400, "badRequest", "Cannot rescue a volume-backed instance")
	f.expect("POST", path, alice, "2.87", rescueBody(map[string]any{"rescue_image_ref": half}), 400, "badRequest", "Cannot rescue a volume-backed instance")
	f.expect("POST", path, alice, "2.87", rescueBody(map[string]any{"rescue_image_ref": img1}), 400, "badRequest", "Cannot rescue a volume-backed instance")
	if sv := f.row(bid); sv.RescueSeq != 0 || sv.Status != "ACTIVE" {
		t.Fatalf("a refused rescue changed the volume-backed server: %+v", sv)
	}
	f.expect("POST", path, alice, "2.87", rescueBody(map[string]any{"rescue_image_ref": stable}), 200, "")
	if sv := f.row(bid); sv.RescueSeq != 1 || sv.RescueImage != stable || !sv.RescueStable || sv.TaskState != "rescuing" {
		t.Fatalf("a volume-backed server's stable rescue: %+v", sv)
	}
	f.report(bid, Observed{Status: "ACTIVE", PowerState: 1, RescueSeq: 1})
	if sv := f.row(bid); sv.Status != "RESCUE" {
		t.Fatalf("after the stable rescue: %s", sv.Status)
	}
	f.action(alice, bid, map[string]any{"unrescue": nil}, 202)
	if sv := f.row(bid); sv.RescueImage != "" || sv.RescueStable {
		t.Fatalf("an unrescue left the rescue: %+v", sv)
	}
	// An image-backed server's rescue is stable with either property,
	// at any version (the image chooses), and legacy without.
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	f.action(alice, id, map[string]any{"unpause": nil}, 202)
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	f.expect("POST", "/v2.1/servers/"+id+"/action", alice, "2.1", rescueBody(map[string]any{"rescue_image_ref": half}), 200, "")
	if sv := f.row(id); !sv.RescueStable {
		t.Fatalf("a rescue image with hw_rescue_device gave no stable rescue: %+v", sv)
	}
}

// rescue → the node's report with the rescue done → RESCUE, in which
// Nova's refused actions are refused → unrescue → ACTIVE; the admin
// password answered; instance actions with the node's events; quotas
// and the host's claim unchanged.
func TestRescueUnrescue(t *testing.T) {
	f := newFixtureWith(t, eventstate.Schema(), volstate.Schema())
	f.stdFlavors()
	id := f.server(alice, "vm")
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	path := "/v2.1/servers/" + id + "/action"
	quota := func() any {
		q := f.expect("GET", "/v2.1/os-quota-sets/"+projA+"/detail", alice, "", nil, 200, "")["quota_set"].(map[string]any)
		return []any{q["cores"].(map[string]any)["in_use"], q["ram"].(map[string]any)["in_use"], q["instances"].(map[string]any)["in_use"]}
	}
	before := quota()
	out := f.expect("POST", path, alice, "", rescueBody(map[string]any{"adminPass": "s3cret", "rescue_image_ref": img1}), 200, "")
	if out["adminPass"] != "s3cret" {
		t.Fatalf("rescue answered %v", out)
	}
	sv := f.row(id)
	if sv.TaskState != computestate.TaskRescuing || sv.Status != "ACTIVE" || sv.RescueSeq != 1 || sv.RescueImage != img1 || sv.Want != "active" {
		t.Fatalf("rescuing: %+v", sv)
	}
	f.action(alice, id, rescueBody(nil), 409, "task_state rescuing")
	// A report from before the rescue is not its end.
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	if sv := f.row(id); sv.TaskState != computestate.TaskRescuing {
		t.Fatalf("a report from before the rescue ended it: %+v", sv)
	}
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, RescueSeq: 1})
	sv = f.row(id)
	if sv.Status != "RESCUE" || sv.VMState != computestate.VMRescued || sv.TaskState != "" {
		t.Fatalf("after the node's rescue: %+v", sv)
	}
	if evs := f.events(id); !strings.Contains(evs, "rescue ACTIVE>ACTIVE by u-alice") || !strings.Contains(evs, "state ACTIVE>RESCUE") {
		t.Fatalf("event log:\n%s", evs)
	}
	if show := f.show(alice, id, ""); show["status"] != "RESCUE" || show["OS-EXT-STS:vm_state"] != "rescued" {
		t.Fatalf("shown rescued: %v %v", show["status"], show["OS-EXT-STS:vm_state"])
	}
	// Later passes of the node leave it rescued.
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, RescueSeq: 1})
	f.report(id, Observed{Status: "SHUTOFF", PowerState: 4, RescueSeq: 1})
	if sv := f.row(id); sv.Status != "RESCUE" {
		t.Fatalf("a later report ended RESCUE: %s", sv.Status)
	}
	// What Nova's check_instance_state refuses for vm_state rescued.
	vol := f.volume(projA)
	for _, body := range []map[string]any{
		{"reboot": map[string]any{"type": "HARD"}}, {"reboot": map[string]any{"type": "SOFT"}},
		{"rebuild": map[string]any{"imageRef": img1}}, {"resize": map[string]any{"flavorRef": "big"}},
		{"os-stop": nil}, {"pause": nil}, {"suspend": nil},
		rescueBody(nil),
	} {
		f.action(alice, id, body, 409, "vm_state rescued")
	}
	f.expect("POST", "/v2.1/servers/"+id+"/os-volume_attachments", alice, "", map[string]any{"volumeAttachment": map[string]any{"volumeId": vol}}, 409, "conflictingRequest", "rescued")
	if got := quota(); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Fatalf("quota in use %v while rescued, was %v", got, before)
	}
	// Unrescue.
	f.expect("POST", path, alice, "", map[string]any{"unrescue": nil}, 202, "")
	sv = f.row(id)
	if sv.TaskState != computestate.TaskUnrescuing || sv.Status != "RESCUE" || sv.RescueSeq != 2 || sv.RescueImage != "" {
		t.Fatalf("unrescuing: %+v", sv)
	}
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, RescueSeq: 1})
	if sv := f.row(id); sv.TaskState != computestate.TaskUnrescuing {
		t.Fatalf("a report from before the unrescue ended it: %+v", sv)
	}
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, RescueSeq: 2})
	if sv := f.row(id); sv.Status != "ACTIVE" || sv.VMState != vmActive || sv.TaskState != "" {
		t.Fatalf("after the node's unrescue: %+v", sv)
	}
	if got := quota(); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Fatalf("quota in use %v after the unrescue, was %v", got, before)
	}
	if ev := f.actionEvents(id, "rescue"); len(ev) != 1 || ev[0].Event != "compute_rescue_instance" || ev[0].Result != "Success" {
		t.Fatalf("rescue events: %+v", ev)
	}
	if ev := f.actionEvents(id, "unrescue"); len(ev) != 1 || ev[0].Event != "compute_unrescue_instance" || ev[0].Result != "Success" {
		t.Fatalf("unrescue events: %+v", ev)
	}
	if evs := f.events(id); !strings.Contains(evs, "unrescue RESCUE>RESCUE") || !strings.Contains(evs, "state RESCUE>ACTIVE") {
		t.Fatalf("event log:\n%s", evs)
	}
	// Without a password one is made up; the server's own image is the
	// rescue's.
	out = f.expect("POST", path, alice, "", rescueBody(nil), 200, "")
	if p, _ := out["adminPass"].(string); len(p) < 8 {
		t.Fatalf("rescue without adminPass answered %v", out)
	}
	if sv := f.row(id); sv.RescueImage != img1 || sv.RescueSeq != 3 {
		t.Fatalf("rescued with the server's own image: %+v", sv)
	}
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, RescueSeq: 3})
	// A rescued server is deleted as any other.
	f.expect("DELETE", "/v2.1/servers/"+id, alice, "", nil, 204, "")
	if sv := f.row(id); sv.Want != "deleted" || sv.TaskState != "deleting" {
		t.Fatalf("deleting a rescued server: %+v", sv)
	}
	f.report(id, Observed{Gone: true})
	if f.row(id) != nil {
		t.Fatal("a deleted rescued server stays")
	}
}

// A stopped server is rescued running (Nova's rescue starts it) and
// unrescued running; a server in ERROR may be rescued; a rescue the
// node fails leaves the server in ERROR saying why, its rescue image
// gone so that its next start boots its own disk.
func TestRescueStoppedAndFailed(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	id := f.server(alice, "vm")
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	f.action(alice, id, map[string]any{"os-stop": nil}, 202)
	f.report(id, Observed{Status: "SHUTOFF", PowerState: 4})
	f.action(alice, id, rescueBody(nil), 200)
	if sv := f.row(id); sv.Status != "SHUTOFF" || sv.TaskState != computestate.TaskRescuing || sv.Want != "active" {
		t.Fatalf("rescuing a stopped server: %+v", sv)
	}
	f.report(id, Observed{Status: "ERROR", PowerState: 4, RescueSeq: 1, Fault: "Rescue of instance " + id + " failed: no image"})
	sv := f.row(id)
	if sv.Status != "ERROR" || sv.TaskState != "" || sv.RescueImage != "" || sv.Fault == nil || !strings.Contains(sv.Fault.Message, "no image") {
		t.Fatalf("after a failed rescue: %+v", sv)
	}
	if ev := f.actionEvents(id, "rescue"); len(ev) != 1 || ev[0].Result != "Error" || !strings.Contains(ev[0].Details, "no image") {
		t.Fatalf("failed rescue's events: %+v", ev)
	}
	// From ERROR, as Nova allows.
	f.action(alice, id, rescueBody(nil), 200)
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, RescueSeq: 2})
	if sv := f.row(id); sv.Status != "RESCUE" || sv.Fault != nil {
		t.Fatalf("rescued from ERROR: %+v", sv)
	}
	f.action(alice, id, map[string]any{"unrescue": nil}, 202)
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, RescueSeq: 3})
	if sv := f.row(id); sv.Status != "ACTIVE" || sv.Want != "active" {
		t.Fatalf("unrescued: %+v", sv)
	}
	// Reset out of rescue by an admin: its next start boots its own disk.
	f.action(alice, id, rescueBody(nil), 200)
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, RescueSeq: 4})
	f.expect("POST", "/v2.1/servers/"+id+"/action", admin, "", map[string]any{"os-resetState": map[string]any{"state": "active"}}, 202, "")
	if sv := f.row(id); sv.Status != "ACTIVE" || sv.RescueImage != "" {
		t.Fatalf("reset out of rescue: %+v", sv)
	}
}
