package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
	"github.com/rackstack/rackstack/provision/agentapi"
)

// mbrImage is a whole-disk image of size bytes: an MBR with one partition
// from 1 MiB to its end, and a pattern in every byte after the MBR.
func mbrImage(t *testing.T, size int64) []byte {
	t.Helper()
	img := make([]byte, size)
	for i := range img {
		img[i] = byte(i*7 + 3)
	}
	copy(img[:sector], make([]byte, sector))
	img[510], img[511] = 0x55, 0xaa
	f := &memDisk{b: img}
	if _, err := addMBRPartition(f, mib, size-mib, 0x0c); err != nil {
		t.Fatal(err)
	}
	return img
}

// memDisk is a disk in memory for the partition table code.
type memDisk struct{ b []byte }

func (m *memDisk) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m.b)) {
		return 0, fmt.Errorf("read beyond the disk")
	}
	return copy(p, m.b[off:]), nil
}

func (m *memDisk) WriteAt(p []byte, off int64) (int, error) { return copy(m.b[off:], p), nil }

// fill writes b over the whole file, so erased ranges show as zeroes.
func fill(t *testing.T, path string, size int64, b byte) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Repeat([]byte{b}, int(size)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func zeroed(t *testing.T, disk []byte, start, n int64) bool {
	t.Helper()
	return bytes.Equal(disk[start:start+n], make([]byte, n))
}

// A metadata erase zeroes the first and last MiB of the disk and of every
// partition it finds (MBR primary, logical, GPT), and nothing else.
func TestCleanErasesMetadata(t *testing.T) {
	const size = 64 << 20
	disk := emptyDisk(t, size)
	fill(t, disk, size, 0xaa)
	f, err := os.OpenFile(disk, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	mbr := make([]byte, sector)
	mbr[510], mbr[511] = 0x55, 0xaa
	f.WriteAt(mbr, 0)
	addMBRPartition(f, 1*mib, 20*mib, 0x83)
	addMBRPartition(f, 30*mib, 10*mib, 0x83)
	// An extended partition at 45 MiB with one logical partition at 46 MiB.
	addMBRPartition(f, 45*mib, 15*mib, 0x05)
	ebr := make([]byte, sector)
	ebr[510], ebr[511] = 0x55, 0xaa
	e := &memDisk{b: ebr}
	addMBRPartition(e, 1*mib, 8*mib, 0x83) // relative to the EBR
	f.WriteAt(ebr, 45*mib)
	f.Close()

	msg, err := Clean(context.Background(), agentapi.CleanArgs{Disks: []string{disk}}, agentapi.Inventory{}, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg, "4 partitions") {
		t.Errorf("message %q, want 4 partitions found", msg)
	}
	b, _ := os.ReadFile(disk)
	for _, r := range []extent{{0, mib}, {size - mib, mib}, {1 * mib, mib}, {20 * mib, mib}, {30 * mib, mib}, {39 * mib, mib}, {45 * mib, mib}, {59 * mib, mib}, {46 * mib, mib}, {53 * mib, mib}} {
		if !zeroed(t, b, r.start, r.size) {
			t.Errorf("MiB at %d not erased", r.start/mib)
		}
	}
	for _, at := range []int64{10 * mib, 25 * mib, 35 * mib, 50 * mib} {
		if b[at] != 0xaa {
			t.Errorf("byte at MiB %d erased: a metadata erase must leave data alone", at/mib)
		}
	}
}

// GPT partitions are found from the GPT, whose entries sfdisk writes.
func TestCleanErasesGPTPartitions(t *testing.T) {
	sfdisk := testenv.RequireCommand(t, "sfdisk")
	const size = 64 << 20
	disk := emptyDisk(t, size)
	fill(t, disk, size, 0xaa)
	cmd := exec.Command(sfdisk, "-q", disk)
	cmd.Stdin = strings.NewReader("label: gpt\nstart=2048, size=20480\nstart=40960, size=40960\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v: %s", err, out)
	}
	if _, err := Clean(context.Background(), agentapi.CleanArgs{Disks: []string{disk}}, agentapi.Inventory{}, func(string) {}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(disk)
	for _, at := range []int64{1 * mib, 20 * mib, 39 * mib} {
		if !zeroed(t, b, at, mib) {
			t.Errorf("MiB at %d not erased", at/mib)
		}
	}
	if b[30*mib] != 0xaa {
		t.Error("data inside a partition erased")
	}
	if out, err := exec.Command(sfdisk, "--json", disk).CombinedOutput(); err == nil {
		t.Errorf("sfdisk still finds a partition table: %s", out)
	}
}

func TestCleanFull(t *testing.T) {
	const size = 9 << 20
	disk := emptyDisk(t, size)
	fill(t, disk, size, 0x55)
	if _, err := Clean(context.Background(), agentapi.CleanArgs{Disks: []string{disk}, Full: true}, agentapi.Inventory{}, func(string) {}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(disk)
	if !zeroed(t, b, 0, size) {
		t.Error("a full clean left data")
	}
}

func TestCleanUsesInventoryDisks(t *testing.T) {
	disk := emptyDisk(t, 4<<20)
	fill(t, disk, 4<<20, 1)
	if _, err := Clean(context.Background(), agentapi.CleanArgs{}, agentapi.Inventory{Disks: []agentapi.Disk{{Name: disk}}}, func(string) {}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(disk)
	if !zeroed(t, b, 0, mib) {
		t.Error("the inventory's disk was not cleaned")
	}
	if _, err := Clean(context.Background(), agentapi.CleanArgs{}, agentapi.Inventory{}, func(string) {}); err == nil {
		t.Error("cleaning with no disk anywhere must fail")
	}
}

// source serves an image and a config drive from memory through the
// agent's real client.
func source(t *testing.T, image, drive []byte) *client {
	t.Helper()
	c := &conductor{token: "tok", image: image, drive: drive}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return newAgent(testConfig(t, srv.URL, &bytes.Buffer{})).c
}

func deployArgs(disk string, image []byte, drive bool) agentapi.DeployArgs {
	sum := sha256.Sum256(image)
	return agentapi.DeployArgs{RootDisk: disk, ImageSize: int64(len(image)), ImageSHA256: hex.EncodeToString(sum[:]), ConfigDrive: drive}
}

// The config drive lands in a second primary partition, MiB-aligned, ending
// at the end of the disk; sfdisk reads the table the agent wrote.
func TestDeployConfigDrivePartition(t *testing.T) {
	const size = 16 << 20
	image := mbrImage(t, 5<<20)
	drive := bytes.Repeat([]byte("CD001 config-2 "), 100000) // 1.5 MB: two MiB
	disk := emptyDisk(t, size)
	fill(t, disk, size, 0xee) // an old deploy's bytes
	msg, err := deploy(context.Background(), source(t, image, drive), deployArgs(disk, image, true), func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	if want := "wrote 5 MiB to " + disk + ", sha256 ok, config drive on " + disk + "2"; msg != want {
		t.Errorf("message %q, want %q", msg, want)
	}
	b, _ := os.ReadFile(disk)
	want := append([]byte(nil), image...)
	copy(want[mbrEntries+mbrEntrySize:], b[mbrEntries+mbrEntrySize:mbrEntries+2*mbrEntrySize])
	if !bytes.Equal(b[:len(image)], want) {
		t.Error("the disk does not hold the image")
	}
	start := int64(size - 2*mib)
	if !bytes.Equal(b[start:start+int64(len(drive))], drive) {
		t.Error("the config drive is not at the start of the last 2 MiB")
	}
	if !zeroed(t, b, start+int64(len(drive)), size-start-int64(len(drive))) {
		t.Error("the config drive partition's tail holds old bytes")
	}
	sfdisk := testenv.RequireCommand(t, "sfdisk")
	out, err := exec.Command(sfdisk, "--json", disk).Output()
	if err != nil {
		t.Fatalf("sfdisk --json: %v", err)
	}
	var table struct {
		PartitionTable struct {
			Label      string
			Partitions []struct {
				Node        string
				Start, Size int64
				Type        string
			}
		}
	}
	if err := json.Unmarshal(out, &table); err != nil {
		t.Fatal(err)
	}
	p := table.PartitionTable.Partitions
	if table.PartitionTable.Label != "dos" || len(p) != 2 || p[0].Start != 2048 || p[1].Node != disk+"2" ||
		p[1].Start*sector != start || p[1].Size*sector != 2*mib || p[1].Type != "83" {
		t.Errorf("sfdisk reads %s", out)
	}
}

// A GPT image gets a partition named config-2 in a free entry, and its
// backup GPT moves to the end of the disk, so tools see one valid table.
func TestDeployConfigDriveGPT(t *testing.T) {
	sfdisk := testenv.RequireCommand(t, "sfdisk")
	img := emptyDisk(t, 4<<20)
	cmd := exec.Command(sfdisk, "-q", img)
	cmd.Stdin = strings.NewReader("label: gpt\nstart=2048, size=4096, name=root\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v: %s", err, out)
	}
	image, _ := os.ReadFile(img)
	drive := bytes.Repeat([]byte("CD001 config-2 "), 100000)
	const size = 16 << 20
	disk := emptyDisk(t, size)
	msg, err := deploy(context.Background(), source(t, image, drive), deployArgs(disk, image, true), func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(msg, "config drive on "+disk+"2") {
		t.Errorf("message %q", msg)
	}
	if out, err := exec.Command(sfdisk, "--verify", disk).CombinedOutput(); err != nil || !strings.Contains(string(out), "No errors detected") {
		t.Errorf("sfdisk --verify: %v: %s", err, out)
	}
	out, err := exec.Command(sfdisk, "--json", disk).Output()
	if err != nil {
		t.Fatalf("sfdisk --json: %v", err)
	}
	var table struct {
		PartitionTable struct {
			Label      string
			LastLBA    int64
			Partitions []struct {
				Start, Size int64
				Type, Name  string
			}
		}
	}
	if err := json.Unmarshal(out, &table); err != nil {
		t.Fatal(err)
	}
	p := table.PartitionTable.Partitions
	if table.PartitionTable.Label != "gpt" || len(p) != 2 || p[0].Name != "root" || p[1].Name != "config-2" ||
		p[1].Type != "0FC63DAF-8483-4772-8E79-3D69D8477DE4" || p[1].Start*sector%mib != 0 ||
		p[1].Start+p[1].Size-1 != table.PartitionTable.LastLBA || p[1].Size*sector < int64(len(drive)) {
		t.Fatalf("sfdisk reads %s", out)
	}
	b, _ := os.ReadFile(disk)
	if !bytes.Equal(b[p[1].Start*sector:p[1].Start*sector+int64(len(drive))], drive) {
		t.Error("the config-2 partition does not hold the drive")
	}
	// Both headers are valid and point at each other; both entry arrays
	// are the same.
	last := int64(size/sector - 1)
	primary, backup := b[sector:2*sector], b[last*sector:]
	for name, h := range map[string][]byte{"primary": primary, "backup": backup} {
		hs := binary.LittleEndian.Uint32(h[12:])
		if hs < 92 || hs > sector {
			t.Errorf("%s GPT header missing", name)
			continue
		}
		c := append([]byte(nil), h[:hs]...)
		binary.LittleEndian.PutUint32(c[16:], 0)
		if !bytes.Equal(h[:8], []byte("EFI PART")) || crc32.ChecksumIEEE(c) != binary.LittleEndian.Uint32(h[16:]) {
			t.Errorf("%s GPT header invalid", name)
		}
	}
	if binary.LittleEndian.Uint64(primary[32:]) != uint64(last) || binary.LittleEndian.Uint64(backup[24:]) != uint64(last) || binary.LittleEndian.Uint64(backup[32:]) != 1 {
		t.Error("the GPT headers do not point at each other")
	}
	pe, be := int64(binary.LittleEndian.Uint64(primary[72:])), int64(binary.LittleEndian.Uint64(backup[72:]))
	if !bytes.Equal(b[pe*sector:(pe+32)*sector], b[be*sector:(be+32)*sector]) || be+32 != last {
		t.Error("the backup entry array is not the primary's, just before the backup header")
	}
}

func TestDeployRefusals(t *testing.T) {
	gpt := mbrImage(t, 2<<20)
	gpt[mbrEntries+4] = mbrTypeGPT
	noTable := bytes.Repeat([]byte{1}, 2<<20)
	for name, tc := range map[string]struct {
		image    []byte
		diskSize int64
		drive    bool
		args     func(agentapi.DeployArgs) agentapi.DeployArgs
		want     string
	}{
		"image larger than disk": {image: mbrImage(t, 4<<20), diskSize: 2 << 20, want: "larger than"},
		"no room for the drive":  {image: mbrImage(t, 4<<20), diskSize: 4<<20 + 512*1024, drive: true, want: "no room"},
		"gpt without a header":   {image: gpt, diskSize: 8 << 20, drive: true, want: "no GPT header"},
		"image without a table":  {image: noTable, diskSize: 8 << 20, drive: true, want: "no partition table"},
		"size lies":              {image: mbrImage(t, 2<<20), diskSize: 8 << 20, args: func(a agentapi.DeployArgs) agentapi.DeployArgs { a.ImageSize--; return a }, want: "image_size"},
		"no sha":                 {image: mbrImage(t, 2<<20), diskSize: 8 << 20, args: func(a agentapi.DeployArgs) agentapi.DeployArgs { a.ImageSHA256 = ""; return a }, want: "image_sha256"},
	} {
		t.Run(name, func(t *testing.T) {
			disk := emptyDisk(t, tc.diskSize)
			args := deployArgs(disk, tc.image, tc.drive)
			if tc.args != nil {
				args = tc.args(args)
			}
			_, err := deploy(context.Background(), source(t, tc.image, []byte("drive")), args, func(string) {})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("deploy = %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// A transfer that breaks halfway resumes with a Range request and the disk
// ends up with the whole image.
func TestDeployResumesBrokenTransfer(t *testing.T) {
	image := mbrImage(t, 6<<20)
	var ranges []string
	broke := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ranges = append(ranges, r.Header.Get("Range"))
		if !broke {
			broke = true
			w.Header().Set("Content-Length", fmt.Sprint(len(image)))
			w.Write(image[:len(image)/2])
			w.(http.Flusher).Flush()
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.(*net.TCPConn).SetLinger(0)
			conn.Close()
			return
		}
		http.ServeContent(w, r, "image", time.Time{}, bytes.NewReader(image))
	}))
	defer srv.Close()
	c := newAgent(testConfig(t, srv.URL, &bytes.Buffer{})).c
	disk := emptyDisk(t, 8<<20)
	if _, err := deploy(context.Background(), c, deployArgs(disk, image, false), func(string) {}); err != nil {
		t.Fatal(err)
	}
	if len(ranges) != 2 || ranges[0] != "" || !strings.HasPrefix(ranges[1], "bytes=") || ranges[1] == "bytes=0-" {
		t.Errorf("requests' ranges %q, want a whole request then a resumed one", ranges)
	}
	b, _ := os.ReadFile(disk)
	if !bytes.Equal(b[:len(image)], image) {
		t.Error("the resumed image is not what was served")
	}
}

func TestPartitionName(t *testing.T) {
	for disk, want := range map[string]string{"/dev/vda": "/dev/vda2", "/dev/nvme0n1": "/dev/nvme0n1p2", "/dev/sdb": "/dev/sdb2"} {
		if got := partitionName(disk, 2); got != want {
			t.Errorf("partitionName(%s) = %s, want %s", disk, got, want)
		}
	}
}

// The image goes to the disk through the O_DIRECT descriptor when the
// disk takes it (a file on this test's file system stands in), an image
// of a ragged size included, and the read-back hashes what the medium
// holds; with no direct descriptor (a disk or file system that refuses
// O_DIRECT) everything goes through the ordinary one.
func TestDirectDiskWritesAndReadsBack(t *testing.T) {
	image := make([]byte, 3*chunk+5000) // whole chunks, then a ragged end
	for i := range image {
		image[i] = byte(i*13 + 1)
	}
	sum := sha256.Sum256(image)
	for _, direct := range []bool{true, false} {
		t.Run(fmt.Sprintf("direct=%v", direct), func(t *testing.T) {
			path := emptyDisk(t, 16<<20)
			fill(t, path, 16<<20, 0xee)
			f, _, err := openDisk(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			d := openDirect(f)
			defer d.Close()
			if !direct {
				d.Close()
			} else if d.direct == nil {
				t.Fatalf("O_DIRECT refused on %s: this test needs a file system that takes it", path)
			}
			buf := alignedBuf(chunk)
			for off := 0; off < len(image); off += chunk {
				n := copy(buf, image[off:])
				if w, err := d.WriteAt(buf[:n], int64(off)); err != nil || w != n {
					t.Fatalf("write at %d: %d, %v", off, w, err)
				}
			}
			if direct && d.direct == nil {
				t.Fatal("the direct descriptor was dropped: aligned writes were refused")
			}
			if err := f.Sync(); err != nil {
				t.Fatal(err)
			}
			got, err := d.readBackSHA256(int64(len(image)))
			if err != nil || got != hex.EncodeToString(sum[:]) {
				t.Fatalf("read-back sha256 %s, %v; want the image's", got, err)
			}
			b, _ := os.ReadFile(path)
			if !bytes.Equal(b[:len(image)], image) || !bytes.Equal(b[len(image):], bytes.Repeat([]byte{0xee}, len(b)-len(image))) {
				t.Error("the disk does not hold the image followed by its old bytes")
			}
		})
	}
}

func TestAlignedBuf(t *testing.T) {
	for _, n := range []int{1, directAlign, chunk} {
		b := alignedBuf(n)
		if len(b) != n || cap(b) != n || !isAligned(b) {
			t.Errorf("alignedBuf(%d): len %d cap %d aligned %v", n, len(b), cap(b), isAligned(b))
		}
	}
	if isAligned(alignedBuf(2 * directAlign)[1:]) {
		t.Error("a slice one byte in reads as aligned")
	}
}
