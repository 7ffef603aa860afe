package compute

import (
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// Cinder's volume-extended event becomes Nova's extend_volume action,
// whose compute_extend_volume event is running (no finish, no result)
// until the node agent says the guest sees the size; a later, larger
// extend stays open until the guest sees it too. A failed step shows
// as Nova shows it: result Error, the action's message Error.
func TestExtendVolumeInstanceAction(t *testing.T) {
	f := newFixtureWith(t, volstate.Schema())
	f.stdFlavors()
	id := f.server(alice, "vm")
	f.report(id, Observed{Status: "ACTIVE", PowerState: PowerRunning})
	vol := f.volume(projA)
	extended := func(req string, gib int64) {
		t.Helper()
		f.agentReports(computestate.CmdVolumeExtended, computestate.VolumeExtendedCmd{ServerID: id, VolumeID: vol, Size: gib * volstate.GiB,
			RequestID: req, UserID: "alice", Now: f.now})
	}
	event := func(req string) map[string]any {
		t.Helper()
		a := f.expect("GET", "/v2.1/servers/"+id+"/os-instance-actions/"+req, admin, "2.79", nil, 200, "")["instanceAction"].(map[string]any)
		if a["action"] != "extend_volume" || a["user_id"] != "alice" {
			t.Fatalf("action %v", a)
		}
		evs := a["events"].([]any)
		if len(evs) != 1 || evs[0].(map[string]any)["event"] != "compute_extend_volume" {
			t.Fatalf("events %v", evs)
		}
		return evs[0].(map[string]any)
	}
	extended("req-1", 2)
	f.now = f.now.Add(time.Second)
	extended("req-2", 3)
	extended("req-2", 3) // the same event again is recorded once
	if e := event("req-1"); e["finish_time"] != nil || e["result"] != nil {
		t.Fatalf("running event %v", e)
	}
	// The guest sees 2 GiB: the first is done, the second still runs.
	f.now = f.now.Add(time.Minute)
	f.agentReports(computestate.CmdExtendDone, computestate.ExtendDoneCmd{ServerID: id, VolumeID: vol, Size: 2 * volstate.GiB, Result: "Success", Now: f.now})
	if e := event("req-1"); e["finish_time"] == nil || e["result"] != "Success" {
		t.Fatalf("finished event %v", e)
	}
	// An action is updated (2.58) when an event of it finishes, as Nova's.
	a := f.expect("GET", "/v2.1/servers/"+id+"/os-instance-actions/req-1", alice, "2.58", nil, 200, "")["instanceAction"].(map[string]any)
	if a["updated_at"] != f.now.UTC().Format("2006-01-02T15:04:05.000000") || a["updated_at"] == a["start_time"] {
		t.Fatalf("updated_at %v, start %v", a["updated_at"], a["start_time"])
	}
	if e := event("req-2"); e["finish_time"] != nil {
		t.Fatalf("the larger extend finished early %v", e)
	}
	f.agentReports(computestate.CmdExtendDone, computestate.ExtendDoneCmd{ServerID: id, VolumeID: vol, Size: 2 * volstate.GiB, Result: "Error", Details: "block_resize failed", Now: f.now})
	if e := event("req-2"); e["result"] != "Error" || e["traceback"] != "block_resize failed" {
		t.Fatalf("failed event %v", e)
	}
	n := 0
	for _, a := range f.expect("GET", "/v2.1/servers/"+id+"/os-instance-actions", alice, "", nil, 200, "")["instanceActions"].([]any) {
		if a := a.(map[string]any); a["action"] == "extend_volume" {
			n++
			if a["request_id"] == "req-2" && a["message"] != "Error" {
				t.Fatalf("failed action %v", a)
			}
		}
	}
	if n != 2 {
		t.Fatalf("%d extend_volume actions", n)
	}
	// An event for a server that is not there is refused.
	if _, err := f.local.Propose(t.Context(), computestate.CmdVolumeExtended, computestate.VolumeExtendedCmd{ServerID: "nope", VolumeID: vol, Size: 1, RequestID: "req-3", Now: f.now}); err == nil {
		t.Fatal("event for a missing server accepted")
	}
}
