package volstate

import (
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// Project default volume types (Cinder 3.62's default-types): a project's
// volumes made without a type are of its default type, else of the
// cloud's (DefaultTypeID).
type ProjectDefault struct {
	ID     string `json:"id"` // the project
	TypeID string `json:"type_id"`
}

// DefaultTypeTable and its commands.
const (
	DefaultTypeTable    = "volume_default_types"
	CmdSetDefaultType   = "volume.default_type.set"
	CmdUnsetDefaultType = "volume.default_type.unset"
)

func defaultTypeTable() store.Table {
	return store.NewTable(DefaultTypeTable, &ProjectDefault{})
}

// ProjectDefaultType is the type project's volumes get when none is
// named: its own default if one is set, else the cloud's.
func ProjectDefaultType(tx *memdb.Txn, project string) (*Type, error) {
	if d := store.Get[ProjectDefault](tx, DefaultTypeTable, project); d != nil {
		if t := store.Get[Type](tx, TypeTable, d.TypeID); t != nil {
			return t, nil
		}
	}
	return LoadType(tx, DefaultTypeID)
}

// SetDefaultTypeCmd sets a project's default type, an existing one.
type SetDefaultTypeCmd struct {
	Row ProjectDefault `json:"row"`
}

func applySetDefaultType(tx *memdb.Txn, c SetDefaultTypeCmd) (any, error) {
	if c.Row.ID == "" {
		return nil, invalid("Invalid input received: the project must not be empty.")
	}
	if store.Get[Type](tx, TypeTable, c.Row.TypeID) == nil {
		return nil, store.Fault(store.KindNotFound, "itemNotFound", "Volume type %s could not be found.", c.Row.TypeID)
	}
	row := c.Row
	return row, tx.Insert(DefaultTypeTable, &row)
}

// UnsetDefaultTypeCmd removes a project's default type.
type UnsetDefaultTypeCmd struct {
	Project string `json:"project"`
}

func applyUnsetDefaultType(tx *memdb.Txn, c UnsetDefaultTypeCmd) (any, error) {
	cur := store.Get[ProjectDefault](tx, DefaultTypeTable, c.Project)
	if cur == nil {
		return nil, store.Fault(store.KindNotFound, "itemNotFound", "Default type for project %s could not be found.", c.Project)
	}
	return nil, tx.Delete(DefaultTypeTable, cur)
}

// defaultOf is the project whose default type id is, if any.
func defaultOf(tx *memdb.Txn, id string) string {
	for _, d := range store.All[ProjectDefault](tx, DefaultTypeTable, "id") {
		if d.TypeID == id {
			return d.ID
		}
	}
	return ""
}
