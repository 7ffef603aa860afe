package compute

import (
	"testing"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

func migrateBody(host any) map[string]any {
	if host == nil {
		return map[string]any{"migrate": nil}
	}
	return map[string]any{"migrate": map[string]any{"host": host}}
}

// otherHost is the fixture's host that is not h.
func otherHost(h string) string {
	if h == "n1" {
		return "n2"
	}
	return "n1"
}

// A migration is refused, saying why, before anything changes: not an
// admin, a body that is not 2.56's, an unknown or the same host, a server not
// active or stopped, no other host up.
func TestMigrateRefusals(t *testing.T) {
	f := newFixture(t)
	f.withSnapshots()
	id := f.server(alice, "vm")
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	host := f.row(id).Host
	path := "/v2.1/servers/" + id + "/action"
	f.expect("POST", path, alice, "", migrateBody(nil), 403, "forbidden", migrateRule)
	f.expect("POST", path, admin, "2.56", map[string]any{"migrate": 5}, 400, "badRequest", "migrate")
	f.expect("POST", path, admin, "2.56", migrateBody("nope"), 400, "badRequest", "Compute host nope could not be found.")
	f.expect("POST", path, admin, "2.56", migrateBody(host), 400, "badRequest", "The target host can't be the same one.")
	f.expect("POST", path, admin, "2.56", map[string]any{"migrate": map[string]any{"x": 1}}, 400, "badRequest", "x")
	f.action(alice, id, map[string]any{"pause": nil}, 202)
	f.report(id, Observed{Status: "PAUSED", PowerState: 3})
	f.action(admin, id, migrateBody(nil), 409, "Cannot 'migrate' instance "+id+" while it is in vm_state paused")
	f.action(alice, id, map[string]any{"unpause": nil}, 202)
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	f.hosts.setUp(otherHost(host), false)
	f.expect("POST", path, admin, "", migrateBody(nil), 400, "badRequest", "No valid host was found.")
	f.hosts.setUp(otherHost(host), true)
	sv := f.row(id)
	if sv.Host != host || sv.MigrateTo != "" || sv.ResizeSeq != 0 || sv.Status != "ACTIVE" {
		t.Fatalf("a refused migration changed the server: %+v", sv)
	}
	if ms := f.migrations("2.59", ""); len(ms) != 0 {
		t.Fatalf("refused migrations left records: %v", ms)
	}
	if snaps := f.svc.cfg.Snapshots.(*fakeSnapshots); len(snaps.made) != 0 {
		t.Fatalf("refused migrations made images: %v", snaps.made)
	}
}

// migrate → RESIZE (resize_migrating) → the source's report → the server
// on the new host (resize_finish), ports bound there → the new host's
// report → VERIFY_RESIZE → confirm: ACTIVE there, the source's copy
// released. A report from the source after the move changes nothing.
func TestMigrateConfirm(t *testing.T) {
	f := newFixture(t)
	snaps := f.withSnapshots()
	id := f.server(alice, "vm")
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, Node: f.row(id).Host})
	src := f.row(id).Host
	dst := otherHost(src)
	// Before 2.56 the body is not looked at (tempest sends {}).
	f.action(admin, id, map[string]any{"migrate": map[string]any{"host": "ignored"}}, 202)
	sv := f.row(id)
	if sv.Status != "RESIZE" || sv.TaskState != computestate.TaskResizeMigrating || sv.Host != src || sv.MigrateTo != dst ||
		sv.MigrateImage == "" || sv.ResizeSeq != 1 || sv.OldFlavor == nil || sv.Migration == "" {
		t.Fatalf("after migrate: %+v", sv)
	}
	if img, ok := snaps.made[sv.MigrateImage]; !ok || !img.Hidden || img.Project != projA {
		t.Fatalf("the migration's image: %+v (made %v)", img, snaps.made)
	}
	// The new host holds the server's claim while the source saves it.
	for _, h := range hostsWithUsage(f.local.State.Txn(), f.schedHosts()) {
		if h.UsedVCPUs != 1 || h.UsedMemoryMB != 512 {
			t.Fatalf("host %s claims %d vCPUs %d MB while migrating", h.Name, h.UsedVCPUs, h.UsedMemoryMB)
		}
	}
	ms := f.migrations("2.59", "")
	if len(ms) != 1 || ms[0]["migration_type"] != "migration" || ms[0]["status"] != "migrating" ||
		ms[0]["source_compute"] != src || ms[0]["dest_compute"] != dst {
		t.Fatalf("migrations %v", ms)
	}
	// A report from before the step changes nothing.
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, Node: src})
	if sv := f.row(id); sv.Host != src || sv.TaskState != computestate.TaskResizeMigrating {
		t.Fatalf("after a report from before the step: %+v", sv)
	}
	// The source saved it.
	f.report(id, Observed{Status: "SHUTOFF", PowerState: 4, ResizeSeq: 1, Node: src})
	sv = f.row(id)
	if sv.Host != dst || sv.MigrateFrom != src || sv.MigrateTo != "" || sv.TaskState != computestate.TaskResizeFinish ||
		sv.ResizeSeq != 2 || sv.Status != "RESIZE" {
		t.Fatalf("after the source's step: %+v", sv)
	}
	for _, p := range sv.Ports {
		if pt, _ := f.ports.get(p); pt.Host != dst {
			t.Fatalf("port %s bound to %q, want %s", p, pt.Host, dst)
		}
	}
	// The source's late report is not heard.
	f.report(id, Observed{Status: "SHUTOFF", PowerState: 4, ResizeSeq: 1, Node: src})
	if sv := f.row(id); sv.Host != dst || sv.ResizeSeq != 2 {
		t.Fatalf("a late report of the source moved it: %+v", sv)
	}
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, ResizeSeq: 2, Node: dst})
	sv = f.row(id)
	if sv.Status != "VERIFY_RESIZE" || sv.Host != dst || sv.MigrateFrom != src {
		t.Fatalf("after the new host's step: %+v", sv)
	}
	if ms := f.migrations("2.59", ""); ms[0]["status"] != "finished" {
		t.Fatalf("migration %v", ms[0])
	}
	// Both hosts hold it until the confirm.
	for _, h := range hostsWithUsage(f.local.State.Txn(), f.schedHosts()) {
		if h.UsedVCPUs != 1 {
			t.Fatalf("host %s claims %d vCPUs in VERIFY_RESIZE", h.Name, h.UsedVCPUs)
		}
	}
	if evs := f.actionEvents(id, computestate.ActionMigrate); len(evs) != 4 || evs[3].Event != "compute_finish_resize" {
		t.Fatalf("migrate action events %+v", evs)
	}
	f.action(admin, id, map[string]any{"confirmResize": nil}, 204)
	sv = f.row(id)
	if sv.Status != "ACTIVE" || sv.Host != dst || sv.MigrateFrom != "" || sv.OldFlavor != nil || sv.Migration != "" {
		t.Fatalf("after confirm: %+v", sv)
	}
	if ms := f.migrations("2.59", ""); ms[0]["status"] != "confirmed" {
		t.Fatalf("migration %v", ms[0])
	}
	// The source, removing its copy, is not heard.
	f.report(id, Observed{Status: "SHUTOFF", PowerState: 4, ResizeSeq: 1, Node: src})
	if sv := f.row(id); sv.Status != "ACTIVE" || sv.Want != "active" {
		t.Fatalf("after a report of the source: %+v", sv)
	}
	for _, h := range hostsWithUsage(f.local.State.Txn(), f.schedHosts()) {
		if want := map[bool]int{true: 1, false: 0}[h.Name == dst]; h.UsedVCPUs != want {
			t.Fatalf("host %s claims %d vCPUs after the confirm", h.Name, h.UsedVCPUs)
		}
	}
}

