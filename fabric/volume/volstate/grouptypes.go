package volstate

import (
	"maps"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// GroupType is a Cinder group type (3.11): the kind of a generic volume
// group, with its group specs.
type GroupType struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	Public      bool              `json:"public"`
	Specs       map[string]string `json:"specs,omitempty"`
}

// Clone copies t deeply.
func (t *GroupType) Clone() *GroupType {
	c := *t
	c.Specs = maps.Clone(t.Specs)
	return &c
}

// GroupTypeTable and the group type commands.
const (
	GroupTypeTable     = "volume_group_types"
	CmdPutGroupType    = "volume.group_type.put"
	CmdDeleteGroupType = "volume.group_type.delete"
)

func groupTypeTable() store.Table {
	return store.NewTable(GroupTypeTable, &GroupType{}, store.StringIndex("name", "Name", true))
}

// PutGroupTypeCmd creates a group type (Create) or replaces one; its
// name is unique.
type PutGroupTypeCmd struct {
	Row    GroupType `json:"row"`
	Create bool      `json:"create,omitempty"`
}

func applyPutGroupType(tx *memdb.Txn, c PutGroupTypeCmd) (any, error) {
	cur := store.Get[GroupType](tx, GroupTypeTable, c.Row.ID)
	if c.Create && cur != nil {
		return nil, store.Conflictf("group type %s exists", c.Row.ID)
	}
	if !c.Create && cur == nil {
		return nil, store.Fault(store.KindNotFound, "itemNotFound", "Group type %s could not be found.", c.Row.ID)
	}
	if other, _ := tx.First(GroupTypeTable, "name", c.Row.Name); other != nil && other.(*GroupType).ID != c.Row.ID {
		return nil, store.Fault(store.KindConflict, "conflictingRequest", "Group Type %s already exists.", c.Row.Name)
	}
	row := c.Row.Clone()
	return *row, tx.Insert(GroupTypeTable, row)
}

// DeleteGroupTypeCmd deletes a group type.
type DeleteGroupTypeCmd struct {
	ID string `json:"id"`
}

func applyDeleteGroupType(tx *memdb.Txn, c DeleteGroupTypeCmd) (any, error) {
	t := store.Get[GroupType](tx, GroupTypeTable, c.ID)
	if t == nil {
		return nil, store.Fault(store.KindNotFound, "itemNotFound", "Group type %s could not be found.", c.ID)
	}
	for _, g := range store.All[Group](tx, GroupTable, "id") {
		if g.GroupTypeID == c.ID {
			return nil, invalid("Invalid group type: Group Type %s deletion is not allowed with groups present with the type.", c.ID)
		}
	}
	return nil, tx.Delete(GroupTypeTable, t)
}
