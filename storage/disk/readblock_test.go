package disk

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// readBlockFile writes a shard of blocks blocks of n bytes (the last
// one ending mid-page) through a Writer, as a blob write does, and
// returns its bytes.
func readBlockFile(t *testing.T, d *Dir, name string, blocks, n int) []byte {
	t.Helper()
	data := make([]byte, blocks*n)
	rand.New(rand.NewSource(int64(n))).Read(data)
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
	return data
}

// buffer returns a buffer of length n and capacity n+room whose memory
// starts shift bytes past a page boundary.
func buffer(n, room, shift int) []byte {
	b := AlignedBuffer(n + room + directAlign)
	return b[shift : shift+n : shift+n+room]
}

// ReadBlock reads each block at its offset, at every alignment of that
// offset and of the buffer's memory: with direct I/O into the buffer
// whenever the pages around the block fit in it (a page of slack and an
// aligned buffer, as the Buffers' blocks are; two pages at any shift),
// through the page cache into the buffer's start when they do not, and
// the bytes are the file's either way, the file's last block (ending
// mid-page) included.
func TestReadBlockDirectAtEveryAlignment(t *testing.T) {
	d, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const n = 4 + 9*1024 + 1 // offsets land on many page offsets
	const blocks = 40
	data := readBlockFile(t, d, "align.0", blocks, n)
	r, err := d.OpenBlocks("align.0")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	testenv.Require(t, supportsDirect(t, d.Path()), "the test directory's filesystem does not take O_DIRECT")
	if !r.Direct() {
		t.Fatal("reader is not direct on a filesystem that takes O_DIRECT")
	}
	heads := map[int64]bool{}
	for i := range blocks {
		off := int64(i * n)
		heads[off%directAlign] = true
		want := data[off : off+int64(n)]
		head := int(off % directAlign)
		// An aligned buffer with room for the pages around the block
		// (two pages of slack always are), or room for them past the
		// buffer's first page boundary.
		pages := func(shift, room int) bool {
			first := (directAlign - shift) % directAlign
			need := (head + n + directAlign - 1) &^ (directAlign - 1)
			return first+need <= n+room
		}
		for _, c := range []struct {
			room, shift int
			direct      bool
		}{
			{2 * directAlign, 0, true}, // the Buffers' blocks
			{directAlign, 0, head+n%directAlign <= directAlign},
			{2 * directAlign, 1, pages(1, 2*directAlign)},
			{2 * directAlign, 2048, pages(2048, 2*directAlign)},
			{2 * directAlign, 4092, pages(4092, 2*directAlign)},
			{3 * directAlign, 1, true},
			{3 * directAlign, 4095, true},
			{0, 0, false},
			{0, 100, false},
		} {
			buf := buffer(n, c.room, c.shift)
			if _, _, fits := directRange(buf, off, n); fits != c.direct {
				t.Fatalf("block %d, room %d shift %d: fits %v, want %v", i, c.room, c.shift, !c.direct, c.direct)
			}
			clear(buf[:cap(buf)])
			got, direct, err := r.ReadBlock(buf, off, n)
			if err != nil {
				t.Fatalf("block %d (room %d, shift %d): %v", i, c.room, c.shift, err)
			}
			if direct != c.direct {
				t.Fatalf("block %d (room %d, shift %d): direct %v, want %v", i, c.room, c.shift, direct, c.direct)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("block %d (room %d, shift %d, direct %v): wrong bytes", i, c.room, c.shift, direct)
			}
			if !within(got, buf) {
				t.Fatalf("block %d: returned bytes are not in the buffer", i)
			}
		}
	}
	if len(heads) < 30 {
		t.Fatalf("blocks covered %d page offsets", len(heads))
	}
	// Past the end of the file: a short read is an error.
	if _, _, err := r.ReadBlock(buffer(n, directAlign, 0), int64(blocks*n-10), n); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("read past the end: %v", err)
	}
	// The reader stayed direct through the page cache reads.
	if !r.Direct() {
		t.Fatal("reader left direct I/O")
	}
}

// within reports whether b lies in buf's memory (to its capacity).
func within(b, buf []byte) bool {
	full := buf[:cap(buf)]
	for i := range full {
		if &full[i] == &b[0] {
			return i+len(b) <= len(full)
		}
	}
	return false
}

// A direct read of bytes still dirty in the page cache (a tail just
// written through it, never fsync'd) sees them: the kernel writes the
// range back first.
func TestReadBlockDirectSeesDirtyPages(t *testing.T) {
	d, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const n = 4 + 64<<10
	data := make([]byte, 3*n)
	rand.New(rand.NewSource(3)).Read(data)
	p := d.path("dirty.0")
	os.MkdirAll(filepath.Dir(p), 0o700)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := d.OpenBlocks("dirty.0")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// Overwrite the middle block in the page cache only.
	f, _ := os.OpenFile(p, os.O_WRONLY, 0)
	fresh := bytes.Repeat([]byte{0xa5}, n)
	f.WriteAt(fresh, n)
	f.Close()
	copy(data[n:], fresh)
	for i := range 3 {
		got, direct, err := r.ReadBlock(buffer(n, directAlign, 0), int64(i*n), n)
		if err != nil || !bytes.Equal(got, data[i*n:(i+1)*n]) {
			t.Fatalf("block %d (direct %v): %v, equal %v", i, direct, err, bytes.Equal(got, data[i*n:(i+1)*n]))
		}
		if supportsDirect(t, d.Path()) && !direct {
			t.Fatalf("block %d not read direct", i)
		}
	}
}

// Where the filesystem refuses O_DIRECT (EINVAL at open), blocks are
// read through the page cache, as writes fall back; and on tmpfs they
// read right whichever way it takes.
func TestReadBlockFallsBack(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		d, err := OpenDir(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		const n = 4 + 300<<10
		data := readBlockFile(t, d, "refused.0", 5, n)
		orig := openDirectHook
		openDirectHook = func(string) (*os.File, error) { return nil, &os.PathError{Op: "open", Err: syscall.EINVAL} }
		defer func() { openDirectHook = orig }()
		r, err := d.OpenBlocks("refused.0")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if r.Direct() {
			t.Fatal("reader direct though O_DIRECT was refused")
		}
		for i := range 5 {
			got, direct, err := r.ReadBlock(buffer(n, directAlign, 0), int64(i*n), n)
			if err != nil || direct || !bytes.Equal(got, data[i*n:(i+1)*n]) {
				t.Fatalf("block %d: direct %v, %v, equal %v", i, direct, err, bytes.Equal(got, data[i*n:(i+1)*n]))
			}
		}
		if _, err := d.OpenBlocks("missing.0"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing shard: %v", err)
		}
	})
	t.Run("tmpfs", func(t *testing.T) {
		var st syscall.Statfs_t
		err := syscall.Statfs("/dev/shm", &st)
		testenv.Require(t, err == nil && st.Type == 0x01021994, "no tmpfs at /dev/shm")
		dir, err := os.MkdirTemp("/dev/shm", "readblock")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		d, err := OpenDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		const n = 4 + 300<<10
		data := readBlockFile(t, d, "tmpfs.0", 5, n)
		r, err := d.OpenBlocks("tmpfs.0")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		t.Logf("tmpfs reads direct: %v", r.Direct())
		for i := range 5 {
			got, _, err := r.ReadBlock(buffer(n, directAlign, 0), int64(i*n), n)
			if err != nil || !bytes.Equal(got, data[i*n:(i+1)*n]) {
				t.Fatalf("block %d: %v, equal %v", i, err, bytes.Equal(got, data[i*n:(i+1)*n]))
			}
		}
	})
}
