package block

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/storage/blob"
	"github.com/rackstack/rackstack/storage/disk"
)

// zeroCost is what a zeroed page counts against DirtyLimit and FoldBytes:
// it holds no data, only a map entry, but a trim of a whole disk must not
// grow the maps without bound either.
const zeroCost = 512

// loc is where the journal holds a page.
type loc struct {
	seg *SegmentRow
	off int64 // byte offset in the segment's blob; -1: the page is zero
}

// Volume is an open volume: the NBD server's Device. Writes are cached
// until Flush (see DESIGN.md); all methods are safe for concurrent use.
type Volume struct {
	s        *Store
	id       string
	gen      uint64
	readOnly bool
	k, m     int

	foldMu  sync.Mutex // one fold at a time
	folding bool       // a fold holds foldMu (under mu; sealed broadcasts its end)

	mu         sync.RWMutex
	size       int64
	dirty      map[int64][]byte // page → data; nil data: a zero page
	dirtyBytes int64
	// owners maps the first byte of every cached page that is a slice of
	// a buffer WriteOwned took over (in the dirty or in a sealed map) to
	// that buffer, which goes back to its owner once no page uses it.
	owners map[*byte]*ownedBuf
	// idle is the memory of handed-over buffers that no cached page
	// uses but that other pages of theirs keep from going back: it
	// counts against DirtyLimit with the dirty pages, so rewriting most
	// of each buffer cannot pin more memory than the limit.
	idle     int64
	inflight []*sealedMap // the maps flushes are writing now, oldest first
	// spare is the map of a flush that was written, emptied for the
	// next dirty map: a fresh one cost its allocation and the growth of
	// its buckets at every flush of a sequential writer.
	spare   map[int64][]byte
	overlay map[int64]loc
	segs    []*SegmentRow // the journal, oldest first
	journal int64
	extents map[int64]*ExtentRow
	err     error // sticky: fenced, deleted or closed
	// spilling is set while a writer flushes because the cache is full,
	// until its flush has taken the cache. sealed (on mu) is signalled
	// when a flush has taken the cache, when a spill ends and when a
	// flush is done.
	spilling bool
	sealed   *sync.Cond

	// Write-back (DESIGN.md): the parts of spills written without
	// fsync and not yet proposed, oldest first, what they weigh, when
	// the oldest was held, and the files and directories their blobs
	// wait to have synced. pendPages and pendExt are the pending
	// overlay: where held parts put pages and whole extents.
	held      []*heldPart
	heldBytes int64
	heldSince time.Time
	heldN     uint64
	heldSyncs *disk.DirSyncs
	pendPages map[int64]pendPage
	pendExt   map[int64]pendExt

	foldCh chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

// Open opens a volume. Opening a volume takes its writer fence: a writer
// that opened it before can no longer commit. A snapshot opens read-only
// and takes no fence.
func (s *Store) Open(ctx context.Context, id string) (*Volume, error) {
	row, err := s.Info(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("open volume %s: %w", id, err)
	}
	v := &Volume{s: s, id: id, readOnly: row.Kind == KindSnapshot, k: row.K, m: row.M,
		dirty: map[int64][]byte{}, owners: map[*byte]*ownedBuf{}, overlay: map[int64]loc{}, extents: map[int64]*ExtentRow{},
		heldSyncs: &disk.DirSyncs{DeferFiles: true}, pendPages: map[int64]pendPage{}, pendExt: map[int64]pendExt{}}
	v.sealed = sync.NewCond(&v.mu)
	if !v.readOnly {
		res, err := s.propose(ctx, cmdOpen, idCmd{ID: id})
		if err != nil {
			return nil, fmt.Errorf("open volume %s: %w", id, err)
		}
		var n VolumeRow
		if err := res.Decode(&n); err != nil {
			return nil, fmt.Errorf("open volume %s: %w", id, err)
		}
		row = &n
	}
	v.gen, v.size = row.Gen, row.Size
	tx, err := store.AfterWrite(ctx, s.cfg.Repl)
	if err != nil {
		return nil, fmt.Errorf("open volume %s: %w", id, err)
	}
	for _, e := range extentsOf(tx, id) {
		v.extents[e.Index] = e
	}
	for _, sg := range segmentsOf(tx, id) {
		v.addSegment(sg)
	}
	if !v.readOnly {
		ctx, cancel := context.WithCancel(context.Background())
		v.cancel, v.foldCh, v.done = cancel, make(chan struct{}, 1), make(chan struct{})
		go v.folder(ctx)
		s.mu.Lock()
		s.open[id] = v
		s.mu.Unlock()
		v.kickFold()
	}
	return v, nil
}

// ID is the volume's id.
func (v *Volume) ID() string { return v.id }

// ReadOnly says whether writes are refused (a snapshot).
func (v *Volume) ReadOnly() bool { return v.readOnly }

// Size is the volume's size in bytes.
func (v *Volume) Size() int64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.size
}

func (v *Volume) grow(size int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.size = max(v.size, size)
}

// addSegment puts a committed segment into the overlay, but for the pages
// of extents written whole after it. Caller holds mu (or owns v).
func (v *Volume) addSegment(sg *SegmentRow) {
	off := int64(0)
	for _, r := range sg.Runs {
		for p := r.Page; p < r.Page+r.Count; p++ {
			if supersedes(v.extents[p/pagesPer], sg) {
				if !r.Zero {
					off += PageSize
				}
				continue
			}
			if r.Zero {
				v.overlay[p] = loc{seg: sg, off: -1}
				v.journal += zeroCost
			} else {
				v.overlay[p] = loc{seg: sg, off: off}
				off += PageSize
				v.journal += PageSize
			}
		}
	}
	v.segs = append(v.segs, sg)
}

func (v *Volume) check(off, n int64, write bool) error {
	if write && v.readOnly {
		return fmt.Errorf("write %s: %w", v.id, ErrReadOnly)
	}
	if v.err != nil {
		return v.err
	}
	if off < 0 || n < 0 || off+n > v.size {
		return fmt.Errorf("%w: range %d+%d is outside the volume's %d bytes", ErrInvalid, off, n, v.size)
	}
	return nil
}

// maxSealed is how many sealed maps may be in flight at once: a flush
// writes its blobs while the one before it is still writing or proposing,
// so the disks are not idle between flushes (DESIGN.md, Overlapping
// flushes).
const maxSealed = 2

// sealedMap is the cache a flush has taken. done (on mu) is set once the
// flush has committed it or failed (err), and no earlier map is in flight.
type sealedMap struct {
	pages map[int64][]byte
	done  bool
	err   error
}

// source is where a run of bytes below the cache comes from.
type source struct {
	key  string // "" for zeroes
	l    blob.Layout
	size int64
	off  int64
}

