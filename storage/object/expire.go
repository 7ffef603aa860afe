package object

import (
	"context"
	"fmt"
	"strconv"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// Object expiry (Swift's X-Delete-At). An object whose stored headers hold
// DeleteAtHeader is gone for its readers from that second on: Head (and so
// every GET, HEAD, POST and copy of Swift and S3) answers not found at once.
// The leader's expirer then deletes it for real, in the order of the delete
// times, through an index of them. Listings and container counts show an
// expired object until the expirer has run, as Swift's do (the expirer
// runs every second on the leader, Swift's every five minutes).
//
// Crash safety: the delete time is part of the object's row, written by
// the PUT or POST command that is acknowledged only once committed; the
// expirer's delete is one Raft command, so a leader that dies mid-pass
// leaves each object either whole or deleted (its blob on the garbage
// table), and the next leader's expirer finds the rest from the index. A
// delete whose outcome is unknown is not retried as failed: the next pass
// reads the state again, and the command is conditional (version and
// delete time), so a repeat is a no-op and a newer object of the name
// stays.

// DeleteAtHeader is the stored header naming the Unix second from which an
// object is expired, written as Swift normalizes it (ten digits).
const DeleteAtHeader = "X-Delete-At"

// MaxDeleteAt is the largest delete time Swift accepts (ten digits).
const MaxDeleteAt = 9999999999

// FormatDeleteAt writes a delete time as it is stored: ten digits, so
// that the index orders delete times as strings.
func FormatDeleteAt(unix int64) string { return fmt.Sprintf("%010d", min(max(unix, 0), MaxDeleteAt)) }

// DeleteAt reports the Unix second from which o is expired.
func (o *Object) DeleteAt() (int64, bool) {
	v, ok := o.Headers[DeleteAtHeader]
	if !ok {
		return 0, false
	}
	at, err := strconv.ParseInt(v, 10, 64)
	return at, err == nil
}

// Expired: o has a delete time that now has reached (Swift's object
// server: expired once the delete time is not after now).
func (o *Object) Expired(now time.Time) bool {
	at, ok := o.DeleteAt()
	return ok && at <= now.Unix()
}

// deleteAtIndex indexes the objects that have a delete time by it, so the
// expirer finds the due ones without walking every object.
type deleteAtIndex struct{}

func (deleteAtIndex) FromObject(raw any) (bool, []byte, error) {
	o, ok := raw.(*Object)
	if !ok {
		return false, nil, fmt.Errorf("delete_at index: %T is not an object", raw)
	}
	v, ok := o.Headers[DeleteAtHeader]
	if !ok {
		return false, nil, nil
	}
	return true, []byte(v + "\x00"), nil
}

func (deleteAtIndex) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("delete_at index takes one argument")
	}
	s, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("delete_at index: argument %T is not a string", args[0])
	}
	return []byte(s), nil
}

func deleteAtIndexSchema() *memdb.IndexSchema {
	return &memdb.IndexSchema{Name: "delete_at", AllowMissing: true, Indexer: deleteAtIndex{}}
}

// objectExpireCmd deletes an expired object, only if it is still the
// version the expirer saw with the same delete time: a newer PUT of the
// name, or a POST that moved or removed the delete time, keeps it.
type objectExpireCmd struct {
	ID       string    `json:"id"`
	Version  string    `json:"version"`
	DeleteAt string    `json:"delete_at"`
	Now      time.Time `json:"now"`
}

// expireResult says whether the command deleted the object.
type expireResult struct {
	Deleted bool `json:"deleted"`
}

func applyObjectExpire(tx *memdb.Txn, c objectExpireCmd) (any, error) {
	o := store.Get[Object](tx, tObjects, c.ID)
	if o == nil || o.Version != c.Version || o.Headers[DeleteAtHeader] != c.DeleteAt || !o.Expired(c.Now) {
		return expireResult{}, nil
	}
	if _, err := applyObjectDelete(tx, idCmd{ID: c.ID, Now: c.Now}); err != nil {
		return nil, err
	}
	// In a versioned container the expired version is gone for good and
	// the next newest, if an object, is current again (versions.go).
	if err := promote(tx, c.ID); err != nil {
		return nil, err
	}
	return expireResult{Deleted: true}, nil
}

// expireBatch bounds the objects one expirer pass deletes (one command
// each), so a mass expiry does not hold the leader's loop.
const expireBatch = 256

// expireObjects deletes the objects whose delete time has passed, oldest
// delete time first. Each delete is conditional (objectExpireCmd); a
// command whose outcome is unknown is only logged: the next pass finds the
// object again if it did not commit, and a no-op if it did.
func (s *Service) expireObjects(ctx context.Context) int {
	tx, err := s.read(ctx)
	if err != nil {
		return 0
	}
	now := s.cfg.Now()
	it, err := tx.LowerBound(tObjects, "delete_at", "")
	if err != nil {
		s.log.Warn("expire objects", "err", err)
		return 0
	}
	var due []*Object
	for raw := it.Next(); raw != nil && len(due) < expireBatch; raw = it.Next() {
		o := raw.(*Object)
		at, ok := o.DeleteAt()
		if !ok {
			continue // not a time: never due
		}
		if at > now.Unix() {
			break // the index is in delete-time order
		}
		due = append(due, o)
	}
	deleted := 0
	for _, o := range due {
		if ctx.Err() != nil || !s.cfg.IsLeader() {
			break
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		res, err := s.repl.Propose(pctx, cmdObjectExpire, objectExpireCmd{
			ID: o.ID, Version: o.Version, DeleteAt: o.Headers[DeleteAtHeader], Now: s.now(),
		})
		cancel()
		if err != nil {
			// Refused or not confirmed: leave the rest to the next
			// pass, which reads the state again, rather than wait
			// out a timeout per object while the cluster is unwell.
			s.log.Warn("expire object", "object", o.Project+"/"+o.Container+"/"+o.Name, "err", err)
			break
		}
		var r expireResult
		if res.Decode(&r) == nil && r.Deleted {
			deleted++
			s.log.Info("expired object deleted", "object", o.Project+"/"+o.Container+"/"+o.Name, "delete_at", o.Headers[DeleteAtHeader])
		}
	}
	return deleted
}

// WithoutDeleteAt is stored headers carried over to a POST or a copy
// without the delete time: as in Swift, only the request that makes the
// new version sets one (a copy must not expire with its source).
func WithoutDeleteAt(h map[string]string) map[string]string {
	if _, ok := h[DeleteAtHeader]; !ok {
		return h
	}
	out := make(map[string]string, len(h))
	for k, v := range h {
		if k != DeleteAtHeader {
			out[k] = v
		}
	}
	return out
}
