package compute

import (
	"context"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/events/eventstate"
	"github.com/rackstack/rackstack/fabric/scheduler"
	"github.com/rackstack/rackstack/fabric/store"
)

func resizeBody(ref any) map[string]any {
	return map[string]any{"resize": map[string]any{"flavorRef": ref}}
}

// migrations lists os-migrations at microversion version as admin.
func (f *fixture) migrations(version, query string) []map[string]any {
	f.t.Helper()
	var out []map[string]any
	for _, m := range f.expect("GET", "/v2.1/os-migrations"+query, admin, version, nil, 200, "")["migrations"].([]any) {
		out = append(out, m.(map[string]any))
	}
	return out
}

// schedHosts are the fixture's hosts as the scheduler takes them.
func (f *fixture) schedHosts() []scheduler.Host {
	f.t.Helper()
	hs, err := f.svc.schedulerHosts(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return hs
}

// actionEvents are the events of a server's latest action named name.
func (f *fixture) actionEvents(id, name string) []ActionEvent {
	a := lastAction(f.local.State.Txn(), id, name)
	if a == nil {
		f.t.Fatalf("no %s action on %s", name, id)
	}
	return a.Events
}

// A resize is refused, saying why and naming the field, before anything
// changes: no flavor, an unknown one, the same one, a smaller root disk,
// a server locked or not active or stopped, the quota.
func TestResizeRefusals(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	f.flavor("tiny", "m1.tinydisk", 1, 512, 0)
	f.flavor("wide", "m1.wide", 4, 512, 2)
	id := f.server(alice, "vm")
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	path := "/v2.1/servers/" + id + "/action"
	f.expect("POST", path, alice, "", map[string]any{"resize": map[string]any{}}, 400, "badRequest", "'flavorRef' is a required property")
	f.expect("POST", path, alice, "", map[string]any{"resize": nil}, 400, "badRequest", "resize")
	f.expect("POST", path, alice, "", map[string]any{"resize": map[string]any{"flavorRef": "big", "x": 1}}, 400, "badRequest", "x")
	f.expect("POST", path, alice, "", resizeBody(true), 400, "badRequest", "flavorRef")
	f.expect("POST", path, alice, "", resizeBody("nope"), 400, "badRequest", "flavorRef", "Unable to locate requested flavor.")
	f.expect("POST", path, alice, "", resizeBody("small"), 400, "badRequest", "flavorRef", "Resize requires a flavor change.")
	f.expect("POST", path, alice, "", resizeBody("tiny"), 400, "badRequest", "flavorRef", "Resize to zero disk flavor is not allowed.")
	f.expect("POST", path, alice, "", map[string]any{"resize": map[string]any{"flavorRef": "big", "OS-DCF:diskConfig": "SOME"}}, 400, "badRequest", "OS-DCF:diskConfig")
	f.expect("POST", path, bob, "", resizeBody("big"), 404, "itemNotFound")
	f.expect("POST", path, carol, "", resizeBody("big"), 403, "forbidden")
	// Quota: the upsize's extra cores.
	f.expect("PUT", "/v2.1/os-quota-sets/"+projA, admin, "", map[string]any{"quota_set": map[string]any{"cores": 3}}, 200, "")
	f.expect("POST", path, alice, "", resizeBody("wide"), 403, "overLimit", "Quota exceeded for cores: Requested 3, but already used 1 of 3 cores")
	// Locked by an admin: 409 for the owner.
	f.expect("POST", path, admin, "", map[string]any{"lock": nil}, 202, "")
	f.action(alice, id, resizeBody("big"), 409, "is locked")
	f.expect("POST", path, admin, "", map[string]any{"unlock": nil}, 202, "")
	f.action(alice, id, map[string]any{"pause": nil}, 202)
	f.report(id, Observed{Status: "PAUSED", PowerState: 3})
	f.action(alice, id, resizeBody("big"), 409, "Cannot 'resize' instance "+id+" while it is in vm_state paused")
	for _, a := range []string{"confirmResize", "revertResize"} {
		f.action(alice, id, map[string]any{a: nil}, 409, "Cannot '"+a+"' instance "+id+" while it is in vm_state paused")
		f.action(alice, id, map[string]any{a: map[string]any{"x": 1}}, 409, "vm_state paused") // any argument, as Nova's schema
	}
	if sv := f.row(id); sv.Flavor.ID != "small" || sv.OldFlavor != nil || sv.ResizeSeq != 0 || sv.Status != "PAUSED" {
		t.Fatalf("a refused resize changed the server: %+v", sv)
	}
	if ms := f.migrations("2.59", ""); len(ms) != 0 {
		t.Fatalf("refused resizes left migrations: %v", ms)
	}
}

// resize → RESIZE with the new flavor → the node's report with the
// resize done → VERIFY_RESIZE → confirm → ACTIVE: one migration record,
// confirmed; instance actions with their events; the host holds the
// larger flavor until the confirm, the quota the new one.
func TestResizeConfirm(t *testing.T) {
	f := newFixtureWith(t, eventstate.Schema())
	f.stdFlavors()
	f.flavor("large", "m1.large", 2, 256, 3)
	id := f.server(alice, "vm")
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	host := f.row(id).Host
	f.action(alice, id, map[string]any{"resize": map[string]any{"flavorRef": "large", "OS-DCF:diskConfig": "AUTO"}}, 202)
	sv := f.row(id)
	if sv.Status != "RESIZE" || sv.TaskState != "resize_finish" || sv.Flavor.ID != "large" || sv.OldFlavor == nil || sv.OldFlavor.ID != "small" ||
		sv.RootGB != 3 || sv.ResizeSeq != 1 || sv.DiskConfig != "AUTO" || sv.Host != host {
		t.Fatalf("after resize: %+v", sv)
	}
	show := f.show(alice, id, "2.47")
	if fl := show["flavor"].(map[string]any); fl["original_name"] != "m1.large" || fl["vcpus"] != 2.0 {
		t.Fatalf("flavor shown while resizing: %v", fl)
	}
	// The host holds the larger of both: 2 vCPUs and 512 MB.
	for _, h := range hostsWithUsage(f.local.State.Txn(), f.schedHosts()) {
		if h.Name == host && (h.UsedVCPUs != 2 || h.UsedMemoryMB != 512 || h.UsedDiskGB != 3) {
			t.Fatalf("host %s claims %d vCPUs %d MB %d GB while resizing", host, h.UsedVCPUs, h.UsedMemoryMB, h.UsedDiskGB)
		}
	}
	// The quota counts the new flavor.
	q := f.expect("GET", "/v2.1/os-quota-sets/"+projA+"/detail", alice, "", nil, 200, "")["quota_set"].(map[string]any)
	if c := q["cores"].(map[string]any)["in_use"]; c != 2.0 {
		t.Fatalf("cores in use while resizing: %v", c)
	}
	// A report from before the resize is not its end.
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	if sv := f.row(id); sv.Status != "RESIZE" {
		t.Fatalf("a report from before the resize ended it: %s", sv.Status)
	}
	// Confirm is for VERIFY_RESIZE only.
	f.action(alice, id, map[string]any{"confirmResize": nil}, 409, "vm_state active")
	f.action(alice, id, resizeBody("big"), 409, "task_state resize_finish")
	ms := f.migrations("2.79", "")
	if len(ms) != 1 || ms[0]["status"] != "migrating" || ms[0]["migration_type"] != "resize" || ms[0]["instance_uuid"] != id ||
		ms[0]["source_compute"] != host || ms[0]["dest_compute"] != host || !integerIDs(ms[0]["old_instance_type_id"], ms[0]["new_instance_type_id"]) || ms[0]["uuid"] == nil || ms[0]["id"] == nil {
		t.Fatalf("migrations while resizing: %v", ms)
	}
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, ResizeSeq: 1})
	if sv := f.row(id); sv.Status != "VERIFY_RESIZE" || sv.VMState != "resized" || sv.TaskState != "" {
		t.Fatalf("after the node's resize: %+v", sv)
	}
	// Still there after another pass of the node.
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, ResizeSeq: 1})
	if sv := f.row(id); sv.Status != "VERIFY_RESIZE" {
		t.Fatalf("a later report ended VERIFY_RESIZE: %s", sv.Status)
	}
	if ms := f.migrations("2.1", ""); ms[0]["status"] != "finished" || ms[0]["migration_type"] != nil || ms[0]["uuid"] != nil {
		t.Fatalf("migration at 2.1 once finished: %v", ms[0])
	}
	f.expect("POST", "/v2.1/servers/"+id+"/action", alice, "", map[string]any{"confirmResize": nil}, 204, "")
	sv = f.row(id)
	if sv.Status != "ACTIVE" || sv.OldFlavor != nil || sv.Flavor.ID != "large" || sv.Migration != "" {
		t.Fatalf("after confirm: %+v", sv)
	}
	for _, h := range hostsWithUsage(f.local.State.Txn(), f.schedHosts()) {
		if h.Name == host && (h.UsedVCPUs != 2 || h.UsedMemoryMB != 256) {
			t.Fatalf("host %s claims %d vCPUs %d MB once confirmed", host, h.UsedVCPUs, h.UsedMemoryMB)
		}
	}
	f.action(alice, id, map[string]any{"confirmResize": nil}, 409, "vm_state active")
	if ms := f.migrations("2.59", "?status=confirmed&instance_uuid="+id); len(ms) != 1 {
		t.Fatalf("confirmed migrations: %v", ms)
	}
	if ms := f.migrations("2.59", "?status=finished"); len(ms) != 0 {
		t.Fatalf("finished migrations after the confirm: %v", ms)
	}
	if ev := f.actionEvents(id, "resize"); len(ev) != 2 || ev[0].Event != "compute_prep_resize" || ev[1].Event != "compute_finish_resize" || ev[1].Result != "Success" {
		t.Fatalf("resize events: %+v", ev)
	}
	if ev := f.actionEvents(id, "confirmResize"); len(ev) != 1 || ev[0].Event != "compute_confirm_resize" {
		t.Fatalf("confirmResize events: %+v", ev)
	}
	if evs := f.events(id); !strings.Contains(evs, "resize ACTIVE>RESIZE") || !strings.Contains(evs, "state RESIZE>VERIFY_RESIZE") || !strings.Contains(evs, "confirmResize VERIFY_RESIZE>ACTIVE") {
		t.Fatalf("event log:\n%s", evs)
	}
	// The server's migrations go with it.
	f.expect("DELETE", "/v2.1/servers/"+id, alice, "", nil, 204, "")
	f.report(id, Observed{Gone: true})
	if ms := f.migrations("2.59", ""); len(ms) != 0 {
		t.Fatalf("a deleted server's migrations are listed: %v", ms)
	}
}

