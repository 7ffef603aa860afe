package volstate

import (
	"fmt"
	"maps"
	"slices"
	"strconv"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// QoSSpec is a named set of I/O limits (Cinder's qos-specs) that volume
// types are associated with (Type.QoSSpecID). Only limits this cloud
// enforces are accepted (CheckQoS): the front-end ones (consumer
// front-end or both), which the node agent applies to the guest's disk as
// QEMU throttling when it plugs a volume of an associated type. A
// back-end spec may hold no keys: the block store has no limits of its
// own, and a limit accepted and then ignored is worse than a refusal.
type QoSSpec struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Consumer string            `json:"consumer"`
	Specs    map[string]string `json:"specs,omitempty"`
	Revision int64             `json:"revision"`
}

// Clone copies the row deeply.
func (q *QoSSpec) Clone() *QoSSpec {
	c := *q
	c.Specs = maps.Clone(q.Specs)
	return &c
}

// QoS consumers (Cinder's).
const (
	ConsumerFrontEnd = "front-end"
	ConsumerBackEnd  = "back-end"
	ConsumerBoth     = "both"
)

// QoS limit keys: the six QEMU throttles a guest's disk takes.
const (
	QoSReadIOPS   = "read_iops_sec"
	QoSWriteIOPS  = "write_iops_sec"
	QoSTotalIOPS  = "total_iops_sec"
	QoSReadBytes  = "read_bytes_sec"
	QoSWriteBytes = "write_bytes_sec"
	QoSTotalBytes = "total_bytes_sec"
)

// QoSKeys are the limit keys a spec may hold.
func QoSKeys() []string {
	return []string{QoSReadIOPS, QoSWriteIOPS, QoSTotalIOPS, QoSReadBytes, QoSWriteBytes, QoSTotalBytes}
}

// CheckQoS checks a spec's consumer and keys as a whole: every key is
// one this cloud enforces, with a positive integer value, and a total
// limit is not combined with a read or write one of the same kind (QEMU
// refuses the combination). The error names the key.
func CheckQoS(consumer string, specs map[string]string) error {
	switch consumer {
	case ConsumerFrontEnd, ConsumerBoth, ConsumerBackEnd:
	default:
		return fmt.Errorf("consumer %q: want front-end, back-end or both", consumer)
	}
	for _, k := range slices.Sorted(maps.Keys(specs)) {
		if !slices.Contains(QoSKeys(), k) {
			return fmt.Errorf("key %q is not a limit this cloud enforces (it enforces %v on the guest's disk)", k, QoSKeys())
		}
		if consumer == ConsumerBackEnd {
			return fmt.Errorf("key %q: back-end limits are not enforced by this cloud's block store; use consumer front-end or both", k)
		}
		if n, err := strconv.ParseInt(specs[k], 10, 64); err != nil || n <= 0 {
			return fmt.Errorf("key %q: value %q is not a positive integer", k, specs[k])
		}
	}
	for _, pair := range [][3]string{{QoSTotalIOPS, QoSReadIOPS, QoSWriteIOPS}, {QoSTotalBytes, QoSReadBytes, QoSWriteBytes}} {
		_, total := specs[pair[0]]
		_, rd := specs[pair[1]]
		_, wr := specs[pair[2]]
		if total && (rd || wr) {
			return fmt.Errorf("key %q cannot be combined with %q or %q", pair[0], pair[1], pair[2])
		}
	}
	return nil
}

// QoSLimits is the I/O limits a volume of type typeID gets in its guest,
// key → value (none: unlimited).
func QoSLimits(tx *memdb.Txn, typeID string) map[string]int64 {
	t, err := LoadType(tx, typeID)
	if err != nil || t.QoSSpecID == "" {
		return nil
	}
	q := store.Get[QoSSpec](tx, QoSTable, t.QoSSpecID)
	if q == nil || q.Consumer == ConsumerBackEnd {
		return nil
	}
	out := map[string]int64{}
	for k, v := range q.Specs {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
			out[k] = n
		}
	}
	return out
}

