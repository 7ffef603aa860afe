package image

import (
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/image/imagestate"
	"github.com/rackstack/rackstack/fabric/store"
)

// The image rows and their constants live in imagestate, which node
// agents import without this package's handlers; these aliases keep
// callers of image.Image and friends compiling.
type (
	Image  = imagestate.Image
	Member = imagestate.Member
)

const (
	StatusQueued      = imagestate.StatusQueued
	StatusSaving      = imagestate.StatusSaving
	StatusActive      = imagestate.StatusActive
	StatusDeactivated = imagestate.StatusDeactivated
	StatusUploading   = imagestate.StatusUploading
	StatusImporting   = imagestate.StatusImporting

	VisibilityPrivate   = imagestate.VisibilityPrivate
	VisibilityShared    = imagestate.VisibilityShared
	VisibilityCommunity = imagestate.VisibilityCommunity
	VisibilityPublic    = imagestate.VisibilityPublic

	MemberPending  = imagestate.MemberPending
	MemberAccepted = imagestate.MemberAccepted
	MemberRejected = imagestate.MemberRejected
)

// ErrNoData is returned by Open for an image without stored bytes.
var ErrNoData = imagestate.ErrNoData

// Schema is the image service's part of the replicated state.
func Schema() store.Schema { return imagestate.Schema() }

// TableNames lists the tables Load reads, so a watcher can watch them.
func TableNames() []string { return imagestate.TableNames() }

// Load returns a copy of the image id from txn, or an error matching
// store.ErrNotFound.
func Load(txn *memdb.Txn, id string) (*Image, error) { return imagestate.Load(txn, id) }

const tImages = imagestate.Table
