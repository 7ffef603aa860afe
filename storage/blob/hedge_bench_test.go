package blob

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/rackstack/rackstack/storage/disk"
)

// stalledDisk is a disk whose shard reads fail after stall, as a frozen
// peer's do at the transport's timeout.
type stalledDisk struct {
	disk.Disk
	stall time.Duration
}

func (d stalledDisk) Open(name string, off int64) (io.ReadCloser, error) {
	rc, err := d.Disk.Open(name, off)
	if err != nil {
		return nil, err
	}
	return stalledReader{rc: rc, stall: d.stall}, nil
}

type stalledReader struct {
	rc    io.ReadCloser
	stall time.Duration
}

func (r stalledReader) Read(p []byte) (int, error) {
	time.Sleep(r.stall)
	return 0, errors.New("peer did not answer in time")
}

func (r stalledReader) Close() error { return r.rc.Close() }

// BenchmarkGetStalledShard reads a 4 MiB blob (one stripe of 4+2 with
// 1 MiB shards) whose shard 1 is on a disk that answers nothing for a
// second and then fails: the time of a GET while a node is frozen.
func BenchmarkGetStalledShard(b *testing.B) {
	s, l := newStore(b, 6)
	l.ShardSize = 1 << 20
	data := payload(4 << 20)
	if _, err := s.Put(context.Background(), "k", l, bytes.NewReader(data)); err != nil {
		b.Fatal(err)
	}
	s.Local[l.Disks[1].ID] = stalledDisk{Disk: s.Local[l.Disks[1].ID], stall: time.Second}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var buf bytes.Buffer
		if _, err := s.Get(context.Background(), "k", l, int64(len(data)), 0, int64(len(data)), &buf); err != nil || !bytes.Equal(buf.Bytes(), data) {
			b.Fatal(err)
		}
	}
}