// QoSTable and the QoS commands. Associating a type is a change of the
// type (PutType), which refuses a spec that does not exist.
const (
	QoSTable     = "volume_qos_specs"
	CmdCreateQoS = "volume.qos.create"
	CmdPutQoS    = "volume.qos.put"
	CmdDeleteQoS = "volume.qos.delete"
)

func qosTable() store.Table {
	return store.NewTable(QoSTable, &QoSSpec{}, store.StringIndex("name", "Name", true))
}

// LoadQoS is the spec id.
func LoadQoS(tx *memdb.Txn, id string) (*QoSSpec, error) {
	if q := store.Get[QoSSpec](tx, QoSTable, id); q != nil {
		return q, nil
	}
	return nil, store.Fault(store.KindNotFound, "itemNotFound", "QoS spec %s could not be found.", id)
}

// TypesOfQoS lists the types associated with spec id.
func TypesOfQoS(tx *memdb.Txn, id string) []*Type {
	var out []*Type
	for _, t := range Types(tx) {
		if t.QoSSpecID == id {
			out = append(out, t)
		}
	}
	return out
}

// CreateQoSCmd inserts a spec.
type CreateQoSCmd struct {
	Row QoSSpec `json:"row"`
}

func applyCreateQoS(tx *memdb.Txn, c CreateQoSCmd) (any, error) {
	if store.Get[QoSSpec](tx, QoSTable, c.Row.ID) != nil {
		return nil, store.Conflictf("qos spec %s exists", c.Row.ID)
	}
	if raw, _ := tx.First(QoSTable, "name", c.Row.Name); raw != nil {
		return nil, store.Fault(store.KindConflict, "conflictingRequest", "QoS Specs %s already exists.", c.Row.Name)
	}
	if err := CheckQoS(c.Row.Consumer, c.Row.Specs); err != nil {
		return nil, invalid("Invalid qos specs: %s.", err)
	}
	row := c.Row
	row.Revision = 1
	return row, tx.Insert(QoSTable, &row)
}

// PutQoSCmd replaces a spec whose current revision is Revision.
type PutQoSCmd struct {
	Row      QoSSpec `json:"row"`
	Revision int64   `json:"revision"`
}

func applyPutQoS(tx *memdb.Txn, c PutQoSCmd) (any, error) {
	cur, err := current[QoSSpec](tx, QoSTable, "qos spec", c.Row.ID, c.Revision, func(q *QoSSpec) int64 { return q.Revision })
	if err != nil {
		return nil, err
	}
	if c.Row.Name != cur.Name {
		return nil, invalid("a qos spec's name cannot change")
	}
	if err := CheckQoS(c.Row.Consumer, c.Row.Specs); err != nil {
		return nil, invalid("Invalid qos specs: %s.", err)
	}
	row := c.Row
	row.Revision = cur.Revision + 1
	return row, tx.Insert(QoSTable, &row)
}

// DeleteQoSCmd removes a spec; one associated with types only with
// Force, which disassociates them in the same step.
type DeleteQoSCmd struct {
	ID    string `json:"id"`
	Force bool   `json:"force,omitempty"`
}

func applyDeleteQoS(tx *memdb.Txn, c DeleteQoSCmd) (any, error) {
	cur, err := LoadQoS(tx, c.ID)
	if err != nil {
		return nil, err
	}
	types := TypesOfQoS(tx, c.ID)
	if len(types) > 0 && !c.Force {
		return nil, invalid("QoS Specs %s is still associated with entities.", c.ID)
	}
	for _, cur := range types {
		t := cur.Clone()
		t.QoSSpecID = ""
		t.Revision++
		if err := tx.Insert(TypeTable, t); err != nil {
			return nil, err
		}
	}
	return nil, tx.Delete(QoSTable, cur)
}
