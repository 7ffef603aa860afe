package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rackstack/rackstack/fabric/store"
)

func TestDecodeNamesTheProblem(t *testing.T) {
	type body struct {
		Name  string `json:"name"`
		Count int    `json:"count"`
	}
	tests := map[string]struct {
		in     string
		strict bool
		status int
		want   string
	}{
		"ok":            {`{"name":"a","count":1}`, true, 0, ""},
		"empty":         {``, true, 400, "empty"},
		"syntax":        {`{"name":`, true, 400, "malformed"},
		"wrong type":    {`{"count":"x"}`, true, 400, "count"},
		"unknown field": {`{"nme":"a"}`, true, 400, "nme"},
		"loose unknown": {`{"nme":"a"}`, false, 0, ""},
		"trailing":      {`{"name":"a"} {}`, true, 400, "trailing"},
		"too big":       {`{"name":"` + strings.Repeat("x", MaxBodyBytes) + `"}`, true, 413, "exceeds"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tc.in))
			var b body
			var err error
			if tc.strict {
				err = Decode(r, &b)
			} else {
				err = DecodeLoose(r, &b)
			}
			if tc.status == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if StatusOf(err) != tc.status || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v (status %d), want %d mentioning %q", err, StatusOf(err), tc.status, tc.want)
			}
		})
	}
}

func TestStatusOf(t *testing.T) {
	tests := map[string]struct {
		err  error
		want int
	}{
		"api error":        {Errorf(418, "teapot"), 418},
		"store not found":  {store.NotFoundf("x"), 404},
		"store conflict":   {fmt.Errorf("wrapped: %w", store.ErrConflict), 409},
		"store invalid":    {store.Invalidf("bad"), 400},
		"store forbidden":  {store.Forbiddenf("no"), 403},
		"precondition":     {store.Fault(store.KindPrecondition, "", "stale"), 412},
		"no leader":        {store.ErrNoLeader, 503},
		"unauthorized":     {ErrUnauthorized, 401},
		"anything else":    {errors.New("boom"), 500},
		"over the network": {store.WrapApplyError(store.NotFoundf("gone")), 404},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := StatusOf(tc.err); got != tc.want {
				t.Fatalf("StatusOf(%v) = %d, want %d", tc.err, got, tc.want)
			}
		})
	}
}

func TestPage(t *testing.T) {
	items := []string{"c", "a", "e", "b", "d"}
	id := func(s string) string { return s }
	tests := map[string]struct {
		query string
		want  string
		more  bool
		err   bool
	}{
		"all":          {"", "a,b,c,d,e", false, false},
		"limit":        {"limit=2", "a,b", true, false},
		"marker":       {"marker=b", "c,d,e", false, false},
		"both":         {"marker=b&limit=2", "c,d", true, false},
		"bad limit":    {"limit=-1", "", false, true},
		"gone marker":  {"marker=zz", "", false, true},
		"limit beyond": {"limit=9", "a,b,c,d,e", false, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/?"+tc.query, nil)
			page, more, err := Page(r, append([]string(nil), items...), id)
			if tc.err {
				if StatusOf(err) != 400 {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err != nil || strings.Join(page, ",") != tc.want || more != tc.more {
				t.Fatalf("page %v more %v err %v", page, more, err)
			}
		})
	}
}

func TestMiddlewareRecoversAndTagsRequests(t *testing.T) {
	m := NewMiddleware(slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic("bug") }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	if rec.Code != 500 || !strings.HasPrefix(rec.Header().Get("X-Openstack-Request-Id"), "req-") {
		t.Fatalf("code %d, request id %q", rec.Code, rec.Header().Get("X-Openstack-Request-Id"))
	}
}

func TestPrincipalPolicy(t *testing.T) {
	member := &Principal{ProjectID: "p1", Roles: []string{"member"}}
	reader := &Principal{ProjectID: "p1", Roles: []string{"reader"}}
	admin := &Principal{ProjectID: "p0", Roles: []string{"admin"}}
	tests := map[string]struct {
		ok   bool
		want bool
	}{
		"member reads own":    {member.CanRead("p1"), true},
		"member writes own":   {member.CanWrite("p1"), true},
		"member reads other":  {member.CanRead("p2"), false},
		"reader writes own":   {reader.CanWrite("p1"), false},
		"reader reads own":    {reader.CanRead("p1"), true},
		"admin writes any":    {admin.CanWrite("p9"), true},
		"member is not admin": {member.IsAdmin(), false},
	}
	for name, tc := range tests {
		if tc.ok != tc.want {
			t.Errorf("%s: got %v", name, tc.ok)
		}
	}
}

type authFunc func(context.Context, string) (*Principal, error)

func (f authFunc) Validate(ctx context.Context, tok string) (*Principal, error) { return f(ctx, tok) }

// A node that cannot confirm its state is current enough to check a
// token answers 503 (retry elsewhere or later), not 401 (log in again).
func TestRequireAuthTellsUnconfirmedStateFromBadTokens(t *testing.T) {
	tests := map[string]struct {
		err  error
		want int
	}{
		"bad token":        {errors.New("token is not valid"), http.StatusUnauthorized},
		"no leader":        {fmt.Errorf("renew state lease: %w", store.ErrNoLeader), http.StatusServiceUnavailable},
		"valid (no error)": {nil, http.StatusOK},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			auth := authFunc(func(context.Context, string) (*Principal, error) {
				if tc.err != nil {
					return nil, tc.err
				}
				return &Principal{UserID: "u"}, nil
			})
			h := RequireAuth(auth, JSONError)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
			req := httptest.NewRequest("GET", "/", nil)
			req.Header.Set("X-Auth-Token", "t")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d", w.Code, tc.want)
			}
		})
	}
}

