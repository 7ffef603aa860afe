package block

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// SnapshotGroup makes every snapshot in one command, of what each
// volume's flushed rows hold (it flushes nothing), or none of them.
func TestSnapshotGroup(t *testing.T) {
	r := newRig(t)
	s := New(r.config())
	ctx := context.Background()
	for _, id := range []string{"a", "b"} {
		if err := s.Create(ctx, id, ExtentSize, Options{}); err != nil {
			t.Fatal(err)
		}
	}
	va, _ := s.Open(ctx, "a")
	vb, _ := s.Open(ctx, "b")
	va.WriteAt([]byte("flushed a"), 0)
	vb.WriteAt([]byte("flushed b"), 0)
	if err := va.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := vb.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	vb.WriteAt([]byte("cached b!"), 0) // not flushed: not in the snapshot

	// One pair that cannot be made (its source is missing) makes none.
	err := s.SnapshotGroup(ctx, []SnapshotPair{{ID: "sa", Volume: "a"}, {ID: "sx", Volume: "nosuch"}})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("a group with a missing volume: %v", err)
	}
	if _, err := s.Info(ctx, "sa"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("half a group snapshot made: %v", err)
	}
	if err := s.SnapshotGroup(ctx, []SnapshotPair{{ID: "sa", Volume: "a"}, {ID: "sb", Volume: "b"}}); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{"sa": "flushed a", "sb": "flushed b"} {
		sn, err := s.Open(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(want))
		if _, err := sn.ReadAt(got, 0); err != nil || !bytes.Equal(got, []byte(want)) {
			t.Fatalf("snapshot %s: %q %v, want %q", id, got, err, want)
		}
		if !sn.ReadOnly() {
			t.Fatalf("snapshot %s is writable", id)
		}
	}
	va.Close()
	vb.Close()
}
