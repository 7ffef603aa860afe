package network

import (
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// Default quotas, as Neutron ships them (subnet pools unlimited, as
// Neutron's default_quota leaves them).
var defaultQuotas = map[string]int{"network": 100, "subnet": 100, "port": 500, "security_group": 10, "security_group_rule": 100,
	"router": 10, "floatingip": 50, "rbac_policy": 10, "subnetpool": -1}

// quotaTables maps each quota resource to the table it counts.
var quotaTables = map[string]string{"network": tNetworks, "subnet": tSubnets, "port": tPorts, "security_group": tGroups, "security_group_rule": tRules,
	"router": tRouters, "floatingip": tFloatingIPs, "rbac_policy": tRBAC, "subnetpool": tSubnetPools}

func quotaLimit(tx *memdb.Txn, project, resource string) int {
	if q := store.Get[Quota](tx, tQuotas, project); q != nil {
		if v, ok := q.Limits[resource]; ok {
			return v
		}
	}
	return defaultQuotas[resource]
}

func usage(tx *memdb.Txn, project, resource string) int {
	it, err := tx.Get(quotaTables[resource], "project", project)
	if err != nil {
		return 0
	}
	n := 0
	for raw := it.Next(); raw != nil; raw = it.Next() {
		n++
	}
	return n
}

// checkQuota runs after the insert: the count includes the new row.
func checkQuota(tx *memdb.Txn, project, resource string) error {
	limit := quotaLimit(tx, project, resource)
	if limit >= 0 && usage(tx, project, resource) > limit {
		return store.Fault(store.KindConflict, "OverQuota", "Quota exceeded for resources: ['%s'].", resource)
	}
	return nil
}

type quotaSetCmd struct {
	Project string         `json:"project"`
	Limits  map[string]int `json:"limits"`
}

func applyQuotaSet(tx *memdb.Txn, c quotaSetCmd) (any, error) {
	q := Quota{ID: c.Project, Limits: map[string]int{}}
	if old := store.Get[Quota](tx, tQuotas, c.Project); old != nil {
		for k, v := range old.Limits {
			q.Limits[k] = v
		}
	}
	for k, v := range c.Limits {
		if _, ok := defaultQuotas[k]; !ok {
			return nil, badInput("quota", "unknown resource %s", k)
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
