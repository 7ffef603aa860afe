package volume

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// quotas declares how Cinder shows quotas on the kit's shape.
func quotas() api.Quotas {
	names := quotaNames()
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
		view = quotas().Detail(r, tx, target)
		for _, v := range view {
			v.(map[string]any)["allocated"] = 0
		}
	} else {
		view = quotas().Limits(r, tx, target)
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
	view := quotas().Defaults(r, tx)
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
	defaults := volstate.DefaultQuotas()
	limits := map[string]int{}
	for k, v := range o {
		if k == "id" || k == "tenant_id" {
			continue
		}
		if _, ok := defaults[k]; !ok {
			return badRequest("Bad key(s) in quota set: %s", k)
		}
		n, ok := api.ToInt(v)
		if !ok || n < -1 {
			return cinderWording{}.BadField(k, v, "Quota limit must be -1 or an integer greater than or equal to 0.")
		}
		limits[k] = n
	}
	tx, err := api.Propose(r.Context(), s.cfg.Repl, volstate.CmdSetQuota, volstate.SetQuotaCmd{Project: target, Limits: limits}, nil)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"quota_set": quotas().Limits(r, tx, target)})
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
