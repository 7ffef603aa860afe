package block

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
)

// memObjects is an object container in memory.
type memObjects struct {
	mu   sync.Mutex
	objs map[string][]byte
	puts int
}

func (m *memObjects) Put(_ context.Context, name string, r io.Reader, size int64) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if int64(len(b)) != size {
		return fmt.Errorf("put %s: %d bytes, declared %d", name, len(b), size)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objs[name] = b
	m.puts++
	return nil
}

func (m *memObjects) Get(_ context.Context, name string, w io.Writer) error {
	m.mu.Lock()
	b, ok := m.objs[name]
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("get %s: no such object", name)
	}
	_, err := w.Write(b)
	return err
}

func (m *memObjects) Delete(_ context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objs, name)
	return nil
}

// diskImage is 3 extents: data in the first page and across the end of
// the second extent, zeroes elsewhere.
func diskImage() []byte {
	img := make([]byte, 3*ExtentSize)
	copy(img, "BOOT SECTOR")
	for i := 2*ExtentSize - 6000; i < 2*ExtentSize+100; i++ {
		img[i] = byte(i)
	}
	return img
}

// Fill writes an image's bytes and leaves its zero pages unwritten: the
// untouched extent stays unallocated.
func TestFillWritesOnlyWhatIsNotZero(t *testing.T) {
	r := newRig(t)
	s := New(r.config())
	ctx := context.Background()
	if err := s.Create(ctx, "v", 4*ExtentSize, Options{}); err != nil {
		t.Fatal(err)
	}
	v, err := s.Open(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	img := diskImage()
	n, err := v.Fill(ctx, bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(PageSize + 2*PageSize + PageSize); n != want {
		t.Fatalf("wrote %d bytes, want %d (the pages with data)", n, want)
	}
	got := readAll(t, v)
	if !bytes.Equal(got[:len(img)], img) || !allZero(got[len(img):]) {
		t.Fatalf("volume differs from the image: %s", firstDiff(got[:len(img)], img))
	}
	ext, _ := v.Extents(0, v.Size())
	var allocated int64
	for _, e := range ext {
		if !e.Zero {
			allocated += e.Len
		}
	}
	if allocated != n {
		t.Fatalf("allocated %d bytes, wrote %d", allocated, n)
	}
	// A source larger than the volume is refused, not cut.
	if _, err := v.Fill(ctx, bytes.NewReader(make([]byte, 5*ExtentSize))); err == nil || !strings.Contains(err.Error(), "larger") {
		t.Fatalf("fill past the end: %v", err)
	}
}

// A backup stores only the chunks with data; an incremental one only
// those changed since its parent; a restore into a volume that held
// other data makes it byte-identical to the source at backup time.
func TestBackupIncrementalAndRestore(t *testing.T) {
	r := newRig(t)
	s := New(r.config())
	ctx := context.Background()
	for _, id := range []string{"src", "dst"} {
		if err := s.Create(ctx, id, 4*ExtentSize, Options{}); err != nil {
			t.Fatal(err)
		}
	}
	src, err := s.Open(ctx, "src")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := src.Fill(ctx, bytes.NewReader(diskImage())); err != nil {
		t.Fatal(err)
	}
	objs := &memObjects{objs: map[string][]byte{}}
	full, written, err := Backup(ctx, src, objs, "b1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(full.Chunks) != 3 || written != 3*ChunkSize || objs.puts != 4 {
		t.Fatalf("full backup: %d chunks, %d bytes, %d puts; want 3 chunks (0, 1, 2) and a manifest", len(full.Chunks), written, objs.puts)
	}
	want1 := readAll(t, src)

	// Change one chunk: the incremental backup writes it alone.
	if _, err := src.WriteAt([]byte("CHANGED"), 3*ChunkSize+10); err != nil {
		t.Fatal(err)
	}
	if err := src.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	m, err := ReadManifest(ctx, objs, "b1")
	if err != nil {
		t.Fatal(err)
	}
	incr, written, err := Backup(ctx, src, objs, "b2", m)
	if err != nil {
		t.Fatal(err)
	}
	if len(incr.Chunks) != 4 || written != ChunkSize || incr.Chunks[0].Object != "b1/chunk-00000000" || incr.Chunks[3].Object != "b2/chunk-00000003" {
		t.Fatalf("incremental: %+v, %d bytes written", incr.Chunks, written)
	}
	want2 := readAll(t, src)

	dst, err := s.Open(ctx, "dst")
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	// dst held data the restore must not leave behind.
	if _, err := dst.WriteAt(bytes.Repeat([]byte{7}, 2*PageSize), 3*ChunkSize+PageSize); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		m    *Manifest
		want []byte
	}{"full": {full, want1}, "incremental": {incr, want2}} {
		if err := Restore(ctx, tc.m, objs, dst); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := readAll(t, dst); !bytes.Equal(got, tc.want) {
			t.Fatalf("%s restore: %s", name, firstDiff(got, tc.want))
		}
	}
	// A damaged chunk is found, not restored.
	objs.objs["b1/chunk-00000000"][0] ^= 1
	if err := Restore(ctx, full, objs, dst); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("restore of a damaged chunk: %v", err)
	}
}
