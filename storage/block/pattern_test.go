package block

import (
	"syscall"
	"testing"
	"time"

	"github.com/rackstack/rackstack/storage/disk"
)

// BenchmarkWritePattern is the bare disk pattern of a sequential
// volume writer, without NBD, the page maps or any metadata: 32 MiB
// flushes (eight 4 MiB extents, coded 4+2 in 32 KiB blocks with their
// checksums), two in flight, each made durable on six disk directories
// as the store does (file fsync'd, linked, each directory fsync'd once
// per flush): see Pattern. "file-per-shard" writes each extent's six
// shards as their own files (48 files per flush, the format before
// packs); "file-per-disk" the same bytes as one file per disk per flush
// (the store's format); "overwrite-per-disk" over preallocated files,
// as the raw disk is written. It reports
// the process's CPU milliseconds per MiB of volume data: the ceiling
// the machine allows for that pattern, beside what rackd reaches.
func BenchmarkWritePattern(b *testing.B) {
	for name, mode := range map[string]PatternMode{"file-per-shard": PatternFilePerShard, "file-per-disk": PatternFilePerDisk, "overwrite-per-disk": PatternOverwrite} {
		b.Run(name, func(b *testing.B) { benchPattern(b, mode) })
	}
}

func benchPattern(b *testing.B, mode PatternMode) {
	var dirs []*disk.Dir
	for range 6 {
		d, err := disk.OpenDir(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	p, err := NewPattern(dirs, 4, 2, mode)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	const total = 512 << 20 // volume bytes per iteration
	b.SetBytes(total)
	defer reportCPU(b, total)()
	for b.Loop() {
		if err := p.Write(total); err != nil {
			b.Fatal(err)
		}
	}
}

// reportCPU, deferred from a benchmark that writes bytes per iteration,
// reports the process's CPU milliseconds per MiB written (user and
// system: most of a writer's cost is the kernel's) and MiB/s.
func reportCPU(b *testing.B, bytes int64) func() {
	var ru0 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	start := time.Now()
	return func() {
		var ru1 syscall.Rusage
		el := time.Since(start)
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
		cpu := time.Duration(ru1.Utime.Nano() - ru0.Utime.Nano() + ru1.Stime.Nano() - ru0.Stime.Nano())
		mib := float64(b.N) * float64(bytes) / (1 << 20)
		b.ReportMetric(float64(cpu.Microseconds())/1000/mib, "cpu-ms/MiB")
		b.ReportMetric(mib/el.Seconds(), "MiB/s")
	}
}

// TestPatternWritesAndCleansUp: every mode of the bare pattern writes
// its flushes, keeps only the last flush's files of each worker, and
// leaves no shard behind once closed.
func TestPatternWritesAndCleansUp(t *testing.T) {
	for _, mode := range []PatternMode{PatternFilePerShard, PatternFilePerDisk, PatternOverwrite} {
		var dirs []*disk.Dir
		for range 3 {
			d, err := disk.OpenDir(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			dirs = append(dirs, d)
		}
		p, err := NewPattern(dirs, 2, 1, mode)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Write(3 * 32 << 20); err != nil {
			t.Fatalf("mode %d: %v", mode, err)
		}
		perFlush := map[PatternMode]int{PatternFilePerShard: 8, PatternFilePerDisk: 1, PatternOverwrite: 0}[mode]
		p.gc.Wait() // the deletions of earlier flushes' blobs
		names, _ := dirs[0].List()
		// The workers share the flushes as they come: one or both
		// have a last flush whose files stay.
		if len(names) < perFlush || len(names) > 2*perFlush {
			t.Fatalf("mode %d: %d shard files on a disk after 3 flushes, want the last flush of each worker: %d to %d", mode, len(names), perFlush, 2*perFlush)
		}
		p.Close()
		for _, d := range dirs {
			if names, _ := d.List(); len(names) != 0 {
				t.Fatalf("mode %d: %d shard files left after Close", mode, len(names))
			}
		}
	}
}
