// Package volstate is the volume service's part of the replicated state:
// the volume, snapshot, volume type and quota rows, Cinder's volume
// statuses, the tables and the commands that change them. The Cinder API
// (fabric/volume), Nova's volume attachments and the node agent that
// plugs volumes into VMs read and change volumes through it; it knows
// nothing of HTTP and moves no data.
//
// Changes follow the image service's pattern: a proposer reads a row,
// computes the new row and proposes Put naming the revision it read; the
// handler refuses a stale revision (IsStale) and the proposer reads again
// and retries. Quotas are checked in the handlers, in the same step that
// takes them, so two creates can never both pass the last free slot.
package volstate

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/events/eventstate"
	"github.com/rackstack/rackstack/fabric/store"
)

// Volume statuses (Cinder's). A volume moves creating → available →
// reserved → attaching → in-use → detaching → available; extending and
// deleting are the other working states, and each can fail into its
// error status with a reason kept on the row.
const (
	StatusCreating       = "creating"
	StatusAvailable      = "available"
	StatusReserved       = "reserved"
	StatusAttaching      = "attaching"
	StatusInUse          = "in-use"
	StatusDetaching      = "detaching"
	StatusExtending      = "extending"
	StatusDeleting       = "deleting"
	StatusError          = "error"
	StatusErrorDeleting  = "error_deleting"
	StatusErrorExtending = "error_extending"
	// StatusRestoringBackup: a backup is being written into the volume.
	StatusRestoringBackup = "restoring-backup"
	// StatusUploading: the volume is being copied into an image.
	StatusUploading = "uploading"
	// StatusDownloading: an image is being written over the volume
	// (os-reimage, 3.68); PreviousStatus is the status it returns to.
	StatusDownloading = "downloading"
	// StatusAwaitingTransfer: a transfer to another project is offered.
	StatusAwaitingTransfer = "awaiting-transfer"
	// StatusMaintenance is only ever set by an admin (os-reset_status):
	// the volume is left alone until it is reset again.
	StatusMaintenance = "maintenance"
)

// Statuses are the volume statuses an admin may set with os-reset_status.
func Statuses() []string {
	return []string{StatusCreating, StatusAvailable, StatusReserved, StatusAttaching, StatusInUse, StatusDetaching,
		StatusExtending, StatusDeleting, StatusError, StatusErrorDeleting, StatusErrorExtending, StatusMaintenance,
		StatusRestoringBackup, StatusAwaitingTransfer, StatusUploading}
}

// Snapshot statuses.
const (
	SnapStatusCreating      = "creating"
	SnapStatusAvailable     = "available"
	SnapStatusDeleting      = "deleting"
	SnapStatusError         = "error"
	SnapStatusErrorDeleting = "error_deleting"
)

// SnapshotStatuses are the statuses an admin may set on a snapshot.
func SnapshotStatuses() []string {
	return []string{SnapStatusCreating, SnapStatusAvailable, SnapStatusDeleting, SnapStatusError, SnapStatusErrorDeleting}
}

// GiB is Cinder's unit of volume size.
const GiB = int64(1) << 30

// Volume is one volume's metadata; its blocks are in the block store
// under the same id. A row is never changed after insert: a command
// replaces it whole (Clone, change, Put).
type Volume struct {
	ID          string `json:"id"`
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
	Project     string `json:"project"`
	User        string `json:"user,omitempty"`
	Size        int    `json:"size"` // GiB
	Status      string `json:"status"`
	// Reason says why the volume is in an error status ("" otherwise).
	Reason   string `json:"reason,omitempty"`
	TypeID   string `json:"type_id"`
	Bootable bool   `json:"bootable,omitempty"`
	// PreviousStatus is the status a reimage returns the volume to.
	PreviousStatus string `json:"previous_status,omitempty"`
	// ReadOnly is Cinder's readonly admin metadata (os-update_readonly_flag):
	// nil until first set. A read-only volume is attached read-only.
	ReadOnly *bool `json:"readonly,omitempty"`
	// The volume's source, at most one: a snapshot, a volume or an image.
	SnapshotID  string `json:"snapshot_id,omitempty"`
	SourceVolID string `json:"source_volid,omitempty"`
	ImageID     string `json:"image_id,omitempty"`
	// ImageMetadata is the image's attributes and properties when the
	// volume was made from it (Cinder's volume_image_metadata).
	ImageMetadata map[string]string `json:"image_metadata,omitempty"`
	Metadata      map[string]string `json:"metadata,omitempty"`
	// WorkNode and WorkRun name the node, and that node's process, doing
	// the volume's work in progress (a create, a restore): a process that
	// is gone leaves the volume in its working status, which the
	// service's maintenance settles (Abandoned).
	WorkNode string `json:"work_node,omitempty"`
	WorkRun  string `json:"work_run,omitempty"`
	// UploadImage is the image an upload in progress (uploading) is
	// making, so that one whose process died is not left queued.
	UploadImage string `json:"upload_image,omitempty"`
	// Key is the volume's encryption key when its type is encrypted:
	// what its LUKS header is opened with (as Nova opens it with the
	// Barbican key Cinder names), sealed with the cluster key bound to
	// the volume's id (fabric/secrets). KeyID is the id Cinder shows as
	// encryption_key_id; the key itself is never shown.
	Key   string `json:"key,omitempty"`
	KeyID string `json:"key_id,omitempty"`
	// GroupID is the generic volume group the volume is in ("": none).
	GroupID string `json:"group_id,omitempty"`
	// Attachments are the servers the volume is attached to (at most
	// one: multiattach is refused).
	Attachments []Attachment `json:"attachments,omitempty"`
	CreatedAt   time.Time    `json:"created_at"`
	UpdatedAt   time.Time    `json:"updated_at"`
	Revision    int64        `json:"revision"`
}

// Attachment is a volume's attachment to a server.
type Attachment struct {
	ID       string    `json:"id"`
	ServerID string    `json:"server_id"`
	Host     string    `json:"host,omitempty"`
	Device   string    `json:"device,omitempty"`
	Since    time.Time `json:"since"`
	// Root marks the disk the server boots from: it is in the VM from
	// its start, never hot-plugged, and stays until the server goes.
	Root bool `json:"root,omitempty"`
	// DeleteOnTermination deletes the volume when the server goes.
	DeleteOnTermination bool `json:"delete_on_termination,omitempty"`
	// Mode is AttachReadOnly when the guest may only read the volume
	// (it was read-only when attached); "" is read-write.
	Mode string `json:"mode,omitempty"`
	// Tag is Nova's device tag of the attachment (2.32 and 2.42 on a
	// server create, 2.49 on attach), which the guest reads in its
	// metadata's devices.
	Tag string `json:"tag,omitempty"`
}

