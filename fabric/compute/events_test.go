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

// Flavors, keypairs and server groups record who made and removed them.
// A flavor belongs to no project and a keypair to a user.
func TestFlavorsKeypairsAndGroupsAreEvents(t *testing.T) {
	f := newFixtureWith(t, eventstate.Schema())
	f.flavor("p1", "m1.p", 2, 1024, 10)
	f.expect("DELETE", "/v2.1/flavors/p1", admin, "", nil, 202, "")
	f.expect("POST", "/v2.1/os-keypairs", alice, "2.2", map[string]any{"keypair": map[string]any{"name": "k2", "public_key": testPublicKey, "type": "ssh"}}, 201, "")
	f.expect("DELETE", "/v2.1/os-keypairs/k2", alice, "2.2", nil, 204, "")
	g := f.expect("POST", "/v2.1/os-server-groups", alice, "", map[string]any{"server_group": map[string]any{"name": "spread", "policies": []any{"anti-affinity"}}}, 200, "")["server_group"].(map[string]any)["id"].(string)
	f.expect("DELETE", "/v2.1/os-server-groups/"+g, alice, "", nil, 204, "")
	brief := func(id string) string {
		var out []string
		for _, e := range eventstate.List(f.local.State.Txn(), eventstate.Filter{ResourceID: id}) {
			out = append(out, fmt.Sprintf("%s %s %s by %s in %q (%s)", e.ResourceType, e.Action, e.To, e.UserID, e.Project, e.Reason))
		}
		return strings.Join(out, "; ")
	}
	for id, want := range map[string]string{
		"p1": `flavor create  by u-admin in "" (m1.p: 2 vCPU, 1024 MB RAM, 10 GB disk); flavor delete DELETED by u-admin in "" ()`,
		g:    `server_group create  by u-alice in "` + projA + `" (anti-affinity); server_group delete DELETED by u-alice in "` + projA + `" ()`,
	} {
		if got := brief(id); got != want {
			t.Errorf("events of %s\n%s\nwant\n%s", id, got, want)
		}
	}
	if got := brief("u-alice/k2"); !strings.HasPrefix(got, `keypair create  by u-alice in "" (ssh `) || !strings.HasSuffix(got, `keypair delete DELETED by u-alice in "" ()`) {
		t.Errorf("events of the keypair: %s", got)
	}
}
