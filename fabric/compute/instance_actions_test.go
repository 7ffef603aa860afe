package compute

import (
	"slices"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/store"
)

func TestInstanceActionsChangesWindow(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	id := f.server(alice, "vm") // created at 12:00
	f.report(id, Observed{Status: "ACTIVE", PowerState: PowerRunning})
	f.now = f.now.Add(time.Hour)
	f.action(alice, id, map[string]any{"os-stop": nil}, 202) // at 13:00
	actions := func(query, version string) []string {
		t.Helper()
		var out []string
		for _, a := range f.expect("GET", "/v2.1/servers/"+id+"/os-instance-actions?"+query, alice, version, nil, 200, "")["instanceActions"].([]any) {
			out = append(out, a.(map[string]any)["action"].(string))
		}
		return out
	}
	for _, tc := range []struct {
		query, version string
		want           []string
	}{
		{"changes-before=2026-11-24T12:30:00Z", "2.66", []string{"create"}},
		{"changes-since=2026-11-24T12:30:00Z", "2.58", []string{"stop"}},
		{"changes-since=2026-11-24T12:00:00Z&changes-before=2026-11-24T13:00:00Z", "2.66", []string{"stop", "create"}},
		{"changes-before=2026-11-24T12:30:00Z", "2.65", []string{"stop", "create"}}, // not yet a filter
		{"changes-since=2026-11-24T12:30:00Z", "2.57", []string{"stop", "create"}},
	} {
		if got := actions(tc.query, tc.version); !slices.Equal(got, tc.want) {
			t.Errorf("?%s at %s: %v, want %v", tc.query, tc.version, got, tc.want)
		}
	}
	f.expect("GET", "/v2.1/servers/"+id+"/os-instance-actions?changes-before=yesterday", alice, "2.66", nil, 400, "badRequest", "changes-before")
	f.expect("GET", "/v2.1/servers/"+id+"/os-instance-actions?changes-since=2026-11-24T13:00:00Z&changes-before=2026-11-24T12:00:00Z", alice, "2.66", nil, 400, "badRequest", "changes-since")
}

// TestStoppedByItself: a guest that shuts down (or crashes) without being
// asked is recorded as Nova's power-state sync records it: the server
// stopped, and an action "stop" by no user whose event says how it went.
func TestStoppedByItself(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	for _, tc := range []struct {
		name, fault, result string
		message             any
	}{
		{"shutdown", "", "Success", nil},
		{"crash", "the guest crashed (guest-panicked)", "Error", "Error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := f.server(alice, "vm-"+tc.name)
			f.report(id, Observed{Status: "ACTIVE", PowerState: PowerRunning})
			f.now = f.now.Add(time.Minute)
			f.report(id, Observed{Status: "SHUTOFF", PowerState: PowerShutdown, Fault: tc.fault})
			if sv := f.row(id); sv.VMState != vmStopped || sv.Want != "stopped" || sv.TaskState != "" {
				t.Fatalf("server after its guest stopped: vm_state %s want %s task %q", sv.VMState, sv.Want, sv.TaskState)
			}
			acts := f.expect("GET", "/v2.1/servers/"+id+"/os-instance-actions", alice, "", nil, 200, "")["instanceActions"].([]any)
			if len(acts) != 2 {
				t.Fatalf("actions: %v", acts)
			}
			stop := acts[0].(map[string]any)
			if stop["action"] != "stop" || stop["user_id"] != nil || stop["message"] != tc.message {
				t.Fatalf("the system's stop: %v", stop)
			}
			path := "/v2.1/servers/" + id + "/os-instance-actions/" + stop["request_id"].(string)
			for _, who := range []string{alice, admin} {
				a := f.expect("GET", path, who, "2.62", nil, 200, "")["instanceAction"].(map[string]any)
				evs := a["events"].([]any)
				if len(evs) != 1 {
					t.Fatalf("events: %v", evs)
				}
				ev := evs[0].(map[string]any)
				if ev["event"] != "compute_stop_instance" || ev["result"] != tc.result || ev["hostId"] == "" {
					t.Fatalf("event: %v", ev)
				}
				// 2.84: the failure's message as details, to everyone.
				ev84 := f.expect("GET", path, who, "2.84", nil, 200, "")["instanceAction"].(map[string]any)["events"].([]any)[0].(map[string]any)
				if d, ok := ev84["details"]; !ok || (tc.fault == "" && d != nil) || (tc.fault != "" && d != tc.fault) {
					t.Errorf("2.84 details %v, want %q", ev84, tc.fault)
				}
				if _, ok := ev["details"]; ok {
					t.Errorf("details before 2.84: %v", ev)
				}
				tb, shown := ev["traceback"]
				switch {
				case who == alice && shown:
					t.Errorf("a member sees the traceback: %v", ev)
				case who == admin && tc.fault != "" && tb != tc.fault:
					t.Errorf("admin's traceback %v, want %q", tb, tc.fault)
				}
			}
			// Asked for, a stop is the user's and records no such action.
			f.now = f.now.Add(time.Minute)
			f.action(alice, id, map[string]any{"os-start": nil}, 202)
			f.report(id, Observed{Status: "ACTIVE", PowerState: PowerRunning})
			f.now = f.now.Add(time.Minute)
			f.action(alice, id, map[string]any{"os-stop": nil}, 202)
			f.report(id, Observed{Status: "SHUTOFF", PowerState: PowerShutdown})
			acts = f.expect("GET", "/v2.1/servers/"+id+"/os-instance-actions", alice, "", nil, 200, "")["instanceActions"].([]any)
			if len(acts) != 4 || acts[0].(map[string]any)["user_id"] != "u-alice" {
				t.Fatalf("actions after a requested stop: %v", acts)
			}
		})
	}
}

