package block

import (
	"fmt"
	"sort"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/storage/blob"
)

// Rows of the block tables (see DESIGN.md). Rows are never changed in
// place: handlers copy, change and insert.

// Kinds of VolumeRow.
const (
	KindVolume   = "volume"
	KindSnapshot = "snapshot"
)

// VolumeRow is a volume or a snapshot.
type VolumeRow struct {
	ID      string    `json:"id"`
	Kind    string    `json:"kind"`
	Size    int64     `json:"size"`
	K       int       `json:"k"`
	M       int       `json:"m"`
	Parent  string    `json:"parent,omitempty"` // the volume or snapshot it was cloned from
	Created time.Time `json:"created"`
	// Gen is the writer fence: Open increments it, and only a flush of the
	// current generation commits.
	Gen uint64 `json:"gen"`
	// NextSeq is the sequence number the next journal segment gets.
	NextSeq uint64 `json:"next_seq"`
}

// ExtentRow names the blob holding one allocated extent of a volume.
type ExtentRow struct {
	ID     string      `json:"id"` // volume/index
	Volume string      `json:"volume"`
	Index  int64       `json:"index"`
	Blob   string      `json:"blob"`
	Layout blob.Layout `json:"layout"`
	// Seq is the journal sequence number of the flush that wrote the
	// extent whole (0 if none did): segments of the volume up to it hold
	// nothing of this extent any more.
	Seq uint64 `json:"seq,omitempty"`
	// Off is where the extent starts in its blob, and BlobSize the
	// blob's size: a flush writes the extents it holds whole into one
	// blob (DESIGN.md). Both are 0 for a blob of this extent alone.
	Off      int64 `json:"off,omitempty"`
	BlobSize int64 `json:"blob_size,omitempty"`
}

// blobSize is the size of the blob e names.
func (e *ExtentRow) blobSize() int64 {
	if e.BlobSize == 0 {
		return ExtentSize
	}
	return e.BlobSize
}

// supersedes says whether extent e (nil: none) replaced what segment sg
// holds of it.
func supersedes(e *ExtentRow, sg *SegmentRow) bool { return e != nil && sg.Seq <= e.Seq }

// Run is count pages from page on. A data run's pages are stored one after
// the other in the segment blob, after the data runs before it; a zero run
// has no data.
type Run struct {
	Page  int64 `json:"page"`
	Count int64 `json:"count"`
	Zero  bool  `json:"zero,omitempty"`
}

// SegmentRow is one flushed journal segment of a volume.
type SegmentRow struct {
	ID     string      `json:"id"` // volume/seq
	Volume string      `json:"volume"`
	Seq    uint64      `json:"seq"`
	Blob   string      `json:"blob,omitempty"` // "" when the segment only zeroes
	Layout blob.Layout `json:"layout"`
	Size   int64       `json:"size"` // bytes of data in the blob
	Runs   []Run       `json:"runs"`
}

// GarbageRow is a blob no row names any more, to be deleted.
type GarbageRow struct {
	ID     string      `json:"id"` // blob key
	Layout blob.Layout `json:"layout"`
	Size   int64       `json:"size"`
}

// Table names.
const (
	tVolumes  = "block_volumes"
	tExtents  = "block_extents"
	tSegments = "block_segments"
	tGarbage  = "block_garbage"
)

// Command types.
const (
	cmdCreate      = "block.volume.create"
	cmdClone       = "block.volume.clone"
	cmdOpen        = "block.volume.open"
	cmdResize      = "block.volume.resize"
	cmdDelete      = "block.volume.delete"
	cmdAppend      = "block.journal.append"
	cmdFold        = "block.journal.fold"
	cmdGarbageDone = "block.garbage.done"
	cmdRelocate    = "block.blob.relocate"
)

func extentID(vol string, i int64) string   { return fmt.Sprintf("%s/%012d", vol, i) }
func segmentID(vol string, s uint64) string { return fmt.Sprintf("%s/%016d", vol, s) }

