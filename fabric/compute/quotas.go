package compute

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// quotaNames are the quota resources a request's microversion shows: the
// nova-network ones go in 2.36, the file-injection ones in 2.57.
func quotaNames(r *http.Request) []string {
	names := []string{"instances", "cores", "ram", "key_pairs", "metadata_items", "server_groups", "server_group_members"}
	if !atLeast(r, 57) {
		names = append(names, "injected_files", "injected_file_content_bytes", "injected_file_path_bytes")
	}
	if !atLeast(r, 36) {
		names = append(names, "fixed_ips", "floating_ips", "security_groups", "security_group_rules")
	}
	return names
}

func quotaUsed(tx *memdb.Txn, project, user, name string) int {
	u := projectUsage(tx, project)
	switch name {
	case "instances":
		return u.Instances
	case "cores":
		return u.Cores
	case "ram":
		return u.RAM
	case "server_groups":
		return len(store.All[ServerGroup](tx, tGroups, "project", project))
	case "key_pairs":
		if user != "" {
			return len(store.All[Keypair](tx, tKeypairs, "user", user))
		}
	}
	return 0
}

// quotaProject is the {project} of a quota path, which the caller must be
// allowed to read.
func quotaProject(r *http.Request) (string, error) {
	project := chi.URLParam(r, "project")
	p := principal(r)
	if !p.IsAdmin() && project != p.ProjectID {
		return "", policyDenied("os_compute_api:os-quota-sets:show")
	}
	return project, nil
}

func (s *Service) quotaSet(r *http.Request, tx *memdb.Txn, project string, detail bool) map[string]any {
	out := map[string]any{"id": project}
	user := r.URL.Query().Get("user_id")
	if user == "" && project == principal(r).ProjectID {
		user = principal(r).UserID
	}
	for _, n := range quotaNames(r) {
		limit := quotaLimit(tx, project, n)
		if detail {
			out[n] = map[string]any{"limit": limit, "in_use": quotaUsed(tx, project, user, n), "reserved": 0}
		} else {
			out[n] = limit
		}
	}
	return out
}

func (s *Service) showQuota(w http.ResponseWriter, r *http.Request) error {
	return s.writeQuota(w, r, false)
}

func (s *Service) showQuotaDetail(w http.ResponseWriter, r *http.Request) error {
	return s.writeQuota(w, r, true)
}

func (s *Service) writeQuota(w http.ResponseWriter, r *http.Request, detail bool) error {
	project, err := quotaProject(r)
	if err != nil {
		return err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"quota_set": s.quotaSet(r, tx, project, detail)})
	return nil
}

func (s *Service) showDefaultQuota(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	out := map[string]any{"id": chi.URLParam(r, "project")}
	for _, n := range quotaNames(r) {
		out[n] = quotaLimit(tx, "", n)
	}
	api.JSON(w, http.StatusOK, map[string]any{"quota_set": out})
	return nil
}

// classNames are the resources a quota class shows: the nova-network
// ones until 2.50, the server group ones from it.
func classNames(r *http.Request) []string {
	names := []string{"instances", "cores", "ram", "key_pairs", "metadata_items"}
	if !atLeast(r, 57) {
		names = append(names, "injected_files", "injected_file_content_bytes", "injected_file_path_bytes")
	}
	if atLeast(r, 50) {
		return append(names, "server_groups", "server_group_members")
	}
	return append(names, "fixed_ips", "floating_ips", "security_groups", "security_group_rules")
}

func (s *Service) classSet(r *http.Request, tx *memdb.Txn, class string) map[string]any {
	out := map[string]any{"id": class}
	for _, n := range classNames(r) {
		v := defaultQuotas[n]
		if q := store.Get[Quota](tx, tQuotas, classPrefix+class); q != nil {
			if x, ok := q.Limits[n]; ok {
				v = x
			}
		}
		out[n] = v
	}
	return out
}

// showQuotaClass shows a quota class; only "default" is in force: it
// replaces the built-in defaults of every project.
func (s *Service) showQuotaClass(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"quota_class_set": s.classSet(r, tx, chi.URLParam(r, "class"))})
	return nil
}

