package qemu_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
	"github.com/rackstack/rackstack/node/hypervisor"
	"github.com/rackstack/rackstack/node/hypervisor/drivertest"
	"github.com/rackstack/rackstack/node/hypervisor/qemu"
	"github.com/rackstack/rackstack/node/hypervisor/qmp"
)

// These tests run real QEMU guests (under TCG where the host has no
// hardware virtualisation), one at a time. Each test owns a run directory
// and, when it ends, kills any QEMU still running from it, and only those.

const (
	helperEnvRunDir = "RACKSTACK_QEMU_TEST_HELPER_RUNDIR"
	helperEnvDisk   = "RACKSTACK_QEMU_TEST_HELPER_DISK"
	helperEnvID     = "RACKSTACK_QEMU_TEST_HELPER_ID"
)

// TestMain doubles as a stand-in for rackd: with the helper environment set
// the test binary starts a VM, says so, and waits to be killed.
func TestMain(m *testing.M) {
	if os.Getenv(helperEnvRunDir) != "" {
		os.Exit(helperStartVM())
	}
	os.Exit(m.Run())
}

func helperStartVM() int {
	d, err := qemu.New(qemu.Config{RunDir: os.Getenv(helperEnvRunDir), Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	vm, err := d.Start(ctx, blankSpecAt(os.Getenv(helperEnvID), os.Getenv(helperEnvDisk)))
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Println("started", vm.PID())
	select {} // until killed
}

// requireQEMU skips the test without QEMU (or with -short), or fails it
// when RACKSTACK_REQUIRE_INTEGRATION says integration prerequisites must
// be there: in CI no QEMU test can skip.
func requireQEMU(t *testing.T) {
	t.Helper()
	testenv.Require(t, !testing.Short(), "runs QEMU guests, which -short leaves out")
	testenv.RequireCommand(t, "qemu-system-x86_64")
}

// newRunDir makes a short run directory (socket paths must stay under 108
// bytes) and, at cleanup, kills the QEMU processes started from it, then
// removes it.
func newRunDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "rshv")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, pid := range qemuPIDsIn(dir) {
			t.Errorf("QEMU pid %d from %s still running at cleanup; killing it", pid, dir)
			syscall.Kill(pid, syscall.SIGKILL)
		}
		os.RemoveAll(dir)
	})
	return dir
}

// qemuPIDsIn returns the pids of live QEMU processes whose pid file is in a
// VM directory under runDir: the ones a test started, and no others.
func qemuPIDsIn(runDir string) []int {
	files, _ := filepath.Glob(filepath.Join(runDir, "*", "qemu.pid"))
	var pids []int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			continue
		}
		if alive(pid, f) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// alive reports whether pid is a live (not zombie) QEMU writing pidfile.
func alive(pid int, pidfile string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	return bytes.Contains(b, []byte("\x00-pidfile\x00"+pidfile+"\x00"))
}