// AttachReadOnly is the Mode of a read-only attachment (Cinder's "ro").
const AttachReadOnly = "ro"

// IsReadOnly reports whether the volume's readonly flag is set.
func (v *Volume) IsReadOnly() bool { return v.ReadOnly != nil && *v.ReadOnly }

// Clone copies the row deeply enough that changing the copy leaves the
// stored row alone.
func (v *Volume) Clone() *Volume {
	c := *v
	c.Metadata = maps.Clone(v.Metadata)
	c.ImageMetadata = maps.Clone(v.ImageMetadata)
	c.Attachments = slices.Clone(v.Attachments)
	return &c
}

// Snapshot is a point-in-time copy of a volume; its blocks are in the
// block store under its id.
type Snapshot struct {
	ID          string `json:"id"`
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
	Project     string `json:"project"`
	User        string `json:"user,omitempty"`
	VolumeID    string `json:"volume_id"`
	Size        int    `json:"size"` // GiB, the volume's when taken
	Status      string `json:"status"`
	Reason      string `json:"reason,omitempty"`
	// GroupSnapshotID is the group snapshot the snapshot was taken in
	// ("": a snapshot of its own).
	GroupSnapshotID string `json:"group_snapshot_id,omitempty"`
	// Progress is what os-update_snapshot_status last reported ("80%").
	Progress string `json:"progress,omitempty"`
	// WorkNode and WorkRun name the node, and its process, creating or
	// deleting the snapshot (as a volume's): the service's maintenance
	// settles the work they leave when it is abandoned. Empty in a
	// group snapshot's snapshots, which their group snapshot settles.
	WorkNode string `json:"work_node,omitempty"`
	WorkRun  string `json:"work_run,omitempty"`
	// Key and KeyID are the volume's encryption key, kept with the
	// snapshot (sealed bound to its id) for the volumes made from it.
	Key       string            `json:"key,omitempty"`
	KeyID     string            `json:"key_id,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
	Revision  int64             `json:"revision"`
}

// Clone copies the row deeply.
func (s *Snapshot) Clone() *Snapshot {
	c := *s
	c.Metadata = maps.Clone(s.Metadata)
	return &c
}

// Type is a volume type: its extra specs choose how the blocks are
// stored (PolicySpec).
type Type struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	Public      bool              `json:"public"`
	ExtraSpecs  map[string]string `json:"extra_specs,omitempty"`
	// Projects may use a private type besides admins (Cinder's type
	// access).
	Projects []string `json:"projects,omitempty"`
	// QoSSpecID is the QoS spec the type is associated with ("": none).
	QoSSpecID string `json:"qos_specs_id,omitempty"`
	// Encryption is how the type's volumes are encrypted (nil: not).
	Encryption *Encryption `json:"encryption,omitempty"`
	Revision   int64       `json:"revision"`
}

// Encryption is a volume type's encryption spec, as Cinder's
// volume_type_encryption: the guest's side ("front-end") opens each
// volume's LUKS layer with the volume's own key.
type Encryption struct {
	ID              string    `json:"id"`
	Provider        string    `json:"provider"`
	Cipher          string    `json:"cipher"`
	KeySize         int       `json:"key_size"` // bits of the XTS key: 256 (AES-128) or 512 (AES-256)
	ControlLocation string    `json:"control_location"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
}

// CipherAlg is the AES of e's XTS key as QEMU names it: an XTS key is
// two AES keys.
func (e *Encryption) CipherAlg() string {
	if e.KeySize == 256 {
		return "aes-128"
	}
	return "aes-256"
}

// Clone copies the row deeply.
func (t *Type) Clone() *Type {
	c := *t
	c.ExtraSpecs = maps.Clone(t.ExtraSpecs)
	c.Projects = slices.Clone(t.Projects)
	if t.Encryption != nil {
		e := *t.Encryption
		c.Encryption = &e
	}
	return &c
}

// Usable reports whether project may see and use the type (admins may
// use any).
func (t *Type) Usable(project string) bool {
	return t.Public || slices.Contains(t.Projects, project)
}

// The default volume type, as Cinder's __DEFAULT__: it exists from the
// start (DefaultType) without a command, so every node agrees on it; a
// change to it stores it like any other type.
const (
	DefaultTypeID   = "a0c6bd2b-2d2b-4b4e-9b66-3c3f8d0c7f11"
	DefaultTypeName = "__DEFAULT__"
)

// DefaultType is the default type as it is before any change.
func DefaultType() *Type {
	return &Type{ID: DefaultTypeID, Name: DefaultTypeName, Description: "Default Volume Type", Public: true}
}

// PolicySpec is the extra spec that chooses how a type's volumes are
// stored: "ec:K+M" (erasure-coded, K data and M parity shards) or
// "replicated:N" (N copies). Without it the block store's default holds.
const PolicySpec = "rackstack:policy"

// Policy is a parsed PolicySpec; the zero Policy is the store's default.
type Policy struct {
	K, M     int // erasure coding
	Replicas int // replication
}

// ParsePolicy reads a PolicySpec value.
func ParsePolicy(s string) (Policy, error) {
	kind, rest, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return Policy{}, fmt.Errorf("parse policy %q: want ec:K+M or replicated:N", s)
	}
	switch kind {
	case "ec":
		ks, ms, ok := strings.Cut(rest, "+")
		k, err1 := strconv.Atoi(ks)
		m, err2 := strconv.Atoi(ms)
		// The block store codes stripes of at most 16 data and 16 parity
		// shards.
		if !ok || err1 != nil || err2 != nil || k < 1 || k > 16 || m < 0 || m > 16 {
			return Policy{}, fmt.Errorf("parse policy %q: want ec:K+M with 1 ≤ K ≤ 16, 0 ≤ M ≤ 16", s)
		}
		return Policy{K: k, M: m}, nil
	case "replicated":
		n, err := strconv.Atoi(rest)
		if err != nil || n < 1 || n > 8 {
			return Policy{}, fmt.Errorf("parse policy %q: want replicated:N with 1 ≤ N ≤ 8", s)
		}
		return Policy{Replicas: n}, nil
	}
	return Policy{}, fmt.Errorf("parse policy %q: want ec:K+M or replicated:N", s)
}

