package compute

import (
	"math"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/store"
)

// usageCloud is project A with "web" launched at 12:30 and still running,
// "db" launched at 13:00 and deleted (torn down at 14:15), "never" that
// never launched, and project B's "b1" launched at 12:30; the clock is
// then 15:00.
func usageCloud(t *testing.T) (f *fixture, web, db, b1 string) {
	f = newFixture(t)
	f.stdFlavors()
	day := f.now // 12:00
	web = f.server(alice, "web")
	b1 = f.server(bob, "b1", "networks", []any{map[string]any{"uuid": netB}})
	f.now = day.Add(30 * time.Minute)
	f.report(web, Observed{Status: "ACTIVE", PowerState: PowerRunning})
	f.report(b1, Observed{Status: "ACTIVE", PowerState: PowerRunning})
	db = f.server(alice, "db")
	f.now = day.Add(time.Hour)
	f.report(db, Observed{Status: "ACTIVE", PowerState: PowerRunning})
	f.flavor("tiny", "m1.tiny", 1, 64, 1)
	never := f.server(alice, "never", "flavorRef", "tiny")
	if f.row(never).Host == "" {
		t.Fatal("never was not placed")
	}
	f.now = day.Add(2 * time.Hour)
	f.expect("DELETE", "/v2.1/servers/"+db, alice, "", nil, 204, "")
	f.expect("DELETE", "/v2.1/servers/"+never, alice, "", nil, 204, "")
	f.now = day.Add(2*time.Hour + 15*time.Minute)
	f.report(db, Observed{Gone: true})
	f.report(never, Observed{Gone: true})
	if f.row(db) != nil || f.row(never) != nil {
		t.Fatal("a deleted server's row is still there")
	}
	if store.Get[UsageRecord](f.local.State.Txn(), tUsage, never) != nil {
		t.Fatal("a server that never launched left a usage record")
	}
	f.now = day.Add(3 * time.Hour)
	return f, web, db, b1
}

func usageQ(kv ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	return "?" + q.Encode()
}

func near(a any, want float64) bool { return math.Abs(a.(float64)-want) < 1e-9 }

// byID indexes a summary's server_usages by instance_id.
func byID(t *testing.T, sum map[string]any) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, raw := range sum["server_usages"].([]any) {
		u := raw.(map[string]any)
		out[u["instance_id"].(string)] = u
	}
	return out
}

// Hours are the overlap of [launched_at, terminated_at or now] with the
// period, as Nova's _hours_for; a deleted server counts through its
// usage record; one never launched does not count.
func TestUsageShow(t *testing.T) {
	f, web, db, _ := usageCloud(t)
	const path = "/v2.1/os-simple-tenant-usage/" + projA

	u := f.expect("GET", path+usageQ("start", "2026-11-24T12:00:00", "end", "2026-11-24T14:00:00"), alice, "", nil, 200, "")["tenant_usage"].(map[string]any)
	if u["tenant_id"] != projA || u["start"] != "2026-11-24T12:00:00" || u["stop"] != "2026-11-24T14:00:00" {
		t.Fatalf("summary: %v", u)
	}
	// web 12:30-14:00 (1.5 h), db 13:00-14:00 (1 h); m1.small is 1 vCPU,
	// 512 MB, 1 GB.
	if !near(u["total_hours"], 2.5) || !near(u["total_vcpus_usage"], 2.5) || !near(u["total_memory_mb_usage"], 1280) || !near(u["total_local_gb_usage"], 2.5) {
		t.Fatalf("totals: %v", u)
	}
	servers := byID(t, u)
	if len(servers) != 2 {
		t.Fatalf("servers: %v", u["server_usages"])
	}
	w, d := servers[web], servers[db]
	if !near(w["hours"], 1.5) || w["state"] != "active" || w["ended_at"] != nil || w["started_at"] != "2026-11-24T12:30:00" ||
		w["uptime"].(float64) != 9000 || w["name"] != "web" || w["flavor"] != "m1.small" || w["tenant_id"] != projA ||
		w["vcpus"].(float64) != 1 || w["memory_mb"].(float64) != 512 || w["local_gb"].(float64) != 1 {
		t.Fatalf("web: %v", w)
	}
	if !near(d["hours"], 1) || d["state"] != "terminated" || d["ended_at"] != "2026-11-24T14:15:00" || d["uptime"].(float64) != 4500 || d["name"] != "db" {
		t.Fatalf("db: %v", d)
	}

	// The edges: terminated at the start is out, a second before it in;
	// launched at the end is out.
	u = f.expect("GET", path+usageQ("start", "2026-11-24T14:15:00", "end", "2026-11-24T15:00:00"), alice, "", nil, 200, "")["tenant_usage"].(map[string]any)
	if servers := byID(t, u); len(servers) != 1 || !near(servers[web]["hours"], 0.75) {
		t.Fatalf("from db's end: %v", u)
	}
	u = f.expect("GET", path+usageQ("start", "2026-11-24T14:14:59", "end", "2026-11-24T15:00:00"), alice, "", nil, 200, "")["tenant_usage"].(map[string]any)
	if servers := byID(t, u); len(servers) != 2 || !near(servers[db]["hours"], 1.0/3600) {
		t.Fatalf("a second before db's end: %v", u)
	}
	u = f.expect("GET", path+usageQ("start", "2026-11-24T11:00:00", "end", "2026-11-24T12:30:00"), alice, "", nil, 200, "")["tenant_usage"].(map[string]any)
	if len(u) != 0 {
		t.Fatalf("nothing launched before the end: %v", u)
	}
	// An end after now stops now; microseconds are kept; the space form.
	u = f.expect("GET", path+usageQ("start", "2026-11-24 12:00:00.5", "end", "2026-12-01T00:00:00"), alice, "", nil, 200, "")["tenant_usage"].(map[string]any)
	if u["start"] != "2026-11-24T12:00:00.500000" || u["stop"] != "2026-11-24T15:00:00" || !near(byID(t, u)[web]["hours"], 2.5) {
		t.Fatalf("clipped: %v", u)
	}

	// A reader of the project and an admin may; another project may not.
	f.expect("GET", path, carol, "", nil, 200, "")
	f.expect("GET", path, admin, "", nil, 200, "")
	f.expect("GET", path, bob, "", nil, 403, "forbidden", "os_compute_api:os-simple-tenant-usage:show")

	// Bad times are 400s naming the parameter.
	f.expect("GET", path+usageQ("start", "yesterday"), alice, "", nil, 400, "badRequest", "start", "yesterday")
	f.expect("GET", path+usageQ("end", "2026-11-24T12:00:00Z"), alice, "", nil, 400, "badRequest", "end")
	f.expect("GET", path+usageQ("start", "2026-11-24 12:00:00"), alice, "", nil, 400, "badRequest", "start")
	f.expect("GET", path+usageQ("start", "2026-11-24T13:00:00", "end", "2026-11-24T12:00:00"), alice, "", nil, 400, "badRequest", "start time cannot occur after the end time")
	f.expect("GET", path+usageQ("start", "2026-11-24T13:00:00", "end", "2026-11-24T13:00:00"), alice, "", nil, 400, "badRequest", "start time")
}

