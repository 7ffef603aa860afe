package object

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/storage/blob"
	"github.com/rackstack/rackstack/storage/disk"
	"github.com/rackstack/rackstack/storage/object/objectapi"
	"github.com/rackstack/rackstack/storage/placement"
)

// Background work. Every node registers its disks; the leader alone runs
// the collector, the healer, the rebalancer and the scrubber, so no two
// nodes move the same blob. A new leader simply picks up where the state
// says the work stands.

// BlobSource is another service whose blobs live on the store's disks
// (block volumes): maintenance walks its blobs with the parts of objects.
type BlobSource interface {
	// Blobs calls add, once per blob, for every blob the service keeps
	// (not its garbage), with its size in bytes.
	Blobs(tx *memdb.Txn, add func(key string, l blob.Layout, size int64))
	// Relocate records that blob key, found at old, now lives at next. It
	// fails with an error that is a store.ErrConflict when the service no
	// longer names key at old.
	Relocate(ctx context.Context, key string, old, next blob.Layout) error
}

// maintStats is what this node's loops report about themselves.
type maintStats struct {
	mu           sync.Mutex
	healed       int64
	moved        int64
	movedBytes   int64
	scrubbed     int64
	scrubErrors  int64
	healFailures int64
	lastPass     time.Time
	// pass is what the last repair pass found, before it moved anything.
	pass passCount
	// retries are the queued blobs whose heal failed, by blob key: the
	// healer waits before trying each again, longer after each failure.
	retries map[string]*healRetry
}

// healRetry is the backoff of one blob the healer failed to rebuild.
type healRetry struct {
	object   string
	failures int
	next     time.Time
	reason   string
	warned   time.Time // when the last WARN line about it was logged
}

// Heal backoff: after n failures a blob waits healRetryMin·2^(n-1), at
// most healRetryMax, so a blob that cannot be rebuilt (too many shards
// lost) costs a few reads an hour instead of one a second. Its failure is
// logged at WARN once, when the reason changes, and then every
// healWarnEvery.
const (
	healRetryMin  = 2 * time.Second
	healRetryMax  = 15 * time.Minute
	healWarnEvery = time.Hour
)

func healDelay(failures int) time.Duration {
	d := healRetryMin
	for i := 1; i < failures && d < healRetryMax; i++ {
		d *= 2
	}
	return min(d, healRetryMax)
}

