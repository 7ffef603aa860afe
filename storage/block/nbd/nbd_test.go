package nbd

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/testenv"
	"github.com/rackstack/rackstack/storage/blob"
	"github.com/rackstack/rackstack/storage/block"
	"github.com/rackstack/rackstack/storage/disk"
	"github.com/rackstack/rackstack/storage/placement"
)

// newStore is a block store over three local disks and an in-memory
// state.
func newStore(t testing.TB) *block.Store {
	t.Helper()
	repl, err := store.NewLocal(block.Schema())
	if err != nil {
		t.Fatal(err)
	}
	local := map[string]disk.Disk{}
	var disks []placement.Disk
	for range 3 {
		d, err := disk.OpenDir(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		local[d.ID()] = d
		disks = append(disks, placement.Disk{Node: "n1", ID: d.ID()})
	}
	return block.New(block.Config{
		Repl: repl, Blobs: &blob.Store{Node: "n1", Local: local},
		Disks:     func(context.Context) ([]placement.Disk, error) { return disks, nil },
		FoldBytes: 8 << 20, // fold during the test, not only at the end
	})
}

// serve exports a new volume of size bytes on a unix socket and returns
// the volume and its URI.
func serve(t testing.TB, size int64) (*block.Store, *block.Volume, *Server, string) {
	t.Helper()
	s := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Create(ctx, "vol", size, block.Options{}); err != nil {
		t.Fatal(err)
	}
	v, err := s.Open(ctx, "vol")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(nil)
	if err := srv.Export("vol", v); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "nbd.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		v.Close()
	})
	return s, v, srv, "nbd+unix:///vol?socket=" + sock
}

func command(t testing.TB, name string, args ...string) string {
	t.Helper()
	path := testenv.RequireCommand(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// qemuIO runs qemu-io commands and fails on any failed verification.
func qemuIO(t *testing.T, uri string, cmds ...string) string {
	t.Helper()
	args := []string{"-f", "raw"}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	out := command(t, "qemu-io", append(args, uri)...)
	if strings.Contains(out, "failed") || strings.Contains(out, "error") {
		t.Fatalf("qemu-io %v:\n%s", cmds, out)
	}
	return out
}

func TestRealClients(t *testing.T) {
	const size = 64 << 20
	_, v, _, uri := serve(t, size)

	t.Run("nbdinfo", func(t *testing.T) {
		out := command(t, "nbdinfo", "--json", uri)
		var info struct {
			Protocol   string `json:"protocol"`
			Structured bool   `json:"structured"`
			Exports    []struct {
				Size     int64    `json:"export-size"`
				CanFlush bool     `json:"can_flush"`
				CanFUA   bool     `json:"can_fua"`
				CanTrim  bool     `json:"can_trim"`
				CanZero  bool     `json:"can_zero"`
				CanMulti bool     `json:"can_multi_conn"`
				ReadOnly bool     `json:"is_read_only"`
				Contexts []string `json:"contexts"`
			} `json:"exports"`
		}
		if err := json.Unmarshal([]byte(out), &info); err != nil || len(info.Exports) != 1 {
			t.Fatalf("nbdinfo: %v\n%s", err, out)
		}
		e := info.Exports[0]
		if info.Protocol != "newstyle-fixed" || !info.Structured || e.Size != size || !e.CanFlush || !e.CanFUA ||
			!e.CanTrim || !e.CanZero || !e.CanMulti || e.ReadOnly || len(e.Contexts) != 1 || e.Contexts[0] != "base:allocation" {
			t.Fatalf("nbdinfo:\n%s", out)
		}
	})

	t.Run("qemu-io", func(t *testing.T) {
		qemuIO(t, uri, "write -P 0xab 0 1M", "write -P 0xcd 5000 3000", "write -z 8192 4096", "flush",
			"write -P 0x11 -f 40M 64k", "aio_write -P 0x22 41M 4k", "aio_flush")
		qemuIO(t, uri, "read -P 0xab 0 5000", "read -P 0xcd 5000 3000", "read -P 0xab 8000 192", "read -P 0 8192 4096",
			"read -P 0xab 12288 1036288", "read -P 0 1M 39M", "read -P 0x11 40M 64k", "read -P 0x22 41M 4k")
		qemuIO(t, uri, "discard 40M 64k", "read -P 0 40M 64k")
	})

	t.Run("nbdinfo map", func(t *testing.T) {
		out := command(t, "nbdinfo", "--map", uri)
		// The first MiB is data, most of the rest a hole.
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if !strings.Contains(lines[0], "data") || !strings.Contains(lines[len(lines)-1], "hole,zero") {
			t.Fatalf("nbdinfo --map:\n%s", out)
		}
	})

	t.Run("qemu-img convert, compare and nbdcopy", func(t *testing.T) {
		dir := t.TempDir()
		src := filepath.Join(dir, "src.raw")
		data := make([]byte, size)
		rand.Read(data[:20<<20])
		rand.Read(data[30<<20 : 31<<20])
		if err := os.WriteFile(src, data, 0o600); err != nil {
			t.Fatal(err)
		}
		command(t, "qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", src, uri)
		if out := command(t, "qemu-img", "compare", "-f", "raw", "-F", "raw", src, uri); !strings.Contains(out, "identical") {
			t.Fatalf("qemu-img compare: %s", out)
		}
		dst := filepath.Join(dir, "dst.raw")
		command(t, "nbdcopy", "--connections=4", uri, dst)
		got, err := os.ReadFile(dst)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("nbdcopy read back %d bytes that differ from what was written (%v)", len(got), err)
		}
		// Everything the clients flushed is in the journal or the
		// extents: a fresh open elsewhere reads it.
		if err := v.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 1<<20)
		if _, err := v.ReadAt(b, 30<<20); err != nil || !bytes.Equal(b, data[30<<20:31<<20]) {
			t.Fatalf("volume read differs (%v)", err)
		}
	})
}