// lower returns where page is below the dirty and in-flight maps. Caller
// holds mu.
func (v *Volume) lower(page int64) source {
	if src, ok := v.pending(page); ok {
		return src
	}
	if lc, ok := v.overlay[page]; ok {
		if lc.off < 0 {
			return source{}
		}
		return source{key: lc.seg.Blob, l: lc.seg.Layout, size: lc.seg.Size, off: lc.off}
	}
	if e := v.extents[page/pagesPer]; e != nil {
		return source{key: e.Blob, l: e.Layout, size: e.blobSize(), off: e.Off + (page%pagesPer)*PageSize}
	}
	return source{}
}

// heldPart is a spill's part of a block.append, written without fsync
// and held until a flush commits it (DESIGN.md, Write-back). n numbers
// it among the volume's held parts; sg has no sequence number yet.
type heldPart struct {
	n       uint64
	sg      *SegmentRow
	whole   []ExtentRow
	missing []int            // shards sg was written without
	short   map[string][]int // shards whole's blobs were written without
	bytes   int64
	// proposed: a proposal of unknown outcome carried it, so it may be
	// committed: its blobs are never deleted.
	proposed bool
}

func (h *heldPart) part() appendPart { return appendPart{Segment: *h.sg, Extents: h.whole} }

// pendPage is where a held part put a page: off in sg's blob, -1 zero.
type pendPage struct {
	n   uint64
	sg  *SegmentRow
	off int64
}

// pendExt is an extent a held part wrote whole.
type pendExt struct {
	n   uint64
	row *ExtentRow
}

// pending returns where the held parts put page, if they did: the newer
// of the page's and its extent's. Caller holds mu.
func (v *Volume) pending(page int64) (source, bool) {
	if len(v.held) == 0 {
		return source{}, false
	}
	pp, okp := v.pendPages[page]
	pe, oke := v.pendExt[page/pagesPer]
	if okp && (!oke || pe.n < pp.n) {
		if pp.off < 0 {
			return source{}, true
		}
		return source{key: pp.sg.Blob, l: pp.sg.Layout, size: pp.sg.Size, off: pp.off}, true
	}
	if oke {
		e := pe.row
		return source{key: e.Blob, l: e.Layout, size: e.blobSize(), off: e.Off + (page%pagesPer)*PageSize}, true
	}
	return source{}, false
}

// forEachPage calls f for every page sg holds, with its offset in the
// blob (-1: a zero page).
func forEachPage(sg *SegmentRow, f func(page, off int64)) {
	off := int64(0)
	for _, r := range sg.Runs {
		for p := r.Page; p < r.Page+r.Count; p++ {
			if r.Zero {
				f(p, -1)
			} else {
				f(p, off)
				off += PageSize
			}
		}
	}
}

// hold puts a written part into the pending overlay. Caller holds mu.
func (v *Volume) hold(h *heldPart) {
	v.heldN++
	h.n = v.heldN
	for k := range h.whole {
		v.pendExt[h.whole[k].Index] = pendExt{n: h.n, row: &h.whole[k]}
	}
	forEachPage(h.sg, func(page, off int64) { v.pendPages[page] = pendPage{n: h.n, sg: h.sg, off: off} })
	if len(v.held) == 0 {
		v.heldSince = time.Now()
	}
	v.held = append(v.held, h)
	v.heldBytes += h.bytes
}

// unpend takes a held part out of the pending overlay (it committed, or
// the volume failed). Caller holds mu.
func (v *Volume) unpend(h *heldPart) {
	for _, e := range h.whole {
		if pe, ok := v.pendExt[e.Index]; ok && pe.n == h.n {
			delete(v.pendExt, e.Index)
		}
	}
	forEachPage(h.sg, func(page, _ int64) {
		if pp, ok := v.pendPages[page]; ok && pp.n == h.n {
			delete(v.pendPages, page)
		}
	})
	v.heldBytes -= h.bytes
}

// cached returns the page from the dirty map or, newest first, the maps
// flushes are writing. Caller holds mu.
func (v *Volume) cached(page int64) ([]byte, bool) {
	if b, ok := v.dirty[page]; ok {
		return b, true
	}
	return v.sealedPage(page, 0)
}

// sealedPage returns the page from the newest in-flight map at or after
// inflight[from]. Caller holds mu.
func (v *Volume) sealedPage(page int64, from int) ([]byte, bool) {
	for i := len(v.inflight) - 1; i >= from; i-- {
		if b, ok := v.inflight[i].pages[page]; ok {
			return b, true
		}
	}
	return nil, false
}

func (v *Volume) readBlob(ctx context.Context, src source, dst []byte) error {
	if src.key == "" {
		clear(dst)
		return nil
	}
	res, err := v.s.cfg.Blobs.ReadAt(ctx, src.key, src.l, src.size, dst, src.off)
	if err != nil {
		// The rows this volume read at Open may be stale: the rebalancer
		// may have moved the blob since (Relocate) and deleted the shards
		// it left. Read again where the state says it lives now.
		if l, ok := v.s.layoutOf(ctx, src.key); ok && !reflect.DeepEqual(l, src.l) {
			res, err = v.s.cfg.Blobs.ReadAt(ctx, src.key, l, src.size, dst, src.off)
		}
	}
	if err != nil {
		return fmt.Errorf("read volume %s: %w", v.id, err)
	}
	if res.Degraded {
		v.s.degraded(ctx, src.key, src.l, res.BadShards)
	}
	return nil
}

// ReadAt reads len(p) bytes at off.
func (v *Volume) ReadAt(p []byte, off int64) (int, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if err := v.check(off, int64(len(p)), false); err != nil {
		return 0, err
	}
	if err := v.readLocked(context.Background(), p, off); err != nil {
		return 0, err
	}
	return len(p), nil
}

// readLocked reads p at off, coalescing runs of pages that are contiguous
// in one blob into one read. Caller holds mu.
func (v *Volume) readLocked(ctx context.Context, p []byte, off int64) error {
	var pend source
	var pendDst []byte
	var pendStart int64 // where pendDst begins in p
	flush := func() error {
		if pendDst == nil {
			return nil
		}
		err := v.readBlob(ctx, pend, pendDst)
		pendDst = nil
		return err
	}
	end := off + int64(len(p))
	for pos := off; pos < end; {
		page, in := pos/PageSize, pos%PageSize
		n := min(PageSize-in, end-pos)
		dst := p[pos-off : pos-off+n]
		if b, ok := v.cached(page); ok {
			if b == nil {
				clear(dst)
			} else {
				copy(dst, b[in:in+n])
			}
		} else {
			src := v.lower(page)
			src.off += in
			if src.key == "" {
				src.off = 0
			}
			start := pos - off
			if pendDst != nil && pend.key == src.key && (src.key == "" || pend.off+int64(len(pendDst)) == src.off) &&
				pendStart+int64(len(pendDst)) == start {
				pendDst = p[pendStart : start+n]
			} else {
				if err := flush(); err != nil {
					return err
				}
				pend, pendDst, pendStart = src, dst, start
			}
		}
		pos += n
	}
	return flush()
}

