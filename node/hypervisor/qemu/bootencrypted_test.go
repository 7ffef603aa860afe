package qemu_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
	"github.com/rackstack/rackstack/node/hypervisor"
	"github.com/rackstack/rackstack/node/hypervisor/drivertest"
)

// TestBootEncryptedDisk boots the test image from an NBD export holding
// it under LUKS: the export holds the header and ciphertext only, the
// guest boots, the passphrase is on no command line and in no file of
// the run dir, and a grown export reaches the guest (ResizeDisk on the
// boot disk, whose nodes are named as a plugged disk's).
func TestBootEncryptedDisk(t *testing.T) {
	requireQEMU(t)
	image := testImage()
	testenv.RequireFile(t, image, "needs a bootable guest: make test-image")
	runDir := newRunDir(t)
	tmp := t.TempDir()
	key := "b0075ecre7-passphrase-0123456789abcdef0123456789abcdef"

	raw, luks := filepath.Join(tmp, "image.raw"), filepath.Join(tmp, "image.luks")
	if out, err := exec.Command("qemu-img", "convert", "-f", "qcow2", "-O", "raw", image, raw).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	// The test's own LUKS writer (its key on its command line is the
	// test's business): the header cryptsetup reads, the image under it.
	// QEMU's PBKDF2 timing fails now and then on a busy host, writing
	// nothing (see formatLUKS): it is run again.
	for try := 1; ; try++ {
		out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "luks", "--object", "secret,id=k,data="+key,
			"-o", "key-secret=k,cipher-alg=aes-256,iter-time=100", raw, luks).CombinedOutput()
		if err == nil {
			break
		}
		if try == 5 || !strings.Contains(string(out), "Unable to get accurate CPU usage") {
			t.Fatalf("%v: %s", err, out)
		}
	}
	plain, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := os.ReadFile(luks)
	if err != nil {
		t.Fatal(err)
	}
	dev := &memDevice{b: sealed}
	if !bytes.HasPrefix(dev.b, []byte("LUKS\xba\xbe")) {
		t.Fatalf("no luks header: % x", dev.b[:6])
	}
	// The image's boot sector (syslinux's MBR) is not in the export.
	if mbr := plain[:440]; bytes.Contains(dev.b, mbr) {
		t.Fatal("the export holds the image's boot sector in clear")
	}

	srv, sock := serveNBD(t, runDir)
	if err := srv.Export("encboot", dev); err != nil {
		t.Fatal(err)
	}
	d := newDriver(t, runDir)
	enc := func() *hypervisor.DiskEncryption {
		return &hypervisor.DiskEncryption{Passphrase: []byte(key), CipherAlg: "aes-256"}
	}
	spec := hypervisor.VMSpec{ID: newID("encboot"), VCPUs: 1, MemoryMB: 256, Disks: []hypervisor.Disk{{
		NBDSocket: sock, NBDExport: "encboot", Format: hypervisor.FormatRaw, Serial: "encboot", ID: "encboot", Encryption: enc()}}}
	vm := startVM(t, d, spec)
	console := func() string { b, _ := os.ReadFile(vm.Console()); return string(b) }
	waitFor(t, "the guest to boot from its encrypted disk", 3*time.Minute, func() bool {
		return strings.Contains(console(), drivertest.ReadyLine)
	})

	// The passphrase is on no command line (ps shows QEMU's) and in no
	// file QEMU or the driver left in the run dir (spec.json, the log).
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(vm.PID()) + "/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(cmdline, []byte(key)) || !bytes.Contains(cmdline, []byte("file=/dev/fd/3")) {
		t.Fatalf("qemu's command line: %q", cmdline)
	}
	files, _ := filepath.Glob(filepath.Join(runDir, spec.ID, "*"))
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && (bytes.Contains(b, []byte(key)) || bytes.Contains(b, []byte("YjAwNzVlY3Jl"))) {
			t.Fatalf("%s holds the passphrase", f)
		}
	}

	// A start of the same spec (the agent's next pass) is the same VM.
	if _, err := d.Start(ctxFor(t, time.Minute), spec); err != nil {
		t.Fatalf("start the running VM again: %v", err)
	}

	// Grown, the guest sees the new size less the header.
	before := guestSize(t, runDir, spec.ID, "disk0")
	dev.grow(8 << 20)
	hp := vm.(hypervisor.Hotplug)
	boot := hypervisor.HotDisk{ID: "encboot", Socket: sock, Export: "encboot", Encryption: enc()}
	if err := hp.ResizeDisk(ctxFor(t, 30*time.Second), boot, dev.Size()); err != nil {
		t.Fatalf("resize the encrypted boot disk: %v", err)
	}
	if got := guestSize(t, runDir, spec.ID, "disk0"); got != before+8<<20 {
		t.Fatalf("boot disk after growing by 8 MiB: %d bytes, was %d", got, before)
	}
	// And again: the nodes alternate as a plugged disk's do.
	dev.grow(8 << 20)
	if err := hp.ResizeDisk(ctxFor(t, 30*time.Second), boot, dev.Size()); err != nil {
		t.Fatalf("resize the encrypted boot disk again: %v", err)
	}
	if got := guestSize(t, runDir, spec.ID, "disk0"); got != before+16<<20 {
		t.Fatalf("boot disk after growing by 16 MiB: %d bytes, was %d", got, before)
	}
}

// TestBootBlankEncryptedDisk starts a VM on a blank encrypted export:
// the driver writes its LUKS header first (QEMU's command line cannot
// open a LUKS layer that is not there), and the guest's disk is the
// export less the header.
func TestBootBlankEncryptedDisk(t *testing.T) {
	requireQEMU(t)
	runDir := newRunDir(t)
	dev := &memDevice{b: make([]byte, 16<<20)}
	srv, sock := serveNBD(t, runDir)
	if err := srv.Export("blank", dev); err != nil {
		t.Fatal(err)
	}
	d := newDriver(t, runDir)
	spec := hypervisor.VMSpec{ID: newID("encblank"), VCPUs: 1, MemoryMB: 128, Disks: []hypervisor.Disk{{
		NBDSocket: sock, NBDExport: "blank", Format: hypervisor.FormatRaw, ID: "blank",
		Encryption: &hypervisor.DiskEncryption{Passphrase: []byte("another key"), CipherAlg: "aes-128", Format: true}}}}
	startVM(t, d, spec)
	if !bytes.HasPrefix(dev.b, []byte("LUKS\xba\xbe")) {
		t.Fatalf("no luks header written: % x", dev.b[:6])
	}
	if got := guestSize(t, runDir, spec.ID, "disk0"); got <= 0 || got >= 16<<20 {
		t.Fatalf("the guest's disk is %d bytes of a 16 MiB export", got)
	}
}