// Schema is the block store's part of the replicated state.
func Schema() store.Schema {
	return store.Schema{
		Tables: []store.Table{
			store.NewTable(tVolumes, &VolumeRow{}),
			store.NewTable(tExtents, &ExtentRow{}, store.StringIndex("volume", "Volume", false), store.StringIndex("blob", "Blob", false)),
			store.NewTable(tSegments, &SegmentRow{}, store.StringIndex("volume", "Volume", false), &memdb.IndexSchema{
				Name: "blob", AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "Blob"},
			}),
			store.NewTable(tGarbage, &GarbageRow{}),
		},
		Handlers: map[string]store.Handler{
			cmdCreate:      store.Typed(applyCreate),
			cmdClone:       store.Typed(applyClone),
			cmdOpen:        store.Typed(applyOpen),
			cmdResize:      store.Typed(applyResize),
			cmdDelete:      store.Typed(applyDelete),
			cmdAppend:      store.Typed(applyAppend),
			cmdFold:        store.Typed(applyFold),
			cmdGarbageDone: store.Typed(applyGarbageDone),
			cmdRelocate:    store.Typed(applyRelocate),
			// groupsnap.go
			cmdSnapshotGroup: store.Typed(applySnapshotGroup),
		},
	}
}

// extentsOf returns a volume's extent rows by index.
func extentsOf(tx *memdb.Txn, vol string) []*ExtentRow {
	out := store.All[ExtentRow](tx, tExtents, "volume", vol)
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out
}

// segmentsOf returns a volume's journal segments, oldest first.
func segmentsOf(tx *memdb.Txn, vol string) []*SegmentRow {
	out := store.All[SegmentRow](tx, tSegments, "volume", vol)
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out
}

// Named calls add for every blob a block row names: the object store's
// orphan sweep must not take them for orphans.
func Named(tx *memdb.Txn, add func(key string, l blob.Layout)) {
	for _, e := range store.All[ExtentRow](tx, tExtents, "id") {
		add(e.Blob, e.Layout)
	}
	for _, s := range store.All[SegmentRow](tx, tSegments, "id") {
		if s.Blob != "" {
			add(s.Blob, s.Layout)
		}
	}
	for _, g := range store.All[GarbageRow](tx, tGarbage, "id") {
		add(g.ID, g.Layout)
	}
}

// Command handlers. They run in the FSM on every node: deterministic, no
// clock, no I/O. Times come in the command.

type createCmd struct {
	Row VolumeRow `json:"row"`
}

func applyCreate(tx *memdb.Txn, c createCmd) (any, error) {
	if store.Get[VolumeRow](tx, tVolumes, c.Row.ID) != nil {
		return nil, store.Conflictf("volume %s already exists", c.Row.ID)
	}
	row := c.Row
	row.Gen, row.NextSeq = 0, 1
	return nil, tx.Insert(tVolumes, &row)
}

type cloneCmd struct {
	ID      string    `json:"id"`
	From    string    `json:"from"`
	Kind    string    `json:"kind"`
	Created time.Time `json:"created"`
}

// applyClone makes a new volume or snapshot whose rows name the same
// blobs as from's: copy-on-write by reference.
func applyClone(tx *memdb.Txn, c cloneCmd) (any, error) {
	if store.Get[VolumeRow](tx, tVolumes, c.ID) != nil {
		return nil, store.Conflictf("volume %s already exists", c.ID)
	}
	from := store.Get[VolumeRow](tx, tVolumes, c.From)
	if from == nil {
		return nil, store.NotFoundf("volume %s not found", c.From)
	}
	row := VolumeRow{ID: c.ID, Kind: c.Kind, Size: from.Size, K: from.K, M: from.M, Parent: from.ID, Created: c.Created, NextSeq: 1}
	segs := segmentsOf(tx, from.ID)
	for _, e := range extentsOf(tx, from.ID) {
		n := *e
		n.ID, n.Volume = extentID(c.ID, e.Index), c.ID
		// The segments are renumbered from 1 below: the extent supersedes
		// the same ones under their new numbers.
		n.Seq = uint64(sort.Search(len(segs), func(i int) bool { return segs[i].Seq > e.Seq }))
		if err := tx.Insert(tExtents, &n); err != nil {
			return nil, err
		}
	}
	for _, s := range segs {
		n := *s
		n.Volume, n.Seq = c.ID, row.NextSeq
		n.ID = segmentID(c.ID, n.Seq)
		row.NextSeq++
		if err := tx.Insert(tSegments, &n); err != nil {
			return nil, err
		}
	}
	return nil, tx.Insert(tVolumes, &row)
}

type idCmd struct {
	ID string `json:"id"`
}

