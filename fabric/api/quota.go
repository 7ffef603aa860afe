package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"
)

// Quotas is how a service shows per-project limits. Nova's quota sets and
// Neutron's quotas have one shape: named resources, each with a limit a
// project may override (-1 for none); shown as name → limit, as the
// defaults, or in detail as name → {limit, used, reserved}. The service
// keeps the limits in its own table and declares how to read them.
type Quotas struct {
	// Names are the resources shown (Nova's depend on the microversion).
	Names func(r *http.Request) []string
	// Limit is project's limit of a resource: its override, or the
	// default ("" is no project: the default).
	Limit func(tx *memdb.Txn, project, name string) int
	// Used is how much of a resource project uses (r carries Nova's
	// user_id).
	Used func(r *http.Request, tx *memdb.Txn, project, name string) int
	// UsedKey names the usage in a detail: "used" (Neutron), "in_use"
	// (Nova).
	UsedKey string
}

// Limits is project's limits, name → limit.
func (q Quotas) Limits(r *http.Request, tx *memdb.Txn, project string) map[string]any {
	out := map[string]any{}
	for _, n := range q.Names(r) {
		out[n] = q.Limit(tx, project, n)
	}
	return out
}

// Defaults is the limits a project without overrides has.
func (q Quotas) Defaults(r *http.Request, tx *memdb.Txn) map[string]any {
	return q.Limits(r, tx, "")
}

// Detail is project's limits with their usage: name → {limit, <UsedKey>,
// reserved}. Nothing is ever reserved: the state machine checks a quota
// in the same step that takes it.
func (q Quotas) Detail(r *http.Request, tx *memdb.Txn, project string) map[string]any {
	out := map[string]any{}
	for _, n := range q.Names(r) {
		out[n] = map[string]any{"limit": q.Limit(tx, project, n), q.UsedKey: q.Used(r, tx, project, n), "reserved": 0}
	}
	return out
}

// QuotaProject is the {project} of a quota path. Only an admin may see
// another project's quotas; anyone else gets denied, the service's 403.
func QuotaProject(r *http.Request, denied error) (string, error) {
	project := chi.URLParam(r, "project")
	if p := PrincipalFrom(r.Context()); p == nil || (!p.IsAdmin() && project != p.ProjectID) {
		return "", denied
	}
	return project, nil
}
