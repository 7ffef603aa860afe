package block

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/storage/blob"
	"github.com/rackstack/rackstack/storage/disk"
	"github.com/rackstack/rackstack/storage/placement"
)

// BenchmarkSequentialWrite writes a volume coded 4+2 over six directories
// with 1 MiB writes from 8 writers at once (fio's seq_write job of
// rackbench block, without NBD), with the store's default cache, and
// flushes at the end: what the flush path, not the network, allows.
// Payloads are reused once the volume gives them back, as the NBD
// server's are: fresh ones cost page faults on first touch that rackd
// does not pay. Sub-benchmark writeback is the store's default (spills
// held until the flush, DESIGN.md); durable makes every spill durable and
// committed (HoldBytes < 0), as before write-back. Each reports the sync
// rounds (device flushes of the blobs, each before a command) per GiB.
func BenchmarkSequentialWrite(b *testing.B) {
	b.Run("writeback", func(b *testing.B) { benchSequentialWrite(b, 0) })
	b.Run("durable", func(b *testing.B) { benchSequentialWrite(b, -1) })
}

func benchSequentialWrite(b *testing.B, hold int64) {
	const size = 512 << 20
	v := benchVolume(b, size, func(c *Config) { c.HoldBytes = hold })
	ctx := context.Background()
	b.SetBytes(size)
	defer reportCPU(b, size)()
	var rounds atomic.Int64
	synced := syncBlobs
	syncBlobs = func(ds *disk.DirSyncs) error { rounds.Add(1); return synced(ds) }
	defer func() {
		syncBlobs = synced
		b.ReportMetric(float64(rounds.Load())*float64(1<<30)/float64(size)/float64(b.N), "syncs/GiB")
	}()
	free := make(chan []byte, 1024)
	payload := func() []byte {
		select {
		case p := <-free:
			return p
		default:
			return make([]byte, 1<<20)
		}
	}
	for b.Loop() {
		var next int64
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					mu.Lock()
					off := next
					next += 1 << 20
					mu.Unlock()
					if off >= size {
						return
					}
					p := payload()
					// Every page touched, as a read from the socket
					// fills it.
					for i := 0; i < len(p); i += PageSize {
						p[i] = byte(off >> 20)
					}
					if _, err := v.WriteOwned(p, off, func() {
						select {
						case free <- p:
						default:
						}
					}); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if err := v.Flush(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRandomRead4K reads 4 KiB pages at random offsets of a volume
// coded 4+2 over six directories, written, flushed and folded into
// extents, from 32 readers at once (fio's randread job at queue depth 32
// of rackbench block, without NBD): the volume and blob read path alone.
// It reports the process's CPU microseconds per read (user and system)
// and allocations per read: what a read costs whatever else the machine
// runs.
func BenchmarkRandomRead4K(b *testing.B) {
	const size = 64 << 20
	v := benchVolume(b, size)
	ctx := context.Background()
	benchFill(b, v, size)
	if err := v.Fold(ctx); err != nil {
		b.Fatal(err)
	}
	var ru0 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ReportAllocs()
	b.SetParallelism(16) // 32 readers on 2 CPUs
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, PageSize)
		r := rand.New(rand.NewPCG(rand.Uint64(), 1))
		for pb.Next() {
			off := r.Int64N(size/PageSize) * PageSize
			if _, err := v.ReadAt(buf, off); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	var ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano() - ru0.Utime.Nano() + ru1.Stime.Nano() - ru0.Stime.Nano())
	b.ReportMetric(float64(cpu.Nanoseconds())/1000/float64(b.N), "cpu-µs/read")
}

// benchVolume opens a new 4+2 volume of size bytes on a store over six
// disk directories of the benchmark's own; it is closed when b ends.
func benchVolume(b *testing.B, size int64, tune ...func(*Config)) *Volume {
	repl, err := store.NewLocal(Schema())
	if err != nil {
		b.Fatal(err)
	}
	local := map[string]disk.Disk{}
	var disks []placement.Disk
	for range 6 {
		d, err := disk.OpenDir(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		local[d.ID()] = d
		disks = append(disks, placement.Disk{Node: "n1", ID: d.ID()})
	}
	cfg := Config{Repl: repl, Blobs: &blob.Store{Node: "n1", Local: local},
		Disks: func(context.Context) ([]placement.Disk, error) { return disks, nil }}
	for _, f := range tune {
		f(&cfg)
	}
	s := New(cfg)
	ctx := context.Background()
	if err := s.Create(ctx, "v", size, Options{K: 4, M: 2}); err != nil {
		b.Fatal(err)
	}
	v, err := s.Open(ctx, "v")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { v.Close() })
	return v
}

// BenchmarkRandomWrite4K writes 4 KiB pages at random offsets of a 512
// MiB volume coded 4+2 over six directories, filled first as fio fills
// it, from 32 writers at once, and flushes at the end (fio's randwrite
// job at queue depth 32 of rackbench block, with its end_fsync, without
// NBD): the dirty map, the journal and the fold under a random writer.
// It reports the process's CPU microseconds per write.
func BenchmarkRandomWrite4K(b *testing.B) {
	const size = 512 << 20
	v := benchVolume(b, size)
	ctx := context.Background()
	benchFill(b, v, size)
	var ru0 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.SetParallelism(16) // 32 writers on 2 CPUs
	b.SetBytes(PageSize)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, PageSize)
		r := rand.New(rand.NewPCG(rand.Uint64(), 1))
		for pb.Next() {
			buf[0]++
			off := r.Int64N(size/PageSize) * PageSize
			if _, err := v.WriteAt(buf, off); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if err := v.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	var ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano() - ru0.Utime.Nano() + ru1.Stime.Nano() - ru0.Stime.Nano())
	b.ReportMetric(float64(cpu.Nanoseconds())/1000/float64(b.N), "cpu-µs/write")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}

// benchFill writes the first size bytes of v in 1 MiB writes and flushes.
func benchFill(b *testing.B, v *Volume, size int64) {
	b.Helper()
	p := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(p)) {
		p[0] = byte(off >> 20)
		if _, err := v.WriteAt(p, off); err != nil {
			b.Fatal(err)
		}
	}
	if err := v.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
}
