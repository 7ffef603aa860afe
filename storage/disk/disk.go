// Package disk stores shard files on one local disk (a directory). Writes go
// to a temporary file (unnamed where the filesystem allows) that is fsync'd
// and given its name on Commit, so a shard is either whole or absent. It
// knows nothing about erasure coding.
package disk

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Disk is the contract the object store uses; Dir implements it and tests
// wrap it to inject faults.
type Disk interface {
	ID() string
	Path() string
	Create(name string) (Writer, error)
	Open(name string, offset int64) (io.ReadCloser, error)
	Remove(name string) error
	List() ([]string, error)
	Usage() (total, free uint64, err error)
}

// Writer receives one shard; nothing is visible until Commit.
type Writer interface {
	io.Writer
	Commit() error // fsync, name it (link or rename into place), fsync the directory
	Abort()
}

// ErrNotFound means the shard is not on this disk.
var ErrNotFound = errors.New("shard not found")

// Dir is a disk backed by a directory.
type Dir struct {
	id   string
	root string
	// rebuilt is set when a write found the directory wiped and rebuilt
	// its skeleton; Check reports it once.
	rebuilt atomic.Bool
}

// OpenDir opens (or formats) the directory root as a disk. A disk keeps its
// id in root/disk-id; an empty directory gets a new one, so a replaced disk
// is a new disk.
func OpenDir(root string) (*Dir, error) {
	if err := os.MkdirAll(filepath.Join(root, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("open disk %s: %w", root, err)
	}
	if err := os.MkdirAll(filepath.Join(root, "shards"), 0o700); err != nil {
		return nil, fmt.Errorf("open disk %s: %w", root, err)
	}
	idPath := filepath.Join(root, "disk-id")
	raw, err := os.ReadFile(idPath)
	if errors.Is(err, fs.ErrNotExist) {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		raw = []byte(hex.EncodeToString(b[:]))
		if err := os.WriteFile(idPath, raw, 0o600); err != nil {
			return nil, fmt.Errorf("format disk %s: %w", root, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("open disk %s: %w", root, err)
	}
	// Leftovers of writes interrupted by a crash were never committed.
	tmps, _ := os.ReadDir(filepath.Join(root, "tmp"))
	for _, e := range tmps {
		os.Remove(filepath.Join(root, "tmp", e.Name()))
	}
	return &Dir{id: strings.TrimSpace(string(raw)), root: root}, nil
}

func (d *Dir) reformat() error {
	if err := os.MkdirAll(filepath.Join(d.root, "tmp"), 0o700); err != nil {
		return err
	}
	idPath := filepath.Join(d.root, "disk-id")
	if _, err := os.Stat(idPath); errors.Is(err, fs.ErrNotExist) {
		d.rebuilt.Store(true)
		return os.WriteFile(idPath, []byte(d.id), 0o600)
	}
	return nil
}

// Check reports whether the directory was wiped (its disk-id is gone) since
// it was opened; it then rebuilds the skeleton under the same id, and every
// shard the store placed here must be rebuilt.
func (d *Dir) Check() (wiped bool, err error) {
	_, err = os.Stat(filepath.Join(d.root, "disk-id"))
	if errors.Is(err, fs.ErrNotExist) {
		err = d.reformat()
		d.rebuilt.Store(false)
		return true, err
	}
	// A write may have noticed the wipe first and rebuilt the skeleton.
	if d.rebuilt.Swap(false) {
		return true, nil
	}
	return false, err
}

func (d *Dir) ID() string   { return d.id }
func (d *Dir) Path() string { return d.root }

func validName(name string) error {
	if len(name) < 3 || strings.ContainsAny(name, "/\\\x00") || strings.HasPrefix(name, ".") {
		return fmt.Errorf("bad shard name %q", name)
	}
	return nil
}

func (d *Dir) path(name string) string {
	return filepath.Join(d.root, "shards", name[:2], name)
}

// Create starts writing shard name: into an unnamed file (O_TMPFILE)
// in the disk's tmp directory, linked under its name on Commit; where
// the filesystem has no unnamed files, into a named temporary file
// renamed into place. An unnamed file costs no directory entry until it
// is whole, and a crash before Commit leaves nothing behind (the
// filesystem frees it), where a named one must be created, renamed out
// of tmp, and swept from tmp after a crash.
func (d *Dir) Create(name string) (Writer, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	w, err := d.create(name)
	if errors.Is(err, fs.ErrNotExist) {
		// The directory was wiped under us (a replaced or emptied disk):
		// rebuild its skeleton under the same id so healing can refill it.
		if err = d.reformat(); err == nil {
			w, err = d.create(name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("create shard on %s: %w", d.root, err)
	}
	return w, nil
}

// noTmpfile is set once the filesystem refused an unnamed file.
var noTmpfile atomic.Bool

func (d *Dir) create(name string) (*fileWriter, error) {
	tmp := filepath.Join(d.root, "tmp")
	if !noTmpfile.Load() && !noTmpfileHook {
		fd, err := unix.Open(tmp, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
		if err == nil {
			return &fileWriter{f: os.NewFile(uintptr(fd), filepath.Join(tmp, name)), dst: d.path(name), unnamed: true}, nil
		}
		switch err {
		case unix.ENOENT:
			return nil, fs.ErrNotExist
		case unix.EOPNOTSUPP, unix.EISDIR, unix.EINVAL:
			// No O_TMPFILE on this filesystem (or kernel).
			noTmpfile.Store(true)
		default:
			return nil, err
		}
	}
	f, err := os.CreateTemp(tmp, name+".*")
	if err != nil {
		return nil, err
	}
	return &fileWriter{f: f, dst: d.path(name)}, nil
}

// noTmpfileHook makes Create use named temporary files, as on a
// filesystem without O_TMPFILE (a test sets it).
var noTmpfileHook bool

type fileWriter struct {
	f       *os.File
	dst     string
	unnamed bool  // f is an O_TMPFILE: no name until it is linked at dst
	written int64 // bytes written
	flushed int64 // bytes handed to writeback

	// stage holds the bytes not yet written, from offset written; a
	// full stage is written with direct I/O (see stageSize).
	stage    *[]byte
	buffered bool  // direct I/O failed (or was ruled out): write through the page cache
	direct   int64 // bytes written with direct I/O
	inPlace  int64 // of those, bytes written from the blocks' own memory
	directIO int   // direct writes made (system calls)
}

// writebackChunk is how much a buffered shard writer lets pile up in the
// page cache before it asks the kernel to start writing it out. Without
// it the whole shard is written at the final fsync, after the stream has
// ended; with it the disk works while the object streams in.
const writebackChunk = 4 << 20

// stageSize is how many bytes a shard writer gathers before it writes
// them with direct I/O (O_DIRECT), bypassing the page cache. Under a
// sequential volume writer, most of rackd's CPU was the kernel putting
// shard bytes into the page cache (allocating, charging and later
// writing back and evicting its pages); a direct write hands the
// device the buffer itself. A shard smaller than one stage (small
// objects, small journal segments) never leaves the page cache path,
// and the last partial stage of every shard is written through it.
// The bytes on disk are the same either way, and Commit fsyncs both.
const stageSize = 256 << 10

// directAlign is the alignment of direct I/O's memory, file offsets and
// lengths: 4 KiB suits every logical block size up to it.
const directAlign = 4096

// keptStages is how many stages are kept for reuse, at most (16 MiB):
// a fresh one costs a page fault per 4 KiB on first use, and a
// sync.Pool drops them at every garbage collection.
const keptStages = 64

var stages = make(chan *[]byte, keptStages)

// bigStageSize is the stage of a writer that fills its stages by
// copying: one whose blocks come one or two at a time, below a stage (a
// volume's whole extents under a sequential writer), so that every
// byte goes through the stage. Once such a writer has written one
// stage, it takes a big one, if the budget allows: each direct write
// costs the kernel about the same whatever its size (pinning, one
// request to the device), and under a sequential volume writer this
// took rackd's CPU per MiB written from a median 1.54 ms to 1.24 and
// its speed from 588 to 688 MiB/s (rackbench block seq_write, the
// build before and after in 7 interleaved rounds of 3 runs, load
// 2.3-8.4; see storage/block/DESIGN.md).
// A writer whose blocks come in batches of a stage or more writes them
// from their own memory (putDirect) and never fills its stage by
// copying, so it keeps its small one: an object's shards do not hold
// a big stage each.
const bigStageSize = 1 << 20

// maxBigStages bounds the big stages in use and kept at once (32 MiB):
// past it a copying writer goes on with its small stage.
const maxBigStages = 32

var (
	bigStages    = make(chan *[]byte, maxBigStages)
	bigStagesOut atomic.Int32 // big stages allocated and not dropped
)

func getStage() *[]byte {
	select {
	case b := <-stages:
		return b
	default:
	}
	b := AlignedBuffer(stageSize)[:0]
	return &b
}

// getBigStage returns a big stage, or nil when maxBigStages are out.
func getBigStage() *[]byte {
	select {
	case b := <-bigStages:
		return b
	default:
	}
	if bigStagesOut.Add(1) > maxBigStages {
		bigStagesOut.Add(-1)
		return nil
	}
	b := AlignedBuffer(bigStageSize)[:0]
	return &b
}

// AlignedBuffer is n bytes whose start is aligned in memory for direct
// I/O.
func AlignedBuffer(n int) []byte {
	raw := make([]byte, n+directAlign)
	off := (directAlign - pageOffset(raw)) % directAlign
	return raw[off : off+n : off+n]
}

func putStage(b *[]byte) {
	*b = (*b)[:0]
	pool := stages
	if cap(*b) == bigStageSize {
		pool = bigStages
	}
	select {
	case pool <- b:
	default:
		if pool == bigStages {
			bigStagesOut.Add(-1)
		}
	}
}

func (w *fileWriter) Write(p []byte) (int, error) {
	if err := w.put(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// WriteBlocks writes bs one after the other: a blob writer hands over
// the blocks queued for a shard at once. Blocks whose memory is aligned
// as their place in the file (see Aligned) are written with direct I/O
// from where they are, not copied into the stage first: only the page
// that straddles two blocks is.
func (w *fileWriter) WriteBlocks(bs [][]byte) error {
	for len(bs) > 0 {
		n, err := w.putDirect(bs)
		if err != nil {
			return err
		}
		if n == 0 {
			if err := w.put(bs[0]); err != nil {
				return err
			}
			n = 1
		}
		bs = bs[n:]
	}
	return nil
}

// DirectAlign is the alignment of direct I/O's memory, file offsets and
// lengths.
const DirectAlign = directAlign

// Aligned returns the n bytes of buf, which has at least
// n+DirectAlign-1, whose memory is aligned as file offset off: a shard
// writer writes such a block at off with direct I/O from where it is,
// without copying it into its stage (all but the page it shares with the
// block before it, and its last partial page).
func Aligned(buf []byte, off int64, n int) []byte {
	shift := int((off%directAlign - int64(pageOffset(buf)) + 2*directAlign) % directAlign)
	return buf[shift : shift+n : shift+n]
}

// fitsDirect reports whether b, written at file offset off, can go out
// with direct I/O from its own memory.
func fitsDirect(b []byte, off int64) bool {
	if len(b) < 2*directAlign {
		return false
	}
	return int64(pageOffset(b)) == off%directAlign
}

// pageOffset is where b's memory starts within its page.
func pageOffset(b []byte) int {
	return int(uintptr(unsafe.Pointer(unsafe.SliceData(b))) % directAlign)
}

// maxIovecs bounds one vectored write (IOV_MAX is 1024).
const maxIovecs = 512

// putDirect writes a prefix of bs with one vectored direct write from
// the blocks' own memory and returns how many blocks it took (0 when
// bs[0] is not fit for it: not aligned as its file offset, small, or
// the writer is buffered). What precedes each block's first whole page
// (the stage's bytes, or the last partial page of the block before) and
// that page's head are put together in a page of the stage; the bytes
// after a block's last whole page wait in the stage for what follows.
// A shard that has not yet filled a stage goes on filling it, so shards
// smaller than a stage stay on the page cache path, as with put.
func (w *fileWriter) putDirect(bs [][]byte) (int, error) {
	if w.buffered {
		return 0, nil
	}
	if w.stage == nil {
		w.stage = getStage()
	}
	st := *w.stage
	// Less than a stage at once goes into the stage: many small direct
	// writes cost more than the copy (a volume's 32 KiB blocks come one
	// or two at a time when the writer keeps up), and a shard smaller
	// than a stage stays on the page cache path.
	total := len(st)
	for _, b := range bs {
		total += len(b)
	}
	if total < cap(st) {
		return 0, nil
	}
	pos := len(st) // the stage's bytes in use; aligned once a block is in
	off := w.written + int64(len(st))
	var iovs [][]byte
	var tail []byte
	taken := 0
	for _, b := range bs {
		if !fitsDirect(b, off) || len(iovs)+2 > maxIovecs {
			break
		}
		h := int((directAlign - off%directAlign) % directAlign)
		if taken == 0 {
			// The stage's bytes and the block's head fill whole pages
			// (the stage starts at an aligned offset, and is never
			// full here).
			copy(st[pos:pos+h], b[:h])
			pos += h
			if pos > 0 {
				iovs = append(iovs, st[:pos])
			}
		} else if len(tail) > 0 {
			if pos+directAlign > cap(st) {
				break
			}
			copy(st[pos:pos+len(tail)], tail)
			copy(st[pos+len(tail):pos+directAlign], b[:h])
			iovs = append(iovs, st[pos:pos+directAlign])
			pos += directAlign
		}
		m := (len(b) - h) &^ (directAlign - 1)
		iovs = append(iovs, b[h:h+m])
		tail = b[h+m:]
		off += int64(len(b))
		taken++
	}
	if taken == 0 {
		return 0, nil
	}
	n := 0
	for _, v := range iovs {
		n += len(v)
	}
	if err := w.writevDirect(iovs); err != nil {
		// No direct I/O here: the page cache takes these bytes (what
		// the direct write wrote is rewritten) and the rest.
		w.buffered = true
		if err := SetDirect(w.f, false); err != nil {
			return 0, fmt.Errorf("write shard: %w", err)
		}
		if err := pwritevAll(int(w.f.Fd()), iovs, w.written); err != nil {
			return 0, fmt.Errorf("write shard: %w", err)
		}
		w.written += int64(n)
		*w.stage = st[:copy(st[:cap(st)], tail)]
		w.startWriteback()
		return taken, nil
	}
	w.written += int64(n)
	w.direct += int64(n)
	w.inPlace += int64(n - stagedBytes(iovs, st))
	*w.stage = st[:copy(st[:cap(st)], tail)]
	return taken, nil
}

// stagedBytes is how many bytes of iovs lie in the stage st.
func stagedBytes(iovs [][]byte, st []byte) int {
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(st)))
	hi := lo + uintptr(cap(st))
	n := 0
	for _, v := range iovs {
		if a := uintptr(unsafe.Pointer(unsafe.SliceData(v))); a >= lo && a < hi {
			n += len(v)
		}
	}
	return n
}

// writevDirect writes iovs (each aligned in memory and length) at the
// end of what is written, with O_DIRECT.
func (w *fileWriter) writevDirect(iovs [][]byte) error {
	if w.written == 0 {
		if err := setDirectHook(w.f, true); err != nil {
			return err
		}
	}
	off := w.written
	// advance changes its list: the caller may write iovs again.
	iovs = append([][]byte(nil), iovs...)
	for len(iovs) > 0 {
		m, err := unix.Pwritev(int(w.f.Fd()), iovs, off)
		w.directIO++
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if m%directAlign != 0 || m == 0 {
			return fmt.Errorf("short direct write of %d bytes", m)
		}
		off += int64(m)
		iovs = advance(iovs, m)
	}
	return nil
}

// pwritevAll writes iovs at off, through the page cache.
func pwritevAll(fd int, iovs [][]byte, off int64) error {
	for len(iovs) > 0 {
		m, err := unix.Pwritev(fd, iovs, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if m == 0 {
			return io.ErrShortWrite
		}
		off += int64(m)
		iovs = advance(iovs, m)
	}
	return nil
}

// advance drops the first m bytes of iovs.
func advance(iovs [][]byte, m int) [][]byte {
	for m > 0 && len(iovs) > 0 {
		if m < len(iovs[0]) {
			iovs[0] = iovs[0][m:]
			return iovs
		}
		m -= len(iovs[0])
		iovs = iovs[1:]
	}
	for len(iovs) > 0 && len(iovs[0]) == 0 {
		iovs = iovs[1:]
	}
	return iovs
}

// put stages p, writing every stage it fills.
func (w *fileWriter) put(p []byte) error {
	for len(p) > 0 {
		if w.stage == nil {
			w.stage = getStage()
		}
		st := *w.stage
		n := copy(st[len(st):cap(st)], p)
		st = st[:len(st)+n]
		*w.stage = st
		p = p[n:]
		if len(st) == cap(st) {
			if err := w.writeStage(len(st)); err != nil {
				return err
			}
			w.growStage()
		}
	}
	return nil
}

// growStage gives a direct writer that has just written a whole small
// stage by copying a big one in its place (see bigStageSize), when one
// is to be had. The stage is empty here.
func (w *fileWriter) growStage() {
	if w.buffered || cap(*w.stage) == bigStageSize || len(*w.stage) > 0 {
		return
	}
	if b := getBigStage(); b != nil {
		putStage(w.stage)
		w.stage = b
	}
}

// writeStage writes the first n bytes of the stage (n a multiple of
// directAlign unless the writer is buffered) and keeps the rest.
func (w *fileWriter) writeStage(n int) error {
	st := *w.stage
	if !w.buffered {
		if err := w.writevDirect([][]byte{st[:n]}); err == nil {
			w.written += int64(n)
			w.direct += int64(n)
			*w.stage = st[:copy(st, st[n:])]
			return nil
		}
		// No direct I/O here (a filesystem without it, an odd device):
		// the page cache takes this stage and the rest.
		w.buffered = true
		if err := SetDirect(w.f, false); err != nil {
			return fmt.Errorf("write shard: %w", err)
		}
	}
	for b := st[:n]; len(b) > 0; {
		m, err := unix.Pwrite(int(w.f.Fd()), b, w.written)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("write shard: %w", err)
		}
		w.written += int64(m)
		b = b[m:]
	}
	*w.stage = st[:copy(st, st[n:])]
	w.startWriteback()
	return nil
}

// setDirectHook is setDirect; a test makes it fail, as on a filesystem
// without direct I/O.
var setDirectHook = SetDirect

// SetDirect turns O_DIRECT on or off for f's later reads and writes.
func SetDirect(f *os.File, on bool) error {
	fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err != nil {
		return err
	}
	if on {
		fl |= unix.O_DIRECT
	} else {
		fl &^= unix.O_DIRECT
	}
	_, err = unix.FcntlInt(f.Fd(), unix.F_SETFL, fl)
	return err
}

// startWriteback asks the kernel to start writing out what is written so
// far through the page cache once writebackChunk has piled up (see
// writebackChunk).
func (w *fileWriter) startWriteback() {
	if w.written-w.flushed >= writebackChunk {
		// Best effort: an error here shows up at the fsync.
		unix.SyncFileRange(int(w.f.Fd()), w.flushed, w.written-w.flushed, unix.SYNC_FILE_RANGE_WRITE)
		w.flushed = w.written
	}
}

// finish writes what the stage still holds: its aligned part with
// direct I/O (when the writer is direct), the rest through the page
// cache, and gives the stage back.
func (w *fileWriter) finish() error {
	if w.stage == nil {
		return nil
	}
	defer w.dropStage()
	// A shard that never filled a stage is written through the page
	// cache whole: it was never direct.
	if w.written == 0 {
		w.buffered = true
	}
	if n := len(*w.stage) &^ (directAlign - 1); n > 0 && !w.buffered {
		if err := w.writeStage(n); err != nil {
			return err
		}
	}
	if len(*w.stage) == 0 {
		return nil
	}
	if !w.buffered {
		w.buffered = true
		if err := SetDirect(w.f, false); err != nil {
			return fmt.Errorf("write shard: %w", err)
		}
	}
	return w.writeStage(len(*w.stage))
}

func (w *fileWriter) dropStage() {
	if w.stage != nil {
		putStage(w.stage)
		w.stage = nil
	}
}

func (w *fileWriter) Commit() error { return w.commit(nil) }

// CommitDeferred is Commit without the directory's fsync: the shard
// file is whole and fsync'd under its name (not fsync'd, with
// ds.DeferFiles), but the name (and then its bytes) is durable only
// once ds.Sync has fsync'd the directory (and the file). A caller that makes many
// shards at once syncs each directory once, not once per shard.
func (w *fileWriter) CommitDeferred(ds *DirSyncs) error { return w.commit(ds) }

// DeferredCommitter is a Writer whose directory sync can be left to a
// DirSyncs (Dir's writers are).
type DeferredCommitter interface {
	CommitDeferred(ds *DirSyncs) error
}

// DirSyncs gathers the directories shard files were renamed into by
// CommitDeferred; Sync fsyncs each of them once.
type DirSyncs struct {
	// DeferFiles leaves the shard files' own fsyncs to Sync too:
	// CommitDeferred names a file whose bytes may still be in the page
	// cache or the device's volatile cache, and only Sync makes them
	// durable. A caller that holds writes back until its client asks
	// for durability (a volume's write-back, storage/block) pays one
	// device flush for many shards, not one per shard.
	DeferFiles bool

	mu    sync.Mutex
	dirs  map[string]struct{}
	files map[string]struct{}
}

func (ds *DirSyncs) add(dir, file string) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if ds.dirs == nil {
		ds.dirs = map[string]struct{}{}
	}
	ds.dirs[dir] = struct{}{}
	if file != "" {
		if ds.files == nil {
			ds.files = map[string]struct{}{}
		}
		ds.files[file] = struct{}{}
	}
}

// Len is how many directories wait for their sync.
func (ds *DirSyncs) Len() int {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	return len(ds.dirs)
}

// Files are the shard files (paths) whose fsync waits for Sync.
func (ds *DirSyncs) Files() []string {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	return slices.Collect(maps.Keys(ds.files))
}

// Take moves what o waits for into ds: one Sync makes both durable.
func (ds *DirSyncs) Take(o *DirSyncs) {
	o.mu.Lock()
	dirs, files := o.dirs, o.files
	o.dirs, o.files = nil, nil
	o.mu.Unlock()
	for d := range dirs {
		ds.add(d, "")
	}
	for f := range files {
		ds.add(filepath.Dir(f), f)
	}
}

// Forget drops what ds waits for, unsynced: its shards were deleted.
func (ds *DirSyncs) Forget() {
	ds.mu.Lock()
	ds.dirs, ds.files = nil, nil
	ds.mu.Unlock()
}

// syncers bounds the fsyncs one Sync runs at once.
const syncers = 32

// Sync fsyncs every shard file (with DeferFiles) and directory gathered
// since the last Sync, at once, and fails if any of them could not be:
// then the bytes or the names of those shards may not survive a crash.
func (ds *DirSyncs) Sync() error {
	ds.mu.Lock()
	dirs, files := ds.dirs, ds.files
	ds.dirs, ds.files = nil, nil
	ds.mu.Unlock()
	n := len(dirs) + len(files)
	errs := make(chan error, n)
	sem := make(chan struct{}, syncers)
	run := func(f func() error) {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			errs <- f()
		}()
	}
	for file := range files {
		run(func() error { return syncFileHook(file) })
	}
	for dir := range dirs {
		run(func() error { return syncDirHook(dir) })
	}
	var all []error
	for range n {
		if err := <-errs; err != nil {
			all = append(all, err)
		}
	}
	return errors.Join(all...)
}

// GoneError is a sync that found its shard file (or directory) gone:
// its disk was wiped or replaced after the file was written. There is
// nothing left to make durable: the shard is lost, as if the disk had
// died just after a sync, and its blob is as if written without it.
type GoneError struct {
	Path string
	Err  error
}

func (e *GoneError) Error() string { return "sync shard: " + e.Path + " is gone: " + e.Err.Error() }
func (e *GoneError) Unwrap() error { return e.Err }

// GonePaths returns the paths of err's GoneErrors (err as Sync returns
// it, maybe several joined), and whether err holds nothing else.
func GonePaths(err error) (paths []string, onlyGone bool) {
	if err == nil {
		return nil, false
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	onlyGone = true
	for _, e := range errs {
		var g *GoneError
		if errors.As(e, &g) {
			paths = append(paths, g.Path)
		} else {
			onlyGone = false
		}
	}
	return paths, onlyGone
}

// syncFileHook is syncFile; a test makes it fail.
var syncFileHook = syncFile

// syncFile fsyncs the shard file at path: its bytes and size.
func syncFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &GoneError{Path: path, Err: err}
	}
	if err != nil {
		return fmt.Errorf("sync shard: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync shard: %w", err)
	}
	return nil
}

// syncDirHook is syncDir; a test counts the calls or makes them fail.
var syncDirHook = syncDir

// syncDir fsyncs directory dir, so the names in it survive a crash.
func syncDir(dir string) error {
	df, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return &GoneError{Path: dir, Err: err}
	}
	if err != nil {
		return fmt.Errorf("sync shard directory: %w", err)
	}
	defer df.Close()
	if err := df.Sync(); err != nil {
		return fmt.Errorf("sync shard directory: %w", err)
	}
	return nil
}

// commit makes the shard whole under its name; with ds nil its
// directory is fsync'd too, else ds is told to.
func (w *fileWriter) commit(ds *DirSyncs) error {
	if err := w.finish(); err != nil {
		w.Abort()
		return err
	}
	deferFile := ds != nil && ds.DeferFiles
	if !deferFile {
		if err := w.f.Sync(); err != nil {
			w.Abort()
			return fmt.Errorf("fsync shard: %w", err)
		}
	}
	dir := filepath.Dir(w.dst)
	if err := w.publish(); err != nil {
		w.Abort()
		return fmt.Errorf("commit shard: %w", err)
	}
	// Whole (and fsync'd, unless that is left to ds) under its name
	// already: a close that fails loses nothing.
	w.f.Close()
	if ds != nil {
		file := ""
		if deferFile {
			file = w.dst
		}
		ds.add(dir, file)
		return nil
	}
	// Best effort, as it always was: the shard is whole under its name
	// either way.
	syncDirHook(dir)
	return nil
}

// publish puts the whole, fsync'd file under its name (replacing a
// shard of that name), creating its directory when it is missing.
func (w *fileWriter) publish() error {
	err := w.link()
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(filepath.Dir(w.dst), 0o700); err == nil {
			err = w.link()
		}
	}
	return err
}

func (w *fileWriter) link() error {
	if !w.unnamed {
		return os.Rename(w.f.Name(), w.dst)
	}
	err := linkFile(w.f, w.dst)
	if !errors.Is(err, fs.ErrExist) {
		return err
	}
	// A shard of that name is there (a heal rewriting a damaged one):
	// linked under a temporary name first, then renamed over it, so the
	// name holds the old shard or the new one, never neither.
	tmp := filepath.Join(filepath.Dir(w.f.Name()), filepath.Base(w.dst)+"."+randomSuffix())
	if err := linkFile(w.f, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, w.dst); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// linkFile gives the unnamed file f the name dst.
func linkFile(f *os.File, dst string) error {
	fd := int(f.Fd())
	err := unix.Linkat(fd, "", unix.AT_FDCWD, dst, unix.AT_EMPTY_PATH)
	if err == unix.EPERM || err == unix.EINVAL {
		// AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH: the file's
		// /proc name does not.
		err = unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), unix.AT_FDCWD, dst, unix.AT_SYMLINK_FOLLOW)
	}
	if err != nil {
		return &os.LinkError{Op: "link", Old: f.Name(), New: dst, Err: err}
	}
	return nil
}

