package blob

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	md5simd "github.com/minio/md5-simd"
)

// Writes hashed together in the lanes of one md5simd.Server each get the
// MD5 of their own bytes, whatever their sizes.
func TestConcurrentWritesShareTheMD5Server(t *testing.T) {
	s, l := newStore(t, 6)
	srv := md5simd.NewServer()
	defer srv.Close()
	s.MD5 = srv
	// As if simdHashers other writes were hashing: every one of these
	// goes to the server's lanes.
	s.hashing.Store(simdHashers)
	stripe := l.K * l.ShardSize
	sizes := []int{0, 1, 63, 64, 65, stripe - 1, stripe, 3*stripe + 5, 17*stripe + 100}
	var wg sync.WaitGroup
	errs := make(chan error, len(sizes))
	for _, n := range sizes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := payload(n)
			info, err := s.Put(context.Background(), fmt.Sprint("m", n), l, bytes.NewReader(data))
			sum := md5.Sum(data)
			switch {
			case err != nil:
				errs <- fmt.Errorf("%d bytes: %w", n, err)
			case info.MD5 != hex.EncodeToString(sum[:]):
				errs <- fmt.Errorf("%d bytes: MD5 %s, want %x", n, info.MD5, sum)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := s.hashing.Load(); n != simdHashers {
		t.Errorf("%d writes counted as hashing after all ended, want the %d set", n, simdHashers)
	}
}

// countingMD5 is an md5simd.Server that counts the hashes it hands out.
type countingMD5 struct {
	md5simd.Server
	n atomic.Int64
}

func (c *countingMD5) NewHash() md5simd.Hasher {
	c.n.Add(1)
	return c.Server.NewHash()
}

// A write chooses between the lanes and crypto/md5 when its first stripe
// is hashed, not when it starts: the first of minio-go's four parts
// starts alone, and by its first stripe the others are hashing too.
func TestWriteThatFindsCompanyByItsFirstStripeSharesTheLanes(t *testing.T) {
	s, l := newStore(t, 6)
	srv := md5simd.NewServer()
	defer srv.Close()
	counted := &countingMD5{Server: srv}
	s.MD5 = counted
	stripe := l.K * l.ShardSize
	data := payload(2*stripe + 7)

	// The first write starts alone; its body comes later.
	firstBody, firstW := io.Pipe()
	first := make(chan error, 1)
	var firstInfo Info
	go func() {
		var err error
		firstInfo, err = s.Put(context.Background(), "first", l, firstBody)
		first <- err
	}()
	// Two more start, and wait for their bodies.
	var others []*io.PipeWriter
	otherDone := make(chan error, 2)
	for i := range 2 {
		r, w := io.Pipe()
		others = append(others, w)
		go func() {
			info, err := s.Put(context.Background(), fmt.Sprint("other", i), l, r)
			if err == nil && info.MD5 != md5hex(data) {
				err = fmt.Errorf("other %d: MD5 %s, want %s", i, info.MD5, md5hex(data))
			}
			otherDone <- err
		}()
	}
	waitFor(t, func() bool { return s.hashing.Load() == 3 })
	if n := counted.n.Load(); n != 0 {
		t.Fatalf("%d writes took the lanes before any stripe was hashed", n)
	}
	// Now the first write's body: three are hashing at its first stripe.
	go func() {
		firstW.Write(data)
		firstW.Close()
	}()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if firstInfo.MD5 != md5hex(data) {
		t.Errorf("MD5 %s, want %s", firstInfo.MD5, md5hex(data))
	}
	if n := counted.n.Load(); n != 1 {
		t.Errorf("%d writes took the lanes, want the first one, which had company by its first stripe", n)
	}
	// The other two, with only each other left, hash alone.
	for _, w := range others {
		go func() {
			w.Write(data)
			w.Close()
		}()
	}
	for range others {
		if err := <-otherDone; err != nil {
			t.Error(err)
		}
	}
	if n := counted.n.Load(); n != 1 {
		t.Errorf("%d writes took the lanes, want 1: two writes hashing hash alone", n)
	}
}

func md5hex(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
	}
}