// Run registers this node's disks and, while this node leads, keeps the
// stored data whole and well placed. It returns when ctx ends.
func (s *Service) Run(ctx context.Context) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastRegister, lastRepair, lastSweep time.Time
	// The repair pass walks every part; it runs when the disks placement
	// sees change, while the last pass left work, and once a minute.
	repairedFor := ""
	scrub := &scrubber{}
	for {
		now := time.Now()
		if now.Sub(lastRegister) >= 30*time.Second {
			if err := s.registerDisks(ctx); err != nil {
				s.log.Debug("register disks", "err", err)
			} else {
				lastRegister = now
			}
		}
		s.healWiped(ctx)
		if now.Sub(lastSweep) >= s.cfg.OrphanEvery {
			if err := s.sweepOrphans(ctx); err != nil {
				s.log.Debug("sweep orphan shards", "err", err)
			}
			lastSweep = now
		}
		if s.cfg.IsLeader() {
			s.expireObjects(ctx)
			s.collectGarbage(ctx)
			s.healQueued(ctx)
			if fp := s.diskFingerprint(ctx); fp != repairedFor && now.Sub(lastRepair) >= 5*time.Second || now.Sub(lastRepair) >= time.Minute {
				repairedFor = ""
				if s.repairPass(ctx) {
					repairedFor = fp
				}
				lastRepair = now
			}
			s.scrubSome(ctx, scrub)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// diskFingerprint names the disks placement uses now and which of them
// answer: a change means parts may need to move.
func (s *Service) diskFingerprint(ctx context.Context) string {
	tx, err := s.read(ctx)
	if err != nil {
		return ""
	}
	var b strings.Builder
	for _, d := range s.activeDisks(tx) {
		b.WriteString(d.ID)
		if s.cfg.NodeUp(d.Node) {
			b.WriteByte('+')
		}
		b.WriteByte(' ')
	}
	return b.String()
}

// registerDisks tells the cluster which disks this node serves now.
func (s *Service) registerDisks(ctx context.Context) error {
	if s.cfg.Local == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := s.repl.Propose(ctx, cmdDiskSet, diskSetCmd{Node: s.cfg.Node, Disks: s.cfg.Local()})
	return err
}

// RegisterDisks registers this node's disks at once (startup), so that the
// first writes can use them.
func (s *Service) RegisterDisks(ctx context.Context) error { return s.registerDisks(ctx) }

// healWiped queues a heal of every blob with a shard on a local disk that
// was emptied under us (replaced, or wiped by an operator).
func (s *Service) healWiped(ctx context.Context) {
	if s.cfg.Wiped == nil {
		return
	}
	wiped := s.cfg.Wiped()
	if len(wiped) == 0 {
		return
	}
	on := map[string]bool{}
	for _, id := range wiped {
		on[id] = true
	}
	parts, _, err := s.parts(ctx)
	if err != nil {
		return
	}
	var items []HealItem
	for _, pp := range parts {
		for _, d := range pp.part.Layout.Disks {
			if on[d.ID] && d.Node == s.cfg.Node && pp.healable() {
				items = append(items, pp.healItem(s.now()))
				break
			}
		}
	}
	s.log.Warn("disk found wiped; healing what it held", "disks", wiped, "blobs", len(items))
	for len(items) > 0 {
		n := min(len(items), 500)
		s.propose(ctx, cmdHealAdd, healAddCmd{Items: items[:n]})
		items = items[n:]
	}
}

// collectGarbage deletes the shards of unreferenced blobs.
func (s *Service) collectGarbage(ctx context.Context) {
	tx, err := s.read(ctx)
	if err != nil {
		return
	}
	var done []string
	for _, g := range store.All[Garbage](tx, tGarbage, "id") {
		if len(done) == 256 {
			break
		}
		if err := s.blobs.Delete(ctx, g.Part.Blob, g.Part.Layout); err != nil && !s.unreachableOnlyOnLost(tx, g.Part.Layout) {
			s.log.Debug("collect garbage", "blob", g.ID, "err", err)
			continue
		}
		done = append(done, g.ID)
	}
	if len(done) > 0 {
		s.propose(ctx, cmdGarbageDone, idsCmd{IDs: done})
	}
}

// sweepOrphans deletes the shard files on this node's disks that no part
// in the state names (objects, upload parts and garbage): blobs whose
// command's outcome was unknown and which never committed, blobs of
// writers that died before deleting them, and shards a move left behind.
// A file is deleted only once it has been seen unnamed for OrphanGrace, so
// a blob being written now, or named by a command still in flight, stays.
// Every node sweeps its own disks, so no shard listing crosses the network.
func (s *Service) sweepOrphans(ctx context.Context) error {
	// List before reading the state: a listed file whose command
	// committed before the read shows as named; one whose command commits
	// later is still within its grace.
	type file struct {
		d    disk.Disk
		name string
	}
	var files []file
	for _, d := range s.blobs.Local {
		names, err := d.List()
		if err != nil {
			return fmt.Errorf("list disk %s: %w", d.ID(), err)
		}
		for _, n := range names {
			files = append(files, file{d, n})
		}
	}
	tx, err := s.read(ctx)
	if err != nil {
		return err
	}
	named := map[string]bool{}
	name := func(p Part) {
		for i, d := range p.Layout.Disks {
			if d.Node == s.cfg.Node {
				named[d.ID+"/"+blob.ShardName(p.Blob, i)] = true
			}
		}
	}
	for _, pp := range s.partsOf(tx) {
		name(pp.part)
	}
	for _, g := range store.All[Garbage](tx, tGarbage, "id") {
		name(g.Part)
	}
	if s.cfg.Named != nil {
		s.cfg.Named(tx, func(key string, l blob.Layout) { name(Part{Blob: key, Layout: l}) })
	}
	now := s.cfg.Now()
	seen := map[string]time.Time{}
	for _, f := range files {
		id := f.d.ID() + "/" + f.name
		if named[id] {
			continue
		}
		first, ok := s.orphans[id]
		if !ok {
			seen[id] = now
			continue
		}
		if now.Sub(first) < s.cfg.OrphanGrace {
			seen[id] = first
			continue
		}
		if err := f.d.Remove(f.name); err != nil {
			s.log.Warn("delete orphan shard", "disk", f.d.ID(), "shard", f.name, "err", err)
			seen[id] = first
			continue
		}
		s.log.Info("deleted orphan shard", "disk", f.d.ID(), "shard", f.name, "unnamed_since", first)
	}
	s.orphans = seen
	return nil
}

// unreachableOnlyOnLost: the disks of l that could not be reached are gone
// for good, so their shards need no deleting.
func (s *Service) unreachableOnlyOnLost(tx *memdb.Txn, l blob.Layout) bool {
	for _, d := range l.Disks {
		row := store.Get[DiskRow](tx, tDisks, d.ID)
		if row != nil && !row.Gone && !s.cfg.NodeLost(d.Node) && !s.cfg.NodeUp(d.Node) {
			return false
		}
	}
	return true
}

func (s *Service) propose(ctx context.Context, typ string, body any) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := s.repl.Propose(ctx, typ, body); err != nil && ctx.Err() == nil {
		s.log.Warn("storage maintenance", "command", typ, "err", err)
	}
}

// QueueHeal queues blob key of source (a Config.Sources name) for the
// healer: a reader or writer of the source found it degraded. A failure is
// only logged: the scrubber finds the blob later.
func (s *Service) QueueHeal(ctx context.Context, source, key string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := s.repl.Propose(ctx, cmdHealAdd, healAddCmd{Items: []HealItem{{ID: key, Source: source, Since: s.now()}}}); err != nil {
		s.log.Warn("queue heal", "source", source, "blob", key, "err", err)
	}
}

// healQueued rebuilds the blobs readers found degraded. A blob whose heal
// fails waits (see healDelay) before it is tried again.
func (s *Service) healQueued(ctx context.Context) {
	tx, err := s.read(ctx)
	if err != nil {
		return
	}
	now := s.cfg.Now()
	queued := map[string]bool{}
	var done []string
	var sourced map[string]placedPart // the sources' blobs, listed when first needed
	stopped := false                  // ctx ended while pacing
	for _, h := range store.All[HealItem](tx, tHeal, "id") {
		queued[h.ID] = true
		if stopped {
			continue
		}
		var part Part
		var ok bool
		var label string
		if h.Source != "" {
			if sourced == nil {
				sourced = map[string]placedPart{}
				for _, pp := range s.sourceParts(tx) {
					sourced[pp.part.Blob] = pp
				}
			}
			pp, found := sourced[h.ID]
			part, ok, label = pp.part, found && pp.source == h.Source, h.Source
		} else {
			obj, _ := objectRow(tx, h.Object)
			part, ok = findPart(obj, h.ID)
			if ok {
				label = obj.Project + "/" + obj.Container + "/" + obj.Name
			}
		}
		if !ok {
			done = append(done, h.ID) // deleted or replaced since
			continue
		}
		s.maint.mu.Lock()
		r := s.maint.retries[h.ID]
		s.maint.mu.Unlock()
		if r != nil && now.Before(r.next) {
			continue
		}
		// Clients first: while this node serves object traffic, heal
		// within BusyRate (a quarter of it while a request is in flight),
		// shared with the scrubber and the repair pass, stripe by stripe
		// so the reads beside it do not meet a whole blob rebuilt at the
		// disks' speed.
		start := time.Now()
		var paced int64
		rewrote, err := s.blobs.HealPaced(ctx, part.Blob, part.Layout, part.Size, func(ctx context.Context, n int64) bool {
			ok := s.backOff(ctx, start, n)
			start, paced = time.Now(), paced+n
			return ok
		})
		if err != nil {
			if ctx.Err() == nil {
				s.healFailed(h, label, err, now)
			}
			continue
		}
		s.log.Info("healed", "object", label, "blob", h.ID, "shards", rewrote)
		s.maint.mu.Lock()
		s.maint.healed += int64(len(rewrote))
		s.maint.mu.Unlock()
		done = append(done, h.ID)
		if !s.backOff(ctx, start, max(0, part.Size-paced)) {
			stopped = true
		}
	}
	// Forget the backoff of blobs no longer queued (healed, deleted, or
	// dropped by another leader).
	s.maint.mu.Lock()
	for id := range s.maint.retries {
		if !queued[id] {
			delete(s.maint.retries, id)
		}
	}
	for _, id := range done {
		delete(s.maint.retries, id)
	}
	s.maint.mu.Unlock()
	if len(done) > 0 {
		s.propose(ctx, cmdHealDone, idsCmd{IDs: done})
	}
}

// healFailed counts a failed heal, schedules the next try and logs it: at
// WARN the first time, when the reason changes and every healWarnEvery;
// otherwise at DEBUG.
// label names what holds the blob: an object's project/container/name,
// or the source's name.
func (s *Service) healFailed(h *HealItem, label string, err error, now time.Time) {
	s.maint.mu.Lock()
	if s.maint.retries == nil {
		s.maint.retries = map[string]*healRetry{}
	}
	r := s.maint.retries[h.ID]
	if r == nil {
		r = &healRetry{object: label}
		s.maint.retries[h.ID] = r
	}
	r.failures++
	delay := healDelay(r.failures)
	r.next = now.Add(delay)
	reason := err.Error()
	warn := reason != r.reason || now.Sub(r.warned) >= healWarnEvery
	r.reason = reason
	if warn {
		r.warned = now
	}
	failures := r.failures
	s.maint.healFailures++
	s.maint.mu.Unlock()
	level := slog.LevelDebug
	if warn {
		level = slog.LevelWarn
	}
	s.log.Log(context.Background(), level, "heal failed; retrying later", "object", label, "blob", h.ID,
		"failures", failures, "retry_in", delay, "err", err)
}

func findPart(o *Object, blobKey string) (Part, bool) {
	if o == nil {
		return Part{}, false
	}
	for _, p := range o.Parts {
		if p.Blob == blobKey {
			return p, true
		}
	}
	return Part{}, false
}

// placedPart is a part with where it lives in the state.
type placedPart struct {
	object string // object id, or "" for an upload part or a source's blob
	upload string // upload part id
	source string // the Config.Sources name of a blob another service keeps
	part   Part
}

// healable: the healer can find the part again from a HealItem (upload
// parts are short-lived and not queued).
func (pp placedPart) healable() bool { return pp.object != "" || pp.source != "" }

func (pp placedPart) healItem(since time.Time) HealItem {
	return HealItem{ID: pp.part.Blob, Object: pp.object, Source: pp.source, Since: since}
}

// parts lists every stored part, of objects and of uploads in progress,
// and the disks placement uses now.
func (s *Service) parts(ctx context.Context) ([]placedPart, []placement.Disk, error) {
	tx, err := s.read(ctx)
	if err != nil {
		return nil, nil, err
	}
	return s.partsOf(tx), s.activeDisks(tx), nil
}

// partsOf lists every blob the maintenance keeps: the parts of objects and
// uploads, then the blobs of the other sources.
func (s *Service) partsOf(tx *memdb.Txn) []placedPart {
	var out []placedPart
	// Current and noncurrent versions alike (versions.go).
	for _, table := range []string{tObjects, tVersions} {
		for _, o := range store.All[Object](tx, table, "id") {
			for _, p := range o.Parts {
				if !p.Inline { // an inline part has no blob: its bytes are in the state
					out = append(out, placedPart{object: o.ID, part: p})
				}
			}
		}
	}
	for _, u := range store.All[UploadPart](tx, tUploadParts, "id") {
		out = append(out, placedPart{upload: u.ID, part: u.Part})
	}
	return append(out, s.sourceParts(tx)...)
}

// sourceParts lists the blobs of Config.Sources, in the order of their
// names.
func (s *Service) sourceParts(tx *memdb.Txn) []placedPart {
	names := make([]string, 0, len(s.cfg.Sources))
	for name := range s.cfg.Sources {
		names = append(names, name)
	}
	sort.Strings(names)
	var out []placedPart
	for _, name := range names {
		s.cfg.Sources[name].Blobs(tx, func(key string, l blob.Layout, size int64) {
			out = append(out, placedPart{source: name, part: Part{Blob: key, Size: size, Layout: l}})
		})
	}
	return out
}

// target is where a part should live: the disks placement picks for it
// now, keeping every shard that already sits on one of them where it is.
// ok is false when it is already there or cannot be placed.
func target(p Part, disks []placement.Disk) (blob.Layout, bool) {
	n := len(p.Layout.Disks)
	if len(disks) < n {
		return blob.Layout{}, false
	}
	want, err := placement.Place(p.Blob, disks, n)
	if err != nil {
		return blob.Layout{}, false
	}
	wanted := map[placement.Disk]bool{}
	for _, d := range want {
		wanted[d] = true
	}
	next := p.Layout
	next.Disks = append([]placement.Disk(nil), p.Layout.Disks...)
	used := map[placement.Disk]bool{}
	var free []int
	for i, d := range next.Disks {
		if wanted[d] && !used[d] {
			used[d] = true
		} else {
			free = append(free, i)
		}
	}
	if len(free) == 0 {
		return blob.Layout{}, false
	}
	j := 0
	for _, d := range want {
		if !used[d] {
			next.Disks[free[j]] = d
			j++
		}
	}
	return next, true
}

// repairPass moves every part that is not where placement wants it: off
// gone disks and lost nodes (healing), onto new disks (rebalancing). It
// bounds its own speed to RebalanceRate. It reports whether everything is
// where placement wants it now.
func (s *Service) repairPass(ctx context.Context) (clean bool) {
	parts, disks, err := s.parts(ctx)
	if err != nil {
		return false
	}
	s.countPass(parts, disks)
	clean = true
	for _, pp := range parts {
		if ctx.Err() != nil || !s.cfg.IsLeader() {
			return false
		}
		next, ok := target(pp.part, disks)
		if !ok {
			continue
		}
		start := time.Now()
		n, err := s.movePart(ctx, pp, next)
		if err != nil {
			s.log.Warn("move part", "blob", pp.part.Blob, "err", err)
			clean = false
			continue
		}
		s.maint.mu.Lock()
		s.maint.moved++
		s.maint.movedBytes += n
		s.maint.mu.Unlock()
		// Bounded impact: never faster than RebalanceRate, and while
		// clients are served within BusyRate with the other loops.
		if !pace(ctx, start, n, s.cfg.RebalanceRate) || !s.backOff(ctx, start, n) {
			return false
		}
	}
	s.maint.mu.Lock()
	s.maint.lastPass = time.Now()
	s.maint.mu.Unlock()
	return clean
}

// passCount is what a repair pass found: the parts not where placement
// wants them, and those with a shard off the active disks (a gone disk, a
// lost node). It walks the parts the pass lists anyway, so the metrics
// have these counts without a walk of every part per scrape.
type passCount struct {
	done                bool
	misplaced, degraded int
}

func (s *Service) countPass(parts []placedPart, disks []placement.Disk) {
	active := make(map[placement.Disk]bool, len(disks))
	for _, d := range disks {
		active[d] = true
	}
	c := passCount{done: true}
	for _, pp := range parts {
		if _, ok := target(pp.part, disks); ok {
			c.misplaced++
		}
		for _, d := range pp.part.Layout.Disks {
			if !active[d] {
				c.degraded++
				break
			}
		}
	}
	s.maint.mu.Lock()
	s.maint.pass = c
	s.maint.mu.Unlock()
}

// passCounts returns what the last repair pass of this node found; ok is
// false before its first pass.
func (s *Service) passCounts() (passCount, bool) {
	s.maint.mu.Lock()
	defer s.maint.mu.Unlock()
	return s.maint.pass, s.maint.pass.done
}

// pace waits until n bytes moved since start have taken at least the
// time rate (bytes per second) allows. It reports false if ctx ended
// first.
func pace(ctx context.Context, start time.Time, n, rate int64) bool {
	want := time.Duration(float64(n) / float64(rate) * float64(time.Second))
	return sleep(ctx, want-time.Since(start))
}

// sleep waits d (nothing if d is not positive); it reports false if ctx
// ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// movePart copies (or rebuilds) a part's shards onto their new disks,
// records the new layout, and deletes the shards it left.
func (s *Service) movePart(ctx context.Context, pp placedPart, next blob.Layout) (int64, error) {
	old := pp.part
	n, err := s.blobs.Move(ctx, old.Blob, old.Layout, next, old.Size)
	// drop deletes, on l's disks, the shards whose disk the move changes.
	drop := func(l blob.Layout) {
		for i := range next.Disks {
			if next.Disks[i] != old.Layout.Disks[i] {
				s.blobs.DeleteShard(context.WithoutCancel(ctx), old.Blob, i, l.Disks[i])
			}
		}
	}
	if err != nil {
		drop(next)
		return 0, err
	}
	if pp.source != "" {
		err = s.cfg.Sources[pp.source].Relocate(ctx, old.Blob, old.Layout, next)
	} else {
		np := old
		np.Layout = next
		_, err = s.repl.Propose(ctx, cmdRelocate, relocateCmd{Object: pp.object, Upload: pp.upload, Old: old, New: np})
	}
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			drop(next)
		}
		return 0, err
	}
	drop(old.Layout)
	return n, nil
}

