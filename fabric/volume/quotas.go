package volume

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// quotas declares how Cinder shows quotas on the kit's shape: the fixed
// resources and the per-type ones of the types in tx.
func quotas(tx *memdb.Txn) api.Quotas {
	names := volstate.QuotaResources(tx)
	return api.Quotas{
		Names: func(*http.Request) []string { return names },
		Limit: volstate.Limit,
		Used: func(_ *http.Request, tx *memdb.Txn, project, name string) int {
			return volstate.Usage(tx, project, name)
		},
		UsedKey: "in_use",
	}
}

// quotaProject is the {project} of a quota path, which only an admin may
// name for another project.
func quotaProject(r *http.Request) (string, error) {
	return api.QuotaProject(r, policyDenied("volume_extension:quotas:show"))
}

func (s *Service) showQuota(w http.ResponseWriter, r *http.Request) error {
	target, err := quotaProject(r)
	if err != nil {
		return err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	var view map[string]any
	if usage, _ := api.ToBool(r.URL.Query().Get("usage")); usage {
		view = quotas(tx).Detail(r, tx, target)
		for _, v := range view {
			v.(map[string]any)["allocated"] = 0
		}
	} else {
		view = quotas(tx).Limits(r, tx, target)
	}
	view["id"] = target
	api.JSON(w, http.StatusOK, map[string]any{"quota_set": view})
	return nil
}

func (s *Service) showDefaultQuota(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	view := quotas(tx).Defaults(r, tx)
	view["id"] = chi.URLParam(r, "project")
	api.JSON(w, http.StatusOK, map[string]any{"quota_set": view})
	return nil
}

func (s *Service) updateQuota(w http.ResponseWriter, r *http.Request) error {
	target := chi.URLParam(r, "project")
	o, err := body(r, "quota_set")
	if err != nil {
		return err
	}
	limits, err := s.quotaLimits(r, o, "quota set")
	if err != nil {
		return err
	}
	tx, err := api.Propose(r.Context(), s.cfg.Repl, volstate.CmdSetQuota, volstate.SetQuotaCmd{Project: target, Limits: limits}, nil)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"quota_set": quotas(tx).Limits(r, tx, target)})
	return nil
}

func (s *Service) deleteQuota(w http.ResponseWriter, r *http.Request) error {
	if _, err := api.Propose(r.Context(), s.cfg.Repl, volstate.CmdDeleteQuota, volstate.DeleteQuotaCmd{Project: chi.URLParam(r, "project")}, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// limits is Cinder's absolute limits of the caller's project, with usage.
func (s *Service) limits(w http.ResponseWriter, r *http.Request) error {
	proj, err := project(r)
	if err != nil {
		return err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	lim := func(n string) int { return volstate.Limit(tx, proj, n) }
	use := func(n string) int { return volstate.Usage(tx, proj, n) }
	api.JSON(w, http.StatusOK, map[string]any{"limits": map[string]any{"rate": []any{}, "absolute": map[string]any{
		"maxTotalVolumes": lim(volstate.QuotaVolumes), "maxTotalSnapshots": lim(volstate.QuotaSnapshots),
		"maxTotalVolumeGigabytes": lim(volstate.QuotaGigabytes), "maxTotalBackups": lim(volstate.QuotaBackups),
		"maxTotalBackupGigabytes": lim(volstate.QuotaBackupGigabytes),
		"totalVolumesUsed":        use(volstate.QuotaVolumes), "totalSnapshotsUsed": use(volstate.QuotaSnapshots),
		"totalGigabytesUsed": use(volstate.QuotaGigabytes), "totalBackupsUsed": 0, "totalBackupGigabytesUsed": 0,
	}}})
	return nil
}

// quotaLimits reads the limits of a quota set or quota class set body:
// resource → -1 or more.
func (s *Service) quotaLimits(r *http.Request, o api.Object, what string) (map[string]int, error) {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return nil, err
	}
	limits := map[string]int{}
	for k, v := range o {
		if k == "id" || k == "tenant_id" || k == "class_name" {
			continue
		}
		if !volstate.IsQuotaResource(tx, k) {
			return nil, badRequest("Bad key(s) in %s: %s", what, k)
		}
		n, ok := api.ToInt(v)
		if !ok || n < -1 {
			return nil, cinderWording{}.BadField(k, v, "Quota limit must be -1 or an integer greater than or equal to 0.")
		}
		limits[k] = n
	}
	return limits, nil
}

// classLimits is a quota class's limits, resource → limit.
func classLimits(tx *memdb.Txn, class string) map[string]any {
	out := map[string]any{}
	for _, n := range volstate.QuotaResources(tx) {
		out[n] = volstate.ClassLimit(tx, class, n)
	}
	return out
}

// showQuotaClass is a quota class's limits; the class "default" gives
// every project the limits it does not override.
func (s *Service) showQuotaClass(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	view := classLimits(tx, chi.URLParam(r, "class"))
	view["id"] = chi.URLParam(r, "class")
	api.JSON(w, http.StatusOK, map[string]any{"quota_class_set": view})
	return nil
}

func (s *Service) updateQuotaClass(w http.ResponseWriter, r *http.Request) error {
	class := chi.URLParam(r, "class")
	if len(class) > 255 {
		return cinderWording{}.BadField("class_name", class, "is longer than 255 characters")
	}
	o, err := body(r, "quota_class_set")
	if err != nil {
		return err
	}
	limits, err := s.quotaLimits(r, o, "quota class set")
	if err != nil {
		return err
	}
	tx, err := api.Propose(r.Context(), s.cfg.Repl, volstate.CmdSetQuotaClass, volstate.SetQuotaClassCmd{Class: class, Limits: limits}, nil)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"quota_class_set": classLimits(tx, class)})
	return nil
}