// Quota is a project's quota overrides; absent resources have the
// defaults.
type Quota struct {
	ID     string         `json:"id"` // the project
	Limits map[string]int `json:"limits"`
}

// Quota resources and their defaults, as Cinder ships them.
const (
	QuotaVolumes         = "volumes"
	QuotaSnapshots       = "snapshots"
	QuotaGigabytes       = "gigabytes"
	QuotaPerVolumeGB     = "per_volume_gigabytes"
	QuotaBackups         = "backups"
	QuotaBackupGigabytes = "backup_gigabytes"
	QuotaGroups          = "groups"
)

// DefaultQuotas are the limits of a project without overrides (-1: none).
func DefaultQuotas() map[string]int {
	return map[string]int{QuotaVolumes: 10, QuotaSnapshots: 10, QuotaGigabytes: 1000, QuotaPerVolumeGB: -1,
		QuotaBackups: 10, QuotaBackupGigabytes: 1000, QuotaGroups: 10}
}

// Limit is project's limit of resource.
func Limit(tx *memdb.Txn, project, resource string) int {
	if q := store.Get[Quota](tx, QuotaTable, project); q != nil {
		if v, ok := q.Limits[resource]; ok {
			return v
		}
	}
	return DefaultLimit(tx, resource)
}

// Usage is how much of resource project uses. Gigabytes count volumes
// and snapshots, as Cinder counts them; backup gigabytes the sizes of
// the volumes backed up.
func Usage(tx *memdb.Txn, project, resource string) int {
	switch resource {
	case QuotaVolumes:
		return len(store.All[Volume](tx, VolumeTable, "project", project))
	case QuotaSnapshots:
		return len(store.All[Snapshot](tx, SnapshotTable, "project", project))
	case QuotaGigabytes:
		n := 0
		for _, v := range store.All[Volume](tx, VolumeTable, "project", project) {
			n += v.Size
		}
		for _, s := range store.All[Snapshot](tx, SnapshotTable, "project", project) {
			n += s.Size
		}
		return n
	case QuotaBackups:
		return len(store.All[Backup](tx, BackupTable, "project", project))
	case QuotaGroups:
		return len(store.All[Group](tx, GroupTable, "project", project))
	case QuotaBackupGigabytes:
		n := 0
		for _, b := range store.All[Backup](tx, BackupTable, "project", project) {
			n += b.Size
		}
		return n
	}
	if tk, ok := typeOfResource(tx, resource); ok {
		return typeUsage(tx, project, tk)
	}
	return 0
}

// checkQuota runs after the insert: usage includes the new row, which
// takes gb gigabytes (of the gigabytes or backup_gigabytes resources).
func checkQuota(tx *memdb.Txn, project string, gb int, resources ...string) error {
	for _, r := range resources {
		limit := Limit(tx, project, r)
		if used := Usage(tx, project, r); limit >= 0 && used > limit {
			return quotaExceeded(r, limit, used, gb)
		}
	}
	return nil
}

// quotaExceeded words an exceeded quota as Cinder does: the class of its
// QuotaError first, as Cinder's fault wrapper puts it (scripts and
// clients' tests match "VolumeSizeExceedsAvailableQuota"), then its
// message; a gigabytes quota says what was asked and what is in use.
func quotaExceeded(resource string, limit, used, gb int) error {
	kind := resource
	for _, k := range perTypeKinds {
		if strings.HasPrefix(resource, k+"_") {
			kind = k
		}
	}
	switch kind {
	case QuotaGigabytes:
		return store.Fault(store.KindOverQuota, FaultOverLimit, "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed %s quota. Requested %dG, quota is %dG and %dG has been consumed.", resource, gb, limit, used-gb)
	case QuotaBackupGigabytes:
		return store.Fault(store.KindOverQuota, FaultOverLimit, "VolumeBackupSizeExceedsAvailableQuota: Requested backup exceeds allowed Backup gigabytes quota. Requested %dG, quota is %dG and %dG has been consumed.", gb, limit, used-gb)
	}
	class := map[string]string{QuotaVolumes: "VolumeLimitExceeded", QuotaSnapshots: "SnapshotLimitExceeded",
		QuotaBackups: "BackupLimitExceeded", QuotaGroups: "GroupLimitExceeded"}[kind]
	if class == "" {
		class = "QuotaError"
	}
	return store.Fault(store.KindOverQuota, FaultOverLimit, "%s: Maximum number of %s allowed (%d) exceeded for quota '%s' (%d would be in use).", class, kind, limit, resource, used)
}

func checkPerVolume(tx *memdb.Txn, project string, size int) error {
	if limit := Limit(tx, project, QuotaPerVolumeGB); limit >= 0 && size > limit {
		return store.Fault(store.KindOverQuota, FaultOverLimit, "VolumeSizeExceedsLimit: Requested volume size %dG is larger than maximum allowed limit %dG.", size, limit)
	}
	return nil
}

// CheckVolumeSize is the quota a volume of size gigabytes in project,
// gb of them new (all for a new volume, the growth for an extend), would
// exceed (the per-volume limit, then the project's gigabytes), read
// before anything is proposed. The API asks it before it refuses a size
// this cloud cannot make, so that a size past the quota is answered as
// Cinder answers it, whose quota comes before any back end's limit. The
// apply checks the quota again.
func CheckVolumeSize(tx *memdb.Txn, project string, size, gb int) error {
	if err := checkPerVolume(tx, project, size); err != nil {
		return err
	}
	limit, used := Limit(tx, project, QuotaGigabytes), Usage(tx, project, QuotaGigabytes)
	if limit >= 0 && used+gb > limit {
		return quotaExceeded(QuotaGigabytes, limit, used+gb, gb)
	}
	return nil
}

// FaultOverLimit names an exceeded quota, which Cinder answers 413.
const FaultOverLimit = "overLimit"