// applyOpen takes the writer fence: the new generation is returned.
func applyOpen(tx *memdb.Txn, c idCmd) (any, error) {
	v := store.Get[VolumeRow](tx, tVolumes, c.ID)
	if v == nil {
		return nil, store.NotFoundf("volume %s not found", c.ID)
	}
	n := *v
	n.Gen++
	return &n, tx.Insert(tVolumes, &n)
}

type resizeCmd struct {
	ID   string `json:"id"`
	Size int64  `json:"size"`
}

func applyResize(tx *memdb.Txn, c resizeCmd) (any, error) {
	v := store.Get[VolumeRow](tx, tVolumes, c.ID)
	if v == nil {
		return nil, store.NotFoundf("volume %s not found", c.ID)
	}
	if v.Kind != KindVolume {
		return nil, store.Invalidf("%s is a snapshot: it cannot be resized", c.ID)
	}
	if c.Size < v.Size {
		return nil, store.Invalidf("size: a volume can only grow (%d < %d)", c.Size, v.Size)
	}
	n := *v
	n.Size = c.Size
	return nil, tx.Insert(tVolumes, &n)
}

// unname removes a row naming key and makes the blob garbage if no other
// row names it.
func unname(tx *memdb.Txn, key string, l blob.Layout, size int64) error {
	if key == "" {
		return nil
	}
	if e, _ := tx.First(tExtents, "blob", key); e != nil {
		return nil
	}
	if s, _ := tx.First(tSegments, "blob", key); s != nil {
		return nil
	}
	return tx.Insert(tGarbage, &GarbageRow{ID: key, Layout: l, Size: size})
}

func applyDelete(tx *memdb.Txn, c idCmd) (any, error) {
	v := store.Get[VolumeRow](tx, tVolumes, c.ID)
	if v == nil {
		return nil, nil // deleting is idempotent
	}
	for _, e := range extentsOf(tx, c.ID) {
		if err := tx.Delete(tExtents, e); err != nil {
			return nil, err
		}
		if err := unname(tx, e.Blob, e.Layout, e.blobSize()); err != nil {
			return nil, err
		}
	}
	for _, s := range segmentsOf(tx, c.ID) {
		if err := tx.Delete(tSegments, s); err != nil {
			return nil, err
		}
		if err := unname(tx, s.Blob, s.Layout, s.Size); err != nil {
			return nil, err
		}
	}
	return nil, tx.Delete(tVolumes, v)
}

type appendCmd struct {
	Volume  string     `json:"volume"`
	Gen     uint64     `json:"gen"`
	Segment SegmentRow `json:"segment"`
	// Extents are the extents the flush wrote whole, bypassing the
	// journal: their rows replace the current ones.
	Extents []ExtentRow `json:"extents,omitempty"`
	// Held are the parts of earlier flushes the writer held back
	// (write-back, DESIGN.md), oldest first: each is applied, under the
	// next sequence number, before Segment and Extents.
	Held []appendPart `json:"held,omitempty"`
}

// appendPart is one flush's segment and whole extents.
type appendPart struct {
	Segment SegmentRow  `json:"segment"`
	Extents []ExtentRow `json:"extents,omitempty"`
}

// applyAppend records the held parts and then a flushed segment and the
// extents the flush wrote whole, each part under its own sequence
// number, all or none; only the current writer may. A segment without
// runs (every page went to whole extents) takes its number but no row.
// The result is the sequence number of the last part: the held parts
// have the ones before it.
func applyAppend(tx *memdb.Txn, c appendCmd) (any, error) {
	v := store.Get[VolumeRow](tx, tVolumes, c.Volume)
	if v == nil {
		return nil, store.NotFoundf("volume %s not found", c.Volume)
	}
	if v.Gen != c.Gen {
		return nil, store.Fault(store.KindConflict, faultFenced, "volume %s: writer generation %d is fenced (current %d)", c.Volume, c.Gen, v.Gen)
	}
	n := *v
	var seq uint64
	for _, p := range append(c.Held, appendPart{Segment: c.Segment, Extents: c.Extents}) {
		var err error
		if seq, err = applyPart(tx, &n, p); err != nil {
			return nil, err
		}
	}
	return seq, tx.Insert(tVolumes, &n)
}

