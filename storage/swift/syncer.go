package swift

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/storage/object"
)

// Syncer is Swift's container-sync daemon for the whole cluster: on the
// Raft leader only (so each change is sent once), it sends every synced
// container's pending changes (storage/object/sync.go) to its
// X-Container-Sync-To, each request signed with the realm's key and the
// container's sync key and carrying the source's X-Timestamp, as Swift's
// container/sync.py does: a write is a HEAD (skipped if the destination
// has it, as new or newer) then a PUT of the object; a delete is a DELETE
// (404 and 409, "already gone" and "newer there", count as done).
//
// Crash safety: a change is removed from the queue only by the command
// that follows its success (storage.sync.ack), so a change is never
// skipped; one sent just before a crash is sent again, and the
// destination keeps its copy (same timestamp: the HEAD says it has it, or
// the PUT gets 409). Every pass is bounded: at most Batch changes and
// ContainerTime per container.
type Syncer struct {
	Store    *object.Service
	Realms   *Realms
	IsLeader func() bool
	Log      *slog.Logger
	// Client sends the requests (default: one with response deadlines).
	Client *http.Client
	// Interval is the pause between passes (default 5 s).
	Interval time.Duration
	// Batch is the most changes of one container a pass takes, and the
	// size of a full pass's steps (default 100).
	Batch int
	// ContainerTime bounds the time a pass spends on one container
	// (default 60 s, Swift's container_time).
	ContainerTime time.Duration
	// RetryAfter is how long changes that failed wait before they are
	// tried again (default 30 s).
	RetryAfter time.Duration

	failedAt map[string]time.Time // container id → last failure
}

func (sy *Syncer) defaults() {
	if sy.Log == nil {
		sy.Log = slog.Default()
	}
	if sy.Client == nil {
		sy.Client = &http.Client{Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment, ResponseHeaderTimeout: time.Minute, IdleConnTimeout: time.Minute,
		}}
	}
	if sy.Interval <= 0 {
		sy.Interval = 5 * time.Second
	}
	if sy.Batch <= 0 {
		sy.Batch = 100
	}
	if sy.ContainerTime <= 0 {
		sy.ContainerTime = time.Minute
	}
	if sy.RetryAfter <= 0 {
		sy.RetryAfter = 30 * time.Second
	}
	if sy.IsLeader == nil {
		sy.IsLeader = func() bool { return true }
	}
	if sy.failedAt == nil {
		sy.failedAt = map[string]time.Time{}
	}
}

// Run makes passes until ctx ends, while this node leads.
func (sy *Syncer) Run(ctx context.Context) error {
	sy.defaults()
	if sy.Realms.Empty() {
		return nil
	}
	t := time.NewTicker(sy.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if sy.IsLeader() {
			sy.Pass(ctx)
		}
	}
}

// Pass sends what every synced container has pending, within the bounds.
func (sy *Syncer) Pass(ctx context.Context) {
	sy.defaults()
	states, err := sy.Store.SyncStates(ctx)
	if err != nil {
		sy.Log.Warn("container sync: read the synced containers", "err", err)
		return
	}
	for _, st := range states {
		if ctx.Err() != nil {
			return
		}
		sy.syncContainer(ctx, st)
	}
}

// PassStats says what one container's pass did.
type PassStats struct {
	Sent, Failed int
}

func (sy *Syncer) syncContainer(ctx context.Context, st object.SyncState) PassStats {
	var stats PassStats
	if st.Scan {
		if err := sy.Store.ScanSync(ctx, st, sy.Batch); err != nil {
			sy.Log.Warn("container sync: queue the objects of a container", "project", st.Project, "container", st.Container, "err", err)
			return stats
		}
	}
	// Changes that failed before (at or below the point) are read apart
	// from new ones, so a run of failing ones never holds new ones back.
	retry := time.Since(sy.failedAt[st.ID]) >= sy.RetryAfter
	var changes []object.SyncChange
	if retry && st.Point > 0 {
		old, _, err := sy.Store.SyncChanges(ctx, st.ID, 0, sy.Batch)
		if err != nil {
			return stats
		}
		for _, ch := range old {
			if ch.Seq <= st.Point {
				changes = append(changes, ch)
			}
		}
	}
	fresh, c, err := sy.Store.SyncChanges(ctx, st.ID, st.Point, sy.Batch)
	if err != nil || c == nil || c.SyncTo != st.To || c.SyncKey == "" {
		return stats
	}
	changes = append(changes, fresh...)
	if len(changes) == 0 {
		return stats
	}
	target, err := sy.Realms.syncTo(c.SyncTo)
	if err != nil || target.URL == "" {
		// The realms changed since it was set (Swift logs and skips the
		// container alike); its changes stay queued.
		sy.Log.Info("container sync: the container's X-Container-Sync-To is not valid now", "project", st.Project, "container", st.Container, "sync_to", c.SyncTo, "err", err)
		return stats
	}
	stop := time.Now().Add(sy.ContainerTime)
	point := uint64(0)
	var done []uint64
	for _, ch := range changes {
		if ctx.Err() != nil || time.Now().After(stop) {
			break
		}
		if err := sy.send(ctx, ch, target, c.SyncKey); err != nil {
			stats.Failed++
			sy.Log.Info("container sync: change not sent; it stays queued", "project", st.Project, "container", st.Container, "object", ch.Name, "delete", ch.Deleted, "sync_to", c.SyncTo, "err", err)
		} else {
			stats.Sent++
			done = append(done, ch.Seq)
		}
		point = max(point, ch.Seq)
	}
	if stats.Failed > 0 {
		sy.failedAt[st.ID] = time.Now()
	} else if retry {
		delete(sy.failedAt, st.ID)
	}
	if point == 0 {
		return stats
	}
	// One command records the pass; if it is lost, the pass is made again
	// and the destination keeps what it has.
	if err := sy.Store.AckSync(ctx, st, point, done); err != nil {
		sy.Log.Warn("container sync: record progress", "project", st.Project, "container", st.Container, "err", err)
	}
	return stats
}

