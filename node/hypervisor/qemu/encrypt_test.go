package qemu_test

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/node/hypervisor"
	"github.com/rackstack/rackstack/node/hypervisor/qmp"
)

// hmp runs a human monitor command (here qemu-io on a block node) and
// answers its output.
func hmp(t *testing.T, runDir, id, cmd string) string {
	t.Helper()
	c, err := qmp.Dial(ctxFor(t, 10*time.Second), filepath.Join(runDir, id, "qmp.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out string
	if err := c.Execute(ctxFor(t, 30*time.Second), "human-monitor-command", map[string]any{"command-line": cmd}, &out); err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return out
}

// TestHotplugEncryptedDisk plugs a disk with a LUKS layer: its first
// attach writes the header, what the guest writes reaches the export
// only as ciphertext, and the same export opened again with the key
// reads the data back; with another key it does not open.
func TestHotplugEncryptedDisk(t *testing.T) {
	requireQEMU(t)
	runDir := newRunDir(t)
	d := newDriver(t, runDir)
	spec := blankSpecAt(newID("enc"), blankDisk(t))
	vm := startVM(t, d, spec)
	hp := vm.(hypervisor.Hotplug)

	dev := &memDevice{b: make([]byte, 16<<20)}
	srv, sock := serveNBD(t, runDir)
	for _, name := range []string{"enc1", "enc2", "enc3"} {
		if err := srv.Export(name, dev); err != nil {
			t.Fatal(err)
		}
	}

	key := []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	first := hypervisor.HotDisk{ID: "enc1", Socket: sock, Export: "enc1",
		Encryption: &hypervisor.DiskEncryption{Passphrase: key, CipherAlg: "aes-256", Format: true}}
	if err := hp.AttachDisk(ctxFor(t, time.Minute), first); err != nil {
		t.Fatal(err)
	}
	if head := dev.b[:6]; !bytes.Equal(head, []byte("LUKS\xba\xbe")) {
		t.Fatalf("no luks header on the export: % x", head)
	}
	hmp(t, runDir, spec.ID, `qemu-io -d /machine/peripheral/disk-enc1/virtio-backend "write -P 0x5a 0 1M"`)
	hmp(t, runDir, spec.ID, `qemu-io -d /machine/peripheral/disk-enc1/virtio-backend "flush"`)
	pattern := bytes.Repeat([]byte{0x5a}, 512)
	if bytes.Contains(dev.b, pattern) {
		t.Fatal("the pattern the guest wrote is in the export in clear")
	}
	// Something was written after the header (2 MiB at most): the
	// ciphertext.
	if bytes.Count(dev.b[2<<20:5<<19], []byte{0}) > 64<<10 {
		t.Fatal("nothing was written past the header")
	}
	// What a LUKS reader outside QEMU's process sees: the pattern.
	if out, err := exec.Command("qemu-io", "--object", "secret,id=s,data="+string(key), "--image-opts",
		"driver=luks,key-secret=s,file.driver=nbd,file.server.type=unix,file.server.path="+sock+",file.export=enc3",
		"-c", "read -P 0x5a 0 1M").CombinedOutput(); err != nil || !strings.Contains(string(out), "read 1048576/1048576") || strings.Contains(string(out), "fail") {
		t.Fatalf("qemu-io read of the luks export: %v: %s", err, out)
	}

	// The same blocks under another export, opened with the key and no
	// new header: the data reads back.
	again := hypervisor.HotDisk{ID: "enc2", Socket: sock, Export: "enc2",
		Encryption: &hypervisor.DiskEncryption{Passphrase: key, CipherAlg: "aes-256"}}
	if err := hp.AttachDisk(ctxFor(t, time.Minute), again); err != nil {
		t.Fatal(err)
	}
	// Grown, the guest sees the new size less the header.
	dev.grow(8 << 20)
	if err := hp.ResizeDisk(ctxFor(t, 30*time.Second), first, dev.Size()); err != nil {
		t.Fatalf("resize an encrypted disk: %v", err)
	}
	if got := guestSize(t, runDir, spec.ID, "disk-enc1"); got < 22<<20 || got >= 24<<20 {
		t.Fatalf("encrypted disk after growing to 24 MiB: %d bytes", got)
	}

	wrong := hypervisor.HotDisk{ID: "enc3", Socket: sock, Export: "enc3",
		Encryption: &hypervisor.DiskEncryption{Passphrase: []byte("not the key"), CipherAlg: "aes-256"}}
	if err := hp.AttachDisk(ctxFor(t, time.Minute), wrong); err == nil {
		t.Fatal("a disk opened with the wrong key")
	}
	// The secret went with the failed plug.
	if out := hmp(t, runDir, spec.ID, "info qom-tree /objects"); strings.Contains(out, "sec-enc3") {
		t.Fatalf("the secret of a failed plug stayed: %s", out)
	}
}

// guestSize is the size of the medium of device as the guest sees it.
func guestSize(t *testing.T, runDir, id, device string) int64 {
	t.Helper()
	c, err := qmp.Dial(ctxFor(t, 10*time.Second), filepath.Join(runDir, id, "qmp.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var blocks []struct {
		QDev     string `json:"qdev"`
		Inserted struct {
			Image struct {
				VirtualSize int64 `json:"virtual-size"`
			} `json:"image"`
		} `json:"inserted"`
	}
	if err := c.Execute(ctxFor(t, 10*time.Second), "query-block", nil, &blocks); err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks {
		if strings.Contains(b.QDev, "/"+device+"/") {
			return b.Inserted.Image.VirtualSize
		}
	}
	t.Fatalf("no block device %s", device)
	return 0
}

// TestLimitBootDisk changes the I/O limits of a running VM's first disk,
// which it was started with.
func TestLimitBootDisk(t *testing.T) {
	requireQEMU(t)
	runDir := newRunDir(t)
	d := newDriver(t, runDir)
	spec := blankSpecAt(newID("lim"), blankDisk(t))
	spec.Disks[0].Limits = hypervisor.IOLimits{ReadIOPS: 100}
	vm := startVM(t, d, spec)
	if got := queryBlock(t, runDir, spec.ID, "disk0"); got.IOPSRead != 100 {
		t.Fatalf("boot disk at start: %+v", got)
	}
	if err := vm.(hypervisor.Hotplug).LimitBootDisk(ctxFor(t, 10*time.Second), hypervisor.IOLimits{TotalIOPS: 70, WriteBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	if got := queryBlock(t, runDir, spec.ID, "disk0"); got.IOPS != 70 || got.IOPSRead != 0 || got.BPSWrite != 1<<20 {
		t.Fatalf("boot disk after LimitBootDisk: %+v", got)
	}
}
