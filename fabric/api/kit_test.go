package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rackstack/rackstack/fabric/store"
)

type tokens map[string]*Principal

func (t tokens) Validate(_ context.Context, tok string) (*Principal, error) {
	if p, ok := t[tok]; ok {
		return p, nil
	}
	return nil, errors.New("no such token")
}

// problemBody writes the problem as JSON so tests can read every part.
func problemBody(w http.ResponseWriter, _ *http.Request, p Problem) {
	JSON(w, p.Status, map[string]any{"status": p.Status, "fault": p.Fault, "message": p.Msg, "field": p.Field})
}

func TestRoutesCheckAccessAndWriteErrorsInTheServiceFormat(t *testing.T) {
	auth := tokens{
		"admin":  {UserID: "a", ProjectID: "p1", Roles: []string{"admin"}},
		"member": {UserID: "m", ProjectID: "p1", Roles: []string{"member"}},
		"reader": {UserID: "r", ProjectID: "p1", Roles: []string{"reader"}},
		"noproj": {UserID: "u", Roles: []string{"member"}},
		// System-scoped tokens hold their roles on the whole cloud and
		// have no project.
		"sysadmin":  {UserID: "sa", System: true, Roles: []string{"admin", "member", "reader"}},
		"sysreader": {UserID: "sr", System: true, Roles: []string{"reader"}},
	}
	ok := func(w http.ResponseWriter, r *http.Request) error { w.WriteHeader(http.StatusNoContent); return nil }
	routes := []Route{
		{Method: "GET", Path: "/public", Access: Public, Handle: ok},
		{Method: "GET", Path: "/any", Access: Authenticated, Handle: ok},
		{Method: "GET", Path: "/read", Access: Reader, Rule: "thing:get", Handle: ok},
		{Method: "POST", Path: "/write", Access: Member, Rule: "thing:create", Handle: ok},
		{Method: "DELETE", Path: "/admin", Access: Admin, Rule: "thing:delete", Handle: ok},
		{Method: "GET", Path: "/fault", Access: Authenticated, Handle: func(http.ResponseWriter, *http.Request) error {
			return store.Fault(store.KindNotFound, "ThingNotFound", "Thing %s could not be found.", "x")
		}},
		{Method: "GET", Path: "/bug", Access: Authenticated, Handle: func(http.ResponseWriter, *http.Request) error {
			return errors.New("disk on fire at /var/secret")
		}},
	}
	r := chi.NewRouter()
	Routes{Auth: auth, Errors: problemBody, Denied: func(rule string) error {
		return &Error{Status: http.StatusForbidden, Fault: "PolicyNotAuthorized", Msg: "(rule:" + rule + ") is disallowed by policy."}
	}}.Mount(r, routes)
	var logs bytes.Buffer
	h := NewMiddleware(slog.New(slog.NewTextHandler(&logs, nil)), prometheus.NewRegistry()).Handler(r)

	tests := map[string]struct {
		method, path, token string
		status              int
		fault, msg          string
	}{
		"public without token":    {"GET", "/public", "", 204, "", ""},
		"any needs a token":       {"GET", "/any", "", 401, "", "requires authentication"},
		"bad token":               {"GET", "/any", "nope", 401, "", "requires authentication"},
		"reader reads":            {"GET", "/read", "reader", 204, "", ""},
		"unscoped cannot read":    {"GET", "/read", "noproj", 403, "PolicyNotAuthorized", "thing:get"},
		"reader cannot write":     {"POST", "/write", "reader", 403, "PolicyNotAuthorized", "thing:create"},
		"member writes":           {"POST", "/write", "member", 204, "", ""},
		"member is not admin":     {"DELETE", "/admin", "member", 403, "PolicyNotAuthorized", "thing:delete"},
		"admin":                   {"DELETE", "/admin", "admin", 204, "", ""},
		"system admin is admin":   {"DELETE", "/admin", "sysadmin", 204, "", ""},
		"system admin reads":      {"GET", "/read", "sysadmin", 204, "", ""},
		"system reader reads":     {"GET", "/read", "sysreader", 204, "", ""},
		"system reader not admin": {"DELETE", "/admin", "sysreader", 403, "PolicyNotAuthorized", "thing:delete"},
		"system admin no project": {"POST", "/write", "sysadmin", 403, "PolicyNotAuthorized", "thing:create"},
		"system reader no write":  {"POST", "/write", "sysreader", 403, "PolicyNotAuthorized", "thing:create"},
		"fault travels as data":   {"GET", "/fault", "member", 404, "ThingNotFound", "Thing x could not be found."},
		"500 hides its cause":     {"GET", "/bug", "member", 500, "", "An unexpected error"},
		"unknown route is chi's":  {"GET", "/nowhere", "member", 404, "", ""},
		"method not on the route": {"PUT", "/any", "member", 405, "", ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, nil)
			if tc.token != "" {
				req.Header.Set("X-Auth-Token", tc.token)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if tc.msg == "" {
				return
			}
			var body map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			if body["fault"] != tc.fault || !strings.Contains(body["message"].(string), tc.msg) {
				t.Fatalf("body %v, want fault %q and message with %q", body, tc.fault, tc.msg)
			}
			if strings.Contains(rec.Body.String(), "/var/secret") {
				t.Fatalf("a 500 leaked its cause: %s", rec.Body)
			}
		})
	}
	if !strings.Contains(logs.String(), "disk on fire") || !strings.Contains(logs.String(), "request_id=req-") {
		t.Fatalf("the 500's cause was not logged with its request id:\n%s", logs.String())
	}
}