// WriteAt writes p at off into the volume's cache; it is durable once
// Flush returns.
func (v *Volume) WriteAt(p []byte, off int64) (int, error) { return v.write(p, off, nil) }

// WriteOwned is WriteAt for a caller that hands p over: the cache keeps
// p's whole pages instead of copying each into a page of its own (the
// NBD server's write payloads, 1 MiB of a sequential writer, are not
// copied again). The caller must not use p until release (if not nil) is
// called, once no page of the cache uses p any more: after the flush
// that wrote it, or when later writes replaced its pages. release may be
// called with the volume's lock held, so it must not call the volume;
// it is never called for the pages a closed volume still held.
func (v *Volume) WriteOwned(p []byte, off int64, release func()) (int, error) {
	return v.write(p, off, &ownedBuf{release: release})
}

// ownedBuf is a buffer WriteOwned took over: refs counts the cached pages
// that are slices of it (and the write while it runs), idle the bytes of
// its pages no longer cached.
type ownedBuf struct {
	refs    int
	idle    int64
	release func()
}

// unref drops a cached page that was replaced or written: its buffer
// goes back once no other page uses it. Caller holds mu.
func (v *Volume) unref(b []byte) {
	if len(b) == 0 {
		return
	}
	o, ok := v.owners[&b[0]]
	if !ok {
		return
	}
	delete(v.owners, &b[0])
	v.putBack(o, PageSize)
}

// putBack drops one reference to o, for n bytes of it no longer used,
// and gives o back with the last. Caller holds mu.
func (v *Volume) putBack(o *ownedBuf, n int64) {
	if o.refs--; o.refs > 0 {
		o.idle += n
		v.idle += n
		return
	}
	v.idle -= o.idle
	if o.release != nil {
		o.release()
	}
}

func (v *Volume) write(p []byte, off int64, own *ownedBuf) (int, error) {
	if err := v.reserve(int64(len(p)), off); err != nil {
		if own != nil && own.release != nil {
			own.release() // no page of it was taken
		}
		return 0, err
	}
	defer v.mu.Unlock()
	if own != nil {
		// The pages taken hold a reference each, and the write one
		// until it ends: a write that takes no whole page gives p back
		// at once.
		own.refs = 1
		defer v.putBack(own, 0) // deferred after the unlock: runs before it
	}
	end := off + int64(len(p))
	for pos := off; pos < end; {
		page, in := pos/PageSize, pos%PageSize
		n := min(PageSize-in, end-pos)
		if own != nil && n == PageSize {
			if old, ok := v.dirty[page]; !ok {
				v.dirtyBytes += PageSize
			} else if old == nil {
				v.dirtyBytes += PageSize - zeroCost
			} else {
				v.unref(old)
			}
			i := pos - off
			b := p[i : i+PageSize : i+PageSize]
			v.dirty[page] = b
			v.owners[&b[0]] = own
			own.refs++
			pos += n
			continue
		}
		buf, err := v.pageForWrite(page, n < PageSize)
		if err != nil {
			return int(pos - off), err
		}
		copy(buf[in:], p[pos-off:pos-off+n])
		pos += n
	}
	return len(p), nil
}

// reserve waits until the cache has room for n more bytes, flushing it
// when it has not, and returns with mu held.
//
// One writer flushes; the others wait only until that flush has sealed
// the cache (not until it is durable), so they fill the next cache while
// the flush writes the last: waiting for the whole flush made a
// sequential writer stop for every flush.
func (v *Volume) reserve(n, off int64) error {
	v.mu.Lock()
	for {
		if err := v.check(off, n, true); err != nil {
			v.mu.Unlock()
			return err
		}
		if v.dirtyBytes == 0 || v.dirtyBytes+v.idle+n <= v.s.cfg.DirtyLimit {
			return nil
		}
		if v.spilling {
			v.sealed.Wait()
			continue
		}
		v.spilling = true
		v.mu.Unlock()
		err := v.flush(context.Background(), true) // ends the spill once it has sealed
		v.mu.Lock()
		if err != nil {
			v.mu.Unlock()
			return err
		}
	}
}

// pageForWrite returns the dirty page to change in place, making it from
// what the page holds now when the write covers only part of it. Caller
// holds mu.
func (v *Volume) pageForWrite(page int64, partial bool) ([]byte, error) {
	if b, ok := v.dirty[page]; ok && b != nil {
		return b, nil
	} else if ok {
		v.dirtyBytes += PageSize - zeroCost
		b = make([]byte, PageSize)
		v.dirty[page] = b
		return b, nil
	}
	b := make([]byte, PageSize)
	if partial {
		if old, ok := v.sealedPage(page, 0); ok {
			copy(b, old) // nil (a zero page) copies nothing
		} else if err := v.readBlob(context.Background(), v.lower(page), b); err != nil {
			return nil, err
		}
	}
	v.dirty[page] = b
	v.dirtyBytes += PageSize
	return b, nil
}

// WriteZeroes makes n bytes at off read as zeroes. Whole pages cost no
// data in the journal, and extents left all zero are deallocated.
func (v *Volume) WriteZeroes(off, n int64) error {
	v.mu.RLock()
	err := v.check(off, n, true)
	v.mu.RUnlock()
	if err != nil {
		return err
	}
	end := off + n
	first := (off + PageSize - 1) / PageSize * PageSize // first page boundary at or after off
	last := end / PageSize * PageSize                   // last page boundary at or before end
	if first >= last {
		_, err := v.WriteAt(make([]byte, n), off)
		return err
	}
	if first > off {
		if _, err := v.WriteAt(make([]byte, first-off), off); err != nil {
			return err
		}
	}
	if end > last {
		if _, err := v.WriteAt(make([]byte, end-last), last); err != nil {
			return err
		}
	}
	off, end = first, last
	for off < end {
		chunk := min(end-off, v.s.cfg.DirtyLimit/zeroCost*PageSize)
		if err := v.reserve(chunk/PageSize*zeroCost, off); err != nil {
			return err
		}
		for p := off / PageSize; p < (off+chunk)/PageSize; p++ {
			// A page that reads as zero without a cached page over it
			// stays so: zeroing a thin range costs nothing.
			if b, ok := v.cached(p); (ok && b == nil) || (!ok && v.lower(p).key == "") {
				continue
			}
			if b, ok := v.dirty[p]; !ok {
				v.dirtyBytes += zeroCost
			} else if b != nil {
				v.dirtyBytes -= PageSize - zeroCost
				v.unref(b)
			}
			v.dirty[p] = nil
		}
		v.mu.Unlock()
		off += chunk
	}
	return nil
}