// Table and command names.
const (
	VolumeTable   = "volume_volumes"
	SnapshotTable = "volume_snapshots"
	TypeTable     = "volume_types"
	QuotaTable    = "volume_quotas"

	CmdCreateVolume   = "volume.create"
	CmdPutVolume      = "volume.put"
	CmdDeleteVolume   = "volume.delete"
	CmdCreateSnapshot = "volume.snapshot.create"
	CmdPutSnapshot    = "volume.snapshot.put"
	CmdDeleteSnapshot = "volume.snapshot.delete"
	CmdCreateType     = "volume.type.create"
	CmdPutType        = "volume.type.put"
	CmdDeleteType     = "volume.type.delete"
	CmdSetQuota       = "volume.quota.set"
	CmdDeleteQuota    = "volume.quota.delete"
	CmdAttach         = "volume.attach"
	CmdAttached       = "volume.attached"
	CmdDetach         = "volume.detach"
	CmdDetached       = "volume.detached"
)

// Schema is the volume service's part of the replicated state.
func Schema() store.Schema {
	return store.Schema{
		Tables: []store.Table{
			store.NewTable(VolumeTable, &Volume{}, store.StringIndex("project", "Project", false)),
			store.NewTable(SnapshotTable, &Snapshot{}, store.StringIndex("project", "Project", false),
				store.StringIndex("volume", "VolumeID", false)),
			store.NewTable(TypeTable, &Type{}, store.StringIndex("name", "Name", true)),
			store.NewTable(QuotaTable, &Quota{}),
			backupTable(),
			transferTable(),
			quotaClassTable(),
			qosTable(),
			messageTable(),
			groupTypeTable(),
			groupTables()[0],
			groupTables()[1],
			quiesceTable(),
			defaultTypeTable(),
		},
		Handlers: map[string]store.Handler{
			CmdCreateVolume:        store.Typed(applyCreateVolume),
			CmdPutVolume:           store.Typed(applyPutVolume),
			CmdDeleteVolume:        store.Typed(applyDeleteVolume),
			CmdCreateSnapshot:      store.Typed(applyCreateSnapshot),
			CmdPutSnapshot:         store.Typed(applyPutSnapshot),
			CmdDeleteSnapshot:      store.Typed(applyDeleteSnapshot),
			CmdCreateType:          store.Typed(applyCreateType),
			CmdPutType:             store.Typed(applyPutType),
			CmdDeleteType:          store.Typed(applyDeleteType),
			CmdSetQuota:            store.Typed(applySetQuota),
			CmdDeleteQuota:         store.Typed(applyDeleteQuota),
			CmdSetQuotaClass:       store.Typed(applySetQuotaClass),
			CmdSetDefaultType:      store.Typed(applySetDefaultType),
			CmdUnsetDefaultType:    store.Typed(applyUnsetDefaultType),
			CmdCreateQoS:           store.Typed(applyCreateQoS),
			CmdPutQoS:              store.Typed(applyPutQoS),
			CmdDeleteQoS:           store.Typed(applyDeleteQoS),
			CmdAttach:              store.Typed(applyAttach),
			CmdAttached:            store.Typed(applyAttached),
			CmdDetach:              store.Typed(applyDetach),
			CmdDetached:            store.Typed(applyDetached),
			CmdCreateBackup:        store.Typed(applyCreateBackup),
			CmdPutBackup:           store.Typed(applyPutBackup),
			CmdImportBackup:        store.Typed(applyImportBackup),
			CmdDeleteBackup:        store.Typed(applyDeleteBackup),
			CmdCreateTransfer:      store.Typed(applyCreateTransfer),
			CmdDeleteTransfer:      store.Typed(applyDeleteTransfer),
			CmdAcceptTransfer:      store.Typed(applyAcceptTransfer),
			CmdCreateMessage:       store.Typed(applyCreateMessage),
			CmdDeleteMessage:       store.Typed(applyDeleteMessage),
			CmdPutGroupType:        store.Typed(applyPutGroupType),
			CmdDeleteGroupType:     store.Typed(applyDeleteGroupType),
			CmdCreateGroup:         store.Typed(applyCreateGroup),
			CmdPutGroup:            store.Typed(applyPutGroup),
			CmdDeleteGroup:         store.Typed(applyDeleteGroup),
			CmdSetGroupVolumes:     store.Typed(applySetGroupVolumes),
			CmdCreateGroupSnapshot: store.Typed(applyCreateGroupSnapshot),
			CmdPutGroupSnapshot:    store.Typed(applyPutGroupSnapshot),
			CmdDeleteGroupSnapshot: store.Typed(applyDeleteGroupSnapshot),
			CmdPutQuiesce:          store.Typed(applyPutQuiesce),
			CmdAnswerQuiesce:       store.Typed(applyAnswerQuiesce),
			CmdDeleteQuiesce:       store.Typed(applyDeleteQuiesce),
		},
		Observers: []store.Observer{eventstate.Observe(eventResources()...)},
	}
}

// TableNames lists the tables, so a watcher can watch them.
func TableNames() []string {
	return []string{VolumeTable, SnapshotTable, TypeTable, QuotaTable, BackupTable, TransferTable, QuotaClassTable, QoSTable}
}

// LoadVolume returns a copy of volume id, or an error matching
// store.ErrNotFound.
func LoadVolume(tx *memdb.Txn, id string) (*Volume, error) {
	v := store.Get[Volume](tx, VolumeTable, id)
	if v == nil {
		return nil, store.Fault(store.KindNotFound, "itemNotFound", "Volume %s could not be found.", id)
	}
	return v.Clone(), nil
}

// LoadSnapshot returns a copy of snapshot id, or an error matching
// store.ErrNotFound.
func LoadSnapshot(tx *memdb.Txn, id string) (*Snapshot, error) {
	s := store.Get[Snapshot](tx, SnapshotTable, id)
	if s == nil {
		return nil, store.Fault(store.KindNotFound, "itemNotFound", "Snapshot %s could not be found.", id)
	}
	return s.Clone(), nil
}

// LoadType returns a copy of type id: the stored row, or the default
// type while it is unchanged.
func LoadType(tx *memdb.Txn, id string) (*Type, error) {
	if t := store.Get[Type](tx, TypeTable, id); t != nil {
		return t.Clone(), nil
	}
	if id == DefaultTypeID {
		return DefaultType(), nil
	}
	return nil, store.Fault(store.KindNotFound, "itemNotFound", "Volume type %s could not be found.", id)
}

