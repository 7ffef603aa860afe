package disk

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DirectFile reads blocks of one shard with direct I/O (O_DIRECT): the
// device fills the caller's memory itself. Reading a large object through
// the page cache cost most of a GET's CPU: the kernel allocated, filled,
// charged and later evicted a page per 4 KiB, and copied each into the
// reader's buffer. A direct read skips the cache, so it suits bytes read
// once (a large object streamed to a client), not small hot ones.
//
// Direct I/O wants its memory, file offset and length aligned to
// DirectAlign: ReadBlock reads the aligned range around the block asked
// for, into a buffer DirectSlack bytes longer than the block.
type DirectFile struct {
	f *os.File
}

// DirectAlign is the alignment of direct reads' memory, offsets and
// lengths: 4 KiB suits every logical block size up to it.
const DirectAlign = directAlign

// DirectSlack is how much longer than a block a buffer handed to
// ReadBlock must be: up to an alignment unit before the block and one
// after it, and one to align the buffer's start in memory.
const DirectSlack = 3 * DirectAlign

// ErrNoDirect means direct I/O is refused here (a filesystem without it,
// such as an older tmpfs, or a device with a larger logical block): the
// caller reads the shard through the page cache (Open) instead.
var ErrNoDirect = errors.New("direct I/O not supported")

// openDirectHook opens a shard for direct reads; a test makes it fail as
// a filesystem without direct I/O does.
var openDirectHook = func(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|unix.O_DIRECT, 0)
}

// OpenDirect opens shard name for direct reads. It fails with
// ErrNotFound if the shard is not here, and with ErrNoDirect (wrapped)
// if the filesystem refuses direct I/O.
func (d *Dir) OpenDirect(name string) (*DirectFile, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	f, err := openDirectHook(d.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s on %s", ErrNotFound, name, d.id)
	}
	if errors.Is(err, unix.EINVAL) {
		return nil, fmt.Errorf("%w: %s: %v", ErrNoDirect, d.root, err)
	}
	if err != nil {
		return nil, err
	}
	return &DirectFile{f: f}, nil
}

// ReadBlock reads the n bytes at offset off of the shard into buf, which
// must hold at least n+DirectSlack bytes, and returns them (a part of
// buf). It fails with io.ErrUnexpectedEOF if the shard ends first, and
// with ErrNoDirect (wrapped) if the kernel refuses the direct read.
func (f *DirectFile) ReadBlock(buf []byte, off int64, n int) ([]byte, error) {
	if n < 0 || off < 0 {
		return nil, fmt.Errorf("read block of %d bytes at %d", n, off)
	}
	if len(buf) < n+DirectSlack {
		return nil, fmt.Errorf("direct read of %d bytes needs a buffer of %d, not %d", n, n+DirectSlack, len(buf))
	}
	pad := 0
	if r := int(uintptr(unsafe.Pointer(&buf[0])) % DirectAlign); r != 0 {
		pad = DirectAlign - r
	}
	start := off &^ (DirectAlign - 1)
	lead := int(off - start)
	length := (lead + n + DirectAlign - 1) &^ (DirectAlign - 1)
	dst := buf[pad : pad+length]
	// One read of the whole block: split in parallel reads (to give the
	// device more requests at once, as the kernel's read-ahead does) it
	// cost more CPU than it saved, in threads and wake-ups.
	got, err := f.readFull(int(f.f.Fd()), dst, start)
	if err != nil {
		return nil, err
	}
	if got < lead+n {
		return nil, fmt.Errorf("read %s at %d: %w", f.f.Name(), off, io.ErrUnexpectedEOF)
	}
	return dst[lead : lead+n], nil
}

// readFull reads dst from offset off, up to the end of the shard; it
// returns how many bytes it read.
func (f *DirectFile) readFull(fd int, dst []byte, off int64) (int, error) {
	got := 0
	for got < len(dst) {
		m, err := unix.Pread(fd, dst[got:], off+int64(got))
		if err == unix.EINTR {
			continue
		}
		if err == unix.EINVAL {
			return got, fmt.Errorf("%w: %s: %v", ErrNoDirect, f.f.Name(), err)
		}
		if err != nil {
			return got, fmt.Errorf("read %s: %w", f.f.Name(), err)
		}
		if m == 0 {
			break // the end of the shard
		}
		got += m
		if m%DirectAlign != 0 {
			break // a short read ends at the end of the shard
		}
	}
	return got, nil
}

// Close closes the shard.
func (f *DirectFile) Close() error { return f.f.Close() }
