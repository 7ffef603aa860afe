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