func randomSuffix() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (w *fileWriter) Abort() {
	w.dropStage()
	w.f.Close()
	if !w.unnamed {
		os.Remove(w.f.Name())
	}
}

// Open reads shard name from offset.
func (d *Dir) Open(name string, offset int64) (io.ReadCloser, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	f, err := os.Open(d.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s on %s", ErrNotFound, name, d.id)
	}
	if err != nil {
		return nil, err
	}
	if offset > 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

// Remove deletes shard name; a missing shard is not an error.
func (d *Dir) Remove(name string) error {
	if err := validName(name); err != nil {
		return err
	}
	err := os.Remove(d.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// List returns the names of all shards on the disk.
func (d *Dir) List() ([]string, error) {
	var out []string
	err := filepath.WalkDir(filepath.Join(d.root, "shards"), func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() {
			out = append(out, e.Name())
		}
		return nil
	})
	return out, err
}

// Usage reports the size of the filesystem holding the disk and its free
// space.
func (d *Dir) Usage() (total, free uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(d.root, &st); err != nil {
		return 0, 0, err
	}
	return st.Blocks * uint64(st.Bsize), st.Bavail * uint64(st.Bsize), nil
}

// Filesystem names the filesystem holding the disk (its device number):
// directories with the same name share one filesystem's space.
func (d *Dir) Filesystem() (string, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(d.root, &st); err != nil {
		return "", fmt.Errorf("stat disk directory: %w", err)
	}
	return fmt.Sprintf("dev-%d", st.Dev), nil
}

// BlockOpener is a Disk whose shards can be read block by block with
// direct I/O (Dir is; a wrapper that injects faults is not, and its
// shards are read through Open).
type BlockOpener interface {
	OpenBlocks(name string) (*BlockReader, error)
}

// BlockReader reads blocks of one shard file at any offset, with
// O_DIRECT straight into the caller's memory where that memory has
// room for the page-aligned range around the block (see ReadBlock):
// no page cache, no copy out of it. A streaming GET spent about 60% of
// rackd's CPU copying shard blocks out of the page cache.
type BlockReader struct {
	f      *os.File
	direct bool // f is open with O_DIRECT
}

// openDirectHook opens a file for direct reads; a test makes it
// refuse, as a filesystem without direct I/O does.
var openDirectHook = func(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_DIRECT, 0)
}

// OpenBlocks opens shard name for ReadBlock: with O_DIRECT, or through
// the page cache where the filesystem refuses it (EINVAL), as shard
// writers fall back.
func (d *Dir) OpenBlocks(name string) (*BlockReader, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	p := d.path(name)
	f, err := openDirectHook(p)
	direct := err == nil
	if errors.Is(err, syscall.EINVAL) {
		f, err = os.Open(p)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s on %s", ErrNotFound, name, d.id)
	}
	if err != nil {
		return nil, err
	}
	return &BlockReader{f: f, direct: direct}, nil
}

// Direct reports whether the reader reads with direct I/O.
func (r *BlockReader) Direct() bool { return r.direct }

// Close closes the shard file.
func (r *BlockReader) Close() error { return r.f.Close() }

// directRange places the pages covering file bytes [off, off+n) in
// buf[:cap(buf)] from its first page boundary: it returns that slice
// of buf and where the n bytes start in it, or false when they do not
// fit.
func directRange(buf []byte, off int64, n int) ([]byte, int, bool) {
	buf = buf[:cap(buf)]
	if len(buf) == 0 {
		return nil, 0, false
	}
	first := (directAlign - pageOffset(buf)) % directAlign
	head := int(off % directAlign)
	need := (head + n + directAlign - 1) &^ (directAlign - 1)
	if first+need > len(buf) {
		return nil, 0, false
	}
	return buf[first : first+need], head, true
}

// ReadBlock returns the n bytes of the shard at off, read into buf's
// memory (to its capacity). A direct reader reads the pages covering
// them into buf at their page offsets, so they land in buf just after
// what precedes them in the file (a block's checksum before its data):
// the returned slice lies in buf, not necessarily at its start. Where
// buf has no room for that or the reader is not direct, the
// bytes are read through the page cache into buf[:n]. direct says how
// they were read; whether buf has that room is directRange's ok. A direct read of bytes still dirty in the page cache
// (a shard's tail just written through it) is coherent: the kernel
// writes that range back first.
func (r *BlockReader) ReadBlock(buf []byte, off int64, n int) (block []byte, direct bool, err error) {
	if r.direct {
		if dst, head, ok := directRange(buf, off, n); ok {
			err := preadFull(r.f, dst, off-int64(head), head+n)
			if err == nil {
				return dst[head : head+n : head+n], true, nil
			}
			if !errors.Is(err, syscall.EINVAL) {
				return nil, false, err
			}
			// Refused after all (an odd device's alignment): through
			// the page cache from now on.
			if err := SetDirect(r.f, false); err != nil {
				return nil, false, err
			}
			r.direct = false
		} else {
			// This buffer has no room: this read goes through the page
			// cache.
			if err := SetDirect(r.f, false); err != nil {
				return nil, false, err
			}
			defer SetDirect(r.f, true)
		}
	}
	if err := preadFull(r.f, buf[:n], off, n); err != nil {
		return nil, false, err
	}
	return buf[:n:n], false, nil
}

// preadFull reads into dst at off until at least want bytes are in (a
// direct read of the file's last page ends at the end of the file). A
// regular file's read is short only at its end.
func preadFull(f *os.File, dst []byte, off int64, want int) error {
	fd := int(f.Fd())
	got := 0
	for got < want {
		m, err := unix.Pread(fd, dst[got:], off+int64(got))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &fs.PathError{Op: "read", Path: f.Name(), Err: err}
		}
		short := m < len(dst)-got
		got += m
		if short && got < want {
			return fmt.Errorf("read %s at %d: %w", f.Name(), off+int64(got), io.ErrUnexpectedEOF)
		}
	}
	return nil
}
