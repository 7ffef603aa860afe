// Package object is the object store behind the Swift and S3 APIs:
// containers and objects whose metadata lives in the replicated state and
// whose bytes are erasure-coded blobs on the nodes' disks. It also runs the
// background work that keeps the bytes whole: deleting unreferenced blobs,
// healing degraded ones, scrubbing, and moving shards when disks come and go.
package object

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/storage/blob"
	"github.com/rackstack/rackstack/storage/placement"
)

// Errors the API layers translate into their own codes.
var (
	ErrBadDigest  = errors.New("the content did not match the digest the client sent")
	ErrIncomplete = errors.New("the body was shorter or longer than its declared length")
	ErrNoDisks    = errors.New("no storage disks are available")
	// ErrUnreadable means stored bytes cannot be read or reconstructed
	// now (more shards lost or unreachable than the coding tolerates).
	ErrUnreadable = errors.New("the object's data cannot be read now")
)

// Config wires a Service into the node.
type Config struct {
	Repl  store.Replicated
	Blobs *blob.Store
	Node  string
	Log   *slog.Logger
	// K and M fix the coding; 0 chooses it from the number of disks.
	K, M int
	// MaxShard is the largest shard block (default 1 MiB).
	MaxShard int
	// InlineMax is the largest object stored inline, in the command that
	// names it, instead of in a blob (default DefaultInlineMax; negative:
	// none). InlineBudget bounds the bytes all inline objects hold in the
	// replicated state (default DefaultInlineBudget); past it, small
	// objects go to blobs like the others.
	InlineMax    int
	InlineBudget int64
	// NodeUp says whether a node heartbeats now; NodeLost whether it has
	// been down long enough that its shards should be rebuilt elsewhere.
	NodeUp   func(node string) bool
	NodeLost func(node string) bool
	IsLeader func() bool
	// Local lists the disks of this node to register (id, path, usage).
	Local func() []DiskRow
	// Wiped returns the ids of local disks found emptied since the last
	// call: everything placed on them is queued for healing.
	Wiped func() []string
	// RebalanceRate bounds the bytes per second moved by the rebalancer
	// (default 64 MiB/s).
	RebalanceRate int64
	// BusyRate bounds the bytes per second each background loop (the
	// healer, the scrubber, the repair pass) moves while this node serves
	// object reads or writes (default 64 MiB/s), a quarter of it while a
	// request is in flight rather than in the second after one; with none
	// the healer and the scrubber run at the disks' speed. A heal reads k
	// shards and writes the missing ones on the same disks clients read
	// from, so unpaced it took half the bandwidth of the very reads that
	// found the blob degraded; the scrubber reads every shard.
	BusyRate int64
	// ScrubEvery is how long a full scrub pass takes at least (default 1h).
	ScrubEvery time.Duration
	// OrphanGrace is how long a shard file no part in the state names is
	// kept before the orphan sweep deletes it (default 1h): a blob is
	// written before the command that names it, and that command may
	// commit late (see abandon). OrphanEvery is how often each node sweeps
	// its disks (default 10m).
	OrphanGrace time.Duration
	OrphanEvery time.Duration
	Now         func() time.Time
	// Named, if set, reports the blobs other services keep on the same
	// disks (block volumes' extents and journals), so that the orphan
	// sweep does not take them for orphans.
	Named func(tx *memdb.Txn, add func(key string, l blob.Layout))
	// Sources are the other services keeping blobs on the same disks
	// (block volumes), by name: the healer, the scrubber and the repair
	// pass keep their blobs whole and well placed exactly like the parts
	// of objects.
	Sources map[string]BlobSource
	// Peers, if set, returns the Counters of every other node of the
	// cluster (with an error for those that did not answer), so that
	// Status shows cluster-wide totals.
	Peers func(ctx context.Context) []NodeCounters
}

// Service stores objects.
type Service struct {
	cfg   Config
	log   *slog.Logger
	repl  store.Replicated
	blobs *blob.Store
	maint maintStats
	// through counts object bytes in and out, for metrics.
	through throughput
	// orphans are the local shard files the last sweeps found unnamed,
	// with when each was first seen so; only the Run loop touches it.
	orphans map[string]time.Time
	// clients counts the object reads and blob writes in flight on this
	// node: while there are any, background work keeps to BusyRate.
	clients clientLoad
}

