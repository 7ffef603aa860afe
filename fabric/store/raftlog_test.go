package store

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestRaftLinesComeOutThroughSlog(t *testing.T) {
	var buf bytes.Buffer
	l := RaftLogger(slog.New(slog.NewTextHandler(&buf, nil)), "raft")
	l.Info("entering follower state", "term", 3)
	l.Warn("heartbeat timeout reached, starting election", "last-leader-id", "n1")
	l.Error("failed to contact", "server-id", "n2")
	out := buf.String()
	if strings.Contains(out, "entering follower state") {
		t.Fatalf("raft's info chatter was logged:\n%s", out)
	}
	for _, want := range []string{
		`level=WARN msg="heartbeat timeout reached, starting election" component=raft last-leader-id=n1`,
		`level=ERROR msg="failed to contact" component=raft server-id=n2`,
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("missing %q in:\n%s", want, out)
		}
	}
}
