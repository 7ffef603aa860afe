package object

// Container sync's state (Swift's X-Container-Sync-To; the syncer and the
// receiving side are storage/swift/csync*.go). Swift keeps, in each
// container database, one row per object name with an increasing ROWID and
// a deleted flag, and two sync points per database; its syncer sends the
// rows past them. Here the same lives in the replicated state, written in
// the transaction of the change itself (an observer of the object rows),
// so a change is queued for sync exactly when it is committed:
//
//   - storage_sync: one row per container that syncs (both SyncTo and
//     SyncKey set), with the last change number given (Seq), the point up
//     to which changes have been tried (Point), and a full pass over the
//     container's objects still to queue (Scan, after the name ScanAfter).
//   - storage_sync_changes: the newest change of each name not yet sent,
//     keyed by container and change number; a newer change of a name
//     replaces its row. A row is deleted only once the destination took
//     it (storage.sync.ack); one that failed stays, at or below Point, and
//     is tried again.
//
// Setting or changing SyncTo starts over, as Swift resets its sync points:
// the pending rows go and a full pass queues every current object (in
// batches, storage.sync.scan, so no command walks a large container at
// once). Removing SyncTo or SyncKey, or the container, removes both.

import (
	"context"
	"fmt"
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// SyncState is a container's sync progress.
type SyncState struct {
	ID        string `json:"id"` // container id (project/name)
	Project   string `json:"project"`
	Container string `json:"container"`
	// To is the SyncTo this progress is towards; a change of the
	// container's SyncTo starts over.
	To    string `json:"to"`
	Seq   uint64 `json:"seq"`
	Point uint64 `json:"point"`
	// Scan: the full pass has not queued every object yet; the next
	// batch starts after the name ScanAfter.
	Scan      bool   `json:"scan,omitempty"`
	ScanAfter string `json:"scan_after,omitempty"`
}

// SyncChange is the newest unsent change of one name.
type SyncChange struct {
	ID        string `json:"id"`  // container id \0 seq in 16 hex digits
	Key       string `json:"key"` // object id of the name
	Project   string `json:"project"`
	Container string `json:"container"`
	Name      string `json:"name"`
	Seq       uint64 `json:"seq"`
	Deleted   bool   `json:"deleted,omitempty"`
	// Time is the object's time (a write) or the delete's.
	Time time.Time `json:"time"`
}

const (
	tSync        = "storage_sync"
	tSyncChanges = "storage_sync_changes"

	cmdContainerSync  = "storage.container.sync_put"
	cmdSyncAck        = "storage.sync.ack"
	cmdSyncScan       = "storage.sync.scan"
	cmdObjectSyncPut  = "storage.object.sync_put"
	cmdObjectSyncDrop = "storage.object.sync_delete"
)

func syncTables() []store.Table {
	return []store.Table{
		store.NewTable(tSync, &SyncState{}),
		store.NewTable(tSyncChanges, &SyncChange{}, store.StringIndex("key", "Key", true)),
	}
}

func syncHandlers() map[string]store.Handler {
	return map[string]store.Handler{
		cmdContainerSync:  store.Typed(applyContainerPut),
		cmdSyncAck:        store.Typed(applySyncAck),
		cmdSyncScan:       store.Typed(applySyncScan),
		cmdObjectSyncPut:  store.Typed(applyObjectSyncPut),
		cmdObjectSyncDrop: store.Typed(applyObjectSyncDelete),
	}
}

// containerPutType is the command that writes c: a container that syncs
// is written by a command of its own (applied as storage.container.put),
// so that during a rolling upgrade the gate refuses it while a member's
// rackd would drop the sync fields and not queue changes
// (fabric/cluster/upgrade.go).
func containerPutType(c Container) string {
	if c.SyncTo != "" || c.SyncKey != "" {
		return cmdContainerSync
	}
	return cmdContainerPut
}

func syncChangeID(containerID string, seq uint64) string {
	return fmt.Sprintf("%s%s%016x", containerID, sep, seq)
}

// syncing reports whether a container's rows ask for sync.
func syncing(c *Container) bool { return c != nil && c.SyncTo != "" && c.SyncKey != "" }

// observeSync keeps the sync tables in step with the containers and
// objects a command changed. Deterministic: the times are the rows' own
// and the command's origin time, chosen by its proposer.
func observeSync(tx *memdb.Txn, a store.Applied) error {
	for _, ch := range a.Changes {
		var err error
		switch ch.Table {
		case tContainers:
			after, _ := ch.After.(*Container)
			before, _ := ch.Before.(*Container)
			err = syncContainerChanged(tx, before, after)
		case tObjects:
			after, _ := ch.After.(*Object)
			before, _ := ch.Before.(*Object)
			err = syncObjectChanged(tx, before, after, a.Origin.Time)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func syncContainerChanged(tx *memdb.Txn, before, after *Container) error {
	row := after
	if row == nil {
		row = before
	}
	id := containerID(row.Project, row.Name)
	st := store.Get[SyncState](tx, tSync, id)
	if !syncing(after) {
		if st == nil {
			return nil
		}
		if err := dropSyncChanges(tx, id); err != nil {
			return err
		}
		return tx.Delete(tSync, st)
	}
	if st != nil && st.To == after.SyncTo {
		return nil
	}
	next := SyncState{ID: id, Project: row.Project, Container: row.Name, To: after.SyncTo, Scan: true}
	if st != nil {
		if err := dropSyncChanges(tx, id); err != nil {
			return err
		}
		next.Seq = st.Seq
	}
	next.Point = next.Seq
	return tx.Insert(tSync, &next)
}

func dropSyncChanges(tx *memdb.Txn, containerID string) error {
	_, err := tx.DeletePrefix(tSyncChanges, "id_prefix", containerID+sep)
	return err
}

func syncObjectChanged(tx *memdb.Txn, before, after *Object, at time.Time) error {
	row := after
	if row == nil {
		row = before
	}
	st := store.Get[SyncState](tx, tSync, containerID(row.Project, row.Container))
	if st == nil {
		return nil
	}
	if after != nil {
		// A move of its shards, new tags or (as Swift with fast POSTs)
		// new metadata change neither the object's bytes nor its time:
		// nothing to send.
		if before != nil && before.Version == after.Version && before.Modified.Equal(after.Modified) {
			return nil
		}
		return queueSync(tx, st, after, false, after.Modified)
	}
	// A delete is newer than what it deleted, whatever the proposer's
	// clock said: the destination compares them.
	if !at.After(before.Modified) {
		at = before.Modified.Add(syncTick)
	}
	return queueSync(tx, st, before, true, at)
}

// syncTick is the precision of Swift's timestamps (X-Timestamp has five
// decimals).
const syncTick = 10 * time.Microsecond

// queueSync makes o's change the newest of its name.
func queueSync(tx *memdb.Txn, st *SyncState, o *Object, deleted bool, at time.Time) error {
	key := objectID(o.Project, o.Container, o.Name)
	if old, _ := tx.First(tSyncChanges, "key", key); old != nil {
		if err := tx.Delete(tSyncChanges, old); err != nil {
			return err
		}
	}
	next := *st
	next.Seq++
	ch := SyncChange{
		ID: syncChangeID(st.ID, next.Seq), Key: key, Project: o.Project, Container: o.Container, Name: o.Name,
		Seq: next.Seq, Deleted: deleted, Time: at,
	}
	if err := tx.Insert(tSyncChanges, &ch); err != nil {
		return err
	}
	*st = next
	return tx.Insert(tSync, &next)
}

// syncAckCmd records a syncer's pass: every change up to Point was tried,
// and those in Done were taken by the destination. It applies only to the
// progress towards To: a reset since made it moot.
type syncAckCmd struct {
	ID    string   `json:"id"`
	To    string   `json:"to"`
	Point uint64   `json:"point"`
	Done  []uint64 `json:"done,omitempty"`
}

func applySyncAck(tx *memdb.Txn, c syncAckCmd) (any, error) {
	st := store.Get[SyncState](tx, tSync, c.ID)
	if st == nil || st.To != c.To {
		return nil, nil
	}
	for _, seq := range c.Done {
		if ch := store.Get[SyncChange](tx, tSyncChanges, syncChangeID(c.ID, seq)); ch != nil {
			if err := tx.Delete(tSyncChanges, ch); err != nil {
				return nil, err
			}
		}
	}
	if c.Point <= st.Point {
		return nil, nil
	}
	next := *st
	next.Point = min(c.Point, st.Seq)
	return nil, tx.Insert(tSync, &next)
}

// syncScanCmd queues the next Limit objects of a container's full pass.
type syncScanCmd struct {
	ID    string `json:"id"`
	To    string `json:"to"`
	Limit int    `json:"limit"`
}

func applySyncScan(tx *memdb.Txn, c syncScanCmd) (any, error) {
	st := store.Get[SyncState](tx, tSync, c.ID)
	if st == nil || st.To != c.To || !st.Scan {
		return nil, nil
	}
	if c.Limit < 1 {
		return nil, store.Invalidf("limit: must be at least 1")
	}
	prefix := objectPrefix(st.Project, st.Container)
	it, err := tx.LowerBound(tObjects, "id", prefix+st.ScanAfter+"\x00")
	if err != nil {
		return nil, err
	}
	next := *st
	var batch []*Object
	for raw := it.Next(); raw != nil; raw = it.Next() {
		o := raw.(*Object)
		if o.Project != st.Project || o.Container != st.Container {
			break
		}
		if len(batch) == c.Limit {
			break
		}
		batch = append(batch, o)
	}
	if len(batch) < c.Limit {
		next.Scan, next.ScanAfter = false, ""
	} else {
		next.ScanAfter = batch[len(batch)-1].Name
	}
	for _, o := range batch {
		if old, _ := tx.First(tSyncChanges, "key", o.ID); old != nil {
			continue // a change of the name is queued already
		}
		if err := queueSync(tx, &next, o, false, o.Modified); err != nil {
			return nil, err
		}
	}
	return nil, tx.Insert(tSync, &next)
}

// objectSyncPutCmd stores an object a container sync sent, with the
// source's time, only over an older one (Swift's object server answers
// 409 to a PUT whose X-Timestamp is not newer than what it has).
type objectSyncPutCmd struct {
	Row    Object `json:"row"`
	Inline bool   `json:"inline,omitempty"`
	Budget int64  `json:"budget,omitempty"`
}

func applyObjectSyncPut(tx *memdb.Txn, c objectSyncPutCmd) (any, error) {
	if old := store.Get[Object](tx, tObjects, objectID(c.Row.Project, c.Row.Container, c.Row.Name)); old != nil && !c.Row.Modified.After(old.Modified) {
		return nil, store.Conflictf("the object here is as new as the synced one or newer")
	}
	if c.Inline {
		return applyObjectInline(tx, objectInlineCmd{Row: c.Row, Budget: c.Budget})
	}
	return putObject(tx, c.Row)
}

// objectSyncDeleteCmd deletes an object as a container sync asks, only if
// what is here is older than the delete.
type objectSyncDeleteCmd struct {
	Remove objectRemoveCmd `json:"remove"`
	At     time.Time       `json:"at"`
}

func applyObjectSyncDelete(tx *memdb.Txn, c objectSyncDeleteCmd) (any, error) {
	cur := store.Get[Object](tx, tObjects, objectID(c.Remove.Project, c.Remove.Container, c.Remove.Name))
	if cur == nil {
		return nil, store.NotFoundf("object %s not found", c.Remove.Name)
	}
	if !c.At.After(cur.Modified) {
		return nil, store.Conflictf("the object here is newer than the synced delete")
	}
	c.Remove.ByVersion = false
	return applyObjectRemove(tx, c.Remove)
}

// SyncStates lists the containers that sync, and their progress.
func (s *Service) SyncStates(ctx context.Context) ([]SyncState, error) {
	tx, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	var out []SyncState
	for _, st := range store.All[SyncState](tx, tSync, "id_prefix", "") {
		out = append(out, *st)
	}
	return out, nil
}

// SyncChanges returns up to limit pending changes of a container
// numbered after after, oldest first, with its container row as of the
// same read (nil if it is gone).
func (s *Service) SyncChanges(ctx context.Context, id string, after uint64, limit int) ([]SyncChange, *Container, error) {
	tx, err := s.read(ctx)
	if err != nil {
		return nil, nil, err
	}
	it, err := tx.LowerBound(tSyncChanges, "id", syncChangeID(id, after+1))
	if err != nil {
		return nil, nil, err
	}
	var out []SyncChange
	for raw := it.Next(); raw != nil && len(out) < limit; raw = it.Next() {
		ch := raw.(*SyncChange)
		if !strings.HasPrefix(ch.ID, id+sep) {
			break
		}
		out = append(out, *ch)
	}
	return out, store.Get[Container](tx, tContainers, id), nil
}

// AckSync records that the changes of st up to point were tried and those
// numbered in done were taken by the destination.
func (s *Service) AckSync(ctx context.Context, st SyncState, point uint64, done []uint64) error {
	_, err := s.repl.Propose(ctx, cmdSyncAck, syncAckCmd{ID: st.ID, To: st.To, Point: point, Done: done})
	return err
}

// ScanSync queues the next limit objects of st's full pass.
func (s *Service) ScanSync(ctx context.Context, st SyncState, limit int) error {
	_, err := s.repl.Propose(ctx, cmdSyncScan, syncScanCmd{ID: st.ID, To: st.To, Limit: limit})
	return err
}

// DeleteSynced deletes an object as a container sync asks: only if the
// object here is older than at (a store.ErrConflict otherwise).
func (s *Service) DeleteSynced(ctx context.Context, project, container, name string, at time.Time) error {
	_, err := s.repl.Propose(ctx, cmdObjectSyncDrop, objectSyncDeleteCmd{
		Remove: objectRemoveCmd{Project: project, Container: container, Name: name, Now: s.now(), Marker: newID()},
		At:     at,
	})
	return err
}