// TestMiddlewareCountsTheFinalStatus: an interim "100 Continue" written
// before the response is not the request's status in the metrics.
func TestMiddlewareCountsTheFinalStatus(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := NewMiddleware(slog.New(slog.NewTextHandler(io.Discard, nil)), reg).Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusContinue)
		w.WriteHeader(http.StatusCreated)
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("PUT", "/x", nil))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, mf := range mfs {
		if mf.GetName() != "rackstack_api_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "code" {
					codes = append(codes, l.GetValue())
				}
			}
		}
	}
	if strings.Join(codes, ",") != "201" {
		t.Errorf("requests counted with codes %v, want 201 alone", codes)
	}
}

func TestAccessRulePathMatches(t *testing.T) {
	for _, c := range []struct {
		pattern, path string
		want          bool
	}{
		{"/v2.1/servers", "/v2.1/servers", true},
		{"/v2.1/servers", "/v2.1/servers/x", false},
		{"/v2.1/servers/{server_id}", "/v2.1/servers/abc", true},
		{"/v2.1/servers/{server_id}", "/v2.1/servers", false},
		{"/v2.1/servers/*", "/v2.1/servers/abc", true},
		{"/v2.1/servers/*", "/v2.1/servers/abc/ips", false},
		{"/v2.1/servers/**", "/v2.1/servers/abc/ips", true},
		{"/v2.1/servers/**", "/v2.1/servers", true},
		{"/v1/**/o", "/v1/a/b/c/o", true},
		{"/v1/**/o", "/v1/a/b/c/p", false},
		{"/v2.0/networks", "/v2.0/networks/", true},
	} {
		if got := PathMatches(c.pattern, c.path); got != c.want {
			t.Errorf("PathMatches(%q, %q) = %v, want %v", c.pattern, c.path, got, c.want)
		}
	}
	p := &Principal{AccessRules: []AccessRule{{Service: "volumev3", Method: "GET", Path: "/v3/*/volumes"}}}
	if !p.Permits("block-storage", "get", "/v3/p/volumes") || p.Permits("block-storage", "POST", "/v3/p/volumes") || p.Permits("", "GET", "/v3/p/volumes") {
		t.Fatal("Permits")
	}
	if !(&Principal{}).Permits("", "DELETE", "/anything") {
		t.Fatal("a token without rules is not restricted")
	}
}

// TestRequireAuthForAccessRules: a restricted token passes only what its
// rules name for the service, nothing where no service is named, and a
// service's in-process call on its behalf is not checked again.
func TestRequireAuthForAccessRules(t *testing.T) {
	auth := authFunc(func(context.Context, string) (*Principal, error) {
		return &Principal{UserID: "u", AccessRules: []AccessRule{{Service: "compute", Method: "GET", Path: "/v2.1/servers"}}}, nil
	})
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	do := func(h http.Handler, method, path string, ctx context.Context) int {
		req := httptest.NewRequest(method, path, nil).WithContext(ctx)
		req.Header.Set("X-Auth-Token", "t")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	compute := RequireAuthFor(auth, JSONError, "compute")(ok)
	bg := context.Background()
	if c := do(compute, "GET", "/v2.1/servers", bg); c != 204 {
		t.Fatalf("allowed: %d", c)
	}
	if c := do(compute, "DELETE", "/v2.1/servers", bg); c != 401 {
		t.Fatalf("another method: %d", c)
	}
	if c := do(RequireAuth(auth, JSONError)(ok), "GET", "/v2.1/servers", bg); c != 401 {
		t.Fatalf("no service named: %d", c)
	}
	if c := do(RequireAuthFor(auth, JSONError, "image")(ok), "GET", "/v2/images", AsServiceCall(bg)); c != 204 {
		t.Fatalf("a service's call on the caller's behalf: %d", c)
	}
}