// New returns a Service.
func New(cfg Config) *Service {
	if cfg.MaxShard == 0 {
		cfg.MaxShard = 1 << 20
	}
	if cfg.InlineMax == 0 {
		cfg.InlineMax = DefaultInlineMax
	}
	if cfg.InlineBudget == 0 {
		cfg.InlineBudget = DefaultInlineBudget
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.NodeUp == nil {
		cfg.NodeUp = func(string) bool { return true }
	}
	if cfg.NodeLost == nil {
		cfg.NodeLost = func(string) bool { return false }
	}
	if cfg.IsLeader == nil {
		cfg.IsLeader = func() bool { return true }
	}
	if cfg.RebalanceRate == 0 {
		cfg.RebalanceRate = 64 << 20
	}
	if cfg.BusyRate == 0 {
		cfg.BusyRate = 64 << 20
	}
	if cfg.ScrubEvery == 0 {
		cfg.ScrubEvery = time.Hour
	}
	if cfg.OrphanGrace == 0 {
		cfg.OrphanGrace = time.Hour
	}
	if cfg.OrphanEvery == 0 {
		cfg.OrphanEvery = 10 * time.Minute
	}
	return &Service{cfg: cfg, log: cfg.Log, repl: cfg.Repl, blobs: cfg.Blobs}
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Round(time.Millisecond) }

// read returns a transaction with read-your-writes.
func (s *Service) read(ctx context.Context) (*memdb.Txn, error) { return s.repl.Read(ctx) }

// activeDisks are the disks that should hold data: present and on nodes
// that are not lost. Sorted by id.
func (s *Service) activeDisks(tx *memdb.Txn) []placement.Disk {
	var out []placement.Disk
	for _, d := range store.All[DiskRow](tx, tDisks, "id") {
		if !d.Gone && !s.cfg.NodeLost(d.Node) {
			out = append(out, placement.Disk{Node: d.Node, ID: d.ID})
		}
	}
	return out
}

// geometry is the coding for new data over n disks.
func (s *Service) geometry(n int) (k, m int) {
	k, m = placement.Geometry(n)
	if s.cfg.K > 0 && s.cfg.K+s.cfg.M <= n {
		k, m = s.cfg.K, s.cfg.M
	}
	return k, m
}

// layoutFor places a new blob of size bytes (-1 if unknown).
func (s *Service) layoutFor(tx *memdb.Txn, key string, size int64) (blob.Layout, error) {
	disks := s.activeDisks(tx)
	if len(disks) == 0 {
		return blob.Layout{}, ErrNoDisks
	}
	k, m := s.geometry(len(disks))
	// Prefer disks whose node answers now; the rebalancer moves the blob to
	// its proper place later.
	var up []placement.Disk
	for _, d := range disks {
		if s.cfg.NodeUp(d.Node) {
			up = append(up, d)
		}
	}
	if len(up) >= k+m {
		disks = up
	}
	placed, err := placement.Place(key, disks, k+m)
	if err != nil {
		return blob.Layout{}, err
	}
	return blob.Layout{K: k, M: m, ShardSize: blob.ShardSizeFor(size, k, s.cfg.MaxShard), Disks: placed}, nil
}

// InvalidError is a request value the store refuses, naming the field at
// fault; errors.Is(err, store.ErrInvalid) holds, and the front ends answer
// it in their own 400 format.
type InvalidError struct {
	Field string
	Msg   string
}

func (e *InvalidError) Error() string {
	return "Invalid input for field/attribute " + e.Field + ": " + e.Msg
}

// Is makes an InvalidError a store.ErrInvalid.
func (e *InvalidError) Is(target error) bool { return target == store.ErrInvalid }

func badField(field, format string, args ...any) *InvalidError {
	return &InvalidError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// newID is a random 128-bit id in hex, for blobs, object versions and
// uploads.
func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("read random bytes: %v", err)) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b[:])
}

