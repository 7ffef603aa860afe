// Package store is Rackstack's replicated state: a Raft log whose FSM applies
// typed commands to an in-memory, indexed, watchable go-memdb database.
//
// Services register their tables and command handlers when the store is built
// (nothing is registered globally). Handlers must be deterministic: no clock
// reads, no I/O, no randomness. Everything a command needs (ids, timestamps,
// hashes) is chosen by the proposer before the command enters the log.
package store

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"sync"

	memdb "github.com/hashicorp/go-memdb"
)

// Table describes one state table: its go-memdb schema and the Go type of
// its rows, so snapshots can be decoded without knowing the service.
type Table struct {
	Schema *memdb.TableSchema
	// Row is a zero value of the row type stored in the table (a pointer to
	// a struct), used to decode snapshot rows.
	Row any
}

// Handler applies one command type to a write transaction. It returns a
// result handed back to the proposer, or an error that aborts the whole
// command (nothing it wrote is kept).
type Handler func(tx *memdb.Txn, index uint64, body json.RawMessage) (any, error)

// Schema is everything a service contributes to the state store.
type Schema struct {
	Tables    []Table
	Handlers  map[string]Handler
	Observers []Observer
	// Gate, where set, may refuse a command type before any node applies
	// it (see FSM.Apply). It reads only the replicated state, so every
	// node refuses the same entries, even a node that does not know the
	// type: the cluster's gate refuses a type that some member's rackd
	// does not know, so that a rolling upgrade never halts the nodes
	// not yet upgraded.
	Gate Gate
}

// Gate decides, from the state before a log entry, whether a command
// type may be applied; a non-nil error refuses it on every node.
type Gate func(tx *memdb.Txn, typ string) error

// State is the in-memory database every node reads from. Writes come only
// from the FSM.
type State struct {
	mu       sync.RWMutex
	db       *memdb.MemDB
	tables   map[string]Table
	handlers map[string]Handler
	// observers run after every command, in registration order.
	observers []Observer
	gates     []Gate
	applied   uint64
	notify    chan struct{} // closed and replaced whenever applied changes
	// halt is set, once and for good, when the FSM meets a log entry it
	// cannot apply (see FSM.Apply); halted is closed then.
	halt   *HaltError
	halted chan struct{}
}

// metaTable keeps per-store bookkeeping that must survive snapshots.
const metaTable = "meta"

// NewState builds an empty state from the schemas of all services.
func NewState(schemas ...Schema) (*State, error) {
	s := &State{tables: map[string]Table{}, handlers: map[string]Handler{}, notify: make(chan struct{}), halted: make(chan struct{})}
	dbs := &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{}}
	for _, sc := range schemas {
		for _, t := range sc.Tables {
			if _, dup := s.tables[t.Schema.Name]; dup {
				return nil, fmt.Errorf("table %q registered twice", t.Schema.Name)
			}
			if t.Row == nil || reflect.TypeOf(t.Row).Kind() != reflect.Pointer {
				return nil, fmt.Errorf("table %q: Row must be a pointer to the row type", t.Schema.Name)
			}
			s.tables[t.Schema.Name] = t
			dbs.Tables[t.Schema.Name] = t.Schema
		}
		for name, h := range sc.Handlers {
			if _, dup := s.handlers[name]; dup {
				return nil, fmt.Errorf("command %q registered twice", name)
			}
			s.handlers[name] = h
		}
		s.observers = append(s.observers, sc.Observers...)
		if sc.Gate != nil {
			s.gates = append(s.gates, sc.Gate)
		}
	}
	db, err := memdb.NewMemDB(dbs)
	if err != nil {
		return nil, fmt.Errorf("build state schema: %w", err)
	}
	s.db = db
	return s, nil
}

// Txn opens a read-only transaction on the current state.
func (s *State) Txn() *memdb.Txn {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.db.Txn(false)
}

// AppliedIndex is the Raft index of the last command applied here.
func (s *State) AppliedIndex() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.applied
}

// Changed returns a channel closed at the next apply: a cheap way to wait
// for the state to move.
func (s *State) Changed() <-chan struct{} {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.notify
}

