package object

import (
	"fmt"
	"maps"
	"time"

	"github.com/rackstack/rackstack/fabric/events/eventstate"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/storage/blob"
)

// Rows of the storage tables. Rows are never changed in place: handlers copy,
// change and insert.

// DiskRow is a disk some node serves.
type DiskRow struct {
	ID    string `json:"id"`
	Node  string `json:"node"`
	Path  string `json:"path"`
	Total uint64 `json:"total"`
	Free  uint64 `json:"free"`
	// FS names the filesystem the disk directory is on (its device), so
	// that directories sharing one are not counted as separate space.
	FS string `json:"fs,omitempty"`
	// Gone is set when the node came back without this disk (wiped or
	// replaced): its shards must be rebuilt elsewhere.
	Gone bool `json:"gone"`
}

// Account holds a project's Swift account metadata.
type Account struct {
	ID   string            `json:"id"` // project id
	Meta map[string]string `json:"meta,omitempty"`
}

// Container is a Swift container or an S3 bucket.
type Container struct {
	ID       string            `json:"id"` // project/name
	Project  string            `json:"project"`
	Name     string            `json:"name"`
	Created  time.Time         `json:"created"`
	Meta     map[string]string `json:"meta,omitempty"`
	ReadACL  string            `json:"read_acl,omitempty"`
	WriteACL string            `json:"write_acl,omitempty"`
	Objects  int64             `json:"objects"`
	Bytes    int64             `json:"bytes"`
	// Tags are the bucket's S3 tags (PUT ?tagging on the bucket).
	Tags map[string]string `json:"tags,omitempty"`
	// Versions names the container (same project) that keeps the
	// previous versions of this one's objects, as the Swift client set it
	// (URL-encoded); VersionsMode is VersionsStack or VersionsHistory.
	// Only the Swift front end acts on them (storage/swift/versions.go).
	Versions     string `json:"versions,omitempty"`
	VersionsMode string `json:"versions_mode,omitempty"`
	// Versioning is the object versioning state (versions.go): "" never
	// enabled, VersioningEnabled or VersioningSuspended. S3's bucket
	// versioning and Swift's X-Versions-Enabled are this one state.
	Versioning string `json:"versioning,omitempty"`
	// VersionSeq orders the versions written into the container;
	// VersionObjects and VersionBytes count its noncurrent versions
	// (delete markers hold no bytes and are not counted).
	VersionSeq     uint64 `json:"version_seq,omitempty"`
	VersionObjects int64  `json:"version_objects,omitempty"`
	VersionBytes   int64  `json:"version_bytes,omitempty"`
	// SyncTo and SyncKey are Swift's X-Container-Sync-To (as the client
	// set it, validated against the realms) and X-Container-Sync-Key:
	// with both set the container is synced (sync.go).
	SyncTo  string `json:"sync_to,omitempty"`
	SyncKey string `json:"sync_key,omitempty"`
}

// Versioning modes of a container (Swift's legacy versioned writes):
// stack (X-Versions-Location) and history (X-History-Location).
const (
	VersionsStack   = "stack"
	VersionsHistory = "history"
)

// Part is one erasure-coded blob holding a run of an object's bytes, or
// the bytes themselves for a small object stored inline (see InlineMax).
type Part struct {
	Blob   string      `json:"blob"`
	Size   int64       `json:"size"`
	ETag   string      `json:"etag,omitempty"` // md5 of this part, for multipart listings
	Layout blob.Layout `json:"layout"`
	// Inline parts carry their bytes in Data, in the replicated state, and
	// have no Blob or Layout: nothing on the disks to heal, scrub, move,
	// collect or sweep.
	Inline bool   `json:"inline,omitempty"`
	Data   []byte `json:"data,omitempty"`
}

// Segment is one piece of a static large object: another object, read at
// GET time.
type Segment struct {
	Container string `json:"container"`
	Name      string `json:"name"`
	Size      int64  `json:"size_bytes"`
	ETag      string `json:"etag"`
}

// Object is the metadata of one stored object. Its bytes are the
// concatenation of Parts (usually one), or of Segments for a manifest.
type Object struct {
	ID          string            `json:"id"` // project \x00 container \x00 name
	Project     string            `json:"project"`
	Container   string            `json:"container"`
	Name        string            `json:"name"`
	Version     string            `json:"version"`
	Size        int64             `json:"size"`
	ETag        string            `json:"etag"`
	ContentType string            `json:"content_type"`
	Meta        map[string]string `json:"meta,omitempty"`
	// Headers are other stored response headers (Content-Disposition,
	// Content-Encoding, Cache-Control...).
	Headers  map[string]string `json:"headers,omitempty"`
	Modified time.Time         `json:"modified"`
	// Tags are the object's S3 tags (tags.go).
	Tags     map[string]string `json:"tags,omitempty"`
	Parts    []Part            `json:"parts,omitempty"`
	Segments []Segment         `json:"segments,omitempty"`
	// VersionID is the object version's id as S3 and Swift show it; ""
	// is the "null" version (every object written while the container
	// was never versioned, or while versioning was suspended). Seq orders
	// the versions of a name (newer is larger; 0 for objects written
	// before the container was versioned). A DeleteMarker has no bytes
	// and lives only among the noncurrent versions (versions.go).
	VersionID    string `json:"version_id,omitempty"`
	Seq          uint64 `json:"seq,omitempty"`
	DeleteMarker bool   `json:"delete_marker,omitempty"`
}