func TestExportsAndUnexport(t *testing.T) {
	s, v, srv, uri := serve(t, 1<<20)
	if err := srv.Export("vol", v); !errors.Is(err, ErrExported) {
		t.Fatalf("second export = %v, want ErrExported", err)
	}
	if err := s.Snapshot(context.Background(), "snap", "vol"); err != nil {
		t.Fatal(err)
	}
	snap, err := s.Open(context.Background(), "snap")
	if err != nil {
		t.Fatal(err)
	}
	srv.Export("snap", snap)
	out := command(t, "nbdinfo", "--list", "--json", uri)
	if !strings.Contains(out, `"snap"`) || !strings.Contains(out, `"vol"`) {
		t.Fatalf("nbdinfo --list:\n%s", out)
	}
	snapURI := strings.Replace(uri, "/vol?", "/snap?", 1)
	if out := command(t, "nbdinfo", "--json", snapURI); !strings.Contains(out, `"is_read_only": true`) {
		t.Fatalf("a snapshot export is not read-only:\n%s", out)
	}
	if err := srv.Unexport("snap"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Unexport("snap"); !errors.Is(err, ErrNotExported) {
		t.Fatalf("second unexport = %v, want ErrNotExported", err)
	}
	path := testenv.RequireCommand(t, "nbdinfo")
	if out, err := exec.Command(path, snapURI).CombinedOutput(); err == nil {
		t.Fatalf("nbdinfo of an unexported name succeeded:\n%s", out)
	}
}

func TestListenRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "[::]:0", "192.0.2.1:10809", "localhost"} {
		if l, err := ListenTCP(addr); err == nil {
			l.Close()
			t.Errorf("ListenTCP(%q) succeeded", addr)
		}
	}
	l, err := ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
}

// TestDeepQueuesVerify writes and reads back random 4 KiB blocks with
// more requests in flight than a connection serves at once (inFlight),
// so replies come from reused workers and pooled buffers out of order;
// fio checks every block it reads against what it wrote.
func TestDeepQueuesVerify(t *testing.T) {
	_, _, _, uri := serve(t, 16<<20)
	out := command(t, "fio", "--name=verify", "--ioengine=nbd", "--uri="+uri,
		"--rw=randwrite", "--bsrange=4k-64k", "--iodepth=64", "--size=16m",
		"--verify=crc32c", "--verify_fatal=1", "--do_verify=1", "--verify_state_save=0", "--randrepeat=0", "--output-format=json")
	var res struct {
		Jobs []struct {
			Error int `json:"error"`
			Read  struct {
				IOBytes int64 `json:"io_bytes"`
			} `json:"read"`
		} `json:"jobs"`
	}
	if i := strings.IndexByte(out, '{'); i >= 0 {
		out = out[i:]
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Jobs) != 1 {
		t.Fatalf("fio output: %v\n%s", err, out)
	}
	if j := res.Jobs[0]; j.Error != 0 || j.Read.IOBytes < 16<<20 {
		t.Fatalf("fio verify: error %d after reading back %d bytes of %d", j.Error, j.Read.IOBytes, 16<<20)
	}
}