func newDriver(t *testing.T, runDir string) *qemu.Driver {
	t.Helper()
	d, err := qemu.New(qemu.Config{
		RunDir: runDir,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// testImage is the bootable image `make test-image` builds, if it has.
func testImage() string {
	if p := os.Getenv("RACKSTACK_TEST_IMAGE"); p != "" {
		return p
	}
	p, _ := filepath.Abs(filepath.Join("..", "..", "..", "build", "test-image.qcow2"))
	return p
}

func TestConformance(t *testing.T) {
	requireQEMU(t)
	runDir := newRunDir(t)
	drivertest.Run(t, func(t *testing.T) hypervisor.Driver { return newDriver(t, runDir) }, testImage())

	// Nothing is left behind: every VM was destroyed, every bad spec
	// refused before it made a directory.
	entries, err := os.ReadDir(runDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left in the run dir: %s", e.Name())
	}
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func newID(prefix string) string {
	b := make([]byte, 3)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

func blankDisk(t *testing.T) string {
	t.Helper()
	disk := filepath.Join(t.TempDir(), "blank.raw")
	if err := os.WriteFile(disk, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 1<<20); err != nil {
		t.Fatal(err)
	}
	return disk
}

func blankSpecAt(id, disk string) hypervisor.VMSpec {
	return hypervisor.VMSpec{
		ID: id, VCPUs: 1, MemoryMB: 128,
		Disks: []hypervisor.Disk{{Path: disk, Format: hypervisor.FormatRaw}},
	}
}

// startVM starts spec on d and destroys the VM when the test ends.
func startVM(t *testing.T, d *qemu.Driver, spec hypervisor.VMSpec) hypervisor.VM {
	t.Helper()
	vm, err := d.Start(ctxFor(t, time.Minute), spec)
	if err != nil {
		t.Fatal(err)
	}
	destroyAtCleanup(t, vm)
	return vm
}

func destroyAtCleanup(t *testing.T, vm hypervisor.VM) {
	t.Cleanup(func() {
		if err := vm.Destroy(ctxFor(t, time.Minute)); err != nil {
			t.Errorf("destroy %s: %v", vm.ID(), err)
		}
	})
}

func waitFor(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Killing rackd, and its whole process group, must not take its guests
// down; the next rackd adopts them.
func TestGuestSurvivesRackdKill(t *testing.T) {
	requireQEMU(t)
	runDir := newRunDir(t)
	id := newID("survive")

	rackd := exec.Command(os.Args[0], "-test.run=^$")
	rackd.Env = append(os.Environ(), helperEnvRunDir+"="+runDir, helperEnvDisk+"="+blankDisk(t), helperEnvID+"="+id)
	rackd.Stderr = t.Output()
	rackd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := rackd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := rackd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rackd.Process.Kill(); rackd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "started ") {
		t.Fatalf("helper rackd said %q, %v", line, err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "started ")))

	// SIGKILL the helper's whole process group, as a crash of rackd's
	// service would.
	if err := syscall.Kill(-rackd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	rackd.Wait()
	time.Sleep(500 * time.Millisecond)
	pidfile := filepath.Join(runDir, id, "qemu.pid")
	if !alive(pid, pidfile) {
		t.Fatalf("QEMU pid %d died with rackd", pid)
	}

	d := newDriver(t, runDir)
	vm, err := d.Adopt(ctxFor(t, time.Minute), id)
	if err != nil {
		t.Fatalf("adopt after rackd was killed: %v", err)
	}
	destroyAtCleanup(t, vm)
	if vm.PID() != pid {
		t.Errorf("adopted PID %d, want %d", vm.PID(), pid)
	}
	if s, err := vm.State(ctxFor(t, time.Minute)); err != nil || s != hypervisor.Running {
		t.Errorf("state after rackd was killed: %q, %v", s, err)
	}
	if err := vm.Destroy(ctxFor(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	if alive(pid, pidfile) {
		t.Errorf("QEMU pid %d alive after destroy", pid)
	}
}

// The devices QEMU was given are the ones the spec asked for: checked
// from QEMU's side, over its own QMP socket.
func TestDevices(t *testing.T) {
	requireQEMU(t)
	testenv.RequireCommand(t, "qemu-img")
	runDir := newRunDir(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "root.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", root, "64M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v: %s", err, out)
	}
	cfg := filepath.Join(dir, "config.iso") // contents do not matter to QEMU
	if err := os.WriteFile(cfg, make([]byte, 64<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	spec := hypervisor.VMSpec{
		ID: newID("dev"), Name: "devices", VCPUs: 2, MemoryMB: 192,
		Disks: []hypervisor.Disk{
			{Path: root, Format: hypervisor.FormatQCOW2, Serial: "rs-root"},
			{Path: blankDisk(t), Format: hypervisor.FormatRaw, ReadOnly: true},
		},
		ConfigDrive: cfg,
	}
	tap := ""
	if canMakeTaps() {
		tap = newID("rst") // QEMU creates it, and it goes with the VM
		spec.NICs = []hypervisor.NIC{{Tap: tap, MAC: "fa:16:3e:12:34:56"}}
	} else {
		t.Log("not root or no /dev/net/tun: no NIC in this test")
	}

	d := newDriver(t, runDir)
	vm := startVM(t, d, spec)

	// The display's VNC socket speaks RFB (what noVNC consoles reach).
	vc, err := net.DialTimeout("unix", vm.VNCSocket(), 10*time.Second)
	if err != nil {
		t.Fatalf("VNC socket: %v", err)
	}
	vc.SetDeadline(time.Now().Add(10 * time.Second))
	hello := make([]byte, 12)
	if _, err := io.ReadFull(vc, hello); err != nil || string(hello) != "RFB 003.008\n" {
		t.Fatalf("VNC greeting %q: %v", hello, err)
	}
	vc.Close()

	c, err := qmp.Dial(ctxFor(t, 10*time.Second), filepath.Join(runDir, spec.ID, "qmp.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var blocks []struct {
		Device   string `json:"device"`
		Inserted struct {
			File string `json:"file"`
			RO   bool   `json:"ro"`
			Drv  string `json:"drv"`
		} `json:"inserted"`
	}
	if err := c.Execute(ctxFor(t, 10*time.Second), "query-block", nil, &blocks); err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		file, drv string
		ro        bool
	}{
		"drive-disk0":  {root, "qcow2", false},
		"drive-disk1":  {spec.Disks[1].Path, "raw", true},
		"drive-config": {cfg, "raw", true},
	}
	for _, b := range blocks {
		w, ok := want[b.Device]
		if !ok {
			t.Errorf("unexpected block device %s", b.Device)
			continue
		}
		delete(want, b.Device)
		if b.Inserted.File != w.file || b.Inserted.Drv != w.drv || b.Inserted.RO != w.ro {
			t.Errorf("%s: file %s drv %s ro %v; want %s %s %v", b.Device, b.Inserted.File, b.Inserted.Drv, b.Inserted.RO, w.file, w.drv, w.ro)
		}
	}
	for dev := range want {
		t.Errorf("no block device %s", dev)
	}
	var cpus []map[string]any
	if err := c.Execute(ctxFor(t, 10*time.Second), "query-cpus-fast", nil, &cpus); err != nil {
		t.Fatal(err)
	}
	if len(cpus) != 2 {
		t.Errorf("%d vCPUs, want 2", len(cpus))
	}
	var mem struct {
		Base int64 `json:"base-memory"`
	}
	if err := c.Execute(ctxFor(t, 10*time.Second), "query-memory-size-summary", nil, &mem); err != nil {
		t.Fatal(err)
	}
	if mem.Base != 192<<20 {
		t.Errorf("memory %d bytes, want %d", mem.Base, 192<<20)
	}

	if tap != "" {
		var info string
		if err := c.Execute(ctxFor(t, 10*time.Second), "human-monitor-command",
			map[string]string{"command-line": "info network"}, &info); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(info, "ifname="+tap) || !strings.Contains(info, "macaddr=fa:16:3e:12:34:56") {
			t.Errorf("info network:\n%s\nwant tap %s and the MAC", info, tap)
		}
		if _, err := os.Stat("/sys/class/net/" + tap); err != nil {
			t.Errorf("tap %s not on the host: %v", tap, err)
		}
	}
	c.Close()

	if err := vm.Destroy(ctxFor(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	if tap != "" {
		if _, err := os.Stat("/sys/class/net/" + tap); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("tap %s outlived its VM (err %v)", tap, err)
		}
	}
	if _, err := os.Stat(root); err != nil {
		t.Errorf("root disk after destroy: %v", err)
	}
}

func canMakeTaps() bool {
	if os.Geteuid() != 0 {
		return false
	}
	f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// A spec that passes validation but that QEMU refuses fails with QEMU's
// own words, and leaves nothing behind.
func TestQEMURefusesStart(t *testing.T) {
	requireQEMU(t)
	runDir := newRunDir(t)
	notQCOW2 := filepath.Join(t.TempDir(), "garbage.qcow2")
	if err := os.WriteFile(notQCOW2, bytes.Repeat([]byte("garbage!"), 1024), 0o600); err != nil {
		t.Fatal(err)
	}
	spec := hypervisor.VMSpec{
		ID: newID("refused"), VCPUs: 1, MemoryMB: 128,
		Disks: []hypervisor.Disk{{Path: notQCOW2, Format: hypervisor.FormatQCOW2}},
	}
	d := newDriver(t, runDir)
	_, err := d.Start(ctxFor(t, time.Minute), spec)
	if err == nil {
		t.Fatal("start succeeded")
	}
	t.Logf("error: %v", err)
	if !strings.Contains(err.Error(), "qcow2") || errors.Is(err, hypervisor.ErrInvalidSpec) {
		t.Errorf("err = %v, want QEMU's complaint about the qcow2 image", err)
	}
	if _, err := os.Stat(filepath.Join(runDir, spec.ID)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("run dir of the refused VM exists (err %v)", err)
	}
	if _, err := d.Adopt(ctxFor(t, time.Minute), spec.ID); !errors.Is(err, hypervisor.ErrNotFound) {
		t.Errorf("adopt: err = %v, want ErrNotFound", err)
	}
}

// A run dir too long for unix sockets is refused up front, not by QEMU.
func TestSocketPathTooLong(t *testing.T) {
	requireQEMU(t)
	runDir := filepath.Join(t.TempDir(), strings.Repeat("r", 80))
	d := newDriver(t, runDir)
	_, err := d.Start(ctxFor(t, time.Minute), blankSpecAt(newID("long"), blankDisk(t)))
	if err == nil || !strings.Contains(err.Error(), "shorter run dir") {
		t.Fatalf("err = %v, want a socket path complaint", err)
	}
	if ids, _ := d.List(ctxFor(t, time.Minute)); len(ids) != 0 {
		t.Errorf("List() = %v", ids)
	}
}

// Concurrent starts of one spec make one VM.
func TestConcurrentStart(t *testing.T) {
	requireQEMU(t)
	runDir := newRunDir(t)
	spec := blankSpecAt(newID("conc"), blankDisk(t))
	const n = 4
	type result struct {
		pid int
		err error
	}
	results := make(chan result, n)
	drivers := make([]*qemu.Driver, n) // separate instances on one run dir, as two rackds would be
	for i := range drivers {
		drivers[i] = newDriver(t, runDir)
	}
	for _, d := range drivers {
		go func() {
			vm, err := d.Start(ctxFor(t, time.Minute), spec)
			if err != nil {
				results <- result{err: err}
				return
			}
			results <- result{pid: vm.PID()}
		}()
	}
	pids := map[int]bool{}
	for range n {
		r := <-results
		if r.err != nil {
			t.Errorf("start: %v", r.err)
			continue
		}
		pids[r.pid] = true
	}
	vm, err := newDriver(t, runDir).Adopt(ctxFor(t, time.Minute), spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	destroyAtCleanup(t, vm)
	if live := qemuPIDsIn(runDir); len(live) != 1 {
		t.Errorf("%d QEMU processes for one spec: %v", len(live), live)
	}
	if len(pids) != 1 {
		t.Errorf("starts returned pids %v, want one", pids)
	}

	// And through one instance.
	d := drivers[0]
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := d.Start(ctxFor(t, time.Minute), spec)
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("start through one driver: %v", err)
		}
	}
	if live := qemuPIDsIn(runDir); len(live) != 1 {
		t.Errorf("%d QEMU processes for one spec: %v", len(live), live)
	}
}

// A failed restart of a known, powered-off VM leaves it as it was.
func TestFailedRestartKeepsVM(t *testing.T) {
	requireQEMU(t)
	runDir := newRunDir(t)
	d := newDriver(t, runDir)
	spec := blankSpecAt(newID("keep"), blankDisk(t))
	vm := startVM(t, d, spec)
	waitFor(t, "firmware output on the console", 90*time.Second, func() bool {
		fi, err := os.Stat(vm.Console())
		return err == nil && fi.Size() > 0
	})
	if err := vm.PowerOff(ctxFor(t, time.Minute), 0); err != nil {
		t.Fatal(err)
	}
	console, err := os.ReadFile(vm.Console())
	if err != nil || len(console) == 0 {
		t.Fatalf("console before restart: %d bytes, %v", len(console), err)
	}

	bad := spec
	garbage := filepath.Join(t.TempDir(), "garbage.qcow2")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("garbage!"), 1024), 0o600); err != nil {
		t.Fatal(err)
	}
	bad.Disks = []hypervisor.Disk{{Path: garbage, Format: hypervisor.FormatQCOW2}}
	if _, err := d.Start(ctxFor(t, time.Minute), bad); err == nil {
		t.Fatal("start with a garbage qcow2 succeeded")
	}
	// Still known, still off, and the next start uses the last good spec.
	if s, err := vm.State(ctxFor(t, time.Minute)); err != nil || s != hypervisor.Shutdown {
		t.Errorf("state after the failed restart: %q, %v", s, err)
	}
	after, _ := os.ReadFile(vm.Console())
	if !bytes.HasPrefix(after, console) {
		t.Error("console log lost across the failed restart")
	}
	if _, err := d.Start(ctxFor(t, time.Minute), spec); err != nil {
		t.Fatalf("start with the good spec: %v", err)
	}
	if s, err := vm.State(ctxFor(t, time.Minute)); err != nil || s != hypervisor.Running {
		t.Errorf("state after restart: %q, %v", s, err)
	}
}

// A guest that shut down while QEMU was told to wait for a reset (a soft
// reboot that rackd did not finish) is started afresh by Start.
func TestStartRestartsShutDownGuest(t *testing.T) {
	requireQEMU(t)
	image := testImage()
	testenv.RequireFile(t, image, "needs a guest that answers the power button: make test-image")
	runDir := newRunDir(t)
	disk := filepath.Join(t.TempDir(), "boot.qcow2")
	b, err := os.ReadFile(image)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(disk, b, 0o600); err != nil {
		t.Fatal(err)
	}
	spec := hypervisor.VMSpec{ID: newID("husk"), VCPUs: 1, MemoryMB: 256,
		Disks: []hypervisor.Disk{{Path: disk, Format: hypervisor.FormatQCOW2}}}
	d := newDriver(t, runDir)
	vm := startVM(t, d, spec)
	pid := vm.PID()
	waitFor(t, "the image to be ready", 3*time.Minute, func() bool {
		b, _ := os.ReadFile(vm.Console())
		return bytes.Contains(b, []byte(drivertest.ReadyLine))
	})

	// Half a soft reboot, by hand.
	c, err := qmp.Dial(ctxFor(t, 10*time.Second), filepath.Join(runDir, spec.ID, "qmp.sock"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t, 10*time.Second)
	if err := c.Execute(ctx, "set-action", map[string]string{"shutdown": "pause"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Execute(ctx, "system_powerdown", nil, nil); err != nil {
		t.Fatal(err)
	}
	c.Close()
	waitFor(t, "the guest to shut down", time.Minute, func() bool {
		s, err := vm.State(ctxFor(t, 10*time.Second))
		return err == nil && s == hypervisor.Shutdown
	})
	if vm.PID() != pid {
		t.Fatalf("QEMU exited (pid %d → %d) although told to wait", pid, vm.PID())
	}

	if _, err := d.Start(ctxFor(t, time.Minute), spec); err != nil {
		t.Fatal(err)
	}
	if s, err := vm.State(ctxFor(t, time.Minute)); err != nil || s != hypervisor.Running {
		t.Errorf("state after start: %q, %v", s, err)
	}
	if vm.PID() == pid || vm.PID() == 0 {
		t.Errorf("PID %d after start, want a new process (old %d)", vm.PID(), pid)
	}
}