// TypeByName returns the type named name, or nil.
func TypeByName(tx *memdb.Txn, name string) *Type {
	if raw, _ := tx.First(TypeTable, "name", name); raw != nil {
		return raw.(*Type).Clone()
	}
	if name == DefaultTypeName && store.Get[Type](tx, TypeTable, DefaultTypeID) == nil {
		return DefaultType()
	}
	return nil
}

// Types lists every type, the default included.
func Types(tx *memdb.Txn) []*Type {
	out := store.All[Type](tx, TypeTable, "id")
	if store.Get[Type](tx, TypeTable, DefaultTypeID) == nil {
		out = append(out, DefaultType())
	}
	return out
}

// VolumesOfServer lists the volumes attached to server.
func VolumesOfServer(tx *memdb.Txn, server string) []*Volume {
	var out []*Volume
	for _, v := range store.All[Volume](tx, VolumeTable, "id") {
		for _, a := range v.Attachments {
			if a.ServerID == server {
				out = append(out, v.Clone())
				break
			}
		}
	}
	return out
}

// Command handlers. They run in the FSM on every node: deterministic, no
// clock, no I/O. The proposer computes the new row from the revision it
// read; the handler checks that nothing changed since and that the quota
// and the references still hold.

const faultStale = "VolumeStale"

// IsStale reports whether err is the conflict of a command computed from
// a revision that is no longer current; the proposer reads and retries.
func IsStale(err error) bool {
	var ae *store.ApplyError
	return errors.As(err, &ae) && ae.Kind == store.KindConflict && ae.Fault == faultStale
}

// current is row id of table if it is at revision want: a missing row is
// Cinder's itemNotFound naming kind, another revision is stale.
func current[T any](tx *memdb.Txn, table, kind, id string, want int64, revision func(*T) int64) (*T, error) {
	cur := store.Get[T](tx, table, id)
	if cur == nil {
		return nil, store.Fault(store.KindNotFound, "itemNotFound", "%s %s could not be found.", kind, id)
	}
	if have := revision(cur); have != want {
		return nil, stale(strings.ToLower(kind), id, have, want)
	}
	return cur, nil
}

func stale(kind, id string, have, want int64) error {
	return store.Fault(store.KindConflict, faultStale, "%s %s changed concurrently: at revision %d, not %d", kind, id, have, want)
}

func invalid(format string, args ...any) error {
	return store.Fault(store.KindInvalid, "badRequest", format, args...)
}

// CreateVolumeCmd inserts a new volume, taking its quota.
type CreateVolumeCmd struct {
	Row Volume `json:"row"`
}

func applyCreateVolume(tx *memdb.Txn, c CreateVolumeCmd) (any, error) {
	if store.Get[Volume](tx, VolumeTable, c.Row.ID) != nil {
		return nil, store.Conflictf("volume %s exists", c.Row.ID)
	}
	row := c.Row
	t, err := LoadType(tx, row.TypeID)
	if err != nil {
		return nil, err
	}
	if (t.Encryption != nil) != (row.Key != "") {
		// The type's encryption changed since the request read it.
		return nil, invalid("Invalid volume type: the encryption of volume type %s changed; try again.", t.ID)
	}
	if row.SnapshotID != "" {
		s := store.Get[Snapshot](tx, SnapshotTable, row.SnapshotID)
		if s == nil || s.Project != row.Project && row.Project != "" {
			return nil, store.Fault(store.KindNotFound, "itemNotFound", "Snapshot %s could not be found.", row.SnapshotID)
		}
		if s.Status != SnapStatusAvailable {
			return nil, invalid("Invalid snapshot: Originating snapshot status must be one of 'available' values")
		}
		if row.Size < s.Size {
			return nil, invalid("Invalid input received: Volume size '%d'GB cannot be smaller than the snapshot size %dGB. They must be >= original snapshot size.", row.Size, s.Size)
		}
	}
	if row.SourceVolID != "" {
		src := store.Get[Volume](tx, VolumeTable, row.SourceVolID)
		if src == nil {
			return nil, store.Fault(store.KindNotFound, "itemNotFound", "Volume %s could not be found.", row.SourceVolID)
		}
		if src.Status != StatusAvailable && src.Status != StatusInUse {
			return nil, invalid("Invalid volume: Source volume status must be available or in-use, not %s.", src.Status)
		}
		if row.Size < src.Size {
			return nil, invalid("Invalid input received: Clones currently must be >= original volume size.")
		}
	}
	if row.GroupID != "" {
		if err := groupTakes(tx, &row); err != nil {
			return nil, err
		}
	}
	if err := checkPerVolume(tx, row.Project, row.Size); err != nil {
		return nil, err
	}
	row.Revision = 1
	if err := tx.Insert(VolumeTable, &row); err != nil {
		return nil, err
	}
	if err := checkQuota(tx, row.Project, row.Size, append([]string{QuotaVolumes, QuotaGigabytes}, typeResources(tx, row.TypeID, QuotaVolumes, QuotaGigabytes)...)...); err != nil {
		return nil, err
	}
	return row, nil
}

// PutVolumeCmd replaces a volume whose current revision is Revision. A
// bigger size takes quota.
type PutVolumeCmd struct {
	Row      Volume `json:"row"`
	Revision int64  `json:"revision"`
}

func applyPutVolume(tx *memdb.Txn, c PutVolumeCmd) (any, error) {
	cur, err := current(tx, VolumeTable, "Volume", c.Row.ID, c.Revision, func(r *Volume) int64 { return r.Revision })
	if err != nil {
		return nil, err
	}
	row := c.Row
	if row.Project != cur.Project {
		return nil, invalid("a volume's project cannot change")
	}
	if len(row.Attachments) > 1 {
		return nil, invalid("Invalid volume: volume %s cannot be attached to more than one server (multiattach is not supported).", row.ID)
	}
	if row.GroupID != cur.GroupID {
		return nil, invalid("a volume joins or leaves a group by the group's update only")
	}
	if row.GroupID != "" && row.TypeID != cur.TypeID {
		if g := store.Get[Group](tx, GroupTable, row.GroupID); g != nil && !slices.Contains(g.VolumeTypeIDs, row.TypeID) {
			return nil, invalid("Invalid volume type: volume %s is in group %s, which does not take volume type %s.", row.ID, g.ID, row.TypeID)
		}
	}
	row.Revision = cur.Revision + 1
	if err := tx.Insert(VolumeTable, &row); err != nil {
		return nil, err
	}
	if row.Size > cur.Size {
		if err := checkPerVolume(tx, row.Project, row.Size); err != nil {
			return nil, err
		}
		if err := checkQuota(tx, row.Project, row.Size-cur.Size, append([]string{QuotaGigabytes}, typeResources(tx, row.TypeID, QuotaGigabytes)...)...); err != nil {
			return nil, err
		}
	}
	return row, nil
}

