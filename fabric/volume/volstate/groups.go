package volstate

import (
	"slices"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// Generic volume groups (Cinder 3.13) and group snapshots (3.14). A group
// is of a group type and holds volumes of the volume types it names; a
// volume is in at most one group (Volume.GroupID). A group snapshot is a
// snapshot of each of the group's volumes (Snapshot.GroupSnapshotID),
// made through the same snapshot rows and block store call as a single
// snapshot.

// Group statuses (Cinder's GroupStatus).
const (
	GroupCreating      = "creating"
	GroupAvailable     = "available"
	GroupUpdating      = "updating"
	GroupDeleting      = "deleting"
	GroupError         = "error"
	GroupErrorDeleting = "error_deleting"
	GroupInUse         = "in-use"
	GroupDeleted       = "deleted"
)

// GroupStatuses are the statuses an admin may set (reset_status).
func GroupStatuses() []string {
	return []string{GroupError, GroupAvailable, GroupCreating, GroupDeleting, GroupDeleted, GroupUpdating, GroupInUse, GroupErrorDeleting}
}

// GroupSnapshotStatuses are the statuses an admin may set on a group
// snapshot (Cinder's GroupSnapshotStatus).
func GroupSnapshotStatuses() []string {
	return []string{GroupError, GroupAvailable, GroupCreating, GroupDeleting, GroupDeleted, GroupUpdating, GroupErrorDeleting}
}

// Group is a generic volume group.
type Group struct {
	ID          string `json:"id"`
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
	Project     string `json:"project"`
	User        string `json:"user,omitempty"`
	Status      string `json:"status"`
	// Reason says why the group is in an error status.
	Reason        string   `json:"reason,omitempty"`
	GroupTypeID   string   `json:"group_type_id"`
	VolumeTypeIDs []string `json:"volume_type_ids"`
	Zone          string   `json:"zone,omitempty"`
	// The group's source when it was made from one (3.14).
	GroupSnapshotID string `json:"group_snapshot_id,omitempty"`
	SourceGroupID   string `json:"source_group_id,omitempty"`
	// WorkNode and WorkRun name the process making or deleting the
	// group (creating, deleting), as a volume's do: work that died with
	// its process is settled.
	WorkNode  string    `json:"work_node,omitempty"`
	WorkRun   string    `json:"work_run,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Revision  int64     `json:"revision"`
}

// Clone copies the row deeply.
func (g *Group) Clone() *Group {
	c := *g
	c.VolumeTypeIDs = slices.Clone(g.VolumeTypeIDs)
	return &c
}

// GroupSnapshot is a snapshot of each volume of a group, taken together.
type GroupSnapshot struct {
	ID          string `json:"id"`
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
	Project     string `json:"project"`
	User        string `json:"user,omitempty"`
	GroupID     string `json:"group_id"`
	GroupTypeID string `json:"group_type_id"`
	Status      string `json:"status"`
	Reason      string `json:"reason,omitempty"`
	// WorkNode and WorkRun: as a Group's.
	WorkNode string `json:"work_node,omitempty"`
	WorkRun  string `json:"work_run,omitempty"`
	// Held: made while its volumes were held (a Quiesce request of the
	// same id), so of one instant if its one command committed in time.
	Held      bool      `json:"held,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Revision  int64     `json:"revision"`
}

// Clone copies the row.
func (g *GroupSnapshot) Clone() *GroupSnapshot { c := *g; return &c }

// Tables and commands of groups and group snapshots.
const (
	GroupTable         = "volume_groups"
	GroupSnapshotTable = "volume_group_snapshots"

	CmdCreateGroup         = "volume.group.create"
	CmdPutGroup            = "volume.group.put"
	CmdDeleteGroup         = "volume.group.delete"
	CmdSetGroupVolumes     = "volume.group.set_volumes"
	CmdCreateGroupSnapshot = "volume.group_snapshot.create"
	CmdPutGroupSnapshot    = "volume.group_snapshot.put"
	CmdDeleteGroupSnapshot = "volume.group_snapshot.delete"
)

func groupTables() []store.Table {
	return []store.Table{
		store.NewTable(GroupTable, &Group{}, store.StringIndex("project", "Project", false)),
		store.NewTable(GroupSnapshotTable, &GroupSnapshot{}, store.StringIndex("project", "Project", false),
			store.StringIndex("group", "GroupID", false)),
	}
}

// LoadGroup returns a copy of group id, or an error matching
// store.ErrNotFound.
func LoadGroup(tx *memdb.Txn, id string) (*Group, error) {
	g := store.Get[Group](tx, GroupTable, id)
	if g == nil {
		return nil, store.Fault(store.KindNotFound, "itemNotFound", "Group %s could not be found.", id)
	}
	return g.Clone(), nil
}

// LoadGroupSnapshot returns a copy of group snapshot id.
func LoadGroupSnapshot(tx *memdb.Txn, id string) (*GroupSnapshot, error) {
	g := store.Get[GroupSnapshot](tx, GroupSnapshotTable, id)
	if g == nil {
		return nil, store.Fault(store.KindNotFound, "itemNotFound", "GroupSnapshot %s could not be found.", id)
	}
	return g.Clone(), nil
}

// GroupVolumes lists the volumes in group id.
func GroupVolumes(tx *memdb.Txn, id string) []*Volume {
	var out []*Volume
	for _, v := range store.All[Volume](tx, VolumeTable, "id") {
		if v.GroupID == id {
			out = append(out, v.Clone())
		}
	}
	return out
}

// GroupSnapshotMembers lists the snapshots a group snapshot holds.
func GroupSnapshotMembers(tx *memdb.Txn, id string) []*Snapshot {
	var out []*Snapshot
	for _, s := range store.All[Snapshot](tx, SnapshotTable, "id") {
		if s.GroupSnapshotID == id {
			out = append(out, s.Clone())
		}
	}
	return out
}

// CreateGroupCmd inserts a group, taking a "groups" quota. Its group type
// and volume types must exist.
type CreateGroupCmd struct {
	Row Group `json:"row"`
}

func applyCreateGroup(tx *memdb.Txn, c CreateGroupCmd) (any, error) {
	if store.Get[Group](tx, GroupTable, c.Row.ID) != nil {
		return nil, store.Conflictf("group %s exists", c.Row.ID)
	}
	row := c.Row
	if store.Get[GroupType](tx, GroupTypeTable, row.GroupTypeID) == nil {
		return nil, store.Fault(store.KindNotFound, "itemNotFound", "Group type %s could not be found.", row.GroupTypeID)
	}
	if len(row.VolumeTypeIDs) == 0 {
		return nil, invalid("Invalid input received: a group needs at least one volume type.")
	}
	for _, t := range row.VolumeTypeIDs {
		if _, err := LoadType(tx, t); err != nil {
			return nil, err
		}
	}
	row.Revision = 1
	if err := tx.Insert(GroupTable, &row); err != nil {
		return nil, err
	}
	if err := checkQuota(tx, row.Project, 0, QuotaGroups); err != nil {
		return nil, err
	}
	return row, nil
}

// PutGroupCmd replaces a group whose current revision is Revision; its
// project, type and volume types do not change.
type PutGroupCmd struct {
	Row      Group `json:"row"`
	Revision int64 `json:"revision"`
}

func applyPutGroup(tx *memdb.Txn, c PutGroupCmd) (any, error) {
	cur, err := current(tx, GroupTable, "Group", c.Row.ID, c.Revision, func(r *Group) int64 { return r.Revision })
	if err != nil {
		return nil, err
	}
	row := c.Row
	if row.Project != cur.Project || row.GroupTypeID != cur.GroupTypeID || !slices.Equal(row.VolumeTypeIDs, cur.VolumeTypeIDs) {
		return nil, invalid("a group's project, group type and volume types cannot change")
	}
	row.Revision = cur.Revision + 1
	return row, tx.Insert(GroupTable, &row)
}

// DeleteGroupCmd removes a group at Revision that no volume and no group
// snapshot names any more.
type DeleteGroupCmd struct {
	ID       string `json:"id"`
	Revision int64  `json:"revision"`
}

func applyDeleteGroup(tx *memdb.Txn, c DeleteGroupCmd) (any, error) {
	cur := store.Get[Group](tx, GroupTable, c.ID)
	if cur == nil {
		return nil, nil
	}
	if cur.Revision != c.Revision {
		return nil, stale("group", cur.ID, cur.Revision, c.Revision)
	}
	if n := len(GroupVolumes(tx, c.ID)); n > 0 {
		return nil, invalid("Invalid group: Group %s still contains %d volumes.", c.ID, n)
	}
	if len(store.All[GroupSnapshot](tx, GroupSnapshotTable, "group", c.ID)) > 0 {
		return nil, invalid("Invalid group: Group has existing snapshots.")
	}
	return nil, tx.Delete(GroupTable, cur)
}

// SetGroupVolumesCmd adds volumes to an available group and removes
// others, all or none (Cinder's update with add_volumes and
// remove_volumes).
type SetGroupVolumesCmd struct {
	GroupID string    `json:"group_id"`
	Add     []string  `json:"add,omitempty"`
	Remove  []string  `json:"remove,omitempty"`
	Now     time.Time `json:"now"`
}

// Cinder's statuses a volume may join or leave a group in.
var (
	addToGroup      = []string{StatusAvailable, StatusInUse}
	removeFromGroup = []string{StatusAvailable, StatusInUse, StatusError, StatusErrorDeleting}
)

func applySetGroupVolumes(tx *memdb.Txn, c SetGroupVolumesCmd) (any, error) {
	g := store.Get[Group](tx, GroupTable, c.GroupID)
	if g == nil {
		return nil, store.Fault(store.KindNotFound, "itemNotFound", "Group %s could not be found.", c.GroupID)
	}
	if g.Status != GroupAvailable {
		return nil, invalid("Invalid group: Group status must be available, but current status is: %s.", g.Status)
	}
	for _, id := range c.Add {
		if slices.Contains(c.Remove, id) {
			return nil, invalid("Invalid volume: UUIDs [%s] are in both add and remove volume list.", id)
		}
	}
	change := func(id string, check func(v *Volume) error, group string) error {
		v := store.Get[Volume](tx, VolumeTable, id)
		if v == nil {
			return invalid("Invalid volume: Cannot add volume %s to group %s because volume cannot be found.", id, g.ID)
		}
		if err := check(v); err != nil {
			return err
		}
		row := v.Clone()
		row.GroupID, row.UpdatedAt = group, c.Now
		row.Revision++
		return tx.Insert(VolumeTable, row)
	}
	for _, id := range c.Add {
		err := change(id, func(v *Volume) error {
			switch {
			case v.GroupID == g.ID:
				return nil
			case v.GroupID != "":
				return invalid("Invalid volume: Cannot add volume %s to group %s because it is already in group %s.", v.ID, g.ID, v.GroupID)
			case v.Project != g.Project:
				// Another project's volume is not found, as Cinder's
				// project-scoped lookup does not find it.
				return invalid("Invalid volume: Cannot add volume %s to group %s because volume cannot be found.", v.ID, g.ID)
			case !slices.Contains(g.VolumeTypeIDs, v.TypeID):
				return invalid("Invalid volume: Cannot add volume %s to group %s because volume type %s is not supported by the group.", v.ID, g.ID, v.TypeID)
			case !slices.Contains(addToGroup, v.Status):
				return invalid("Invalid volume: Cannot add volume %s to group %s because volume is in an invalid state: %s. Valid states are: %v.", v.ID, g.ID, v.Status, addToGroup)
			}
			return nil
		}, g.ID)
		if err != nil {
			return nil, err
		}
	}
	for _, id := range c.Remove {
		err := change(id, func(v *Volume) error {
			if v.GroupID != g.ID {
				return invalid("Invalid volume: Cannot remove volume %s from group %s because it is not in the group.", v.ID, g.ID)
			}
			if !slices.Contains(removeFromGroup, v.Status) {
				return invalid("Invalid volume: Cannot remove volume %s from group %s because volume is in an invalid state: %s. Valid states are: %v.", v.ID, g.ID, v.Status, removeFromGroup)
			}
			return nil
		}, "")
		if err != nil {
			return nil, err
		}
	}
	row := g.Clone()
	row.UpdatedAt = c.Now
	row.Revision++
	return *row, tx.Insert(GroupTable, row)
}

// CreateGroupSnapshotCmd inserts a group snapshot and its snapshots, one
// of each of the group's volumes (Snapshots, creating), taking their
// quota. The volumes must be the group's, all of them, each available or
// in-use.
type CreateGroupSnapshotCmd struct {
	Row       GroupSnapshot `json:"row"`
	Snapshots []Snapshot    `json:"snapshots"`
}

func applyCreateGroupSnapshot(tx *memdb.Txn, c CreateGroupSnapshotCmd) (any, error) {
	if store.Get[GroupSnapshot](tx, GroupSnapshotTable, c.Row.ID) != nil {
		return nil, store.Conflictf("group snapshot %s exists", c.Row.ID)
	}
	g := store.Get[Group](tx, GroupTable, c.Row.GroupID)
	if g == nil || g.Project != c.Row.Project {
		return nil, store.Fault(store.KindNotFound, "itemNotFound", "Group %s could not be found.", c.Row.GroupID)
	}
	if g.Status != GroupAvailable {
		return nil, invalid("Invalid group: Group %s status must be available, but current status is: %s.", g.ID, g.Status)
	}
	members := GroupVolumes(tx, g.ID)
	if len(members) == 0 {
		return nil, invalid("Invalid group: Group %s has no volumes to snapshot.", g.ID)
	}
	if len(members) != len(c.Snapshots) {
		return nil, invalid("Invalid group: the volumes of group %s changed; try again.", g.ID)
	}
	for i := range c.Snapshots {
		sn := c.Snapshots[i]
		sn.GroupSnapshotID = c.Row.ID
		if _, err := applyCreateSnapshot(tx, CreateSnapshotCmd{Row: sn}); err != nil {
			return nil, err
		}
		if v := store.Get[Volume](tx, VolumeTable, sn.VolumeID); v.GroupID != g.ID {
			return nil, invalid("Invalid group: the volumes of group %s changed; try again.", g.ID)
		}
	}
	row := c.Row
	row.GroupTypeID = g.GroupTypeID
	row.Revision = 1
	return row, tx.Insert(GroupSnapshotTable, &row)
}

// PutGroupSnapshotCmd replaces a group snapshot at Revision.
type PutGroupSnapshotCmd struct {
	Row      GroupSnapshot `json:"row"`
	Revision int64         `json:"revision"`
}

func applyPutGroupSnapshot(tx *memdb.Txn, c PutGroupSnapshotCmd) (any, error) {
	cur, err := current(tx, GroupSnapshotTable, "GroupSnapshot", c.Row.ID, c.Revision, func(r *GroupSnapshot) int64 { return r.Revision })
	if err != nil {
		return nil, err
	}
	row := c.Row
	if row.Project != cur.Project || row.GroupID != cur.GroupID {
		return nil, invalid("a group snapshot's project and group cannot change")
	}
	row.Revision = cur.Revision + 1
	return row, tx.Insert(GroupSnapshotTable, &row)
}

// DeleteGroupSnapshotCmd removes a group snapshot at Revision whose
// snapshots are gone.
type DeleteGroupSnapshotCmd struct {
	ID       string `json:"id"`
	Revision int64  `json:"revision"`
}

func applyDeleteGroupSnapshot(tx *memdb.Txn, c DeleteGroupSnapshotCmd) (any, error) {
	cur := store.Get[GroupSnapshot](tx, GroupSnapshotTable, c.ID)
	if cur == nil {
		return nil, nil
	}
	if cur.Revision != c.Revision {
		return nil, stale("group snapshot", cur.ID, cur.Revision, c.Revision)
	}
	if n := len(GroupSnapshotMembers(tx, c.ID)); n > 0 {
		return nil, invalid("Invalid group snapshot: %d of its snapshots are left.", n)
	}
	return nil, tx.Delete(GroupSnapshotTable, cur)
}

// groupTakes checks that a new volume may be made in its group: the
// caller's, available (or being made from a source), of one of its
// volume types.
func groupTakes(tx *memdb.Txn, v *Volume) error {
	g := store.Get[Group](tx, GroupTable, v.GroupID)
	if g == nil || g.Project != v.Project {
		return store.Fault(store.KindNotFound, "itemNotFound", "Group %s could not be found.", v.GroupID)
	}
	if g.Status != GroupAvailable && g.Status != GroupCreating {
		return invalid("Invalid group: Group %s status must be available, but current status is: %s.", g.ID, g.Status)
	}
	if !slices.Contains(g.VolumeTypeIDs, v.TypeID) {
		return invalid("Invalid input received: volume type %s is not one of group %s's volume types.", v.TypeID, g.ID)
	}
	return nil
}
