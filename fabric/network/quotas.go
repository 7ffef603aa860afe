package network

import (
	"net/http"
	"sort"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// quotas declares how Neutron shows quotas on the kit's shape.
func quotas() api.Quotas {
	names := make([]string, 0, len(defaultQuotas))
	for k := range defaultQuotas {
		names = append(names, k)
	}
	sort.Strings(names)
	return api.Quotas{
		Names:   func(*http.Request) []string { return names },
		Limit:   quotaLimit,
		Used:    func(_ *http.Request, tx *memdb.Txn, project, name string) int { return usage(tx, project, name) },
		UsedKey: "used",
	}
}

// quotaProject is the {project} of a quota path, which the caller must be
// allowed to read.
func quotaProject(r *http.Request) (string, error) {
	return api.QuotaProject(r, &api.Error{Status: http.StatusForbidden, Msg: "Non-admin is not authorised to access quotas for another tenant"})
}

func (s *Service) listQuotas(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	p := principal(r)
	out := []map[string]any{}
	for _, q := range store.All[Quota](tx, tQuotas, "id") {
		if p.IsAdmin() || q.ID == p.ProjectID {
			v := quotas().Limits(r, tx, q.ID)
			v["project_id"], v["tenant_id"] = q.ID, q.ID
			out = append(out, v)
		}
	}
	api.JSON(w, http.StatusOK, map[string]any{"quotas": out})
	return nil
}

// showQuotaWith answers a GET of one project's quotas, shown by view.
func (s *Service) showQuotaWith(w http.ResponseWriter, r *http.Request, view func(tx *memdb.Txn, project string) map[string]any) error {
	project, err := quotaProject(r)
	if err != nil {
		return err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"quota": view(tx, project)})
	return nil
}

func (s *Service) showQuota(w http.ResponseWriter, r *http.Request) error {
	return s.showQuotaWith(w, r, func(tx *memdb.Txn, project string) map[string]any { return quotas().Limits(r, tx, project) })
}

func (s *Service) showDefaultQuota(w http.ResponseWriter, r *http.Request) error {
	return s.showQuotaWith(w, r, func(tx *memdb.Txn, _ string) map[string]any { return quotas().Defaults(r, tx) })
}

func (s *Service) showQuotaDetails(w http.ResponseWriter, r *http.Request) error {
	return s.showQuotaWith(w, r, func(tx *memdb.Txn, project string) map[string]any { return quotas().Detail(r, tx, project) })
}

// readLimits reads a quota update: known resources only, each an integer
// of at least -1 (unlimited).
func readLimits(o api.Object) (map[string]int, error) {
	limits := map[string]int{}
	var unknown []string
	for k, v := range o {
		if _, ok := defaultQuotas[k]; !ok {
			unknown = append(unknown, k)
			continue
		}
		n, ok := api.ToInt(v)
		if !ok || n < -1 {
			return nil, badInput(k, "'%s' should be an integer greater than or equal to -1", api.Text(v))
		}
		limits[k] = n
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, badInput("quota", "Unrecognized attribute(s) '%v'", unknown)
	}
	return limits, nil
}

func (s *Service) updateQuota(w http.ResponseWriter, r *http.Request) error {
	project := chi.URLParam(r, "project")
	objs, _, err := bodies(r, "quota", "")
	if err != nil {
		return err
	}
	limits, err := readLimits(objs[0])
	if err != nil {
		return err
	}
	tx, err := api.Propose(r.Context(), s.cfg.Repl, cmdQuotaSet, quotaSetCmd{Project: project, Limits: limits}, nil)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"quota": quotas().Limits(r, tx, project)})
	return nil
}

func (s *Service) deleteQuota(w http.ResponseWriter, r *http.Request) error {
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdQuotaDelete, idCmd{ID: chi.URLParam(r, "project")}, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
