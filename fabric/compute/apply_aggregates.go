package compute

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/store"
)

// Host aggregates. The rules that read other rows (unique names, one
// zone per host, no zone change under servers) are checked here, in the
// apply, so two concurrent requests cannot both pass them. That a host
// is a real node is checked by the API before proposing: membership of
// the cluster is not part of this state.
//
// Crash safety: each request is one command, answered only once Raft
// has committed it, and touches nothing outside the state; a node killed
// at any point either has it in its log (replayed on restart) or never
// acknowledged it. Its rows are in the snapshot like any table's, and a
// snapshot from before this table restores into an empty one.

type Aggregate = computestate.Aggregate

const tAggregates = computestate.TableAggregates

const (
	cmdAggregateCreate = "compute.aggregate.create"
	cmdAggregateUpdate = "compute.aggregate.update"
	cmdAggregateDelete = "compute.aggregate.delete"
	cmdAggregateHost   = "compute.aggregate.host"
	cmdAggregateMeta   = "compute.aggregate.metadata"
)

// aggregateHandlers are the aggregate commands, for Schema.
func aggregateHandlers() map[string]store.Handler {
	return map[string]store.Handler{
		cmdAggregateCreate: applyAggregateCreate,
		cmdAggregateUpdate: store.Typed(applyAggregateUpdate),
		cmdAggregateDelete: store.Typed(applyAggregateDelete),
		cmdAggregateHost:   store.Typed(applyAggregateHost),
		cmdAggregateMeta:   store.Typed(applyAggregateMeta),
	}
}

// Nova's reasons, by the action that was refused.
const (
	aggActionAdd        = "Cannot add host to aggregate %d. Reason: %s."
	aggActionUpdate     = "Cannot update aggregate %d. Reason: %s."
	aggActionUpdateMeta = "Cannot update metadata of aggregate %d. Reason: %s."
	aggActionDelete     = "Cannot remove aggregate %d. Reason: %s."
)

func aggregateNotFound(id any) error { return notFound("Aggregate %v could not be found.", id) }

type aggregateCreateCmd struct {
	Aggregate Aggregate `json:"aggregate"`
}

// applyAggregateCreate makes an aggregate; its log index is its integer id.
func applyAggregateCreate(tx *memdb.Txn, index uint64, body json.RawMessage) (any, error) {
	var c aggregateCreateCmd
	if err := store.DecodeBody(body, &c); err != nil {
		return nil, err
	}
	a := c.Aggregate
	a.Seq = index
	if a.Hosts == nil {
		a.Hosts = []string{}
	}
	if store.Get[Aggregate](tx, tAggregates, a.ID) != nil {
		return nil, store.Conflictf("aggregate %s exists", a.ID)
	}
	if err := uniqueAggregateName(tx, a.Name, 0); err != nil {
		return nil, err
	}
	return a, tx.Insert(tAggregates, &a)
}

func uniqueAggregateName(tx *memdb.Txn, name string, self uint64) error {
	for _, o := range store.All[Aggregate](tx, tAggregates, "id") {
		if o.Name == name && o.Seq != self {
			return conflict("Aggregate %s already exists.", name)
		}
	}
	return nil
}

// aggregateUpdateCmd renames an aggregate and/or sets its zone.
type aggregateUpdateCmd struct {
	Seq  uint64    `json:"seq"`
	Name *string   `json:"name,omitempty"`
	AZ   *string   `json:"az,omitempty"`
	Now  time.Time `json:"now"`
}

func applyAggregateUpdate(tx *memdb.Txn, c aggregateUpdateCmd) (any, error) {
	old := computestate.AggregateBySeq(tx, c.Seq)
	if old == nil {
		return nil, aggregateNotFound(c.Seq)
	}
	a := copyAggregate(old)
	if c.Name != nil {
		if err := uniqueAggregateName(tx, *c.Name, a.Seq); err != nil {
			return nil, err
		}
		a.Name = *c.Name
	}
	if c.AZ != nil {
		if err := zoneChangeAllowed(tx, old, *c.AZ, a.Hosts, aggActionUpdate); err != nil {
			return nil, err
		}
		a.Metadata[computestate.AZKey] = *c.AZ
	}
	a.Updated = c.Now
	return a, tx.Insert(tAggregates, &a)
}

func applyAggregateDelete(tx *memdb.Txn, c aggregateUpdateCmd) (any, error) {
	a := computestate.AggregateBySeq(tx, c.Seq)
	if a == nil {
		return nil, aggregateNotFound(c.Seq)
	}
	if len(a.Hosts) > 0 {
		return nil, badRequest(aggActionDelete, a.Seq, "Host aggregate is not empty")
	}
	return nil, tx.Delete(tAggregates, a)
}