// Trim discards n bytes at off: they read as zeroes afterwards.
func (v *Volume) Trim(off, n int64) error { return v.WriteZeroes(off, n) }

// Range is a run of a volume that is allocated (Zero false) or reads as
// zeroes without using space (Zero true).
type Range struct {
	Off  int64
	Len  int64
	Zero bool
}

// Extents describes [off, off+n) as allocated and zero ranges, for NBD
// block status.
func (v *Volume) Extents(off, n int64) ([]Range, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if err := v.check(off, n, false); err != nil {
		return nil, err
	}
	var out []Range
	add := func(o, l int64, zero bool) {
		if k := len(out) - 1; k >= 0 && out[k].Zero == zero && out[k].Off+out[k].Len == o {
			out[k].Len += l
			return
		}
		out = append(out, Range{Off: o, Len: l, Zero: zero})
	}
	end := off + n
	for pos := off; pos < end; {
		page := pos / PageSize
		l := min(PageSize-pos%PageSize, end-pos)
		zero := true
		if b, ok := v.cached(page); ok {
			zero = b == nil
		} else {
			zero = v.lower(page).key == ""
		}
		add(pos, l, zero)
		pos += l
	}
	return out, nil
}

// pagesReader streams the data pages of a segment.
type pagesReader struct {
	pages [][]byte
	cur   []byte
}

func (r *pagesReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if len(r.pages) == 0 {
			return 0, io.EOF
		}
		r.cur, r.pages = r.pages[0], r.pages[1:]
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// Flush makes every write before it durable: the cached pages become one
// journal segment, recorded with one command (DESIGN.md).
func (v *Volume) Flush(ctx context.Context) error { return v.flush(ctx, false) }

// flush flushes the cache; spill says that it is full, and nothing asked
// for durability: extents it holds only in part may stay in it, and what
// it writes is held, not committed, while the held parts stay within
// HoldBytes and HoldAge (DESIGN.md, Write-back). A spill ends (spilling
// cleared) once the cache is sealed or nothing is to be sealed.
//
// Flushes overlap: up to maxSealed sealed maps write their blobs at once,
// and each proposes (or holds) its part only after the one sealed before
// it has committed or held its own, so commands keep the order of the
// writes (DESIGN.md).
func (v *Volume) flush(ctx context.Context, spill bool) error {
	if v.readOnly {
		return nil
	}
	implicit := spill // spill is cleared once the spill ends
	// The journal at its cap: fold before it grows more. A fold that
	// runs already is waited for, and is enough if it brings the
	// journal back under the cap: folding again what flushes committed
	// meanwhile (or waiting for the folder's next fold) doubled the wait
	// of a writer held at the cap.
	jcap := journalCap(v.s.cfg.FoldBytes)
	v.mu.Lock()
	for v.journal > jcap && v.folding && v.err == nil {
		v.sealed.Wait()
	}
	over := v.journal > jcap
	v.mu.Unlock()
	if over {
		if err := v.foldOver(ctx, jcap); err != nil {
			v.s.log.Warn("fold volume journal before flush", "volume", v.id, "err", err)
		}
	}
	v.mu.Lock()
	endSpill := func() {
		if spill {
			spill, v.spilling = false, false
			v.sealed.Broadcast()
		}
	}
	for {
		if v.err != nil {
			endSpill()
			v.mu.Unlock()
			return v.err
		}
		if len(v.dirty) == 0 {
			// Nothing new: durable once the maps in flight are, and
			// the parts held committed (an empty map sealed commits
			// them).
			endSpill()
			if len(v.inflight) == 0 {
				if implicit || len(v.held) == 0 {
					v.mu.Unlock()
					return nil
				}
				break
			}
			last := v.inflight[len(v.inflight)-1]
			for !last.done {
				v.sealed.Wait()
			}
			if last.err != nil && len(v.dirty) == 0 {
				v.mu.Unlock()
				return last.err
			}
			if last.err == nil && (implicit || len(v.held) == 0) {
				v.mu.Unlock()
				return nil
			}
			continue // its pages are back in the cache, or parts are held: flush them
		}
		if len(v.inflight) < maxSealed {
			break
		}
		v.sealed.Wait()
	}
	sm := &sealedMap{pages: v.dirty}
	// The next map likely fills like this one: sized so, it does not
	// grow (and rehash) as it fills.
	if v.spare != nil {
		v.dirty, v.spare = v.spare, nil
	} else {
		v.dirty = make(map[int64][]byte, len(sm.pages))
	}
	v.dirtyBytes = 0
	if implicit {
		v.keepPartial(sm.pages)
	}
	var prev *sealedMap
	if n := len(v.inflight); n > 0 {
		prev = v.inflight[n-1]
	}
	v.inflight = append(v.inflight, sm)
	endSpill()
	v.sealed.Broadcast()
	v.mu.Unlock()

	// afterPrev waits until the map sealed before this one is done, and
	// says whether it failed. Caller holds mu.
	afterPrev := func() error {
		for prev != nil && !prev.done {
			v.sealed.Wait()
		}
		if prev != nil && prev.err != nil {
			return fmt.Errorf("flush volume %s: an earlier flush failed: %w", v.id, prev.err)
		}
		return nil
	}
	res, err := v.commit(ctx, sm.pages, implicit, func() error {
		v.mu.Lock()
		defer v.mu.Unlock()
		return afterPrev()
	})

	v.mu.Lock()
	defer v.mu.Unlock()
	// A flush that failed early still finishes in order: then sm is the
	// oldest map in flight.
	afterPrev()
	v.inflight = v.inflight[1:]
	defer v.sealed.Broadcast()
	sm.done, sm.err = true, err
	if err != nil {
		// Keep the pages: a later flush writes them again. Writes made
		// since, and the maps sealed after this one, take precedence.
		for p, b := range sm.pages {
			if _, ok := v.dirty[p]; ok {
				v.unref(b)
				continue
			}
			if _, ok := v.sealedPage(p, 0); ok {
				v.unref(b)
				continue
			}
			v.dirty[p] = b
			if b == nil {
				v.dirtyBytes += zeroCost
			} else {
				v.dirtyBytes += PageSize
			}
		}
		if errors.Is(err, ErrFenced) || errors.Is(err, ErrNotFound) {
			v.err = err
		}
		return err
	}
	// Written (and held, or committed): the buffers handed over go
	// back, and the map is kept for the next seal (nothing reads it
	// once it has left inflight).
	for _, b := range sm.pages {
		v.unref(b)
	}
	clear(sm.pages)
	if v.spare == nil {
		v.spare = sm.pages
	}
	sm.pages = nil
	if res.held {
		return nil // in the pending overlay already
	}
	// The held parts it committed, oldest first, then its own.
	for _, h := range res.committed {
		v.unpend(h)
		v.install(h.sg, h.whole)
	}
	if len(res.committed) > 0 {
		v.held = v.held[len(res.committed):]
	}
	v.install(res.sg, res.whole)
	if v.journal > v.s.cfg.FoldBytes {
		v.kickFold()
	}
	return nil
}

// install puts a committed part into the journal overlay and the
// extents. Caller holds mu.
func (v *Volume) install(sg *SegmentRow, whole []ExtentRow) {
	for k := range whole {
		v.replaceExtent(&whole[k])
	}
	if sg != nil && len(sg.Runs) > 0 {
		v.addSegment(sg)
	}
}

// keepPartial moves the pages of extents that sealing holds only in part
// back into the cache, when the extents it holds whole are at least half
// the cache: a sequential writer completes those extents with its next
// writes, and they are then written whole rather than journaled and
// folded. Caller holds mu.
func (v *Volume) keepPartial(sealing map[int64][]byte) {
	whole := wholeExtents(sealing)
	if int64(len(whole))*ExtentSize*2 < v.s.cfg.DirtyLimit {
		return
	}
	isWhole := map[int64]bool{}
	for _, i := range whole {
		isWhole[i] = true
	}
	for p, b := range sealing {
		if isWhole[p/pagesPer] {
			continue
		}
		delete(sealing, p)
		v.dirty[p] = b
		if b == nil {
			v.dirtyBytes += zeroCost
		} else {
			v.dirtyBytes += PageSize
		}
	}
}

// replaceExtent installs an extent a flush wrote whole: the journal's
// pages of it are superseded. Caller holds mu.
func (v *Volume) replaceExtent(e *ExtentRow) {
	for p := e.Index * pagesPer; p < (e.Index+1)*pagesPer; p++ {
		if lc, ok := v.overlay[p]; ok {
			delete(v.overlay, p)
			if lc.off < 0 {
				v.journal -= zeroCost
			} else {
				v.journal -= PageSize
			}
		}
	}
	v.extents[e.Index] = e
}

// wholeExtents returns, in order, the extents whose every page pages
// holds with data.
func wholeExtents(pages map[int64][]byte) []int64 {
	count := map[int64]int{}
	for p, b := range pages {
		if b != nil {
			count[p/pagesPer]++
		}
	}
	var out []int64
	for i, n := range count {
		if n == pagesPer {
			out = append(out, i)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a] < out[b] })
	return out
}

