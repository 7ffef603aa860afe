package agent

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"unicode/utf16"
)

// linuxDataGUID is GPT's "Linux filesystem data" type,
// 0FC63DAF-8483-4772-8E79-3D69D8477DE4, in its on-disk byte order.
var linuxDataGUID = []byte{0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47, 0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4}

// gptHeader is the fields of a GPT header the agent changes or needs
// (UEFI spec 5.3.2), over the raw bytes it rewrites.
type gptHeader struct{ b []byte }

func (h gptHeader) u32(off int) uint32      { return binary.LittleEndian.Uint32(h.b[off:]) }
func (h gptHeader) u64(off int) uint64      { return binary.LittleEndian.Uint64(h.b[off:]) }
func (h gptHeader) put32(off int, v uint32) { binary.LittleEndian.PutUint32(h.b[off:], v) }
func (h gptHeader) put64(off int, v uint64) { binary.LittleEndian.PutUint64(h.b[off:], v) }
func (h gptHeader) size() int               { return int(h.u32(12)) }
func (h gptHeader) entriesLBA() int64       { return int64(h.u64(72)) }
func (h gptHeader) entryCount() int         { return int(h.u32(80)) }
func (h gptHeader) entrySize() int          { return int(h.u32(84)) }
func (h gptHeader) setCRC(entries []byte) {
	h.put32(88, crc32.ChecksumIEEE(entries))
	h.put32(16, 0)
	h.put32(16, crc32.ChecksumIEEE(h.b[:h.size()]))
}

// addGPTPartition adds a partition named name at the end of a GPT disk of
// size bytes for a drive of n bytes, moving the backup GPT to the disk's
// end (the image's ends where the image does, as sgdisk -e would move it).
// It calls write with the partition's byte range before it changes any
// table, and returns the partition's number. It refuses a table with 4 KiB
// sectors, a corrupt entry array, no free entry, or no room after the last
// partition and the used bytes.
func addGPTPartition(rw interface {
	io.ReaderAt
	io.WriterAt
}, size, n, used int64, name string, write func(start, end int64) error) (int, error) {
	raw := make([]byte, sector)
	if _, err := rw.ReadAt(raw, sector); err != nil {
		return 0, fmt.Errorf("read gpt header: %w", err)
	}
	h := gptHeader{raw}
	if !bytes.Equal(raw[:8], []byte("EFI PART")) {
		return 0, errors.New("the protective MBR has no GPT header after it (4 KiB sectors are not supported)")
	}
	if h.size() < 92 || h.size() > sector || h.entrySize() < 128 || h.entrySize() > 4096 || h.entryCount() > 1024 {
		return 0, errors.New("the GPT header is implausible")
	}
	entries := make([]byte, h.entryCount()*h.entrySize())
	if _, err := rw.ReadAt(entries, h.entriesLBA()*sector); err != nil {
		return 0, fmt.Errorf("read gpt entries: %w", err)
	}
	if got, want := crc32.ChecksumIEEE(entries), h.u32(88); got != want {
		return 0, fmt.Errorf("the GPT entry array's CRC is %#x, its header says %#x", got, want)
	}
	free, lastUsed := -1, int64(0)
	for i := 0; i < h.entryCount(); i++ {
		e := entries[i*h.entrySize():]
		if bytes.Equal(e[:16], make([]byte, 16)) {
			if free < 0 {
				free = i
			}
			continue
		}
		lastUsed = max(lastUsed, int64(binary.LittleEndian.Uint64(e[40:])))
	}
	if free < 0 {
		return 0, errors.New("every GPT partition entry is used")
	}
	lastLBA := size/sector - 1
	entrySectors := (int64(len(entries)) + sector - 1) / sector
	backupEntries := lastLBA - entrySectors
	lastUsable := backupEntries - 1
	need := (n + mib - 1) / mib * mib / sector
	first := (lastUsable + 1 - need) / (mib / sector) * (mib / sector)
	if first <= lastUsed || first*sector < used || first < int64(h.u64(40)) {
		return 0, fmt.Errorf("no room for a %d MiB config drive: the image uses %d of %d bytes", need*sector/mib, max(used, (lastUsed+1)*sector), size)
	}
	e := entries[free*h.entrySize() : (free+1)*h.entrySize()]
	clear(e)
	copy(e, linuxDataGUID)
	if _, err := rand.Read(e[16:32]); err != nil {
		return 0, fmt.Errorf("make partition guid: %w", err)
	}
	e[16+7] = e[16+7]&0x0f | 0x40 // a version 4 GUID (stored mixed-endian)
	e[16+8] = e[16+8]&0x3f | 0x80
	binary.LittleEndian.PutUint64(e[32:], uint64(first))
	binary.LittleEndian.PutUint64(e[40:], uint64(lastUsable))
	for i, c := range utf16.Encode([]rune(name)) {
		if 56+2*i+1 < len(e) && i < 36 {
			binary.LittleEndian.PutUint16(e[56+2*i:], c)
		}
	}

	// Data first, then the tables: the backup at the end, the primary last,
	// so an interrupted write leaves the image's own primary table valid.
	if err := write(first*sector, (lastUsable+1)*sector); err != nil {
		return 0, err
	}
	h.put64(32, uint64(lastLBA)) // alternate (backup) header
	h.put64(48, uint64(lastUsable))
	h.setCRC(entries)
	backup := gptHeader{append([]byte(nil), raw...)}
	backup.put64(24, uint64(lastLBA))
	backup.put64(32, 1)
	backup.put64(72, uint64(backupEntries))
	backup.setCRC(entries)
	if _, err := rw.WriteAt(entries, backupEntries*sector); err != nil {
		return 0, fmt.Errorf("write backup gpt entries: %w", err)
	}
	if _, err := rw.WriteAt(backup.b, lastLBA*sector); err != nil {
		return 0, fmt.Errorf("write backup gpt header: %w", err)
	}
	if _, err := rw.WriteAt(entries, h.entriesLBA()*sector); err != nil {
		return 0, fmt.Errorf("write gpt entries: %w", err)
	}
	if _, err := rw.WriteAt(raw, sector); err != nil {
		return 0, fmt.Errorf("write gpt header: %w", err)
	}
	// The protective MBR covers the whole disk now.
	pmbr := make([]byte, mbrEntrySize)
	for i := 0; i < 4; i++ {
		at := int64(mbrEntries + i*mbrEntrySize)
		if _, err := rw.ReadAt(pmbr, at); err != nil {
			return 0, fmt.Errorf("read protective mbr: %w", err)
		}
		if pmbr[4] == mbrTypeGPT {
			binary.LittleEndian.PutUint32(pmbr[12:], uint32(min(lastLBA, 1<<32-1)))
			if _, err := rw.WriteAt(pmbr, at); err != nil {
				return 0, fmt.Errorf("write protective mbr: %w", err)
			}
		}
	}
	return free + 1, nil
}
