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
	// Capacity sums the disks' filesystems, each counted once however
	// many disk directories share it.
	Capacity Capacity `json:"capacity"`
	// Counters are the background loops' totals over every node that
	// answered (the loops run on whichever node leads, and leadership
	// moves); Nodes has each node's own.
	Counters
	Nodes []NodeCounters `json:"nodes,omitempty"`
}

// Capacity is the space of the filesystems the disks live on.
type Capacity struct {
	Total       uint64 `json:"total_bytes"`
	Free        uint64 `json:"free_bytes"`
	Filesystems int    `json:"filesystems"`
}

// Counters are what one node's background loops have done since it
// started, and the blobs its healer is backing off from.
type Counters struct {
	Healed       int64       `json:"healed_shards"`
	Moved        int64       `json:"moved_parts"`
	MovedBytes   int64       `json:"moved_bytes"`
	Scrubbed     int64       `json:"scrubbed_parts"`
	ScrubErrors  int64       `json:"scrub_bad_shards"`
	HealFailures int64       `json:"heal_failures"`
	LastPass     time.Time   `json:"last_rebalance_pass,omitempty"`
	HealBackoff  []HealRetry `json:"heal_backoff,omitempty"`
}

// Add sums o into c (the latest pass wins).
func (c *Counters) Add(o Counters) {
	c.Healed += o.Healed
	c.Moved += o.Moved
	c.MovedBytes += o.MovedBytes
	c.Scrubbed += o.Scrubbed
	c.ScrubErrors += o.ScrubErrors
	c.HealFailures += o.HealFailures
	if o.LastPass.After(c.LastPass) {
		c.LastPass = o.LastPass
	}
	c.HealBackoff = append(c.HealBackoff, o.HealBackoff...)
}

// HealRetry is a queued blob the healer failed to rebuild and waits on.
type HealRetry struct {
	Blob     string    `json:"blob"`
	Object   string    `json:"object"` // project/container/name
	Node     string    `json:"node"`   // whose healer
	Failures int       `json:"failures"`
	NextTry  time.Time `json:"next_try"`
	Reason   string    `json:"reason"`
}

// NodeCounters are one node's Counters, or why they could not be had.
type NodeCounters struct {
	Node string `json:"node"`
	Counters
	Err string `json:"error,omitempty"`
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
	// FS names the filesystem the disk directory is on (its device), so
	// that directories sharing one are not counted as separate space.
	FS string `json:"fs,omitempty"`
	// Gone is set when the node came back without this disk (wiped or
	// replaced): its shards must be rebuilt elsewhere.
	Gone bool `json:"gone"`
}
