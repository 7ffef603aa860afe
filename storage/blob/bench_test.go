package blob

import (
	"bytes"
	"context"
	"io"
	"os"
	"syscall"
	"testing"
	"time"
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
// cpu-ms/MiB is the process's CPU (user and system) per MiB written,
// which a loaded machine moves far less than the wall time.
func BenchmarkPut(b *testing.B) { benchPut(b, 1<<20, 64<<20) }

// BenchmarkPutExtents writes 32 MiB blobs with 32 KiB shards, as a
// volume's flush writes its whole extents.
func BenchmarkPutExtents(b *testing.B) { benchPut(b, 32<<10, 32<<20) }

func benchPut(b *testing.B, shard, size int) {
	s, l := newStore(b, 6)
	l.ShardSize = shard
	data := payload(size)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	// Without the ETag's MD5, which any server pays: this is the cost
	// of coding, checksumming and writing the shards.
	ctx := WithoutMD5(context.Background())
	start := cpuTime()
	for i := 0; i < b.N; i++ {
		if _, err := s.Put(ctx, "k", l, bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((cpuTime()-start).Microseconds())/1000/(float64(b.N)*float64(size)/(1<<20)), "cpu-ms/MiB")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
