package volstate

import (
	"maps"
	"slices"
	"strings"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// Quota classes are named sets of limits (Cinder's os-quota-class-sets).
// Only the class DefaultQuotaClass is ever applied: a project's limit of
// a resource is its own override, else the default class's, else the
// shipped default (DefaultQuotas). Other classes are kept and shown, as
// Cinder keeps them, and limit nothing.
const (
	DefaultQuotaClass = "default"
	QuotaClassTable   = "volume_quota_classes"
	CmdSetQuotaClass  = "volume.quota_class.set"
)

func quotaClassTable() store.Table { return store.NewTable(QuotaClassTable, &Quota{}) }

// DefaultLimit is the limit of resource for a project without an
// override of it: the default class's, else the shipped default.
func DefaultLimit(tx *memdb.Txn, resource string) int {
	return ClassLimit(tx, DefaultQuotaClass, resource)
}

// ClassLimit is class's limit of resource: what was set for it, else the
// shipped default.
func ClassLimit(tx *memdb.Txn, class, resource string) int {
	if q := store.Get[Quota](tx, QuotaClassTable, class); q != nil {
		if v, ok := q.Limits[resource]; ok {
			return v
		}
	}
	if v, ok := DefaultQuotas()[resource]; ok {
		return v
	}
	return -1 // a per-type resource
}

// SetQuotaClassCmd sets some of a quota class's limits.
type SetQuotaClassCmd struct {
	Class  string         `json:"class"`
	Limits map[string]int `json:"limits"`
}

func applySetQuotaClass(tx *memdb.Txn, c SetQuotaClassCmd) (any, error) {
	if c.Class == "" {
		return nil, invalid("Invalid quota class: the name must not be empty.")
	}
	q := Quota{ID: c.Class, Limits: map[string]int{}}
	if old := store.Get[Quota](tx, QuotaClassTable, c.Class); old != nil {
		maps.Copy(q.Limits, old.Limits)
	}
	for k, v := range c.Limits {
		if !IsQuotaResource(tx, k) {
			return nil, invalid("Bad key(s) in quota class set: %s", k)
		}
		if v < -1 {
			return nil, invalid("Quota limit %d for %s must be -1 or greater.", v, k)
		}
		q.Limits[k] = v
	}
	return nil, tx.Insert(QuotaClassTable, &q)
}

// Per-type quotas: Cinder's volumes_<type>, gigabytes_<type> and
// snapshots_<type>, by the type's name, unlimited (-1) by default. They
// are checked with the project-wide ones, on the volumes and snapshots of
// that type.
var perTypeKinds = []string{QuotaVolumes, QuotaGigabytes, QuotaSnapshots}

// QuotaResources are the quota resource names: the fixed ones and the
// per-type ones of every type, sorted.
func QuotaResources(tx *memdb.Txn) []string {
	var out []string
	for k := range DefaultQuotas() {
		out = append(out, k)
	}
	for _, t := range Types(tx) {
		for _, k := range perTypeKinds {
			out = append(out, k+"_"+t.Name)
		}
	}
	slices.Sort(out)
	return out
}

// IsQuotaResource reports whether name is a quota resource in tx.
func IsQuotaResource(tx *memdb.Txn, name string) bool {
	if _, ok := DefaultQuotas()[name]; ok {
		return true
	}
	_, ok := typeOfResource(tx, name)
	return ok
}

// typeOfResource is the type a per-type resource names, and its kind.
func typeOfResource(tx *memdb.Txn, name string) (typeKind, bool) {
	for _, k := range perTypeKinds {
		if rest, ok := strings.CutPrefix(name, k+"_"); ok {
			if t := TypeByName(tx, rest); t != nil {
				return typeKind{typeID: t.ID, kind: k}, true
			}
		}
	}
	return typeKind{}, false
}

type typeKind struct{ typeID, kind string }

// typeResources are the per-type resources of kinds for type id.
func typeResources(tx *memdb.Txn, typeID string, kinds ...string) []string {
	t := store.Get[Type](tx, TypeTable, typeID)
	if t == nil {
		t = DefaultType()
		if typeID != t.ID {
			return nil
		}
	}
	out := make([]string, 0, len(kinds))
	for _, k := range kinds {
		out = append(out, k+"_"+t.Name)
	}
	return out
}

// typeUsage is how much of a per-type resource project uses.
func typeUsage(tx *memdb.Txn, project string, tk typeKind) int {
	n := 0
	vols := store.All[Volume](tx, VolumeTable, "project", project)
	switch tk.kind {
	case QuotaVolumes:
		for _, v := range vols {
			if v.TypeID == tk.typeID {
				n++
			}
		}
	case QuotaGigabytes:
		for _, v := range vols {
			if v.TypeID == tk.typeID {
				n += v.Size
			}
		}
		fallthrough
	case QuotaSnapshots:
		for _, s := range store.All[Snapshot](tx, SnapshotTable, "project", project) {
			if v := store.Get[Volume](tx, VolumeTable, s.VolumeID); v != nil && v.TypeID == tk.typeID {
				if tk.kind == QuotaGigabytes {
					n += s.Size
				} else {
					n++
				}
			}
		}
	}
	return n
}