// packExtents is how many whole extents a flush writes into one blob,
// at most: a file per disk for a whole 32 MiB flush, not one per shard
// (DESIGN.md). packWriters is how many such blobs it writes at once.
const (
	packExtents = 8
	packWriters = 4
)

// writeWhole writes the extents a flush holds whole into new k+m blobs
// of up to packExtents extents each, in parallel. It returns their rows
// (Seq unset) and the shards each blob was written without; on failure
// it deletes what it wrote.
func (v *Volume) writeWhole(ctx context.Context, idx []int64, pages map[int64][]byte, newKey func() string) ([]ExtentRow, map[string][]int, error) {
	rows := make([]ExtentRow, len(idx))
	short := map[string][]int{}
	var packs [][2]int // [first, end) of idx
	for a := 0; a < len(idx); a += packExtents {
		packs = append(packs, [2]int{a, min(a+packExtents, len(idx))})
	}
	errs := make([]error, len(packs))
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, packWriters)
	for n, pk := range packs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			key := newKey()
			l, err := v.s.layout(ctx, key, v.k, v.m, extentShard)
			if err != nil {
				errs[n] = fmt.Errorf("flush volume %s: place extent: %w", v.id, err)
				return
			}
			count := pk[1] - pk[0]
			data := make([][]byte, 0, count*pagesPer)
			for _, i := range idx[pk[0]:pk[1]] {
				for k := range int64(pagesPer) {
					data = append(data, pages[i*pagesPer+k])
				}
			}
			info, err := v.s.cfg.Blobs.Put(blob.WithoutMD5(ctx), key, l, &pagesReader{pages: data})
			if err != nil {
				errs[n] = fmt.Errorf("flush volume %s: write extent: %w", v.id, err)
				return
			}
			for j, i := range idx[pk[0]:pk[1]] {
				rows[pk[0]+j] = ExtentRow{Volume: v.id, Index: i, Blob: key, Layout: l}
				if count > 1 {
					rows[pk[0]+j].Off, rows[pk[0]+j].BlobSize = int64(j)*ExtentSize, int64(count)*ExtentSize
				}
			}
			if len(info.Missing) > 0 {
				mu.Lock()
				short[key] = info.Missing
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		v.deleteExtents(ctx, rows)
		return nil, nil, err
	}
	return rows, short, nil
}

// deleteExtents deletes the blobs of extent rows no command named.
func (v *Volume) deleteExtents(ctx context.Context, rows []ExtentRow) {
	done := map[string]bool{}
	for _, e := range rows {
		if e.Blob == "" || done[e.Blob] {
			continue
		}
		done[e.Blob] = true
		if err := v.s.cfg.Blobs.Delete(ctx, e.Blob, e.Layout); err != nil {
			v.s.log.Debug("delete unused extent", "blob", e.Blob, "err", err)
		}
	}
}

// lostAtQuorum reports whether err, a failed sync of parts' blobs, says
// only that shard files are gone (their disk wiped or replaced between
// their write and the sync) and every blob still has a write quorum of
// shards without them. It then counts the lost shards with those each
// blob was written without, to be healed once the commit names them. A
// gone file has no bytes a failed fsync could have dropped: its blob is
// as if written without it, which the write quorum allows. Otherwise
// the flush fails as for any failed sync.
func lostAtQuorum(err error, parts []*heldPart) bool {
	paths, only := disk.GonePaths(err)
	if !only {
		return false
	}
	lost := map[string][]int{}
	for _, p := range paths {
		// A gone directory's files are gone too, and listed themselves.
		if key, i, ok := blob.ParseShardName(filepath.Base(p)); ok {
			lost[key] = append(lost[key], i)
		}
	}
	keeps := func(l blob.Layout, missing, gone []int) bool {
		n := len(union(missing, gone))
		return l.K+l.M-n >= blob.WriteQuorum(l.K, l.M)
	}
	for _, h := range parts {
		if h.sg.Blob != "" && !keeps(h.sg.Layout, h.missing, lost[h.sg.Blob]) {
			return false
		}
		for _, e := range h.whole {
			if !keeps(e.Layout, h.short[e.Blob], lost[e.Blob]) {
				return false
			}
		}
	}
	for _, h := range parts {
		if h.sg.Blob != "" {
			h.missing = union(h.missing, lost[h.sg.Blob])
		}
		for _, e := range h.whole {
			if gone := lost[e.Blob]; len(gone) > 0 {
				if h.short == nil {
					h.short = map[string][]int{}
				}
				h.short[e.Blob] = union(h.short[e.Blob], gone)
			}
		}
	}
	return true
}

