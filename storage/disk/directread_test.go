package disk

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func writeShard(t *testing.T, d *Dir, name string, data []byte) {
	t.Helper()
	w, err := d.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestDirectReadBlocks reads blocks at offsets and lengths that are not
// aligned (a shard's blocks sit behind their 4-byte checksums), up to the
// end of a shard whose length is not aligned either, and past it.
func TestDirectReadBlocks(t *testing.T) {
	d, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 3*stageSize+12345)
	rand.New(rand.NewSource(1)).Read(data)
	writeShard(t, d, "abcdef.0", data)
	f, err := d.OpenDirect("abcdef.0")
	if err != nil {
		t.Fatalf("open direct: %v", err)
	}
	defer f.Close()
	const block = 65536 + 4
	buf := make([]byte, block+DirectSlack+1)
	for off := int64(0); off < int64(len(data)); off += block {
		n := min(block, len(data)-int(off))
		got, err := f.ReadBlock(buf[1:], off, n) // misaligned memory too
		if err != nil {
			t.Fatalf("block at %d: %v", off, err)
		}
		if !bytes.Equal(got, data[off:off+int64(n)]) {
			t.Fatalf("block at %d differs", off)
		}
	}
	if _, err := f.ReadBlock(buf, int64(len(data))-100, 200); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("read past the end: %v, want ErrUnexpectedEOF", err)
	}
	if _, err := f.ReadBlock(buf[:block], 0, block); err == nil {
		t.Fatal("a buffer without the slack was accepted")
	}
	if _, err := d.OpenDirect("absent.0"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("open a missing shard: %v, want ErrNotFound", err)
	}
}

// TestDirectReadRefused: a filesystem that refuses O_DIRECT (open fails
// with EINVAL) is reported as ErrNoDirect, for the caller to read
// through the page cache.
func TestDirectReadRefused(t *testing.T) {
	d, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	writeShard(t, d, "abcdef.0", []byte("hello"))
	old := openDirectHook
	openDirectHook = func(string) (*os.File, error) { return nil, &os.PathError{Op: "open", Err: unix.EINVAL} }
	defer func() { openDirectHook = old }()
	if _, err := d.OpenDirect("abcdef.0"); !errors.Is(err, ErrNoDirect) {
		t.Fatalf("err = %v, want ErrNoDirect", err)
	}
}
