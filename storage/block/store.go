// Package block stores volumes: thin byte arrays on erasure-coded extents,
// with copy-on-write snapshots and clones, written through a replicated
// journal so that small writes are cheap and a flushed write survives a
// crash. DESIGN.md says how and why.
package block

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/storage/blob"
	"github.com/rackstack/rackstack/storage/placement"
)

// Geometry of a volume.
const (
	PageSize   = 4096
	ExtentSize = 4 << 20
	pagesPer   = ExtentSize / PageSize
	// extentShard and segmentShard are the shard blocks of extent and
	// journal blobs: small, so a 4 KiB read reconstructs little.
	extentShard  = 32 << 10
	segmentShard = 64 << 10
)

// Errors of the store. Refusals of the state machine are translated into
// these, so callers test with errors.Is.
var (
	ErrNotFound = errors.New("volume not found")
	ErrExists   = errors.New("volume already exists")
	ErrInvalid  = errors.New("invalid volume request")
	// ErrFenced means another Open took the volume: this writer may not
	// commit anything more.
	ErrFenced   = errors.New("volume is opened by a newer writer")
	ErrReadOnly = errors.New("snapshots are read-only")
	ErrClosed   = errors.New("volume is closed")
	ErrNoDisks  = errors.New("no storage disks are available")
)

// Fault names of this package's refusals.
const (
	faultFenced = "BlockFenced"
	faultStale  = "BlockFoldStale"
)

// Blobs is what the store needs of storage/blob (a *blob.Store).
type Blobs interface {
	Put(ctx context.Context, key string, l blob.Layout, r io.Reader) (blob.Info, error)
	Get(ctx context.Context, key string, l blob.Layout, size, offset, length int64, w io.Writer) (blob.ReadResult, error)
	ReadAt(ctx context.Context, key string, l blob.Layout, size int64, p []byte, off int64) (blob.ReadResult, error)
	Delete(ctx context.Context, key string, l blob.Layout) error
}

// Config wires a Store into the node.
type Config struct {
	Repl  store.Replicated
	Blobs Blobs
	// Disks lists the disks data may be placed on now.
	Disks func(ctx context.Context) ([]placement.Disk, error)
	// K and M are the default coding of new volumes; 0 chooses it from the
	// number of disks.
	K, M int
	Log  *slog.Logger
	// DirtyLimit bounds the unflushed bytes of an open volume (default
	// 32 MiB); past it a write flushes first.
	DirtyLimit int64
	// FoldBytes is the journal size past which segments are folded into
	// extents (default 64 MiB); a flush waits for the fold once the
	// journal is 4 times that.
	FoldBytes int64
	// HoldBytes bounds the data an open volume's spills (flushes of a
	// full cache) write without fsync and hold uncommitted until the
	// client's flush (write-back, DESIGN.md; default 256 MiB); a spill
	// that reaches it commits them. Negative: no write-back, every
	// spill is durable and committed.
	HoldBytes int64
	// HoldAge is how long a spill's writes stay held at most before
	// they are committed in the background (default 5s).
	HoldAge time.Duration
	// GarbageGrace is how long a blob stays after it became garbage before
	// it is deleted (default 1m): a read that began before the command
	// that unnamed it may still be reading it.
	GarbageGrace time.Duration
	// IsLeader says whether this node collects garbage (default: yes).
	IsLeader func() bool
	Now      func() time.Time
	// Degraded, if set, is told (at most once a minute per blob) of a
	// named blob found missing or corrupt shards, by a read or by a write
	// that reached its quorum without all of them: rackd queues it for the
	// object store's healer. It must not block.
	Degraded func(key string)
}

// degradedEvery is how often a blob is reported degraded at most: reads
// of a damaged extent come by the thousand, one heal item does.
const degradedEvery = time.Minute

// Options are the choices of a new volume.
type Options struct {
	// K and M fix the erasure coding (K data + M parity shards per
	// stripe); 0 takes the store's default. K=1 is M+1 replicas.
	K, M int
}

