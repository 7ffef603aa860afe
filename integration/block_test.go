//go:build integration

package integration

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
)

type volumeExport struct {
	URI     string `json:"uri"`
	UnixURI string `json:"unix_uri"`
}

func exportVolume(t *testing.T, creds map[string]string, n *rackd, id string) volumeExport {
	t.Helper()
	out, err := rackctl(t, creds, n, "volume", "export", id, "-o", "json")
	if err != nil {
		t.Fatalf("volume export %s: %v\n%s", id, err, out)
	}
	var e volumeExport
	if err := json.Unmarshal([]byte(out), &e); err != nil || !strings.HasPrefix(e.URI, "nbd://127.0.0.1:") {
		t.Fatalf("volume export %s: %v\n%s", id, err, out)
	}
	return e
}

// nbdTool runs a real NBD client and fails the test if it fails.
func nbdTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := tool(os.Environ(), "", name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// TestBlockExport exports volumes with rackctl and drives them with real
// NBD clients, then kills rackd with SIGKILL during FUA writes: after the
// restart every write that was acknowledged reads back.
func TestBlockExport(t *testing.T) {
	for _, c := range []string{"qemu-img", "qemu-io", "nbdinfo", "nbdcopy", "stdbuf"} {
		testenv.RequireCommand(t, c)
	}
	n1 := newStorageNode(t, "n1", 3)
	n1.start("--bootstrap")
	n1.waitHealthy()
	creds := openrc(t, n1.dataDir)
	waitStorage(t, creds, n1.rackd, "three disks", time.Minute, func(s storageStatus) bool { return len(s.Disks) == 3 })

	for _, args := range [][]string{
		{"volume", "create", "copy", "--size", "32M"},
		{"volume", "create", "crash", "--size", "256M"},
	} {
		if out, err := rackctl(t, creds, n1.rackd, args...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	if out, err := rackctl(t, creds, n1.rackd, "volume", "create", "bad", "--size", "1000"); err == nil || !strings.Contains(out, "4096") {
		t.Fatalf("a volume of 1000 bytes was not refused with the reason: %v\n%s", err, out)
	}

	out, err := rackctl(t, creds, n1.rackd, "storage", "status", "-o", "json")
	var st struct {
		Volumes struct {
			Volumes     int   `json:"volumes"`
			Provisioned int64 `json:"provisioned_bytes"`
		} `json:"volumes"`
	}
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || st.Volumes.Volumes != 2 || st.Volumes.Provisioned != 288<<20 {
		t.Fatalf("storage status does not count the volumes: %v\n%s", err, out)
	}

	// Copy tools: convert in, compare, copy out.
	ex := exportVolume(t, creds, n1.rackd, "copy")
	dir := t.TempDir()
	src := filepath.Join(dir, "src.raw")
	data := make([]byte, 32<<20)
	rand.Read(data[:12<<20])
	rand.Read(data[20<<20 : 21<<20])
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var info struct {
		Exports []struct {
			Size int64 `json:"export-size"`
		} `json:"exports"`
	}
	if err := json.Unmarshal([]byte(nbdTool(t, "nbdinfo", "--json", ex.URI)), &info); err != nil || len(info.Exports) != 1 || info.Exports[0].Size != 32<<20 {
		t.Fatalf("nbdinfo: %+v %v", info, err)
	}
	nbdTool(t, "qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", src, ex.URI)
	if out := nbdTool(t, "qemu-img", "compare", "-f", "raw", "-F", "raw", src, ex.UnixURI); !strings.Contains(out, "identical") {
		t.Fatalf("qemu-img compare: %s", out)
	}
	dst := filepath.Join(dir, "dst.raw")
	nbdTool(t, "nbdcopy", ex.URI, dst)
	if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("nbdcopy read back other bytes (%v)", err)
	}
	if out, err := rackctl(t, creds, n1.rackd, "volume", "delete", "copy"); err == nil || !strings.Contains(out, "unexport") {
		t.Fatalf("deleting an exported volume was not refused: %v\n%s", err, out)
	}
	if out, err := rackctl(t, creds, n1.rackd, "volume", "unexport", "copy"); err != nil {
		t.Fatalf("unexport: %v\n%s", err, out)
	}
	if out, err := tool(os.Environ(), "", "nbdinfo", ex.URI); err == nil {
		t.Fatalf("nbdinfo of an unexported volume succeeded:\n%s", out)
	}
	// The unexport flushed: a new export reads the same bytes.
	ex = exportVolume(t, creds, n1.rackd, "copy")
	if out := nbdTool(t, "qemu-img", "compare", "-f", "raw", "-F", "raw", src, ex.URI); !strings.Contains(out, "identical") {
		t.Fatalf("qemu-img compare after unexport and export: %s", out)
	}

	// kill -9 during writes. Every write is FUA: qemu-io prints a write
	// only once the server acknowledged it durable.
	crash := exportVolume(t, creds, n1.rackd, "crash")
	const writes = 4000 // 64 KiB each: far more than can finish before the kill
	w := startFUAWriter(t, crash.URI, writes)
	w.waitAcked(t, 100, "before the kill")
	n1.kill()
	<-w.done
	acked := w.acked()
	if len(acked) >= writes {
		t.Fatalf("all %d writes finished before the kill: the test did not kill rackd during writes", writes)
	}
	t.Logf("%d FUA writes acknowledged before kill -9", len(acked))

	n1.start()
	n1.waitHealthy()
	crash = exportVolume(t, creds, n1.rackd, "crash")
	var reads []string
	for _, m := range acked {
		off, _ := strconv.ParseInt(string(m[1]), 10, 64)
		i := off / (64 << 10)
		reads = append(reads, "-c", fmt.Sprintf("read -P %d %d 64k", i%250+1, off))
	}
	// Past the acknowledged writes, the volume reads as zeroes (or as the
	// one write in flight at the kill).
	last := int64(len(acked)+1) * 64 << 10
	reads = append(reads, "-c", fmt.Sprintf("read -P 0 %d %d", last, (256<<20)-last))
	out = nbdTool(t, "qemu-io", append(append([]string{"-f", "raw"}, reads...), crash.URI)...)
	if strings.Contains(out, "failed") || strings.Contains(out, "error") {
		t.Fatalf("after kill -9 and restart, acknowledged writes are not all there:\n%.4000s", out)
	}
	if n := strings.Count(out, "read 65536/65536 bytes"); n != len(acked) {
		t.Fatalf("read back %d of %d acknowledged writes:\n%.4000s", n, len(acked), out)
	}
}

// fuaWriter is qemu-io making n 64 KiB FUA writes to an NBD export, write
// i of pattern i%250+1 at offset i×64 KiB, its output line-buffered into
// a file, so the writes acknowledged so far can be read at any time.
type fuaWriter struct {
	cmd  *exec.Cmd
	out  string
	done chan struct{} // closed when qemu-io has ended
}

var fuaWrote = regexp.MustCompile(`(?m)^wrote 65536/65536 bytes at offset (\d+)$`)

func startFUAWriter(t *testing.T, uri string, n int) *fuaWriter {
	t.Helper()
	var cmds []string
	for i := range n {
		cmds = append(cmds, "-c", fmt.Sprintf("write -f -P %d %d 64k", i%250+1, int64(i)*64<<10))
	}
	w := &fuaWriter{out: filepath.Join(t.TempDir(), "qemu-io.out"), done: make(chan struct{})}
	outf, err := os.Create(w.out)
	if err != nil {
		t.Fatal(err)
	}
	// Line-buffered, so the file shows acknowledged writes as they happen.
	w.cmd = exec.Command("stdbuf", append(append([]string{"-oL", "qemu-io", "-f", "raw"}, cmds...), uri)...)
	w.cmd.Stdout, w.cmd.Stderr = outf, outf
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	recordProcess(t, w.cmd.Process.Pid, false)
	go func() { w.cmd.Wait(); outf.Close(); close(w.done) }()
	t.Cleanup(func() {
		select {
		case <-w.done:
		default:
			w.cmd.Process.Kill()
			<-w.done
		}
	})
	return w
}

// output is what qemu-io has written so far.
func (w *fuaWriter) output() []byte {
	b, _ := os.ReadFile(w.out)
	return b
}

// acked are the writes acknowledged so far, each with its offset.
func (w *fuaWriter) acked() [][][]byte { return fuaWrote.FindAllSubmatch(w.output(), -1) }

// waitAcked waits until n writes are acknowledged; it fails the test if
// qemu-io ends first or two minutes pass.
func (w *fuaWriter) waitAcked(t *testing.T, n int, what string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		b := w.output()
		got := len(fuaWrote.FindAll(b, -1))
		if got >= n {
			return
		}
		select {
		case <-w.done:
			t.Fatalf("%s: qemu-io ended with %d writes acknowledged:\n%s", what, got, tail(string(b), 20))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: fewer than %d writes acknowledged within 2 minutes:\n%s", what, n, tail(string(b), 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
