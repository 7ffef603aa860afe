package store

import (
	"bytes"
	"fmt"
	"testing"

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
			c := newLogCache(tc.entries, tc.maxBytes, raft.NewInmemStore())
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