// revertResize restores the old flavor (the grown disk stays) and the
// node restarts the guest with it; a server resized stopped stays
// stopped through resize, confirm and revert.
func TestResizeRevertAndStopped(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	f.flavor("large", "m1.large", 2, 256, 3)
	id := f.server(alice, "vm")
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	f.action(alice, id, resizeBody("large"), 202)
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, ResizeSeq: 1})
	f.expect("POST", "/v2.1/servers/"+id+"/action", alice, "", map[string]any{"revertResize": nil}, 202, "")
	sv := f.row(id)
	if sv.Status != "REVERT_RESIZE" || sv.Flavor.ID != "small" || sv.OldFlavor != nil || sv.ResizeSeq != 2 || sv.RootGB != 3 {
		t.Fatalf("reverting: %+v", sv)
	}
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, ResizeSeq: 1})
	if f.row(id).Status != "REVERT_RESIZE" {
		t.Fatalf("a report from before the revert ended it")
	}
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, ResizeSeq: 2})
	if sv := f.row(id); sv.Status != "ACTIVE" || sv.Migration != "" || sv.Flavor.ID != "small" {
		t.Fatalf("reverted: %+v", sv)
	}
	if ms := f.migrations("2.59", ""); len(ms) != 1 || ms[0]["status"] != "reverted" {
		t.Fatalf("migrations after revert: %v", ms)
	}
	if ev := f.actionEvents(id, "revertResize"); len(ev) != 2 || ev[1].Event != "compute_finish_revert_resize" {
		t.Fatalf("revertResize events: %+v", ev)
	}

	// Stopped: resized, confirmed, stopped all along.
	f.action(alice, id, map[string]any{"os-stop": nil}, 202)
	f.report(id, Observed{Status: "SHUTOFF", PowerState: 4, ResizeSeq: 2})
	f.action(alice, id, resizeBody("big"), 202)
	if sv := f.row(id); sv.Status != "RESIZE" || sv.Want != "stopped" {
		t.Fatalf("resizing stopped: %+v", sv)
	}
	f.report(id, Observed{Status: "SHUTOFF", PowerState: 4, ResizeSeq: 2})
	if f.row(id).Status != "RESIZE" {
		t.Fatalf("a SHUTOFF from before the resize ended it")
	}
	f.report(id, Observed{Status: "SHUTOFF", PowerState: 4, ResizeSeq: 3})
	if sv := f.row(id); sv.Status != "VERIFY_RESIZE" || sv.PowerState != 4 {
		t.Fatalf("resized stopped: %+v", sv)
	}
	f.expect("POST", "/v2.1/servers/"+id+"/action", alice, "", map[string]any{"confirmResize": nil}, 204, "")
	if sv := f.row(id); sv.Status != "SHUTOFF" || sv.Flavor.ID != "big" {
		t.Fatalf("confirmed stopped: %+v", sv)
	}
	// Newest first.
	if ms := f.migrations("2.59", ""); len(ms) != 2 || ms[0]["status"] != "confirmed" || ms[1]["status"] != "reverted" {
		t.Fatalf("migrations: %v", ms)
	}
	ms := f.migrations("2.59", "?limit=1")
	if len(ms) != 1 {
		t.Fatalf("limit 1: %v", ms)
	}
	if rest := f.migrations("2.59", "?marker="+ms[0]["uuid"].(string)); len(rest) != 1 || rest[0]["status"] != "reverted" {
		t.Fatalf("after the marker: %v", rest)
	}
	// 2.80: who made each migration, shown and filtered on.
	if ms := f.migrations("2.80", "?user_id=u-alice&project_id="+projA); len(ms) != 2 || ms[0]["user_id"] != "u-alice" || ms[0]["project_id"] != projA {
		t.Fatalf("2.80 migrations of alice: %v", ms)
	}
	if ms := f.migrations("2.80", "?user_id=u-bob"); len(ms) != 0 {
		t.Fatalf("2.80 migrations of bob: %v", ms)
	}
	if ms := f.migrations("2.80", "?project_id="+projB); len(ms) != 0 {
		t.Fatalf("2.80 migrations of project B: %v", ms)
	}
	if ms := f.migrations("2.79", ""); ms[0]["user_id"] != nil || ms[0]["project_id"] != nil {
		t.Fatalf("2.79 shows the 2.80 fields: %v", ms[0])
	}
	f.expect("GET", "/v2.1/os-migrations?user_id=u-bob", admin, "2.79", nil, 400, "badRequest", "'user_id' was unexpected")
}

