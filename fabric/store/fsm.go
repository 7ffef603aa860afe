package store

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"time"

	memdb "github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// FSM applies committed log entries to State. It is a dispatch table: the
// command's type picks one handler.
type FSM struct {
	state    *State
	applyDur *prometheus.HistogramVec
}

// NewFSM wraps state; applyDur may be nil.
func NewFSM(state *State, applyDur *prometheus.HistogramVec) *FSM {
	return &FSM{state: state, applyDur: applyDur}
}

// Apply implements raft.FSM. It returns a Result for an entry of one
// command and a []Result for a batch.
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return Result{Index: l.Index}
	}
	cmds, batch, err := decodeEntry(l.Data)
	if err != nil {
		f.state.markApplied(l.Index)
		return Result{Index: l.Index, Err: &ApplyError{Kind: KindInvalid, Msg: fmt.Sprintf("decode command: %v", err)}}
	}
	if !batch {
		return f.applyOne(l.Index, cmds[0])
	}
	out := make([]Result, len(cmds))
	for i, c := range cmds {
		out[i] = f.applyOne(l.Index, c)
	}
	return out
}

func (f *FSM) applyOne(index uint64, cmd Command) Result {
	start := time.Now()
	v, err := f.state.apply(index, cmd)
	if f.applyDur != nil {
		f.applyDur.WithLabelValues(cmd.Type).Observe(time.Since(start).Seconds())
	}
	res := Result{Index: index}
	if err != nil {
		res.Err = WrapApplyError(err)
		return res
	}
	if v != nil {
		raw, err := json.Marshal(v)
		if err != nil {
			res.Err = &ApplyError{Kind: KindOther, Msg: fmt.Sprintf("encode result: %v", err)}
			return res
		}
		res.Value = raw
	}
	return res
}

// Snapshot implements raft.FSM: it only captures a read transaction (a
// pointer into the immutable radix trees); Persist does the I/O.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.state.mu.RLock()
	tx := f.state.db.Txn(false)
	applied := f.state.applied
	f.state.mu.RUnlock()
	return &fsmSnapshot{state: f.state, tx: tx, applied: applied}, nil
}

// Restore implements raft.FSM.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	return f.state.load(json.NewDecoder(bufio.NewReader(rc)))
}

type fsmSnapshot struct {
	state   *State
	tx      *memdb.Txn
	applied uint64
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	w := bufio.NewWriter(sink)
	if err := s.state.dump(s.tx, s.applied, json.NewEncoder(w)); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	if err := w.Flush(); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}
