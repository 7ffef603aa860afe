package compute

import (
	"context"
	"testing"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// volume puts an available, bootable volume of project into the state,
// as the volume service would.
func (f *fixture) volume(project string) string {
	f.t.Helper()
	v := volstate.Volume{ID: api.NewUUID(), Project: project, Size: 1, Status: volstate.StatusAvailable, TypeID: volstate.DefaultTypeID, Bootable: true}
	if _, err := f.local.Propose(context.Background(), volstate.CmdCreateVolume, volstate.CreateVolumeCmd{Row: v}); err != nil {
		f.t.Fatal(err)
	}
	return v.ID
}

func (f *fixture) vol(id string) *volstate.Volume {
	v, err := volstate.LoadVolume(f.local.State.Txn(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	return v
}

// agentReports proposes what the node agent reports after plugging or
// unplugging a volume.
func (f *fixture) agentReports(cmd string, body any) {
	f.t.Helper()
	if _, err := f.local.Propose(context.Background(), cmd, body); err != nil {
		f.t.Fatalf("%s: %v", cmd, err)
	}
}

func TestVolumeAttachmentLifecycle(t *testing.T) {
	f := newFixtureWith(t, volstate.Schema())
	f.stdFlavors()
	id := f.server(alice, "vm")
	vol := f.volume(projA)

	// Not before the server runs.
	f.expect("POST", "/v2.1/servers/"+id+"/os-volume_attachments", alice, "", map[string]any{"volumeAttachment": map[string]any{"volumeId": vol}}, 409, "conflictingRequest")
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})

	att := f.expect("POST", "/v2.1/servers/"+id+"/os-volume_attachments", alice, "", map[string]any{"volumeAttachment": map[string]any{"volumeId": vol}}, 200, "")["volumeAttachment"].(map[string]any)
	if att["volumeId"] != vol || att["serverId"] != id || att["device"] != "/dev/vdc" {
		t.Fatalf("attachment %v", att)
	}
	v := f.vol(vol)
	if v.Status != volstate.StatusAttaching || len(v.Attachments) != 1 || v.Attachments[0].Host != f.row(id).Host {
		t.Fatalf("volume after attach %+v", v)
	}
	// One server at a time.
	f.expect("POST", "/v2.1/servers/"+id+"/os-volume_attachments", alice, "", map[string]any{"volumeAttachment": map[string]any{"volumeId": vol}}, 400, "", "multiattach")
	f.agentReports(volstate.CmdAttached, volstate.AttachedCmd{VolumeID: vol, AttachmentID: v.Attachments[0].ID, Now: f.now})
	if got := f.vol(vol).Status; got != volstate.StatusInUse {
		t.Fatalf("status after plug %s", got)
	}

	sv := f.show(alice, id, "2.79")
	if va := sv["os-extended-volumes:volumes_attached"].([]any); len(va) != 1 || va[0].(map[string]any)["id"] != vol {
		t.Fatalf("volumes_attached %v", va)
	}
	list := f.expect("GET", "/v2.1/servers/detail", alice, "", nil, 200, "")["servers"].([]any)
	if va := list[0].(map[string]any)["os-extended-volumes:volumes_attached"].([]any); len(va) != 1 {
		t.Fatalf("volumes_attached in the list %v", va)
	}
	got := f.expect("GET", "/v2.1/servers/"+id+"/os-volume_attachments", alice, "2.79", nil, 200, "")["volumeAttachments"].([]any)
	if len(got) != 1 || got[0].(map[string]any)["delete_on_termination"] != false {
		t.Fatalf("attachments %v", got)
	}
	f.expect("GET", "/v2.1/servers/"+id+"/os-volume_attachments/"+vol, alice, "", nil, 200, "")
	f.expect("GET", "/v2.1/servers/"+id+"/os-volume_attachments/"+api.NewUUID(), alice, "", nil, 404, "itemNotFound")

	f.expect("DELETE", "/v2.1/servers/"+id+"/os-volume_attachments/"+vol, alice, "", nil, 202, "")
	if got := f.vol(vol).Status; got != volstate.StatusDetaching {
		t.Fatalf("status after detach %s", got)
	}
	f.agentReports(volstate.CmdDetached, volstate.DetachedCmd{VolumeID: vol, AttachmentID: v.Attachments[0].ID, Now: f.now})
	if got := f.vol(vol); got.Status != volstate.StatusAvailable || len(got.Attachments) != 0 {
		t.Fatalf("after unplug %+v", got)
	}
	f.expect("DELETE", "/v2.1/servers/"+id+"/os-volume_attachments/"+vol, alice, "", nil, 404, "itemNotFound")
}

func TestDeletedServerReleasesItsVolumes(t *testing.T) {
	f := newFixtureWith(t, volstate.Schema())
	f.stdFlavors()
	id := f.server(alice, "vm")
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	vol := f.volume(projA)
	f.expect("POST", "/v2.1/servers/"+id+"/os-volume_attachments", alice, "", map[string]any{"volumeAttachment": map[string]any{"volumeId": vol}}, 200, "")
	f.expect("DELETE", "/v2.1/servers/"+id, alice, "", nil, 204, "")
	if got := f.vol(vol); len(got.Attachments) != 1 {
		t.Fatalf("released before the VM is gone: %+v", got)
	}
	f.report(id, Observed{Gone: true})
	if got := f.vol(vol); got.Status != volstate.StatusAvailable || len(got.Attachments) != 0 {
		t.Fatalf("after the server is gone %+v", got)
	}
}

func TestAttachRefusesOthersVolumesAndBadInput(t *testing.T) {
	f := newFixtureWith(t, volstate.Schema())
	f.stdFlavors()
	id := f.server(alice, "vm")
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	theirs := f.volume(projB)
	f.expect("POST", "/v2.1/servers/"+id+"/os-volume_attachments", alice, "", map[string]any{"volumeAttachment": map[string]any{"volumeId": theirs}}, 404, "itemNotFound")
	f.expect("POST", "/v2.1/servers/"+id+"/os-volume_attachments", alice, "", map[string]any{"volumeAttachment": map[string]any{}}, 400, "badRequest", "volumeId")
	f.expect("POST", "/v2.1/servers/"+id+"/os-volume_attachments", alice, "", map[string]any{"volumeAttachment": map[string]any{"volumeId": theirs, "delete_on_termination": "maybe"}}, 400, "badRequest", "delete_on_termination")
	if got := f.vol(theirs); got.Status != volstate.StatusAvailable {
		t.Fatalf("refused attach changed the volume: %+v", got)
	}
}

// delete_on_termination of an attachment: given at attach (2.79) or
// changed after (2.85, PUT naming the attached volume itself), it is
// what the server's removal does with the volume. A PUT naming another
// volume is Nova's swap, admin-only and not built here.
func TestAttachmentDeleteOnTermination(t *testing.T) {
	f := newFixtureWith(t, volstate.Schema())
	f.stdFlavors()
	id := f.server(alice, "vm")
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	keep, drop, other := f.volume(projA), f.volume(projA), f.volume(projA)
	attach := func(vol string, version string, body map[string]any, status int) {
		t.Helper()
		body["volumeId"] = vol
		f.expect("POST", "/v2.1/servers/"+id+"/os-volume_attachments", alice, version, map[string]any{"volumeAttachment": body}, status, "")
	}
	attach(keep, "2.78", map[string]any{"delete_on_termination": true}, 400)
	attach(keep, "2.79", map[string]any{"delete_on_termination": true}, 200)
	attach(drop, "2.79", map[string]any{}, 200)
	path := func(vol string) string { return "/v2.1/servers/" + id + "/os-volume_attachments/" + vol }
	put := func(vol, version, tok string, body map[string]any, status int, fault string, inMsg ...string) {
		t.Helper()
		f.expect("PUT", path(vol), tok, version, map[string]any{"volumeAttachment": body}, status, fault, inMsg...)
	}
	// Before 2.85 a PUT is a swap, and so is naming another volume.
	put(keep, "2.84", alice, map[string]any{"volumeId": keep}, 403, "forbidden", attachSwapRule)
	put(keep, "2.84", admin, map[string]any{"volumeId": keep}, 501, "")
	put(keep, "2.84", admin, map[string]any{"volumeId": keep, "delete_on_termination": false}, 400, "badRequest", "'delete_on_termination' was unexpected")
	put(keep, "2.85", alice, map[string]any{"volumeId": other, "delete_on_termination": false}, 403, "forbidden", attachSwapRule)
	// Bad input and the attributes that cannot change.
	put(keep, "2.85", alice, map[string]any{"volumeId": keep, "delete_on_termination": "maybe"}, 400, "badRequest", "delete_on_termination")
	put(keep, "2.85", alice, map[string]any{"volumeId": "nope"}, 400, "badRequest", "volumeId")
	put(keep, "2.85", alice, map[string]any{"volumeId": keep, "device": "/dev/vdz"}, 400, "badRequest", "The device property is not mutable")
	put(keep, "2.85", alice, map[string]any{"volumeId": keep, "serverId": other}, 400, "badRequest", "The serverId property is not mutable")
	put(keep, "2.85", alice, map[string]any{"volumeId": keep, "id": other}, 400, "badRequest", "The id property is not mutable")
	put(keep, "2.85", alice, map[string]any{"volumeId": keep, "tag": "t"}, 400, "badRequest", "The tag property is not mutable")
	put(other, "2.85", alice, map[string]any{"volumeId": other}, 404, "itemNotFound", "is not attached")
	put(keep, "2.85", bob, map[string]any{"volumeId": keep, "delete_on_termination": false}, 404, "itemNotFound")
	put(keep, "2.85", carol, map[string]any{"volumeId": keep, "delete_on_termination": false}, 403, "forbidden")
	if !f.vol(keep).Attachments[0].DeleteOnTermination {
		t.Fatal("a refused update changed the attachment")
	}
	// The flips, shown as the attachment's.
	put(keep, "2.85", alice, map[string]any{"volumeId": keep, "delete_on_termination": false, "serverId": id, "id": keep}, 202, "")
	put(drop, "2.85", alice, map[string]any{"volumeId": drop, "delete_on_termination": true}, 202, "")
	for vol, want := range map[string]bool{keep: false, drop: true} {
		got := f.expect("GET", path(vol), alice, "2.85", nil, 200, "")["volumeAttachment"].(map[string]any)
		if got["delete_on_termination"] != want {
			t.Fatalf("%s after the update: %v, want delete_on_termination %v", vol, got, want)
		}
	}
	// The server's removal does what the flags say.
	f.expect("DELETE", "/v2.1/servers/"+id, alice, "", nil, 204, "")
	f.report(id, Observed{Gone: true})
	if got := f.vol(keep); got.Status != volstate.StatusAvailable {
		t.Fatalf("kept volume after the server: %+v", got)
	}
	if got := f.vol(drop); got.Status != volstate.StatusDeleting {
		t.Fatalf("volume to delete after the server: %+v", got)
	}
}

// 2.89: a GET of attachments shows attachment_id and bdm_uuid, not id;
// the attach's answer keeps id.
func TestAttachmentIDs289(t *testing.T) {
	f := newFixtureWith(t, volstate.Schema())
	f.stdFlavors()
	id := f.server(alice, "vm")
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	vol := f.volume(projA)
	att := f.expect("POST", "/v2.1/servers/"+id+"/os-volume_attachments", alice, "2.89", map[string]any{"volumeAttachment": map[string]any{"volumeId": vol}}, 200, "")["volumeAttachment"].(map[string]any)
	if att["id"] != vol || att["attachment_id"] != nil {
		t.Fatalf("2.89 attach answer: %v", att)
	}
	attID := f.vol(vol).Attachments[0].ID
	list := f.expect("GET", "/v2.1/servers/"+id+"/os-volume_attachments", alice, "2.89", nil, 200, "")["volumeAttachments"].([]any)
	show := f.expect("GET", "/v2.1/servers/"+id+"/os-volume_attachments/"+vol, alice, "2.89", nil, 200, "")["volumeAttachment"].(map[string]any)
	for _, a := range []map[string]any{list[0].(map[string]any), show} {
		if _, has := a["id"]; has || a["attachment_id"] != attID || !api.UUIDLike(a["bdm_uuid"].(string)) || a["bdm_uuid"] == attID || a["volumeId"] != vol {
			t.Fatalf("2.89 attachment: %v", a)
		}
	}
	if a := f.expect("GET", "/v2.1/servers/"+id+"/os-volume_attachments/"+vol, alice, "2.88", nil, 200, "")["volumeAttachment"].(map[string]any); a["id"] != vol || a["attachment_id"] != nil {
		t.Fatalf("2.88 attachment: %v", a)
	}
	if l := f.expect("GET", "/v2.1/servers/"+id+"/os-volume_attachments?limit=1&offset=0", alice, "2.89", nil, 200, "")["volumeAttachments"].([]any); len(l) != 1 {
		t.Fatalf("2.89 paged list: %v", l)
	}
}
