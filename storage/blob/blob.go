// Package blob stores byte streams erasure-coded across disks: a blob is a
// sequence of stripes, each k data + m parity shards, shard i of every
// stripe appended to one shard file on the i-th disk of the blob's layout.
// Disks may be local or on other nodes (through a Transport). Writes stream
// with bounded memory; reads verify every block's checksum and reconstruct
// around missing or corrupt shards. Metadata (which blob is which object) is
// not this package's business.
package blob

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	md5simd "github.com/minio/md5-simd"

	"github.com/rackstack/rackstack/storage/disk"
	"github.com/rackstack/rackstack/storage/ec"
	"github.com/rackstack/rackstack/storage/placement"
)

// Layout says how a blob is coded and where its shards are.
type Layout struct {
	K         int              `json:"k"`
	M         int              `json:"m"`
	ShardSize int              `json:"shard_size"`
	Disks     []placement.Disk `json:"disks"` // len K+M; shard i on Disks[i]
}

// Transport reaches disks on other nodes.
type Transport interface {
	Create(ctx context.Context, d placement.Disk, name string, body io.Reader) error
	Open(ctx context.Context, d placement.Disk, name string, offset int64) (io.ReadCloser, error)
	Remove(ctx context.Context, d placement.Disk, name string) error
}

// Store reads and writes blobs.
type Store struct {
	Node      string               // this node's name
	Local     map[string]disk.Disk // this node's disks by id
	Transport Transport
	Log       *slog.Logger
	// NodeUp, if set, says whether a node heartbeats now: a GET reads
	// the shards on nodes that do not only when the others cannot make
	// a stripe (see DESIGN.md, "Reads past a slow shard").
	NodeUp func(node string) bool
	// StallTimeout is how long a shard writer may go without taking a
	// block, or without finishing once the stream has ended, before it is
	// dropped (default 10s): a frozen disk or node must not hold up a
	// write that the others can carry.
	StallTimeout time.Duration
	// StragglerWait is how long a write that has reached its quorum waits
	// for the remaining shard writers (default 2s). Those still busy then
	// are dropped and reported in Info.Missing, for the caller to heal.
	StragglerWait time.Duration
	// FillTimeout is how long the body of a write may take to fill one
	// stripe (default DefaultFillTimeout) when the caller lets Put bound
	// the reads of it (WithBodyDeadline): a client that trickles its body
	// then gives the stripe's blocks back to the Buffers instead of
	// holding them for as long as it takes.
	FillTimeout time.Duration
	// Buffers is the working memory of reads and writes, shared by every
	// transfer of the node (default: DefaultBufferBudget of the Store's
	// own).
	Buffers     *Buffers
	defaultBufs sync.Once
	// MD5, if set, hashes the writes that have company: one
	// md5simd.Server for the node hashes up to 16 writes at once in the
	// SIMD lanes of one core (AVX-512; 8 with AVX2). The MD5 of the ETag
	// was nearly half of rackd's CPU under minio-go's PUTs. Streams
	// hashed side by side, the lanes take 0.3 ms of CPU per MiB with 16
	// or more, 0.4-0.45 with 8, 0.67-0.77 with 4 and 0.9-1.0 with 3,
	// against crypto/md5's 1.64; but 2.1-2.4 with 2 and 2.4-2.9 alone
	// (the bytes are copied to the server, and one or two lanes run the
	// scalar code). So a write takes the lanes only if, when its first
	// stripe is hashed, at least simdHashers writes (itself included)
	// are hashing, and crypto/md5 otherwise (see md5For).
	MD5     md5simd.Server
	hashing atomic.Int64 // writes computing an MD5 now
	// OpenFiles bounds the shard files ReadAt keeps open (default
	// DefaultOpenFiles, at most a quarter of the file limit).
	OpenFiles int
	filesOnce sync.Once
	openFiles *openFiles
	blocks    sync.Pool // of *[]byte: ReadAt's block buffers
	diskErrs  diskErrors
	// directRead counts the shard bytes GETs read with direct I/O
	// (readDirect), for DirectReadBytes.
	directRead atomic.Int64
	hedge      hedging
}

func (s *Store) stallTimeout() time.Duration {
	if s.StallTimeout > 0 {
		return s.StallTimeout
	}
	return 10 * time.Second
}

