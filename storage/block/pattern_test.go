package block

import (
	"fmt"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rackstack/rackstack/storage/disk"
	"github.com/rackstack/rackstack/storage/ec"
)

// BenchmarkWritePattern is the bare disk pattern of a sequential
// volume writer, without NBD, the page maps or any metadata: 32 MiB
// flushes (eight 4 MiB extents, coded 4+2 in 32 KiB blocks with their
// checksums), two in flight, each made durable on six disk directories
// as the store does (file fsync'd, linked, each directory fsync'd once
// per flush). "file-per-shard" writes each extent's six shards as their
// own files (48 files per flush, today's format); "file-per-disk"
// writes the same bytes as one file per disk per flush. It reports
// the process's CPU milliseconds per MiB of volume data: the ceiling
// the machine allows for that pattern, beside what rackd reaches.
func BenchmarkWritePattern(b *testing.B) {
	for _, mode := range []string{"file-per-shard", "file-per-disk", "overwrite-per-disk"} {
		b.Run(mode, func(b *testing.B) { benchPattern(b, mode) })
	}
}

// benchPattern: "overwrite-per-disk" writes the same bytes over one
// preallocated file per disk and flush worker (O_DIRECT, fdatasync):
// no file is made, no block allocated, as the raw-disk case of
// rackbench block writes.
func benchPattern(b *testing.B, mode string) {
	perDisk := mode != "file-per-shard"
	const (
		k, m     = 4, 2
		extents  = 8 // per flush
		inflight = 2
		total    = 512 << 20 // volume bytes per iteration
	)
	var dirs []*disk.Dir
	for range k + m {
		d, err := disk.OpenDir(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	c, err := ec.New(k, m, extentShard)
	if err != nil {
		b.Fatal(err)
	}
	stripes := ExtentSize / c.StripeSize()
	// Each flush worker keeps its coded blocks: [extent][shard] -> the
	// shard file's bytes (stripes blocks of c.BlockSize()).
	type flushBufs [extents][k + m][]byte
	bufs := make([]*flushBufs, inflight)
	for w := range bufs {
		bufs[w] = &flushBufs{}
		for e := range extents {
			for s := range k + m {
				bufs[w][e][s] = alignedBuf(stripes * c.BlockSize())
			}
		}
	}
	pre := map[*flushBufs][]*os.File{}
	if mode == "overwrite-per-disk" {
		for _, fb := range bufs {
			for range k + m {
				f, err := os.OpenFile(filepath.Join(b.TempDir(), "pre"), os.O_CREATE|os.O_RDWR|unix.O_DIRECT, 0o600)
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				if err := unix.Fallocate(int(f.Fd()), 0, 0, extents*int64(len(fb[0][0]))); err != nil {
					b.Fatal(err)
				}
				// Written once, so later writes find no unwritten extent.
				zero := alignedBuf(len(fb[0][0]) &^ 4095)
				for e := range extents {
					unix.Pwrite(int(f.Fd()), zero, int64(e*len(zero)))
				}
				unix.Fsync(int(f.Fd()))
				pre[fb] = append(pre[fb], f)
			}
		}
	}
	data := make([]byte, ExtentSize)
	for i := range data {
		data[i] = byte(i * 7)
	}
	var seq int64
	var seqMu sync.Mutex
	name := func() string {
		seqMu.Lock()
		defer seqMu.Unlock()
		seq++
		return fmt.Sprintf("%02x%030x", seq%256, seq)
	}
	write := func(d *disk.Dir, n string, parts [][]byte, ds *disk.DirSyncs) error {
		w, err := d.Create(n)
		if err != nil {
			return err
		}
		for _, p := range parts {
			if _, err := w.Write(p); err != nil {
				w.Abort()
				return err
			}
		}
		return w.(disk.DeferredCommitter).CommitDeferred(ds)
	}
	flush := func(fb *flushBufs) error {
		// Code the extents (in parallel, as writeWhole's Puts do).
		var wg sync.WaitGroup
		for e := range extents {
			wg.Add(1)
			go func() {
				defer wg.Done()
				shards := make([][]byte, k+m)
				for st := range stripes {
					for s := range k + m {
						blk := fb[e][s][st*c.BlockSize() : (st+1)*c.BlockSize()]
						shards[s] = blk[4:]
						if s < k {
							copy(shards[s], data[(st*k+s)*extentShard:])
						}
					}
					c.Parity(shards)
					for s := range k + m {
						ec.SealInPlace(fb[e][s][st*c.BlockSize() : (st+1)*c.BlockSize()])
					}
				}
			}()
		}
		wg.Wait()
		ds := &disk.DirSyncs{}
		errs := make(chan error, extents*(k+m))
		if mode == "overwrite-per-disk" {
			for s := range k + m {
				wg.Add(1)
				go func() {
					defer wg.Done()
					f := pre[fb][s]
					var off int64
					for e := range extents {
						// The shard's aligned part: what a direct write takes.
						n := len(fb[e][s]) &^ 4095
						if _, err := unix.Pwrite(int(f.Fd()), fb[e][s][:n], off); err != nil {
							errs <- err
							return
						}
						off += int64(n)
					}
					if err := unix.Fdatasync(int(f.Fd())); err != nil {
						errs <- err
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				return err
			}
			return nil
		}
		if perDisk {
			for s := range k + m {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var parts [][]byte
					for e := range extents {
						parts = append(parts, fb[e][s])
					}
					if err := write(dirs[s], name(), parts, ds); err != nil {
						errs <- err
					}
				}()
			}
		} else {
			for e := range extents {
				for s := range k + m {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if err := write(dirs[s], name(), [][]byte{fb[e][s]}, ds); err != nil {
							errs <- err
						}
					}()
				}
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			return err
		}
		return ds.Sync()
	}
	b.SetBytes(total)
	defer reportCPU(b, total)()
	for b.Loop() {
		next := make(chan struct{}, total/(extents*ExtentSize))
		for range total / (extents * ExtentSize) {
			next <- struct{}{}
		}
		close(next)
		var wg sync.WaitGroup
		for w := range inflight {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range next {
					if err := flush(bufs[w]); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
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

func alignedBuf(n int) []byte {
	raw := make([]byte, n+4096)
	off := 0
	if r := int(uintptr(unsafe.Pointer(&raw[0])) % 4096); r != 0 {
		off = 4096 - r
	}
	return raw[off : off+n]
}