// aggregateHostCmd adds a host to an aggregate (Add) or removes it.
type aggregateHostCmd struct {
	Seq  uint64    `json:"seq"`
	Host string    `json:"host"`
	Add  bool      `json:"add"`
	Now  time.Time `json:"now"`
}

func applyAggregateHost(tx *memdb.Txn, c aggregateHostCmd) (any, error) {
	old := computestate.AggregateBySeq(tx, c.Seq)
	if old == nil {
		return nil, aggregateNotFound(c.Seq)
	}
	a := copyAggregate(old)
	member := slices.Contains(a.Hosts, c.Host)
	switch {
	case c.Add && member:
		return nil, conflict("Aggregate %d already has host %s.", a.Seq, c.Host)
	case c.Add:
		if az := a.AZ(); az != "" {
			if zones := otherZones(tx, []string{c.Host}, a.Seq, az); len(zones) > 0 {
				return nil, conflict(aggActionAdd, a.Seq, inZones(zones))
			}
		}
		a.Hosts = append(a.Hosts, c.Host)
	case !member:
		return nil, notFound("Cannot remove host %s in aggregate %d", c.Host, a.Seq)
	default:
		a.Hosts = slices.DeleteFunc(a.Hosts, func(h string) bool { return h == c.Host })
	}
	a.Updated = c.Now
	return a, tx.Insert(tAggregates, &a)
}

// aggregateMetaCmd sets metadata keys; a nil value deletes its key.
type aggregateMetaCmd struct {
	Seq uint64             `json:"seq"`
	Set map[string]*string `json:"set"`
	Now time.Time          `json:"now"`
}

func applyAggregateMeta(tx *memdb.Txn, c aggregateMetaCmd) (any, error) {
	old := computestate.AggregateBySeq(tx, c.Seq)
	if old == nil {
		return nil, aggregateNotFound(c.Seq)
	}
	a := copyAggregate(old)
	if v, ok := c.Set[computestate.AZKey]; ok {
		az := ""
		if v != nil {
			az = *v
		}
		if err := zoneChangeAllowed(tx, old, az, a.Hosts, aggActionUpdateMeta); err != nil {
			return nil, err
		}
	}
	for k, v := range c.Set {
		if v == nil {
			delete(a.Metadata, k)
		} else {
			a.Metadata[k] = *v
		}
	}
	a.Updated = c.Now
	return a, tx.Insert(tAggregates, &a)
}

// zoneChangeAllowed is Nova's is_safe_to_update_az: a zone has a name;
// no host may end up in two zones; and a zone with servers in it is not
// renamed under them (they keep the zone they were booted in, which
// would no longer exist).
func zoneChangeAllowed(tx *memdb.Txn, a *Aggregate, az string, hosts []string, action string) error {
	if az == "" {
		return badRequest(action, a.Seq, fmt.Sprintf("Aggregate %s does not support empty named availability zone", a.Name))
	}
	if zones := otherZones(tx, hosts, a.Seq, az); len(zones) > 0 {
		return badRequest(action, a.Seq, inZones(zones))
	}
	if cur := a.AZ(); cur != "" && cur != az {
		for _, h := range hosts {
			for _, s := range store.All[Server](tx, tServers, "host", h) {
				if !s.Hidden && s.AZ == cur {
					return badRequest(action, a.Seq, "One or more hosts contain instances in this zone")
				}
			}
		}
	}
	return nil
}

// otherZones are the zones other than az of the other aggregates that
// hold any of hosts.
func otherZones(tx *memdb.Txn, hosts []string, self uint64, az string) []string {
	seen := map[string]bool{}
	for _, h := range hosts {
		for _, o := range computestate.HostAggregates(tx, h) {
			if z := o.AZ(); o.Seq != self && z != "" && z != az {
				seen[z] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for z := range seen {
		out = append(out, z)
	}
	sort.Strings(out)
	return out
}

func inZones(zones []string) string {
	q := make([]string, len(zones))
	for i, z := range zones {
		q[i] = "'" + z + "'"
	}
	return fmt.Sprintf("One or more hosts already in availability zone(s) %v", q)
}

func copyAggregate(a *Aggregate) Aggregate {
	n := *a
	n.Hosts = slices.Clone(a.Hosts)
	if n.Hosts == nil {
		n.Hosts = []string{}
	}
	n.Metadata = map[string]string{}
	for k, v := range a.Metadata {
		n.Metadata[k] = v
	}
	return n
}
