package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"

	"github.com/rackstack/rackstack/fabric/store"
)

// kvSchema is a service with a command type a newer release adds.
func kvSchema() store.Schema {
	return store.Schema{
		Tables: []store.Table{{Schema: &memdb.TableSchema{Name: "kv", Indexes: idIndex("ID")}, Row: &caRow{}}},
		Handlers: map[string]store.Handler{
			"kv.put": store.Typed(func(tx *memdb.Txn, r caRow) (any, error) { return nil, tx.Insert("kv", &r) }),
		},
	}
}

// member is one node's state machine, fed the same log as the others.
type member struct {
	state *store.State
	fsm   *store.FSM
}

func newMember(t *testing.T, forget ...string) member {
	st, err := store.NewState(Schema(), kvSchema())
	if err != nil {
		t.Fatal(err)
	}
	st.Forget(forget...)
	return member{state: st, fsm: store.NewFSM(st, nil)}
}

// TestUpgradeGateRefusesWhatAMemberCannotApply: a member whose rackd
// does not know a command type (an older release, here the type
// forgotten) declares so, and from then on every member refuses that
// type alike, with the outcome known, instead of the older one halting
// at it; once that member is upgraded (declares the type) or removed,
// the type applies everywhere.
func TestUpgradeGateRefusesWhatAMemberCannotApply(t *testing.T) {
	newer, older := newMember(t), newMember(t, "kv.put")
	members := []member{newer, older}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var index uint64
	apply := func(typ string, body any) error {
		t.Helper()
		cmd, err := store.Proposal(context.Background(), typ, body)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := json.Marshal(cmd)
		index++
		var first error
		for i, m := range members {
			res := m.fsm.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: data}).(store.Result)
			err := store.ResultError(res)
			if i == 0 {
				first = err
			} else if (err == nil) != (first == nil) {
				t.Fatalf("%s: members disagree: %v, %v", typ, first, err)
			}
			if h := m.state.Halted(); h != nil {
				t.Fatalf("%s: member %d halted: %v", typ, i, h)
			}
		}
		return first
	}
	for _, name := range []string{"new", "old"} {
		if err := apply(CmdRegisterNode, nodeRow{Name: name, JoinedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	if err := apply(CmdDeclareCommands, declareCommands{Name: "new", Commands: newer.state.Commands()}); err != nil {
		t.Fatal(err)
	}
	if err := apply(CmdDeclareCommands, declareCommands{Name: "old", Commands: older.state.Commands()}); err != nil {
		t.Fatal(err)
	}
	err := apply("kv.put", caRow{ID: "x"})
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "node old") || !strings.Contains(err.Error(), "kv.put") {
		t.Fatalf("kv.put with an older member: %v", err)
	}
	for i, m := range members {
		if p := upgradeProblems(m.state.Txn()); len(p) != 1 || !strings.Contains(p[0], "node old") || !strings.Contains(p[0], "kv.put") {
			t.Fatalf("member %d's status problems: %q", i, p)
		}
	}
	if errors.Is(err, store.ErrOutcomeUnknown) {
		t.Fatalf("a gated command's outcome is known: %v", err)
	}
	if store.Get[caRow](newer.state.Txn(), "kv", "x") != nil {
		t.Fatal("the refused command was applied")
	}
	// What every member knows still applies.
	if err := apply(CmdHeartbeat, heartbeat{Name: "old", At: now.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}

	// The older member is upgraded: its restart declares the new type.
	upgraded := newMember(t)
	members[1] = member{state: upgraded.state, fsm: upgraded.fsm}
	// (a real upgrade replays the log into the new state; here the new
	// member starts from the same declarations)
	for _, name := range []string{"new", "old"} {
		cmd, _ := store.Proposal(context.Background(), CmdRegisterNode, nodeRow{Name: name, JoinedAt: now})
		data, _ := json.Marshal(cmd)
		upgraded.fsm.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: data})
	}
	cmd, _ := store.Proposal(context.Background(), CmdDeclareCommands, declareCommands{Name: "new", Commands: newer.state.Commands()})
	data, _ := json.Marshal(cmd)
	upgraded.fsm.Apply(&raft.Log{Index: 2, Type: raft.LogCommand, Data: data})
	if err := apply(CmdDeclareCommands, declareCommands{Name: "old", Commands: upgraded.state.Commands()}); err != nil {
		t.Fatal(err)
	}
	if err := apply("kv.put", caRow{ID: "x"}); err != nil {
		t.Fatalf("kv.put once every member knows it: %v", err)
	}
	if p := upgradeProblems(newer.state.Txn()); len(p) != 0 {
		t.Fatalf("status problems after the upgrade: %q", p)
	}

	// A member that declared less and was then removed no longer counts.
	members = members[:1]
	if err := apply(CmdRegisterNode, nodeRow{Name: "gone", JoinedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := apply(CmdDeclareCommands, declareCommands{Name: "gone", Commands: []string{CmdDeclareCommands}}); err != nil {
		t.Fatal(err)
	}
	if err := apply("kv.put", caRow{ID: "y"}); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("kv.put with a member that lacks it: %v", err)
	}
	if err := apply(CmdRemoveNode, removeNode{Name: "gone"}); err != nil {
		t.Fatal(err)
	}
	if err := apply("kv.put", caRow{ID: "y"}); err != nil {
		t.Fatalf("kv.put once that member is removed: %v", err)
	}
}

// TestDeclareCommandsValidates: an unregistered node or an unsorted
// list is refused.
func TestDeclareCommandsValidates(t *testing.T) {
	l, err := store.NewLocal(Schema())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := l.Propose(ctx, CmdDeclareCommands, declareCommands{Name: "nobody", Commands: []string{"a"}}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unregistered: %v", err)
	}
	if _, err := l.Propose(ctx, CmdRegisterNode, nodeRow{Name: "a"}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]string{nil, {"b", "a"}} {
		if _, err := l.Propose(ctx, CmdDeclareCommands, declareCommands{Name: "a", Commands: bad}); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("%v: %v", bad, err)
		}
	}
}
