package blob

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"

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