// DeleteVolumeCmd removes a volume whose current revision is Revision,
// once its blocks are gone.
type DeleteVolumeCmd struct {
	ID       string `json:"id"`
	Revision int64  `json:"revision"`
}

func applyDeleteVolume(tx *memdb.Txn, c DeleteVolumeCmd) (any, error) {
	cur := store.Get[Volume](tx, VolumeTable, c.ID)
	if cur == nil {
		return nil, nil
	}
	if cur.Revision != c.Revision {
		return nil, stale("volume", cur.ID, cur.Revision, c.Revision)
	}
	if len(store.All[Snapshot](tx, SnapshotTable, "volume", c.ID)) > 0 {
		return nil, invalid("Invalid volume: Volume %s has snapshots; delete them first.", c.ID)
	}
	return nil, tx.Delete(VolumeTable, cur)
}

// CreateSnapshotCmd inserts a new snapshot, taking its quota.
type CreateSnapshotCmd struct {
	Row Snapshot `json:"row"`
}

func applyCreateSnapshot(tx *memdb.Txn, c CreateSnapshotCmd) (any, error) {
	if store.Get[Snapshot](tx, SnapshotTable, c.Row.ID) != nil {
		return nil, store.Conflictf("snapshot %s exists", c.Row.ID)
	}
	vol := store.Get[Volume](tx, VolumeTable, c.Row.VolumeID)
	if vol == nil {
		return nil, store.Fault(store.KindNotFound, "itemNotFound", "Volume %s could not be found.", c.Row.VolumeID)
	}
	if vol.Status != StatusAvailable && vol.Status != StatusInUse {
		return nil, invalid("Invalid volume: Volume %s status must be available or in-use, but current status is: %s.", vol.ID, vol.Status)
	}
	row := c.Row
	row.Size = vol.Size
	row.Revision = 1
	if err := tx.Insert(SnapshotTable, &row); err != nil {
		return nil, err
	}
	if err := checkQuota(tx, row.Project, row.Size, append([]string{QuotaSnapshots, QuotaGigabytes}, typeResources(tx, vol.TypeID, QuotaSnapshots, QuotaGigabytes)...)...); err != nil {
		return nil, err
	}
	return row, nil
}

// PutSnapshotCmd replaces a snapshot whose current revision is Revision.
type PutSnapshotCmd struct {
	Row      Snapshot `json:"row"`
	Revision int64    `json:"revision"`
}

func applyPutSnapshot(tx *memdb.Txn, c PutSnapshotCmd) (any, error) {
	cur, err := current(tx, SnapshotTable, "Snapshot", c.Row.ID, c.Revision, func(r *Snapshot) int64 { return r.Revision })
	if err != nil {
		return nil, err
	}
	row := c.Row
	if row.VolumeID != cur.VolumeID || row.Project != cur.Project || row.Size != cur.Size {
		return nil, invalid("a snapshot's volume, project and size cannot change")
	}
	row.Revision = cur.Revision + 1
	return row, tx.Insert(SnapshotTable, &row)
}

// DeleteSnapshotCmd removes a snapshot whose current revision is
// Revision, once its blocks are gone.
type DeleteSnapshotCmd struct {
	ID       string `json:"id"`
	Revision int64  `json:"revision"`
}

func applyDeleteSnapshot(tx *memdb.Txn, c DeleteSnapshotCmd) (any, error) {
	cur := store.Get[Snapshot](tx, SnapshotTable, c.ID)
	if cur == nil {
		return nil, nil
	}
	if cur.Revision != c.Revision {
		return nil, stale("snapshot", cur.ID, cur.Revision, c.Revision)
	}
	return nil, tx.Delete(SnapshotTable, cur)
}

// CreateTypeCmd inserts a volume type.
type CreateTypeCmd struct {
	Row Type `json:"row"`
}

func applyCreateType(tx *memdb.Txn, c CreateTypeCmd) (any, error) {
	if _, err := LoadType(tx, c.Row.ID); err == nil {
		return nil, store.Conflictf("volume type %s exists", c.Row.ID)
	}
	if TypeByName(tx, c.Row.Name) != nil {
		return nil, store.Fault(store.KindConflict, "conflictingRequest", "Volume Type %s already exists.", c.Row.Name)
	}
	row := c.Row
	row.Revision = 1
	return row, tx.Insert(TypeTable, &row)
}

// PutTypeCmd replaces a type whose current revision is Revision (0 for
// the default type before its first change).
type PutTypeCmd struct {
	Row      Type  `json:"row"`
	Revision int64 `json:"revision"`
}

func applyPutType(tx *memdb.Txn, c PutTypeCmd) (any, error) {
	cur, err := LoadType(tx, c.Row.ID)
	if err != nil {
		return nil, err
	}
	if cur.Revision != c.Revision {
		return nil, stale("volume type", cur.ID, cur.Revision, c.Revision)
	}
	if other := TypeByName(tx, c.Row.Name); other != nil && other.ID != c.Row.ID {
		return nil, store.Fault(store.KindConflict, "conflictingRequest", "Volume Type %s already exists.", c.Row.Name)
	}
	if c.Row.ID == DefaultTypeID && c.Row.Name != DefaultTypeName {
		return nil, invalid("Invalid volume type: the default volume type cannot be renamed.")
	}
	if c.Row.QoSSpecID != "" && c.Row.QoSSpecID != cur.QoSSpecID {
		if _, err := LoadQoS(tx, c.Row.QoSSpecID); err != nil {
			return nil, err
		}
	}
	if !SameEncryption(cur.Encryption, c.Row.Encryption) && TypeInUse(tx, cur.ID) {
		// A volume's LUKS header and key follow the spec it was made
		// with: the spec cannot change under it.
		return nil, invalid("Invalid volume type: the encryption of volume type %s cannot change while volumes use the type.", cur.ID)
	}
	row := c.Row
	row.Revision = cur.Revision + 1
	if old := store.Get[Type](tx, TypeTable, row.ID); old != nil {
		// The name index must not keep the old name.
		if err := tx.Delete(TypeTable, old); err != nil {
			return nil, err
		}
	}
	return row, tx.Insert(TypeTable, &row)
}

