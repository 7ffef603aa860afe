package compute

import (
	"testing"

	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// Volumes of a shelved-offloaded server, as Nova's local attach and
// detach (2.20 on, tempest's AttachVolumeShelveTestJSON): attached, the
// volume is in-use at once on no host, device null; detached, available
// at once; refused before 2.20, with a tag, or locked; unshelve moves
// every attachment of the server to its new host, the ones made while
// shelved taking their device names; a volume attached before the
// shelve is detached through its old host (detaching).
func TestShelvedOffloadedVolumes(t *testing.T) {
	f := newFixtureWith(t, volstate.Schema())
	f.withSnapshots()
	root := f.volume(projA)
	id := f.server(alice, "vm", "imageRef", "", "block_device_mapping_v2", bfv("volume", root, 0, false))
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	host := f.row(id).Host
	before := f.volume(projA)
	f.expect("POST", "/v2.1/servers/"+id+"/os-volume_attachments", alice, "", map[string]any{"volumeAttachment": map[string]any{"volumeId": before}}, 200, "")
	f.action(alice, id, map[string]any{"shelve": nil}, 202)
	if row := f.row(id); row.VMState != "shelved_offloaded" {
		t.Fatalf("shelved: %s", row.VMState)
	}

	path := "/v2.1/servers/" + id + "/os-volume_attachments"
	vol, other := f.volume(projA), f.volume(projA)
	attach := func(vol, version string, extra ...any) map[string]any {
		b := map[string]any{"volumeId": vol}
		for i := 0; i+1 < len(extra); i += 2 {
			b[extra[i].(string)] = extra[i+1]
		}
		return map[string]any{"volumeAttachment": b}
	}
	f.expect("POST", path, alice, "2.19", attach(vol, ""), 409, "conflictingRequest", "vm_state shelved_offloaded")
	f.expect("POST", path, alice, "2.49", attach(vol, "", "tag", "db"), 400, "badRequest", "shelved-offloaded")
	f.action(admin, id, map[string]any{"lock": nil}, 202)
	f.expect("POST", path, alice, "2.20", attach(vol, ""), 409, "conflictingRequest", "locked")
	f.action(admin, id, map[string]any{"unlock": nil}, 202)
	if v := f.vol(vol); v.Status != volstate.StatusAvailable || len(v.Attachments) != 0 {
		t.Fatalf("a refused attach changed the volume: %+v", v)
	}

	got := f.expect("POST", path, alice, "2.20", attach(vol, ""), 200, "")["volumeAttachment"].(map[string]any)
	if got["volumeId"] != vol || got["device"] != nil {
		t.Fatalf("attached to the shelved server: %v", got)
	}
	if v := f.vol(vol); v.Status != volstate.StatusInUse || len(v.Attachments) != 1 || v.Attachments[0].Host != "" || v.Attachments[0].ServerID != id {
		t.Fatalf("volume attached while shelved: %+v", v)
	}
	f.expect("POST", path, alice, "2.20", attach(other, ""), 200, "")
	f.expect("DELETE", path+"/"+other, alice, "2.19", nil, 409, "conflictingRequest", "vm_state shelved_offloaded")
	f.expect("DELETE", path+"/"+other, alice, "2.20", nil, 202, "")
	if v := f.vol(other); v.Status != volstate.StatusAvailable || len(v.Attachments) != 0 {
		t.Fatalf("volume detached while shelved: %+v", v)
	}
	if row := f.row(id); len(row.ShelvedAttachments) != 1 {
		t.Fatalf("shelved attachments %v", row.ShelvedAttachments)
	}
	// The volume attached before the shelve is unplugged by its host.
	f.expect("DELETE", path+"/"+before, alice, "2.20", nil, 202, "")
	if v := f.vol(before); v.Status != volstate.StatusDetaching || v.Attachments[0].Host != host {
		t.Fatalf("volume attached before the shelve, detached: %+v", v)
	}

	f.action(alice, id, map[string]any{"unshelve": nil}, 202)
	row := f.row(id)
	if row.Host == "" || len(row.ShelvedAttachments) != 0 {
		t.Fatalf("unshelved: host %q, shelved attachments %v", row.Host, row.ShelvedAttachments)
	}
	v := f.vol(vol)
	if v.Status != volstate.StatusInUse || v.Attachments[0].Host != row.Host || v.Attachments[0].Device == "" {
		t.Fatalf("volume attached while shelved, after the unshelve: %+v", v)
	}
	if r := f.vol(root); r.Attachments[0].Host != row.Host || r.Attachments[0].Device != "/dev/vda" {
		t.Fatalf("root volume after the unshelve: %+v", r)
	}
	show := f.expect("GET", path+"/"+vol, alice, "", nil, 200, "")["volumeAttachment"].(map[string]any)
	if show["device"] != v.Attachments[0].Device {
		t.Fatalf("attachment after the unshelve: %v", show)
	}
}
