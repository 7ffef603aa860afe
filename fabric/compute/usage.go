package compute

// Usage reports (os-simple-tenant-usage): the hours each server ran
// within a period, and per project the hours times its vCPUs, memory and
// local disk, as Nova computes them from launched_at and terminated_at
// (the flavor a server has, stops and pauses ignored).
//
// A live server counts from its LaunchedAt; a removed one from the usage
// record its removal left (UsageRecord). Records are kept for
// usageRetention: a report of a period that ends longer ago than that
// misses the servers deleted before it.
//
// A removed server's action log stays beside its record (Nova lists a
// deleted server's actions from 2.21) and is pruned with it. Both are
// written by the one replicated command that removes the server's row,
// in its transaction: after a crash the server is either still there
// with its log, or gone with its record and log kept, never half of it.

import (
	"cmp"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// usageRetention is how long the usage record of a removed server is
// kept: every removal prunes, in the same replicated command, the records
// of servers terminated more than this before it. So the table holds at
// most the servers removed within usageRetention of the latest removal.
const usageRetention = 90 * 24 * time.Hour

// usageMaxLimit is Nova's [api]max_limit, the default and largest page.
const usageMaxLimit = 1000

// recordUsage keeps what the usage report needs of a server being
// removed at now, and prunes the records past the retention. A server
// that never launched leaves none: Nova's report never shows it.
func recordUsage(tx *memdb.Txn, s *Server, now time.Time) error {
	if err := pruneUsage(tx, now.Add(-usageRetention)); err != nil {
		return err
	}
	if s.LaunchedAt.IsZero() {
		return nil
	}
	end := now
	if end.Before(s.LaunchedAt) {
		end = s.LaunchedAt
	}
	return tx.Insert(tUsage, &UsageRecord{ID: s.ID, Project: s.Project, UserID: s.UserID, Name: s.Name,
		Flavor: s.Flavor.Name, VCPUs: s.Flavor.VCPUs, MemoryMB: s.Flavor.RAM, LocalGB: s.Flavor.Disk + s.Flavor.Ephemeral,
		LaunchedAt: s.LaunchedAt, TerminatedAt: end})
}

// pruneUsage deletes the usage records of servers terminated before
// cutoff, oldest first along the terminated index, and the action logs
// kept with them.
func pruneUsage(tx *memdb.Txn, cutoff time.Time) error {
	it, err := tx.LowerBound(tUsage, "terminated", time.Time{})
	if err != nil {
		return err
	}
	var old []*UsageRecord
	for raw := it.Next(); raw != nil; raw = it.Next() {
		u := raw.(*UsageRecord)
		if !u.TerminatedAt.Before(cutoff) {
			break
		}
		old = append(old, u)
	}
	for _, u := range old {
		if err := tx.Delete(tUsage, u); err != nil {
			return err
		}
		// The removed server's action log, kept with its record.
		if err := removeActions(tx, u.ID); err != nil {
			return err
		}
	}
	return nil
}

// serverUsage is one server's line of a report, live or removed.
type serverUsage struct {
	ID, Project, Name, Flavor string
	VCPUs, MemoryMB, LocalGB  int
	Launched, Terminated      time.Time // Terminated zero: still there
	State                     string
}

// usageQuery is a report's period and paging.
type usageQuery struct {
	start, stop time.Time
	detailed    bool
	limit       int
	marker      string
	paged       bool // 2.40: limit, marker and links
}

// pyTime is a time as Nova's JSON has its naive datetimes (Python's
// isoformat: microseconds only when there are some).
func pyTime(t time.Time) string {
	t = t.UTC()
	if t.Nanosecond()/1000 == 0 {
		return t.Format("2006-01-02T15:04:05")
	}
	return t.Format("2006-01-02T15:04:05.000000")
}

// parseUsageTime reads start or end in Nova's formats (%Y-%m-%dT%H:%M:%S
// with an optional .%f, or %Y-%m-%d %H:%M:%S.%f), UTC; "" is now.
func parseUsageTime(param, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return now, nil
	}
	layout := "2006-01-02T15:04:05"
	if strings.Contains(v, " ") {
		// Go's parser takes a fraction the layout does not name; Nova's
		// space-separated format requires one.
		layout = "2006-01-02 15:04:05"
		if !strings.Contains(v, ".") {
			layout = "no fraction"
		}
	}
	t, err := time.Parse(layout, v)
	if err != nil {
		return time.Time{}, badRequest("Invalid datetime string: Datetime is in invalid format: query parameter %s is %q, not YYYY-MM-DDTHH:MM:SS[.ffffff]", param, v)
	}
	return t.Truncate(time.Microsecond), nil
}