// Commands lists the registered command types, sorted.
func (s *State) Commands() []string {
	out := make([]string, 0, len(s.handlers))
	for k := range s.handlers {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Knows reports whether a handler is registered for the command type.
func (s *State) Knows(typ string) bool {
	_, ok := s.handlers[typ]
	return ok
}

// Forget unregisters command types, so that this state applies them as
// a rackd without them would: a member that does not know them. Only
// upgrade tests use it (rackd's RACKD_FORGET_COMMANDS), to stand in for
// an older release; it must be called before the state applies anything.
func (s *State) Forget(types ...string) {
	for _, t := range types {
		delete(s.handlers, t)
	}
}

// gated returns the error of the first gate that refuses typ.
func (s *State) gated(tx *memdb.Txn, typ string) error {
	for _, g := range s.gates {
		if err := g(tx, typ); err != nil {
			return err
		}
	}
	return nil
}

// Halted returns the *HaltError that stopped this node applying the log,
// or nil while it applies normally.
func (s *State) Halted() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.halt == nil {
		return nil
	}
	return s.halt
}

// HaltedCh is closed when the state halts.
func (s *State) HaltedCh() <-chan struct{} { return s.halted }

// stop halts the state for good. It wakes WaitApplied callers, which then
// fail rather than wait for an index this node will never apply.
func (s *State) stop(h *HaltError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.halt != nil {
		return
	}
	s.halt = h
	close(s.halted)
	close(s.notify)
	s.notify = make(chan struct{})
}

// apply runs one command in a write transaction; an error aborts it. The
// caller marks the entry applied once all its commands ran.
func (s *State) apply(index uint64, cmd Command) (any, error) {
	h, ok := s.handlers[cmd.Type]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownCommand, cmd.Type)
	}
	s.mu.RLock()
	db := s.db
	s.mu.RUnlock()
	tx := db.Txn(true)
	if len(s.observers) > 0 {
		tx.TrackChanges()
	}
	res, err := h(tx, index, cmd.Body)
	if err == nil {
		err = s.observe(tx, cmd)
	}
	if err != nil {
		tx.Abort()
	} else {
		tx.Commit()
	}
	return res, err
}

// observe hands the rows cmd changed to every observer.
func (s *State) observe(tx *memdb.Txn, cmd Command) error {
	if len(s.observers) == 0 {
		return nil
	}
	a := Applied{Command: cmd.Type, Changes: tx.Changes()}
	if cmd.Origin != nil {
		a.Origin = *cmd.Origin
	}
	for _, o := range s.observers {
		if err := o(tx, a); err != nil {
			return err
		}
	}
	return nil
}

func (s *State) markApplied(index uint64) {
	s.mu.Lock()
	if index > s.applied {
		s.applied = index
	}
	close(s.notify)
	s.notify = make(chan struct{})
	s.mu.Unlock()
}

// snapshotRow is one line of a snapshot stream.
type snapshotRow struct {
	Table string          `json:"t"`
	Row   json.RawMessage `json:"r,omitempty"`
	Index uint64          `json:"i,omitempty"`
}

// dump writes every row of every table in a stable order (tables by name,
// rows by their id index), so equal states give byte-identical snapshots.
func (s *State) dump(tx *memdb.Txn, applied uint64, enc *json.Encoder) error {
	if err := enc.Encode(snapshotRow{Table: metaTable, Index: applied}); err != nil {
		return err
	}
	names := make([]string, 0, len(s.tables))
	for n := range s.tables {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		it, err := tx.Get(n, "id")
		if err != nil {
			return fmt.Errorf("snapshot table %s: %w", n, err)
		}
		for obj := it.Next(); obj != nil; obj = it.Next() {
			raw, err := json.Marshal(obj)
			if err != nil {
				return fmt.Errorf("snapshot table %s: %w", n, err)
			}
			if err := enc.Encode(snapshotRow{Table: n, Row: raw}); err != nil {
				return err
			}
		}
	}
	return nil
}

// load replaces the state with the rows from a snapshot stream.
func (s *State) load(dec *json.Decoder) error {
	dbs := &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{}}
	for n, t := range s.tables {
		dbs.Tables[n] = t.Schema
	}
	db, err := memdb.NewMemDB(dbs)
	if err != nil {
		return err
	}
	tx := db.Txn(true)
	var applied uint64
	for {
		var r snapshotRow
		if err := dec.Decode(&r); err != nil {
			if err.Error() == "EOF" {
				break
			}
			tx.Abort()
			return fmt.Errorf("decode snapshot: %w", err)
		}
		if r.Table == metaTable {
			applied = r.Index
			continue
		}
		t, ok := s.tables[r.Table]
		if !ok {
			tx.Abort()
			return fmt.Errorf("snapshot has unknown table %q", r.Table)
		}
		obj := reflect.New(reflect.TypeOf(t.Row).Elem()).Interface()
		if err := json.Unmarshal(r.Row, obj); err != nil {
			tx.Abort()
			return fmt.Errorf("decode snapshot row of %s: %w", r.Table, err)
		}
		if err := tx.Insert(r.Table, obj); err != nil {
			tx.Abort()
			return fmt.Errorf("restore row of %s: %w", r.Table, err)
		}
	}
	tx.Commit()
	s.mu.Lock()
	s.db = db
	s.applied = applied
	close(s.notify)
	s.notify = make(chan struct{})
	s.mu.Unlock()
	return nil
}
