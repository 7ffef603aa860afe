package network

import (
	"net/http"
	"sort"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

func quotaView(tx *memdb.Txn, project string) map[string]any {
	out := map[string]any{}
	for k := range defaultQuotas {
		out[k] = quotaLimit(tx, project, k)
	}
	return out
}

// quotaProject is the {project} of a quota path, which the caller must be
// allowed to read.
func quotaProject(w http.ResponseWriter, r *http.Request) (string, bool) {
	project := chi.URLParam(r, "project")
	p := principal(r)
	if !p.IsAdmin() && project != p.ProjectID {
		writeError(w, r, api.Problem{Status: http.StatusForbidden, Msg: "Non-admin is not authorised to access quotas for another tenant"})
		return "", false
	}
	return project, true
}

func (s *Service) listQuotas(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	p := principal(r)
	out := []map[string]any{}
	for _, q := range store.All[Quota](tx, tQuotas, "id") {
		if p.IsAdmin() || q.ID == p.ProjectID {
			v := quotaView(tx, q.ID)
			v["project_id"], v["tenant_id"] = q.ID, q.ID
			out = append(out, v)
		}
	}
	api.JSON(w, http.StatusOK, map[string]any{"quotas": out})
}

func (s *Service) showQuota(w http.ResponseWriter, r *http.Request) {
	project, ok := quotaProject(w, r)
	if !ok {
		return
	}
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	api.JSON(w, http.StatusOK, map[string]any{"quota": quotaView(tx, project)})
}

func (s *Service) showDefaultQuota(w http.ResponseWriter, r *http.Request) {
	if _, ok := quotaProject(w, r); !ok {
		return
	}
	out := map[string]any{}
	for k, v := range defaultQuotas {
		out[k] = v
	}
	api.JSON(w, http.StatusOK, map[string]any{"quota": out})
}

func (s *Service) showQuotaDetails(w http.ResponseWriter, r *http.Request) {
	project, ok := quotaProject(w, r)
	if !ok {
		return
	}
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	out := map[string]any{}
	for k := range defaultQuotas {
		out[k] = map[string]any{"limit": quotaLimit(tx, project, k), "used": usage(tx, project, k), "reserved": 0}
	}
	api.JSON(w, http.StatusOK, map[string]any{"quota": out})
}

func (s *Service) updateQuota(w http.ResponseWriter, r *http.Request) {
	if !principal(r).IsAdmin() {
		api.Fail(w, r, writeError, policyDenied("update_quota"))
		return
	}
	project := chi.URLParam(r, "project")
	objs, _, err := bodies(r, "quota", "")
	if err != nil {
		api.Fail(w, r, writeError, err)
		return
	}
	c := quotaSetCmd{Project: project, Limits: map[string]int{}}
	var unknown []string
	for k, v := range objs[0] {
		if _, ok := defaultQuotas[k]; !ok {
			unknown = append(unknown, k)
			continue
		}
		n, ok := toInt(v)
		if !ok || n < -1 {
			api.Fail(w, r, writeError, badInput(k, "'%s' should be an integer greater than or equal to -1", textOf(v)))
			return
		}
		c.Limits[k] = n
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		api.Fail(w, r, writeError, badInput("quota", "Unrecognized attribute(s) '%v'", unknown))
		return
	}
	if !s.propose(w, r, cmdQuotaSet, c, nil) {
		return
	}
	tx, err := s.afterWrite(r.Context())
	if err != nil {
		api.Fail(w, r, writeError, err)
		return
	}
	api.JSON(w, http.StatusOK, map[string]any{"quota": quotaView(tx, project)})
}

func (s *Service) deleteQuota(w http.ResponseWriter, r *http.Request) {
	if !principal(r).IsAdmin() {
		api.Fail(w, r, writeError, policyDenied("delete_quota"))
		return
	}
	if s.propose(w, r, cmdQuotaDelete, idCmd{ID: chi.URLParam(r, "project")}, nil) {
		w.WriteHeader(http.StatusNoContent)
	}
}
