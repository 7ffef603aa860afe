package compute

import (
	"context"
	"fmt"
	"testing"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
)

func liveBody(host any, block any) map[string]any {
	return map[string]any{"os-migrateLive": map[string]any{"host": host, "block_migration": block}}
}

// liveStep is a node's step of the server's run under way.
func (f *fixture) liveStep(id, node, step string, set ...func(c *computestate.LiveMigrateStepCmd)) {
	f.t.Helper()
	c := computestate.LiveMigrateStepCmd{ServerID: id, Node: node, Step: step}
	if lm := f.row(id).Live; lm != nil {
		c.Seq = lm.Seq
	}
	for _, s := range set {
		s(&c)
	}
	if err := f.svc.LiveMigrateStep(context.Background(), c); err != nil {
		f.t.Fatalf("live step %s from %s: %v", step, node, err)
	}
}

func prepared(c *computestate.LiveMigrateStepCmd) {
	c.StreamAddr, c.DiskAddr = "10.0.0.2:4001", "10.0.0.2:4002"
}

func sourced(c *computestate.LiveMigrateStepCmd) { c.RootBytes = 1 << 30 }

// A live migration is refused, saying why and naming the field, before
// anything changes: not an admin, a body not the microversion's, the
// server's own host or an unknown one, no shared storage asked of a
// local disk, a server stopped, no other host up.
func TestLiveMigrateRefusals(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	id := f.server(alice, "vm")
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	host := f.row(id).Host
	path := "/v2.1/servers/" + id + "/action"
	f.expect("POST", path, alice, "2.25", liveBody(nil, "auto"), 403, "forbidden", liveMigrateRule)
	f.expect("POST", path, admin, "2.25", map[string]any{"os-migrateLive": 5}, 400, "badRequest", "os-migrateLive")
	f.expect("POST", path, admin, "2.25", map[string]any{"os-migrateLive": map[string]any{"host": nil}}, 400, "badRequest", "'block_migration' is a required property")
	f.expect("POST", path, admin, "2.25", liveBody(nil, "sometimes"), 400, "badRequest", "block_migration")
	f.expect("POST", path, admin, "2.1", liveBody(nil, "auto"), 400, "badRequest", "block_migration")
	f.expect("POST", path, admin, "2.1", liveBody("n9", true), 400, "badRequest", "'disk_over_commit' is a required property")
	f.expect("POST", path, admin, "2.25", map[string]any{"os-migrateLive": map[string]any{"host": nil, "block_migration": "auto", "force": false}}, 400, "badRequest", "force")
	f.expect("POST", path, admin, "2.68", map[string]any{"os-migrateLive": map[string]any{"host": nil, "block_migration": "auto", "force": false}}, 400, "badRequest", "force")
	f.expect("POST", path, admin, "2.25", liveBody(host, "auto"), 400, "badRequest", "Unable to migrate instance ("+id+") to current host ("+host+").")
	f.expect("POST", path, admin, "2.25", liveBody("nope", "auto"), 400, "badRequest", "Compute host nope could not be found.")
	f.expect("POST", path, admin, "2.25", liveBody(nil, false), 400, "badRequest", "shared storage")
	f.action(alice, id, map[string]any{"os-stop": nil}, 202)
	f.report(id, Observed{Status: "SHUTOFF", PowerState: 4})
	f.expect("POST", path, admin, "2.25", liveBody(nil, "auto"), 409, "conflictingRequest", "Cannot 'os-migrateLive' instance "+id+" while it is in vm_state stopped")
	f.action(alice, id, map[string]any{"os-start": nil}, 202)
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	f.hosts.setUp(otherHost(host), false)
	f.expect("POST", path, admin, "2.25", liveBody(nil, "auto"), 400, "badRequest", "No valid host was found.")
	f.hosts.setUp(otherHost(host), true)
	sv := f.row(id)
	if sv.Host != host || sv.MigrateTo != "" || sv.Live != nil || sv.Status != "ACTIVE" {
		t.Fatalf("a refused live migration changed the server: %+v", sv)
	}
	if ms := f.migrations("2.59", ""); len(ms) != 0 {
		t.Fatalf("refused live migrations left records: %v", ms)
	}
}

