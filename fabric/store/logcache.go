package store

import (
	"fmt"
	"sync"

	"github.com/hashicorp/raft"
)

// The log cache keeps recent entries in memory so the leader replicates
// them without reading them back from bolt. hashicorp/raft's LogCache
// bounds only the number of entries; ours also bounds their bytes, because
// entries can be large (a small object stored inline carries its bytes,
// and a batch carries up to maxBatch commands), and 4,096 of those would
// hold hundreds of MiB.
const (
	logCacheEntries = 4096
	logCacheBytes   = 32 << 20
	// replayWindowBytes bounds the entries kept from the startup scan for
	// the apply (see below): above the ring's budget, as the window lives
	// only until the replay has passed it, and a log since the last
	// snapshot of 8,000 small inline objects is about 45 MiB.
	replayWindowBytes = 64 << 20
)

// The replay window keeps the entries read at startup for the apply that
// follows. A restarting node reads the log written since its last
// snapshot twice: raft.NewRaft scans every entry for configuration
// changes, and once elected (or told the commit index by a leader) it
// reads each again to apply it. Decoding an entry from bolt is a large
// part of a replay's cost, so the entries the scan reads (from the first
// miss until the node first stores an entry, which it does only once it
// runs) are kept, up to replayWindowBytes, and handed to
// the apply; each is dropped once the apply has passed it. Past the
// budget, the rest of the log is read again as before.

// logCache is a ring of the most recent log entries, holding at most
// maxBytes of entry data: past that, the oldest are dropped and read from
// the store when asked for. Beside it, the replay window holds at most
// windowMax bytes of the entries read at startup.
type logCache struct {
	store    raft.LogStore
	mu       sync.RWMutex
	ring     []*raft.Log
	bytes    int
	maxBytes int
	// lo is the lowest index that may still be cached.
	lo uint64

	// replaying: no entry has been stored or deleted since the cache was
	// made, so a read is the startup scan's and fills the window.
	replaying   bool
	window      map[uint64]*raft.Log
	windowBytes int
	windowMax   int
	// windowLo is the lowest index that may still be in the window.
	windowLo uint64
}

func newLogCache(entries, maxBytes, windowMax int, store raft.LogStore) *logCache {
	return &logCache{store: store, ring: make([]*raft.Log, entries), maxBytes: maxBytes,
		replaying: true, window: map[uint64]*raft.Log{}, windowMax: windowMax}
}

func (c *logCache) slot(idx uint64) uint64 { return idx % uint64(len(c.ring)) }

func (c *logCache) GetLog(idx uint64, log *raft.Log) error {
	c.mu.RLock()
	cached := c.ring[c.slot(idx)]
	replaying, windowed := c.replaying, len(c.window) > 0
	c.mu.RUnlock()
	if cached != nil && cached.Index == idx {
		*log = *cached
		return nil
	}
	if windowed && c.fromWindow(idx, log) {
		return nil
	}
	if err := c.store.GetLog(idx, log); err != nil {
		return err
	}
	if replaying {
		c.keep(idx, log)
	}
	return nil
}

// fromWindow serves idx from the replay window. Once the node runs, the
// apply reads the window in order, so a hit drops idx and everything
// below it.
func (c *logCache) fromWindow(idx uint64, log *raft.Log) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.window[idx]
	if l == nil {
		return false
	}
	*log = *l
	if !c.replaying {
		for ; c.windowLo <= idx; c.windowLo++ {
			if e := c.window[c.windowLo]; e != nil {
				c.windowBytes -= len(e.Data)
				delete(c.window, c.windowLo)
			}
		}
	}
	return true
}

// keep puts a copy of an entry the startup scan read into the window, if
// the budget has room for it.
func (c *logCache) keep(idx uint64, log *raft.Log) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.replaying || c.window[idx] != nil || c.windowBytes+len(log.Data) > c.windowMax {
		return
	}
	l := *log
	c.window[idx] = &l
	c.windowBytes += len(l.Data)
	if len(c.window) == 1 || idx < c.windowLo {
		c.windowLo = idx
	}
}

// dropWindowFrom forgets the window's entries from index from on, which
// the store is about to replace; the caller holds mu.
func (c *logCache) dropWindowFrom(from uint64) {
	c.replaying = false
	for i, l := range c.window {
		if i >= from {
			c.windowBytes -= len(l.Data)
			delete(c.window, i)
		}
	}
}

func (c *logCache) StoreLog(log *raft.Log) error { return c.StoreLogs([]*raft.Log{log}) }

func (c *logCache) StoreLogs(logs []*raft.Log) error {
	if err := c.store.StoreLogs(logs); err != nil {
		return fmt.Errorf("store logs: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropWindowFrom(logs[0].Index)
	for _, l := range logs {
		i := c.slot(l.Index)
		if old := c.ring[i]; old != nil {
			c.bytes -= len(old.Data)
		}
		c.ring[i] = l
		c.bytes += len(l.Data)
		if n := uint64(len(c.ring)); l.Index >= n && c.lo < l.Index-n+1 {
			c.lo = l.Index - n + 1 // older slots were overwritten
		}
		if c.lo == 0 || l.Index < c.lo {
			c.lo = l.Index
		}
	}
	last := logs[len(logs)-1].Index
	for c.bytes > c.maxBytes && c.lo <= last {
		i := c.slot(c.lo)
		if e := c.ring[i]; e != nil && e.Index == c.lo {
			c.bytes -= len(e.Data)
			c.ring[i] = nil
		}
		c.lo++
	}
	return nil
}

func (c *logCache) FirstIndex() (uint64, error) { return c.store.FirstIndex() }

func (c *logCache) LastIndex() (uint64, error) { return c.store.LastIndex() }

func (c *logCache) DeleteRange(lo, hi uint64) error {
	c.mu.Lock()
	c.ring = make([]*raft.Log, len(c.ring))
	c.bytes, c.lo = 0, 0
	c.dropWindowFrom(0)
	c.mu.Unlock()
	return c.store.DeleteRange(lo, hi)
}
