// Package eventstate is the event log in the replicated state: every state
// change of a resource, with its time, actor, request id and reason, kept
// for a bounded time and a bounded number of rows. Services record events
// from their FSM handlers, in the transaction of the change itself, so an
// event exists exactly when its change does. It holds rows and the one
// function that appends them; the API that lists them is fabric/events.
package eventstate

import (
	"fmt"
	"sort"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// Table names.
const (
	TableEvents = "events"
	tableCount  = "events_count"
)

// Bounds of the log: an event older than Retention than the newest goes,
// and the oldest go beyond MaxRows.
const (
	Retention = 7 * 24 * time.Hour
	MaxRows   = 50000
)

// Resource types.
const (
	Server        = "server"
	Volume        = "volume"
	Snapshot      = "snapshot"
	Backup        = "backup"
	Network       = "network"
	Subnet        = "subnet"
	Port          = "port"
	Router        = "router"
	FloatingIP    = "floatingip"
	SecurityGroup = "security_group"
	SGRule        = "security_group_rule"
	SubnetPool    = "subnetpool"
	Flavor        = "flavor"
	Keypair       = "keypair"
	ServerGroup   = "server_group"
	Image         = "image"
	Container     = "container"
	BaremetalNode = "baremetal_node"
	// Identity's resources belong to no project: only admins read their
	// events.
	Domain          = "domain"
	Project         = "project"
	User            = "user"
	Group           = "group"
	GroupMembership = "group_membership"
	Role            = "role"
	RoleImplication = "role_implication"
	RoleAssignment  = "role_assignment"
	Credential      = "credential"
	Region          = "region"
	Service         = "service"
	Endpoint        = "endpoint"
)

// Event is one change of one resource.
type Event struct {
	// ID sorts by time: the nanosecond time, then the resource and a
	// sequence number among equal times.
	ID           string    `json:"id"`
	Time         time.Time `json:"time"`
	ResourceType string    `json:"resource_type"`
	ResourceID   string    `json:"resource_id"`
	// Project owns the resource; "" for the cloud's own (nodes).
	Project string `json:"project_id,omitempty"`
	// UserID is who asked; "" when the system acted on its own (a node's
	// report, a guest that shut down or crashed).
	UserID    string `json:"user_id,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	// Action is what happened: create, delete, stop, reboot, ... or
	// "state" for a change the system observed.
	Action string `json:"action"`
	// From and To are the resource's status before and after ("" before a
	// create, DELETED after a removal).
	From   string `json:"from,omitempty"`
	To     string `json:"to,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Command is the state command that made the change, where the
	// event log saw it through Observe.
	Command string `json:"command,omitempty"`
}

type count struct {
	ID string `json:"id"`
	N  int    `json:"n"`
}

// Schema is the event log's part of the state: tables, no commands (events
// are written by other services' handlers).
func Schema() store.Schema {
	return store.Schema{Tables: []store.Table{
		store.NewTable(TableEvents, &Event{}, store.StringIndex("resource", "ResourceID", false)),
		store.NewTable(tableCount, &count{}),
	}}
}

// Record appends ev in tx and drops what falls out of the bounds. Its time
// is the command's (never a clock read here). A state without the event
// tables (a service's unit test that does not include Schema) records
// nothing.
func Record(tx *memdb.Txn, ev Event) error {
	return record(tx, ev, Retention, MaxRows)
}

func record(tx *memdb.Txn, ev Event, retention time.Duration, maxRows int) error {
	if _, err := tx.First(TableEvents, "id"); err != nil {
		return nil // no events table in this state
	}
	base := fmt.Sprintf("%019d-%s", ev.Time.UnixNano(), ev.ResourceID)
	ev.ID = base
	for i := 2; store.Get[Event](tx, TableEvents, ev.ID) != nil; i++ {
		ev.ID = fmt.Sprintf("%s-%d", base, i)
	}
	if err := tx.Insert(TableEvents, &ev); err != nil {
		return fmt.Errorf("record event: %w", err)
	}
	c := count{ID: "events"}
	if old := store.Get[count](tx, tableCount, c.ID); old != nil {
		c = *old
	}
	c.N++
	cutoff := ev.Time.Add(-retention)
	for {
		raw, err := tx.First(TableEvents, "id")
		if err != nil {
			return fmt.Errorf("read events: %w", err)
		}
		oldest, _ := raw.(*Event)
		if oldest == nil || (c.N <= maxRows && !oldest.Time.Before(cutoff)) {
			break
		}
		if err := tx.Delete(TableEvents, oldest); err != nil {
			return fmt.Errorf("expire event: %w", err)
		}
		c.N--
	}
	return tx.Insert(tableCount, &c)
}

// Filter selects events to list.
type Filter struct {
	ResourceID string
	// Project, if set, keeps only that project's events.
	Project string
	// Since keeps events after it (exclusive).
	Since time.Time
	// Limit keeps the newest Limit of them (0: all).
	Limit int
}

// List returns the events f selects, oldest first.
func List(tx *memdb.Txn, f Filter) []Event {
	var rows []*Event
	if f.ResourceID != "" {
		rows = store.All[Event](tx, TableEvents, "resource", f.ResourceID)
	} else {
		rows = store.All[Event](tx, TableEvents, "id")
	}
	out := []Event{}
	for _, e := range rows {
		if (f.Project != "" && e.Project != f.Project) || !e.Time.After(f.Since) {
			continue
		}
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[len(out)-f.Limit:]
	}
	return out
}
