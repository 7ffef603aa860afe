package store

import (
	"bytes"
	"io"
)

type bufSink struct{ bytes.Buffer }

func (b *bufSink) ID() string    { return "buf" }
func (b *bufSink) Cancel() error { return nil }
func (b *bufSink) Close() error  { return nil }

// SnapshotRoundTrip snapshots s, restores the snapshot into a fresh state
// built from schemas, and snapshots that again. Services' tests use it to
// check that every command's effect survives snapshot and restore: the two
// byte slices must be equal.
func SnapshotRoundTrip(s *State, schemas ...Schema) (first, second []byte, err error) {
	snap := func(st *State) ([]byte, error) {
		fs, err := NewFSM(st, nil).Snapshot()
		if err != nil {
			return nil, err
		}
		var sink bufSink
		if err := fs.Persist(&sink); err != nil {
			return nil, err
		}
		return sink.Bytes(), nil
	}
	first, err = snap(s)
	if err != nil {
		return nil, nil, err
	}
	restored, err := NewState(schemas...)
	if err != nil {
		return nil, nil, err
	}
	if err := NewFSM(restored, nil).Restore(io.NopCloser(bytes.NewReader(first))); err != nil {
		return nil, nil, err
	}
	second, err = snap(restored)
	return first, second, err
}

// TB is the part of testing.TB that EveryCommandSurvivesSnapshot uses,
// declared here so that this package does not import testing.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// EveryCommandSurvivesSnapshot is the check every service's tests run
// (nomad's testSnapshotRestore): after the test applied its commands
// through l, every command type registered in l's state must have been
// applied at least once (a new command without a case fails here), and the
// state must snapshot to the same bytes after a restore into a fresh state
// built from schemas. It returns the snapshot, for checks of its content.
func EveryCommandSurvivesSnapshot(t TB, l *Local, schemas ...Schema) []byte {
	t.Helper()
	for _, typ := range l.State.Commands() {
		if l.Applied[typ] == 0 {
			t.Errorf("command %s is not exercised by this test", typ)
		}
	}
	first, second, err := SnapshotRoundTrip(l.State, schemas...)
	if err != nil {
		t.Fatalf("snapshot round trip: %v", err)
		return nil
	}
	if !bytes.Equal(first, second) {
		t.Fatalf("snapshot differs after restore:\n%s\n---\n%s", first, second)
	}
	return first
}