// os-migrateLive → MIGRATING; the source says what it runs, the
// destination prepares (the record running, listed by the server's
// migrations), the switch gives the server, its volumes' attachments
// and its ports to the destination, whose done ends it: ACTIVE there,
// the record completed. Steps of the wrong node, of an older run, or a
// failure after the switch change nothing.
func TestLiveMigrateSteps(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	id := f.server(alice, "vm")
	src := f.row(id).Host
	dst := otherHost(src)
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, Node: src})
	f.expect("POST", "/v2.1/servers/"+id+"/action", admin, "2.30", map[string]any{"os-migrateLive": map[string]any{"host": dst, "block_migration": "auto", "force": false}}, 202, "")
	sv := f.row(id)
	if sv.Status != "MIGRATING" || sv.TaskState != computestate.TaskMigrating || sv.Host != src || sv.MigrateTo != dst || sv.Live == nil ||
		sv.Live.Source != src || sv.Live.Dest != dst || sv.Migration == "" {
		t.Fatalf("after os-migrateLive: %+v", sv)
	}
	ms := f.migrations("2.59", "")
	if len(ms) != 1 || ms[0]["migration_type"] != "live-migration" || ms[0]["status"] != "preparing" || ms[0]["dest_compute"] != dst {
		t.Fatalf("migrations %v", ms)
	}
	// The source's reports meanwhile do not end the task.
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, Node: src})
	if sv := f.row(id); sv.TaskState != computestate.TaskMigrating {
		t.Fatalf("a report ended the live migration: %+v", sv)
	}
	// Out of order, or from the wrong node: nothing.
	f.liveStep(id, dst, computestate.LivePrepared, prepared)
	f.liveStep(id, dst, computestate.LiveSource, sourced)
	if lm := f.row(id).Live; lm.StreamAddr != "" || lm.RootBytes != 0 {
		t.Fatalf("steps out of order were taken: %+v", lm)
	}
	f.liveStep(id, src, computestate.LiveSource, sourced, func(c *computestate.LiveMigrateStepCmd) {
		c.Disks = []computestate.LiveDisk{{ID: "abc", Slot: "hp0", Size: 1 << 30}}
	})
	f.liveStep(id, dst, computestate.LivePrepared, prepared)
	if lm := f.row(id).Live; lm.RootBytes != 1<<30 || len(lm.Disks) != 1 || lm.StreamAddr == "" || lm.DiskAddr == "" {
		t.Fatalf("after the source's and the destination's steps: %+v", lm)
	}
	if ms := f.migrations("2.59", ""); ms[0]["status"] != "running" {
		t.Fatalf("migration %v", ms[0])
	}
	mid := fmt.Sprint(f.row(id).Live.Seq)
	list := f.expect("GET", "/v2.1/servers/"+id+"/migrations", admin, "2.23", nil, 200, "")["migrations"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["status"] != "running" || list[0].(map[string]any)["server_uuid"] != id {
		t.Fatalf("server migrations %v", list)
	}
	f.expect("GET", "/v2.1/servers/"+id+"/migrations/"+mid, admin, "2.23", nil, 200, "")
	f.expect("GET", "/v2.1/servers/"+id+"/migrations", alice, "2.23", nil, 403, "forbidden")
	f.expect("GET", "/v2.1/servers/"+id+"/migrations", admin, "2.22", nil, 404, "")
	// A step of an older run is not heard.
	f.liveStep(id, src, computestate.LiveFailed, func(c *computestate.LiveMigrateStepCmd) { c.Seq-- })
	if sv := f.row(id); sv.Live == nil {
		t.Fatalf("a step of another run ended this one")
	}
	f.liveStep(id, src, computestate.LiveSwitched)
	sv = f.row(id)
	if sv.Host != dst || sv.MigrateTo != "" || sv.Live == nil || sv.Status != "MIGRATING" {
		t.Fatalf("after the switch: %+v", sv)
	}
	for _, p := range sv.Ports {
		if pt, _ := f.ports.get(p); pt.Host != dst {
			t.Fatalf("port %s bound to %q, want %s", p, pt.Host, dst)
		}
	}
	// Past the switch: not given back, not aborted.
	f.liveStep(id, src, computestate.LiveFailed)
	f.liveStep(id, dst, computestate.LiveFailed)
	if sv := f.row(id); sv.Host != dst || sv.Live == nil {
		t.Fatalf("a failure after the switch moved it back: %+v", sv)
	}
	f.expect("DELETE", "/v2.1/servers/"+id+"/migrations/"+mid, admin, "2.24", nil, 400, "badRequest", "post-migrating")
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, Node: src})
	f.liveStep(id, dst, computestate.LiveDone)
	sv = f.row(id)
	if sv.Status != "ACTIVE" || sv.TaskState != "" || sv.Host != dst || sv.Live != nil || sv.Migration != "" {
		t.Fatalf("after done: %+v", sv)
	}
	if ms := f.migrations("2.59", ""); ms[0]["status"] != "completed" {
		t.Fatalf("migration %v", ms[0])
	}
	if list := f.expect("GET", "/v2.1/servers/"+id+"/migrations", admin, "2.23", nil, 200, "")["migrations"].([]any); len(list) != 0 {
		t.Fatalf("server migrations after done %v", list)
	}
	f.expect("GET", "/v2.1/servers/"+id+"/migrations/"+mid, admin, "2.23", nil, 404, "")
	if evs := f.actionEvents(id, computestate.ActionLiveMigration); len(evs) != 3 || evs[2].Result != "Success" {
		t.Fatalf("live-migration events %+v", evs)
	}
}

