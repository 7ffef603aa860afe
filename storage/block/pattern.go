package block

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/rackstack/rackstack/storage/disk"
	"github.com/rackstack/rackstack/storage/ec"
	"golang.org/x/sys/unix"
)

// The bare disk pattern of a sequential volume writer, without NBD, the
// page maps or any metadata: what the machine allows the write path at
// most (rackbench block's write-pattern case, BenchmarkWritePattern).
// 32 MiB flushes (eight 4 MiB extents, coded k+m in 32 KiB blocks with
// their checksums), two in flight, each made durable on k+m disk
// directories as the store does: every file written with direct I/O,
// fsync'd and linked, each directory fsync'd once per flush. The files
// of a flush are deleted once the next flush of its worker is durable,
// as a sequential overwrite makes the last extents garbage.

// PatternMode is how a Pattern lays a flush's shards out.
type PatternMode int

const (
	// PatternFilePerShard writes every extent's shards as files of
	// their own: k+m files per extent (the format before packs).
	PatternFilePerShard PatternMode = iota
	// PatternFilePerDisk writes one file per disk and flush: the
	// store's format (a flush's whole extents are one blob).
	PatternFilePerDisk
	// PatternOverwrite writes the same bytes over one preallocated file
	// per disk and worker, fdatasync'd: no file made or deleted, no
	// block allocated, as rackbench's raw-disk case writes.
	PatternOverwrite
)

const (
	patternExtents  = 8 // per flush
	patternInflight = 2 // flushes at once, as maxSealed
)

// Pattern writes the bare pattern; its buffers are reused.
type Pattern struct {
	dirs    []*disk.Dir
	k, m    int
	mode    PatternMode
	c       *ec.Coder
	data    []byte
	workers []*patternWorker
	seq     atomic.Int64
}

type patternWorker struct {
	bufs  [patternExtents][][]byte // [extent][shard]: the shard's file bytes
	pre   []*os.File               // PatternOverwrite: one file per disk
	names [][]string               // the files of the last flush, per disk
}

// NewPattern prepares a Pattern over len(dirs) == k+m disk directories.
func NewPattern(dirs []*disk.Dir, k, m int, mode PatternMode) (*Pattern, error) {
	if len(dirs) != k+m {
		return nil, fmt.Errorf("pattern: %d directories for %d+%d", len(dirs), k, m)
	}
	c, err := ec.New(k, m, extentShard)
	if err != nil {
		return nil, err
	}
	p := &Pattern{dirs: dirs, k: k, m: m, mode: mode, c: c, data: make([]byte, ExtentSize)}
	for i := range p.data {
		p.data[i] = byte(i * 7)
	}
	shardBytes := ExtentSize / c.StripeSize() * c.BlockSize()
	for range patternInflight {
		w := &patternWorker{names: make([][]string, k+m)}
		for e := range patternExtents {
			for range k + m {
				w.bufs[e] = append(w.bufs[e], alignedBuf(shardBytes))
			}
		}
		if mode == PatternOverwrite {
			aligned := shardBytes &^ (4096 - 1)
			zero := alignedBuf(aligned)
			for _, d := range dirs {
				f, err := os.CreateTemp(d.Path(), "pattern")
				if err == nil {
					os.Remove(f.Name())
					err = unix.Fallocate(int(f.Fd()), 0, 0, int64(patternExtents*aligned))
				}
				if err == nil {
					err = setODirect(f)
				}
				// Written once, so later writes find no unwritten extent.
				for e := 0; err == nil && e < patternExtents; e++ {
					_, err = unix.Pwrite(int(f.Fd()), zero, int64(e*aligned))
				}
				if err == nil {
					err = f.Sync()
				}
				if f != nil {
					w.pre = append(w.pre, f)
				}
				if err != nil {
					p.Close()
					return nil, fmt.Errorf("pattern: preallocate: %w", err)
				}
			}
		}
		p.workers = append(p.workers, w)
	}
	return p, nil
}

