package volstate

import (
	"maps"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// Backup statuses (Cinder's).
const (
	BackupCreating      = "creating"
	BackupAvailable     = "available"
	BackupDeleting      = "deleting"
	BackupRestoring     = "restoring"
	BackupError         = "error"
	BackupErrorDeleting = "error_deleting"
)

// BackupStatuses are the statuses an admin may set on a backup.
func BackupStatuses() []string {
	return []string{BackupCreating, BackupAvailable, BackupDeleting, BackupRestoring, BackupError, BackupErrorDeleting}
}

// StatusErrorRestoring is a volume a restore failed to write.
const StatusErrorRestoring = "error_restoring"

// Backup is a copy of a volume kept as objects in its project's object
// store (Container, under the backup's id); it outlives the volume.
type Backup struct {
	ID          string `json:"id"`
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
	Project     string `json:"project"`
	User        string `json:"user,omitempty"`
	VolumeID    string `json:"volume_id"`
	SnapshotID  string `json:"snapshot_id,omitempty"`
	Size        int    `json:"size"` // GiB, the volume's
	Status      string `json:"status"`
	Reason      string `json:"reason,omitempty"`
	Container   string `json:"container"`
	// ParentID is the backup an incremental one adds to ("" for a full
	// one); a backup with children cannot be deleted.
	ParentID string `json:"parent_id,omitempty"`
	// ObjectCount and StoredBytes are what the backup wrote.
	ObjectCount int               `json:"object_count"`
	StoredBytes int64             `json:"stored_bytes"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	// Key and KeyID are the encryption key of an encrypted volume's
	// backup (sealed bound to the backup's id): its objects hold the
	// volume's ciphertext, which a restore opens with this key.
	Key   string `json:"key,omitempty"`
	KeyID string `json:"key_id,omitempty"`
	// VolumeMetadata is the volume's metadata when it was backed up: a
	// restore gives it to the volume it writes, as Cinder does.
	VolumeMetadata map[string]string `json:"volume_metadata,omitempty"`
	// DataAt is when the data was taken (the snapshot's time for a
	// backup of a snapshot).
	DataAt    time.Time `json:"data_at"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// WorkNode and WorkRun name who is writing, restoring or deleting it.
	WorkNode string `json:"work_node,omitempty"`
	WorkRun  string `json:"work_run,omitempty"`
	// DataProject and Prefix place the objects of an imported backup
	// (export_record, import_record): another project's object store, a
	// prefix other than the id. "" for a backup made here.
	DataProject string `json:"data_project,omitempty"`
	Prefix      string `json:"prefix,omitempty"`
	Revision    int64  `json:"revision"`
}

// Clone copies the row deeply.
func (b *Backup) Clone() *Backup {
	c := *b
	c.Metadata = maps.Clone(b.Metadata)
	c.VolumeMetadata = maps.Clone(b.VolumeMetadata)
	return &c
}

// BackupTable and the backup commands.
const (
	BackupTable     = "volume_backups"
	CmdCreateBackup = "volume.backup.create"
	CmdPutBackup    = "volume.backup.put"
	CmdDeleteBackup = "volume.backup.delete"
	CmdImportBackup = "volume.backup.import"
)

// ObjectProject is the project whose object store holds the backup.
func (b *Backup) ObjectProject() string {
	if b.DataProject != "" {
		return b.DataProject
	}
	return b.Project
}

// ObjectPrefix is the prefix of the backup's objects.
func (b *Backup) ObjectPrefix() string {
	if b.Prefix != "" {
		return b.Prefix
	}
	return b.ID
}

// ImportBackupCmd inserts a backup record exported elsewhere (or before
// its row was lost): its volume need not exist; it takes its quota.
type ImportBackupCmd struct {
	Row Backup `json:"row"`
}

func applyImportBackup(tx *memdb.Txn, c ImportBackupCmd) (any, error) {
	if store.Get[Backup](tx, BackupTable, c.Row.ID) != nil {
		return nil, invalid("Invalid backup: Backup %s already exists.", c.Row.ID)
	}
	row := c.Row
	if row.ParentID != "" && store.Get[Backup](tx, BackupTable, row.ParentID) == nil {
		row.ParentID = ""
	}
	row.Revision = 1
	if err := tx.Insert(BackupTable, &row); err != nil {
		return nil, err
	}
	if err := checkQuota(tx, row.Project, row.Size, QuotaBackups, QuotaBackupGigabytes); err != nil {
		return nil, err
	}
	return row, nil
}

func backupTable() store.Table {
	return store.NewTable(BackupTable, &Backup{}, store.StringIndex("project", "Project", false),
		store.StringIndex("volume", "VolumeID", false),
		// Full backups have no parent.
		&memdb.IndexSchema{Name: "parent", AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "ParentID"}})
}