func (s *Service) readUsageQuery(r *http.Request) (usageQuery, error) {
	q := r.URL.Query()
	now := s.cfg.Now().UTC().Truncate(time.Microsecond)
	var uq usageQuery
	var err error
	if uq.start, err = parseUsageTime("start", q.Get("start"), now); err != nil {
		return uq, err
	}
	if uq.stop, err = parseUsageTime("end", q.Get("end"), now); err != nil {
		return uq, err
	}
	// Nova's defaults are two readings of the clock, the end's later.
	bothGiven := q.Get("start") != "" && q.Get("end") != ""
	if uq.start.After(uq.stop) || (bothGiven && uq.start.Equal(uq.stop)) {
		return uq, badRequest("Invalid start time. The start time cannot occur after the end time.")
	}
	if uq.stop.After(now) {
		uq.stop = now
	}
	uq.detailed = q.Get("detailed") == "1"
	uq.limit = usageMaxLimit
	if atLeast(r, 40) {
		uq.paged = true
		if l := q.Get("limit"); l != "" {
			n, e := strconv.Atoi(l)
			if e != nil || n < 0 {
				return uq, badRequest("Invalid input for query parameters limit. Value: %s. '%s' does not match '^[0-9]*$'", l, l)
			}
			uq.limit = min(n, usageMaxLimit)
		}
		uq.marker = q.Get("marker")
	}
	return uq, nil
}

// usages are the servers of project ("" : all) that ran within the
// period, in Nova's order (project, then id), from the marker on.
func usages(tx *memdb.Txn, project string, uq usageQuery) ([]serverUsage, error) {
	var servers []*Server
	var records []*UsageRecord
	if project == "" {
		servers = store.All[Server](tx, tServers, "id")
		records = store.All[UsageRecord](tx, tUsage, "id")
	} else {
		servers = store.All[Server](tx, tServers, "project", project)
		records = store.All[UsageRecord](tx, tUsage, "project", project)
	}
	// The marker is any server of the scope, in the period or not.
	var marker *serverUsage
	var out []serverUsage
	for _, sv := range servers {
		u := serverUsage{ID: sv.ID, Project: sv.Project, Name: sv.Name, Flavor: sv.Flavor.Name, VCPUs: sv.Flavor.VCPUs,
			MemoryMB: sv.Flavor.RAM, LocalGB: sv.Flavor.Disk + sv.Flavor.Ephemeral, Launched: sv.LaunchedAt, State: sv.VMState}
		if u.ID == uq.marker {
			marker = &u
		}
		// Nova's window: launched before the end (never launched: not
		// shown), not terminated before the start.
		if !sv.LaunchedAt.IsZero() && sv.LaunchedAt.Before(uq.stop) {
			out = append(out, u)
		}
	}
	for _, rec := range records {
		u := serverUsage{ID: rec.ID, Project: rec.Project, Name: rec.Name, Flavor: rec.Flavor, VCPUs: rec.VCPUs,
			MemoryMB: rec.MemoryMB, LocalGB: rec.LocalGB, Launched: rec.LaunchedAt, Terminated: rec.TerminatedAt, State: "terminated"}
		if u.ID == uq.marker {
			marker = &u
		}
		if rec.LaunchedAt.Before(uq.stop) && rec.TerminatedAt.After(uq.start) {
			out = append(out, u)
		}
	}
	order := func(a, b *serverUsage) int {
		return cmp.Or(strings.Compare(a.Project, b.Project), strings.Compare(a.ID, b.ID))
	}
	slices.SortFunc(out, func(a, b serverUsage) int { return order(&a, &b) })
	if uq.marker != "" {
		if marker == nil {
			return nil, badRequest("Marker %s could not be found.", uq.marker)
		}
		at, _ := slices.BinarySearchFunc(out, marker, func(u serverUsage, m *serverUsage) int { return order(&u, m) })
		for at < len(out) && order(&out[at], marker) <= 0 {
			at++
		}
		out = out[at:]
	}
	if len(out) > uq.limit {
		out = out[:uq.limit]
	}
	return out, nil
}

// hoursFor is Nova's _hours_for: the hours of [launched, terminated or
// the period's stop] within the period. Nova can go negative for a
// period that starts after now; this stops at 0.
func hoursFor(u serverUsage, start, stop time.Time) float64 {
	if !u.Terminated.IsZero() && u.Terminated.Before(start) {
		return 0
	}
	if u.Launched.IsZero() || u.Launched.After(stop) {
		return 0
	}
	from := u.Launched
	if start.After(from) {
		from = start
	}
	to := stop
	if !u.Terminated.IsZero() && u.Terminated.Before(stop) {
		to = u.Terminated
	}
	return max(0, to.Sub(from).Seconds()/3600)
}