// simdHashers is how many writes (the one choosing included) must be
// hashing for a write to share the Store's MD5 server (see Store.MD5).
const simdHashers = 3

// md5For returns the hash of a write's MD5, chosen when its first stripe
// is ready to be hashed rather than when the write starts: minio-go
// sends an object's four parts within some tens of milliseconds of each
// other, so the first part started alone, hashed on crypto/md5 while the
// others shared the lanes, and the lanes ran one part short (or, with
// the choice made at the start and at four, all four hashed alone).
// By its first stripe the others have mostly started.
func (s *Store) md5For() hash.Hash {
	if s.MD5 != nil && s.hashing.Load() >= simdHashers {
		return s.MD5.NewHash()
	}
	return md5.New()
}

// DefaultFillTimeout gives a body one minute per stripe: with 4+2 and
// 1 MiB shards, a client slower than about 70 KiB/s is cut off.
const DefaultFillTimeout = time.Minute

func (s *Store) fillTimeout() time.Duration {
	if s.FillTimeout > 0 {
		return s.FillTimeout
	}
	return DefaultFillTimeout
}

type noMD5Key struct{}

// WithoutMD5 returns ctx telling Put not to compute the blob's MD5
// (Info.MD5 is then empty): a caller that has no use for it (a volume's
// extents and journal) saves hashing every byte it writes.
func WithoutMD5(ctx context.Context) context.Context {
	return context.WithValue(ctx, noMD5Key{}, true)
}

func withoutMD5(ctx context.Context) bool {
	no, _ := ctx.Value(noMD5Key{}).(bool)
	return no
}

type dirSyncsKey struct{}

// WithDirSyncs returns ctx telling Put to leave the directory syncs of
// the shards it writes on local disks to ds: the shards are whole and
// fsync'd when Put returns, but their names are durable only once the
// caller's ds.Sync has returned without error. A caller writing several
// blobs at once (a volume's flush) syncs each directory once for all of
// them. Shards written on other nodes are committed there whole, as
// always.
func WithDirSyncs(ctx context.Context, ds *disk.DirSyncs) context.Context {
	return context.WithValue(ctx, dirSyncsKey{}, ds)
}

func dirSyncs(ctx context.Context) *disk.DirSyncs {
	ds, _ := ctx.Value(dirSyncsKey{}).(*disk.DirSyncs)
	return ds
}

type bodyDeadlineKey struct{}

// WithBodyDeadline returns ctx carrying set, which sets the deadline of
// reads of the body that Put is given (an HTTP handler's
// http.ResponseController.SetReadDeadline; the zero time clears it). A
// read still blocked at the deadline fails, and with it the write, which
// gives back its blocks: they cannot be given back while a read may
// still fill them.
func WithBodyDeadline(ctx context.Context, set func(time.Time) error) context.Context {
	return context.WithValue(ctx, bodyDeadlineKey{}, set)
}

func bodyDeadline(ctx context.Context) func(time.Time) error {
	set, _ := ctx.Value(bodyDeadlineKey{}).(func(time.Time) error)
	return set
}

func (s *Store) stragglerWait() time.Duration {
	if s.StragglerWait > 0 {
		return s.StragglerWait
	}
	return 2 * time.Second
}

// ShardName is the file name of shard i of blob key.
func ShardName(key string, i int) string { return key + "." + strconv.Itoa(i) }

// ParseShardName is ShardName's inverse: the blob key and shard index a
// shard file's name holds.
func ParseShardName(name string) (key string, i int, ok bool) {
	dot := strings.LastIndexByte(name, '.')
	if dot <= 0 {
		return "", 0, false
	}
	i, err := strconv.Atoi(name[dot+1:])
	if err != nil || i < 0 {
		return "", 0, false
	}
	return name[:dot], i, true
}

// WriteQuorum is how many shards must be durable before a write counts.
func WriteQuorum(k, m int) int {
	if m > 0 && k == m {
		return k + 1
	}
	return k
}

// ShardSizeFor picks the shard size for a blob of size bytes (-1 when
// unknown): small blobs get small shards, large ones maxShard.
func ShardSizeFor(size int64, k, maxShard int) int {
	if size < 0 || size >= int64(k*maxShard) {
		return maxShard
	}
	per := (size + int64(k) - 1) / int64(k)
	per = (per + 63) / 64 * 64
	if per < 64 {
		per = 64
	}
	return int(per)
}