// Store holds the volumes of the cluster; one per rackd.
type Store struct {
	cfg Config
	log *slog.Logger
	mu  sync.Mutex
	// open are the volumes open in this process, for Snapshot to flush
	// and Resize to grow.
	open map[string]*Volume
	// garbageSeen is when the collector first saw each garbage blob.
	gcMu        sync.Mutex
	garbageSeen map[string]time.Time
	// reported is when each blob was last reported degraded.
	reportMu sync.Mutex
	reported map[string]time.Time
	// foldSlots bounds the folds running at once, all volumes together:
	// each holds two groups of packExtents extents in memory.
	foldSlots chan struct{}
}

// maxFolds is the most folds a Store runs at once.
const maxFolds = 2

// New returns a Store.
func New(cfg Config) *Store {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.DirtyLimit == 0 {
		cfg.DirtyLimit = 32 << 20
	}
	if cfg.FoldBytes == 0 {
		cfg.FoldBytes = 64 << 20
	}
	if cfg.HoldBytes == 0 {
		cfg.HoldBytes = 256 << 20
	}
	if cfg.HoldAge == 0 {
		cfg.HoldAge = 5 * time.Second
	}
	if cfg.GarbageGrace == 0 {
		cfg.GarbageGrace = time.Minute
	}
	if cfg.IsLeader == nil {
		cfg.IsLeader = func() bool { return true }
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Store{cfg: cfg, log: cfg.Log, open: map[string]*Volume{}, garbageSeen: map[string]time.Time{}, reported: map[string]time.Time{},
		foldSlots: make(chan struct{}, maxFolds)}
}

func newKey() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("read random bytes: %v", err)) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b[:])
}

// keysIn returns a source of new blob keys whose first byte is first
// (the rest random, 120 bits): a shard file's directory is named by its
// key's first byte, so the shards of one flush's blobs share one
// directory per disk, synced once for all of them.
func keysIn(first byte) func() string {
	return func() string {
		var b [16]byte
		if _, err := rand.Read(b[1:]); err != nil {
			panic(fmt.Sprintf("read random bytes: %v", err)) // crypto/rand does not fail on Linux
		}
		b[0] = first
		return hex.EncodeToString(b[:])
	}
}

func randomByte() byte {
	var b [1]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("read random bytes: %v", err))
	}
	return b[0]
}

// translate maps the state machine's refusals to the package's errors,
// keeping the message.
func translate(err error) error {
	var ae *store.ApplyError
	if !errors.As(err, &ae) {
		return err
	}
	switch {
	case ae.Fault == faultFenced:
		return fmt.Errorf("%w: %s", ErrFenced, ae.Msg)
	case ae.Kind == store.KindNotFound:
		return fmt.Errorf("%w: %s", ErrNotFound, ae.Msg)
	case ae.Kind == store.KindConflict && ae.Fault == "":
		return fmt.Errorf("%w: %s", ErrExists, ae.Msg)
	case ae.Kind == store.KindInvalid:
		return fmt.Errorf("%w: %s", ErrInvalid, ae.Msg)
	}
	return err
}

func (s *Store) propose(ctx context.Context, typ string, body any) (store.Result, error) {
	r, err := s.cfg.Repl.Propose(ctx, typ, body)
	return r, translate(err)
}

func checkID(id string) error {
	if id == "" || len(id) > 128 {
		return fmt.Errorf("%w: id must be 1 to 128 bytes", ErrInvalid)
	}
	for _, c := range id {
		if c == '/' || c == 0 {
			return fmt.Errorf("%w: id must not contain '/' or NUL", ErrInvalid)
		}
	}
	return nil
}

func checkSize(size int64) error {
	if size <= 0 || size%PageSize != 0 {
		return fmt.Errorf("%w: size must be a positive multiple of %d bytes, not %d", ErrInvalid, PageSize, size)
	}
	return nil
}