// union is the shard indexes in a or b, each once.
func union(a, b []int) []int {
	out := append([]int(nil), a...)
	for _, i := range b {
		if !slices.Contains(out, i) {
			out = append(out, i)
		}
	}
	return out
}

// syncBlobs makes the blobs a commit names durable (files and
// directories); a test sees what it syncs or makes it fail.
var syncBlobs = (*disk.DirSyncs).Sync

// commitResult is what a flush's commit did: held its part, or committed
// the held parts (oldest first) and its own, sg and whole.
type commitResult struct {
	held      bool
	committed []*heldPart
	sg        *SegmentRow
	whole     []ExtentRow
}

// deletePart deletes the blobs of a part no command named.
func (v *Volume) deletePart(ctx context.Context, sg *SegmentRow, whole []ExtentRow) {
	if sg != nil && sg.Blob != "" {
		if err := v.s.cfg.Blobs.Delete(ctx, sg.Blob, sg.Layout); err != nil {
			v.s.log.Debug("delete unused segment", "blob", sg.Blob, "err", err)
		}
	}
	v.deleteExtents(ctx, whole)
}

// dropHeld ends the write-back of a volume that failed for good: the
// held parts leave the pending overlay, and the blobs of those no
// proposal ever carried are deleted.
func (v *Volume) dropHeld(ctx context.Context) {
	v.mu.Lock()
	held := v.held
	v.held = nil
	for _, h := range held {
		v.unpend(h)
	}
	v.heldSyncs.Forget()
	v.mu.Unlock()
	for _, h := range held {
		if !h.proposed {
			v.deletePart(ctx, h.sg, h.whole)
		}
	}
}

// commit writes sealed pages (a segment blob for most, new extent blobs
// for the extents they hold whole), without fsync, and, once turn (which
// waits for the flushes sealed before) allows it, either holds them (a
// spill within HoldBytes and HoldAge) or makes every held blob and its
// own durable and records the held parts and its own with one command.
func (v *Volume) commit(ctx context.Context, pages map[int64][]byte, spill bool, turn func() error) (commitResult, error) {
	idx := wholeExtents(pages)
	isWhole := map[int64]bool{}
	for _, i := range idx {
		isWhole[i] = true
	}
	order := make([]int64, 0, len(pages))
	for p := range pages {
		if !isWhole[p/pagesPer] {
			order = append(order, p)
		}
	}
	sort.Slice(order, func(i, j int) bool { return order[i] < order[j] })
	sg := &SegmentRow{}
	var data [][]byte
	var missing []int
	var whole []ExtentRow
	short := map[string][]int{}
	// The blobs' shard files share a directory per disk (their keys
	// share the byte that names it). Neither the files nor the
	// directories are fsync'd now: that waits for the commit that
	// names them, once for all the parts it carries (DESIGN.md).
	dirs := &disk.DirSyncs{DeferFiles: true}
	ctx = blob.WithDirSyncs(ctx, dirs)
	newKey := keysIn(randomByte())
	if len(idx) > 0 {
		var err error
		if whole, short, err = v.writeWhole(ctx, idx, pages, newKey); err != nil {
			return commitResult{}, err
		}
	}
	zeros := int64(0)
	for _, p := range order {
		b := pages[p]
		zero := b == nil
		if !zero {
			data = append(data, b)
		} else {
			zeros++
		}
		if k := len(sg.Runs) - 1; k >= 0 && sg.Runs[k].Zero == zero && sg.Runs[k].Page+sg.Runs[k].Count == p {
			sg.Runs[k].Count++
		} else {
			sg.Runs = append(sg.Runs, Run{Page: p, Count: 1, Zero: zero})
		}
	}
	if len(data) > 0 {
		sg.Blob, sg.Size = newKey(), int64(len(data))*PageSize
		l, err := v.s.layout(ctx, sg.Blob, 1, v.m, segmentShard)
		if err != nil {
			v.deleteExtents(ctx, whole)
			return commitResult{}, fmt.Errorf("flush volume %s: place segment: %w", v.id, err)
		}
		sg.Layout = l
		info, err := v.s.cfg.Blobs.Put(blob.WithoutMD5(ctx), sg.Blob, l, &pagesReader{pages: data})
		if err != nil {
			v.deleteExtents(ctx, whole)
			return commitResult{}, fmt.Errorf("flush volume %s: write segment: %w", v.id, err)
		}
		missing = info.Missing
	}
	own := &heldPart{sg: sg, whole: whole, missing: missing, short: short,
		bytes: sg.Size + int64(len(whole))*ExtentSize + zeros*zeroCost}
	if err := turn(); err != nil {
		// Not proposed: nothing will ever name the blobs.
		v.deletePart(ctx, sg, whole)
		return commitResult{}, err
	}
	// Our turn: no flush sealed later holds or proposes until this one
	// is done, so the held parts are ours to commit.
	v.mu.Lock()
	hb := v.s.cfg.HoldBytes
	if spill && hb > 0 && v.heldBytes+own.bytes < hb && (len(v.held) == 0 || time.Since(v.heldSince) < v.s.cfg.HoldAge) {
		v.heldSyncs.Take(dirs)
		v.hold(own)
		v.mu.Unlock()
		return commitResult{held: true}, nil
	}
	held := append([]*heldPart(nil), v.held...)
	all := &disk.DirSyncs{}
	all.Take(v.heldSyncs)
	v.mu.Unlock()
	all.Take(dirs)
	if len(held) == 0 && len(sg.Runs) == 0 && len(whole) == 0 {
		return commitResult{}, nil // an empty map sealed for held parts already committed
	}
	if err := syncBlobs(all); err != nil && !lostAtQuorum(err, append(held, own)) {
		// The bytes of blobs held or written may be lost (after a failed
		// fsync the kernel may drop them): never name them, and fail the
		// volume, which reads as of its last commit once reopened.
		err = fmt.Errorf("flush volume %s: %w", v.id, err)
		v.mu.Lock()
		if v.err == nil {
			v.err = err
		}
		v.mu.Unlock()
		v.dropHeld(ctx)
		v.deletePart(ctx, sg, whole)
		return commitResult{}, err
	}
	cmd := appendCmd{Volume: v.id, Gen: v.gen, Segment: *sg, Extents: whole}
	for _, h := range held {
		cmd.Held = append(cmd.Held, h.part())
	}
	res, err := v.s.cfg.Repl.Propose(ctx, cmdAppend, cmd)
	if err != nil {
		var refused *store.ApplyError
		isRefused := errors.As(err, &refused)
		err = fmt.Errorf("flush volume %s: %w", v.id, translate(err))
		if isRefused {
			// Refused: no row will ever name this flush's blobs. The
			// held parts stay for the next flush, unless the volume is
			// done for.
			v.deletePart(ctx, sg, whole)
			if errors.Is(err, ErrFenced) || errors.Is(err, ErrNotFound) {
				v.mu.Lock()
				v.err = err
				v.mu.Unlock()
				v.dropHeld(ctx)
			}
		} else {
			// The outcome is unknown: the command may still commit, so
			// nothing it names is ever deleted (the next flush proposes
			// the held parts again).
			v.mu.Lock()
			for _, h := range held {
				h.proposed = true
			}
			v.mu.Unlock()
		}
		return commitResult{}, err
	}
	var seq uint64
	if err := res.Decode(&seq); err != nil {
		return commitResult{}, fmt.Errorf("flush volume %s: %w", v.id, err)
	}
	parts := append(held, own)
	for i, h := range parts {
		s := seq - uint64(len(parts)-1-i)
		h.sg.Volume, h.sg.Seq, h.sg.ID = v.id, s, segmentID(v.id, s)
		for k := range h.whole {
			h.whole[k].ID, h.whole[k].Volume, h.whole[k].Seq = extentID(v.id, h.whole[k].Index), v.id, s
		}
		// Written at quorum without some shards: heal them now rather
		// than at the next scrub (only now that a row names them).
		if len(h.missing) > 0 {
			v.s.degraded(ctx, h.sg.Blob, h.sg.Layout, h.missing)
		}
		for _, e := range h.whole {
			if m := h.short[e.Blob]; len(m) > 0 {
				v.s.degraded(ctx, e.Blob, e.Layout, m)
			}
		}
	}
	return commitResult{committed: held, sg: sg, whole: whole}, nil
}

