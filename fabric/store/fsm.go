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
	// unawaitedTerm is the term of the last entry in the log when this
	// process opened it (0: none). This process proposes only as a
	// leader of a later term, so no proposal of its own waits for the
	// result of an entry of that term or before: replaying the log after
	// a restart does not encode the handlers' results (an inline
	// object's row, its bytes in base64, for every one).
	unawaitedTerm uint64
}

// NewFSM wraps state; applyDur may be nil.
func NewFSM(state *State, applyDur *prometheus.HistogramVec) *FSM {
	return &FSM{state: state, applyDur: applyDur}
}

// Apply implements raft.FSM. It returns a Result for an entry of one
// command and a []Result for a batch.
//
// An entry this node cannot apply (a command type it does not know, or
// bytes it cannot decode) comes from a newer rackd: other nodes apply it.
// Raft offers no way to refuse an entry, and panicking (Nomad's choice)
// takes the whole node down with its agents. So the FSM halts instead:
// it applies nothing of that entry or any later one, the applied index
// stays before it, snapshots are refused so that Raft keeps the log from
// there, and the state stays an exact prefix of the log. The Raft wrapper
// reports the halt (an ERROR log, a metric, /healthz) and hands leadership
// away; an upgraded rackd replays the log from the last snapshot and
// carries on. Batches are checked whole first so none is half-applied.
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return Result{Index: l.Index}
	}
	cmds, batch, err := decodeEntry(l.Data)
	if err != nil {
		f.state.stop(&HaltError{Index: l.Index, Reason: fmt.Sprintf("cannot decode the entry (written by a newer rackd?): %v", err)})
		return f.refuse(l.Index, nil, false)
	}
	var gated []error
	if f.state.Halted() == nil {
		gated = f.gate(cmds)
		for i, c := range cmds {
			if gated[i] == nil && !f.state.Knows(c.Type) {
				f.state.stop(&HaltError{Index: l.Index, Command: c.Type, Reason: fmt.Sprintf("unknown command type %q (written by a newer rackd?)", c.Type)})
				break
			}
		}
	}
	if f.state.Halted() != nil {
		return f.refuse(l.Index, cmds, batch)
	}
	out := make([]Result, len(cmds))
	for i, c := range cmds {
		if gated[i] != nil {
			out[i] = Result{Index: l.Index, Err: &ApplyError{Kind: KindUnavailable, Msg: gated[i].Error()}}
			continue
		}
		out[i] = f.applyOne(l.Index, c, f.unawaitedTerm == 0 || l.Term > f.unawaitedTerm)
	}
	f.state.markApplied(l.Index)
	if !batch {
		return out[0]
	}
	return out
}

// gate asks the state's gates about every command of an entry, all
// against the state before the entry, so that every node (one that does
// not know a refused type included) refuses the same commands and
// applies the others. A refused command is neither applied nor a cause
// to halt: the member that does not know it is the reason it is refused.
func (f *FSM) gate(cmds []Command) []error {
	out := make([]error, len(cmds))
	if len(f.state.gates) == 0 {
		return out
	}
	tx := f.state.Txn()
	defer tx.Abort()
	for i, c := range cmds {
		out[i] = f.state.gated(tx, c.Type)
	}
	return out
}

// refuse answers every command of an entry the halted state does not
// apply. The entry is committed and other nodes may apply it, so the
// proposer must treat its outcome as unknown, not as failed.
func (f *FSM) refuse(index uint64, cmds []Command, batch bool) any {
	res := Result{Index: index, Err: &ApplyError{Kind: KindHalted,
		Msg: fmt.Sprintf("the leader did not apply this command, so its outcome is unknown (other nodes may have): %v", f.state.Halted())}}
	if !batch {
		return res
	}
	out := make([]Result, len(cmds))
	for i := range out {
		out[i] = res
	}
	return out
}

func (f *FSM) applyOne(index uint64, cmd Command, awaited bool) Result {
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
	if v != nil && awaited {
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
// pointer into the immutable radix trees); Persist does the I/O. A halted
// state refuses: Raft would label the snapshot with an index past entries
// this node never applied and drop them from the log, and the upgraded
// node could then never apply them.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	if err := f.state.Halted(); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
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
