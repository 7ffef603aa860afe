package objecttest

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rackstack/rackstack/storage/blob"
	"github.com/rackstack/rackstack/storage/disk"
	"github.com/rackstack/rackstack/storage/object"
)

// Served is an object store of one node behind an HTTP API under test
// (Swift, S3): the store, its disks (to break them) and the server.
type Served struct {
	T     *testing.T
	Srv   *httptest.Server
	Svc   *object.Service
	Disks map[string]disk.Disk
}

// Serve serves handler over a store of n disks whose shards are at most
// maxShard bytes, until the test ends.
func Serve(t *testing.T, n, maxShard int, handler func(*object.Service) http.Handler) *Served {
	t.Helper()
	return ServeWithBuffers(t, n, maxShard, nil, handler)
}

// ServeWithBuffers is Serve over a blob store working in bufs.
func ServeWithBuffers(t *testing.T, n, maxShard int, bufs *blob.Buffers, handler func(*object.Service) http.Handler) *Served {
	t.Helper()
	return ServeWithBlobs(t, n, maxShard, &blob.Store{Buffers: bufs}, handler)
}

// ServeWithBlobs is Serve over blobs (see NewWithBlobs).
func ServeWithBlobs(t *testing.T, n, maxShard int, blobs *blob.Store, handler func(*object.Service) http.Handler) *Served {
	t.Helper()
	svc, disks := NewWithBlobs(t, n, maxShard, blobs)
	srv := httptest.NewServer(handler(svc))
	t.Cleanup(srv.Close)
	return &Served{T: t, Srv: srv, Svc: svc, Disks: disks}
}

// With is s reporting to t (a subtest).
func (s *Served) With(t *testing.T) *Served {
	c := *s
	c.T = t
	return &c
}