// LoadBackup returns a copy of backup id, or an error matching
// store.ErrNotFound.
func LoadBackup(tx *memdb.Txn, id string) (*Backup, error) {
	b := store.Get[Backup](tx, BackupTable, id)
	if b == nil {
		return nil, store.Fault(store.KindNotFound, "itemNotFound", "Backup %s could not be found.", id)
	}
	return b.Clone(), nil
}

// Children lists the backups made incrementally on top of id.
func Children(tx *memdb.Txn, id string) []*Backup {
	return store.All[Backup](tx, BackupTable, "parent", id)
}

// CreateBackupCmd inserts a new backup, taking its quota.
type CreateBackupCmd struct {
	Row Backup `json:"row"`
	// AnyProject is set when an admin backs up a volume of another
	// project (into the admin's): Cinder's admin context reads any
	// volume. Unset (every older entry), the volume must be Row.Project's.
	AnyProject bool `json:"any_project,omitempty"`
}

func applyCreateBackup(tx *memdb.Txn, c CreateBackupCmd) (any, error) {
	if store.Get[Backup](tx, BackupTable, c.Row.ID) != nil {
		return nil, store.Conflictf("backup %s exists", c.Row.ID)
	}
	row := c.Row
	vol := store.Get[Volume](tx, VolumeTable, row.VolumeID)
	if vol == nil || vol.Project != row.Project && !c.AnyProject {
		return nil, store.Fault(store.KindNotFound, "itemNotFound", "Volume %s could not be found.", row.VolumeID)
	}
	if vol.Status != StatusAvailable && vol.Status != StatusInUse {
		return nil, invalid("Invalid volume: Volume to be backed up must be available or in-use, but the current status is \"%s\".", vol.Status)
	}
	if row.ParentID != "" {
		p := store.Get[Backup](tx, BackupTable, row.ParentID)
		if p == nil || p.VolumeID != row.VolumeID || p.Status != BackupAvailable {
			return nil, invalid("Invalid backup: the parent backup %s is not an available backup of volume %s.", row.ParentID, row.VolumeID)
		}
	}
	row.Size = vol.Size
	row.Revision = 1
	if err := tx.Insert(BackupTable, &row); err != nil {
		return nil, err
	}
	if err := checkQuota(tx, row.Project, row.Size, QuotaBackups, QuotaBackupGigabytes); err != nil {
		return nil, err
	}
	return row, nil
}

// PutBackupCmd replaces a backup whose current revision is Revision.
type PutBackupCmd struct {
	Row      Backup `json:"row"`
	Revision int64  `json:"revision"`
}

func applyPutBackup(tx *memdb.Txn, c PutBackupCmd) (any, error) {
	cur, err := current(tx, BackupTable, "Backup", c.Row.ID, c.Revision, func(r *Backup) int64 { return r.Revision })
	if err != nil {
		return nil, err
	}
	row := c.Row
	if row.Project != cur.Project || row.VolumeID != cur.VolumeID || row.ParentID != cur.ParentID || row.Size != cur.Size {
		return nil, invalid("a backup's project, volume, parent and size cannot change")
	}
	row.Revision = cur.Revision + 1
	return row, tx.Insert(BackupTable, &row)
}

// DeleteBackupCmd removes a backup whose current revision is Revision,
// once its objects are gone.
type DeleteBackupCmd struct {
	ID       string `json:"id"`
	Revision int64  `json:"revision"`
}

func applyDeleteBackup(tx *memdb.Txn, c DeleteBackupCmd) (any, error) {
	cur := store.Get[Backup](tx, BackupTable, c.ID)
	if cur == nil {
		return nil, nil
	}
	if cur.Revision != c.Revision {
		return nil, stale("backup", cur.ID, cur.Revision, c.Revision)
	}
	if len(Children(tx, c.ID)) > 0 {
		return nil, invalid("Invalid backup: Incremental backups exist for this backup.")
	}
	return nil, tx.Delete(BackupTable, cur)
}