// From 2.21 a deleted server's actions are listed, as Nova reads deleted
// instances there: its project's readers and admins see create and
// delete; before 2.21, and for another project, it is 404. The log goes
// with the usage record after usageRetention, and a server that never
// ran keeps none.
func TestDeletedServerActions(t *testing.T) {
	f, _, db, _ := usageCloud(t)
	path := "/v2.1/servers/" + db + "/os-instance-actions"
	for _, tok := range []string{alice, carol, admin} {
		l := f.expect("GET", path, tok, "2.21", nil, 200, "")["instanceActions"].([]any)
		var got []string
		for _, a := range l {
			got = append(got, a.(map[string]any)["action"].(string))
		}
		if len(got) != 2 || got[0] != "delete" || got[1] != "create" {
			t.Fatalf("%s: actions of the deleted server %v", tok, l)
		}
		req := l[0].(map[string]any)["request_id"].(string)
		if a := f.expect("GET", path+"/"+req, tok, "2.51", nil, 200, "")["instanceAction"].(map[string]any); a["action"] != "delete" {
			t.Fatalf("%s: show %v", tok, a)
		}
	}
	f.expect("GET", path, alice, "2.20", nil, 404, "itemNotFound")
	f.expect("GET", path, alice, "", nil, 404, "itemNotFound")
	f.expect("GET", path, bob, "2.21", nil, 404, "itemNotFound")
	f.expect("GET", path+"/req-none", alice, "2.21", nil, 404, "itemNotFound")

	// The log is pruned with the usage record.
	f.now = f.now.Add(usageRetention + time.Hour)
	x := f.server(alice, "x")
	f.report(x, Observed{Status: "ACTIVE", PowerState: PowerRunning})
	f.expect("DELETE", "/v2.1/servers/"+x, alice, "", nil, 204, "")
	f.report(x, Observed{Gone: true})
	f.expect("GET", path, alice, "2.21", nil, 404, "itemNotFound")
	f.expect("GET", "/v2.1/servers/"+x+"/os-instance-actions", alice, "2.21", nil, 200, "")
	if n := len(store.All[Action](f.local.State.Txn(), tActions, "server", db)); n != 0 {
		t.Fatalf("%d actions of the pruned server left", n)
	}
}
