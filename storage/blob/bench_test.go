package blob

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// benchGet reads a 64 MiB blob (4+2, 1 MiB shards), whole or with two
// data shards missing: the CPU cost of a degraded read. From a warm
// page cache, unless RACKSTACK_BENCH_COLD=1 evicts the shards' pages
// before each read (posix_fadvise DONTNEED, the shards' files only).
// RACKSTACK_BENCH_BUFFERED=1 reads through the page cache, as before
// direct reads. cpu-ms/MiB is the process's CPU per MiB read.
func benchGet(b *testing.B, degrade bool) { benchGets(b, degrade, 1) }

// BenchmarkGet8 reads eight 64 MiB blobs at once, as minio-go's GET at
// concurrency 8 does.
func BenchmarkGet8(b *testing.B) { benchGets(b, false, 8) }

func benchGets(b *testing.B, degrade bool, streams int) {
	s, l := newStore(b, 6)
	l.ShardSize = 1 << 20
	data := payload(64 << 20)
	keys := make([]string, streams)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%d", i)
		if _, err := s.Put(context.Background(), keys[i], l, bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
		if degrade {
			os.Remove(shardPath(s, l, keys[i], 0))
			os.Remove(shardPath(s, l, keys[i], 1))
		}
	}
	noDirectReads = os.Getenv("RACKSTACK_BENCH_BUFFERED") == "1"
	defer func() { noDirectReads = false }()
	cold := os.Getenv("RACKSTACK_BENCH_COLD") == "1"
	evict := func() {
		for _, k := range keys {
			for i := range l.Disks {
				if f, err := os.Open(shardPath(s, l, k, i)); err == nil {
					syscall.Fsync(int(f.Fd()))
					fadvise(f, 0, 0, 4) // POSIX_FADV_DONTNEED
					f.Close()
				}
			}
		}
	}
	b.SetBytes(int64(streams * len(data)))
	b.ResetTimer()
	var cpu time.Duration
	for i := 0; i < b.N; i++ {
		if cold {
			b.StopTimer()
			evict()
			b.StartTimer()
		}
		start := cpuTime()
		errs := make(chan error, streams)
		for _, k := range keys {
			go func() {
				_, err := s.Get(context.Background(), k, l, int64(len(data)), 0, int64(len(data)), io.Discard)
				errs <- err
			}()
		}
		for range keys {
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
		}
		cpu += cpuTime() - start
	}
	b.ReportMetric(float64(cpu.Microseconds())/1000/(float64(b.N)*float64(streams*len(data))/(1<<20)), "cpu-ms/MiB")
	b.ReportMetric(float64(s.HedgedReads())/float64(b.N), "hedges/op")
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

// BenchmarkPutParts writes 16 MiB blobs (4+2, 1 MiB shards) four at a
// time, as minio-go uploads a 64 MiB object (four parts at once), and
// BenchmarkPutParts32 32 at a time (eight such objects at once), each
// part's body arriving at partMiBps: the wall time includes every
// shard's fsync and rename, so MB/s is the write path's throughput
// below HTTP with its body as fast as rackd's HTTP, signature and MD5
// deliver it, cpu-ms/MiB its CPU, and tail-ms what a part waits for
// after its last byte (its last blocks written, its shards fsync'd).
// The pace may be changed with RACKSTACK_BENCH_PART_MIBPS (0: as fast
// as the blob layer takes it).
func BenchmarkPutParts(b *testing.B)   { benchPutParts(b, 4) }
func BenchmarkPutParts32(b *testing.B) { benchPutParts(b, 32) }

func benchPutParts(b *testing.B, parts int) {
	s, l := newStore(b, 6)
	l.ShardSize = 1 << 20
	const size = 16 << 20
	data := payload(size)
	b.SetBytes(int64(parts * size))
	ctx := WithoutMD5(context.Background())
	// tails are how long each part's Put took after its body's last
	// byte (tail-ms, the median): the wait for its last blocks to be
	// written and its shards to be durable, which the wall time alone
	// does not tell apart from a slow stream.
	var tailMu sync.Mutex
	var tails []time.Duration
	b.ResetTimer()
	start := cpuTime()
	for i := 0; i < b.N; i++ {
		errs := make(chan error, parts)
		for p := 0; p < parts; p++ {
			go func() {
				key := fmt.Sprintf("k%d-%d", i, p)
				pr := &pacedReader{r: bytes.NewReader(data), rate: partPace() << 20, start: time.Now()}
				_, err := s.Put(ctx, key, l, pr)
				tailMu.Lock()
				tails = append(tails, time.Since(pr.end))
				tailMu.Unlock()
				errs <- err
			}()
		}
		for p := 0; p < parts; p++ {
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		for p := 0; p < parts; p++ {
			s.Delete(context.Background(), fmt.Sprintf("k%d-%d", i, p), l)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64((cpuTime()-start).Microseconds())/1000/(float64(b.N)*float64(parts*size)/(1<<20)), "cpu-ms/MiB")
	slices.Sort(tails)
	b.ReportMetric(float64(tails[len(tails)/2].Microseconds())/1000, "tail-ms")
}

// partMiBps is about what one of minio-go's four parts reaches through
// rackd's HTTP, SigV4 and MD5 when nothing waits for the disks (the
// ceiling case of rackbench storage: 455 MiB/s for the four).
const partMiBps = 110

func partPace() int {
	if v, err := strconv.Atoi(os.Getenv("RACKSTACK_BENCH_PART_MIBPS")); err == nil {
		return v
	}
	return partMiBps
}

// pacedReader gives its bytes no faster than rate bytes a second, in
// reads of at most 64 KiB: a client whose upload is bound by the
// server's CPU for HTTP, signatures and the MD5.
type pacedReader struct {
	r     io.Reader
	rate  int // bytes a second; 0: unpaced
	start time.Time
	n     int
	end   time.Time // when it gave its last byte
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if len(b) > 64<<10 {
		b = b[:64<<10]
	}
	if p.rate > 0 {
		if ahead := time.Duration(float64(p.n)/float64(p.rate)*float64(time.Second)) - time.Since(p.start); ahead > 0 {
			time.Sleep(ahead)
		}
	}
	n, err := p.r.Read(b)
	p.n += n
	if n > 0 || p.end.IsZero() {
		p.end = time.Now()
	}
	return n, err
}
