package block

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/rackstack/rackstack/storage/blob"
	"github.com/rackstack/rackstack/storage/disk"
	"github.com/rackstack/rackstack/storage/ec"
	"github.com/rackstack/rackstack/storage/placement"
	"golang.org/x/sys/unix"
)

// The bare disk pattern of a sequential volume writer, without NBD, the
// page maps or any metadata: what the machine allows the write path at
// most (rackbench block's write-pattern case, BenchmarkWritePattern).
// 32 MiB flushes (eight 4 MiB extents, coded k+m in 32 KiB blocks with
// their checksums), two in flight, each written by the store's own
// blob.Put to k+m disk directories (every shard file written with
// direct I/O, fsync'd and linked) and each directory fsync'd once per
// flush. A flush's blobs are deleted, off the flush path, once the next
// flush of its worker is durable, as a sequential overwrite makes the
// last extents garbage.

// PatternMode is how a Pattern lays a flush's shards out.
type PatternMode int

const (
	// PatternFilePerShard writes every extent as a blob of its own,
	// eight at once: k+m files per extent (the format before packs).
	PatternFilePerShard PatternMode = iota
	// PatternFilePerDisk writes a flush's extents as one blob: one file
	// per disk and flush, the store's format.
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
	store   *blob.Store
	layout  blob.Layout
	data    []byte // one flush's volume data
	workers []*patternWorker
	seq     atomic.Int64
	gc      sync.WaitGroup // deletions of earlier flushes' blobs
}

type patternWorker struct {
	keys []string // the blobs of the worker's last flush
	// PatternOverwrite: the coded shards ([extent][shard]) and one
	// preallocated file per disk.
	bufs [patternExtents][][]byte
	pre  []*os.File
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
	p := &Pattern{dirs: dirs, k: k, m: m, mode: mode, c: c, data: make([]byte, patternExtents*ExtentSize),
		store: &blob.Store{Node: "pattern", Local: map[string]disk.Disk{}}, layout: blob.Layout{K: k, M: m, ShardSize: extentShard}}
	for i := range p.data {
		p.data[i] = byte(i * 7)
	}
	for _, d := range dirs {
		p.store.Local[d.ID()] = d
		p.layout.Disks = append(p.layout.Disks, placement.Disk{Node: "pattern", ID: d.ID()})
	}
	shardBytes := ExtentSize / c.StripeSize() * c.BlockSize()
	for range patternInflight {
		w := &patternWorker{}
		p.workers = append(p.workers, w)
		if mode != PatternOverwrite {
			continue
		}
		for e := range patternExtents {
			for range k + m {
				w.bufs[e] = append(w.bufs[e], disk.AlignedBuffer(shardBytes))
			}
		}
		aligned := shardBytes &^ (4096 - 1)
		zero := disk.AlignedBuffer(aligned)
		for _, d := range dirs {
			f, err := os.CreateTemp(d.Path(), "pattern")
			if err == nil {
				os.Remove(f.Name())
				err = unix.Fallocate(int(f.Fd()), 0, 0, int64(patternExtents*aligned))
			}
			if err == nil {
				err = disk.SetDirect(f, true)
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
	return p, nil
}

// Close deletes what the pattern wrote.
func (p *Pattern) Close() {
	p.gc.Wait()
	for _, w := range p.workers {
		for _, f := range w.pre {
			f.Close()
		}
		w.pre = nil
		for _, key := range w.keys {
			p.store.Delete(context.Background(), key, p.layout)
		}
		w.keys = nil
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
	if p.mode == PatternOverwrite {
		return p.overwrite(w)
	}
	// The last flush's blobs are garbage now: deleted beside this one.
	if prev := w.keys; len(prev) > 0 {
		p.gc.Add(1)
		go func() {
			defer p.gc.Done()
			for _, key := range prev {
				p.store.Delete(context.Background(), key, p.layout)
			}
		}()
	}
	w.keys = nil
	ds := &disk.DirSyncs{}
	ctx := blob.WithDirSyncs(blob.WithoutMD5(context.Background()), ds)
	first := p.seq.Add(1) % 256 // the keys of a flush share their directory
	key := func() string { return fmt.Sprintf("%02x%030x", first, p.seq.Add(1)) }
	if p.mode == PatternFilePerDisk {
		k := key()
		if _, err := p.store.Put(ctx, k, p.layout, bytes.NewReader(p.data)); err != nil {
			return err
		}
		w.keys = []string{k}
	} else {
		keys := make([]string, patternExtents)
		errs := make([]error, patternExtents)
		var wg sync.WaitGroup
		for e := range patternExtents {
			keys[e] = key()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[e] = p.store.Put(ctx, keys[e], p.layout, bytes.NewReader(p.data[e*ExtentSize:(e+1)*ExtentSize]))
			}()
		}
		wg.Wait()
		w.keys = keys
		if err := errors.Join(errs...); err != nil {
			return err
		}
	}
	return ds.Sync()
}

// overwrite codes the flush's extents and writes their shards over the
// worker's preallocated files.
func (p *Pattern) overwrite(w *patternWorker) error {
	c, n := p.c, p.k+p.m
	stripes := ExtentSize / c.StripeSize()
	var wg sync.WaitGroup
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
						copy(shards[s], p.data[e*ExtentSize+(st*p.k+s)*extentShard:])
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
	errs := make(chan error, n)
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
