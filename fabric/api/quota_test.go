package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"
)

func TestQuotasShowLimitsDefaultsAndUsage(t *testing.T) {
	overrides := map[string]map[string]int{"p1": {"ports": 7}}
	q := Quotas{
		Names: func(*http.Request) []string { return []string{"networks", "ports"} },
		Limit: func(_ *memdb.Txn, project, name string) int {
			if v, ok := overrides[project][name]; ok {
				return v
			}
			return 10
		},
		Used:    func(_ *http.Request, _ *memdb.Txn, project, name string) int { return len(project + name) },
		UsedKey: "in_use",
	}
	r := httptest.NewRequest("GET", "/", nil)
	tests := map[string]struct {
		got, want map[string]any
	}{
		"limits":   {q.Limits(r, nil, "p1"), map[string]any{"networks": 10, "ports": 7}},
		"defaults": {q.Defaults(r, nil), map[string]any{"networks": 10, "ports": 10}},
		"detail": {q.Detail(r, nil, "p1"), map[string]any{
			"networks": map[string]any{"limit": 10, "in_use": 10, "reserved": 0},
			"ports":    map[string]any{"limit": 7, "in_use": 7, "reserved": 0},
		}},
	}
	for name, tc := range tests {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s: got %v, want %v", name, tc.got, tc.want)
		}
	}
}

func TestQuotaProjectIsTheCallersUnlessAdmin(t *testing.T) {
	denied := errors.New("denied")
	member := &Principal{ProjectID: "p1", Roles: []string{"member"}}
	admin := &Principal{ProjectID: "p0", Roles: []string{"admin"}}
	tests := map[string]struct {
		who     *Principal
		project string
		err     error
	}{
		"own project":           {member, "p1", nil},
		"another project":       {member, "p2", denied},
		"admin, any project":    {admin, "p2", nil},
		"no principal (a bug)":  {nil, "p1", denied},
		"unscoped asks for one": {&Principal{Roles: []string{"member"}}, "p1", denied},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/quotas/"+tc.project, nil)
			rc := chi.NewRouteContext()
			rc.URLParams.Add("project", tc.project)
			ctx := context.WithValue(r.Context(), chi.RouteCtxKey, rc)
			if tc.who != nil {
				ctx = WithPrincipal(ctx, tc.who)
			}
			got, err := QuotaProject(r.WithContext(ctx), denied)
			if err != tc.err || (err == nil && got != tc.project) {
				t.Fatalf("got %q, %v; want %q, %v", got, err, tc.project, tc.err)
			}
		})
	}
}
