package cluster

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// gate holds the apply of the note "slow" on one node until opened: a
// member whose state lags (a slow disk, a busy CPU).
type gate struct {
	once sync.Once
	open chan struct{}
}

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

func gatedNoteSchema(g *gate) store.Schema {
	s := noteSchema()
	s.Handlers = map[string]store.Handler{"note.put": func(tx *memdb.Txn, _ uint64, body json.RawMessage) (any, error) {
		var n noteRow
		if err := json.Unmarshal(body, &n); err != nil {
			return nil, err
		}
		if n.ID == "slow" {
			<-g.open
		}
		return nil, tx.Insert("notes", &n)
	}}
	return s
}

// leaseCluster starts a (leader), b and c, where c applies "slow" only
// once its gate opens.
func leaseCluster(t *testing.T, lease time.Duration) (a, c *testNode, g *gate) {
	t.Helper()
	g = &gate{open: make(chan struct{})}
	cfg := testConfig(t, "a")
	cfg.Bootstrap, cfg.StateLease = true, lease
	a, err := openNode(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a leads with the CA published", func() bool {
		_, err := readCA(a.State.Txn())
		return a.IsLeader() && err == nil
	})
	tok, err := a.CreateJoinToken(context.Background(), time.Hour, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"b", "c"} {
		cfg := testConfig(t, name)
		cfg.JoinURL, cfg.JoinToken, cfg.StateLease = a.api.URL, tok.Token, lease
		if name == "c" {
			cfg.Schemas = []store.Schema{Schema(), gatedNoteSchema(g)}
		}
		n, err := openNode(t, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if name == "c" {
			c = n
		}
	}
	// Runs before the nodes stop: Raft cannot shut down mid-apply.
	t.Cleanup(g.release)
	waitFor(t, "three voters", func() bool {
		st, err := a.Status()
		return err == nil && len(st.Members) == 3 && st.Healthy
	})
	return a, c, g
}

func hasNote(tx *memdb.Txn, id string) bool {
	raw, _ := tx.First("notes", "id", id)
	return raw != nil
}

// A revoking write returns only once a lagging member has applied it.
func TestAwaitEverywhereWaitsForALaggingMember(t *testing.T) {
	a, c, g := leaseCluster(t, 5*time.Second)
	ctx := context.Background()
	res, err := a.Propose(ctx, "note.put", noteRow{ID: "slow"})
	if err != nil {
		t.Fatal(err)
	}
	go func() { time.Sleep(300 * time.Millisecond); g.release() }()
	if err := a.AwaitEverywhere(ctx, res.Index); err != nil {
		t.Fatal(err)
	}
	if !hasNote(c.Local(), "slow") {
		t.Fatal("AwaitEverywhere returned before a live member applied the write")
	}
}

// A member that never confirms is waited for no longer than its lease,
// and once the call returns it no longer answers from its old state: a
// leased read must first catch up past the write.
func TestLeasedReadNeverServesStateOlderThanAnAwaitedWrite(t *testing.T) {
	a, c, g := leaseCluster(t, 500*time.Millisecond)
	ctx := context.Background()
	waitFor(t, "c holds a lease", func() bool {
		_, err := c.LeasedRead(ctx)
		return err == nil
	})
	res, err := a.Propose(ctx, "note.put", noteRow{ID: "slow"})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.AwaitEverywhere(ctx, res.Index); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	tx, err := c.LeasedRead(short)
	cancel()
	if err == nil && !hasNote(tx, "slow") {
		t.Fatal("a lagging member answered from state older than an awaited write")
	}
	g.release()
	waitFor(t, "c catches up", func() bool {
		tx, err := c.LeasedRead(ctx)
		return err == nil && hasNote(tx, "slow")
	})
}