// applyPart applies one part of an append to volume v (a copy the
// caller inserts), taking v's next sequence number.
func applyPart(tx *memdb.Txn, v *VolumeRow, c appendPart) (uint64, error) {
	s := c.Segment
	s.Volume, s.Seq = v.ID, v.NextSeq
	s.ID = segmentID(v.ID, s.Seq)
	v.NextSeq++
	if len(s.Runs) > 0 || s.Blob != "" {
		if err := tx.Insert(tSegments, &s); err != nil {
			return 0, err
		}
	}
	for _, e := range c.Extents {
		if e.Index < 0 || e.Index >= (v.Size+ExtentSize-1)/ExtentSize {
			return 0, store.Invalidf("append to %s: extent %d is outside the volume", v.ID, e.Index)
		}
		if e.Off < 0 || e.Off%ExtentSize != 0 || e.BlobSize < 0 || e.Off+ExtentSize > e.blobSize() {
			return 0, store.Invalidf("append to %s: extent %d at offset %d is not inside its blob of %d bytes", v.ID, e.Index, e.Off, e.blobSize())
		}
		old := store.Get[ExtentRow](tx, tExtents, extentID(v.ID, e.Index))
		if old != nil {
			if err := tx.Delete(tExtents, old); err != nil {
				return 0, err
			}
		}
		row := e
		row.ID, row.Volume, row.Seq = extentID(v.ID, e.Index), v.ID, s.Seq
		if err := tx.Insert(tExtents, &row); err != nil {
			return 0, err
		}
		if old != nil {
			if err := unname(tx, old.Blob, old.Layout, old.blobSize()); err != nil {
				return 0, err
			}
		}
	}
	return s.Seq, nil
}

type foldCmd struct {
	Volume   string   `json:"volume"`
	Segments []string `json:"segments"` // the segment rows folded
	// Base is, for every extent index the fold rewrote, the blob it read
	// ("" for an extent that had none).
	Base map[int64]string `json:"base"`
	// New are the extents' new rows; an index of Base without a new row
	// came out all zero and is unallocated.
	New []ExtentRow `json:"new"`
}

// applyFold swaps folded segments for new extents, if nothing it read
// changed since.
func applyFold(tx *memdb.Txn, c foldCmd) (any, error) {
	if store.Get[VolumeRow](tx, tVolumes, c.Volume) == nil {
		return nil, store.NotFoundf("volume %s not found", c.Volume)
	}
	var segs []*SegmentRow
	for _, id := range c.Segments {
		s := store.Get[SegmentRow](tx, tSegments, id)
		if s == nil || s.Volume != c.Volume {
			return nil, store.Fault(store.KindConflict, faultStale, "fold of %s: segment %s is gone", c.Volume, id)
		}
		segs = append(segs, s)
	}
	idx := make([]int64, 0, len(c.Base))
	for i := range c.Base {
		idx = append(idx, i)
	}
	sort.Slice(idx, func(a, b int) bool { return idx[a] < idx[b] })
	var old []*ExtentRow
	for _, i := range idx {
		e := store.Get[ExtentRow](tx, tExtents, extentID(c.Volume, i))
		cur := ""
		if e != nil {
			cur = e.Blob
			old = append(old, e)
		}
		if cur != c.Base[i] {
			return nil, store.Fault(store.KindConflict, faultStale, "fold of %s: extent %d changed", c.Volume, i)
		}
	}
	for _, e := range old {
		if err := tx.Delete(tExtents, e); err != nil {
			return nil, err
		}
	}
	for _, s := range segs {
		if err := tx.Delete(tSegments, s); err != nil {
			return nil, err
		}
	}
	for _, e := range c.New {
		if _, ok := c.Base[e.Index]; !ok {
			return nil, store.Invalidf("fold of %s: extent %d has no base", c.Volume, e.Index)
		}
		n := e
		n.ID, n.Volume = extentID(c.Volume, e.Index), c.Volume
		if err := tx.Insert(tExtents, &n); err != nil {
			return nil, err
		}
	}
	for _, e := range old {
		if err := unname(tx, e.Blob, e.Layout, e.blobSize()); err != nil {
			return nil, err
		}
	}
	for _, s := range segs {
		if err := unname(tx, s.Blob, s.Layout, s.Size); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

type idsCmd struct {
	IDs []string `json:"ids"`
}

func applyGarbageDone(tx *memdb.Txn, c idsCmd) (any, error) {
	for _, id := range c.IDs {
		if g := store.Get[GarbageRow](tx, tGarbage, id); g != nil {
			if err := tx.Delete(tGarbage, g); err != nil {
				return nil, err
			}
		}
	}
	return nil, nil
}