func (v *Volume) kickFold() {
	select {
	case v.foldCh <- struct{}{}:
	default:
	}
}

// folder folds the journal whenever it has grown past FoldBytes, and
// commits the parts spills hold once the oldest is HoldAge old (DESIGN.md,
// Write-back).
func (v *Volume) folder(ctx context.Context) {
	defer close(v.done)
	tick := time.NewTicker(min(v.s.cfg.HoldAge/2, time.Second))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			v.mu.RLock()
			old := len(v.held) > 0 && time.Since(v.heldSince) >= v.s.cfg.HoldAge && v.err == nil
			v.mu.RUnlock()
			if old {
				if err := v.Flush(ctx); err != nil && ctx.Err() == nil {
					v.s.log.Warn("commit held writes of volume", "volume", v.id, "err", err)
				}
			}
			continue
		case <-v.foldCh:
		}
		for {
			v.mu.RLock()
			over := v.journal > v.s.cfg.FoldBytes && v.err == nil
			v.mu.RUnlock()
			if !over {
				break
			}
			if err := v.foldOver(ctx, v.s.cfg.FoldBytes); err != nil {
				if ctx.Err() == nil {
					v.s.log.Warn("fold volume journal", "volume", v.id, "err", err)
				}
				break
			}
		}
	}
}

// Fold folds the whole journal into extents now.
func (v *Volume) Fold(ctx context.Context) error {
	if v.readOnly {
		return nil
	}
	return v.foldOver(ctx, -1)
}

// journalCap is the journal a flush lets grow before it folds (or waits
// for the fold) rather than add to it.
func journalCap(foldBytes int64) int64 { return 4 * foldBytes }

// foldOver folds the segments committed so far into new extent blobs and
// swaps them in with one command, if the journal is still over limit once
// no other fold runs.
func (v *Volume) foldOver(ctx context.Context, limit int64) error {
	v.foldMu.Lock()
	defer v.foldMu.Unlock()
	v.mu.Lock()
	if v.journal <= limit {
		v.mu.Unlock()
		return nil
	}
	v.folding = true
	v.mu.Unlock()
	defer func() {
		v.mu.Lock()
		v.folding = false
		v.sealed.Broadcast()
		v.mu.Unlock()
	}()
	v.mu.RLock()
	segs := append([]*SegmentRow(nil), v.segs...)
	base := map[int64]*ExtentRow{}
	for _, sg := range segs {
		for _, r := range sg.Runs {
			for i := r.Page / pagesPer; i <= (r.Page+r.Count-1)/pagesPer; i++ {
				// An extent written whole after the segment is as the
				// fold would make it already.
				if e := v.extents[i]; !supersedes(e, sg) {
					base[i] = e
				}
			}
		}
	}
	v.mu.RUnlock()
	if len(segs) == 0 {
		return nil
	}
	idx := make([]int64, 0, len(base))
	for i := range base {
		idx = append(idx, i)
	}
	sort.Slice(idx, func(a, b int) bool { return idx[a] < idx[b] })

	cmd := foldCmd{Volume: v.id, Base: map[int64]string{}}
	for _, sg := range segs {
		cmd.Segments = append(cmd.Segments, sg.ID)
	}
	// The new extents are written packExtents to a blob, as a flush
	// writes whole extents, and made durable with one sync of their
	// files and directories before the command that names them: a file
	// and an fsync per shard of every extent made a fold of a random
	// writer's journal (which rewrites most of the volume's extents)
	// wait on hundreds of device flushes.
	dirs := &disk.DirSyncs{DeferFiles: true}
	wctx := blob.WithDirSyncs(ctx, dirs)
	newKey := keysIn(randomByte())
	var written []ExtentRow
	short := map[string][]int{} // extents written without some shards
	undo := func() { v.deleteExtents(ctx, written) }
	scratch := make([]byte, ExtentSize)
	offs := make(map[*SegmentRow][]int64, len(segs))
	for _, sg := range segs {
		offs[sg] = runOffsets(sg)
	}
	// One group of extents is written while the next is read: the
	// reads wait on the disks and the writes mostly on the CPU. Two
	// group buffers, and the Store's foldSlots bound the folds at once.
	v.s.foldSlots <- struct{}{}
	defer func() { <-v.s.foldSlots }()
	type group struct {
		idx []int64 // extents, in order
		buf []byte  // their bytes, one after the other
	}
	free := make(chan []byte, 2)
	for range 2 {
		free <- make([]byte, packExtents*ExtentSize)
	}
	todo := make(chan group)
	var failed atomic.Bool
	var werr error
	wdone := make(chan struct{})
	go func() {
		defer close(wdone)
		for g := range todo {
			if werr == nil {
				werr = v.writeFolded(wctx, g.idx, g.buf, base, newKey, &written, short)
				failed.Store(werr != nil)
			}
			free <- g.buf
		}
	}()
	rerr := func() error {
		defer close(todo)
		g := group{buf: <-free}
		for _, i := range idx {
			if failed.Load() {
				return nil
			}
			e := base[i]
			src := source{}
			if e != nil {
				cmd.Base[i] = e.Blob
				src = source{key: e.Blob, l: e.Layout, size: e.blobSize(), off: e.Off}
			} else {
				cmd.Base[i] = ""
			}
			buf := g.buf[len(g.idx)*ExtentSize : (len(g.idx)+1)*ExtentSize]
			if err := v.readBlob(ctx, src, buf); err != nil {
				return err
			}
			if err := v.applySegments(ctx, i, e, segs, offs, buf, scratch); err != nil {
				return err
			}
			if allZero(buf) {
				continue
			}
			g.idx = append(g.idx, i)
			if len(g.idx) == packExtents {
				todo <- g
				g = group{buf: <-free}
			}
		}
		if len(g.idx) > 0 {
			todo <- g
		}
		return nil
	}()
	<-wdone
	if err := errors.Join(rerr, werr); err != nil {
		undo()
		return err
	}
	if err := syncBlobs(dirs); err != nil {
		undo()
		return fmt.Errorf("fold volume %s: %w", v.id, err)
	}
	cmd.New = written
	if _, err := v.s.cfg.Repl.Propose(ctx, cmdFold, cmd); err != nil {
		var refused *store.ApplyError
		if errors.As(err, &refused) {
			undo()
		}
		return fmt.Errorf("fold volume %s: %w", v.id, translate(err))
	}
	for _, e := range written {
		if missing := short[e.Blob]; len(missing) > 0 {
			v.s.degraded(ctx, e.Blob, e.Layout, missing) // named now: the healer can find it
			delete(short, e.Blob)                        // once per pack
		}
	}

	v.mu.Lock()
	defer v.mu.Unlock()
	folded := map[*SegmentRow]bool{}
	for _, sg := range segs {
		folded[sg] = true
	}
	v.segs = v.segs[len(segs):]
	for p, lc := range v.overlay {
		if folded[lc.seg] {
			delete(v.overlay, p)
		}
	}
	// A flush that wrote an extent whole after the fold committed may
	// have installed it already: it is newer than the fold's.
	for _, i := range idx {
		if v.extents[i] == base[i] {
			delete(v.extents, i)
		}
	}
	for k := range written {
		if _, ok := v.extents[written[k].Index]; !ok {
			v.extents[written[k].Index] = &written[k]
		}
	}
	v.journal = 0
	for _, lc := range v.overlay {
		if lc.off < 0 {
			v.journal += zeroCost
		} else {
			v.journal += PageSize
		}
	}
	return nil
}

