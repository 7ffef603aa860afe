package api

import (
	"context"
	"errors"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// Propose proposes a command, decodes its result into out (if not nil)
// and returns a read of the state it produced, so the handler answers
// with what was written (read-your-writes on any node).
//
// An error that is not an *store.ApplyError (a timeout, a lost leader)
// means the outcome is unknown: the command may still commit. Callers
// must not undo anything on such an error as if the write had failed.
func Propose(ctx context.Context, repl store.Replicated, typ string, body, out any) (*memdb.Txn, error) {
	res, err := repl.Propose(ctx, typ, body)
	if err != nil {
		return nil, err
	}
	if out != nil {
		if err := res.Decode(out); err != nil {
			return nil, err
		}
	}
	return store.AfterWrite(ctx, repl)
}

// Rejected reports whether err is a definite refusal by the state machine
// (the command was applied and failed, so nothing of it is in the state),
// as opposed to an unknown outcome.
func Rejected(err error) bool {
	var ae *store.ApplyError
	return errors.As(err, &ae)
}