// scrubber walks all parts, a few per tick, so a whole pass takes about
// ScrubEvery.
type scrubber struct {
	queue []placedPart
	start time.Time
	total int
}

func (s *Service) scrubSome(ctx context.Context, sc *scrubber) {
	if len(sc.queue) == 0 {
		if time.Since(sc.start) < s.cfg.ScrubEvery && !sc.start.IsZero() {
			return
		}
		parts, _, err := s.parts(ctx)
		if err != nil || len(parts) == 0 {
			return
		}
		sort.Slice(parts, func(i, j int) bool { return parts[i].part.Blob < parts[j].part.Blob })
		sc.queue, sc.start, sc.total = parts, time.Now(), len(parts)
	}
	// Spread the pass over ScrubEvery in one-second ticks.
	per := sc.total/int(max(1, s.cfg.ScrubEvery/time.Second)) + 1
	for i := 0; i < per && len(sc.queue) > 0; i++ {
		pp := sc.queue[0]
		sc.queue = sc.queue[1:]
		start := time.Now()
		s.scrubPart(ctx, pp)
		// Verify reads every shard, parity too: while clients are
		// served, those reads share BusyRate with the healer's.
		if !s.backOff(ctx, start, verifiedBytes(pp.part)) {
			return
		}
	}
}