// send sends one change to the destination.
func (sy *Syncer) send(ctx context.Context, ch object.SyncChange, t syncTarget, userKey string) error {
	if ch.Deleted {
		status, err := sy.do(ctx, http.MethodDelete, t, userKey, ch.Name, ch.Time, nil, 0, nil)
		if err != nil {
			return err
		}
		if status/100 == 2 || status == http.StatusNotFound || status == http.StatusConflict {
			return nil
		}
		return fmt.Errorf("DELETE answered %d", status)
	}
	o, err := sy.Store.Head(ctx, ch.Project, ch.Container, ch.Name)
	if errors.Is(err, store.ErrNotFound) {
		return nil // deleted (or expired) since: its delete is queued after this
	}
	if err != nil {
		return err
	}
	if o.Modified.Before(ch.Time) {
		return fmt.Errorf("the object read is older than the change")
	}
	// The destination may have it already: a pass repeated after a
	// crash, or the other half of a two-way sync.
	var remote http.Header
	status, err := sy.do(ctx, http.MethodHead, t, userKey, ch.Name, o.Modified, nil, 0, func(h http.Header) { remote = h })
	if err != nil {
		return err
	}
	switch {
	case status/100 == 2:
		if rt, err := parseTimestamp(remote.Get("X-Timestamp")); err == nil && !rt.Before(roundTick(o.Modified)) {
			return nil
		}
	case status != http.StatusNotFound:
		return fmt.Errorf("HEAD answered %d", status)
	}
	h := http.Header{}
	h.Set("Content-Type", o.ContentType)
	if len(o.Segments) == 0 && isMD5(o.ETag) {
		h.Set("Etag", o.ETag) // the destination checks the bytes against it
	}
	for k, v := range o.Headers {
		h.Set(k, v)
	}
	for k, v := range o.Meta {
		h.Set("X-Object-Meta-"+k, v)
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(sy.Store.Read(ctx, o, 0, o.Size, pw))
	}()
	defer pr.Close()
	status, err = sy.do(ctx, http.MethodPut, t, userKey, ch.Name, o.Modified, h, o.Size, nil, pr)
	if err != nil {
		return err
	}
	if status/100 == 2 || status == http.StatusConflict {
		return nil
	}
	return fmt.Errorf("PUT answered %d", status)
}

// do makes one signed request for the object name of t; seen, if given,
// gets the response's headers.
func (sy *Syncer) do(ctx context.Context, method string, t syncTarget, userKey, name string, at time.Time, h http.Header, size int64, seen func(http.Header), body ...io.Reader) (int, error) {
	u, err := url.Parse(t.URL)
	if err != nil {
		return 0, err
	}
	objPath := pyQuote(name)
	ts := timestamp(at)
	var nonce [16]byte
	rand.Read(nonce[:])
	n := hex.EncodeToString(nonce[:])
	sig := syncSig(method, u.Path+"/"+objPath, ts, n, t.RealmKey, userKey)
	var rd io.Reader
	if len(body) > 0 {
		rd = body[0]
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(t.URL, "/")+"/"+objPath, rd)
	if err != nil {
		return 0, err
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	req.Header.Set("X-Timestamp", ts)
	req.Header.Set(syncAuthHeader, t.Realm+" "+n+" "+sig)
	if rd != nil {
		req.ContentLength = size
		req.Header.Set("Content-Length", strconv.FormatInt(size, 10))
	}
	resp, err := sy.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if seen != nil {
		seen(resp.Header)
	}
	return resp.StatusCode, nil
}

// roundTick is t at X-Timestamp's precision, as the destination keeps it.
func roundTick(t time.Time) time.Time { return t.Round(10 * time.Microsecond) }

// isMD5 reports whether an ETag is the MD5 of the bytes (not an S3
// multipart upload's or a large object's).
func isMD5(etag string) bool {
	if len(etag) != 32 {
		return false
	}
	_, err := hex.DecodeString(etag)
	return err == nil
}
