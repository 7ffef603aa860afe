// Package objectapi holds the JSON body of GET /rackstack/v1/storage/status,
// the picture `rackctl storage status` prints. It is a leaf with no imports
// of ours, so a client decodes the status without linking the erasure coder
// and the state store that the object service producing it needs.
package objectapi

import "time"

// Status is the storage picture `rackctl storage status` shows.
type Status struct {
	Disks []DiskStatus `json:"disks"`
	// Geometry is the coding new objects get now.
	K int `json:"k"`
	M int `json:"m"`
	// Parts are all stored blobs; Misplaced those not where placement
	// wants them (to rebalance or to rebuild off lost disks); Degraded
	// those with a shard on a gone disk or lost node.
	Parts     int `json:"parts"`
	Misplaced int `json:"misplaced"`
	Degraded  int `json:"degraded"`
	// HealQueue are blobs readers or the scrubber found damaged.
	HealQueue int `json:"heal_queue"`
	Garbage   int `json:"garbage"`
	// Counters of this node's background loops (meaningful on the leader).
	Healed      int64     `json:"healed_shards"`
	Moved       int64     `json:"moved_parts"`
	MovedBytes  int64     `json:"moved_bytes"`
	Scrubbed    int64     `json:"scrubbed_parts"`
	ScrubErrors int64     `json:"scrub_bad_shards"`
	LastPass    time.Time `json:"last_rebalance_pass,omitempty"`
}

// DiskStatus is one disk in Status.
type DiskStatus struct {
	Disk
	Up     bool  `json:"up"`
	Shards int   `json:"shards"`
	Used   int64 `json:"used_bytes"` // bytes of shard files the metadata puts here
}

// Disk is a disk some node serves, as the object service records it. It
// has the fields of object.DiskRow, which converts to it: a field added to
// one and not the other breaks that conversion at compile time.
type Disk struct {
	ID    string `json:"id"`
	Node  string `json:"node"`
	Path  string `json:"path"`
	Total uint64 `json:"total"`
	Free  uint64 `json:"free"`
	// Gone is set when the node came back without this disk (wiped or
	// replaced): its shards must be rebuilt elsewhere.
	Gone bool `json:"gone"`
}
