package api

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rackstack/rackstack/fabric/store"
)

// What a request proposes names its user, project and request id, so the
// event log can say who asked for each change.
func TestRequestsGiveTheirProposalsAnOrigin(t *testing.T) {
	auth := authFunc(func(context.Context, string) (*Principal, error) {
		return &Principal{UserID: "u1", ProjectID: "p1"}, nil
	})
	var got store.Origin
	h := NewMiddleware(slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry()).Handler(
		RequireAuth(auth, JSONError)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = store.OriginFrom(r.Context()) })))
	req := httptest.NewRequest("GET", "/x", nil)
	req.Header.Set("X-Auth-Token", "t")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	want := store.Origin{User: "u1", Project: "p1", RequestID: rec.Header().Get("X-Openstack-Request-Id")}
	if want.RequestID == "" || got != want {
		t.Fatalf("origin %+v, want %+v", got, want)
	}
}
