package agent

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// extent is a byte range of a disk.
type extent struct{ start, size int64 }

const sector = 512

// MBR layout: four 16-byte entries from byte 446, then the 0x55AA signature.
const (
	mbrEntries   = 446
	mbrEntrySize = 16
	mbrTypeGPT   = 0xee
)

func isExtended(typ byte) bool { return typ == 0x05 || typ == 0x0f || typ == 0x85 }

// partitions lists the partitions of the disk r (of size bytes) from its
// MBR, its logical partitions, or its GPT, so that cleaning can erase
// every filesystem's signatures even where the kernel has no partition
// table loaded (a regular file, a device whose table was never read). A
// disk with no table has none. Entries pointing beyond the disk are
// clamped: they are erased as far as the disk goes.
func partitions(r io.ReaderAt, size int64) ([]extent, error) {
	mbr := make([]byte, sector)
	if _, err := r.ReadAt(mbr, 0); err != nil {
		return nil, fmt.Errorf("read partition table: %w", err)
	}
	if mbr[510] != 0x55 || mbr[511] != 0xaa {
		return nil, nil
	}
	var out []extent
	for i := 0; i < 4; i++ {
		e := mbr[mbrEntries+i*mbrEntrySize:]
		typ := e[4]
		start := int64(binary.LittleEndian.Uint32(e[8:])) * sector
		n := int64(binary.LittleEndian.Uint32(e[12:])) * sector
		switch {
		case typ == 0:
			continue
		case typ == mbrTypeGPT:
			return gptPartitions(r, size)
		case isExtended(typ):
			logical, err := logicalPartitions(r, start)
			if err != nil {
				return nil, err
			}
			out = append(out, logical...)
		}
		out = append(out, extent{start, n})
	}
	return clamp(out, size), nil
}

// logicalPartitions walks the chain of extended boot records that starts
// at ext (a bounded walk: a corrupt chain may loop).
func logicalPartitions(r io.ReaderAt, ext int64) ([]extent, error) {
	var out []extent
	ebr := make([]byte, sector)
	at := ext
	for i := 0; i < 128; i++ {
		if _, err := r.ReadAt(ebr, at); err != nil {
			return out, nil // a chain running off the disk ends it
		}
		if ebr[510] != 0x55 || ebr[511] != 0xaa {
			return out, nil
		}
		first, next := ebr[mbrEntries:], ebr[mbrEntries+mbrEntrySize:]
		if first[4] != 0 {
			out = append(out, extent{at + int64(binary.LittleEndian.Uint32(first[8:]))*sector, int64(binary.LittleEndian.Uint32(first[12:])) * sector})
		}
		if next[4] == 0 {
			return out, nil
		}
		at = ext + int64(binary.LittleEndian.Uint32(next[8:]))*sector
	}
	return out, nil
}

// gptPartitions reads the primary GPT, with 512-byte or 4 KiB sectors.
func gptPartitions(r io.ReaderAt, size int64) ([]extent, error) {
	hdr := make([]byte, 92)
	for _, lba := range []int64{512, 4096} {
		if _, err := r.ReadAt(hdr, lba); err != nil || !bytes.Equal(hdr[:8], []byte("EFI PART")) {
			continue
		}
		entriesAt := int64(binary.LittleEndian.Uint64(hdr[72:])) * lba
		count := binary.LittleEndian.Uint32(hdr[80:])
		esize := binary.LittleEndian.Uint32(hdr[84:])
		if count > 1024 || esize < 128 || esize > 4096 {
			return nil, errors.New("read gpt: implausible partition entry array")
		}
		table := make([]byte, int(count)*int(esize))
		if _, err := r.ReadAt(table, entriesAt); err != nil {
			return nil, fmt.Errorf("read gpt entries: %w", err)
		}
		var out []extent
		for i := 0; i < int(count); i++ {
			e := table[i*int(esize):]
			if bytes.Equal(e[:16], make([]byte, 16)) {
				continue
			}
			first := int64(binary.LittleEndian.Uint64(e[32:]))
			last := int64(binary.LittleEndian.Uint64(e[40:]))
			if last < first {
				continue
			}
			out = append(out, extent{first * lba, (last - first + 1) * lba})
		}
		return clamp(out, size), nil
	}
	// A protective MBR without a readable GPT header: nothing more to find;
	// the disk's start and end are erased anyway.
	return nil, nil
}

func clamp(exts []extent, size int64) []extent {
	var out []extent
	for _, e := range exts {
		if e.start >= size || e.size <= 0 {
			continue
		}
		if e.start+e.size > size {
			e.size = size - e.start
		}
		out = append(out, e)
	}
	return out
}

// addMBRPartition adds a primary partition of type typ over [start,
// start+size) (bytes, sector-aligned) in the first slot after the last one
// used, and returns its number (1-4). It changes only that entry.
func addMBRPartition(rw interface {
	io.ReaderAt
	io.WriterAt
}, start, size int64, typ byte) (int, error) {
	mbr := make([]byte, sector)
	if _, err := rw.ReadAt(mbr, 0); err != nil {
		return 0, fmt.Errorf("read mbr: %w", err)
	}
	last := -1
	for i := 0; i < 4; i++ {
		if mbr[mbrEntries+i*mbrEntrySize+4] != 0 {
			last = i
		}
	}
	slot := last + 1
	if slot >= 4 {
		return 0, errors.New("add partition: all four primary MBR entries are used")
	}
	e := mbr[mbrEntries+slot*mbrEntrySize : mbrEntries+(slot+1)*mbrEntrySize]
	// CHS fields say "use LBA" (the maximum CHS), as parted and sfdisk write
	// for partitions beyond the first 8 GiB.
	copy(e, []byte{0x00, 0xfe, 0xff, 0xff, typ, 0xfe, 0xff, 0xff})
	binary.LittleEndian.PutUint32(e[8:], uint32(start/sector))
	binary.LittleEndian.PutUint32(e[12:], uint32(size/sector))
	if _, err := rw.WriteAt(e, int64(mbrEntries+slot*mbrEntrySize)); err != nil {
		return 0, fmt.Errorf("write mbr entry: %w", err)
	}
	return slot + 1, nil
}

// mbrKind says what partition table sector 0 holds: "mbr", "gpt" (a
// protective MBR) or "" (none).
func mbrKind(mbr []byte) string {
	if len(mbr) < sector || mbr[510] != 0x55 || mbr[511] != 0xaa {
		return ""
	}
	for i := 0; i < 4; i++ {
		if mbr[mbrEntries+i*mbrEntrySize+4] == mbrTypeGPT {
			return "gpt"
		}
	}
	return "mbr"
}

// mbrEnd is where the last MBR partition (primary or extended container)
// ends, in bytes.
func mbrEnd(mbr []byte) int64 {
	var end int64
	for i := 0; i < 4; i++ {
		e := mbr[mbrEntries+i*mbrEntrySize:]
		if e[4] == 0 {
			continue
		}
		s := int64(binary.LittleEndian.Uint32(e[8:])) + int64(binary.LittleEndian.Uint32(e[12:]))
		end = max(end, s*sector)
	}
	return end
}