// Upload is an S3 multipart upload in progress.
type Upload struct {
	ID          string            `json:"id"`
	Project     string            `json:"project"`
	Container   string            `json:"container"`
	Name        string            `json:"name"`
	Created     time.Time         `json:"created"`
	ContentType string            `json:"content_type"`
	Meta        map[string]string `json:"meta,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
}

// UploadPart is one uploaded part of a multipart upload.
type UploadPart struct {
	ID       string    `json:"id"` // upload/number (zero-padded)
	UploadID string    `json:"upload_id"`
	Number   int       `json:"number"`
	Modified time.Time `json:"modified"`
	Part     Part      `json:"part"`
}

// Garbage is a blob no object refers to any more; its shards are deleted in
// the background so that deletes are quick and survive crashes.
type Garbage struct {
	ID    string    `json:"id"` // blob key
	Part  Part      `json:"part"`
	Since time.Time `json:"since"`
}

// InlineUsage counts the bytes of inline parts in the state (one row,
// inlineUsageID), so that a command can refuse an inline object that
// would take the state over its budget.
type InlineUsage struct {
	ID    string `json:"id"`
	Bytes int64  `json:"bytes"`
}

const inlineUsageID = "inline"

// HealItem is a blob a reader found degraded.
type HealItem struct {
	ID     string `json:"id"` // blob key
	Object string `json:"object"`
	// Source names the Config.Sources entry holding the blob when it is
	// not a part of an object (a block volume's extent or segment).
	Source string    `json:"source,omitempty"`
	Since  time.Time `json:"since"`
}

// Table names.
const (
	tAccounts    = "storage_accounts"
	tDisks       = "storage_disks"
	tContainers  = "storage_containers"
	tObjects     = "storage_objects"
	tUploads     = "storage_uploads"
	tUploadParts = "storage_upload_parts"
	tGarbage     = "storage_garbage"
	tHeal        = "storage_heal"
	tInline      = "storage_inline"
	tVersions    = "storage_versions"
)

// Command types.
const (
	cmdAccountPut      = "storage.account.put"
	cmdDiskSet         = "storage.disks.set"
	cmdContainerPut    = "storage.container.put"
	cmdContainerDelete = "storage.container.delete"
	cmdObjectPut       = "storage.object.put"
	cmdObjectInline    = "storage.object.put_inline"
	cmdObjectDelete    = "storage.object.delete"
	cmdObjectMeta      = "storage.object.meta"
	cmdObjectExpire    = "storage.object.expire"
	cmdRelocate        = "storage.part.relocate"
	cmdUploadCreate    = "storage.upload.create"
	cmdUploadPart      = "storage.upload.part"
	cmdUploadComplete  = "storage.upload.complete"
	cmdUploadAbort     = "storage.upload.abort"
	cmdGarbageDone     = "storage.garbage.done"
	cmdHealAdd         = "storage.heal.add"
	cmdHealDone        = "storage.heal.done"
)

// sep separates the parts of composite ids. Names may hold '/', never NUL.
const sep = "\x00"

func containerID(project, name string) string { return project + "/" + name }

func objectID(project, container, name string) string {
	return project + sep + container + sep + name
}

// objectPrefix is the id prefix of every object in a container.
func objectPrefix(project, container string) string { return project + sep + container + sep }

func uploadPartID(upload string, n int) string { return fmt.Sprintf("%s/%05d", upload, n) }

// Schema is the object store's part of the replicated state.
func Schema() store.Schema {
	sc := store.Schema{
		Tables: []store.Table{
			store.NewTable(tAccounts, &Account{}),
			store.NewTable(tDisks, &DiskRow{}, store.StringIndex("node", "Node", false)),
			store.NewTable(tContainers, &Container{}, store.StringIndex("project", "Project", false)),
			store.NewTable(tObjects, &Object{}, deleteAtIndexSchema()),
			store.NewTable(tUploads, &Upload{}, store.StringIndex("project", "Project", false)),
			store.NewTable(tUploadParts, &UploadPart{}, store.StringIndex("upload", "UploadID", false)),
			store.NewTable(tGarbage, &Garbage{}),
			store.NewTable(tHeal, &HealItem{}),
			store.NewTable(tInline, &InlineUsage{}),
			store.NewTable(tVersions, &Object{}),
		},
		Handlers: map[string]store.Handler{
			cmdAccountPut:      store.Typed(applyAccountPut),
			cmdDiskSet:         store.Typed(applyDiskSet),
			cmdContainerPut:    store.Typed(applyContainerPut),
			cmdContainerDelete: store.Typed(applyContainerDelete),
			cmdObjectPut:       store.Typed(applyObjectPut),
			cmdObjectInline:    store.Typed(applyObjectInline),
			cmdObjectDelete:    store.Typed(applyObjectDelete),
			cmdObjectRemove:    store.Typed(applyObjectRemove),
			cmdVersioning:      store.Typed(applyVersioning),
			cmdObjectMeta:      store.Typed(applyObjectMeta),
			cmdObjectTags:      store.Typed(applyObjectTags),
			cmdObjectExpire:    store.Typed(applyObjectExpire),
			cmdRelocate:        store.Typed(applyRelocate),
			cmdUploadCreate:    store.Typed(applyUploadCreate),
			cmdUploadPart:      store.Typed(applyUploadPart),
			cmdUploadComplete:  store.Typed(applyUploadComplete),
			cmdUploadAbort:     store.Typed(applyUploadAbort),
			cmdGarbageDone:     store.Typed(applyGarbageDone),
			cmdHealAdd:         store.Typed(applyHealAdd),
			cmdHealDone:        store.Typed(applyHealDone),
		},
		Observers: []store.Observer{eventstate.Observe(containerEvents()), observeSync},
	}
	sc.Tables = append(sc.Tables, syncTables()...)
	maps.Copy(sc.Handlers, syncHandlers())
	return sc
}