// Info describes a written blob.
type Info struct {
	Size    int64
	MD5     string
	Written int   // shards made durable
	Missing []int // shards that were not: the blob needs healing
}

// ErrQuorum means too few shards could be written.
var ErrQuorum = errors.New("write quorum not reached")

// sourceReader remembers the first error other than io.EOF its reader
// returned.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	return n, err
}

// ErrSource wraps an error from the reader a blob is written from (a client
// that went away, a body that failed its signature): the caller's fault, not
// the store's.
var ErrSource = errors.New("read body")

// sink receives the blocks of one shard.
type sink struct {
	blocks chan piece
	done   chan error
	cancel context.CancelFunc
	// dropped is set once the writer failed or was given up on; err says
	// why. Its goroutine may still be running: a dropped sink is never
	// waited for.
	dropped bool
	err     error
	// mu guards writing, the pieces a local writer is writing now, and
	// abandoned, set when the sink was given up on during that write: the
	// blocks then left the Buffers' count, and the writer must not
	// release them when its write returns.
	mu        sync.Mutex
	writing   []piece
	abandoned bool
}

// startWrite records ps as being written.
func (sk *sink) startWrite(ps []piece) {
	sk.mu.Lock()
	sk.writing, sk.abandoned = ps, false
	sk.mu.Unlock()
}

// endWrite reports whether the writer still owns the piece it wrote (it
// was not abandoned meanwhile).
func (sk *sink) endWrite() bool {
	sk.mu.Lock()
	defer sk.mu.Unlock()
	owned := !sk.abandoned
	sk.writing, sk.abandoned = nil, false
	return owned
}

// abandonWrite gives back the budget of the blocks a local writer is
// stuck writing (a disk that hangs inside a write), and the rest of their
// stripes, without waiting for the write to return.
func (sk *sink) abandonWrite() {
	sk.mu.Lock()
	ps := sk.writing
	if ps == nil || sk.abandoned {
		sk.mu.Unlock()
		return
	}
	sk.abandoned = true
	sk.mu.Unlock()
	for _, p := range ps {
		p.l.abandon(p.block())
	}
}

// drop gives up on a shard writer: its context is cancelled (a remote
// write is aborted, a local one not committed) and no more blocks are sent.
func (sk *sink) drop(err error) {
	if sk.dropped {
		return
	}
	sk.dropped, sk.err = true, err
	sk.cancel()
	close(sk.blocks)
	sk.release()
	sk.abandonWrite()
}

// release gives back the blocks still queued for a writer that was
// dropped or given up on. A frozen writer keeps only the block it is
// writing: the queue must not hold a stripe's memory for as long as a
// disk hangs.
func (sk *sink) release() {
	for p := range sk.blocks {
		p.l.release()
	}
}

// send hands p to the shard writer, waiting at most stall for it to take
// it. A writer that fails or stalls is dropped and p released.
func (sk *sink) send(p piece, stall time.Duration) {
	if sk.dropped {
		p.l.release()
		return
	}
	select {
	case sk.blocks <- p:
		return
	case err := <-sk.done:
		p.l.release()
		sk.drop(err)
		return
	default:
	}
	t := time.NewTimer(stall)
	defer t.Stop()
	select {
	case sk.blocks <- p:
	case err := <-sk.done:
		p.l.release()
		sk.drop(err)
	case <-t.C:
		p.l.release()
		sk.drop(fmt.Errorf("%w: took no block for %s", ErrStalled, stall))
	}
}

// finish ends the shard's stream and waits, at most stall, for the writer
// to make it durable.
func (sk *sink) finish(stall time.Duration) error {
	if sk.dropped {
		return sk.err
	}
	close(sk.blocks)
	t := time.NewTimer(stall)
	defer t.Stop()
	select {
	case err := <-sk.done:
		sk.dropped, sk.err = true, err
		sk.cancel()
		return err
	case <-t.C:
		sk.cancel()
		sk.dropped, sk.err = true, fmt.Errorf("%w: not durable %s after its last block", ErrStalled, stall)
		sk.release()
		sk.abandonWrite()
		return sk.err
	}
}

// ErrStalled means a disk or node stopped answering within the stall
// timeout.
var ErrStalled = errors.New("shard writer stalled")