// A stopped server migrates stopped; a revert gives it back to its
// source (host, ports), which restarts nothing: SHUTOFF again there.
func TestMigrateRevertStopped(t *testing.T) {
	f := newFixture(t)
	f.withSnapshots()
	id := f.server(alice, "vm")
	src := f.row(id).Host
	dst := otherHost(src)
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, Node: src})
	f.action(alice, id, map[string]any{"os-stop": nil}, 202)
	f.report(id, Observed{Status: "SHUTOFF", PowerState: 4, Node: src})
	f.action(admin, id, migrateBody(nil), 202)
	f.report(id, Observed{Status: "SHUTOFF", PowerState: 4, ResizeSeq: 1, Node: src})
	f.report(id, Observed{Status: "SHUTOFF", PowerState: 4, ResizeSeq: 2, Node: dst})
	if sv := f.row(id); sv.Status != "VERIFY_RESIZE" || sv.Host != dst {
		t.Fatalf("after the migration: %+v", sv)
	}
	f.action(admin, id, map[string]any{"revertResize": nil}, 202)
	sv := f.row(id)
	if sv.Status != "REVERT_RESIZE" || sv.Host != src || sv.MigrateFrom != "" || sv.ResizeSeq != 3 {
		t.Fatalf("after revert: %+v", sv)
	}
	for _, p := range sv.Ports {
		if pt, _ := f.ports.get(p); pt.Host != src {
			t.Fatalf("port %s bound to %q after the revert, want %s", p, pt.Host, src)
		}
	}
	f.report(id, Observed{Status: "SHUTOFF", PowerState: 4, ResizeSeq: 3, Node: src})
	if sv := f.row(id); sv.Status != "SHUTOFF" || sv.Host != src || sv.Migration != "" {
		t.Fatalf("after the source's revert: %+v", sv)
	}
	if ms := f.migrations("2.59", ""); ms[0]["status"] != "reverted" {
		t.Fatalf("migration %v", ms[0])
	}
}