// scrubPart verifies every shard of pp and queues it for healing if any
// is missing or corrupt.
func (s *Service) scrubPart(ctx context.Context, pp placedPart) {
	bad, err := s.blobs.Verify(ctx, pp.part.Blob, pp.part.Layout, pp.part.Size)
	if err == nil && len(bad) > 0 && !s.stillStored(ctx, pp) {
		// The queue was listed at the start of the pass: since then
		// the blob was deleted (and the collector removed its
		// shards) or moved. Its shards are gone by design.
		bad = nil
	}
	s.maint.mu.Lock()
	s.maint.scrubbed++
	if err == nil && len(bad) > 0 {
		s.maint.scrubErrors += int64(len(bad))
	}
	s.maint.mu.Unlock()
	if err != nil || len(bad) == 0 || !pp.healable() {
		return
	}
	s.log.Warn("scrub found bad shards; healing", "blob", pp.part.Blob, "shards", bad)
	s.propose(ctx, cmdHealAdd, healAddCmd{Items: []HealItem{pp.healItem(s.now())}})
}

// verifiedBytes is what verifying p reads: its data and parity shards.
func verifiedBytes(p Part) int64 {
	if p.Layout.K <= 0 {
		return p.Size
	}
	return p.Size * int64(p.Layout.K+p.Layout.M) / int64(p.Layout.K)
}