// Create makes an empty (thin: all zeroes, no space used) volume.
func (s *Store) Create(ctx context.Context, id string, size int64, opts Options) error {
	if err := checkID(id); err != nil {
		return err
	}
	if err := checkSize(size); err != nil {
		return err
	}
	if opts.K < 0 || opts.M < 0 || opts.K > 16 || opts.M > 16 || (opts.K == 0 && opts.M != 0) {
		return fmt.Errorf("%w: policy: k must be 1 to 16 when m is given, m 0 to 16", ErrInvalid)
	}
	k, m := opts.K, opts.M
	if k == 0 {
		k, m = s.cfg.K, s.cfg.M
	}
	if k == 0 {
		disks, err := s.cfg.Disks(ctx)
		if err != nil {
			return fmt.Errorf("create volume %s: %w", id, err)
		}
		if len(disks) == 0 {
			return fmt.Errorf("create volume %s: %w", id, ErrNoDisks)
		}
		k, m = placement.Geometry(len(disks))
	}
	row := VolumeRow{ID: id, Kind: KindVolume, Size: size, K: k, M: m, Created: s.cfg.Now().UTC()}
	if _, err := s.propose(ctx, cmdCreate, createCmd{Row: row}); err != nil {
		return fmt.Errorf("create volume %s: %w", id, err)
	}
	return nil
}

// Clone makes volume id a copy of from (a volume or a snapshot). Nothing
// is copied: both name the same blobs until one of them is written.
func (s *Store) Clone(ctx context.Context, id, from string) error {
	return s.clone(ctx, id, from, KindVolume)
}

// Snapshot makes a read-only point-in-time copy of volume, holding every
// write to it flushed before the call (an open volume here is flushed
// first).
func (s *Store) Snapshot(ctx context.Context, id, volume string) error {
	return s.clone(ctx, id, volume, KindSnapshot)
}

func (s *Store) clone(ctx context.Context, id, from, kind string) error {
	if err := checkID(id); err != nil {
		return err
	}
	s.mu.Lock()
	v := s.open[from]
	s.mu.Unlock()
	if v != nil {
		if err := v.Flush(ctx); err != nil && !errors.Is(err, ErrClosed) {
			return fmt.Errorf("flush %s before copying it: %w", from, err)
		}
	}
	if _, err := s.propose(ctx, cmdClone, cloneCmd{ID: id, From: from, Kind: kind, Created: s.cfg.Now().UTC()}); err != nil {
		return fmt.Errorf("copy %s to %s: %w", from, id, err)
	}
	return nil
}

// Resize grows a volume to size bytes; the new space reads as zeroes.
func (s *Store) Resize(ctx context.Context, id string, size int64) error {
	if err := checkSize(size); err != nil {
		return err
	}
	if _, err := s.propose(ctx, cmdResize, resizeCmd{ID: id, Size: size}); err != nil {
		return fmt.Errorf("resize volume %s: %w", id, err)
	}
	s.mu.Lock()
	v := s.open[id]
	s.mu.Unlock()
	if v != nil {
		v.grow(size)
	}
	return nil
}

// Delete removes a volume or a snapshot; the blobs nothing else names are
// reclaimed in the background. Deleting what does not exist succeeds.
func (s *Store) Delete(ctx context.Context, id string) error {
	if _, err := s.propose(ctx, cmdDelete, idCmd{ID: id}); err != nil {
		return fmt.Errorf("delete volume %s: %w", id, err)
	}
	return nil
}

// Info returns a volume's or snapshot's row.
func (s *Store) Info(ctx context.Context, id string) (*VolumeRow, error) {
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return nil, err
	}
	v := store.Get[VolumeRow](tx, tVolumes, id)
	if v == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return v, nil
}

