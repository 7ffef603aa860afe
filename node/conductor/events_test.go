package conductor

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/rackstack/rackstack/fabric/baremetal/bmstate"
)

// lockedBuffer is a log sink the conductor's goroutines may share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) lines(substr string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(l.b.String(), "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return out
}

// Each history event a change commits is logged once, with the node, to
// the log's clock: an edit that ran again on a stale revision, or one
// that changed nothing, logs nothing more, and earlier events are not
// logged again.
func TestNodeEventsLoggedOnceWhenCommitted(t *testing.T) {
	w := newWorld(t)
	var log lockedBuffer
	w.c.Log = slog.New(slog.NewTextHandler(&log, nil))
	w.rack("node-1", "52:54:00:00:00:01", bmstate.StateManageable)

	if _, _, err := w.c.change(w.ctx, "node-1", func(n *bmstate.Node) bool {
		w.c.event(n, "INFO", "provisioning", "first event")
		return true
	}); err != nil {
		t.Fatal(err)
	}
	edits := 0
	_, changed, err := w.c.change(w.ctx, "node-1", func(n *bmstate.Node) bool {
		edits++
		if edits == 1 {
			// The API changes the row after the conductor read it: this
			// proposal is stale, and the edit runs again.
			w.set("node-1", func(n *bmstate.Node) { n.Name = "renamed" })
		}
		w.c.event(n, "ERROR", "provisioning", "second event")
		return true
	})
	if err != nil || !changed {
		t.Fatalf("change: changed %v, err %v", changed, err)
	}
	if edits != 2 {
		t.Fatalf("the edit ran %d times, want 2 (the first proposal stale)", edits)
	}
	if _, changed, err := w.c.change(w.ctx, "node-1", func(n *bmstate.Node) bool {
		w.c.event(n, "INFO", "provisioning", "never written")
		return false
	}); err != nil || changed {
		t.Fatalf("change that changes nothing: changed %v, err %v", changed, err)
	}

	got := log.lines(`msg="conductor: node event"`)
	if len(got) != 2 {
		t.Fatalf("node event lines: %q, want one for each committed event", got)
	}
	for i, want := range []string{`level=INFO`, `level=WARN`} {
		if !strings.Contains(got[i], want) || !strings.Contains(got[i], "node=node-1") {
			t.Errorf("line %d %q: want %s and node=node-1", i, got[i], want)
		}
	}
	if !strings.Contains(got[0], `event="first event"`) || !strings.Contains(got[1], `event="second event"`) {
		t.Errorf("lines %q: want the first event, then the second", got)
	}
	if n := w.node("node-1"); len(n.History) != 2 || n.Name != "renamed" {
		t.Fatalf("history %v, name %q: want two events on the renamed node", n.History, n.Name)
	}
}
