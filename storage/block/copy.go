package block

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Copies in and out of volumes: an image's disk written into a new
// volume, a volume backed up as objects and restored from them. Each
// moves only what is written: zero pages are not written into a volume,
// and a backup holds only the chunks with data.

// Fill writes src's bytes into v from its start and flushes. Whole pages
// of zeroes are skipped: v must read as zeroes where src has them (a new
// volume does). It returns the bytes written.
func (v *Volume) Fill(ctx context.Context, src io.Reader) (int64, error) {
	buf := make([]byte, 1<<20)
	var pos, written int64
	for {
		n, err := io.ReadFull(src, buf)
		if n > 0 {
			if pos+int64(n) > v.Size() {
				return written, fmt.Errorf("fill volume %s: %w: the source is larger than the volume (%d bytes)", v.id, ErrInvalid, v.Size())
			}
			w, werr := v.writeNonZero(buf[:n], pos)
			written += w
			if werr != nil {
				return written, fmt.Errorf("fill volume %s: %w", v.id, werr)
			}
			pos += int64(n)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return written, fmt.Errorf("fill volume %s: read source: %w", v.id, err)
		}
		if err := ctx.Err(); err != nil {
			return written, err
		}
	}
	if err := v.Flush(ctx); err != nil {
		return written, fmt.Errorf("fill volume %s: %w", v.id, err)
	}
	return written, nil
}

// writeNonZero writes the runs of p (at off) that are not whole zero
// pages.
func (v *Volume) writeNonZero(p []byte, off int64) (int64, error) {
	var written int64
	start := -1
	flush := func(end int) error {
		if start < 0 {
			return nil
		}
		n, err := v.WriteAt(p[start:end], off+int64(start))
		written += int64(n)
		start = -1
		return err
	}
	for i := 0; i < len(p); i += PageSize {
		end := min(i+PageSize, len(p))
		if allZero(p[i:end]) {
			if err := flush(i); err != nil {
				return written, err
			}
			continue
		}
		if start < 0 {
			start = i
		}
	}
	return written, flush(len(p))
}

// Objects is where backups are kept: named objects of one container.
type Objects interface {
	Put(ctx context.Context, name string, r io.Reader, size int64) error
	Get(ctx context.Context, name string, w io.Writer) error
	Delete(ctx context.Context, name string) error
}

// ChunkSize is the unit of a backup: one extent.
const ChunkSize = ExtentSize

// Manifest describes a backup: the chunks of the volume that hold data,
// each an object (a chunk unchanged since the parent backup names the
// parent's object).
type Manifest struct {
	Size   int64   `json:"size"`
	Chunks []Chunk `json:"chunks"`
}

// Chunk is one backed-up chunk of a volume.
type Chunk struct {
	Index  int64  `json:"index"`
	Object string `json:"object"`
	SHA256 string `json:"sha256"`
}

// Stored is the bytes the chunks hold.
func (m *Manifest) Stored() int64 { return int64(len(m.Chunks)) * ChunkSize }

// ManifestObject is the name of a backup's manifest under its prefix.
func ManifestObject(prefix string) string { return prefix + "/manifest" }