// ActiveDisks lists the disks new data may be placed on: present and on
// nodes that are not lost. Other services on the same disks (block
// volumes) place their blobs on them too.
func (s *Service) ActiveDisks(ctx context.Context) ([]placement.Disk, error) {
	tx, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	return s.activeDisks(tx), nil
}

// CheckName rejects names the store cannot hold.
func CheckName(field, name string, max int) error {
	switch {
	case name == "":
		return badField(field, "must not be empty")
	case len(name) > max:
		return badField(field, "must be at most %d bytes", max)
	case !utf8.ValidString(name) || strings.ContainsRune(name, 0):
		return badField(field, "must be valid UTF-8 without NUL")
	}
	return nil
}

// Account returns a project's account metadata (empty if never set).
func (s *Service) Account(ctx context.Context, project string) (*Account, error) {
	tx, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	if a := store.Get[Account](tx, tAccounts, project); a != nil {
		return a, nil
	}
	return &Account{ID: project}, nil
}

// SetAccountMeta replaces a project's account metadata.
func (s *Service) SetAccountMeta(ctx context.Context, project string, meta map[string]string) error {
	_, err := s.repl.Propose(ctx, cmdAccountPut, accountPutCmd{Row: Account{ID: project, Meta: meta}})
	return err
}

// Container returns one container.
func (s *Service) Container(ctx context.Context, project, name string) (*Container, error) {
	tx, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	c := store.Get[Container](tx, tContainers, containerID(project, name))
	if c == nil {
		return nil, store.NotFoundf("container %s not found", name)
	}
	return c, nil
}