// SameEncryption reports whether a and b encrypt alike (their times
// aside).
func SameEncryption(a, b *Encryption) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := *a, *b
	x.CreatedAt, x.UpdatedAt, y.CreatedAt, y.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return x == y
}

// TypeInUse reports whether a volume has type id.
func TypeInUse(tx *memdb.Txn, id string) bool {
	for _, v := range store.All[Volume](tx, VolumeTable, "id") {
		if v.TypeID == id {
			return true
		}
	}
	return false
}

// DeleteTypeCmd removes a type no volume uses.
type DeleteTypeCmd struct {
	ID string `json:"id"`
}

func applyDeleteType(tx *memdb.Txn, c DeleteTypeCmd) (any, error) {
	if c.ID == DefaultTypeID {
		return nil, invalid("Invalid volume type: the default volume type cannot be deleted.")
	}
	cur := store.Get[Type](tx, TypeTable, c.ID)
	if cur == nil {
		return nil, store.Fault(store.KindNotFound, "itemNotFound", "Volume type %s could not be found.", c.ID)
	}
	if p := defaultOf(tx, c.ID); p != "" {
		return nil, invalid("Invalid volume type: the volume type %s is the default volume type of project %s and cannot be deleted.", c.ID, p)
	}
	for _, v := range store.All[Volume](tx, VolumeTable, "id") {
		if v.TypeID == c.ID {
			return nil, invalid("Target volume type is still in use.")
		}
	}
	for _, g := range store.All[Group](tx, GroupTable, "id") {
		if slices.Contains(g.VolumeTypeIDs, c.ID) {
			return nil, invalid("Target volume type is still in use: group %s is of it.", g.ID)
		}
	}
	return nil, tx.Delete(TypeTable, cur)
}

// SetQuotaCmd sets some of a project's limits.
type SetQuotaCmd struct {
	Project string         `json:"project"`
	Limits  map[string]int `json:"limits"`
}

func applySetQuota(tx *memdb.Txn, c SetQuotaCmd) (any, error) {
	q := Quota{ID: c.Project, Limits: map[string]int{}}
	if old := store.Get[Quota](tx, QuotaTable, c.Project); old != nil {
		maps.Copy(q.Limits, old.Limits)
	}
	for k, v := range c.Limits {
		if !IsQuotaResource(tx, k) {
			return nil, invalid("Bad key(s) in quota set: %s", k)
		}
		if v < -1 {
			return nil, invalid("Quota limit %d for %s must be -1 or greater.", v, k)
		}
		q.Limits[k] = v
	}
	return nil, tx.Insert(QuotaTable, &q)
}

// DeleteQuotaCmd gives a project the default limits back.
type DeleteQuotaCmd struct {
	Project string `json:"project"`
}

func applyDeleteQuota(tx *memdb.Txn, c DeleteQuotaCmd) (any, error) {
	if q := store.Get[Quota](tx, QuotaTable, c.Project); q != nil {
		return nil, tx.Delete(QuotaTable, q)
	}
	return nil, nil
}

// Attaching. The compute API proposes Attach (available → attaching, the
// attachment recorded with the server's host); the node agent of that
// host plugs the volume into the VM and proposes Attached (→ in-use), or
// Detached with a reason when it could not. Detach (in-use or attaching →
// detaching) is the compute API's; the agent unplugs and proposes
// Detached (→ available). A server's removal releases its volumes in the
// same command (ReleaseServer), so a deleted server never keeps one.

// AttachCmd attaches a volume of Project to a server.
type AttachCmd struct {
	VolumeID   string     `json:"volume_id"`
	Project    string     `json:"project"`
	Attachment Attachment `json:"attachment"`
}

func applyAttach(tx *memdb.Txn, c AttachCmd) (any, error) {
	row, err := AttachTx(tx, c)
	if err != nil {
		return nil, err
	}
	return *row, nil
}

// AttachTx attaches a volume in tx: for Attach, and for the command
// that places a server booting from the volume or attaching it as it is
// created. A volume reserved for the server (ReserveTx) under the same
// attachment id is attached under it: the reservation becomes the
// attachment.
func AttachTx(tx *memdb.Txn, c AttachCmd) (*Volume, error) {
	cur, err := attachable(tx, c)
	if err != nil {
		return nil, err
	}
	row := cur.Clone()
	row.Status, row.Reason = StatusAttaching, ""
	row.Attachments = []Attachment{c.Attachment}
	if cur.IsReadOnly() {
		row.Attachments[0].Mode = AttachReadOnly
	}
	row.UpdatedAt = c.Attachment.Since
	row.Revision++
	return row, tx.Insert(VolumeTable, row)
}

// attachable is the volume c attaches or reserves: c.Project's, and
// available, or reserved for c's attachment (same id and server, on no
// host yet).
func attachable(tx *memdb.Txn, c AttachCmd) (*Volume, error) {
	cur := store.Get[Volume](tx, VolumeTable, c.VolumeID)
	if cur == nil || (c.Project != "" && cur.Project != c.Project) {
		return nil, store.Fault(store.KindNotFound, "itemNotFound", "Volume %s could not be found.", c.VolumeID)
	}
	switch {
	case reservedFor(cur, c.Attachment):
		return cur, nil
	case cur.Status == StatusReserved:
		return nil, invalid("Invalid volume: volume %s status must be available to attach, but current status is: %s (for server %s).",
			cur.ID, cur.Status, serverOf(cur))
	case len(cur.Attachments) > 0:
		return nil, invalid("Invalid volume: volume %s is already attached to server %s; multiattach is not supported.", cur.ID, cur.Attachments[0].ServerID)
	case cur.Status != StatusAvailable:
		return nil, invalid("Invalid volume: volume %s status must be available to attach, but current status is: %s.", cur.ID, cur.Status)
	}
	return cur, nil
}

