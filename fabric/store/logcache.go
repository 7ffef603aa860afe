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
)

// logCache is a ring of the most recent log entries, holding at most
// maxBytes of entry data: past that, the oldest are dropped and read from
// the store when asked for.
type logCache struct {
	store    raft.LogStore
	mu       sync.RWMutex
	ring     []*raft.Log
	bytes    int
	maxBytes int
	// lo is the lowest index that may still be cached.
	lo uint64
}

func newLogCache(entries, maxBytes int, store raft.LogStore) *logCache {
	return &logCache{store: store, ring: make([]*raft.Log, entries), maxBytes: maxBytes}
}

func (c *logCache) slot(idx uint64) uint64 { return idx % uint64(len(c.ring)) }

func (c *logCache) GetLog(idx uint64, log *raft.Log) error {
	c.mu.RLock()
	cached := c.ring[c.slot(idx)]
	c.mu.RUnlock()
	if cached != nil && cached.Index == idx {
		*log = *cached
		return nil
	}
	return c.store.GetLog(idx, log)
}

func (c *logCache) StoreLog(log *raft.Log) error { return c.StoreLogs([]*raft.Log{log}) }

func (c *logCache) StoreLogs(logs []*raft.Log) error {
	if err := c.store.StoreLogs(logs); err != nil {
		return fmt.Errorf("store logs: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
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
	c.mu.Unlock()
	return c.store.DeleteRange(lo, hi)
}
