package qemu_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
	"github.com/rackstack/rackstack/node/configdrive"
	"github.com/rackstack/rackstack/node/hypervisor"
	"github.com/rackstack/rackstack/node/hypervisor/drivertest"
	"github.com/rackstack/rackstack/node/hypervisor/qmp"
	"github.com/rackstack/rackstack/storage/block"
	"github.com/rackstack/rackstack/storage/block/nbd"
)

// memDevice is an in-memory NBD device whose size the test changes.
type memDevice struct {
	mu sync.Mutex
	b  []byte
}

func (m *memDevice) Size() int64 { m.mu.Lock(); defer m.mu.Unlock(); return int64(len(m.b)) }
func (m *memDevice) ReadAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return copy(p, m.b[off:]), nil
}
func (m *memDevice) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return copy(m.b[off:], p), nil
}
func (m *memDevice) WriteZeroes(off, n int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.b[off : off+n])
	return nil
}
func (m *memDevice) Trim(off, n int64) error     { return m.WriteZeroes(off, n) }
func (m *memDevice) Flush(context.Context) error { return nil }
func (m *memDevice) grow(n int64)                { m.mu.Lock(); m.b = append(m.b, make([]byte, n)...); m.mu.Unlock() }
func (m *memDevice) Extents(off, n int64) ([]block.Range, error) {
	return []block.Range{{Off: off, Len: n}}, nil
}

// TestHotplugDisk plugs an NBD export into a running guest, grows it, and
// asks for it back. The guest is firmware only: it never acknowledges an
// unplug, so the detach stays pending, as it does for a guest that does
// not cooperate.
func TestHotplugDisk(t *testing.T) {
	requireQEMU(t)
	runDir := newRunDir(t)
	d := newDriver(t, runDir)
	spec := blankSpecAt(newID("hot"), blankDisk(t))
	vm := startVM(t, d, spec)
	hp, ok := vm.(hypervisor.Hotplug)
	if !ok {
		t.Fatal("the QEMU driver's VMs do not hot-plug disks")
	}

	dev := &memDevice{b: make([]byte, 8<<20)}
	srv, sock := serveNBD(t, runDir)
	if err := srv.Export("vol1", dev); err != nil {
		t.Fatal(err)
	}

	disk := hypervisor.HotDisk{ID: "vol1", Socket: sock, Export: "vol1", Serial: "vol1-serial"}
	if err := hp.AttachDisk(ctxFor(t, 30*time.Second), disk); err != nil {
		t.Fatal(err)
	}
	if err := hp.AttachDisk(ctxFor(t, 30*time.Second), disk); err != nil {
		t.Fatalf("attach again: %v", err)
	}
	if ids, err := hp.HotDisks(ctxFor(t, 10*time.Second)); err != nil || !slices.Equal(ids, []string{"vol1"}) {
		t.Fatalf("hot disks %v, %v", ids, err)
	}
	if err := hp.AttachDisk(ctxFor(t, 30*time.Second), hypervisor.HotDisk{ID: "Bad_ID", Socket: sock, Export: "vol1"}); !errors.Is(err, hypervisor.ErrInvalidSpec) {
		t.Fatalf("bad id: %v", err)
	}

	dev.grow(8 << 20)
	if err := hp.ResizeDisk(ctxFor(t, 30*time.Second), disk, dev.Size()); err != nil {
		t.Fatalf("resize: %v", err)
	}

	// A read-only disk with limits: QEMU opens it read-only and
	// throttles its block backend from the start; LimitDisk changes it.
	if err := srv.Export("vol2", &memDevice{b: make([]byte, 8<<20)}); err != nil {
		t.Fatal(err)
	}
	limited := hypervisor.HotDisk{ID: "vol2", Socket: sock, Export: "vol2", ReadOnly: true, Limits: hypervisor.IOLimits{ReadIOPS: 100, WriteBytes: 1 << 20}}
	if err := hp.AttachDisk(ctxFor(t, 30*time.Second), limited); err != nil {
		t.Fatal(err)
	}
	// Each disk has a root port of its own, as the port's device 0: the
	// only device the guest looks for behind a root port.
	for dev, port := range map[string]string{"disk-vol1": "hp0", "disk-vol2": "hp1"} {
		if bus, addr := pciPlace(t, runDir, spec.ID, dev); bus != "/machine/peripheral/"+port+"/"+port || addr != 0 {
			t.Errorf("%s is at address %d of bus %s, want 0 of root port %s", dev, addr, bus, port)
		}
	}
	if got := queryBlock(t, runDir, spec.ID, "disk-vol2"); !got.RO || got.IOPSRead != 100 || got.BPSWrite != 1<<20 || got.IOPS != 0 {
		t.Fatalf("read-only limited disk: %+v", got)
	}
	if got := queryBlock(t, runDir, spec.ID, "disk-vol1"); got.RO || got.IOPSRead != 0 {
		t.Fatalf("read-write disk: %+v", got)
	}
	if err := hp.LimitDisk(ctxFor(t, 10*time.Second), "vol2", hypervisor.IOLimits{TotalIOPS: 50}); err != nil {
		t.Fatal(err)
	}
	if got := queryBlock(t, runDir, spec.ID, "disk-vol2"); got.IOPS != 50 || got.IOPSRead != 0 || got.BPSWrite != 0 {
		t.Fatalf("after LimitDisk: %+v", got)
	}
	if err := hp.LimitDisk(ctxFor(t, 10*time.Second), "nosuch", hypervisor.IOLimits{TotalIOPS: 50}); !errors.Is(err, hypervisor.ErrNotFound) {
		t.Fatalf("limit a disk not plugged: %v", err)
	}

	dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer dcancel()
	if err := hp.DetachDisk(dctx, "vol1"); !errors.Is(err, hypervisor.ErrDetachPending) {
		t.Fatalf("detach from a guest that does not let go: %v", err)
	}
}