// Containers lists a project's containers by name.
func (s *Service) Containers(ctx context.Context, project string) ([]*Container, error) {
	tx, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	out := store.All[Container](tx, tContainers, "project", project)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// PutContainer creates a container (modeCreate fails if it exists) or
// replaces its metadata; it reports whether it created it.
func (s *Service) PutContainer(ctx context.Context, c Container, mustCreate bool) (bool, error) {
	mode := modeUpsert
	if mustCreate {
		mode = modeCreate
	}
	if c.Created.IsZero() {
		c.Created = s.now()
	}
	res, err := s.repl.Propose(ctx, containerPutType(c), containerPutCmd{Mode: mode, Row: c})
	if err != nil {
		return false, err
	}
	var out containerPutResult
	err = res.Decode(&out)
	return out.Created, err
}

// UpdateContainer changes an existing container's metadata.
func (s *Service) UpdateContainer(ctx context.Context, c Container) error {
	_, err := s.repl.Propose(ctx, containerPutType(c), containerPutCmd{Mode: modeUpdate, Row: c})
	return err
}

// DeleteContainer deletes an empty container.
func (s *Service) DeleteContainer(ctx context.Context, project, name string) error {
	_, err := s.repl.Propose(ctx, cmdContainerDelete, idCmd{ID: containerID(project, name), Now: s.now()})
	return err
}

// Attrs are what a writer says about an object besides its bytes.
type Attrs struct {
	ContentType string
	Meta        map[string]string
	Headers     map[string]string
	Tags        map[string]string // S3 object tags (tags.go)
}

// PutOptions control an object write.
type PutOptions struct {
	Attrs
	Size int64  // declared length, -1 if unknown (chunked)
	MD5  string // hex digest the content must have, "" to skip
	// Synced is the source's time of an object a container sync sends:
	// the object gets it, and replaces only an older one (a
	// store.ErrConflict otherwise, with nothing stored). Zero: now.
	Synced time.Time
}

// stamp is the time a write gives its object.
func (o PutOptions) stamp(now time.Time) time.Time {
	if !o.Synced.IsZero() {
		return o.Synced
	}
	return now
}

// writeBlob streams r into a new blob placed for its size and checks the
// declared size and digest. On any error nothing is left behind. It also
// returns the shards the write did not make durable (it returns at write
// quorum), which need healing once the blob is named.
// With a container given, it first checks (in the same read) that the
// container exists, so a PUT into nothing writes no bytes.
func (s *Service) writeBlob(ctx context.Context, project, container string, r io.Reader, size int64, wantMD5 string) (Part, []int, error) {
	defer s.clients.begin()()
	tx, err := s.read(ctx)
	if err != nil {
		return Part{}, nil, err
	}
	if container != "" && store.Get[Container](tx, tContainers, containerID(project, container)) == nil {
		return Part{}, nil, store.NotFoundf("container %s not found", container)
	}
	if container != "" {
		if err := checkQuota(tx, project, container, size); err != nil {
			return Part{}, nil, err
		}
	}
	key := newID()
	l, err := s.layoutFor(tx, key, size)
	if err != nil {
		return Part{}, nil, err
	}
	if size >= 0 {
		r = io.LimitReader(r, size+1)
	}
	info, err := s.blobs.Put(ctx, key, l, r)
	if err != nil {
		return Part{}, nil, err
	}
	fail := func(e error) (Part, []int, error) {
		s.blobs.Delete(context.WithoutCancel(ctx), key, l)
		return Part{}, nil, e
	}
	if size >= 0 && info.Size != size {
		return fail(ErrIncomplete)
	}
	if wantMD5 != "" && !strings.EqualFold(wantMD5, info.MD5) {
		return fail(ErrBadDigest)
	}
	s.through.written.Add(info.Size)
	return Part{Blob: key, Size: info.Size, ETag: info.MD5, Layout: l}, info.Missing, nil
}

// Small objects are stored inline: their bytes go in the command that names
// them, so a PUT is one Raft commit (one fsync'd log append on each voter,
// shared with the commands batched beside it) instead of k+m shard files
// created, fsync'd and renamed, and then that commit. Every node then holds
// the bytes in memory, and the Raft log and snapshots carry them, so both
// the size and the total are bounded:
//   - DefaultInlineMax (16 KiB): below it a blob write costs the same k+m
//     file creations and fsyncs whatever the size, while an inline object
//     costs its bytes (a third more, base64 in the JSON command) in the
//     log, which keeps up to SnapshotThreshold + TrailingLogs entries
//     (8,192 + 10,240 by default): at most ~400 MiB of log on disk at one
//     object per entry, and the log cache in memory is bounded in bytes.
//   - DefaultInlineBudget (64 MiB): the most bytes inline objects hold in
//     the state (in memory on every node, and in each snapshot); past it,
//     small objects go to blobs like the others until deletes free some.
const (
	DefaultInlineMax    = 16 << 10
	DefaultInlineBudget = 64 << 20
)

// errInlineFull: the state holds its budget of inline bytes.
var errInlineFull = errors.New("inline budget spent")

// readSmall reads a body that may be stored inline: if it is at most
// InlineMax bytes (and, with a declared size, exactly that long), it returns
// the whole body and true. Otherwise it returns a reader that gives the
// whole body: what it read, then the rest of r. It reads at most
// InlineMax+1 bytes. A failure of r is a blob.ErrSource, as in a blob write.
func (s *Service) readSmall(r io.Reader, size int64) ([]byte, io.Reader, bool, error) {
	if s.cfg.InlineMax < 0 || size > int64(s.cfg.InlineMax) {
		return nil, r, false, nil
	}
	if size >= 0 {
		buf := make([]byte, size)
		if _, err := io.ReadFull(r, buf); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, nil, false, ErrIncomplete
			}
			return nil, nil, false, fmt.Errorf("%w: %w", blob.ErrSource, err)
		}
		var one [1]byte
		switch n, err := io.ReadFull(r, one[:]); {
		case n > 0:
			return nil, nil, false, ErrIncomplete
		case !errors.Is(err, io.EOF):
			return nil, nil, false, fmt.Errorf("%w: %w", blob.ErrSource, err)
		}
		return buf, nil, true, nil
	}
	buf := make([]byte, s.cfg.InlineMax+1)
	n, err := io.ReadFull(r, buf)
	switch {
	case err == nil:
		return nil, io.MultiReader(bytes.NewReader(buf), r), false, nil
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return buf[:n], nil, true, nil
	default:
		return nil, nil, false, fmt.Errorf("%w: %w", blob.ErrSource, err)
	}
}