func TestApplyErrorKeepsKindFaultAndFieldAcrossTheWire(t *testing.T) {
	orig := &store.ApplyError{Kind: store.KindOverQuota, Fault: "overLimit", Field: "instances", Msg: "Quota exceeded for instances"}
	raw, err := json.Marshal(store.Result{Err: orig})
	if err != nil {
		t.Fatal(err)
	}
	var back store.Result
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	var err2 error = back.Err
	if !errors.Is(err2, store.ErrOverQuota) || errors.Is(err2, store.ErrConflict) {
		t.Fatalf("errors.Is lost the kind: %#v", back.Err)
	}
	p := ProblemOf(err2)
	if p != (Problem{Status: 403, Fault: "overLimit", Msg: "Quota exceeded for instances", Field: "instances"}) {
		t.Fatalf("problem %+v", p)
	}
}

func TestProblemOfMapsEveryKind(t *testing.T) {
	tests := map[string]struct {
		err    error
		status int
	}{
		"not found":     {store.NotFoundf("x"), 404},
		"conflict":      {store.Conflictf("x"), 409},
		"invalid":       {store.Invalidf("x"), 400},
		"forbidden":     {store.Forbiddenf("x"), 403},
		"wrapped":       {errors.Join(errors.New("ctx"), store.ErrNotFound), 404},
		"api error":     {Errorf(http.StatusTeapot, "tea"), 418},
		"no leader":     {store.ErrNoLeader, 503},
		"halted node":   {fmt.Errorf("read: %w", &store.HaltError{Index: 9, Reason: "x"}), 503},
		"halted leader": {store.WrapApplyError(store.Fault(store.KindHalted, "", "x")), 503},
		"unknown cmd":   {store.Fault(store.KindUnknownCommand, "", "x"), 500},
		"plain failure": {errors.New("boom"), 500},
		"unauthorized":  {ErrUnauthorized, 401},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := ProblemOf(tc.err).Status; got != tc.status {
				t.Fatalf("status %d, want %d", got, tc.status)
			}
		})
	}
}

// neutronish words input errors the way a service would.
type neutronish struct{}

func (neutronish) BadField(f string, _ any, reason string) error {
	return &Error{Status: 400, Fault: "HTTPBadRequest", Field: f, Msg: "Invalid input for " + f + ". Reason: " + reason + "."}
}

func (neutronish) Missing(f string) error {
	return &Error{Status: 400, Field: f, Msg: "'" + f + "' is a required property"}
}

func TestInputNamesTheFieldAtFault(t *testing.T) {
	tests := map[string]struct {
		obj   string
		read  func(in *Input)
		field string
	}{
		"ok": {`{"name":"a","n":3,"b":"true","l":["x"]}`, func(in *Input) {
			in.Str("name", "", 10)
			in.Int("n", 0, 5)
			in.Bool("b", false)
			in.Strs("l")
		}, ""},
		"wrong type":       {`{"name":3}`, func(in *Input) { in.Str("name", "", 10) }, "name"},
		"too long":         {`{"name":"abcdef"}`, func(in *Input) { in.Str("name", "", 3) }, "name"},
		"NUL":              {`{"name":"a\u0000b"}`, func(in *Input) { in.Str("name", "", 0) }, "name"},
		"CRLF":             {`{"name":"a\r\nb"}`, func(in *Input) { in.Str("name", "", 0) }, "name"},
		"missing":          {`{}`, func(in *Input) { in.Required("name", 0) }, "name"},
		"empty required":   {`{"name":"  "}`, func(in *Input) { in.Required("name", 0) }, "name"},
		"not an int":       {`{"n":1.5}`, func(in *Input) { in.Int("n", 0, 5) }, "n"},
		"over max":         {`{"n":6}`, func(in *Input) { in.Int("n", 0, 5) }, "n"},
		"not a bool":       {`{"b":"maybe"}`, func(in *Input) { in.Bool("b", false) }, "b"},
		"list of non-text": {`{"l":[1]}`, func(in *Input) { in.Strs("l") }, "l"},
		"first error wins": {`{"a":1,"b":"x"}`, func(in *Input) { in.Str("a", "", 0); in.Bool("b", false) }, "a"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var o Object
			if err := json.Unmarshal([]byte(tc.obj), &o); err != nil {
				t.Fatal(err)
			}
			in := NewInput(o, neutronish{})
			tc.read(in)
			if tc.field == "" {
				if in.Err != nil {
					t.Fatal(in.Err)
				}
				return
			}
			p := ProblemOf(in.Err)
			if p.Status != 400 || p.Field != tc.field || !strings.Contains(p.Msg, tc.field) {
				t.Fatalf("problem %+v, want a 400 naming %q", p, tc.field)
			}
		})
	}
}