// tenantUsages sums the servers' usages per project, in the order the
// projects first appear; each summary lists its servers when detailed.
func tenantUsages(list []serverUsage, uq usageQuery, detailed bool, now time.Time) []map[string]any {
	var out []map[string]any
	byProject := map[string]map[string]any{}
	for _, u := range list {
		hours := hoursFor(u, uq.start, uq.stop)
		uptime := now.Sub(u.Launched)
		var ended any
		if !u.Terminated.IsZero() {
			uptime = u.Terminated.Sub(u.Launched)
			ended = pyTime(u.Terminated)
		}
		sum := byProject[u.Project]
		if sum == nil {
			sum = map[string]any{"tenant_id": u.Project, "total_local_gb_usage": 0.0, "total_vcpus_usage": 0.0,
				"total_memory_mb_usage": 0.0, "total_hours": 0.0, "start": pyTime(uq.start), "stop": pyTime(uq.stop)}
			if detailed {
				sum["server_usages"] = []any{}
			}
			byProject[u.Project] = sum
			out = append(out, sum)
		}
		sum["total_local_gb_usage"] = sum["total_local_gb_usage"].(float64) + float64(u.LocalGB)*hours
		sum["total_vcpus_usage"] = sum["total_vcpus_usage"].(float64) + float64(u.VCPUs)*hours
		sum["total_memory_mb_usage"] = sum["total_memory_mb_usage"].(float64) + float64(u.MemoryMB)*hours
		sum["total_hours"] = sum["total_hours"].(float64) + hours
		if detailed {
			sum["server_usages"] = append(sum["server_usages"].([]any), map[string]any{
				"instance_id": u.ID, "name": u.Name, "tenant_id": u.Project, "hours": hours, "flavor": u.Flavor,
				"vcpus": u.VCPUs, "memory_mb": u.MemoryMB, "local_gb": u.LocalGB,
				"started_at": pyTime(u.Launched), "ended_at": ended, "state": u.State,
				"uptime": int64(uptime / time.Second),
			})
		}
	}
	return out
}

// usageLinks is Nova's next link of a report (from 2.40): given when the
// page holds as many servers as the limit.
func (s *Service) usageLinks(r *http.Request, path string, list []serverUsage, uq usageQuery) []any {
	if !uq.paged || uq.limit == 0 || len(list) != uq.limit {
		return nil
	}
	q := r.URL.Query()
	q.Set("marker", list[len(list)-1].ID)
	return []any{link("next", s.apiURL(r)+path+"?"+q.Encode())}
}

// listUsage is GET /os-simple-tenant-usage: every project's usage
// (admin), the servers listed with detailed=1.
func (s *Service) listUsage(w http.ResponseWriter, r *http.Request) error {
	uq, err := s.readUsageQuery(r)
	if err != nil {
		return err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	list, err := usages(tx, "", uq)
	if err != nil {
		return err
	}
	body := map[string]any{"tenant_usages": orEmpty(tenantUsages(list, uq, uq.detailed, s.cfg.Now()))}
	if l := s.usageLinks(r, "/os-simple-tenant-usage", list, uq); l != nil {
		body["tenant_usages_links"] = l
	}
	api.JSON(w, http.StatusOK, body)
	return nil
}

// showUsage is GET /os-simple-tenant-usage/{tenant_id}: one project's
// usage with its servers, for its readers or an admin.
func (s *Service) showUsage(w http.ResponseWriter, r *http.Request) error {
	tenant := chi.URLParam(r, "tenant_id")
	if !principal(r).CanRead(tenant) {
		return policyDenied("os_compute_api:os-simple-tenant-usage:show")
	}
	uq, err := s.readUsageQuery(r)
	if err != nil {
		return err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	list, err := usages(tx, tenant, uq)
	if err != nil {
		return err
	}
	usage := map[string]any{}
	if sums := tenantUsages(list, uq, true, s.cfg.Now()); len(sums) > 0 {
		usage = sums[0]
	}
	body := map[string]any{"tenant_usage": usage}
	if l := s.usageLinks(r, "/os-simple-tenant-usage/"+url.PathEscape(tenant), list, uq); l != nil {
		body["tenant_usage_links"] = l
	}
	api.JSON(w, http.StatusOK, body)
	return nil
}

func orEmpty(v []map[string]any) []map[string]any {
	if v == nil {
		return []map[string]any{}
	}
	return v
}