// putInline stores a small object's bytes in the command that names it. It
// returns errInlineFull, having stored nothing, if the state holds its
// budget of inline bytes.
func (s *Service) putInline(ctx context.Context, project, container, name string, data []byte, o PutOptions) (*Object, error) {
	sum := md5Hex(data)
	if o.MD5 != "" && !strings.EqualFold(o.MD5, sum) {
		return nil, ErrBadDigest
	}
	tx, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	// A store without disks takes no objects, small ones neither.
	if len(s.activeDisks(tx)) == 0 {
		return nil, ErrNoDisks
	}
	if err := checkQuota(tx, project, container, int64(len(data))); err != nil {
		return nil, err
	}
	if inlineUsed(tx)+int64(len(data)) > s.cfg.InlineBudget {
		return nil, errInlineFull
	}
	size := int64(len(data))
	row := Object{
		Project: project, Container: container, Name: name, Version: newID(),
		Size: size, ETag: sum, Modified: o.stamp(s.now()),
		Parts: []Part{{Size: size, ETag: sum, Inline: true, Data: data}},
	}
	row.setAttrs(o.Attrs)
	var out *Object
	if o.Synced.IsZero() {
		out, err = s.commit(ctx, cmdObjectInline, objectInlineCmd{Row: row, Budget: s.cfg.InlineBudget}, nil)
	} else {
		out, err = s.commit(ctx, cmdObjectSyncPut, objectSyncPutCmd{Row: row, Inline: true, Budget: s.cfg.InlineBudget}, nil)
	}
	if errors.Is(err, store.ErrOverQuota) {
		return nil, errInlineFull
	}
	return out, err
}

// Put stores an object, replacing any older one of that name once the new
// bytes are durable.
func (s *Service) Put(ctx context.Context, project, container, name string, r io.Reader, o PutOptions) (*Object, error) {
	data, rest, small, err := s.readSmall(r, o.Size)
	if err != nil {
		return nil, err
	}
	if small {
		out, err := s.putInline(ctx, project, container, name, data, o)
		if !errors.Is(err, errInlineFull) {
			return out, err
		}
		rest = bytes.NewReader(data)
	}
	part, missing, err := s.writeBlob(ctx, project, container, rest, o.Size, o.MD5)
	if err != nil {
		return nil, err
	}
	row := Object{
		Project: project, Container: container, Name: name, Version: part.Blob,
		Size: part.Size, ETag: part.ETag, Modified: o.stamp(s.now()), Parts: []Part{part},
	}
	row.setAttrs(o.Attrs)
	var body any = objectPutCmd{Row: row}
	typ := cmdObjectPut
	if !o.Synced.IsZero() {
		typ, body = cmdObjectSyncPut, objectSyncPutCmd{Row: row}
	}
	out, err := s.commit(ctx, typ, body, []Part{part})
	if err == nil && len(missing) > 0 {
		// The write returned at quorum without some shards (a disk or
		// node failed or stalled): heal it now rather than at the next
		// scrub.
		s.proposeHeal(ctx, out.ID, part.Blob)
	}
	return out, err
}

// proposeHeal queues a blob of an object for the healer. A failure is only
// logged: the scrubber finds the blob later.
func (s *Service) proposeHeal(ctx context.Context, objectID, blobKey string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := s.repl.Propose(ctx, cmdHealAdd, healAddCmd{Items: []HealItem{{ID: blobKey, Object: objectID, Since: s.now()}}}); err != nil {
		s.log.Warn("queue heal", "blob", blobKey, "err", err)
	}
}

