package compute

import (
	"net/url"
	"reflect"
	"testing"
)

// Nova's documented APIs not built here answer 501 once the caller's
// right and its input are checked, not the 404 or 405 of an unknown
// path.
func TestUnbuiltAPIs(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()

	// The usage audit log: no host ran the audit, as Nova reports it
	// when its audit is off; the period is the last whole month.
	logs := f.expect("GET", "/v2.1/os-instance_usage_audit_log", admin, "", nil, 200, "")["instance_usage_audit_logs"].(map[string]any)
	want := map[string]any{"period_beginning": "2026-10-01 00:00:00", "period_ending": "2026-11-01 00:00:00",
		"num_hosts": 2.0, "num_hosts_done": 0.0, "num_hosts_running": 0.0, "num_hosts_not_run": 2.0,
		"hosts_not_run": []any{"n1", "n2"}, "total_instances": 0.0, "total_errors": 0.0,
		"overall_status": "0 of 2 hosts done. 0 errors.", "log": map[string]any{}}
	if !reflect.DeepEqual(logs, want) {
		t.Fatalf("audit log %v, want %v", logs, want)
	}
	for before, period := range map[string][2]string{
		"2026-12-07 07:43:17":     {"2026-11-01 00:00:00", "2026-12-01 00:00:00"},
		"2026-12-01 00:00:00":     {"2026-10-01 00:00:00", "2026-11-01 00:00:00"},
		"2026-01-15 10:00:00.123": {"2025-12-01 00:00:00", "2026-01-01 00:00:00"},
	} {
		l := f.expect("GET", "/v2.1/os-instance_usage_audit_log/"+url.PathEscape(before), admin, "", nil, 200, "")["instance_usage_audit_log"].(map[string]any)
		if l["period_beginning"] != period[0] || l["period_ending"] != period[1] || l["num_hosts_not_run"] != 2.0 {
			t.Fatalf("audit log before %s: %v", before, l)
		}
	}
	// As tempest sends it, ':' escaped too: the timestamp is unescaped.
	if l := f.expect("GET", "/v2.1/os-instance_usage_audit_log/2026-12-07%2007%3A43%3A17", admin, "", nil, 200, "")["instance_usage_audit_log"].(map[string]any); l["period_ending"] != "2026-12-01 00:00:00" {
		t.Fatalf("audit log before an escaped time: %v", l)
	}
	f.expect("GET", "/v2.1/os-instance_usage_audit_log", alice, "", nil, 403, "forbidden", auditLogRule+":list")
	f.expect("GET", "/v2.1/os-instance_usage_audit_log/invalid_time", admin, "", nil, 400, "badRequest", "Invalid timestamp for date invalid_time")
	f.expect("GET", "/v2.1/os-instance_usage_audit_log/invalid_time", alice, "", nil, 403, "forbidden", auditLogRule+":show")
	f.expect("GET", "/v2.1/extensions/os-instance-usage-audit-log", alice, "", nil, 200, "")
}