// The list is every project's usage, for admins; servers only with
// detailed=1.
func TestUsageList(t *testing.T) {
	f, web, db, b1 := usageCloud(t)
	q := usageQ("start", "2026-11-24T12:00:00", "end", "2026-11-24T15:00:00")
	f.expect("GET", "/v2.1/os-simple-tenant-usage"+q, alice, "", nil, 403, "forbidden", "os_compute_api:os-simple-tenant-usage:list")

	list := f.expect("GET", "/v2.1/os-simple-tenant-usage"+q, admin, "", nil, 200, "")["tenant_usages"].([]any)
	if len(list) != 2 {
		t.Fatalf("list: %v", list)
	}
	a, b := list[0].(map[string]any), list[1].(map[string]any)
	if a["tenant_id"] != projA || b["tenant_id"] != projB || a["server_usages"] != nil {
		t.Fatalf("list: %v", list)
	}
	// A: web 2.5 h + db 1.25 h; B: b1 2.5 h.
	if !near(a["total_hours"], 3.75) || !near(b["total_hours"], 2.5) || !near(b["total_memory_mb_usage"], 1280) {
		t.Fatalf("totals: %v", list)
	}

	list = f.expect("GET", "/v2.1/os-simple-tenant-usage"+q+"&detailed=1", admin, "", nil, 200, "")["tenant_usages"].([]any)
	got := byID(t, list[0].(map[string]any))
	if len(got) != 2 || got[web] == nil || got[db] == nil || len(byID(t, list[1].(map[string]any))) != 1 {
		t.Fatalf("detailed: %v", list)
	}
	_ = b1
}

