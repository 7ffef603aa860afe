package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	memdb "github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"
)

// Replicated is what a service needs from the cluster: propose a command
// (forwarded to the leader wherever it is) and read the state with
// read-your-writes.
type Replicated interface {
	Propose(ctx context.Context, typ string, body any) (Result, error)
	Read(ctx context.Context) (*memdb.Txn, error)
}

// Local is a Replicated without Raft: commands go straight through the FSM
// on one in-memory state. It is for unit tests of services; it runs the same
// handlers and the same encoding as the replicated path.
type Local struct {
	mu    sync.Mutex
	fsm   *FSM
	State *State
	index uint64
	// Applied counts the commands applied without error, by type, so tests
	// can check they exercised every command type.
	Applied map[string]int
}

// NewLocal builds a Local over a fresh state made of schemas.
func NewLocal(schemas ...Schema) (*Local, error) {
	st, err := NewState(schemas...)
	if err != nil {
		return nil, err
	}
	return &Local{fsm: NewFSM(st, nil), State: st, Applied: map[string]int{}}, nil
}

// Propose applies the command at once. Like a cluster node it refuses a
// command type nobody registered before it reaches the log.
func (l *Local) Propose(ctx context.Context, typ string, body any) (Result, error) {
	if !l.State.Knows(typ) {
		return Result{}, fmt.Errorf("propose %s: %w", typ, ErrUnknownCommand)
	}
	cmd, err := Proposal(ctx, typ, body)
	if err != nil {
		return Result{}, err
	}
	data, err := json.Marshal(cmd)
	if err != nil {
		return Result{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.index++
	res := l.fsm.Apply(&raft.Log{Index: l.index, Type: raft.LogCommand, Data: data}).(Result)
	if err := ResultError(res); err != nil {
		return res, err
	}
	l.Applied[typ]++
	return res, nil
}

// Read returns a read transaction on the current state.
func (l *Local) Read(context.Context) (*memdb.Txn, error) { return l.State.Txn(), nil }

// Local returns a read transaction without any round trip.
func (l *Local) Local() *memdb.Txn { return l.State.Txn() }

// localReader is implemented by replicated stores that can read this node's
// state without a round trip (cluster.Node, Local).
type localReader interface {
	Local() *memdb.Txn
}

// AfterWrite reads the state a proposal just produced: Propose returns once
// this node applied it, so the local state has it and no read index is
// needed. Stores without a local read fall back to Read.
func AfterWrite(ctx context.Context, r Replicated) (*memdb.Txn, error) {
	if l, ok := r.(localReader); ok {
		return l.Local(), nil
	}
	return r.Read(ctx)
}

// leased is implemented by replicated stores whose nodes bound how stale
// their local state may be (cluster.Node): a revocation waits for every
// member, and local reads hold a lease on the leader's state.
type leased interface {
	LeasedRead(ctx context.Context) (*memdb.Txn, error)
	AwaitEverywhere(ctx context.Context, index uint64) error
}

// Current reads this node's state for a check that must see every
// revocation whose call has returned (a token, a credential): without a
// round trip while the node's lease holds. Stores without leases (Local,
// one process) read their only state.
func Current(ctx context.Context, r Replicated) (*memdb.Txn, error) {
	if l, ok := r.(leased); ok {
		return l.LeasedRead(ctx)
	}
	return AfterWrite(ctx, r)
}

// AwaitEverywhere returns once the write at index is applied on every
// node, or no node can check anything against older state any more. A
// call that takes access away waits for it before it answers.
func AwaitEverywhere(ctx context.Context, r Replicated, index uint64) error {
	if l, ok := r.(leased); ok {
		return l.AwaitEverywhere(ctx, index)
	}
	return nil
}
