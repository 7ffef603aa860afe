package compute

import (
	"context"
	"fmt"
	"testing"

	"github.com/rackstack/rackstack/fabric/store"
)

// committedButTimedOut applies a server create but tells the proposer it
// timed out, as a Raft proposal may when the leader changes under it.
type committedButTimedOut struct{ *store.Local }

func (c committedButTimedOut) Propose(ctx context.Context, typ string, body any) (store.Result, error) {
	res, err := c.Local.Propose(ctx, typ, body)
	if err == nil && typ == cmdServerCreate {
		return store.Result{}, fmt.Errorf("propose %s: %w", typ, context.DeadlineExceeded)
	}
	return res, err
}

// TestCreateOfUnknownOutcomeKeepsItsPorts: a create whose proposal may
// have committed must not delete the ports the server may be using.
func TestCreateOfUnknownOutcomeKeepsItsPorts(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	f.svc.cfg.Repl = committedButTimedOut{f.local}
	sv := map[string]any{"name": "vm", "imageRef": img1, "flavorRef": "small", "networks": []any{map[string]any{"uuid": netA}}}
	if r := f.do("POST", "/v2.1/servers", alice, "", map[string]any{"server": sv}); r.code != 500 {
		t.Fatalf("status %d, want 500 (outcome unknown): %v", r.code, r.body)
	}
	rows := store.All[Server](f.local.State.Txn(), tServers, "id")
	if len(rows) != 1 || len(rows[0].Ports) != 1 {
		t.Fatalf("the create committed: want one server with one port, got %+v", rows)
	}
	if _, ok := f.ports.get(rows[0].Ports[0]); !ok {
		t.Fatal("the port of a server that exists was deleted")
	}
}

// TestRejectedCreateDeletesItsPorts: a create the state machine refused
// leaves no port behind.
func TestRejectedCreateDeletesItsPorts(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	f.expect("PUT", "/v2.1/os-quota-sets/"+projA, admin, "", map[string]any{"quota_set": map[string]any{"instances": 0}}, 200, "")
	before := f.ports.count()
	sv := map[string]any{"name": "vm", "imageRef": img1, "flavorRef": "small", "networks": []any{map[string]any{"uuid": netA}}}
	f.expect("POST", "/v2.1/servers", alice, "", map[string]any{"server": sv}, 403, "overLimit", "Quota exceeded for instances")
	if f.ports.count() != before {
		t.Fatalf("ports: %d, had %d", f.ports.count(), before)
	}
}

// config_drive false, which Terraform sends by default, is accepted: the
// server gets its config drive anyway, as with Nova's
// force_config_drive; a value that is no boolean is refused.
func TestCreateConfigDriveFalse(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	id := f.server(alice, "vm", "config_drive", false)
	if v := f.show(alice, id, ""); v["config_drive"] != "True" {
		t.Fatalf("config_drive %v", v["config_drive"])
	}
	f.server(alice, "vm2", "config_drive", "")
	sv := map[string]any{"name": "x", "imageRef": img1, "flavorRef": "small", "networks": []any{map[string]any{"uuid": netA}}, "config_drive": "maybe"}
	f.expect("POST", "/v2.1/servers", alice, "", map[string]any{"server": sv}, 400, "badRequest", "config_drive")
}
