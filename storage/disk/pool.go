package disk

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// A Pool keeps the shard files of deleted shards of one disk, so that new
// shards are written over them instead of into fresh files: on this
// kind of machine most of a sequential volume writer's CPU was the
// kernel creating files and allocating their blocks (storage/block
// DESIGN.md), where writing over blocks a file already has is only the
// data's I/O.
//
// Recycle moves a shard file out of shards/ into the disk's pool/
// directory (one rename, like Remove one unlink: a crash leaves it under
// its old name or in the pool). Create takes a pool file if there is one
// and writes the new shard over it from offset 0 (direct I/O in stages,
// as Dir's writers), cuts it to the bytes written, and on Commit fsyncs
// it and renames it to the shard's name, exactly where a fresh file is
// fsync'd and linked. So a shard under its name is always whole: its
// bytes were fsync'd before the rename (or, with DirSyncs.DeferFiles,
// before any command names it, as for fresh files). A pool file that a
// crash leaves half written is under pool/ only, which no reader opens
// and which List does not walk; NewPool adopts what it finds there.
//
// The caller owns the hard part: a shard it recycles must be named by
// nothing any more and read by no one, since its bytes are overwritten
// in place (an unlinked file stays readable through an open descriptor;
// a recycled one does not). Hence a Pool is not the disk's Remove: only a
// caller that knows its garbage is unread recycles (storage/block).
type Pool struct {
	d   *Dir
	dir string
	max int

	mu    sync.Mutex
	files []string // paths under dir, free to write over
	seq   uint64

	// Reused and Fresh count the shards Create wrote over a pool file
	// and into a fresh one.
	Reused, Fresh atomic.Int64
}

// NewPool returns d's pool of at most max files; files a previous
// process left in it are adopted.
func NewPool(d *Dir, max int) (*Pool, error) {
	p := &Pool{d: d, dir: filepath.Join(d.root, "pool"), max: max}
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(p.dir)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		path := filepath.Join(p.dir, e.Name())
		if !e.Type().IsRegular() || len(p.files) >= max {
			os.Remove(path)
			continue
		}
		p.files = append(p.files, path)
	}
	return p, nil
}

// Len is how many files the pool holds.
func (p *Pool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.files)
}

// Recycle moves shard name into the pool (deletes it when the pool is
// full); a missing shard is not an error.
func (p *Pool) Recycle(name string) error {
	if err := validName(name); err != nil {
		return err
	}
	p.mu.Lock()
	full := len(p.files) >= p.max
	p.seq++
	dst := filepath.Join(p.dir, fmt.Sprintf("%s.%d", name, p.seq))
	p.mu.Unlock()
	if full {
		return p.d.Remove(name)
	}
	err := os.Rename(p.d.path(name), dst)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.files = append(p.files, dst)
	p.mu.Unlock()
	return nil
}

// take removes a file from the pool for a writer, or returns "".
func (p *Pool) take() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.files)
	if n == 0 {
		return ""
	}
	path := p.files[n-1]
	p.files = p.files[:n-1]
	return path
}

// Create starts writing shard name over a pool file, or into a fresh
// one (Dir.Create) when the pool is empty.
func (p *Pool) Create(name string) (Writer, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	for {
		path := p.take()
		if path == "" {
			p.Fresh.Add(1)
			return p.d.Create(name)
		}
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			// Gone or unusable: try the next one.
			os.Remove(path)
			continue
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			os.Remove(path)
			continue
		}
		p.Reused.Add(1)
		return &overWriter{fileWriter: &fileWriter{f: f, dst: p.d.path(name)}, size: st.Size()}, nil
	}
}

// overWriter writes a shard over a pool file: a fileWriter whose file
// was larger than its shard is cut to it before the fsync.
type overWriter struct {
	*fileWriter
	size int64 // the pool file's size when taken
}

func (w *overWriter) Commit() error { return w.commitOver(nil) }

func (w *overWriter) CommitDeferred(ds *DirSyncs) error { return w.commitOver(ds) }

func (w *overWriter) commitOver(ds *DirSyncs) error {
	if err := w.finish(); err != nil {
		w.Abort()
		return err
	}
	if w.size > w.written {
		if err := unix.Ftruncate(int(w.f.Fd()), w.written); err != nil {
			w.Abort()
			return fmt.Errorf("cut recycled shard: %w", err)
		}
	}
	return w.commit(ds)
}

// Recycling is a Disk whose new shards are written over its Pool's
// files. Its Remove is Dir's (an unlink: a reader with the file open
// still reads it); only Recycle moves a shard into the pool.
type Recycling struct {
	*Dir
	Pool *Pool
}

func (r Recycling) Create(name string) (Writer, error) { return r.Pool.Create(name) }

// Recycle moves shard name into the pool (see Pool.Recycle).
func (r Recycling) Recycle(name string) error { return r.Pool.Recycle(name) }

// Recycler is a Disk that can recycle a shard file (Recycling).
type Recycler interface {
	Recycle(name string) error
}