func setODirect(f *os.File) error {
	fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err == nil {
		_, err = unix.FcntlInt(f.Fd(), unix.F_SETFL, fl|unix.O_DIRECT)
	}
	return err
}

// Close deletes what the pattern wrote.
func (p *Pattern) Close() {
	for _, w := range p.workers {
		for _, f := range w.pre {
			f.Close()
		}
		w.pre = nil
		p.removeLast(w)
	}
}

func (p *Pattern) removeLast(w *patternWorker) {
	for s, names := range w.names {
		for _, n := range names {
			p.dirs[s].Remove(n)
		}
		w.names[s] = nil
	}
}

// Write writes total bytes of volume data (rounded up to whole flushes).
func (p *Pattern) Write(total int64) error {
	flushes := int((total + patternExtents*ExtentSize - 1) / (patternExtents * ExtentSize))
	next := make(chan struct{}, flushes)
	for range flushes {
		next <- struct{}{}
	}
	close(next)
	errs := make(chan error, len(p.workers))
	for _, w := range p.workers {
		go func() {
			for range next {
				if err := p.flush(w); err != nil {
					errs <- err
					for range next {
					}
					return
				}
			}
			errs <- nil
		}()
	}
	var all []error
	for range p.workers {
		all = append(all, <-errs)
	}
	return errors.Join(all...)
}

func (p *Pattern) flush(w *patternWorker) error {
	c, n := p.c, p.k+p.m
	stripes := ExtentSize / c.StripeSize()
	var wg sync.WaitGroup
	// Code the extents, in parallel as a flush's blob writes are.
	for e := range patternExtents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			shards := make([][]byte, n)
			for st := range stripes {
				for s := range n {
					blk := w.bufs[e][s][st*c.BlockSize() : (st+1)*c.BlockSize()]
					shards[s] = blk[4:]
					if s < p.k {
						copy(shards[s], p.data[(st*p.k+s)*extentShard:])
					}
				}
				c.Parity(shards)
				for s := range n {
					ec.SealInPlace(w.bufs[e][s][st*c.BlockSize() : (st+1)*c.BlockSize()])
				}
			}
		}()
	}
	wg.Wait()
	errs := make(chan error, patternExtents*n)
	if p.mode == PatternOverwrite {
		for s := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				fd := int(w.pre[s].Fd())
				var off int64
				for e := range patternExtents {
					b := w.bufs[e][s]
					b = b[:len(b)&^(4096-1)]
					if _, err := unix.Pwrite(fd, b, off); err != nil {
						errs <- err
						return
					}
					off += int64(len(b))
				}
				if err := unix.Fdatasync(fd); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		return <-errs
	}
	p.removeLast(w)
	ds := &disk.DirSyncs{}
	var mu sync.Mutex
	write := func(s int, parts [][]byte) {
		defer wg.Done()
		seq := p.seq.Add(1)
		name := fmt.Sprintf("%02x%030x", seq%256, seq)
		fw, err := p.dirs[s].Create(name)
		if err != nil {
			errs <- err
			return
		}
		for _, b := range parts {
			if _, err := fw.Write(b); err != nil {
				fw.Abort()
				errs <- err
				return
			}
		}
		if err := fw.(disk.DeferredCommitter).CommitDeferred(ds); err != nil {
			errs <- err
			return
		}
		mu.Lock()
		w.names[s] = append(w.names[s], name)
		mu.Unlock()
	}
	for s := range n {
		if p.mode == PatternFilePerDisk {
			parts := make([][]byte, patternExtents)
			for e := range patternExtents {
				parts[e] = w.bufs[e][s]
			}
			wg.Add(1)
			go write(s, parts)
			continue
		}
		for e := range patternExtents {
			wg.Add(1)
			go write(s, [][]byte{w.bufs[e][s]})
		}
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	return ds.Sync()
}

// alignedBuf is n bytes aligned for direct I/O.
func alignedBuf(n int) []byte {
	raw := make([]byte, n+4096)
	off := 0
	if r := int(uintptr(unsafe.Pointer(&raw[0])) % 4096); r != 0 {
		off = 4096 - r
	}
	return raw[off : off+n]
}