// The source failing to save the disk leaves the server in ERROR on its
// source, the migration in error.
func TestMigrateSourceFails(t *testing.T) {
	f := newFixture(t)
	f.withSnapshots()
	id := f.server(alice, "vm")
	src := f.row(id).Host
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, Node: src})
	f.action(admin, id, migrateBody(nil), 202)
	f.report(id, Observed{Status: "ERROR", PowerState: 4, ResizeSeq: 1, Node: src, Fault: "upload: no room"})
	sv := f.row(id)
	if sv.Status != "ERROR" || sv.Host != src || sv.MigrateTo != "" || sv.Fault == nil || sv.Fault.Message != "upload: no room" {
		t.Fatalf("after a failed migration: %+v", sv)
	}
	if ms := f.migrations("2.59", ""); ms[0]["status"] != "error" {
		t.Fatalf("migration %v", ms[0])
	}
}

// A server booted from a volume migrates with no image, its volume's
// attachment moving to the new host when the source has let it go, and
// back on a revert.
func TestMigrateVolumeBacked(t *testing.T) {
	f := newFixtureWith(t, volstate.Schema())
	snaps := f.withSnapshots()
	vol := f.volume(projA)
	id := f.server(alice, "vm", "imageRef", "", "block_device_mapping_v2", bfv("volume", vol, 0, false))
	src := f.row(id).Host
	dst := otherHost(src)
	f.agentReports(volstate.CmdAttached, volstate.AttachedCmd{VolumeID: vol, AttachmentID: f.vol(vol).Attachments[0].ID, Now: f.now})
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, Node: src})
	f.action(admin, id, migrateBody(nil), 202)
	if sv := f.row(id); sv.MigrateImage != "" || len(snaps.made) != 0 {
		t.Fatalf("a volume-backed migration made an image: %+v %v", sv, snaps.made)
	}
	if h := f.vol(vol).Attachments[0].Host; h != src {
		t.Fatalf("volume moved to %s before the source let it go", h)
	}
	f.report(id, Observed{Status: "SHUTOFF", PowerState: 4, ResizeSeq: 1, Node: src})
	if h := f.vol(vol).Attachments[0].Host; h != dst {
		t.Fatalf("volume attached on %s after the move, want %s", h, dst)
	}
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, ResizeSeq: 2, Node: dst})
	f.action(admin, id, map[string]any{"revertResize": nil}, 202)
	if h := f.vol(vol).Attachments[0].Host; h != src {
		t.Fatalf("volume attached on %s after the revert, want %s", h, src)
	}
}