func md5Hex(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

func (o *Object) setAttrs(a Attrs) {
	o.ContentType = a.ContentType
	if o.ContentType == "" {
		o.ContentType = "application/octet-stream"
	}
	o.Meta, o.Headers, o.Tags = a.Meta, a.Headers, a.Tags
}

// commit proposes a command that makes blobs part of an object. If the
// command is refused the blobs are deleted; if its outcome is unknown they
// are kept (see abandon).
func (s *Service) commit(ctx context.Context, typ string, body any, written []Part) (*Object, error) {
	res, err := s.repl.Propose(ctx, typ, body)
	if err != nil {
		return nil, s.abandon(ctx, typ, written, err)
	}
	var out Object
	if err := res.Decode(&out); err != nil {
		return nil, err
	}
	return &out, nil
}

// abandon deals with the blobs of a command that did not return success.
// Only a refusal by the state machine (a store.ApplyError: the command was
// applied and rejected) proves that nothing names them. After a timeout, a
// cancelled request or a lost leader the command may still commit, and
// deleting its blobs would leave an object listed without its bytes (and
// the version it replaced already in the garbage). Those blobs stay; the
// orphan sweep reclaims them if the state never comes to name them. It
// returns the error for the caller, marked store.ErrOutcomeUnknown (a 503:
// the client may retry) unless the command was refused.
func (s *Service) abandon(ctx context.Context, typ string, written []Part, err error) error {
	var refused *store.ApplyError
	if errors.As(err, &refused) {
		for _, p := range written {
			s.blobs.Delete(context.WithoutCancel(ctx), p.Blob, p.Layout)
		}
		return err
	}
	if len(written) > 0 {
		blobs := make([]string, len(written))
		for i, p := range written {
			blobs[i] = p.Blob
		}
		s.log.Warn("storage command not confirmed; keeping its blobs for the orphan sweep", "command", typ, "blobs", blobs, "err", err)
	}
	if errors.Is(err, store.ErrOutcomeUnknown) {
		return err
	}
	return fmt.Errorf("%w: %s not confirmed: %w", store.ErrOutcomeUnknown, typ, err)
}

// PutManifest stores a static large object: its bytes are the named
// segments, which must exist with the given sizes and etags.
func (s *Service) PutManifest(ctx context.Context, project, container, name string, segs []Segment, a Attrs) (*Object, error) {
	if _, err := s.Container(ctx, project, container); err != nil {
		return nil, err
	}
	if len(segs) == 0 {
		return nil, badField("manifest", "must list at least one segment")
	}
	var size int64
	etags := ""
	for i, sg := range segs {
		obj, err := s.Head(ctx, project, sg.Container, sg.Name)
		if err != nil {
			return nil, badField("manifest", "segment %d (%s/%s): %v", i, sg.Container, sg.Name, err)
		}
		if sg.ETag != "" && strings.Trim(sg.ETag, `"`) != obj.ETag {
			return nil, badField("manifest", "segment %d (%s/%s): etag %s does not match %s", i, sg.Container, sg.Name, sg.ETag, obj.ETag)
		}
		if sg.Size > 0 && sg.Size != obj.Size {
			return nil, badField("manifest", "segment %d (%s/%s): size %d does not match %d", i, sg.Container, sg.Name, sg.Size, obj.Size)
		}
		if len(obj.Segments) > 0 {
			return nil, badField("manifest", "segment %d (%s/%s) is itself a manifest", i, sg.Container, sg.Name)
		}
		segs[i].Size, segs[i].ETag = obj.Size, obj.ETag
		size += obj.Size
		etags += obj.ETag
	}
	row := Object{
		Project: project, Container: container, Name: name, Version: newID(),
		Size: size, ETag: md5Hex([]byte(etags)), Modified: s.now(), Segments: segs,
	}
	row.setAttrs(a)
	return s.commit(ctx, cmdObjectPut, objectPutCmd{Row: row}, nil)
}

// Head returns an object's metadata.
func (s *Service) Head(ctx context.Context, project, container, name string) (*Object, error) {
	tx, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	if store.Get[Container](tx, tContainers, containerID(project, container)) == nil {
		return nil, store.NotFoundf("container %s not found", container)
	}
	id := objectID(project, container, name)
	o := store.Get[Object](tx, tObjects, id)
	if o == nil || o.Expired(s.cfg.Now()) { // expired: gone before the expirer runs (expire.go)
		if m := latestMarker(tx, id); o == nil && m != nil {
			return nil, &DeletedError{Name: name, VersionID: ShownVersion(m.VersionID)}
		}
		return nil, store.NotFoundf("object %s not found", name)
	}
	return o, nil
}

// SetMeta replaces an object's user metadata and stored headers.
func (s *Service) SetMeta(ctx context.Context, o *Object, a Attrs) (*Object, error) {
	res, err := s.repl.Propose(ctx, cmdObjectMeta, objectMetaCmd{
		ID: o.ID, Version: o.Version, ContentType: a.ContentType, Meta: a.Meta, Headers: a.Headers,
	})
	if err != nil {
		return nil, err
	}
	var out Object
	return &out, res.Decode(&out)
}

// Delete removes an object; its bytes are reclaimed in the background. An
// object whose delete time has passed is removed too but reported not
// found, as Head reports it.
// In a versioned container it writes a delete marker (versions.go).
func (s *Service) Delete(ctx context.Context, project, container, name string) error {
	_, err := s.Remove(ctx, project, container, name, "")
	return err
}

// Read writes bytes [offset, offset+length) of o to w, reconstructing
// around bad shards and queueing heals for them. Nothing is written before
// the first stripe has been read and checked, so a caller that has not
// sent its status yet can still answer an error. A failure to read the
// stored data is logged here and returned as ErrUnreadable; an error
// writing to w is returned as it is.
func (s *Service) Read(ctx context.Context, o *Object, offset, length int64, w io.Writer) error {
	defer s.clients.begin()()
	cw := &countingWriter{w: w}
	err := s.readRange(ctx, o, offset, length, cw)
	s.through.read.Add(cw.n)
	if err == nil || cw.err != nil || ctx.Err() != nil {
		return err
	}
	s.log.Error("read object data", "project", o.Project, "container", o.Container, "object", o.Name,
		"offset", offset, "length", length, "sent", cw.n, "err", err)
	return fmt.Errorf("%w: %w", ErrUnreadable, err)
}

// countingWriter tells the reader's own failures from the writer's.
type countingWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if err != nil && c.err == nil {
		c.err = err
	}
	return n, err
}

