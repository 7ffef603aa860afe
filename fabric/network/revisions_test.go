package network

import (
	"context"
	"errors"
	"testing"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/api/apitest"
	"github.com/rackstack/rackstack/fabric/store"
)

// callIfMatch makes a request with an If-Match header and returns the
// status and the decoded body.
func (f *fixture) callIfMatch(method, path, tok, ifMatch string, body any) (int, map[string]any) {
	f.t.Helper()
	res := apitest.Call(f.t, method, f.srv.URL+"/network"+path, tok, body, "If-Match", ifMatch)
	return res.Code, res.Body
}

func revisionOf(v map[string]any) string { return api.Text(v["revision_number"]) }

func TestIfMatchRevisionNumberGuardsUpdatesAndDeletes(t *testing.T) {
	f := newFixture(t)
	nid := f.network(alice, "n")["id"].(string)
	sid := f.subnet(alice, nid, "10.0.0.0/24")["id"].(string)
	pid := f.port(alice, nid)["id"].(string)
	gid := f.mk(alice, "security-groups", "security_group", map[string]any{"name": "g"})["id"].(string)
	tests := map[string]struct{ coll, key, id string }{
		"network":        {"networks", "network", nid},
		"subnet":         {"subnets", "subnet", sid},
		"port":           {"ports", "port", pid},
		"security group": {"security-groups", "security_group", gid},
	}
	for name, tc := range tests {
		f.run(t, name, func(t *testing.T) {
			path := "/v2.0/" + tc.coll + "/" + tc.id
			_, cur := f.call("GET", path, alice, nil)
			rev := revisionOf(cur[tc.key].(map[string]any))
			rename := func(n string) any { return map[string]any{tc.key: map[string]any{"name": n}} }

			code, body := f.callIfMatch("PUT", path, alice, "revision_number=999", rename("stale"))
			if code != 412 || body["NeutronError"].(map[string]any)["type"] != "RevisionNumberConstraintFailed" {
				t.Fatalf("stale PUT: %d %v", code, body)
			}
			_, after := f.call("GET", path, alice, nil)
			if v := after[tc.key].(map[string]any); v["name"] == "stale" || revisionOf(v) != rev {
				t.Fatalf("a refused PUT changed the %s: %v", name, v)
			}

			code, body = f.callIfMatch("PUT", path, alice, `"revision_number=`+rev+`"`, rename("fresh"))
			if code != 200 || body[tc.key].(map[string]any)["name"] != "fresh" {
				t.Fatalf("PUT at the current revision: %d %v", code, body)
			}
			if code, _ := f.callIfMatch("PUT", path, alice, "revision_number=x", rename("bad")); code != 400 {
				t.Fatalf("malformed If-Match: %d, want 400", code)
			}
			if code, _ := f.callIfMatch("PUT", path, alice, "revision_number=1, revision_number=2", rename("bad")); code != 400 {
				t.Fatalf("two revision tags: %d, want 400", code)
			}
			// The revision the PUT above was made at is stale now.
			if code, _ := f.callIfMatch("DELETE", path, alice, "revision_number="+rev, nil); code != 412 {
				t.Fatalf("stale DELETE: %d, want 412", code)
			}
			if code, _ := f.call("GET", path, alice, nil); code != 200 {
				t.Fatalf("a refused DELETE deleted the %s: %d", name, code)
			}
		})
	}
	// Deleted at their current revision, ports before the network.
	for _, p := range []string{"/v2.0/ports/" + pid, "/v2.0/security-groups/" + gid, "/v2.0/subnets/" + sid, "/v2.0/networks/" + nid} {
		_, cur := f.call("GET", p, alice, nil)
		var v map[string]any
		for _, x := range cur {
			v = x.(map[string]any)
		}
		if code, body := f.callIfMatch("DELETE", p, alice, "revision_number="+revisionOf(v), nil); code != 204 {
			t.Fatalf("DELETE %s at its revision: %d %v", p, code, body)
		}
	}
}

// The revision is checked by the state machine with the write, not by
// the handler before proposing: a command made against a revision that
// has moved on is refused whoever proposes it.
func TestStaleRevisionIsRefusedInsideTheApply(t *testing.T) {
	f := newFixture(t)
	nid := f.network(alice, "n")["id"].(string)
	stale, name := 7, "x"
	_, err := f.local.Propose(context.Background(), cmdNetworkUpdate, networkUpdateCmd{ifMatch: ifMatch{IfRevision: &stale}, ID: nid, Name: &name})
	if !errors.Is(err, store.ErrPrecondition) {
		t.Fatalf("stale update: err %v, want a precondition failure", err)
	}
	_, err = f.local.Propose(context.Background(), cmdNetworkDelete, idCmd{ifMatch: ifMatch{IfRevision: &stale}, ID: nid})
	if !errors.Is(err, store.ErrPrecondition) {
		t.Fatalf("stale delete: err %v, want a precondition failure", err)
	}
}