func fileExists(path string) bool { _, err := os.Stat(path); return err == nil }

// pciPlace asks the VM's monitor for device's bus (its QOM path) and
// devfn on it.
func pciPlace(t *testing.T, runDir, id, device string) (string, int) {
	t.Helper()
	c, err := qmp.Dial(ctxFor(t, 10*time.Second), filepath.Join(runDir, id, "qmp.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var bus string
	var addr int
	path := "/machine/peripheral/" + device
	if err := c.Execute(ctxFor(t, 10*time.Second), "qom-get", map[string]any{"path": path, "property": "parent_bus"}, &bus); err != nil {
		t.Fatal(err)
	}
	if err := c.Execute(ctxFor(t, 10*time.Second), "qom-get", map[string]any{"path": path, "property": "addr"}, &addr); err != nil {
		t.Fatal(err)
	}
	return bus, addr
}

// blockInfo is what query-block says of a device's medium.
type blockInfo struct {
	RO       bool  `json:"ro"`
	IOPS     int64 `json:"iops"`
	IOPSRead int64 `json:"iops_rd"`
	BPSWrite int64 `json:"bps_wr"`
}

// queryBlock asks the VM's monitor how device is opened.
func queryBlock(t *testing.T, runDir, id, device string) blockInfo {
	t.Helper()
	c, err := qmp.Dial(ctxFor(t, 10*time.Second), filepath.Join(runDir, id, "qmp.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var blocks []struct {
		QDev     string    `json:"qdev"`
		Inserted blockInfo `json:"inserted"`
	}
	if err := c.Execute(ctxFor(t, 10*time.Second), "query-block", nil, &blocks); err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks {
		if strings.Contains(b.QDev, "/"+device+"/") {
			return b.Inserted
		}
	}
	t.Fatalf("no block device %s in %+v", device, blocks)
	return blockInfo{}
}

// TestHotplugDisksGuestSees plugs a disk into every hot-plug root port of
// a booted Linux guest at once and requires the guest to find them all:
// QEMU taking a device_add says nothing of whether the guest's PCIe
// hot-plug driver brought the slot up.
func TestHotplugDisksGuestSees(t *testing.T) {
	requireQEMU(t)
	image := testImage()
	testenv.RequireFile(t, image, "needs a Linux guest with PCIe hot-plug: make test-image")
	runDir := newRunDir(t)
	disk := filepath.Join(t.TempDir(), "boot.qcow2")
	if err := copyImage(disk, image); err != nil {
		t.Fatal(err)
	}
	// The user data reports the guest's virtio disks on the console
	// every second, with the kernel's messages (pciehp's among them)
	// let through for when one never comes.
	cfg := filepath.Join(t.TempDir(), "config.iso")
	script := "#!/bin/sh\ndmesg -n 7\n(while :; do echo \"HOTPLUG-TEST: disks=$(cd /sys/block && echo vd*) .\"; sleep 1; done) &\n"
	if err := configdrive.Build(ctxFor(t, time.Minute), cfg, configdrive.Server{UUID: "hot", Hostname: "hot", UserData: []byte(script)}); err != nil {
		t.Fatal(err)
	}
	spec := hypervisor.VMSpec{ID: newID("hotall"), VCPUs: 1, MemoryMB: 256, ConfigDrive: cfg,
		Disks: []hypervisor.Disk{{Path: disk, Format: hypervisor.FormatQCOW2}}}
	d := newDriver(t, runDir)
	vm := startVM(t, d, spec)
	console := func() string { b, _ := os.ReadFile(vm.Console()); return string(b) }
	waitFor(t, "the image to be ready", 3*time.Minute, func() bool {
		return strings.Contains(console(), drivertest.ReadyLine)
	})
	// vda is the boot disk, vdb the config drive.
	if !strings.Contains(console(), "HOTPLUG-TEST: disks=vda vdb .") {
		t.Fatalf("the guest does not report its disks:\n%s", console())
	}

	srv, sock := serveNBD(t, runDir)

	hp := vm.(hypervisor.Hotplug)
	want := "HOTPLUG-TEST: disks=vda vdb"
	for i := range hypervisor.HotplugSlots {
		id := "vol" + strconv.Itoa(i)
		if err := srv.Export(id, &memDevice{b: make([]byte, 8<<20)}); err != nil {
			t.Fatal(err)
		}
		if err := hp.AttachDisk(ctxFor(t, 30*time.Second), hypervisor.HotDisk{ID: id, Socket: sock, Export: id}); err != nil {
			t.Fatalf("attach %s: %v", id, err)
		}
		want += " vd" + string(rune('c'+i))
	}
	want += " ."
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(console(), want) {
		if time.Now().After(deadline) {
			out := console()
			t.Fatalf("the guest never saw all %d plugged disks (want %q); console:\n%s",
				hypervisor.HotplugSlots, want, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func copyImage(dst, src string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o600)
}

// serveNBD serves an NBD server with no exports yet on runDir/nbd.sock
// until the test ends.
func serveNBD(t *testing.T, runDir string) (*nbd.Server, string) {
	t.Helper()
	srv := nbd.NewServer(nil)
	sock := filepath.Join(runDir, "nbd.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeUnix(ctx, sock) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "nbd socket", 10*time.Second, func() bool { return fileExists(sock) })
	return srv, sock
}
