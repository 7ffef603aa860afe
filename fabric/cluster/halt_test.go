package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// A node running an older rackd, from before the command declarations
// (a declared one is never sent a command it cannot apply: see
// TestUpgradeGateRefusesWhatAMemberCannotApply), that meets a command
// only newer nodes know stops applying, says so in its status, and serves
// no reads or writes; the newer leader carries on. A command type no node
// knows is refused before it reaches the log.
func TestNodeHaltsOnCommandFromNewerNode(t *testing.T) {
	newer := noteSchema()
	newer.Handlers["note.touch"] = func(tx *memdb.Txn, _ uint64, body json.RawMessage) (any, error) {
		var n noteRow
		if err := json.Unmarshal(body, &n); err != nil {
			return nil, err
		}
		return nil, tx.Insert("notes", &n)
	}
	cfg := testConfig(t, "a")
	cfg.Bootstrap, cfg.Schemas = true, []store.Schema{Schema(), newer}
	a, err := openNode(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	waitLeads(t, a)
	ctx := context.Background()
	tok, err := a.CreateJoinToken(ctx, time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	bcfg := testConfig(t, "b") // the older node
	bcfg.JoinURL, bcfg.JoinToken, bcfg.undeclared = a.api.URL, tok.Token, true
	b, err := openNode(t, bcfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Propose(ctx, "note.put", noteRow{ID: "n1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Propose(ctx, "note.nope", noteRow{ID: "x"}); !errors.Is(err, store.ErrUnknownCommand) {
		t.Fatalf("unknown command: %v, want ErrUnknownCommand", err)
	}
	if b.State.Halted() != nil {
		t.Fatalf("a refused proposal halted b: %v", b.State.Halted())
	}

	if _, err := a.Propose(ctx, "note.touch", noteRow{ID: "n2"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b halts", func() bool { return b.State.Halted() != nil })
	st, err := b.Status()
	if err != nil || !strings.Contains(st.Halted, `unknown command type "note.touch"`) {
		t.Fatalf("b's status: %v, halted %q", err, st.Halted)
	}
	if _, err := b.Read(ctx); !errors.Is(err, store.ErrHalted) {
		t.Errorf("read on b: %v, want ErrHalted", err)
	}
	if _, err := b.Propose(ctx, "note.put", noteRow{ID: "n3"}); !errors.Is(err, store.ErrHalted) {
		t.Errorf("write through b: %v, want ErrHalted", err)
	}
	if _, err := a.Propose(ctx, "note.put", noteRow{ID: "n4"}); err != nil {
		t.Fatalf("the newer leader stopped taking writes: %v", err)
	}
	tx, err := a.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"n1", "n2", "n4"} {
		if raw, _ := tx.First("notes", "id", id); raw == nil {
			t.Errorf("a lacks %s", id)
		}
	}
}