// No room on the host for the new flavor is Nova's NoValidHost after
// the 202: the server stays as it was, the migration is in error and the
// action's event says why. A node that cannot restart the guest leaves
// the server in ERROR, the migration too.
func TestResizeFailures(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	f.flavor("huge", "m1.huge", 1, 4096, 1)
	id := f.server(alice, "vm")
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	before := *f.row(id)
	f.action(alice, id, resizeBody("huge"), 202)
	if sv := f.row(id); sv.Status != "ACTIVE" || sv.Flavor.ID != "small" || sv.ResizeSeq != 0 || sv.OldFlavor != nil || !sv.Updated.Equal(before.Updated) {
		t.Fatalf("after a resize with no room: %+v", sv)
	}
	ev := f.actionEvents(id, "resize")
	if len(ev) != 1 || ev[0].Result != "Error" || !strings.Contains(ev[0].Details, "No valid host was found") || !strings.Contains(ev[0].Details, "MB RAM free, 4096 needed") {
		t.Fatalf("events of a resize with no room: %+v", ev)
	}
	if ms := f.migrations("2.59", ""); len(ms) != 1 || ms[0]["status"] != "error" {
		t.Fatalf("migrations: %v", ms)
	}
	f.action(alice, id, resizeBody("big"), 202)
	f.report(id, Observed{Status: "ERROR", PowerState: 4, ResizeSeq: 1, Fault: "qemu-img resize: no space"})
	sv := f.row(id)
	if sv.Status != "ERROR" || sv.Fault == nil || sv.Fault.Message != "qemu-img resize: no space" || sv.OldFlavor != nil || sv.Migration != "" {
		t.Fatalf("after a failed node resize: %+v", sv)
	}
	if ms := f.migrations("2.59", "?status=error"); len(ms) != 2 {
		t.Fatalf("error migrations: %v", ms)
	}
	if a := lastAction(f.local.State.Txn(), id, "resize"); a.Message != "Error" {
		t.Fatalf("failed resize action: %+v", a)
	}
	var n int
	for range store.All[Migration](f.local.State.Txn(), tMigrations, "server", id) {
		n++
	}
	if n != 2 || computestate.VMResized != "resized" {
		t.Fatalf("%d migration rows", n)
	}
}

