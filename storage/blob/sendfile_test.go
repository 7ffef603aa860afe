package blob

import (
	"bytes"
	"context"
	"io"
	"os"
	"testing"
)

// fileTaker is a writer that takes files as an HTTP response does: it
// counts what came to it as files apart from what was written.
type fileTaker struct {
	bytes.Buffer
	fromFiles int64
}

func (w *fileTaker) ReadFrom(r io.Reader) (int64, error) {
	if lr, ok := r.(*io.LimitedReader); ok {
		if _, ok := lr.R.(*os.File); ok {
			n, err := io.Copy(&w.Buffer, r)
			w.fromFiles += n
			return n, err
		}
	}
	return io.Copy(&w.Buffer, r)
}

// A writer that takes files gets a read's verified blocks from their
// shard files, and the blocks rebuilt around a lost shard from memory:
// the bytes are the blob's either way, across blobs and partial stripes.
func TestVerifiedBlocksAreSentFromTheirFiles(t *testing.T) {
	s, l := newStore(t, 6)
	stripe := int64(l.K * l.ShardSize)
	sizes := map[string]int64{"a": 3*stripe + 100, "b": 2 * stripe}
	data := map[string][]byte{}
	for key, n := range sizes {
		data[key] = payload(int(n))
		if _, err := s.Put(context.Background(), key, l, bytes.NewReader(data[key])); err != nil {
			t.Fatal(err)
		}
	}
	os.Remove(shardPath(s, l, "b", 1)) // a data shard: rebuilt in memory
	rs := []Range{
		{Key: "a", Layout: l, Size: sizes["a"], Offset: stripe - 5, Length: 2*stripe + 50},
		{Key: "b", Layout: l, Size: sizes["b"], Offset: 3, Length: sizes["b"] - 3},
	}
	var want bytes.Buffer
	for _, r := range rs {
		want.Write(data[r.Key][r.Offset : r.Offset+r.Length])
	}
	var got fileTaker
	if _, err := s.GetRanges(context.Background(), rs, &got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatal("the read sent other bytes than the ranges'")
	}
	// Everything but b's shard 1 (a quarter of b) came from the files.
	wantFiles := int64(want.Len()) - (sizes["b"]/stripe)*int64(l.ShardSize)
	if got.fromFiles != wantFiles {
		t.Errorf("%d bytes sent from files, want %d of %d", got.fromFiles, wantFiles, want.Len())
	}
	if s.buffers().Out() != 0 {
		t.Fatalf("%d bytes of blocks still handed out", s.buffers().Out())
	}
}
