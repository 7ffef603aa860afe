package store

import (
	"context"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

// Origin says who proposed a command and when. The proposer stamps it on
// the command (Proposal) from its own clock and the request's context, so
// the state machine knows the time and the actor of every change without
// reading a clock, and every node applying the entry sees the same.
type Origin struct {
	Time      time.Time `json:"time"`
	User      string    `json:"user,omitempty"`
	Project   string    `json:"project,omitempty"`
	RequestID string    `json:"request_id,omitempty"`
}

type originKey struct{}

// WithOrigin returns ctx whose proposals name o's user, project and
// request id (its time is the proposal's own).
func WithOrigin(ctx context.Context, o Origin) context.Context {
	return context.WithValue(ctx, originKey{}, o)
}

// OriginFrom returns the origin ctx carries: zero for a proposal no API
// request asked for (a node agent's report, a background worker).
func OriginFrom(ctx context.Context) Origin {
	o, _ := ctx.Value(originKey{}).(Origin)
	return o
}

// Proposal encodes a command to propose now on behalf of ctx's origin.
func Proposal(ctx context.Context, typ string, body any) (Command, error) {
	cmd, err := NewCommand(typ, body)
	if err != nil {
		return Command{}, err
	}
	o := OriginFrom(ctx)
	o.Time = time.Now().UTC()
	cmd.Origin = &o
	return cmd, nil
}

// Applied is what an Observer sees of a command that applied: its type,
// its origin (zero for an entry written before commands carried one) and
// the rows it changed, in the order it changed them.
type Applied struct {
	Command string
	Origin  Origin
	Changes memdb.Changes
}

// An Observer runs after every command that applied without error, in
// the command's transaction, so what it writes exists exactly when the
// change does; its error aborts the command. Like a handler it must be
// deterministic. It lets one package follow the rows of others (the event
// log follows volumes, networks, images) without wrapping their handlers.
type Observer func(tx *memdb.Txn, a Applied) error
