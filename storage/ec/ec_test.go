package ec

import (
	"bytes"
	"errors"
	"math/rand"
	"testing"
)

// TestEveryLossPattern removes every subset of up to m shards of a stripe
// and checks the data comes back byte for byte.
func TestEveryLossPattern(t *testing.T) {
	geometries := map[string]struct{ k, m int }{"4+2": {4, 2}, "2+1": {2, 1}, "3+3": {3, 3}, "1+0": {1, 0}}
	for name, g := range geometries {
		t.Run(name, func(t *testing.T) {
			c, err := New(g.k, g.m, 256)
			if err != nil {
				t.Fatal(err)
			}
			data := make([]byte, c.StripeSize()-17) // a short last stripe
			rand.New(rand.NewSource(1)).Read(data)
			n := g.k + g.m
			for mask := 0; mask < 1<<n; mask++ {
				lost := bitsSet(mask)
				shards := c.NewShards()
				if err := c.Encode(data, shards); err != nil {
					t.Fatal(err)
				}
				for i := 0; i < n; i++ {
					if mask&(1<<i) != 0 {
						shards[i] = nil
					}
				}
				err := c.Reconstruct(shards, true)
				if lost > g.m {
					if !errors.Is(err, ErrTooFewShards) {
						t.Fatalf("lost %d of %d+%d: err = %v, want ErrTooFewShards", lost, g.k, g.m, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("mask %b: %v", mask, err)
				}
				got := make([]byte, len(data))
				c.Join(got, shards, len(data))
				if !bytes.Equal(got, data) {
					t.Fatalf("mask %b: data differs after reconstruction", mask)
				}
			}
		})
	}
}

func bitsSet(x int) int {
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}

func TestChecksumDetectsFlippedBits(t *testing.T) {
	data := bytes.Repeat([]byte("rackstack"), 50)
	block := make([]byte, 4+len(data))
	Seal(block, data)
	if got, err := Open(block); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("clean block: %v", err)
	}
	for _, pos := range []int{0, 3, 4, 100, len(block) - 1} {
		bad := append([]byte(nil), block...)
		bad[pos] ^= 0x40
		if _, err := Open(bad); !errors.Is(err, ErrChecksum) {
			t.Fatalf("flip at %d not detected", pos)
		}
	}
}

func TestGeometryValidation(t *testing.T) {
	for name, g := range map[string][3]int{"k=0": {0, 2, 64}, "odd shard": {4, 2, 100}, "too wide": {200, 100, 64}} {
		if _, err := New(g[0], g[1], g[2]); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func BenchmarkEncode4p2(b *testing.B) {
	c, _ := New(4, 2, 1<<20)
	data := make([]byte, c.StripeSize())
	shards := c.NewShards()
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		c.Encode(data, shards)
	}
}