// Backup writes the chunks of src that hold data as objects under prefix
// (prefix/chunk-N), then the manifest (prefix/manifest). With a parent
// manifest only the chunks that changed since it are written; the others
// name the parent's objects. It returns the manifest and the bytes
// written.
func Backup(ctx context.Context, src *Volume, objs Objects, prefix string, parent *Manifest) (*Manifest, int64, error) {
	old := map[int64]Chunk{}
	if parent != nil {
		for _, c := range parent.Chunks {
			old[c.Index] = c
		}
	}
	size := src.Size()
	m := &Manifest{Size: size}
	var written int64
	buf := make([]byte, ChunkSize)
	for i := int64(0); i*ChunkSize < size; i++ {
		if err := ctx.Err(); err != nil {
			return nil, written, err
		}
		off := i * ChunkSize
		n := min(ChunkSize, size-off)
		ranges, err := src.Extents(off, n)
		if err != nil {
			return nil, written, fmt.Errorf("back up %s: %w", src.id, err)
		}
		if len(ranges) == 1 && ranges[0].Zero {
			continue
		}
		chunk := buf[:n]
		if _, err := src.ReadAt(chunk, off); err != nil {
			return nil, written, fmt.Errorf("back up %s: read chunk %d: %w", src.id, i, err)
		}
		if allZero(chunk) {
			continue
		}
		sum := sha256.Sum256(chunk)
		c := Chunk{Index: i, SHA256: hex.EncodeToString(sum[:])}
		if p, ok := old[i]; ok && p.SHA256 == c.SHA256 {
			c.Object = p.Object
		} else {
			c.Object = fmt.Sprintf("%s/chunk-%08d", prefix, i)
			if err := objs.Put(ctx, c.Object, bytes.NewReader(chunk), n); err != nil {
				return nil, written, fmt.Errorf("back up %s: store chunk %d: %w", src.id, i, err)
			}
			written += n
		}
		m.Chunks = append(m.Chunks, c)
	}
	raw, _ := json.Marshal(m)
	if err := objs.Put(ctx, ManifestObject(prefix), bytes.NewReader(raw), int64(len(raw))); err != nil {
		return nil, written, fmt.Errorf("back up %s: store manifest: %w", src.id, err)
	}
	return m, written, nil
}

// ReadManifest reads the manifest of the backup under prefix.
func ReadManifest(ctx context.Context, objs Objects, prefix string) (*Manifest, error) {
	var buf bytes.Buffer
	if err := objs.Get(ctx, ManifestObject(prefix), &buf); err != nil {
		return nil, fmt.Errorf("read backup manifest %s: %w", prefix, err)
	}
	var m Manifest
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		return nil, fmt.Errorf("read backup manifest %s: %w", prefix, err)
	}
	return &m, nil
}

// Restore makes dst hold the backup m: its chunks written, everything
// else of dst zeroed (only where dst has data), then flushed.
func Restore(ctx context.Context, m *Manifest, objs Objects, dst *Volume) error {
	if m.Size > dst.Size() {
		return fmt.Errorf("restore into %s: %w: the backup has %d bytes, the volume %d", dst.id, ErrInvalid, m.Size, dst.Size())
	}
	have := map[int64]bool{}
	buf := bytes.NewBuffer(make([]byte, 0, ChunkSize))
	for _, c := range m.Chunks {
		if err := ctx.Err(); err != nil {
			return err
		}
		buf.Reset()
		if err := objs.Get(ctx, c.Object, buf); err != nil {
			return fmt.Errorf("restore into %s: read chunk %d: %w", dst.id, c.Index, err)
		}
		if sum := sha256.Sum256(buf.Bytes()); hex.EncodeToString(sum[:]) != c.SHA256 {
			return fmt.Errorf("restore into %s: chunk %d does not match its checksum", dst.id, c.Index)
		}
		if _, err := dst.WriteAt(buf.Bytes(), c.Index*ChunkSize); err != nil {
			return fmt.Errorf("restore into %s: write chunk %d: %w", dst.id, c.Index, err)
		}
		have[c.Index] = true
	}
	// What dst held outside the backup's chunks reads as zeroes after.
	ranges, err := dst.Extents(0, dst.Size())
	if err != nil {
		return fmt.Errorf("restore into %s: %w", dst.id, err)
	}
	for _, r := range ranges {
		if r.Zero {
			continue
		}
		for off := r.Off; off < r.Off+r.Len; {
			i := off / ChunkSize
			end := min((i+1)*ChunkSize, r.Off+r.Len)
			if !have[i] {
				if err := dst.WriteZeroes(off, end-off); err != nil {
					return fmt.Errorf("restore into %s: zero chunk %d: %w", dst.id, i, err)
				}
			}
			off = end
		}
	}
	if err := dst.Flush(ctx); err != nil {
		return fmt.Errorf("restore into %s: %w", dst.id, err)
	}
	return nil
}
