// Package blockapi holds the wire types of rackd's operator endpoints for
// block volumes (/rackstack/v1/volumes), shared by rackd and rackctl so
// that rackctl links no server code.
package blockapi

// CreateRequest makes a raw volume in the block store (no Cinder row:
// for operators and tests; tenants use the Cinder API).
type CreateRequest struct {
	ID   string `json:"id"`
	Size int64  `json:"size"`
	K    int    `json:"k,omitempty"`
	M    int    `json:"m,omitempty"`
}

// Volume describes a volume or a snapshot of the block store.
type Volume struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Size   int64  `json:"size"`
	K      int    `json:"k"`
	M      int    `json:"m"`
	Parent string `json:"parent,omitempty"`
}

// Export is a volume served over NBD on one node.
type Export struct {
	Volume string `json:"volume"`
	Node   string `json:"node"`
	// URI is nbd://127.0.0.1:PORT/NAME, UnixURI nbd+unix:///NAME?socket=…
	// (both on the node that serves it).
	URI     string `json:"uri"`
	UnixURI string `json:"unix_uri"`
}

// Usage is the space block volumes take, shown by `rackctl storage status`
// beside the objects'.
type Usage struct {
	Volumes     int   `json:"volumes"`
	Snapshots   int   `json:"snapshots"`
	Provisioned int64 `json:"provisioned_bytes"` // sum of the volumes' sizes
	Allocated   int64 `json:"allocated_bytes"`   // written data, shared extents once
	Stored      int64 `json:"stored_bytes"`      // with the coding overhead
	Garbage     int64 `json:"garbage_bytes"`     // waiting to be deleted
}
