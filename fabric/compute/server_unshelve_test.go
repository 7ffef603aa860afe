package compute

import (
	"context"
	"testing"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/events/eventstate"
)

// 2.91: unshelve to a host (admin), and availability_zone null frees the
// server of its zone; the host must exist and be in the zone the server
// is held to; a zone asked for holds it there.
func TestUnshelve291(t *testing.T) {
	f := newFixtureWith(t, eventstate.Schema())
	f.withSnapshots()
	agg := f.aggregate("a2", "z2")
	f.aggAction(agg, map[string]any{"add_host": map[string]any{"host": "n2"}}, 200, "")
	// A server held to zone "nova" (n1's).
	id := f.server(alice, "vm", "availability_zone", "nova")
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	if r := f.row(id); r.Host != "n1" || computestate.Pinned(r) != "nova" {
		t.Fatalf("created: host %q pinned %q", r.Host, computestate.Pinned(r))
	}
	path := "/v2.1/servers/" + id + "/action"
	shelve := func(seq string) {
		t.Helper()
		f.action(alice, id, map[string]any{"shelve": nil}, 202)
		if err := f.svc.ImageStep(context.Background(), computestate.ImageStepCmd{ServerID: id, ImageID: seq, Result: "Success", Now: f.now}); err != nil {
			t.Fatal(err)
		}
	}
	unshelve := func(tok, version string, arg any, status int, inMsg ...string) {
		t.Helper()
		fault := map[int]string{202: "", 400: "badRequest", 403: "forbidden", 409: "conflictingRequest"}[status]
		f.expect("POST", path, tok, version, map[string]any{"unshelve": arg}, status, fault, inMsg...)
	}
	// Not shelved: a host or zone asked for is a 409.
	unshelve(admin, "2.91", map[string]any{"host": "n1"}, 409, "SHELVED_OFFLOADED")
	shelve("snap-1")
	unshelve(admin, "2.90", map[string]any{"host": "n1"}, 400, "host")
	unshelve(alice, "2.90", map[string]any{"availability_zone": nil}, 400, "availability_zone")
	unshelve(alice, "2.91", map[string]any{"host": "n1"}, 403, unshelveToHostRule)
	unshelve(admin, "2.91", map[string]any{"host": "n9"}, 400, "Compute host n9 could not be found.")
	unshelve(admin, "2.91", map[string]any{"host": "n2"}, 409, `Host "n2" is not in the availability zone "nova".`)
	unshelve(admin, "2.91", map[string]any{"host": "n2", "availability_zone": "nova"}, 409, "is not in the availability zone")
	unshelve(admin, "2.91", map[string]any{"x": 1}, 400, "'x' was unexpected")
	// Unpinned and sent to n2: in z2 from now on, held to none.
	unshelve(admin, "2.91", map[string]any{"host": "n2", "availability_zone": nil}, 202)
	r := f.row(id)
	if r.Host != "n2" || r.AZ != "z2" || computestate.Pinned(r) != "" || r.TaskState != "unshelving" {
		t.Fatalf("unshelved unpinned to n2: host %q az %q pinned %q task %q", r.Host, r.AZ, computestate.Pinned(r), r.TaskState)
	}
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	// Held to none: any host will do, the zone following it.
	shelve("snap-2")
	unshelve(admin, "2.91", map[string]any{"host": "n1"}, 202)
	if r := f.row(id); r.Host != "n1" || r.AZ != "nova" || computestate.Pinned(r) != "" {
		t.Fatalf("unshelved to n1: host %q az %q pinned %q", r.Host, r.AZ, computestate.Pinned(r))
	}
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	// A zone asked for holds it there; {} at 2.91 keeps what it is held to.
	shelve("snap-3")
	unshelve(alice, "2.91", map[string]any{"availability_zone": "z2"}, 202)
	if r := f.row(id); r.Host != "n2" || computestate.Pinned(r) != "z2" {
		t.Fatalf("unshelved to z2: host %q pinned %q", r.Host, computestate.Pinned(r))
	}
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	shelve("snap-4")
	unshelve(alice, "2.91", map[string]any{}, 202)
	if r := f.row(id); r.Host != "n2" || computestate.Pinned(r) != "z2" {
		t.Fatalf("unshelved held to z2: host %q pinned %q", r.Host, computestate.Pinned(r))
	}
}
