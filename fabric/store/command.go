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
	// Origin is set by the proposer (Proposal); entries written before
	// it existed have none.
	Origin *Origin `json:"origin,omitempty"`
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
	ErrForbidden      = errors.New("forbidden")
	ErrOverQuota      = errors.New("over quota")
	ErrPrecondition   = errors.New("precondition failed")
	ErrUnknownCommand = errors.New("unknown command")
	ErrNotLeader      = errors.New("not the leader")
	ErrNoLeader       = errors.New("no leader")
	// ErrHalted: this node stopped applying the log (HaltError says why).
	ErrHalted = errors.New("state halted")
	// ErrUnavailable: every node refused the command until the cluster
	// can apply it (KindUnavailable).
	ErrUnavailable = errors.New("unavailable")
	// ErrOutcomeUnknown means a proposal was abandoned after it may have
	// reached the log: it may still commit. Callers must not undo its
	// effects as if it had failed, nor blindly repeat it.
	ErrOutcomeUnknown = errors.New("outcome unknown")
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

// Kind is what went wrong, in terms every service maps to a status.
type Kind string

const (
	KindNotFound       Kind = "not_found"
	KindConflict       Kind = "conflict"
	KindInvalid        Kind = "invalid"
	KindForbidden      Kind = "forbidden" // well-formed but not allowed (deleting an enabled domain)
	KindOverQuota      Kind = "over_quota"
	KindPrecondition   Kind = "precondition_failed" // the row is not at the revision the client said (If-Match)
	KindUnknownCommand Kind = "unknown_command"
	KindHalted         Kind = "halted" // the leader's state halted: the outcome is unknown
	// KindUnavailable: every node refused the command, by a Gate, because
	// the cluster cannot apply it yet (a member's rackd does not know it).
	// Unlike KindHalted the outcome is known: nothing was applied.
	KindUnavailable Kind = "unavailable"
	KindOther       Kind = "other"
)

var kindSentinels = map[Kind]error{
	KindNotFound: ErrNotFound, KindConflict: ErrConflict, KindInvalid: ErrInvalid, KindForbidden: ErrForbidden,
	KindOverQuota: ErrOverQuota, KindUnknownCommand: ErrUnknownCommand, KindPrecondition: ErrPrecondition,
	KindHalted: ErrHalted, KindUnavailable: ErrUnavailable,
}

// ApplyError carries a handler's error across the log and across nodes so
// that errors.Is keeps working on the proposer's side. Fault is the
// service's own name for the error (Neutron's "NetworkNotFound", Nova's
// "overLimit"): it travels as data, so no handler parses it out of Msg.
// Field names the request attribute at fault, where there is one.
type ApplyError struct {
	Kind  Kind   `json:"kind"`
	Fault string `json:"fault,omitempty"`
	Field string `json:"field,omitempty"`
	Msg   string `json:"message"`
}

func (e *ApplyError) Error() string { return e.Msg }

// Is lets errors.Is(err, ErrNotFound) and friends see through an ApplyError.
func (e *ApplyError) Is(target error) bool {
	s, ok := kindSentinels[e.Kind]
	return ok && s == target
}

// KindOf returns the kind of err: an ApplyError's own, or the kind whose
// sentinel err wraps; KindOther for anything else.
func KindOf(err error) Kind {
	var ae *ApplyError
	if errors.As(err, &ae) {
		return ae.Kind
	}
	for k, s := range kindSentinels {
		if errors.Is(err, s) {
			return k
		}
	}
	return KindOther
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
	return &ApplyError{Kind: KindOf(err), Msg: err.Error()}
}

// Fault builds a handler error of kind whose service-specific name is
// fault ("" for the kind's default) and whose message is exactly the text
// given.
func Fault(kind Kind, fault, format string, args ...any) *ApplyError {
	return &ApplyError{Kind: kind, Fault: fault, Msg: fmt.Sprintf(format, args...)}
}

// Result is what applying a command produced: the log index it was applied
// at and the handler's result, JSON-encoded so it can cross nodes.
type Result struct {
	Index uint64          `json:"index"`
	Value json.RawMessage `json:"value,omitempty"`
	Err   *ApplyError     `json:"error,omitempty"`
}

// ResultError is the error a proposer sees for r: nil, or the state
// machine's refusal (an *ApplyError: the command was applied and rejected,
// nothing of it is in the state). A result from a leader whose state
// halted is no refusal: the leader did not apply the command, but it is in
// the log and other nodes may have applied it. That comes back as
// ErrOutcomeUnknown (and ErrHalted), with no *ApplyError in its chain, so
// that no caller undoes its side effects as if it had been refused.
func ResultError(r Result) error {
	switch {
	case r.Err == nil:
		return nil
	case r.Err.Kind == KindHalted:
		return fmt.Errorf("%w (%w): %s", ErrOutcomeUnknown, ErrHalted, r.Err.Msg)
	}
	return r.Err
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
	if cmds, batch, ok := parseEntry(data); ok {
		return cmds, batch, nil
	}
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

// NotFoundf, Conflictf, Invalidf and Forbiddenf build handler errors
// whose message is exactly the text given (no sentinel suffix) and which
// errors.Is still matches to the kind's sentinel.
func NotFoundf(format string, args ...any) error { return Fault(KindNotFound, "", format, args...) }

func Conflictf(format string, args ...any) error { return Fault(KindConflict, "", format, args...) }

func Invalidf(format string, args ...any) error { return Fault(KindInvalid, "", format, args...) }

func Forbiddenf(format string, args ...any) error { return Fault(KindForbidden, "", format, args...) }
