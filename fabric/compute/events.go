package compute

import (
	"encoding/json"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/events/eventstate"
	"github.com/rackstack/rackstack/fabric/store"
)

// eventMeta is what a server command says about who did what, for the
// event log.
type eventMeta struct {
	ids     []string
	user    string
	request string
	action  string // "" for a node's report: recorded only when the status changed
	reason  string
	now     time.Time
}

// withEvents wraps a handler of server commands: once it has applied, the
// event log gets one event per server it touched whose status changed (or,
// for a user's action, whatever it did), in the same transaction.
func withEvents[C any](h func(*memdb.Txn, C) (any, error), meta func(C) eventMeta) func(*memdb.Txn, C) (any, error) {
	return func(tx *memdb.Txn, c C) (any, error) {
		m := meta(c)
		before := map[string]Server{}
		for _, id := range m.ids {
			if s := store.Get[Server](tx, tServers, id); s != nil {
				before[id] = *s
			}
		}
		out, err := h(tx, c)
		if err != nil {
			return out, err
		}
		for _, id := range m.ids {
			old, existed := before[id]
			ev := eventstate.Event{Time: m.now, ResourceType: eventstate.Server, ResourceID: id, UserID: m.user,
				RequestID: m.request, Action: m.action, From: old.Status, Reason: m.reason}
			s := store.Get[Server](tx, tServers, id)
			switch {
			case s == nil && !existed:
				continue
			case s == nil:
				ev.Project, ev.To = old.Project, "DELETED"
				if ev.Action == "" {
					ev.Action = "delete"
				}
			default:
				ev.Project, ev.To = s.Project, s.Status
				if s.Fault != nil && ev.Reason == "" && s.Status == "ERROR" {
					ev.Reason = s.Fault.Message
				}
			}
			if ev.Action == "" {
				if ev.From == ev.To {
					continue
				}
				ev.Action = "state"
				if ev.Reason == "" && ev.To == "SHUTOFF" && old.Want == "active" {
					ev.Reason = "the guest stopped on its own"
				}
			}
			if err := eventstate.Record(tx, ev); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
}

func createEvents(c serverCreateCmd) eventMeta {
	m := eventMeta{request: c.RequestID, action: "create", now: c.Now}
	for _, s := range c.Servers {
		m.ids = append(m.ids, s.ID)
		m.user = s.UserID
	}
	return m
}

func actionEvents(c serverActionCmd) eventMeta {
	return eventMeta{ids: []string{c.ID}, user: c.UserID, request: c.RequestID, action: c.Action, now: c.Now}
}

func rebuildEvents(c serverRebuildCmd) eventMeta {
	return eventMeta{ids: []string{c.ID}, user: c.UserID, request: c.RequestID, action: "rebuild", now: c.Now}
}

func reportEvents(c serverReportCmd) eventMeta {
	return eventMeta{ids: []string{c.ID}, request: c.RequestID, reason: c.Observed.Fault, now: c.Now}
}

// indexedCmd is a command that needs its Raft log index: a migration's
// integer id is the index of the command that opens it.
type indexedCmd[C any] interface {
	*C
	setIndex(uint64)
}

// withIndex is the handler of an indexed command C: decoded, given its
// log index, and applied with its events.
func withIndex[C any, P indexedCmd[C]](h func(*memdb.Txn, C) (any, error), meta func(C) eventMeta) func(*memdb.Txn, uint64, json.RawMessage) (any, error) {
	apply := withEvents(h, meta)
	return func(tx *memdb.Txn, index uint64, body json.RawMessage) (any, error) {
		var c C
		if err := store.DecodeBody(body, &c); err != nil {
			return nil, err
		}
		P(&c).setIndex(index)
		return apply(tx, c)
	}
}

func (c *serverResizeCmd) setIndex(i uint64) { c.index = i }