// sinkQueued is how many bytes of blocks may wait for a shard writer, two
// blocks at least. A local writer takes all that wait and writes them
// with one system call (WriteBlocks), so a writer that lags behind the
// coding catches up with fewer, larger writes: eight blocks of a volume's
// 32 KiB shards, two of an object's 1 MiB ones (as many as always), so a
// slow disk holds no more of the Buffers' budget than it did.
const sinkQueued = 256 << 10

func sinkQueue(block int) int { return max(2, sinkQueued/max(block, 1)) }

// blocksWriter is a disk.Writer that writes several blocks at once.
type blocksWriter interface {
	WriteBlocks(bs [][]byte) error
}

// openSink starts the writer of shard name on d, which takes blocks of
// block bytes.
func (s *Store) openSink(ctx context.Context, d placement.Disk, name string, block int) *sink {
	ctx, cancel := context.WithCancel(ctx)
	sk := &sink{blocks: make(chan piece, sinkQueue(block)), done: make(chan error, 1), cancel: cancel}
	if local, ok := s.Local[d.ID]; ok && d.Node == s.Node {
		go func() {
			w, err := local.Create(name)
			if err != nil {
				s.diskError(d, err)
				drain(sk.blocks)
				sk.done <- err
				return
			}
			var werr error
			bw, many := w.(blocksWriter)
			batch := make([]piece, 0, cap(sk.blocks)+1)
			bufs := make([][]byte, 0, cap(sk.blocks)+1)
			for p := range sk.blocks {
				batch = append(batch[:0], p)
				// Take what else waits, never waiting for more: the
				// blocks held here may be what the coder waits for.
			more:
				for many && len(batch) < cap(batch) {
					select {
					case q, ok := <-sk.blocks:
						if !ok {
							break more
						}
						batch = append(batch, q)
					default:
						break more
					}
				}
				if werr == nil && ctx.Err() == nil {
					sk.startWrite(batch)
					if many {
						bufs = bufs[:0]
						for _, q := range batch {
							bufs = append(bufs, q.b)
						}
						werr = bw.WriteBlocks(bufs)
					} else {
						_, werr = w.Write(p.b)
					}
					if !sk.endWrite() {
						// Abandoned while it hung: no longer ours. A new
						// batch, as abandonWrite may still read this one.
						batch = make([]piece, 0, cap(sk.blocks)+1)
						continue
					}
				}
				for _, q := range batch {
					q.l.release()
				}
			}
			if werr != nil || ctx.Err() != nil {
				w.Abort()
				s.diskError(d, werr)
				sk.done <- errors.Join(werr, ctx.Err())
				return
			}
			if dc, ok := w.(disk.DeferredCommitter); ok && dirSyncs(ctx) != nil {
				err = dc.CommitDeferred(dirSyncs(ctx))
			} else {
				err = w.Commit()
			}
			s.diskError(d, err)
			sk.done <- err
		}()
		return sk
	}
	pr, pw := io.Pipe()
	result := make(chan error, 1)
	go func() {
		err := s.Transport.Create(ctx, d, name, pr)
		// Whatever happened, unblock the writer side.
		if err != nil {
			pr.CloseWithError(err)
		} else {
			pr.CloseWithError(io.ErrClosedPipe)
		}
		result <- err
	}()
	go func() {
		var werr error
		for p := range sk.blocks {
			if werr == nil {
				_, werr = pw.Write(p.b)
			}
			p.l.release()
		}
		if werr != nil {
			pw.CloseWithError(werr)
		} else {
			pw.Close()
		}
		err := <-result
		if err == nil {
			err = werr
		}
		sk.done <- err
	}()
	return sk
}

func drain(ch chan piece) {
	for p := range ch {
		p.l.release()
	}
}

// buffers are the Store's working memory: Buffers, or a default budget
// of its own.
func (s *Store) buffers() *Buffers {
	s.defaultBufs.Do(func() {
		if s.Buffers == nil {
			s.Buffers = NewBuffers(DefaultBufferBudget)
		}
	})
	return s.Buffers
}

// hashJob is a stripe's data for the MD5, which runs beside the coding.
type hashJob struct {
	data [][]byte
	l    *lease
}