type thing struct {
	ID, Name, Project string
	Size              int
}

func TestCollectionListsAndShowsLikeOpenStack(t *testing.T) {
	put := func(tx *memdb.Txn, _ uint64, body json.RawMessage) (any, error) {
		var th thing
		if err := store.DecodeBody(body, &th); err != nil {
			return nil, err
		}
		if store.Get[thing](tx, "things", th.ID) != nil {
			return nil, store.Fault(store.KindConflict, "ThingExists", "thing %s exists", th.ID)
		}
		return th.ID, tx.Insert("things", &th)
	}
	local, err := store.NewLocal(store.Schema{Tables: []store.Table{store.NewTable("things", &thing{})}, Handlers: map[string]store.Handler{"thing.put": put}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, th := range []thing{{"a", "alpha", "p1", 3}, {"b", "beta", "p1", 1}, {"c", "gamma", "p1", 2}, {"d", "delta", "p2", 9}} {
		var id string
		tx, err := Propose(ctx, local, "thing.put", th, &id)
		if err != nil || id != th.ID || store.Get[thing](tx, "things", th.ID) == nil {
			t.Fatalf("propose %s: id %q, err %v: the write is not read back", th.ID, id, err)
		}
	}
	if _, err := Propose(ctx, local, "thing.put", thing{ID: "a"}, nil); !Rejected(err) || ProblemOf(err).Fault != "ThingExists" {
		t.Fatalf("a refused command: %v, want a rejection with its fault", err)
	}
	if Rejected(context.DeadlineExceeded) {
		t.Fatal("a timeout is an unknown outcome, not a rejection")
	}
	coll := Collection[thing]{
		Table: "things", One: "thing",
		Project: func(th *thing) string { return th.Project },
		View: func(_ *memdb.Txn, _ *Principal, th *thing) View {
			return View{"id": th.ID, "name": th.Name, "size": th.Size, "project_id": th.Project}
		},
		NotFound: func(id string) error {
			return store.Fault(store.KindNotFound, "ThingNotFound", "Thing %s could not be found.", id)
		},
		Listing: Listing{Key: "things", Word: neutronish{}},
	}
	member := &Principal{ProjectID: "p1", Roles: []string{"member"}}
	get := func(query string) (int, map[string]any) {
		req := httptest.NewRequest("GET", "/things"+query, nil)
		req = req.WithContext(WithPrincipal(req.Context(), member))
		rec := httptest.NewRecorder()
		if err := coll.List(rec, req, local.State.Txn()); err != nil {
			return ProblemOf(err).Status, nil
		}
		var body map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		return rec.Code, body
	}
	names := func(body map[string]any) string {
		var out []string
		for _, v := range body["things"].([]any) {
			out = append(out, v.(map[string]any)["name"].(string))
		}
		return strings.Join(out, ",")
	}
	tests := map[string]struct {
		query  string
		status int
		want   string
	}{
		"own project only, by id":  {"", 200, "alpha,beta,gamma"},
		"filter":                   {"?name=beta", 200, "beta"},
		"alternatives":             {"?name=beta&name=gamma", 200, "beta,gamma"},
		"contains":                 {"?name__contains=mm", 200, "gamma"},
		"icontains":                {"?name__icontains=ALP", 200, "alpha"},
		"startswith":               {"?name__startswith=b", 200, "beta"},
		"sort":                     {"?sort_key=size&sort_dir=desc", 200, "alpha,gamma,beta"},
		"limit":                    {"?limit=2", 200, "alpha,beta"},
		"marker":                   {"?limit=2&marker=b", 200, "gamma"},
		"bad sort key":             {"?sort_key=colour", 400, ""},
		"bad limit":                {"?limit=-1", 400, ""},
		"other project's name":     {"?name=delta", 200, ""},
		"unknown filter ignored":   {"?colour=red", 200, "alpha,beta,gamma"},
		"sort dirs without keys":   {"?sort_dir=asc", 400, ""},
		"fields keep what's asked": {"?fields=name", 200, "alpha,beta,gamma"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			status, body := get(tc.query)
			if status != tc.status {
				t.Fatalf("status %d, want %d", status, tc.status)
			}
			if status == 200 && names(body) != tc.want {
				t.Fatalf("got %q, want %q", names(body), tc.want)
			}
		})
	}
	if _, body := get("?fields=name"); len(body["things"].([]any)[0].(map[string]any)) != 1 {
		t.Fatalf("fields=name gave %v", body["things"])
	}
	_, body := get("?limit=2")
	links, _ := body["things_links"].([]any)
	if len(links) != 1 || !strings.Contains(links[0].(map[string]any)["href"].(string), "marker=b") {
		t.Fatalf("links %v, want a next link with marker=b", body["things_links"])
	}
	if _, err := coll.Get(local.State.Txn(), member, "d"); ProblemOf(err).Fault != "ThingNotFound" {
		t.Fatalf("another project's row: %v, want ThingNotFound", err)
	}
}
