package block

import (
	"context"
	"fmt"
	"reflect"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/storage/blob"
)

// The object store's maintenance (heal, scrub, rebalance) keeps the block
// blobs whole and well placed too, the same way as its own parts: Blobs is
// what it walks, Relocate records where it moved a blob. Healing rewrites
// lost shards in place and needs nothing from here.

// faultMoved is the refusal of a relocation whose blob changed meanwhile.
const faultMoved = "BlockBlobMoved"

// Blobs calls add, once per blob, for every blob a volume or snapshot
// names (extents and journal segments), with its size in bytes. Garbage is
// not listed: it is about to be deleted, not kept.
func (s *Store) Blobs(tx *memdb.Txn, add func(key string, l blob.Layout, size int64)) {
	seen := map[string]bool{}
	for _, e := range store.All[ExtentRow](tx, tExtents, "id") {
		if !seen[e.Blob] {
			seen[e.Blob] = true
			add(e.Blob, e.Layout, e.blobSize())
		}
	}
	for _, sg := range store.All[SegmentRow](tx, tSegments, "id") {
		if sg.Blob != "" && !seen[sg.Blob] {
			seen[sg.Blob] = true
			add(sg.Blob, sg.Layout, sg.Size)
		}
	}
}

// Relocate records that blob key, which the rows named at old, now lives
// at next: every row naming it (snapshots and clones share blobs) changes
// in one command. It is refused with an error that is a store.ErrConflict
// when no row names key at old any more (the blob was folded away, deleted
// or moved by someone else), so the mover deletes the copies it made.
func (s *Store) Relocate(ctx context.Context, key string, old, next blob.Layout) error {
	if _, err := s.cfg.Repl.Propose(ctx, cmdRelocate, relocateCmd{Blob: key, Old: old, New: next}); err != nil {
		return fmt.Errorf("relocate block blob %s: %w", key, err)
	}
	return nil
}

type relocateCmd struct {
	Blob string      `json:"blob"`
	Old  blob.Layout `json:"old"`
	New  blob.Layout `json:"new"`
}

func applyRelocate(tx *memdb.Txn, c relocateCmd) (any, error) {
	extents := store.All[ExtentRow](tx, tExtents, "blob", c.Blob)
	segments := store.All[SegmentRow](tx, tSegments, "blob", c.Blob)
	if len(extents)+len(segments) == 0 {
		return nil, store.Fault(store.KindConflict, faultMoved, "blob %s is no longer named", c.Blob)
	}
	for _, e := range extents {
		if !reflect.DeepEqual(e.Layout, c.Old) {
			return nil, store.Fault(store.KindConflict, faultMoved, "blob %s moved meanwhile", c.Blob)
		}
	}
	for _, sg := range segments {
		if !reflect.DeepEqual(sg.Layout, c.Old) {
			return nil, store.Fault(store.KindConflict, faultMoved, "blob %s moved meanwhile", c.Blob)
		}
	}
	for _, e := range extents {
		n := *e
		n.Layout = c.New
		if err := tx.Insert(tExtents, &n); err != nil {
			return nil, err
		}
	}
	for _, sg := range segments {
		n := *sg
		n.Layout = c.New
		if err := tx.Insert(tSegments, &n); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// degraded reports a named blob that lacks shards at layout l, once per
// degradedEvery. A blob the state places elsewhere now is not reported: a
// reader with rows from before a move misses the shards the mover deleted.
func (s *Store) degraded(ctx context.Context, key string, l blob.Layout, bad []int) {
	if s.cfg.Degraded == nil || key == "" {
		return
	}
	now := s.cfg.Now()
	s.reportMu.Lock()
	last, ok := s.reported[key]
	report := !ok || now.Sub(last) >= degradedEvery
	if report {
		for k, t := range s.reported {
			if now.Sub(t) >= degradedEvery {
				delete(s.reported, k)
			}
		}
		s.reported[key] = now
	}
	s.reportMu.Unlock()
	if !report {
		return
	}
	if cur, ok := s.layoutOf(ctx, key); ok && !reflect.DeepEqual(cur, l) {
		return
	}
	s.log.Warn("block blob degraded; queueing heal", "blob", key, "bad_shards", bad)
	s.cfg.Degraded(key)
}

// layoutOf is where the state says blob key lives now.
func (s *Store) layoutOf(ctx context.Context, key string) (blob.Layout, bool) {
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return blob.Layout{}, false
	}
	if e, _ := tx.First(tExtents, "blob", key); e != nil {
		return e.(*ExtentRow).Layout, true
	}
	if sg, _ := tx.First(tSegments, "blob", key); sg != nil {
		return sg.(*SegmentRow).Layout, true
	}
	return blob.Layout{}, false
}