// Put streams r into blob key. It returns once at least WriteQuorum shards
// are durable; below quorum it removes what it wrote and fails.
//
// Each stripe is read straight into the data blocks of a lease from the
// Buffers, its parity computed beside them and every block checksummed in
// place; the blocks go to the shard writers and the MD5 without a copy,
// and back to the Buffers once all are done with them.
func (s *Store) Put(ctx context.Context, key string, l Layout, r io.Reader) (Info, error) {
	c, err := ec.New(l.K, l.M, l.ShardSize)
	if err != nil {
		return Info{}, err
	}
	if len(l.Disks) != l.K+l.M {
		return Info{}, fmt.Errorf("layout has %d disks for %d+%d", len(l.Disks), l.K, l.M)
	}
	bufs := s.buffers()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sinks := make([]*sink, len(l.Disks))
	for i, d := range l.Disks {
		sinks[i] = s.openSink(ctx, d, ShardName(key, i), c.BlockSize())
	}
	noMD5 := withoutMD5(ctx)
	if !noMD5 {
		s.hashing.Add(1)
		defer s.hashing.Add(-1)
	}
	// h is the hasher's until hashed is closed: it is chosen at the
	// first stripe (md5For), and every return below waits for hashed
	// before this deferred Close of an md5simd hash runs.
	var h hash.Hash
	defer func() {
		if c, ok := h.(io.Closer); ok {
			c.Close()
		}
	}()
	toHash, hashed := make(chan hashJob, 2), make(chan struct{})
	go func() {
		defer close(hashed)
		for j := range toHash {
			if !noMD5 {
				if h == nil {
					h = s.md5For()
				}
				for _, d := range j.data {
					h.Write(d)
				}
			}
			j.l.release()
		}
	}()
	shards := make([][]byte, len(l.Disks))
	alignedBlocks := make([][]byte, 0, len(l.Disks))
	var stripe int64
	var size int64
	var readErr error
	// io.ReadFull says ErrUnexpectedEOF both for a short last stripe and
	// for a body that itself failed with it (a chunked upload cut short):
	// src keeps the body's own error apart.
	src := &sourceReader{r: r}
	setDeadline := bodyDeadline(ctx)
	if setDeadline != nil {
		defer setDeadline(time.Time{})
	}
	for ended := false; !ended; {
		raw, err := bufs.Get(ctx, len(l.Disks), c.BlockSize())
		if err != nil {
			readErr = err
			break
		}
		// Each block is placed in its buffer's slack as it will sit in
		// its shard file, so a local disk writes it with direct I/O
		// from here, without copying it (disk.Aligned).
		blocks := alignedBlocks[:0]
		for _, b := range raw {
			if cap(b)-len(b) >= disk.DirectAlign {
				b = disk.Aligned(b[:cap(b)], stripe*int64(c.BlockSize()), c.BlockSize())
			}
			blocks = append(blocks, b)
		}
		stripe++
		if setDeadline != nil {
			// Best effort: a connection that cannot take deadlines is
			// read as before.
			setDeadline(time.Now().Add(s.fillTimeout()))
		}
		// One reference per shard writer and one for the hasher.
		ls := newLease(bufs, raw, len(blocks)+1)
		var data [][]byte
		n := 0
		for i := 0; i < c.K; i++ {
			shards[i] = blocks[i][4:]
			if ended {
				clear(shards[i])
				continue
			}
			got, err := io.ReadFull(src, shards[i])
			n += got
			clear(shards[i][got:])
			if got > 0 {
				data = append(data, shards[i][:got])
			}
			switch {
			case src.err != nil:
				readErr = src.err
			case err == io.EOF || err == io.ErrUnexpectedEOF:
				ended = true
			case err != nil:
				readErr = err
			}
			if readErr != nil {
				break
			}
		}
		if readErr != nil || n == 0 {
			bufs.Put(raw...)
			break
		}
		size += int64(n)
		for i := c.K; i < len(blocks); i++ {
			shards[i] = blocks[i][4:]
		}
		if err := c.Parity(shards); err != nil {
			bufs.Put(raw...)
			readErr = err
			break
		}
		toHash <- hashJob{data: data, l: ls}
		for i, sk := range sinks {
			ec.SealInPlace(blocks[i])
			// A writer that fails or stalls is dropped and the write
			// goes on without it.
			sk.send(piece{b: blocks[i], raw: raw[i], l: ls}, s.stallTimeout())
		}
	}
	close(toHash)
	if readErr != nil {
		cancel()
		<-hashed
		for _, sk := range sinks {
			sk.finish(s.stallTimeout())
		}
		s.Delete(context.WithoutCancel(ctx), key, l)
		return Info{}, fmt.Errorf("%w: %w", ErrSource, readErr)
	}
	// The shards are made durable while the MD5 takes in the last
	// stripes: waiting for the hash first put its tail and every
	// shard's fsync one after the other.
	ok, missing, errs := s.awaitQuorum(key, l, sinks)
	<-hashed
	if ok < WriteQuorum(l.K, l.M) {
		s.Delete(context.WithoutCancel(ctx), key, l)
		return Info{}, fmt.Errorf("%w: %d of %d shards written: %w", ErrQuorum, ok, len(sinks), errors.Join(errs...))
	}
	if len(errs) > 0 && s.Log != nil {
		s.Log.Warn("blob written with missing shards; it will be healed", "blob", key, "missing", missing, "err", errors.Join(errs...))
	}
	info := Info{Size: size, Written: ok, Missing: missing}
	if !noMD5 {
		if h == nil { // an empty body: no stripe was hashed
			h = md5.New()
		}
		info.MD5 = hex.EncodeToString(h.Sum(nil))
	}
	return info, nil
}