// writeFolded writes the folded extents idx, whose bytes are buf one
// after the other, as one pack (writeWhole), and adds their rows to
// written and the shards they were written without to short.
func (v *Volume) writeFolded(ctx context.Context, idx []int64, buf []byte, base map[int64]*ExtentRow, newKey func() string, written *[]ExtentRow, short map[string][]int) error {
	pages := make(map[int64][]byte, len(idx)*pagesPer)
	for n, i := range idx {
		for k := range int64(pagesPer) {
			at := int64(n)*ExtentSize + k*PageSize
			pages[i*pagesPer+k] = buf[at : at+PageSize]
		}
	}
	rows, sh, err := v.writeWhole(ctx, idx, pages, newKey)
	if err != nil {
		return fmt.Errorf("fold volume %s: %w", v.id, err)
	}
	for k := range rows {
		rows[k].ID = extentID(v.id, rows[k].Index)
		if e := base[rows[k].Index]; e != nil {
			rows[k].Seq = e.Seq
		}
	}
	*written = append(*written, rows...)
	maps.Copy(short, sh)
	return nil
}

// applySegments lays the pages the segments hold for extent i over buf,
// oldest segment first, but for those of segments extent e (the one the
// fold read) superseded.
//
// A segment's runs are in page order and its blob holds their pages in
// that order, so the pages it holds of one extent are one contiguous
// range of its blob: that range is read with one read into scratch (at
// most an extent) and scattered, not a read per run. A random writer's
// segment holds about as many runs as pages, and a read per page made
// the fold, which a random writer waits for once the journal is full,
// thousands of small reads per extent.
func (v *Volume) applySegments(ctx context.Context, i int64, e *ExtentRow, segs []*SegmentRow, offs map[*SegmentRow][]int64, buf, scratch []byte) error {
	lo, hi := i*pagesPer, (i+1)*pagesPer
	for _, sg := range segs {
		if supersedes(e, sg) {
			continue
		}
		runs, off := sg.Runs, offs[sg]
		first := sort.Search(len(runs), func(j int) bool { return runs[j].Page+runs[j].Count > lo })
		last := first // runs[first:last] overlap the extent
		for last < len(runs) && runs[last].Page < hi {
			last++
		}
		// The blob range of the extent's pages with data.
		start, end := int64(-1), int64(0)
		for j := first; j < last; j++ {
			if r := runs[j]; !r.Zero {
				a, b := max(r.Page, lo), min(r.Page+r.Count, hi)
				if start < 0 {
					start = off[j] + (a-r.Page)*PageSize
				}
				end = off[j] + (b-r.Page)*PageSize
			}
		}
		var data []byte
		if start >= 0 {
			data = scratch[:end-start]
			src := source{key: sg.Blob, l: sg.Layout, size: sg.Size, off: start}
			if err := v.readBlob(ctx, src, data); err != nil {
				return err
			}
		}
		for j := first; j < last; j++ {
			r := runs[j]
			a, b := max(r.Page, lo), min(r.Page+r.Count, hi)
			dst := buf[(a-lo)*PageSize : (b-lo)*PageSize]
			if r.Zero {
				clear(dst)
				continue
			}
			at := off[j] + (a-r.Page)*PageSize - start
			copy(dst, data[at:at+int64(len(dst))])
		}
	}
	return nil
}

// runOffsets gives, for each run of sg, where its data starts in the
// segment's blob (zeroed runs have none: theirs is where the next one's
// starts).
func runOffsets(sg *SegmentRow) []int64 {
	offs := make([]int64, len(sg.Runs))
	off := int64(0)
	for j, r := range sg.Runs {
		offs[j] = off
		if !r.Zero {
			off += r.Count * PageSize
		}
	}
	return offs
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// Close flushes the volume and stops its background work. The fence stays:
// the next Open takes it.
func (v *Volume) Close() error {
	err := v.Flush(context.Background())
	if v.cancel != nil {
		v.cancel()
		<-v.done
	}
	v.mu.Lock()
	if v.err == nil {
		v.err = fmt.Errorf("volume %s: %w", v.id, ErrClosed)
	}
	v.mu.Unlock()
	v.s.mu.Lock()
	if v.s.open[v.id] == v {
		delete(v.s.open, v.id)
	}
	v.s.mu.Unlock()
	return err
}
