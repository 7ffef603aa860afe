package blob

import (
	"container/list"
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"sync"
	"sync/atomic"
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
//
// A block is verified whole against its checksum the first time it is
// read; the checksums of its 4 KiB pages are then kept with its open
// file (pageSums), and a later read of part of the block reads and
// checks only the pages it needs: a 4 KiB read costs a 4 KiB pread
// instead of 32 KiB and its checksum. Every byte returned is checked
// against a checksum, of the page or of the block; a page that does not
// match its kept checksum is read again whole with its block, which
// decides (and, if it fails, falls back to Get like any corrupt block).
func (s *Store) readLocal(key string, l Layout, p []byte, off int64) bool {
	shard := int64(l.ShardSize)
	stripe := shard * int64(l.K)
	bs := 4 + l.ShardSize
	bp := s.block(bs)
	defer s.blocks.Put(bp)
	buf := (*bp)[:bs]
	paged := l.ShardSize%sumPage == 0 && l.ShardSize/sumPage <= maxPagesPerBlock
	for len(p) > 0 {
		st, in := off/stripe, off%stripe
		i, o := in/shard, in%shard
		n := min(shard-o, int64(len(p)))
		d, name := l.Disks[i], ShardName(key, int(i))
		if s.anySlow() && s.isSlow(d) {
			// A read of this disk was given up on lately (a hung
			// disk): Get reads past it.
			return false
		}
		of := s.openShard(d, name)
		if of == nil {
			return false
		}
		at := st * int64(bs)
		if sums := of.pageSums(st); paged && sums != nil {
			p0, p1 := o/sumPage, (o+n+sumPage-1)/sumPage
			pages := buf[:(p1-p0)*sumPage]
			if _, err := of.f.ReadAt(pages, at+4+p0*sumPage); err == nil && pagesMatch(pages, sums[p0:p1]) {
				copy(p[:n], pages[o-p0*sumPage:])
				p, off = p[n:], off+n
				continue
			}
		}
		if _, err := of.f.ReadAt(buf, at); err != nil {
			s.files().forget(d, name)
			return false
		}
		data, err := ec.Open(buf)
		if err != nil {
			s.files().forget(d, name)
			return false
		}
		if paged {
			s.files().keepSums(of, st, data)
		}
		copy(p[:n], data[o:o+n])
		p, off = p[n:], off+n
	}
	return true
}

// sumPage is the unit of the page checksums readLocal keeps; a block of
// at most maxPagesPerBlock of them has its pages' checksums kept.
const (
	sumPage          = 4096
	maxPagesPerBlock = 16
)

// MaxPageSums bounds the blocks whose page checksums the open files
// keep, all files together: 4 GiB of data in 32 KiB blocks, for about
// 12 MiB of memory. Past it blocks are verified whole at every read.
const MaxPageSums = 1 << 17

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// pagesMatch says whether each sumPage of b has the checksum in sums.
func pagesMatch(b []byte, sums []uint32) bool {
	for j, sum := range sums {
		if crc32.Checksum(b[j*sumPage:(j+1)*sumPage], castagnoli) != sum {
			return false
		}
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
func (s *Store) openShard(d placement.Disk, name string) *openFile {
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
	sums   atomic.Int64             // blocks whose page checksums the files keep
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
	// sums are the checksums of the sumPage pages of the blocks read
	// whole and verified from f, by block index (readLocal); they go
	// with the file when it is closed or forgotten.
	mu     sync.Mutex
	sums   map[int64][]uint32
	closed bool // keeps no more sums
}

// pageSums returns the checksums kept of block st's pages, or nil.
func (of *openFile) pageSums(st int64) []uint32 {
	of.mu.Lock()
	defer of.mu.Unlock()
	return of.sums[st]
}

// keepSums keeps the checksums of the pages of block st of of, whose
// data was just verified against the block's checksum, unless the files
// keep MaxPageSums blocks' already.
func (fc *openFiles) keepSums(of *openFile, st int64, data []byte) {
	if fc.sums.Load() >= MaxPageSums {
		return
	}
	sums := make([]uint32, len(data)/sumPage)
	for j := range sums {
		sums[j] = crc32.Checksum(data[j*sumPage:(j+1)*sumPage], castagnoli)
	}
	of.mu.Lock()
	defer of.mu.Unlock()
	if of.closed {
		return
	}
	if of.sums == nil {
		of.sums = map[int64][]uint32{}
	}
	if _, ok := of.sums[st]; !ok {
		fc.sums.Add(1)
	}
	of.sums[st] = sums
}

// close closes the file and drops its page checksums.
func (fc *openFiles) close(of *openFile) {
	of.mu.Lock()
	fc.sums.Add(-int64(len(of.sums)))
	of.sums, of.closed = nil, true
	of.mu.Unlock()
	of.f.Close()
}

func fileKey(d placement.Disk, name string) string { return d.ID + "/" + name }

func (fc *openFiles) get(d placement.Disk, name string) *openFile {
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
	return of
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
		fc.close(of)
	}
}

// add keeps f open and returns the file to read: f, or the one another
// reader opened meanwhile (f is then closed).
func (fc *openFiles) add(d placement.Disk, name string, f interface {
	io.ReaderAt
	io.Closer
}) *openFile {
	k := fileKey(d, name)
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if e := fc.byName[k]; e != nil {
		f.Close()
		fc.lru.MoveToFront(e)
		return e.Value.(*openFile)
	}
	added := &openFile{key: k, used: time.Now(), f: f}
	fc.byName[k] = fc.lru.PushFront(added)
	for fc.lru.Len() > fc.max {
		// A read still using the file fails with "file already closed"
		// and falls back to Get.
		e := fc.lru.Back()
		fc.lru.Remove(e)
		of := e.Value.(*openFile)
		delete(fc.byName, of.key)
		fc.close(of)
	}
	return added
}

// forget closes the kept file of shard name on d, if any.
func (fc *openFiles) forget(d placement.Disk, name string) {
	k := fileKey(d, name)
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if e := fc.byName[k]; e != nil {
		fc.lru.Remove(e)
		delete(fc.byName, k)
		fc.close(e.Value.(*openFile))
	}
}
