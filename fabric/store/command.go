package store

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Command is one entry of the Raft log: a registered type name and its body.
type Command struct {
	Type string          `json:"type"`
	Body json.RawMessage `json:"body,omitempty"`
}

// NewCommand encodes body as the command's payload.
func NewCommand(typ string, body any) (Command, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return Command{}, fmt.Errorf("encode command %s: %w", typ, err)
	}
	return Command{Type: typ, Body: raw}, nil
}

// Sentinel errors handlers return; the API layer maps them to HTTP statuses.
var (
	ErrNotFound       = errors.New("not found")
	ErrConflict       = errors.New("conflict")
	ErrInvalid        = errors.New("invalid")
	ErrUnknownCommand = errors.New("unknown command")
	ErrNotLeader      = errors.New("not the leader")
	ErrNoLeader       = errors.New("no leader")
	// ErrHalted: this node stopped applying the log (HaltError says why).
	ErrHalted = errors.New("state halted")
)

// HaltError says why and where a node stopped applying the Raft log: an
// entry it cannot apply, written by a newer rackd (a command type it does
// not know, or an encoding it cannot read). Skipping the entry would let
// this node's state silently diverge from the nodes that applied it, and
// applying later entries on top would compound that; so it applies nothing
// from that entry on until rackd is upgraded and restarted, when it
// replays the log from its last snapshot.
type HaltError struct {
	Index   uint64 `json:"index"`             // the entry it could not apply
	Command string `json:"command,omitempty"` // its unknown command type, if that was the cause
	Reason  string `json:"reason"`
}

func (e *HaltError) Error() string {
	return fmt.Sprintf("state halted at log index %d: %s; this node applies no more of the log until rackd is upgraded and restarted", e.Index, e.Reason)
}

// Is makes errors.Is(err, ErrHalted) true.
func (e *HaltError) Is(target error) bool { return target == ErrHalted }

// ApplyError carries a handler's error across the log and across nodes so
// that errors.Is keeps working on the proposer's side.
type ApplyError struct {
	Kind string `json:"kind"` // not_found, conflict, invalid, forbidden, unknown_command, halted, other
	Msg  string `json:"message"`
}

func (e *ApplyError) Error() string { return e.Msg }

// Is lets errors.Is(err, ErrNotFound) and friends see through an ApplyError.
func (e *ApplyError) Is(target error) bool {
	switch e.Kind {
	case "not_found":
		return target == ErrNotFound
	case "conflict":
		return target == ErrConflict
	case "invalid":
		return target == ErrInvalid
	case "unknown_command":
		return target == ErrUnknownCommand
	case "forbidden":
		return target == ErrForbidden
	case "halted":
		return target == ErrHalted
	}
	return false
}

// WrapApplyError turns any error into an ApplyError, keeping its kind.
func WrapApplyError(err error) *ApplyError {
	if err == nil {
		return nil
	}
	var ae *ApplyError
	if errors.As(err, &ae) {
		return ae
	}
	kind := "other"
	switch {
	case errors.Is(err, ErrNotFound):
		kind = "not_found"
	case errors.Is(err, ErrConflict):
		kind = "conflict"
	case errors.Is(err, ErrInvalid):
		kind = "invalid"
	case errors.Is(err, ErrUnknownCommand):
		kind = "unknown_command"
	case errors.Is(err, ErrForbidden):
		kind = "forbidden"
	case errors.Is(err, ErrHalted):
		kind = "halted"
	}
	return &ApplyError{Kind: kind, Msg: err.Error()}
}

// Result is what applying a command produced: the log index it was applied
// at and the handler's result, JSON-encoded so it can cross nodes.
type Result struct {
	Index uint64          `json:"index"`
	Value json.RawMessage `json:"value,omitempty"`
	Err   *ApplyError     `json:"error,omitempty"`
}

// Decode unmarshals the handler's result into v.
func (r Result) Decode(v any) error {
	if len(r.Value) == 0 {
		return nil
	}
	return json.Unmarshal(r.Value, v)
}

// A log entry holds one command as a JSON object, or a batch of commands
// as the byte 'B' followed by a JSON array.
const batchMarker = 'B'

func encodeEntry(cmds []Command) ([]byte, error) {
	if len(cmds) == 1 {
		return json.Marshal(cmds[0])
	}
	raw, err := json.Marshal(cmds)
	if err != nil {
		return nil, err
	}
	return append([]byte{batchMarker}, raw...), nil
}

func decodeEntry(data []byte) (cmds []Command, batch bool, err error) {
	if len(data) > 0 && data[0] == batchMarker {
		if err := json.Unmarshal(data[1:], &cmds); err != nil {
			return nil, true, err
		}
		if len(cmds) == 0 {
			return nil, true, errors.New("empty batch")
		}
		return cmds, true, nil
	}
	var c Command
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, false, err
	}
	return []Command{c}, false, nil
}

// NotFoundf, Conflictf and Invalidf build handler errors whose message is
// exactly the text given (no sentinel suffix) and which errors.Is still
// matches to ErrNotFound, ErrConflict and ErrInvalid.
func NotFoundf(format string, args ...any) error {
	return &ApplyError{Kind: "not_found", Msg: fmt.Sprintf(format, args...)}
}

func Conflictf(format string, args ...any) error {
	return &ApplyError{Kind: "conflict", Msg: fmt.Sprintf(format, args...)}
}

func Invalidf(format string, args ...any) error {
	return &ApplyError{Kind: "invalid", Msg: fmt.Sprintf(format, args...)}
}

// ErrForbidden is for commands that are well-formed but not allowed in the
// current state (deleting an enabled domain).
var ErrForbidden = errors.New("forbidden")

func Forbiddenf(format string, args ...any) error {
	return &ApplyError{Kind: "forbidden", Msg: fmt.Sprintf(format, args...)}
}