// A failure the source reports before the switch leaves the server
// ACTIVE where it was, the record in error and the action saying why;
// an abort (2.24) is asked of the source, whose cancel leaves the
// record cancelled; force_complete (2.22) is asked of it too.
func TestLiveMigrateFailAbortForce(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	id := f.server(alice, "vm")
	src := f.row(id).Host
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, Node: src})
	path := "/v2.1/servers/" + id + "/action"
	f.expect("POST", path, admin, "2.25", liveBody(nil, "auto"), 202, "")
	f.liveStep(id, src, computestate.LiveSource, sourced)
	f.liveStep(id, f.row(id).Live.Dest, computestate.LivePrepared, prepared)
	f.liveStep(id, src, computestate.LiveFailed, func(c *computestate.LiveMigrateStepCmd) { c.Fault = "the stream broke" })
	sv := f.row(id)
	if sv.Status != "ACTIVE" || sv.Host != src || sv.Live != nil || sv.MigrateTo != "" {
		t.Fatalf("after a failure: %+v", sv)
	}
	if ms := f.migrations("2.59", ""); ms[0]["status"] != "error" {
		t.Fatalf("migration %v", ms[0])
	}
	if a := lastAction(f.local.State.Txn(), id, computestate.ActionLiveMigration); a.Message != "Error" || a.Events[len(a.Events)-1].Details != "the stream broke" {
		t.Fatalf("action %+v", a)
	}

	// The destination's QEMU gone after it was prepared: its failure
	// is taken (its guest never ran), the server stays on the source.
	f.expect("POST", path, admin, "2.25", liveBody(nil, "auto"), 202, "")
	f.liveStep(id, src, computestate.LiveSource, sourced)
	dst := f.row(id).Live.Dest
	f.liveStep(id, dst, computestate.LivePrepared, prepared)
	f.liveStep(id, "n9", computestate.LiveFailed)
	if sv := f.row(id); sv.Live == nil {
		t.Fatalf("a node the run does not name failed it")
	}
	f.liveStep(id, dst, computestate.LiveFailed, func(c *computestate.LiveMigrateStepCmd) { c.Fault = "the guest process waiting for the stream is gone" })
	if sv := f.row(id); sv.Status != "ACTIVE" || sv.Host != src || sv.Live != nil {
		t.Fatalf("after the destination's failure: %+v", sv)
	}

	// Abort: refused with nothing running, taken while preparing only
	// from 2.65.
	f.expect("DELETE", "/v2.1/servers/"+id+"/migrations/1", admin, "2.24", nil, 404, "")
	f.expect("POST", path, admin, "2.25", liveBody(nil, "auto"), 202, "")
	mid := fmt.Sprint(f.row(id).Live.Seq)
	f.expect("DELETE", "/v2.1/servers/"+id+"/migrations/"+mid, alice, "2.24", nil, 403, "forbidden")
	f.expect("DELETE", "/v2.1/servers/"+id+"/migrations/"+mid, admin, "2.24", nil, 400, "badRequest", "preparing")
	f.expect("POST", "/v2.1/servers/"+id+"/migrations/"+mid+"/action", admin, "2.22", map[string]any{"force_complete": nil}, 400, "badRequest", "preparing")
	f.liveStep(id, src, computestate.LiveSource, sourced)
	f.liveStep(id, f.row(id).Live.Dest, computestate.LivePrepared, prepared)
	f.expect("POST", "/v2.1/servers/"+id+"/migrations/"+mid+"/action", admin, "2.22", map[string]any{"force_complete": 1}, 400, "badRequest", "force_complete")
	f.expect("POST", "/v2.1/servers/"+id+"/migrations/"+mid+"/action", admin, "2.22", map[string]any{"force_complete": nil}, 202, "")
	if lm := f.row(id).Live; !lm.ForceComplete || lm.Abort {
		t.Fatalf("after force_complete: %+v", lm)
	}
	f.expect("DELETE", "/v2.1/servers/"+id+"/migrations/"+mid, admin, "2.24", nil, 202, "")
	if lm := f.row(id).Live; !lm.Abort {
		t.Fatalf("after the abort: %+v", lm)
	}
	f.liveStep(id, src, computestate.LiveCancelled)
	sv = f.row(id)
	if sv.Status != "ACTIVE" || sv.Host != src || sv.Live != nil {
		t.Fatalf("after the cancel: %+v", sv)
	}
	if ms := f.migrations("2.59", ""); ms[0]["status"] != "cancelled" {
		t.Fatalf("migrations %v", ms)
	}
	f.expect("DELETE", "/v2.1/servers/"+id+"/migrations/"+mid, admin, "2.24", nil, 409, "conflictingRequest")
}
