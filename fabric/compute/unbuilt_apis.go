package compute

import (
	"fmt"
	"net/http"
	"time"

	"github.com/rackstack/rackstack/fabric/api"
)

// Nova's documented APIs (besides server actions, see unbuilt_actions.go)
// this cloud does not have, and the usage audit log, which reports that
// no audit ran. Each of the others answers as Nova would up to the point
// where the work would start, the caller's right to ask checked and its
// input read, and then 501: a client learns the feature is missing
// rather than meeting a 404 or 405 that reads as a wrong URL. None of
// them is listed by /extensions.

const (
	diagnosticsRule = "os_compute_api:os-server-diagnostics"
	auditLogRule    = "os_compute_api:os-instance-usage-audit-log"
)

// listAuditLog is GET /os-instance_usage_audit_log: the report of Nova's
// periodic usage audit over the last completed month. No host here runs
// that audit (as in Nova's default, instance_usage_audit = False), so
// the report is Nova's for that case: every compute host not run, no
// instances, no errors.
func (s *Service) listAuditLog(w http.ResponseWriter, r *http.Request) error {
	rep, err := s.auditLog(r, s.now())
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"instance_usage_audit_logs": rep})
	return nil
}

// showAuditLog is GET /os-instance_usage_audit_log/{before_timestamp}:
// the report of the last month completed before then; a timestamp Nova
// could not parse is its 400.
func (s *Service) showAuditLog(w http.ResponseWriter, r *http.Request) error {
	ts := pathParam(r, "before")
	before, err := time.Parse("2006-01-02 15:04:05", ts)
	if err != nil {
		if before, err = time.Parse("2006-01-02 15:04:05.999999", ts); err != nil {
			return badRequest("Invalid timestamp for date %s", ts)
		}
	}
	rep, err := s.auditLog(r, before)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"instance_usage_audit_log": rep})
	return nil
}

// auditLog is the audit report of the month completed last before t.
func (s *Service) auditLog(r *http.Request, t time.Time) (map[string]any, error) {
	hs, _, err := s.hostList(r)
	if err != nil {
		return nil, err
	}
	hosts := make([]string, 0, len(hs))
	for _, h := range hs {
		hosts = append(hosts, h.Name)
	}
	begin, end := lastAuditPeriod(t.UTC())
	status := "ALL hosts done. 0 errors."
	if len(hosts) > 0 {
		status = fmt.Sprintf("0 of %d hosts done. 0 errors.", len(hosts))
	}
	const pyTime = "2006-01-02 15:04:05"
	return map[string]any{
		"period_beginning": begin.Format(pyTime), "period_ending": end.Format(pyTime),
		"num_hosts": len(hosts), "num_hosts_done": 0, "num_hosts_running": 0,
		"num_hosts_not_run": len(hosts), "hosts_not_run": hosts,
		"total_instances": 0, "total_errors": 0, "overall_status": status, "log": map[string]any{},
	}, nil
}

// lastAuditPeriod is Nova's last_completed_audit_period for its default
// unit, the month: the last whole month that ended before t.
func lastAuditPeriod(t time.Time) (begin, end time.Time) {
	end = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	if !end.Before(t) {
		end = end.AddDate(0, -1, 0)
	}
	return end.AddDate(0, -1, 0), end
}