// reservedFor says whether v is reserved for attachment a: the same
// attachment, to the same server, plugged nowhere yet.
func reservedFor(v *Volume, a Attachment) bool {
	return v.Status == StatusReserved && len(v.Attachments) == 1 && v.Attachments[0].ID == a.ID &&
		v.Attachments[0].ServerID == a.ServerID && v.Attachments[0].Host == "" && a.ServerID != ""
}

func serverOf(v *Volume) string {
	if len(v.Attachments) == 0 || v.Attachments[0].ServerID == "" {
		return "none"
	}
	return v.Attachments[0].ServerID
}

// Reserving. A server create that names an existing volume but places
// the server only later (once the volumes it asks to be made exist)
// reserves the volume in the command that records the server, as Nova's
// API does with Cinder's attachment_create without a connector: the
// volume is reserved, its attachment naming the server and no host, so
// that no other create or attach takes it meanwhile. Placing the server
// attaches it under that attachment (AttachTx); a build that fails, or a
// server removed before it is placed, gives it back (UnreserveTx,
// ReleaseServer).

// ReserveTx reserves an available volume of c.Project for
// c.Attachment's server, in tx; the attachment names no host.
func ReserveTx(tx *memdb.Txn, c AttachCmd) (*Volume, error) {
	if c.Attachment.ServerID == "" || c.Attachment.Host != "" {
		return nil, store.Invalidf("a reservation names its server and no host")
	}
	cur, err := attachable(tx, c)
	if err != nil {
		return nil, err
	}
	if cur.Status == StatusReserved {
		return cur, nil
	}
	row := cur.Clone()
	row.Status, row.Reason = StatusReserved, ""
	row.Attachments = []Attachment{c.Attachment}
	row.UpdatedAt = c.Attachment.Since
	row.Revision++
	return row, tx.Insert(VolumeTable, row)
}

// UnreserveTx gives back volume id reserved under attachment att (of
// server) in tx: available again, without the attachment. A volume that
// is not (or no longer) so reserved is left as it is.
func UnreserveTx(tx *memdb.Txn, id, att, server string, now time.Time) error {
	cur := store.Get[Volume](tx, VolumeTable, id)
	if cur == nil || !reservedFor(cur, Attachment{ID: att, ServerID: server}) {
		return nil
	}
	row := cur.Clone()
	row.Status, row.Attachments, row.UpdatedAt = StatusAvailable, nil, now
	row.Revision++
	return tx.Insert(VolumeTable, row)
}

// AttachedCmd is the node agent's report that an attachment is plugged.
type AttachedCmd struct {
	VolumeID     string    `json:"volume_id"`
	AttachmentID string    `json:"attachment_id"`
	Now          time.Time `json:"now"`
}

func applyAttached(tx *memdb.Txn, c AttachedCmd) (any, error) {
	cur := store.Get[Volume](tx, VolumeTable, c.VolumeID)
	if cur == nil || len(cur.Attachments) != 1 || cur.Attachments[0].ID != c.AttachmentID {
		return nil, store.Conflictf("volume %s has no attachment %s", c.VolumeID, c.AttachmentID)
	}
	if cur.Status != StatusAttaching {
		return nil, store.Conflictf("volume %s is %s, not attaching", c.VolumeID, cur.Status)
	}
	row := cur.Clone()
	row.Status, row.UpdatedAt = StatusInUse, c.Now
	row.Revision++
	return *row, tx.Insert(VolumeTable, row)
}

// DetachCmd asks for a volume's detachment from a server.
type DetachCmd struct {
	VolumeID string    `json:"volume_id"`
	ServerID string    `json:"server_id"`
	Now      time.Time `json:"now"`
}

func applyDetach(tx *memdb.Txn, c DetachCmd) (any, error) {
	cur := store.Get[Volume](tx, VolumeTable, c.VolumeID)
	if cur == nil || len(cur.Attachments) != 1 || cur.Attachments[0].ServerID != c.ServerID {
		return nil, store.Fault(store.KindNotFound, "itemNotFound", "volume %s is not attached to server %s", c.VolumeID, c.ServerID)
	}
	switch cur.Status {
	case StatusInUse, StatusAttaching:
	case StatusDetaching:
		return *cur, nil
	default:
		return nil, invalid("Invalid volume: volume %s status must be in-use to detach, but current status is: %s.", cur.ID, cur.Status)
	}
	row := cur.Clone()
	row.Status, row.UpdatedAt = StatusDetaching, c.Now
	row.Revision++
	return *row, tx.Insert(VolumeTable, row)
}

// DetachedCmd is the node agent's report that an attachment is unplugged
// (or could not be plugged: Reason says why).
type DetachedCmd struct {
	VolumeID     string    `json:"volume_id"`
	AttachmentID string    `json:"attachment_id"`
	Reason       string    `json:"reason,omitempty"`
	Now          time.Time `json:"now"`
}

func applyDetached(tx *memdb.Txn, c DetachedCmd) (any, error) {
	cur := store.Get[Volume](tx, VolumeTable, c.VolumeID)
	if cur == nil || len(cur.Attachments) != 1 || cur.Attachments[0].ID != c.AttachmentID {
		return nil, store.Conflictf("volume %s has no attachment %s", c.VolumeID, c.AttachmentID)
	}
	row := cur.Clone()
	row.Status, row.Reason, row.Attachments, row.UpdatedAt = StatusAvailable, c.Reason, nil, c.Now
	row.Revision++
	return *row, tx.Insert(VolumeTable, row)
}

// ReleaseServer detaches every volume of server, for the command that
// removes the server. Its VM is gone or going; the block store's writer
// fence keeps a VM that lingers from writing after a new attachment.
//
// A volume to be deleted with its server is left deleting, without a
// worker: the volume service's maintenance deletes its blocks and its
// row (the state machine does no I/O).
func ReleaseServer(tx *memdb.Txn, server string, now time.Time) error {
	for _, v := range VolumesOfServer(tx, server) {
		status := StatusAvailable
		// A volume only reserved for the server (never placed) was
		// never its disk: it is given back, whatever the server was
		// to do with it.
		if v.Attachments[0].DeleteOnTermination && v.Status != StatusReserved {
			status = StatusDeleting
			v.WorkNode, v.WorkRun = "", ""
		}
		v.Status, v.Attachments, v.UpdatedAt = status, nil, now
		v.Revision++
		if err := tx.Insert(VolumeTable, v); err != nil {
			return err
		}
	}
	return nil
}
