package blob

import (
	"bytes"
	"context"
	"io"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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

// benchGetCold reads a 64 MiB blob (4+2, 1 MiB shards) whose shards were
// evicted from the page cache before every read, as a large object
// written a while ago is, with direct reads or through the page cache;
// it reports the process's CPU time (user and system) per MiB read.
func benchGetCold(b *testing.B, direct bool) {
	if !direct {
		defer func(old int) { directReadMin = old }(directReadMin)
		directReadMin = 1 << 62
	}
	s, l := newStore(b, 6)
	l.ShardSize = 1 << 20
	data := payload(64 << 20)
	if _, err := s.Put(context.Background(), "k", l, bytes.NewReader(data)); err != nil {
		b.Fatal(err)
	}
	evict := func() {
		for i := range l.Disks {
			f, err := os.Open(shardPath(s, l, "k", i))
			if err != nil {
				b.Fatal(err)
			}
			f.Sync()
			unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
			f.Close()
		}
	}
	var cpu time.Duration
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		evict()
		before := cpuTime()
		b.StartTimer()
		if _, err := s.Get(context.Background(), "k", l, int64(len(data)), 0, int64(len(data)), io.Discard); err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - before
	}
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N)/64, "cpu-ms/MiB")
}

func cpuTime() time.Duration {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkGetColdDirect(b *testing.B)   { benchGetCold(b, true) }
func BenchmarkGetColdBuffered(b *testing.B) { benchGetCold(b, false) }

// benchVerifyCold verifies a 64 MiB blob (4+2, 1 MiB shards), as the
// scrubber does, with its shards evicted from the page cache before
// every pass, with direct reads or through the page cache; it reports
// the process's CPU time per MiB of shards read.
func benchVerifyCold(b *testing.B, direct bool) {
	if !direct {
		defer func(old int) { directReadMin = old }(directReadMin)
		directReadMin = 1 << 62
	}
	s, l := newStore(b, 6)
	l.ShardSize = 1 << 20
	data := payload(64 << 20)
	if _, err := s.Put(context.Background(), "k", l, bytes.NewReader(data)); err != nil {
		b.Fatal(err)
	}
	var cpu time.Duration
	b.SetBytes(int64(len(data)) * 6 / 4)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for j := range l.Disks {
			f, err := os.Open(shardPath(s, l, "k", j))
			if err != nil {
				b.Fatal(err)
			}
			unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
			f.Close()
		}
		before := cpuTime()
		b.StartTimer()
		if bad, err := s.Verify(context.Background(), "k", l, int64(len(data))); err != nil || len(bad) > 0 {
			b.Fatal(bad, err)
		}
		cpu += cpuTime() - before
	}
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N)/96, "cpu-ms/MiB")
}

func BenchmarkVerifyColdDirect(b *testing.B)   { benchVerifyCold(b, true) }
func BenchmarkVerifyColdBuffered(b *testing.B) { benchVerifyCold(b, false) }