func (s *Service) readRange(ctx context.Context, o *Object, offset, length int64, w io.Writer) error {
	if offset < 0 || length < 0 || offset+length > o.Size {
		return fmt.Errorf("range %d+%d outside object of %d bytes", offset, length, o.Size)
	}
	if len(o.Segments) > 0 {
		return s.readSegments(ctx, o, offset, length, w)
	}
	// Consecutive blob parts coded alike are read in one GetRanges, which
	// reads the next part's first stripe while this part's last one is
	// sent.
	var run []Part
	var ranges []blob.Range
	flush := func() error {
		if len(ranges) == 0 {
			return nil
		}
		res, err := s.blobs.GetRanges(ctx, ranges, w)
		for i, r := range res {
			if r.Degraded {
				s.queueHeal(o, run[i], r)
			}
		}
		run, ranges = run[:0], ranges[:0]
		return err
	}
	var next int64 // where the part after p starts
	for _, p := range o.Parts {
		pos := next
		next += p.Size
		lo, hi := max(offset, pos), min(offset+length, next)
		if lo >= hi {
			continue
		}
		if !p.Inline && len(run) > 0 && !sameCoding(run[0].Layout, p.Layout) {
			if err := flush(); err != nil {
				return err
			}
		}
		if !p.Inline {
			run = append(run, p)
			ranges = append(ranges, blob.Range{Key: p.Blob, Layout: p.Layout, Size: p.Size, Offset: lo - pos, Length: hi - lo})
			continue
		}
		if err := flush(); err != nil {
			return err
		}
		if _, err := w.Write(p.Data[lo-pos : hi-pos]); err != nil {
			return err
		}
	}
	return flush()
}

// sameCoding reports whether blobs of layouts a and b can be read in one
// GetRanges.
func sameCoding(a, b blob.Layout) bool {
	return a.K == b.K && a.M == b.M && a.ShardSize == b.ShardSize && len(a.Disks) == len(b.Disks)
}