// awaitQuorum ends every shard's stream and waits for the writers: each
// for at most the stall timeout, and once a write quorum is durable, the
// rest for at most StragglerWait. It returns how many shards are durable,
// which are not, and why.
func (s *Store) awaitQuorum(key string, l Layout, sinks []*sink) (ok int, missing []int, errs []error) {
	type result struct {
		i   int
		err error
	}
	results := make(chan result, len(sinks))
	pending := map[int]bool{}
	for i, sk := range sinks {
		if sk.dropped {
			missing = append(missing, i)
			errs = append(errs, fmt.Errorf("shard %d on %s/%s: %w", i, l.Disks[i].Node, l.Disks[i].ID, sk.err))
			continue
		}
		close(sk.blocks)
		pending[i] = true
		go func() { results <- result{i, <-sk.done} }()
	}
	// giveUp aborts the writers still busy and leaves their shards to the
	// healer.
	giveUp := func() {
		for i := range pending {
			sinks[i].cancel()
			sinks[i].release()
			// A writer hung inside a write keeps that block but not
			// the budget (as when it is dropped while blocks stream).
			sinks[i].abandonWrite()
			missing = append(missing, i)
			errs = append(errs, fmt.Errorf("shard %d on %s/%s: %w: not durable in time", i, l.Disks[i].Node, l.Disks[i].ID, ErrStalled))
		}
		pending = nil
	}
	stall := time.NewTimer(s.stallTimeout())
	defer stall.Stop()
	var straggle <-chan time.Time
	quorum := WriteQuorum(l.K, l.M)
	for len(pending) > 0 {
		select {
		case r := <-results:
			delete(pending, r.i)
			sinks[r.i].dropped, sinks[r.i].err = true, r.err
			sinks[r.i].cancel()
			if r.err != nil {
				missing = append(missing, r.i)
				errs = append(errs, fmt.Errorf("shard %d on %s/%s: %w", r.i, l.Disks[r.i].Node, l.Disks[r.i].ID, r.err))
				continue
			}
			ok++
			if ok >= quorum && straggle == nil {
				t := time.NewTimer(s.stragglerWait())
				defer t.Stop()
				straggle = t.C
			}
		case <-straggle:
			giveUp()
		case <-stall.C:
			giveUp()
		}
	}
	sort.Ints(missing)
	return ok, missing, errs
}

// Delete removes every shard of a blob, as far as the disks are reachable.
func (s *Store) Delete(ctx context.Context, key string, l Layout) error {
	var errs []error
	for i, d := range l.Disks {
		if err := s.DeleteShard(ctx, key, i, d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// DeleteShard removes shard i of blob key from disk d.
func (s *Store) DeleteShard(ctx context.Context, key string, i int, d placement.Disk) error {
	name := ShardName(key, i)
	if local, ok := s.Local[d.ID]; ok && d.Node == s.Node {
		s.files().forget(d, name) // a kept file would keep its bytes readable
		err := local.Remove(name)
		s.diskError(d, err)
		return err
	}
	if s.Transport != nil {
		return s.Transport.Remove(ctx, d, name)
	}
	return fmt.Errorf("disk %s of node %s is not reachable from here", d.ID, d.Node)
}
