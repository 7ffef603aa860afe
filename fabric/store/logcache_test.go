package store

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestLogCacheBoundsBytes: however large the entries, the cache holds at
// most its byte budget of them, and every entry still reads back whole
// (from the cache or, once dropped, from the store).
func TestLogCacheBoundsBytes(t *testing.T) {
	tests := map[string]struct {
		entries, maxBytes, size, n, perStore int
	}{
		"large entries one at a time": {entries: 64, maxBytes: 10 << 10, size: 3 << 10, n: 200, perStore: 1},
		"large entries in batches":    {entries: 64, maxBytes: 10 << 10, size: 3 << 10, n: 200, perStore: 7},
		"one entry over the budget":   {entries: 64, maxBytes: 1 << 10, size: 4 << 10, n: 10, perStore: 1},
		"small entries wrap the ring": {entries: 8, maxBytes: 1 << 20, size: 100, n: 100, perStore: 3},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := newLogCache(tc.entries, tc.maxBytes, 0, raft.NewInmemStore())
			data := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, tc.size) }
			for i := 1; i <= tc.n; i += tc.perStore {
				var logs []*raft.Log
				for j := i; j < i+tc.perStore && j <= tc.n; j++ {
					logs = append(logs, &raft.Log{Index: uint64(j), Data: data(j)})
				}
				if err := c.StoreLogs(logs); err != nil {
					t.Fatal(err)
				}
				if held := cachedBytes(c); held > tc.maxBytes || held != c.bytes {
					t.Fatalf("after index %d the cache holds %d bytes (counted %d), budget %d", i, held, c.bytes, tc.maxBytes)
				}
			}
			for i := 1; i <= tc.n; i++ {
				var l raft.Log
				if err := c.GetLog(uint64(i), &l); err != nil {
					t.Fatalf("get %d: %v", i, err)
				}
				if l.Index != uint64(i) || !bytes.Equal(l.Data, data(i)) {
					t.Fatalf("get %d: got index %d, %s", i, l.Index, fmt.Sprint(len(l.Data)))
				}
			}
		})
	}
}

func cachedBytes(c *logCache) int {
	n := 0
	for _, l := range c.ring {
		if l != nil {
			n += len(l.Data)
		}
	}
	return n
}

// countingStore counts the reads of each index from a log store.
type countingStore struct {
	raft.LogStore
	mu    sync.Mutex
	reads map[uint64]int
}

func (s *countingStore) GetLog(idx uint64, l *raft.Log) error {
	s.mu.Lock()
	s.reads[idx]++
	s.mu.Unlock()
	return s.LogStore.GetLog(idx, l)
}

// TestRestartReadsEachEntryFromTheStoreOnce restarts a node over a log of
// n entries and counts the reads of each from the store: raft.NewRaft's
// configuration scan and the apply after the election both read every
// entry, and the second must come from the cache's replay window while
// the log fits its budget. Over the budget, the replay is still whole and
// the window never holds more than the budget.
func TestRestartReadsEachEntryFromTheStoreOnce(t *testing.T) {
	const n, size = 300, 1 << 10
	tests := map[string]struct {
		budget   int
		maxReads int // per entry
	}{
		"log within the budget": {budget: 1 << 20, maxReads: 1},
		"log over the budget":   {budget: 50 * size, maxReads: 2},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			logs := &countingStore{LogStore: raft.NewInmemStore(), reads: map[uint64]int{}}
			stable, snaps := raft.NewInmemStore(), raft.NewInmemSnapshotStore()
			addr, trans := raft.NewInmemTransport("")
			conf := raft.DefaultConfig()
			conf.LocalID = "n0"
			conf.HeartbeatTimeout, conf.ElectionTimeout, conf.LeaderLeaseTimeout = 100*time.Millisecond, 100*time.Millisecond, 50*time.Millisecond
			conf.Logger = RaftLogger(slog.New(slog.NewTextHandler(io.Discard, nil)), "raft")
			if err := raft.BootstrapCluster(conf, logs, stable, snaps, trans, raft.Configuration{Servers: []raft.Server{{ID: "n0", Address: addr}}}); err != nil {
				t.Fatal(err)
			}
			start := func() (*raft.Raft, *raft.MockFSM, *logCache) {
				t.Helper()
				fsm, cache := &raft.MockFSM{}, newLogCache(64, 8*size, tc.budget, logs)
				r, err := raft.NewRaft(conf, fsm, cache, stable, snaps, trans)
				if err != nil {
					t.Fatal(err)
				}
				return r, fsm, cache
			}
			r, _, _ := start()
			select {
			case <-r.LeaderCh():
			case <-time.After(10 * time.Second):
				t.Fatal("no leader elected")
			}
			for i := 0; i < n; i++ {
				if err := r.Apply(bytes.Repeat([]byte{byte(i)}, size), 5*time.Second).Error(); err != nil {
					t.Fatal(err)
				}
			}
			if err := r.Shutdown().Error(); err != nil {
				t.Fatal(err)
			}
			last, _ := logs.LastIndex()
			logs.reads = map[uint64]int{}

			r, fsm, cache := start()
			defer r.Shutdown()
			deadline := time.Now().Add(10 * time.Second)
			for len(fsm.Logs()) < n {
				if time.Now().After(deadline) {
					t.Fatalf("the restarted node applied %d of %d entries", len(fsm.Logs()), n)
				}
				cache.mu.RLock()
				held := cache.windowBytes
				cache.mu.RUnlock()
				if held > tc.budget {
					t.Fatalf("the replay window holds %d bytes, budget %d", held, tc.budget)
				}
				time.Sleep(5 * time.Millisecond)
			}
			for i, data := range fsm.Logs() {
				if !bytes.Equal(data, bytes.Repeat([]byte{byte(i)}, size)) {
					t.Fatalf("entry %d replayed wrong", i)
				}
			}
			logs.mu.Lock()
			defer logs.mu.Unlock()
			for idx := uint64(1); idx <= last; idx++ {
				if logs.reads[idx] > tc.maxReads {
					t.Errorf("entry %d read from the store %d times, want at most %d", idx, logs.reads[idx], tc.maxReads)
				}
			}
			cache.mu.RLock()
			defer cache.mu.RUnlock()
			if tc.maxReads == 1 && len(cache.window) != 0 {
				t.Errorf("after the replay the window still holds %d entries", len(cache.window))
			}
		})
	}
}
