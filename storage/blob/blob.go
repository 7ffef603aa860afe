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
	"io"
	"log/slog"
	"strconv"
	"sync"

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
}

// ShardName is the file name of shard i of blob key.
func ShardName(key string, i int) string { return key + "." + strconv.Itoa(i) }

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
	Written int // shards made durable
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
	blocks chan []byte
	done   chan error
	failed bool
}

func (s *Store) openSink(ctx context.Context, d placement.Disk, name string, pool *sync.Pool) *sink {
	sk := &sink{blocks: make(chan []byte, 2), done: make(chan error, 1)}
	if local, ok := s.Local[d.ID]; ok && d.Node == s.Node {
		go func() {
			w, err := local.Create(name)
			if err != nil {
				drain(sk.blocks, pool)
				sk.done <- err
				return
			}
			var werr error
			for b := range sk.blocks {
				if werr == nil {
					_, werr = w.Write(b)
				}
				pool.Put(b)
			}
			if werr != nil || ctx.Err() != nil {
				w.Abort()
				sk.done <- errors.Join(werr, ctx.Err())
				return
			}
			sk.done <- w.Commit()
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
		for b := range sk.blocks {
			if werr == nil {
				_, werr = pw.Write(b)
			}
			pool.Put(b)
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

func drain(ch chan []byte, pool *sync.Pool) {
	for b := range ch {
		pool.Put(b)
	}
}

// Put streams r into blob key. It returns once at least WriteQuorum shards
// are durable; below quorum it removes what it wrote and fails.
func (s *Store) Put(ctx context.Context, key string, l Layout, r io.Reader) (Info, error) {
	c, err := ec.New(l.K, l.M, l.ShardSize)
	if err != nil {
		return Info{}, err
	}
	if len(l.Disks) != l.K+l.M {
		return Info{}, fmt.Errorf("layout has %d disks for %d+%d", len(l.Disks), l.K, l.M)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pool := &sync.Pool{New: func() any { return make([]byte, c.BlockSize()) }}
	sinks := make([]*sink, len(l.Disks))
	for i, d := range l.Disks {
		sinks[i] = s.openSink(ctx, d, ShardName(key, i), pool)
	}
	// The MD5 runs beside the coding, a stripe behind: two stripe buffers
	// take turns, and one is refilled only once the hasher is done with it.
	h := md5.New()
	toHash, hashed := make(chan []byte, 2), make(chan struct{}, 2)
	go func() {
		for b := range toHash {
			h.Write(b)
			hashed <- struct{}{}
		}
	}()
	stripes := [2][]byte{make([]byte, c.StripeSize()), make([]byte, c.StripeSize())}
	pending := 0
	shards := c.NewShards()
	var size int64
	var readErr error
	// io.ReadFull says ErrUnexpectedEOF both for a short last stripe and
	// for a body that itself failed with it (a chunked upload cut short):
	// src keeps the body's own error apart.
	src := &sourceReader{r: r}
	for turn := 0; ; turn ^= 1 {
		if pending == 2 {
			<-hashed
			pending--
		}
		stripe := stripes[turn]
		n, err := io.ReadFull(src, stripe)
		if src.err != nil {
			readErr = src.err
			break
		}
		if n > 0 {
			size += int64(n)
			toHash <- stripe[:n]
			pending++
			if err := c.Encode(stripe[:n], shards); err != nil {
				readErr = err
				break
			}
			for i, sk := range sinks {
				b := pool.Get().([]byte)
				ec.Seal(b, shards[i])
				select {
				case sk.blocks <- b:
				case err := <-sk.done:
					// The shard writer gave up; keep going without it.
					pool.Put(b)
					if !sk.failed {
						sk.failed = true
						sk.done <- err
						close(sk.blocks)
					}
				}
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			readErr = err
			break
		}
	}
	close(toHash)
	for ; pending > 0; pending-- {
		<-hashed
	}
	if readErr != nil {
		cancel()
	}
	ok := 0
	var errs []error
	for i, sk := range sinks {
		if !sk.failed {
			close(sk.blocks)
		}
		if err := <-sk.done; err != nil {
			errs = append(errs, fmt.Errorf("shard %d on %s/%s: %w", i, l.Disks[i].Node, l.Disks[i].ID, err))
		} else {
			ok++
		}
	}
	if readErr != nil {
		s.Delete(context.WithoutCancel(ctx), key, l)
		return Info{}, fmt.Errorf("%w: %w", ErrSource, readErr)
	}
	if ok < WriteQuorum(l.K, l.M) {
		s.Delete(context.WithoutCancel(ctx), key, l)
		return Info{}, fmt.Errorf("%w: %d of %d shards written: %w", ErrQuorum, ok, len(sinks), errors.Join(errs...))
	}
	if len(errs) > 0 && s.Log != nil {
		s.Log.Warn("blob written with missing shards; it will be healed", "blob", key, "err", errors.Join(errs...))
	}
	return Info{Size: size, MD5: hex.EncodeToString(h.Sum(nil)), Written: ok}, nil
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
		return local.Remove(name)
	}
	if s.Transport != nil {
		return s.Transport.Remove(ctx, d, name)
	}
	return fmt.Errorf("disk %s of node %s is not reachable from here", d.ID, d.Node)
}