func (s *Service) readSegments(ctx context.Context, o *Object, offset, length int64, w io.Writer) error {
	var pos int64
	for _, sg := range o.Segments {
		lo, hi := max(offset, pos), min(offset+length, pos+sg.Size)
		if lo < hi {
			seg, err := s.Head(ctx, o.Project, sg.Container, sg.Name)
			if err != nil {
				return fmt.Errorf("segment %s/%s: %w", sg.Container, sg.Name, err)
			}
			if seg.ETag != sg.ETag || seg.Size != sg.Size || len(seg.Segments) > 0 {
				return fmt.Errorf("segment %s/%s changed since the manifest was written", sg.Container, sg.Name)
			}
			if err := s.readRange(ctx, seg, lo-pos, hi-lo, w); err != nil {
				return err
			}
		}
		pos += sg.Size
	}
	return nil
}

// queueHeal records a degraded blob for the healer without holding up the
// reader.
func (s *Service) queueHeal(o *Object, p Part, res blob.ReadResult) {
	s.log.Warn("degraded read; queueing heal", "object", o.Name, "blob", p.Blob, "bad_shards", res.BadShards, "err", errors.Join(res.Errors...))
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := s.repl.Propose(ctx, cmdHealAdd, healAddCmd{Items: []HealItem{{ID: p.Blob, Object: o.ID, Since: s.now()}}})
		if err != nil {
			s.log.Warn("queue heal", "blob", p.Blob, "err", err)
		}
	}()
}

// Copy stores a new object with the bytes of src (read through the
// erasure coding, so a degraded source gives a whole copy).
func (s *Service) Copy(ctx context.Context, src *Object, project, container, name string, a Attrs) (*Object, error) {
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(s.Read(ctx, src, 0, src.Size, pw))
	}()
	defer pr.Close()
	return s.Put(ctx, project, container, name, pr, PutOptions{Attrs: a, Size: src.Size})
}

// ListOptions select and page a container listing.
type ListOptions struct {
	Prefix, Delimiter, Marker, EndMarker string
	Limit                                int
}

// Entry is one listing row: an object, or a common prefix ("subdir").
type Entry struct {
	Object *Object
	Subdir string
}

// Name is the entry's sort key.
func (e Entry) Name() string {
	if e.Object != nil {
		return e.Object.Name
	}
	return e.Subdir
}

// List lists a container in name order. It reports whether more entries
// follow the last one returned.
func (s *Service) List(ctx context.Context, project, container string, o ListOptions) ([]Entry, bool, error) {
	tx, err := s.read(ctx)
	if err != nil {
		return nil, false, err
	}
	if store.Get[Container](tx, tContainers, containerID(project, container)) == nil {
		return nil, false, store.NotFoundf("container %s not found", container)
	}
	if o.Limit <= 0 {
		o.Limit = 10000
	}
	base := objectPrefix(project, container)
	start := o.Prefix
	if o.Marker > start {
		start = o.Marker
	}
	var out []Entry
	for {
		it, err := tx.LowerBound(tObjects, "id", base+start)
		if err != nil {
			return nil, false, err
		}
		jumped := false
		for raw := it.Next(); raw != nil; raw = it.Next() {
			obj := raw.(*Object)
			if !strings.HasPrefix(obj.ID, base+o.Prefix) {
				return out, false, nil
			}
			if obj.Name <= o.Marker {
				continue
			}
			if o.EndMarker != "" && obj.Name >= o.EndMarker {
				return out, false, nil
			}
			e := Entry{Object: obj}
			if o.Delimiter != "" {
				if i := strings.Index(obj.Name[len(o.Prefix):], o.Delimiter); i >= 0 {
					e = Entry{Subdir: obj.Name[:len(o.Prefix)+i+len(o.Delimiter)]}
				}
			}
			// As Swift does: a common prefix is left out only when it is
			// the marker itself (the last entry of the previous page).
			if e.Subdir != "" && e.Subdir == o.Marker {
				start = e.Subdir + "\xff"
				jumped = true
				break
			}
			if len(out) == o.Limit {
				return out, true, nil
			}
			out = append(out, e)
			if e.Subdir != "" {
				// Skip everything under the common prefix: no valid UTF-8
				// name sorts after it with a 0xff byte.
				start = e.Subdir + "\xff"
				jumped = true
				break
			}
		}
		if !jumped {
			return out, false, nil
		}
	}
}