// From 2.40 the servers are paged (limit, marker, a next link when the
// page is full) in Nova's order: project, then server id.
func TestUsagePaging(t *testing.T) {
	f, web, db, b1 := usageCloud(t)
	first, second := min(web, db), max(web, db)
	q := "start=2026-11-24T12:00:00&end=2026-11-24T15:00:00&detailed=1"

	body := f.expect("GET", "/v2.1/os-simple-tenant-usage?"+q+"&limit=2", admin, "2.40", nil, 200, "")
	list := body["tenant_usages"].([]any)
	if len(list) != 1 || len(byID(t, list[0].(map[string]any))) != 2 {
		t.Fatalf("page 1: %v", body)
	}
	links := body["tenant_usages_links"].([]any)
	href := links[0].(map[string]any)["href"].(string)
	if links[0].(map[string]any)["rel"] != "next" || !strings.Contains(href, "/v2.1/os-simple-tenant-usage?") || !strings.Contains(href, "marker="+second) {
		t.Fatalf("links: %v", links)
	}
	i := strings.Index(href, "/v2.1/")
	body = f.expect("GET", href[i:], admin, "2.40", nil, 200, "")
	list = body["tenant_usages"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["tenant_id"] != projB || byID(t, list[0].(map[string]any))[b1] == nil || body["tenant_usages_links"] != nil {
		t.Fatalf("page 2: %v", body)
	}
	// limit=1 on the project's own report.
	body = f.expect("GET", "/v2.1/os-simple-tenant-usage/"+projA+"?"+q+"&limit=1", alice, "2.40", nil, 200, "")
	if got := byID(t, body["tenant_usage"].(map[string]any)); len(got) != 1 || got[first] == nil || body["tenant_usage_links"] == nil {
		t.Fatalf("show page: %v", body)
	}
	body = f.expect("GET", "/v2.1/os-simple-tenant-usage/"+projA+"?"+q+"&limit=1&marker="+first, alice, "2.40", nil, 200, "")
	if got := byID(t, body["tenant_usage"].(map[string]any)); len(got) != 1 || got[second] == nil {
		t.Fatalf("show page 2: %v", body)
	}
	// Before 2.40 there is no paging: limit and marker are ignored.
	body = f.expect("GET", "/v2.1/os-simple-tenant-usage?"+q+"&limit=1&marker=nope", admin, "2.39", nil, 200, "")
	if len(body["tenant_usages"].([]any)) != 2 || body["tenant_usages_links"] != nil {
		t.Fatalf("2.39: %v", body)
	}
	f.expect("GET", "/v2.1/os-simple-tenant-usage?"+q+"&marker=nope", admin, "2.40", nil, 400, "badRequest", "Marker nope could not be found.")
	f.expect("GET", "/v2.1/os-simple-tenant-usage?"+q+"&limit=-1", admin, "2.40", nil, 400, "badRequest", "limit")
	// Another project's server is no marker for a member.
	f.expect("GET", "/v2.1/os-simple-tenant-usage/"+projA+"?"+q+"&marker="+b1, alice, "2.40", nil, 400, "badRequest", "Marker")
}

// A removed server's usage record is kept for usageRetention: the next
// removal after that prunes it, in the same command.
func TestUsageRetention(t *testing.T) {
	f, _, db, _ := usageCloud(t)
	rec := func(id string) *UsageRecord { return store.Get[UsageRecord](f.local.State.Txn(), tUsage, id) }
	if r := rec(db); r == nil || r.TerminatedAt != time.Date(2026, 11, 24, 14, 15, 0, 0, time.UTC) || r.Flavor != "m1.small" || r.UserID != "u-alice" {
		t.Fatalf("db's record: %+v", r)
	}
	gone := func(name string) string {
		id := f.server(alice, name)
		f.report(id, Observed{Status: "ACTIVE", PowerState: PowerRunning})
		f.expect("DELETE", "/v2.1/servers/"+id, alice, "", nil, 204, "")
		f.report(id, Observed{Gone: true})
		return id
	}
	dbEnd := rec(db).TerminatedAt
	f.now = dbEnd.Add(usageRetention - time.Hour)
	x := gone("x")
	if rec(db) == nil || rec(x) == nil {
		t.Fatal("a record within the retention was pruned")
	}
	f.now = dbEnd.Add(usageRetention + time.Minute)
	y := gone("y")
	if rec(db) != nil || rec(x) == nil || rec(y) == nil {
		t.Fatalf("after the retention: db %v x %v y %v", rec(db), rec(x), rec(y))
	}
}

// There are no migrations: an empty list with Nova's query checks.
func TestMigrationsList(t *testing.T) {
	f := newFixture(t)
	body := f.expect("GET", "/v2.1/os-migrations", admin, "", nil, 200, "")
	if l, ok := body["migrations"].([]any); !ok || len(l) != 0 {
		t.Fatalf("migrations: %v", body)
	}
	f.expect("GET", "/v2.1/os-migrations", alice, "", nil, 403, "forbidden", "os_compute_api:os-migrations:index")
	f.expect("GET", "/v2.1/os-migrations?foo=1&status=done", admin, "2.58", nil, 200, "")
	f.expect("GET", "/v2.1/os-migrations?foo=1", admin, "2.59", nil, 400, "badRequest", "'foo' was unexpected")
	f.expect("GET", "/v2.1/os-migrations?limit=-1", admin, "2.59", nil, 400, "badRequest", "limit")
	f.expect("GET", "/v2.1/os-migrations?marker=m1", admin, "2.59", nil, 400, "badRequest", "Marker m1 could not be found.")
	f.expect("GET", "/v2.1/os-migrations?changes-since=nope", admin, "2.59", nil, 400, "badRequest", "changes-since")
	f.expect("GET", "/v2.1/os-migrations?changes-before=2026-11-24T12:00:00Z", admin, "2.65", nil, 400, "badRequest", "changes-before")
	f.expect("GET", "/v2.1/os-migrations?limit=5&changes-since=2026-11-24T12:00:00Z&changes-before=2026-11-25T12:00:00Z&status=done", admin, "2.66", nil, 200, "")
}
