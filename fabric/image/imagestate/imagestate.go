// Package imagestate is the image service's part of the replicated
// state: the Image row, its statuses, the table and the commands that
// change it. Node agents and the compute side read images through it; it
// knows nothing of HTTP.
package imagestate

import (
	"errors"
	"maps"
	"slices"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/events/eventstate"
	"github.com/rackstack/rackstack/fabric/store"
)

// Image statuses this service gives images.
const (
	StatusQueued      = "queued"      // registered, no data yet
	StatusSaving      = "saving"      // data being uploaded
	StatusActive      = "active"      // data stored; usable
	StatusDeactivated = "deactivated" // data kept, downloads refused to non-admins
	StatusUploading   = "uploading"   // data being staged, or staged for an import
)

// Visibilities.
const (
	VisibilityPrivate   = "private"
	VisibilityShared    = "shared"
	VisibilityCommunity = "community"
	VisibilityPublic    = "public"
)

// Member statuses of a shared image's consumers.
const (
	MemberPending  = "pending"
	MemberAccepted = "accepted"
	MemberRejected = "rejected"
)

// Image is one image's metadata; its bytes are an object in the object
// store. A row is never changed after insert: a command replaces it
// whole. The compute side and the node agents read these rows (Load),
// so the Go field names are a contract.
type Image struct {
	ID              string `json:"id"`
	Name            string `json:"name"`
	Owner           string `json:"owner"` // project id
	Status          string `json:"status"`
	Visibility      string `json:"visibility"`
	DiskFormat      string `json:"disk_format"`      // "" until set
	ContainerFormat string `json:"container_format"` // "" until set
	// Size is the data's length in bytes; it means something only once
	// the image has data (HasData).
	Size int64 `json:"size"`
	// VirtualSize is the size of the disk the data describes (raw: Size;
	// qcow2: from its header), 0 when unknown.
	VirtualSize int64             `json:"virtual_size,omitempty"`
	Checksum    string            `json:"checksum,omitempty"` // MD5, hex
	HashAlgo    string            `json:"os_hash_algo,omitempty"`
	HashValue   string            `json:"os_hash_value,omitempty"`
	MinDisk     int               `json:"min_disk"` // GiB
	MinRAM      int               `json:"min_ram"`  // MiB
	Protected   bool              `json:"protected"`
	Hidden      bool              `json:"os_hidden"`
	Tags        []string          `json:"tags,omitempty"`
	Properties  map[string]string `json:"properties,omitempty"`
	// Members are the projects a shared image is offered to, by id.
	Members   []Member  `json:"members,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Object names the object holding the data in the service's
	// container; "" while the image has none.
	Object string `json:"object,omitempty"`
	// StagedObject names the object holding data staged for an import
	// (PUT .../stage) while Status is uploading: Size and the digests
	// describe it, and the glance-direct import makes it Object.
	StagedObject string `json:"staged_object,omitempty"`
	// The upload in progress while Status is saving, uploading or
	// importing (web-download's fetch): its id, the node
	// streaming it, that node's process (a restart loses the upload) and
	// when it began.
	UploadID      string    `json:"upload_id,omitempty"`
	UploadNode    string    `json:"upload_node,omitempty"`
	UploadRun     string    `json:"upload_run,omitempty"`
	UploadStarted time.Time `json:"upload_started,omitzero"`
	// Revision counts the row's versions; every change names the revision
	// it was computed from, so concurrent changes cannot lose each other.
	Revision int64 `json:"revision"`
}

// Member is a project a shared image is offered to, and its answer.
type Member struct {
	Project   string    `json:"project"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// HasData reports whether the image's bytes are stored.
func (img *Image) HasData() bool { return img.Object != "" }

// MemberOf returns project's membership, or nil.
func (img *Image) MemberOf(project string) *Member {
	for i := range img.Members {
		if img.Members[i].Project == project {
			return &img.Members[i]
		}
	}
	return nil
}

// Clone copies the row deeply enough that changing the copy leaves the
// stored row alone.
func (img *Image) Clone() *Image {
	c := *img
	c.Tags = slices.Clone(img.Tags)
	c.Properties = maps.Clone(img.Properties)
	c.Members = slices.Clone(img.Members)
	return &c
}

// Table and command names.
const (
	Table = "image_images"

	CmdCreate = "image.create"
	CmdPut    = "image.put"
	CmdDelete = "image.delete"
)

// Schema is the image service's part of the replicated state.
func Schema() store.Schema {
	return store.Schema{
		Tables: []store.Table{
			store.NewTable(Table, &Image{}, store.StringIndex("owner", "Owner", false)),
			namespaceTable(),
			taskTable(),
		},
		Handlers: map[string]store.Handler{
			CmdCreate: store.Typed(applyCreate),
			CmdPut:    store.Typed(applyPut),
			CmdDelete: store.Typed(applyDelete),

			CmdNamespaceCreate: store.Typed(applyNamespaceCreate),
			CmdNamespacePut:    store.Typed(applyNamespacePut),
			CmdNamespaceDelete: store.Typed(applyNamespaceDelete),

			CmdTaskPut:    store.Typed(applyTaskPut),
			CmdTaskExpire: store.Typed(applyTaskExpire),
		},
		Observers: []store.Observer{eventstate.Observe(eventResources()...)},
	}
}

// TableNames lists the tables Load reads, so a watcher can watch them.
func TableNames() []string { return []string{Table} }

// ErrNoData is returned by Open for an image without stored bytes.
var ErrNoData = errors.New("image has no data")

// Load returns a copy of the image id from txn, or an error matching
// store.ErrNotFound.
func Load(txn *memdb.Txn, id string) (*Image, error) {
	img := store.Get[Image](txn, Table, id)
	if img == nil {
		return nil, store.NotFoundf("image %s not found", id)
	}
	return img.Clone(), nil
}

// Command handlers. They run in the FSM on every node: deterministic, no
// clock, no I/O. The proposer computes the new row from the revision it
// read; the handler only checks that nothing changed since.

// staleMsg starts the conflict a command gets when the row moved on since
// its proposer read it; the proposer then reads again and retries.
const staleMsg = "image changed concurrently"

// faultStale names that conflict, so proposers need not parse messages.
const faultStale = "ImageStale"

// IsStale reports whether err is that conflict.
func IsStale(err error) bool {
	var ae *store.ApplyError
	return errors.As(err, &ae) && ae.Kind == store.KindConflict && ae.Fault == faultStale
}

// CreateCmd inserts a new image.
type CreateCmd struct {
	Row Image `json:"row"`
}

func applyCreate(tx *memdb.Txn, c CreateCmd) (any, error) {
	if store.Get[Image](tx, Table, c.Row.ID) != nil {
		return nil, store.Conflictf("Image with identifier %s already exists!", c.Row.ID)
	}
	row := c.Row
	row.Revision = 1
	return row, tx.Insert(Table, &row)
}

// PutCmd replaces an image whose current revision is Revision.
type PutCmd struct {
	Row      Image `json:"row"`
	Revision int64 `json:"revision"`
}

func applyPut(tx *memdb.Txn, c PutCmd) (any, error) {
	cur := store.Get[Image](tx, Table, c.Row.ID)
	if cur == nil {
		return nil, store.NotFoundf("No image found with ID %s", c.Row.ID)
	}
	if cur.Revision != c.Revision {
		return nil, store.Fault(store.KindConflict, faultStale, "%s: %s is at revision %d, not %d", staleMsg, cur.ID, cur.Revision, c.Revision)
	}
	row := c.Row
	row.Revision = cur.Revision + 1
	return row, tx.Insert(Table, &row)
}

// DeleteCmd deletes an image whose current revision is Revision.
type DeleteCmd struct {
	ID       string `json:"id"`
	Revision int64  `json:"revision"`
}

func applyDelete(tx *memdb.Txn, c DeleteCmd) (any, error) {
	cur := store.Get[Image](tx, Table, c.ID)
	if cur == nil {
		return nil, store.NotFoundf("No image found with ID %s", c.ID)
	}
	if cur.Revision != c.Revision {
		return nil, store.Fault(store.KindConflict, faultStale, "%s: %s is at revision %d, not %d", staleMsg, cur.ID, cur.Revision, c.Revision)
	}
	if cur.Protected {
		return nil, store.Forbiddenf("Image %s is protected and cannot be deleted.", c.ID)
	}
	return cur, tx.Delete(Table, cur)
}