// Usage is the space volumes take.
type Usage struct {
	Volumes   int `json:"volumes"`
	Snapshots int `json:"snapshots"`
	// Provisioned is the sum of the volumes' sizes.
	Provisioned int64 `json:"provisioned_bytes"`
	// Allocated counts every distinct blob once, before coding: space
	// shared by snapshots and clones is counted once.
	Allocated int64 `json:"allocated_bytes"`
	// Stored is Allocated with the coding overhead: the bytes on disks.
	Stored int64 `json:"stored_bytes"`
	// Garbage is what is waiting to be deleted.
	Garbage int64 `json:"garbage_bytes"`
}

// Usage adds up the space of every volume and snapshot.
func (s *Store) Usage(ctx context.Context) (Usage, error) {
	var u Usage
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return u, err
	}
	for _, v := range store.All[VolumeRow](tx, tVolumes, "id") {
		if v.Kind == KindSnapshot {
			u.Snapshots++
		} else {
			u.Volumes++
			u.Provisioned += v.Size
		}
	}
	seen := map[string]bool{}
	count := func(key string, l blob.Layout, size int64) {
		if key == "" || seen[key] {
			return
		}
		seen[key] = true
		u.Allocated += size
		if l.K > 0 {
			u.Stored += size * int64(l.K+l.M) / int64(l.K)
		}
	}
	for _, e := range store.All[ExtentRow](tx, tExtents, "id") {
		count(e.Blob, e.Layout, e.blobSize())
	}
	for _, sg := range store.All[SegmentRow](tx, tSegments, "id") {
		count(sg.Blob, sg.Layout, sg.Size)
	}
	for _, g := range store.All[GarbageRow](tx, tGarbage, "id") {
		u.Garbage += g.Size
	}
	return u, nil
}

// Run collects garbage until ctx ends.
func (s *Store) Run(ctx context.Context) error {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if s.cfg.IsLeader() {
			if err := s.CollectGarbage(ctx); err != nil {
				s.log.Warn("collect block garbage", "err", err)
			}
		}
	}
}

// CollectGarbage deletes the blobs that have been garbage for at least
// GarbageGrace and drops their rows.
func (s *Store) CollectGarbage(ctx context.Context) error {
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return err
	}
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	now := s.cfg.Now()
	seen := map[string]time.Time{}
	var done []string
	for _, g := range store.All[GarbageRow](tx, tGarbage, "id") {
		first, ok := s.garbageSeen[g.ID]
		if !ok {
			first = now
		}
		if now.Sub(first) < s.cfg.GarbageGrace {
			seen[g.ID] = first
			continue
		}
		if err := s.cfg.Blobs.Delete(ctx, g.ID, g.Layout); err != nil {
			s.log.Warn("delete block blob", "blob", g.ID, "err", err)
			seen[g.ID] = first
			continue
		}
		done = append(done, g.ID)
	}
	s.garbageSeen = seen
	if len(done) > 0 {
		if _, err := s.propose(ctx, cmdGarbageDone, idsCmd{IDs: done}); err != nil {
			return fmt.Errorf("drop garbage rows: %w", err)
		}
	}
	return nil
}

// layout places a new blob.
func (s *Store) layout(ctx context.Context, key string, k, m, shard int) (blob.Layout, error) {
	disks, err := s.cfg.Disks(ctx)
	if err != nil {
		return blob.Layout{}, err
	}
	if len(disks) == 0 {
		return blob.Layout{}, ErrNoDisks
	}
	if k+m > len(disks) {
		// Fewer disks than the policy wants (lost ones): keep the data
		// shards, give up parity, never refuse a flush for it.
		m = max(len(disks)-k, 0)
		if k > len(disks) {
			k, m = placement.Geometry(len(disks))
		}
	}
	ds, err := placement.Place(key, disks, k+m)
	if err != nil {
		return blob.Layout{}, err
	}
	return blob.Layout{K: k, M: m, ShardSize: shard, Disks: ds}, nil
}
