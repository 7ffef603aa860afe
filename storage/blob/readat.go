package blob

import (
	"container/list"
	"context"
	"fmt"
	"io"
	"sync"
	"syscall"
	"time"

	"github.com/rackstack/rackstack/storage/ec"
	"github.com/rackstack/rackstack/storage/placement"
)

// DefaultOpenFiles is the most shard files ReadAt keeps open when
// Store.OpenFiles is not set: enough for the data shards of 4 GiB of
// volumes at 4+2 (a random reader of a volume larger than the cache
// opens a file per read again), and never more than a quarter of the
// process's file limit.
const DefaultOpenFiles = 4096

func defaultOpenFiles() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur/4 < DefaultOpenFiles {
		return max(int(lim.Cur/4), 16)
	}
	return DefaultOpenFiles
}

// ReadAt reads len(p) bytes at off of a blob of size bytes into p.
//
// It is the read of small random I/O (a volume's 4 KiB pages): when the
// data shards covering the range are on this node's disks it reads just
// their blocks, from shard files it keeps open, checks their checksums
// and decodes nothing. Anything else — a shard elsewhere, missing or
// corrupt — falls back to Get, which reads around bad shards and reports
// them in the result.
func (s *Store) ReadAt(ctx context.Context, key string, l Layout, size int64, p []byte, off int64) (ReadResult, error) {
	if off < 0 || off+int64(len(p)) > size {
		return ReadResult{}, fmt.Errorf("range %d+%d outside blob of %d bytes", off, len(p), size)
	}
	if len(p) == 0 {
		return ReadResult{}, nil
	}
	if l.K > 0 && l.ShardSize > 0 && len(l.Disks) == l.K+l.M && s.readLocal(key, l, p, off) {
		return ReadResult{}, nil
	}
	w := &fill{b: p}
	res, err := s.Get(ctx, key, l, size, off, int64(len(p)), w)
	if err == nil && w.n != len(p) {
		err = fmt.Errorf("read blob %s: %d of %d bytes", key, w.n, len(p))
	}
	return res, err
}

// fill is a Writer into a byte slice.
type fill struct {
	b []byte
	n int
}

func (w *fill) Write(p []byte) (int, error) {
	if len(p) > len(w.b)-w.n {
		return 0, io.ErrShortBuffer
	}
	copy(w.b[w.n:], p)
	w.n += len(p)
	return len(p), nil
}

// readLocal reads p at off from the blocks of the local data shards
// holding it; false when one is not local or not healthy (p is then
// partly written).
func (s *Store) readLocal(key string, l Layout, p []byte, off int64) bool {
	shard := int64(l.ShardSize)
	stripe := shard * int64(l.K)
	bs := 4 + l.ShardSize
	bp := s.block(bs)
	defer s.blocks.Put(bp)
	buf := (*bp)[:bs]
	for len(p) > 0 {
		st, in := off/stripe, off%stripe
		i, o := in/shard, in%shard
		n := min(shard-o, int64(len(p)))
		d, name := l.Disks[i], ShardName(key, int(i))
		f := s.openShard(d, name)
		if f == nil {
			return false
		}
		if _, err := f.ReadAt(buf, st*int64(bs)); err != nil {
			s.files().forget(d, name)
			return false
		}
		data, err := ec.Open(buf)
		if err != nil {
			s.files().forget(d, name)
			return false
		}
		copy(p[:n], data[o:o+n])
		p, off = p[n:], off+n
	}
	return true
}

// block returns a buffer of at least n bytes from the Store's pool: the
// read path allocates nothing per I/O.
func (s *Store) block(n int) *[]byte {
	if bp, ok := s.blocks.Get().(*[]byte); ok && cap(*bp) >= n {
		return bp
	}
	b := make([]byte, n)
	return &b
}

// openShard returns the open shard file name on local disk d, opening it
// if need be; nil when the disk is not local or the file cannot be read
// at an offset.
func (s *Store) openShard(d placement.Disk, name string) io.ReaderAt {
	local, ok := s.Local[d.ID]
	if !ok || d.Node != s.Node {
		return nil
	}
	fc := s.files()
	if f := fc.get(d, name); f != nil {
		return f
	}
	rc, err := local.Open(name, 0)
	if err != nil {
		return nil
	}
	f, ok := rc.(interface {
		io.ReaderAt
		io.Closer
	})
	if !ok {
		rc.Close()
		return nil
	}
	return fc.add(d, name, f)
}

func (s *Store) files() *openFiles {
	s.filesOnce.Do(func() {
		n := s.OpenFiles
		if n <= 0 {
			n = defaultOpenFiles()
		}
		s.openFiles = &openFiles{max: n, byName: map[string]*list.Element{}, lru: list.New()}
	})
	return s.openFiles
}

// openFiles are the shard files ReadAt keeps open, at most max of them,
// the least recently used closed first. A file stays readable after it
// is removed until it is closed, so deleting a shard forgets it here
// (DeleteShard), as does a read that fails on it; a shard rewritten in
// place by the healer leaves its old file here, which held the same
// bytes (a file whose blocks turned corrupt fails its checksum and is
// forgotten). A shard removed behind the Store's back (a peer's delete,
// the orphan sweep) keeps its space only until its file has gone unread
// for idleFile: every read closes such files at the cold end.
type openFiles struct {
	mu     sync.Mutex
	max    int
	byName map[string]*list.Element // disk id/name → element of lru
	lru    *list.List               // of *openFile, most recent first
}

// idleFile is how long a kept file may go unread before it is closed.
const idleFile = time.Minute

type openFile struct {
	key  string
	used time.Time
	f    interface {
		io.ReaderAt
		io.Closer
	}
}

func fileKey(d placement.Disk, name string) string { return d.ID + "/" + name }

func (fc *openFiles) get(d placement.Disk, name string) io.ReaderAt {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	now := time.Now()
	fc.closeIdle(now)
	e := fc.byName[fileKey(d, name)]
	if e == nil {
		return nil
	}
	fc.lru.MoveToFront(e)
	of := e.Value.(*openFile)
	of.used = now
	return of.f
}

// closeIdle closes the files unread for idleFile. Caller holds mu.
func (fc *openFiles) closeIdle(now time.Time) {
	for e := fc.lru.Back(); e != nil; e = fc.lru.Back() {
		of := e.Value.(*openFile)
		if now.Sub(of.used) < idleFile {
			return
		}
		fc.lru.Remove(e)
		delete(fc.byName, of.key)
		of.f.Close()
	}
}

// add keeps f open and returns the file to read: f, or the one another
// reader opened meanwhile (f is then closed).
func (fc *openFiles) add(d placement.Disk, name string, f interface {
	io.ReaderAt
	io.Closer
}) io.ReaderAt {
	k := fileKey(d, name)
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if e := fc.byName[k]; e != nil {
		f.Close()
		fc.lru.MoveToFront(e)
		return e.Value.(*openFile).f
	}
	fc.byName[k] = fc.lru.PushFront(&openFile{key: k, used: time.Now(), f: f})
	for fc.lru.Len() > fc.max {
		// A read still using the file fails with "file already closed"
		// and falls back to Get.
		e := fc.lru.Back()
		fc.lru.Remove(e)
		of := e.Value.(*openFile)
		delete(fc.byName, of.key)
		of.f.Close()
	}
	return f
}

// forget closes the kept file of shard name on d, if any.
func (fc *openFiles) forget(d placement.Disk, name string) {
	k := fileKey(d, name)
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if e := fc.byName[k]; e != nil {
		fc.lru.Remove(e)
		delete(fc.byName, k)
		e.Value.(*openFile).f.Close()
	}
}
