package compute

import (
	"testing"

	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

func TestServerLock(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	id := f.server(alice, "web")
	other := f.server(alice, "db")
	f.report(id, Observed{Status: "ACTIVE", PowerState: PowerRunning})
	path := "/v2.1/servers/" + id
	act := func(tok, version string, body any, status int, fault string, inMsg ...string) {
		t.Helper()
		f.expect("POST", path+"/action", tok, version, body, status, fault, inMsg...)
	}
	locked := func(want bool, by, reason string) {
		t.Helper()
		v := f.show(alice, id, "2.73")
		if v["locked"] != want || v["locked_reason"] != orNil(reason) {
			t.Fatalf("locked %v reason %v, want %v %q", v["locked"], v["locked_reason"], want, reason)
		}
		if row := f.row(id); row.LockedBy != by {
			t.Fatalf("locked by %q, want %q", row.LockedBy, by)
		}
	}
	// Not locked: shown from 2.9, with its reason from 2.73.
	if v := f.show(alice, id, "2.9"); v["locked"] != false {
		t.Fatalf("2.9 locked: %v", v["locked"])
	}
	if _, ok := f.show(alice, id, "2.8")["locked"]; ok {
		t.Fatal("locked shown before 2.9")
	}
	if _, ok := f.show(alice, id, "2.72")["locked_reason"]; ok {
		t.Fatal("locked_reason shown before 2.73")
	}

	// Bad arguments, another project's server, a reader.
	act(alice, "2.73", map[string]any{"lock": map[string]any{"locked_reason": 7}}, 400, "badRequest", "locked_reason")
	act(alice, "2.73", map[string]any{"lock": map[string]any{"why": "x"}}, 400, "badRequest", "why")
	act(bob, "", map[string]any{"lock": nil}, 404, "itemNotFound")
	act(carol, "", map[string]any{"lock": nil}, 403, "forbidden", lockRule)
	locked(false, "", "")

	// The owner locks it, with a reason.
	act(alice, "2.73", map[string]any{"lock": map[string]any{"locked_reason": "maintenance"}}, 202, "")
	locked(true, "owner", "maintenance")
	// Locking again is a no-op for the owner.
	act(dave, "2.73", map[string]any{"lock": nil}, 202, "")
	locked(true, "owner", "maintenance")

	// Now no member may change it, the locker included ...
	for _, a := range []string{"os-stop", "reboot", "pause", "suspend"} {
		body := map[string]any{a: nil}
		if a == "reboot" {
			body = map[string]any{a: map[string]any{"type": "HARD"}}
		}
		act(alice, "", body, 409, "conflictingRequest", "Instance "+id+" is locked")
	}
	act(alice, "", map[string]any{"rebuild": map[string]any{"imageRef": img1}}, 409, "conflictingRequest", "is locked")
	f.expect("DELETE", path, alice, "", nil, 409, "conflictingRequest", "is locked")
	f.expect("PUT", path+"/metadata", alice, "", map[string]any{"metadata": map[string]any{"a": "b"}}, 409, "conflictingRequest", "is locked")
	f.expect("PUT", path+"/metadata/a", alice, "", map[string]any{"meta": map[string]any{"a": "b"}}, 409, "conflictingRequest", "is locked")
	if row := f.row(id); row.TaskState != "" || row.Want != "active" || len(row.Metadata) != 0 {
		t.Fatalf("a refused action changed the server: %+v", row)
	}
	// ... while the other servers are not locked.
	f.action(alice, other, map[string]any{"os-stop": nil}, 409, "vm_state building")

	// The list shows and (2.73) filters on it.
	list := func(query string) []string {
		t.Helper()
		var ids []string
		for _, s := range f.expect("GET", "/v2.1/servers/detail"+query, alice, "2.73", nil, 200, "")["servers"].([]any) {
			s := s.(map[string]any)
			if s["id"] == id && s["locked"] != true {
				t.Fatalf("list: locked %v", s["locked"])
			}
			ids = append(ids, s["id"].(string))
		}
		return ids
	}
	if got := list("?locked=true"); len(got) != 1 || got[0] != id {
		t.Fatalf("locked=true: %v", got)
	}
	if got := list("?locked=false"); len(got) != 1 || got[0] != other {
		t.Fatalf("locked=false: %v", got)
	}
	if got := list(""); len(got) != 2 {
		t.Fatalf("no filter: %v", got)
	}
	f.expect("GET", "/v2.1/servers?locked=maybe", alice, "2.73", nil, 400, "badRequest", "locked")

	// An admin may act on it; the lock stays.
	act(admin, "", map[string]any{"os-stop": nil}, 202, "")
	f.report(id, Observed{Status: "SHUTOFF", PowerState: PowerShutdown})
	act(alice, "", map[string]any{"os-start": nil}, 409, "conflictingRequest", "is locked")
	locked(true, "owner", "maintenance")

	// The owner unlocks its own lock.
	act(dave, "", map[string]any{"unlock": nil}, 202, "")
	locked(false, "", "")
	act(alice, "", map[string]any{"os-start": nil}, 202, "")
	f.report(id, Observed{Status: "ACTIVE", PowerState: PowerRunning})

	// An admin of another project locks as admin: the owner may not
	// unlock it (Nova's unlock_override is admin's), an admin may.
	act(admin, "2.73", map[string]any{"lock": nil}, 202, "")
	locked(true, "admin", "")
	act(alice, "", map[string]any{"unlock": nil}, 403, "forbidden", unlockOverrideRule)
	act(alice, "", map[string]any{"lock": nil}, 202, "")
	locked(true, "admin", "")
	act(admin, "", map[string]any{"unlock": nil}, 202, "")
	locked(false, "", "")
	act(bob, "", map[string]any{"unlock": nil}, 404, "itemNotFound")

	// Before 2.73 a lock takes no reason (ignored, as Nova's schema is
	// only checked from 2.73).
	act(alice, "2.72", map[string]any{"lock": map[string]any{"locked_reason": "x"}}, 202, "")
	locked(true, "owner", "")
	f.expect("DELETE", path, alice, "", nil, 409, "conflictingRequest", "is locked")
	f.expect("DELETE", path, admin, "", nil, 204, "")

	// Each lock and unlock is in the instance-action log.
	var n int
	for _, a := range f.expect("GET", path+"/os-instance-actions", admin, "", nil, 200, "")["instanceActions"].([]any) {
		if x := a.(map[string]any)["action"]; x == "lock" || x == "unlock" {
			n++
		}
	}
	if n != 5 {
		t.Fatalf("%d lock and unlock actions logged, want 5 (the no-op locks log none)", n)
	}
}

// A locked server's volumes are not attached or detached by a member, as
// Nova's attach_volume and detach_volume check the lock.
func TestLockedServerVolumes(t *testing.T) {
	f := newFixtureWith(t, volstate.Schema())
	f.stdFlavors()
	id := f.server(alice, "vm")
	f.report(id, Observed{Status: "ACTIVE", PowerState: PowerRunning})
	vol, vol2 := f.volume(projA), f.volume(projA)
	attach := func(tok, v string, status int, fault string, inMsg ...string) {
		t.Helper()
		f.expect("POST", "/v2.1/servers/"+id+"/os-volume_attachments", tok, "", map[string]any{"volumeAttachment": map[string]any{"volumeId": v}}, status, fault, inMsg...)
	}
	attach(alice, vol, 200, "")
	f.agentReports(volstate.CmdAttached, volstate.AttachedCmd{VolumeID: vol, AttachmentID: f.vol(vol).Attachments[0].ID, Now: f.now})
	f.action(alice, id, map[string]any{"lock": nil}, 202)
	attach(alice, vol2, 409, "conflictingRequest", "is locked")
	f.expect("DELETE", "/v2.1/servers/"+id+"/os-volume_attachments/"+vol, alice, "", nil, 409, "conflictingRequest", "is locked")
	if got := f.vol(vol2).Status; got != volstate.StatusAvailable {
		t.Fatalf("a refused attach changed the volume: %s", got)
	}
	// An admin may.
	attach(admin, vol2, 200, "")
}