// readLimits reads the limits of a quota set body under key, whose
// attributes may be names (and the other attributes in also).
func readLimits(r *http.Request, key string, names []string, also ...string) (api.Object, map[string]int, error) {
	o, _, err := readBody(r, key)
	if err != nil {
		return nil, nil, err
	}
	if err := allowOnly(o, append(names, also...)...); err != nil {
		return nil, nil, err
	}
	in := newInput(o)
	limits := map[string]int{}
	for _, k := range api.Unexpected(o, also...) {
		limits[k] = integer(in, k, false, 0, -1, 1<<31-1)
	}
	return o, limits, in.Err
}

func (s *Service) updateQuotaClass(w http.ResponseWriter, r *http.Request) error {
	class := chi.URLParam(r, "class")
	_, limits, err := readLimits(r, "quota_class_set", classNames(r))
	if err != nil {
		return err
	}
	c := quotaSetCmd{Project: classPrefix + class, Limits: limits, Force: true}
	tx, err := api.Propose(r.Context(), s.cfg.Repl, cmdQuotaSet, c, nil)
	if err != nil {
		return err
	}
	v := s.classSet(r, tx, class)
	delete(v, "id")
	api.JSON(w, http.StatusOK, map[string]any{"quota_class_set": v})
	return nil
}

func (s *Service) updateQuota(w http.ResponseWriter, r *http.Request) error {
	project := chi.URLParam(r, "project")
	o, limits, err := readLimits(r, "quota_set", quotaNames(r), "force")
	if err != nil {
		return err
	}
	in := newInput(o)
	c := quotaSetCmd{Project: project, Limits: limits, Force: boolean(in, "force", false)}
	if in.Err != nil {
		return in.Err
	}
	tx, err := api.Propose(r.Context(), s.cfg.Repl, cmdQuotaSet, c, nil)
	if err != nil {
		return err
	}
	v := s.quotaSet(r, tx, project, false)
	delete(v, "id")
	api.JSON(w, http.StatusOK, map[string]any{"quota_set": v})
	return nil
}

func (s *Service) deleteQuota(w http.ResponseWriter, r *http.Request) error {
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdQuotaDelete, idCmd{ID: chi.URLParam(r, "project")}, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// limits answers GET /limits: the project's absolute limits and usage.
func (s *Service) limits(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	project := p.ProjectID
	if t := r.URL.Query().Get("tenant_id"); t != "" && t != project {
		if !p.IsAdmin() {
			return policyDenied("os_compute_api:limits:other_project")
		}
		project = t
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	l := func(n string) int { return quotaLimit(tx, project, n) }
	u := projectUsage(tx, project)
	abs := map[string]any{
		"maxServerMeta": l("metadata_items"), "maxTotalKeypairs": l("key_pairs"),
		"maxServerGroups": l("server_groups"), "maxServerGroupMembers": l("server_group_members"),
		"maxTotalCores": l("cores"), "maxTotalInstances": l("instances"), "maxTotalRAMSize": l("ram"),
		"totalCoresUsed": u.Cores, "totalInstancesUsed": u.Instances, "totalRAMUsed": u.RAM,
		"totalServerGroupsUsed": len(store.All[ServerGroup](tx, tGroups, "project", project)),
	}
	if !atLeast(r, 36) {
		abs["maxSecurityGroups"], abs["maxSecurityGroupRules"] = l("security_groups"), l("security_group_rules")
		abs["maxTotalFloatingIps"], abs["totalFloatingIpsUsed"], abs["totalSecurityGroupsUsed"] = l("floating_ips"), 0, 0
	}
	if !atLeast(r, 39) {
		abs["maxImageMeta"] = 128
	}
	if !atLeast(r, 57) {
		abs["maxPersonality"], abs["maxPersonalitySize"] = l("injected_files"), l("injected_file_content_bytes")
	}
	api.JSON(w, http.StatusOK, map[string]any{"limits": map[string]any{"rate": []any{}, "absolute": abs}})
	return nil
}
