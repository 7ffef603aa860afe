// Package events serves the event log: GET /rackstack/v1/events lists the
// state changes of resources (eventstate) and the bare-metal nodes' own
// history (Ironic's node history, kept on each node's row), newest last,
// scoped to the caller's project unless the caller is an admin.
package events

import (
	"context"
	"net/http"
	"sort"
	"strconv"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/baremetal/bmstate"
	"github.com/rackstack/rackstack/fabric/events/eventstate"
	"github.com/rackstack/rackstack/fabric/store"
)

// Event is one entry of the log.
type Event = eventstate.Event

// DefaultLimit is how many events a list returns without ?limit.
const DefaultLimit = 1000

// Handler serves GET /rackstack/v1/events behind api.RequireAuth.
type Handler struct {
	// Read is a read of the state with read-your-writes (cluster.Node.Read).
	Read func(ctx context.Context) (*memdb.Txn, error)
}

// List is the body of a list.
type List struct {
	Events []Event `json:"events"`
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := h.serve(w, r); err != nil {
		api.Fail(w, r, api.JSONError, err)
	}
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) error {
	p := api.PrincipalFrom(r.Context())
	if p == nil {
		return api.ErrUnauthorized
	}
	q := r.URL.Query()
	f := eventstate.Filter{ResourceID: q.Get("resource"), Limit: DefaultLimit}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return api.BadField("since", "%q is not an RFC 3339 time", v)
		}
		f.Since = t
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return api.BadField("limit", "%q is not a positive integer", v)
		}
		f.Limit = n
	}
	for k := range q {
		if k != "resource" && k != "since" && k != "limit" {
			return api.BadField(k, "unknown parameter (resource, since and limit are)")
		}
	}
	if !p.IsAdmin() {
		if p.ProjectID == "" {
			return api.Errorf(http.StatusForbidden, "a project-scoped token is needed to list events")
		}
		f.Project = p.ProjectID
	}
	tx, err := h.Read(r.Context())
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, List{Events: Collect(tx, f)})
	return nil
}

// Collect returns the events f selects from the log and the bare-metal
// nodes' histories, oldest first.
func Collect(tx *memdb.Txn, f eventstate.Filter) []Event {
	limit := f.Limit
	f.Limit = 0
	out := eventstate.List(tx, f)
	out = append(out, nodeHistory(tx, f)...)
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		return out[i].ID < out[j].ID
	})
	if limit > 0 && len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out
}

// nodeHistory turns the bare-metal nodes' history into events. A node
// belongs to no project: a project sees the history of a node only while
// it owns or leases it.
func nodeHistory(tx *memdb.Txn, f eventstate.Filter) []Event {
	var nodes []*bmstate.Node
	if f.ResourceID != "" {
		if n := store.Get[bmstate.Node](tx, bmstate.NodeTable, f.ResourceID); n != nil {
			nodes = append(nodes, n)
		}
	} else {
		nodes = store.All[bmstate.Node](tx, bmstate.NodeTable, "id")
	}
	var out []Event
	for _, n := range nodes {
		if f.Project != "" && n.Owner != f.Project && n.Lessee != f.Project {
			continue
		}
		for _, h := range n.History {
			if !h.CreatedAt.After(f.Since) {
				continue
			}
			action := h.EventType
			out = append(out, Event{ID: h.ID, Time: h.CreatedAt, ResourceType: eventstate.BaremetalNode, ResourceID: n.ID,
				Project: n.Owner, UserID: h.User, Action: action, Reason: h.Severity + ": " + h.Event})
		}
	}
	return out
}
