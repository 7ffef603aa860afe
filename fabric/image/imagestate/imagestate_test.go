package imagestate

import (
	"context"
	"testing"

	"github.com/rackstack/rackstack/fabric/store"
)

// A proposer retries a change that lost a race; it knows the race by the
// error's fault name, not by its message.
func TestIsStale(t *testing.T) {
	local, err := store.NewLocal(Schema())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	row := Image{ID: "i1", Owner: "p1", Status: StatusQueued}
	if _, err := local.Propose(ctx, CmdCreate, CreateCmd{Row: row}); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		typ   string
		body  any
		stale bool
	}{
		"put at an old revision":    {CmdPut, PutCmd{Row: row, Revision: 7}, true},
		"delete at an old revision": {CmdDelete, DeleteCmd{ID: "i1", Revision: 7}, true},
		"create again":              {CmdCreate, CreateCmd{Row: row}, false},
		"put of no image":           {CmdPut, PutCmd{Row: Image{ID: "i2", Owner: "p1"}, Revision: 1}, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := local.Propose(ctx, tc.typ, tc.body)
			if err == nil || IsStale(err) != tc.stale {
				t.Fatalf("err %v: stale %v, want %v", err, IsStale(err), tc.stale)
			}
		})
	}
	if IsStale(store.Conflictf("%s: a message that merely looks stale", staleMsg)) {
		t.Fatal("a conflict without the fault name counts as stale")
	}
}
