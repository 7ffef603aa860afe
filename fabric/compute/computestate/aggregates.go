package computestate

import (
	"cmp"
	"slices"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// Aggregate is Nova's host aggregate: a named group of compute nodes
// with metadata. Its availability zone is not a column but the metadata
// key AZKey, as in Nova, so set_metadata and update change the same
// thing; a node in an aggregate with that key is in that zone (NodeAZ).
type Aggregate struct {
	ID string `json:"id"` // uuid (Nova's 2.41)
	// Seq is Nova's integer id: the log index of the create.
	Seq      uint64            `json:"seq"`
	Name     string            `json:"name"`
	Hosts    []string          `json:"hosts"`
	Metadata map[string]string `json:"metadata,omitempty"`
	Created  time.Time         `json:"created"`
	Updated  time.Time         `json:"updated,omitzero"`
}

// AZKey is the metadata key that puts an aggregate's hosts in a zone.
const AZKey = "availability_zone"

// AZ is the aggregate's availability zone, "" for none.
func (a *Aggregate) AZ() string { return a.Metadata[AZKey] }

// TableAggregates holds the host aggregates. It is a table of its own, so
// a snapshot made before it existed restores into an empty one.
const TableAggregates = "compute_aggregates"

func aggregatesTable() store.Table {
	return store.NewTable(TableAggregates, &Aggregate{},
		&memdb.IndexSchema{Name: "seq", Unique: true, Indexer: &memdb.UintFieldIndex{Field: "Seq"}},
		&memdb.IndexSchema{Name: "host", AllowMissing: true, Indexer: &memdb.StringSliceFieldIndex{Field: "Hosts"}})
}

// AggregateBySeq is the aggregate whose integer id is seq, or nil.
func AggregateBySeq(tx *memdb.Txn, seq uint64) *Aggregate {
	raw, err := tx.First(TableAggregates, "seq", seq)
	if err != nil || raw == nil {
		return nil
	}
	return raw.(*Aggregate)
}

// HostAggregates are the aggregates host is in, by integer id.
func HostAggregates(tx *memdb.Txn, host string) []*Aggregate {
	out := store.All[Aggregate](tx, TableAggregates, "host", host)
	slices.SortFunc(out, func(a, b *Aggregate) int { return cmp.Compare(a.Seq, b.Seq) })
	return out
}

// NodeAZ is the one answer to "which availability zone is node X in":
// the zone of an aggregate it is in, else own (the node's own zone, or
// the service's default). The API refuses to put a node in two
// aggregates of different zones; should a state hold one anyway, the
// oldest aggregate's zone wins, so every node answers alike.
func NodeAZ(tx *memdb.Txn, node, own string) string {
	for _, a := range HostAggregates(tx, node) {
		if az := a.AZ(); az != "" {
			return az
		}
	}
	return own
}
