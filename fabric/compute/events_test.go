package compute

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/events/eventstate"
)

func (f *fixture) events(id string) string {
	var out []string
	for _, e := range eventstate.List(f.local.State.Txn(), eventstate.Filter{ResourceID: id}) {
		who := e.UserID
		if who == "" {
			who = "system"
		}
		s := fmt.Sprintf("%s %s>%s by %s", e.Action, e.From, e.To, who)
		if e.Reason != "" {
			s += " (" + e.Reason + ")"
		}
		if e.Project != projA || e.RequestID == "" && e.UserID != "" {
			s += " [project " + e.Project + ", request " + e.RequestID + "]"
		}
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}

// A server's life is in the event log: who created, stopped and deleted it,
// and what the system saw on its own — a crash with its reason.
func TestServerStateChangesAreEvents(t *testing.T) {
	f := newFixtureWith(t, eventstate.Schema())
	f.stdFlavors()
	id := f.server(alice, "web")
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1}) // no change: no event
	f.report(id, Observed{Status: "SHUTOFF", PowerState: 6, Fault: "the guest crashed"})
	f.action(alice, id, map[string]any{"os-start": nil}, 202)
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	f.report(id, Observed{Status: "SHUTOFF", PowerState: 4})
	f.expect("DELETE", "/v2.1/servers/"+id, alice, "", nil, 204, "")
	f.report(id, Observed{Gone: true})
	// A user's action is recorded when asked (the status changes when the
	// node has done it); the node's reports when the status changed.
	want := "create >BUILD by u-alice; state BUILD>ACTIVE by system; " +
		"state ACTIVE>SHUTOFF by system (the guest crashed); start SHUTOFF>SHUTOFF by u-alice; state SHUTOFF>ACTIVE by system; " +
		"state ACTIVE>SHUTOFF by system (the guest stopped on its own); delete SHUTOFF>SHUTOFF by u-alice; delete SHUTOFF>DELETED by system"
	if got := f.events(id); got != want {
		t.Fatalf("events\n%s\nwant\n%s", got, want)
	}
}
