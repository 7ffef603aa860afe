package compute

import (
	"slices"
	"testing"
	"time"
)

func TestInstanceActionsChangesWindow(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	id := f.server(alice, "vm") // created at 12:00
	f.report(id, Observed{Status: "ACTIVE", PowerState: PowerRunning})
	f.now = f.now.Add(time.Hour)
	f.action(alice, id, map[string]any{"os-stop": nil}, 202) // at 13:00
	actions := func(query, version string) []string {
		t.Helper()
		var out []string
		for _, a := range f.expect("GET", "/v2.1/servers/"+id+"/os-instance-actions?"+query, alice, version, nil, 200, "")["instanceActions"].([]any) {
			out = append(out, a.(map[string]any)["action"].(string))
		}
		return out
	}
	for _, tc := range []struct {
		query, version string
		want           []string
	}{
		{"changes-before=2026-11-24T12:30:00Z", "2.66", []string{"create"}},
		{"changes-since=2026-11-24T12:30:00Z", "2.58", []string{"stop"}},
		{"changes-since=2026-11-24T12:00:00Z&changes-before=2026-11-24T13:00:00Z", "2.66", []string{"stop", "create"}},
		{"changes-before=2026-11-24T12:30:00Z", "2.65", []string{"stop", "create"}}, // not yet a filter
		{"changes-since=2026-11-24T12:30:00Z", "2.57", []string{"stop", "create"}},
	} {
		if got := actions(tc.query, tc.version); !slices.Equal(got, tc.want) {
			t.Errorf("?%s at %s: %v, want %v", tc.query, tc.version, got, tc.want)
		}
	}
	f.expect("GET", "/v2.1/servers/"+id+"/os-instance-actions?changes-before=yesterday", alice, "2.66", nil, 400, "badRequest", "changes-before")
	f.expect("GET", "/v2.1/servers/"+id+"/os-instance-actions?changes-since=2026-11-24T13:00:00Z&changes-before=2026-11-24T12:00:00Z", alice, "2.66", nil, 400, "badRequest", "changes-since")
}
