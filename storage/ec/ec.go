// Package ec cuts data into erasure-coded stripes: k data shards and m
// parity shards per stripe (klauspost/reedsolomon), each block carrying a
// CRC-32C so that bit rot is detected where it is read.
package ec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/klauspost/reedsolomon"
)

// Coder encodes and reconstructs stripes of one geometry.
type Coder struct {
	K, M      int
	ShardSize int // bytes of data per shard per stripe
	enc       reedsolomon.Encoder
}

// ErrTooFewShards means fewer than K shards of a stripe are readable.
var ErrTooFewShards = errors.New("too few shards to reconstruct")

// ErrChecksum means a block's checksum does not match its data.
var ErrChecksum = errors.New("shard block checksum mismatch")

// New returns a coder for k+m stripes with shardSize bytes per shard.
func New(k, m, shardSize int) (*Coder, error) {
	if k < 1 || m < 0 || k+m > 256 {
		return nil, fmt.Errorf("erasure code %d+%d: need 1 <= k and k+m <= 256", k, m)
	}
	if shardSize < 64 || shardSize%64 != 0 {
		return nil, fmt.Errorf("shard size %d: must be a positive multiple of 64", shardSize)
	}
	c := &Coder{K: k, M: m, ShardSize: shardSize}
	if m > 0 {
		enc, err := reedsolomon.New(k, m)
		if err != nil {
			return nil, fmt.Errorf("erasure code %d+%d: %w", k, m, err)
		}
		c.enc = enc
	}
	return c, nil
}

// StripeSize is the number of object bytes one stripe holds.
func (c *Coder) StripeSize() int { return c.K * c.ShardSize }

// Stripes is how many stripes an object of size bytes needs.
func (c *Coder) Stripes(size int64) int64 {
	if size == 0 {
		return 0
	}
	return (size + int64(c.StripeSize()) - 1) / int64(c.StripeSize())
}

// NewShards allocates k+m shard buffers for one stripe.
func (c *Coder) NewShards() [][]byte {
	buf := make([]byte, (c.K+c.M)*c.ShardSize)
	shards := make([][]byte, c.K+c.M)
	for i := range shards {
		shards[i] = buf[i*c.ShardSize : (i+1)*c.ShardSize : (i+1)*c.ShardSize]
	}
	return shards
}

// Encode spreads data (at most StripeSize bytes; the rest is zero padding)
// over the data shards and computes the parity shards, in place.
func (c *Coder) Encode(data []byte, shards [][]byte) error {
	if len(data) > c.StripeSize() {
		return fmt.Errorf("stripe of %d bytes exceeds %d", len(data), c.StripeSize())
	}
	for i := 0; i < c.K; i++ {
		s := shards[i][:c.ShardSize]
		n := 0
		if off := i * c.ShardSize; off < len(data) {
			n = copy(s, data[off:])
		}
		clear(s[n:])
	}
	if c.M == 0 {
		return nil
	}
	return c.enc.Encode(shards)
}

// Parity computes the parity shards of a stripe whose data shards are
// filled (ShardSize bytes each, zero padded), in place: the write path
// reads the object straight into the data shards, so nothing is copied.
func (c *Coder) Parity(shards [][]byte) error {
	if c.M == 0 {
		return nil
	}
	return c.enc.Encode(shards)
}

// Reconstruct rebuilds the missing shards (nil or zero-length entries) of a
// stripe from the others. dataOnly skips rebuilding parity.
func (c *Coder) Reconstruct(shards [][]byte, dataOnly bool) error {
	present := 0
	for _, s := range shards {
		if len(s) != 0 {
			present++
		}
	}
	if present < c.K {
		return fmt.Errorf("%w: %d of %d readable, need %d", ErrTooFewShards, present, c.K+c.M, c.K)
	}
	if present == c.K+c.M || c.M == 0 {
		return nil
	}
	var err error
	if dataOnly {
		err = c.enc.ReconstructData(shards)
	} else {
		err = c.enc.Reconstruct(shards)
	}
	if err != nil {
		return fmt.Errorf("reconstruct stripe: %w", err)
	}
	return nil
}

// Join copies the first n object bytes of a stripe's data shards to dst.
func (c *Coder) Join(dst []byte, shards [][]byte, n int) {
	off := 0
	for i := 0; i < c.K && off < n; i++ {
		off += copy(dst[off:n], shards[i])
	}
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// BlockSize is the size on disk of one shard block: checksum then data.
func (c *Coder) BlockSize() int { return 4 + c.ShardSize }

// Seal writes data's checksum and data into block (BlockSize bytes).
func Seal(block, data []byte) {
	binary.LittleEndian.PutUint32(block[:4], crc32.Checksum(data, castagnoli))
	copy(block[4:], data)
}

// SealInPlace writes the checksum of block[4:] into block[:4]: the data
// was put into the block where it stays.
func SealInPlace(block []byte) {
	binary.LittleEndian.PutUint32(block[:4], crc32.Checksum(block[4:], castagnoli))
}

// Open checks a block read from disk and returns its data.
func Open(block []byte) ([]byte, error) {
	if len(block) < 4 {
		return nil, ErrChecksum
	}
	data := block[4:]
	if binary.LittleEndian.Uint32(block[:4]) != crc32.Checksum(data, castagnoli) {
		return nil, ErrChecksum
	}
	return data, nil
}