// stillStored reports whether the state, read now, still names the part
// where pp says it is (so its missing shards are damage, not deletion). A
// state that cannot be read counts as stored: the damage is reported and
// the healer checks again.
func (s *Service) stillStored(ctx context.Context, pp placedPart) bool {
	tx, err := s.read(ctx)
	if err != nil {
		return true
	}
	var p Part
	var ok bool
	if pp.source != "" {
		for _, sp := range s.sourceParts(tx) {
			if sp.source == pp.source && sp.part.Blob == pp.part.Blob {
				p, ok = sp.part, true
			}
		}
	} else if pp.object != "" {
		o, _ := objectRow(tx, pp.object)
		p, ok = findPart(o, pp.part.Blob)
	} else if up := store.Get[UploadPart](tx, tUploadParts, pp.upload); up != nil && up.Part.Blob == pp.part.Blob {
		p, ok = up.Part, true
	}
	return ok && reflect.DeepEqual(p.Layout, pp.part.Layout)
}

// The status bodies live in objectapi so that rackctl decodes them
// without linking the erasure coder.
type (
	Status       = objectapi.Status
	DiskStatus   = objectapi.DiskStatus
	Capacity     = objectapi.Capacity
	Counters     = objectapi.Counters
	HealRetry    = objectapi.HealRetry
	NodeCounters = objectapi.NodeCounters
)

