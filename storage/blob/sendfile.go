package blob

import (
	"io"
	"os"
)

// fileSender sends the data of blocks that a read has verified straight
// from their shard files to a writer that can take a file itself (an
// io.ReaderFrom such as an HTTP response, which hands it to sendfile(2)):
// the bytes then go from the page cache to the socket without being
// copied into the response from the block they were verified in, which
// was a third of rackd's CPU in a single-stream 64 MiB GET.
//
// It opens the shard files of one range at a time, a second time, apart
// from the read-ahead's own: a file's offset is shared by everyone using
// that open file, and the read-ahead reads the next stripe meanwhile.
// Shard files are never changed once written (a heal writes a new file
// in their place with the same bytes), so the bytes sent are the ones
// verified.
type fileSender struct {
	s     *Store
	to    io.ReaderFrom
	block int64
	rg    *Range
	files []*os.File
	tried []bool
}

// newFileSender returns a sender to w, or nil if w cannot take files.
func newFileSender(s *Store, w io.Writer, block int) *fileSender {
	rf, ok := w.(io.ReaderFrom)
	if !ok {
		return nil
	}
	return &fileSender{s: s, to: rf, block: int64(block)}
}

// use makes rg the range whose files it sends, closing those of the last.
func (fs *fileSender) use(rg *Range) {
	if fs.rg == rg {
		return
	}
	fs.close()
	fs.rg = rg
	fs.files = make([]*os.File, len(rg.Layout.Disks))
	fs.tried = make([]bool, len(rg.Layout.Disks))
}

// file is shard i's file of the range, opened on first use; nil if the
// shard is not on a local disk or cannot be opened.
func (fs *fileSender) file(i int) *os.File {
	if fs.tried[i] {
		return fs.files[i]
	}
	fs.tried[i] = true
	d := fs.rg.Layout.Disks[i]
	local, ok := fs.s.Local[d.ID]
	if !ok || d.Node != fs.s.Node {
		return nil
	}
	rc, err := local.Open(ShardName(fs.rg.Key, i), 0)
	if err != nil {
		return nil
	}
	f, ok := rc.(*os.File)
	if !ok {
		rc.Close()
		return nil
	}
	fs.files[i] = f
	return f
}

// send writes n bytes of the data of shard i's block of stripe st, from
// byte from of that data. It reports false, having written nothing, when
// it cannot send from the file: the caller writes them from the block.
func (fs *fileSender) send(i int, st, from, n int64) (bool, error) {
	f := fs.file(i)
	if f == nil {
		return false, nil
	}
	if _, err := f.Seek(st*fs.block+4+from, io.SeekStart); err != nil {
		return false, nil
	}
	sent, err := fs.to.ReadFrom(&io.LimitedReader{R: f, N: n})
	if err == nil && sent != n {
		err = io.ErrUnexpectedEOF
	}
	return true, err
}

func (fs *fileSender) close() {
	for _, f := range fs.files {
		if f != nil {
			f.Close()
		}
	}
	fs.files, fs.tried = nil, nil
}