// A revert that takes the flavor back up is checked against the quota.
func TestResizeRevertQuota(t *testing.T) {
	f := newFixture(t)
	f.flavor("two", "m1.two", 2, 256, 1)
	f.flavor("one", "m1.one", 1, 256, 1)
	body := f.expect("POST", "/v2.1/servers", alice, "", map[string]any{"server": map[string]any{"name": "vm", "imageRef": img1, "flavorRef": "two",
		"networks": []any{map[string]any{"uuid": netA}}}}, 202, "")
	id := body["server"].(map[string]any)["id"].(string)
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	f.action(alice, id, resizeBody("one"), 202)
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, ResizeSeq: 1})
	f.expect("PUT", "/v2.1/os-quota-sets/"+projA, admin, "", map[string]any{"quota_set": map[string]any{"cores": 1, "force": true}}, 200, "")
	f.expect("POST", "/v2.1/servers/"+id+"/action", alice, "", map[string]any{"revertResize": nil}, 403, "overLimit", "Quota exceeded for cores")
	if sv := f.row(id); sv.Status != "VERIFY_RESIZE" || sv.Flavor.ID != "one" {
		t.Fatalf("after a refused revert: %+v", sv)
	}
	f.expect("POST", "/v2.1/servers/"+id+"/action", alice, "", map[string]any{"confirmResize": nil}, 204, "")
}

// integerIDs says whether old and new are two flavors' integer ids, as
// Nova's os-migrations shows them (old_instance_type_id and
// new_instance_type_id): whole numbers, not the same.
func integerIDs(old, new any) bool {
	o, ok1 := old.(float64)
	n, ok2 := new.(float64)
	return ok1 && ok2 && o > 0 && n > 0 && o != n && o == float64(int64(o)) && n == float64(int64(n))
}
