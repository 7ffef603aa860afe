package blob

import (
	"bytes"
	"context"
	"io"
	"os"
	"testing"
)

// benchGet reads a 64 MiB blob (4+2, 1 MiB shards) from a warm page
// cache, whole or with two data shards missing: the CPU cost of a
// degraded read.
func benchGet(b *testing.B, degrade bool) {
	s, l := newStore(b, 6)
	l.ShardSize = 1 << 20
	data := payload(64 << 20)
	s.Put(context.Background(), "k", l, bytes.NewReader(data))
	if degrade {
		os.Remove(shardPath(s, l, "k", 0))
		os.Remove(shardPath(s, l, "k", 1))
	}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Get(context.Background(), "k", l, int64(len(data)), 0, int64(len(data)), io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetHealthy(b *testing.B)  { benchGet(b, false) }
func BenchmarkGetDegraded(b *testing.B) { benchGet(b, true) }

// BenchmarkPut writes a 64 MiB blob (4+2, 1 MiB shards) to six local disk
// directories, fsync included: the cost of a PUT below the HTTP layer.
func BenchmarkPut(b *testing.B) {
	s, l := newStore(b, 6)
	l.ShardSize = 1 << 20
	data := payload(64 << 20)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Put(context.Background(), "k", l, bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
