package eventstate

import (
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// Resource says how the rows of one table appear in the event log.
type Resource struct {
	Table string
	Type  string // Volume, Network, ...
	// Describe reads a row (a pointer to the table's row type).
	Describe func(row any) Subject
	// Create and Delete name the actions of a row's insert and removal
	// where "create" and "delete" would read wrong (a role assignment is
	// granted and revoked); empty for those.
	Create, Delete string
	// SecretChange is the reason of an event whose only change is the
	// row's Secret (a user's password): "" when such a change is none.
	SecretChange string
}

// Subject is what the event log reads of a row.
type Subject struct {
	ID      string
	Project string
	// Status is the resource's status; a change of it is an event.
	Status string
	// Detail is the rest of the row worth an event when it changes: what
	// a volume is attached to, which port a floating IP points at.
	Detail string
	// Reason says why the resource is in its status (an error's cause).
	Reason string
	// Secret is compared, never recorded: what must stay out of the log
	// (a password's hash) but whose change is an event (Resource's
	// SecretChange says so).
	Secret string
}

// Observe is the event log's store.Observer for resources: a command
// that creates or deletes one of their rows, or changes its status or
// detail, records one event, whichever command and whichever service it
// was (a server's removal releasing its volumes included). The event's
// time and actor are the command's origin; a command without one (an
// entry older than origins) records nothing, as its time is unknown.
//
// The action is create or delete; otherwise update when a user asked,
// and state when the system changed the row by itself (a node agent's
// report, a worker finishing).
func Observe(resources ...Resource) store.Observer {
	byTable := map[string]Resource{}
	for _, r := range resources {
		byTable[r.Table] = r
	}
	return func(tx *memdb.Txn, a store.Applied) error {
		if a.Origin.Time.IsZero() {
			return nil
		}
		for _, ch := range a.Changes {
			r, ok := byTable[ch.Table]
			if !ok {
				continue
			}
			ev, ok := r.event(ch, a)
			if !ok {
				continue
			}
			if err := Record(tx, ev); err != nil {
				return err
			}
		}
		return nil
	}
}

func (r Resource) event(ch memdb.Change, a store.Applied) (Event, bool) {
	var before, after Subject
	if ch.Before != nil {
		before = r.Describe(ch.Before)
	}
	if ch.After != nil {
		after = r.Describe(ch.After)
	}
	ev := Event{Time: a.Origin.Time, ResourceType: r.Type, ResourceID: after.ID, Project: after.Project,
		UserID: a.Origin.User, RequestID: a.Origin.RequestID, Command: a.Command,
		From: before.Status, To: after.Status, Reason: after.Reason}
	secretOnly := r.SecretChange != "" && before.Secret != after.Secret
	switch {
	case ch.Created():
		ev.Action = or(r.Create, "create")
	case ch.Deleted():
		ev.Action, ev.To, ev.Reason = or(r.Delete, "delete"), "DELETED", ""
		ev.ResourceID, ev.Project = before.ID, before.Project
		return ev, true
	case before.Status == after.Status && before.Detail == after.Detail && !secretOnly:
		return Event{}, false
	case a.Origin.User != "":
		ev.Action = "update"
	default:
		ev.Action = "state"
	}
	switch {
	case ev.Reason != "":
	case before.Detail != after.Detail:
		ev.Reason = detailChange(before.Detail, after.Detail)
	case secretOnly && !ch.Created():
		ev.Reason = r.SecretChange
	}
	return ev, true
}

func detailChange(from, to string) string {
	switch {
	case from == "":
		return to
	case to == "":
		return "no longer " + from
	}
	return from + " → " + to
}

func or(s, otherwise string) string {
	if s == "" {
		return otherwise
	}
	return s
}
