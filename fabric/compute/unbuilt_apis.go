package compute

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
)

// Nova's documented APIs (besides server actions, see unbuilt_actions.go)
// this cloud does not have. Each answers as Nova would up to the point
// where the work would start, the caller's right to ask checked and its
// input read, and then 501: a client learns the feature is missing
// rather than meeting a 404 or 405 that reads as a wrong URL. None of
// them is listed by /extensions.

const (
	diagnosticsRule = "os_compute_api:os-server-diagnostics"
	auditLogRule    = "os_compute_api:os-instance-usage-audit-log"
	aggregatesRule  = "os_compute_api:os-aggregates"
)

// serverDiagnostics is GET /servers/{id}/diagnostics: the server is found
// first (another project's is 404), then the admin-only rule checked, as
// Nova does. The node agents report no per-guest counters to the API.
func (s *Service) serverDiagnostics(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.readServer(r, ""); err != nil {
		return err
	}
	if !principal(r).IsAdmin() {
		return policyDenied(diagnosticsRule)
	}
	return notImplemented("Server diagnostics are not implemented by this cloud.")
}

// listAuditLog is GET /os-instance_usage_audit_log: there is no periodic
// usage audit (instance_usage_audit) to report on.
func (s *Service) listAuditLog(w http.ResponseWriter, r *http.Request) error {
	return notImplemented("The instance usage audit log is not implemented by this cloud.")
}

// showAuditLog is GET /os-instance_usage_audit_log/{before_timestamp}: a
// timestamp Nova could not parse is its 400 before the 501.
func (s *Service) showAuditLog(w http.ResponseWriter, r *http.Request) error {
	ts := chi.URLParam(r, "before")
	if _, err := time.Parse("2006-01-02 15:04:05", ts); err != nil {
		if _, err := time.Parse("2006-01-02 15:04:05.999999", ts); err != nil {
			return badRequest("Invalid timestamp for date %s", ts)
		}
	}
	return s.listAuditLog(w, r)
}

// createAggregate is POST /os-aggregates: nodes are grouped by
// availability zone only (each node's --az), so there is no aggregate to
// make. The list stays, empty.
func (s *Service) createAggregate(w http.ResponseWriter, r *http.Request) error {
	return notImplemented("Creating host aggregates is not implemented by this cloud: nodes are grouped by availability zone only.")
}

// aggregateByID answers the APIs of one aggregate: none exists, so every
// id is Nova's 404.
func (s *Service) aggregateByID(w http.ResponseWriter, r *http.Request) error {
	return notFound("Aggregate %s could not be found.", chi.URLParam(r, "id"))
}
