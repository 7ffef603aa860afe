package events

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/baremetal/bmstate"
	"github.com/rackstack/rackstack/fabric/events/eventstate"
	"github.com/rackstack/rackstack/fabric/store"
)

func fixture(t *testing.T) *Handler {
	t.Helper()
	sch := eventstate.Schema()
	sch.Handlers = map[string]store.Handler{"test_record": store.Typed(func(tx *memdb.Txn, ev eventstate.Event) (any, error) {
		return nil, eventstate.Record(tx, ev)
	})}
	l, err := store.NewLocal(sch, bmstate.Schema())
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	for i, e := range []eventstate.Event{
		{ResourceID: "s1", Project: "p1", Action: "create"},
		{ResourceID: "s2", Project: "p2", Action: "create"},
		{ResourceID: "s1", Project: "p1", Action: "delete"},
	} {
		e.Time = t0.Add(time.Duration(i) * time.Minute)
		if _, err := l.Propose(context.Background(), "test_record", e); err != nil {
			t.Fatal(err)
		}
	}
	n := bmstate.Node{ID: "node-1", ProvisionState: bmstate.StateEnroll, Driver: "fake-hardware", CreatedAt: t0}
	n.Record(bmstate.HistoryEvent{ID: "h1", CreatedAt: t0.Add(90 * time.Second), Severity: "ERROR", EventType: "power", Event: "BMC timed out"})
	if _, err := l.Propose(context.Background(), bmstate.CmdCreateNode, bmstate.CreateNodeCmd{Row: n}); err != nil {
		t.Fatal(err)
	}
	return &Handler{Read: l.Read}
}

func list(t *testing.T, h *Handler, p *api.Principal, query string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/rackstack/v1/events?"+query, nil)
	req = req.WithContext(api.WithPrincipal(req.Context(), p))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		return rec.Code, rec.Body.String()
	}
	var body List
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range body.Events {
		out = append(out, e.ResourceID+":"+e.Action)
	}
	return 200, strings.Join(out, " ")
}

func TestEventsAreScopedToTheProject(t *testing.T) {
	h := fixture(t)
	admin := &api.Principal{ProjectID: "adm", Roles: []string{"admin"}}
	p1 := &api.Principal{ProjectID: "p1", Roles: []string{"reader"}}
	for name, tc := range map[string]struct {
		who    *api.Principal
		query  string
		status int
		want   string
	}{
		"admin sees all, nodes' history too": {admin, "", 200, "s1:create s2:create node-1:power s1:delete"},
		"a project sees its own":             {p1, "", 200, "s1:create s1:delete"},
		"another project's resource":         {p1, "resource=s2", 200, ""},
		"one resource":                       {admin, "resource=node-1", 200, "node-1:power"},
		"since":                              {admin, "since=2026-12-05T00:01:00Z", 200, "node-1:power s1:delete"},
		"limit keeps the newest":             {admin, "limit=1", 200, "s1:delete"},
		"bad since":                          {admin, "since=yesterday", 400, "since"},
		"unknown parameter":                  {admin, "project=p1", 400, "project"},
	} {
		t.Run(name, func(t *testing.T) {
			code, got := list(t, h, tc.who, tc.query)
			if code != tc.status || (code == 200 && got != tc.want) || (code != 200 && !strings.Contains(got, tc.want)) {
				t.Fatalf("%d %q, want %d %q", code, got, tc.status, tc.want)
			}
		})
	}
}
