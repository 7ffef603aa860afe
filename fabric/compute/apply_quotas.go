package compute

import (
	"strings"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// Quotas.

// defaultQuotas are Nova's defaults. The legacy entries (fixed_ips,
// floating_ips, security_groups, security_group_rules) are shown to
// clients of microversions before 2.36 and enforce nothing here.
var defaultQuotas = map[string]int{
	"instances": 10, "cores": 20, "ram": 51200, "key_pairs": 100, "server_groups": 10, "server_group_members": 10,
	"metadata_items": 128, "injected_files": 5, "injected_file_content_bytes": 10240, "injected_file_path_bytes": 255,
	"fixed_ips": -1, "floating_ips": 10, "security_groups": 10, "security_group_rules": 20,
}

// defaultClass is the quota class whose limits replace the built-in
// defaults (Nova's os-quota-class-sets/default); its row's id is
// classPrefix + name, which no project id has.
const (
	defaultClass = "default"
	classPrefix  = "class:"
)

// quotaLimit is a project's limit: its own, else the default class's,
// else the built-in default. project "" asks for the default.
func quotaLimit(tx *memdb.Txn, project, resource string) int {
	for _, id := range []string{project, classPrefix + defaultClass} {
		if id == "" {
			continue
		}
		if q := store.Get[Quota](tx, tQuotas, id); q != nil {
			if v, ok := q.Limits[resource]; ok {
				return v
			}
		}
	}
	return defaultQuotas[resource]
}

// usage is what a project's servers (those the API still shows) claim.
type usage struct{ Instances, Cores, RAM int }

func projectUsage(tx *memdb.Txn, project string) usage {
	var u usage
	for _, s := range store.All[Server](tx, tServers, "project", project) {
		if s.Hidden {
			continue
		}
		u.Instances++
		u.Cores += s.Flavor.VCPUs
		u.RAM += s.Flavor.RAM
	}
	return u
}

// checkServerQuota refuses servers that would take a project over its
// instances, cores or ram quota, in Nova's words.
func checkServerQuota(tx *memdb.Txn, project string, servers []Server) error {
	want := usage{Instances: len(servers)}
	for _, s := range servers {
		want.Cores += s.Flavor.VCPUs
		want.RAM += s.Flavor.RAM
	}
	return checkQuotaAdd(tx, project, want)
}

// checkQuotaAdd refuses adding add to a project's instances, cores and
// ram when that takes it over a quota, in Nova's words; what add takes
// away or leaves as it is always fits.
func checkQuotaAdd(tx *memdb.Txn, project string, add usage) error {
	u := projectUsage(tx, project)
	for _, c := range []struct {
		name      string
		used, add int
	}{{"instances", u.Instances, add.Instances}, {"cores", u.Cores, add.Cores}, {"ram", u.RAM, add.RAM}} {
		if c.add <= 0 {
			continue
		}
		limit := quotaLimit(tx, project, c.name)
		if limit >= 0 && c.used+c.add > limit {
			return overQuota("Quota exceeded for %s: Requested %d, but already used %d of %d %s", c.name, c.add, c.used, limit, c.name)
		}
	}
	return nil
}

type quotaSetCmd struct {
	Project string         `json:"project"`
	Limits  map[string]int `json:"limits"`
	// Force skips the check that no limit is set below current usage.
	Force bool `json:"force,omitempty"`
}

func applyQuotaSet(tx *memdb.Txn, c quotaSetCmd) (any, error) {
	q := Quota{ID: c.Project, Limits: map[string]int{}}
	if old := store.Get[Quota](tx, tQuotas, c.Project); old != nil {
		for k, v := range old.Limits {
			q.Limits[k] = v
		}
	}
	u := projectUsage(tx, c.Project)
	used := map[string]int{"instances": u.Instances, "cores": u.Cores, "ram": u.RAM}
	for k, v := range c.Limits {
		if _, ok := defaultQuotas[k]; !ok {
			return nil, badRequest("Additional properties are not allowed ('%s' was unexpected)", k)
		}
		if !c.Force && !strings.HasPrefix(c.Project, classPrefix) && v >= 0 && v < used[k] {
			return nil, badRequest("Quota limit %d for %s must be greater than or equal to already used and reserved %d.", v, k, used[k])
		}
		q.Limits[k] = v
	}
	return nil, tx.Insert(tQuotas, &q)
}

func applyQuotaDelete(tx *memdb.Txn, c idCmd) (any, error) {
	if q := store.Get[Quota](tx, tQuotas, c.ID); q != nil {
		return nil, tx.Delete(tQuotas, q)
	}
	return nil, nil
}