// Counters reports this node's loops.
func (s *Service) Counters() Counters {
	s.maint.mu.Lock()
	defer s.maint.mu.Unlock()
	c := Counters{
		Healed: s.maint.healed, Moved: s.maint.moved, MovedBytes: s.maint.movedBytes,
		Scrubbed: s.maint.scrubbed, ScrubErrors: s.maint.scrubErrors, HealFailures: s.maint.healFailures,
		LastPass: s.maint.lastPass,
	}
	for id, r := range s.maint.retries {
		c.HealBackoff = append(c.HealBackoff, HealRetry{Blob: id, Object: r.object, Node: s.cfg.Node, Failures: r.failures, NextTry: r.next, Reason: r.reason})
	}
	sort.Slice(c.HealBackoff, func(i, j int) bool { return c.HealBackoff[i].Blob < c.HealBackoff[j].Blob })
	return c
}

// Status reports the state of the store.
func (s *Service) Status(ctx context.Context) (Status, error) {
	tx, err := s.read(ctx)
	if err != nil {
		return Status{}, err
	}
	disks := s.activeDisks(tx)
	var st Status
	st.K, st.M = s.geometry(len(disks))
	bad := map[string]bool{}
	shards := map[string]int{}
	used := map[string]int64{}
	for _, d := range store.All[DiskRow](tx, tDisks, "id") {
		if d.Gone || s.cfg.NodeLost(d.Node) {
			bad[d.ID] = true
		}
	}
	parts := s.partsOf(tx)
	st.Parts = len(parts)
	for _, pp := range parts {
		if _, ok := target(pp.part, disks); ok {
			st.Misplaced++
		}
		degraded := false
		l := pp.part.Layout
		stripeData := int64(l.K * l.ShardSize)
		shardBytes := (pp.part.Size + stripeData - 1) / stripeData * int64(4+l.ShardSize)
		for _, d := range l.Disks {
			shards[d.ID]++
			used[d.ID] += shardBytes
			degraded = degraded || bad[d.ID]
		}
		if degraded {
			st.Degraded++
		}
	}
	for _, d := range store.All[DiskRow](tx, tDisks, "id") {
		st.Disks = append(st.Disks, DiskStatus{Disk: objectapi.Disk(*d), Up: !d.Gone && s.cfg.NodeUp(d.Node), Shards: shards[d.ID], Used: used[d.ID]})
	}
	sort.Slice(st.Disks, func(i, j int) bool {
		if st.Disks[i].Node != st.Disks[j].Node {
			return st.Disks[i].Node < st.Disks[j].Node
		}
		return st.Disks[i].Path < st.Disks[j].Path
	})
	st.HealQueue = len(store.All[HealItem](tx, tHeal, "id"))
	st.Garbage = len(store.All[Garbage](tx, tGarbage, "id"))
	st.Capacity = capacity(st.Disks)
	st.Nodes = []NodeCounters{{Node: s.cfg.Node, Counters: s.Counters()}}
	if s.cfg.Peers != nil {
		st.Nodes = append(st.Nodes, s.cfg.Peers(ctx)...)
	}
	sort.Slice(st.Nodes, func(i, j int) bool { return st.Nodes[i].Node < st.Nodes[j].Node })
	for _, n := range st.Nodes {
		st.Counters.Add(n.Counters)
	}
	return st, nil
}

// capacity sums the space of the disks' filesystems, once per filesystem
// of a node: disk directories on one filesystem share its space. Gone
// disks hold nothing any more.
func capacity(disks []DiskStatus) Capacity {
	var c Capacity
	seen := map[string]bool{}
	for _, d := range disks {
		if d.Gone {
			continue
		}
		fs := d.FS
		if fs == "" {
			fs = "disk " + d.ID // registered by a node that does not say
		}
		if key := d.Node + "\x00" + fs; !seen[key] {
			seen[key] = true
			c.Total += d.Total
			c.Free += d.Free
			c.Filesystems++
		}
	}
	return c
}
