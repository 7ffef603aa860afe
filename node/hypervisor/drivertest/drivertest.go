// Package drivertest is the conformance suite of hypervisor.Driver: every
// driver (the QEMU one, the fake) must pass Run. It checks the contract as
// the node agent relies on it: lifecycle and power states, idempotent
// Start, adoption by a new driver instance (a restarted rackd), clean
// failure on bad specs, and that Destroy leaves nothing but the disks.
//
// The guests need no operating system: each gets a blank raw disk, so a
// real hypervisor sits in its firmware, which is enough for every check but
// the boot check, which needs a bootable image and is skipped without one.
package drivertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
	"github.com/rackstack/rackstack/node/hypervisor"
)

// Bounds, generous for TCG on a small machine; no check asserts a timing.
const (
	opTimeout      = 60 * time.Second  // one driver call
	stateTimeout   = 30 * time.Second  // for a state to show
	consoleTimeout = 90 * time.Second  // for firmware to write to the console
	bootTimeout    = 180 * time.Second // for the test image to be ready
)

// ReadyLine is what the test image's /init writes to the serial console
// once it is up.
const ReadyLine = "RACKSTACK-TEST-IMAGE: ready"

// Run runs the suite. newDriver returns a driver instance; it is called
// more than once, and instances from one call of Run must share a node (a
// second instance stands for a restarted rackd, and must adopt what the
// first started). image is a bootable disk image whose console prints
// ReadyLine; "" says the driver boots no real guest (the fake) and skips the
// boot check, and a missing file skips it too except under
// RACKSTACK_REQUIRE_INTEGRATION, where it fails (testenv). Subtests run
// one at a time, each with at most one VM, destroyed when it ends.
func Run(t *testing.T, newDriver func(t *testing.T) hypervisor.Driver, image string) {
	s := &suite{newDriver: newDriver, image: image}
	t.Run("StartRunning", s.startRunning)
	t.Run("StartIdempotent", s.startIdempotent)
	t.Run("PauseResume", s.pauseResume)
	t.Run("Reboot", s.reboot)
	t.Run("PowerOff", s.powerOff)
	t.Run("Kill", s.kill)
	t.Run("Destroy", s.destroy)
	t.Run("AdoptAfterRestart", s.adoptAfterRestart)
	t.Run("AdoptUnknown", s.adoptUnknown)
	t.Run("InvalidSpec", s.invalidSpec)
	t.Run("BootImage", s.bootImage)
}

type suite struct {
	newDriver func(t *testing.T) hypervisor.Driver
	image     string
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// newID returns a short id unique to this run (sockets under a run dir
// must keep short paths).
func newID(prefix string) string {
	b := make([]byte, 3)
	rand.Read(b)
	return "ct-" + prefix + "-" + hex.EncodeToString(b)
}

// blankSpec is a 1-vCPU guest with a blank raw disk made for the test.
func blankSpec(t *testing.T, prefix string) hypervisor.VMSpec {
	t.Helper()
	disk := filepath.Join(t.TempDir(), "blank.raw")
	f, err := os.Create(disk)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return hypervisor.VMSpec{
		ID:       newID(prefix),
		Name:     "conformance " + prefix,
		VCPUs:    1,
		MemoryMB: 128,
		Disks:    []hypervisor.Disk{{Path: disk, Format: hypervisor.FormatRaw, Serial: "rs-blank"}},
	}
}

// start starts spec and destroys the VM when the test ends.
func start(t *testing.T, d hypervisor.Driver, spec hypervisor.VMSpec) hypervisor.VM {
	t.Helper()
	began := time.Now()
	vm, err := d.Start(ctxFor(t, opTimeout), spec)
	if err != nil {
		t.Fatalf("start %s: %v", spec.ID, err)
	}
	t.Cleanup(func() {
		if err := vm.Destroy(ctxFor(t, opTimeout)); err != nil {
			t.Errorf("cleanup: destroy %s: %v", spec.ID, err)
		}
	})
	if vm.ID() != spec.ID {
		t.Errorf("ID() = %q, want %q", vm.ID(), spec.ID)
	}
	waitState(t, vm, hypervisor.Running)
	t.Logf("start %s → running: %s", spec.ID, time.Since(began).Round(time.Millisecond))
	return vm
}

// waitState waits for vm to report want.
func waitState(t *testing.T, vm hypervisor.VM, want hypervisor.PowerState) {
	t.Helper()
	deadline := time.Now().Add(stateTimeout)
	for {
		got, err := vm.State(ctxFor(t, opTimeout))
		if err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("state of %s = %q (err %v), want %q", vm.ID(), got, err, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func consoleSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// waitConsoleGrows waits for the console log to grow past size.
func waitConsoleGrows(t *testing.T, vm hypervisor.VM, size int64, why string) int64 {
	t.Helper()
	began := time.Now()
	deadline := began.Add(consoleTimeout)
	for {
		if n := consoleSize(vm.Console()); n > size {
			t.Logf("console of %s grew %d → %d bytes %s in %s", vm.ID(), size, n, why, time.Since(began).Round(time.Millisecond))
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("console %s stayed at %d bytes %s", vm.Console(), size, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *suite) startRunning(t *testing.T) {
	d := s.newDriver(t)
	if a := d.Accelerator(); a != "kvm" && a != "tcg" {
		t.Errorf("Accelerator() = %q, want kvm or tcg", a)
	}
	spec := blankSpec(t, "run")
	vm := start(t, d, spec)
	if vm.PID() <= 0 {
		t.Errorf("PID() = %d of a running VM", vm.PID())
	}
	if vm.Console() == "" {
		t.Fatal("Console() is empty")
	}
	waitConsoleGrows(t, vm, 0, "after start")
	ids, err := d.List(ctxFor(t, opTimeout))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(ids, spec.ID) {
		t.Errorf("List() = %v, want it to hold %s", ids, spec.ID)
	}
	if !slices.IsSorted(ids) {
		t.Errorf("List() = %v, not sorted", ids)
	}
}

func (s *suite) startIdempotent(t *testing.T) {
	d := s.newDriver(t)
	spec := blankSpec(t, "idem")
	vm := start(t, d, spec)
	pid := vm.PID()

	again, err := d.Start(ctxFor(t, opTimeout), spec)
	if err != nil {
		t.Fatalf("second start: %v", err)
	}
	if again.PID() != pid {
		t.Errorf("second start: PID %d, want the running VM's %d", again.PID(), pid)
	}
	// A new driver instance (restarted rackd) starting the same spec
	// finds the running VM too.
	fromNew, err := s.newDriver(t).Start(ctxFor(t, opTimeout), spec)
	if err != nil {
		t.Fatalf("start from a new driver: %v", err)
	}
	if fromNew.PID() != pid {
		t.Errorf("start from a new driver: PID %d, want %d", fromNew.PID(), pid)
	}

	bigger := spec
	bigger.MemoryMB += 64
	if _, err := d.Start(ctxFor(t, opTimeout), bigger); !errors.Is(err, hypervisor.ErrExists) {
		t.Errorf("start with a different spec: err = %v, want ErrExists", err)
	}
	if vm.PID() != pid {
		t.Errorf("after the refused start: PID %d, want %d", vm.PID(), pid)
	}
	waitState(t, vm, hypervisor.Running)
}

func (s *suite) pauseResume(t *testing.T) {
	d := s.newDriver(t)
	vm := start(t, d, blankSpec(t, "pause"))
	if err := vm.Pause(ctxFor(t, opTimeout)); err != nil {
		t.Fatalf("pause: %v", err)
	}
	waitState(t, vm, hypervisor.Paused)
	if err := vm.Resume(ctxFor(t, opTimeout)); err != nil {
		t.Fatalf("resume: %v", err)
	}
	waitState(t, vm, hypervisor.Running)
}

func (s *suite) reboot(t *testing.T) {
	d := s.newDriver(t)
	vm := start(t, d, blankSpec(t, "reboot"))
	pid := vm.PID()
	size := waitConsoleGrows(t, vm, 0, "after start")

	if err := vm.Reboot(ctxFor(t, opTimeout), hypervisor.HardReboot, 0); err != nil {
		t.Fatalf("hard reboot: %v", err)
	}
	waitState(t, vm, hypervisor.Running)
	size = waitConsoleGrows(t, vm, size, "after a hard reboot")

	// A blank disk has no OS to answer the power button: the soft reboot
	// must fall back to a reset after the grace period.
	if err := vm.Reboot(ctxFor(t, opTimeout), hypervisor.SoftReboot, time.Second); err != nil {
		t.Fatalf("soft reboot: %v", err)
	}
	waitState(t, vm, hypervisor.Running)
	size = waitConsoleGrows(t, vm, size, "after a soft reboot")

	// A reboot ends Running even from Paused.
	if err := vm.Pause(ctxFor(t, opTimeout)); err != nil {
		t.Fatalf("pause: %v", err)
	}
	waitState(t, vm, hypervisor.Paused)
	if err := vm.Reboot(ctxFor(t, opTimeout), hypervisor.SoftReboot, time.Second); err != nil {
		t.Fatalf("reboot of a paused VM: %v", err)
	}
	waitState(t, vm, hypervisor.Running)
	waitConsoleGrows(t, vm, size, "after rebooting a paused VM")
	if vm.PID() != pid {
		t.Errorf("PID changed across reboots: %d → %d", pid, vm.PID())
	}
}

func (s *suite) powerOff(t *testing.T) {
	d := s.newDriver(t)
	spec := blankSpec(t, "off")
	vm := start(t, d, spec)

	began := time.Now()
	if err := vm.PowerOff(ctxFor(t, opTimeout), 2*time.Second); err != nil {
		t.Fatalf("power off: %v", err)
	}
	t.Logf("power off (2s grace, no OS to answer) took %s", time.Since(began).Round(time.Millisecond))
	waitState(t, vm, hypervisor.Shutdown)
	if vm.PID() != 0 {
		t.Errorf("PID() = %d after power off, want 0", vm.PID())
	}
	if err := vm.PowerOff(ctxFor(t, opTimeout), time.Second); err != nil {
		t.Errorf("power off of an off VM: %v", err)
	}
	if err := vm.Pause(ctxFor(t, opTimeout)); !errors.Is(err, hypervisor.ErrNotRunning) {
		t.Errorf("pause of an off VM: err = %v, want ErrNotRunning", err)
	}
	if err := vm.Reboot(ctxFor(t, opTimeout), hypervisor.HardReboot, 0); !errors.Is(err, hypervisor.ErrNotRunning) {
		t.Errorf("reboot of an off VM: err = %v, want ErrNotRunning", err)
	}
	// Off is not gone: the node still knows it, and Start boots it again.
	ids, err := d.List(ctxFor(t, opTimeout))
	if err != nil || !slices.Contains(ids, spec.ID) {
		t.Errorf("List() = %v, %v; want it to hold the off VM %s", ids, err, spec.ID)
	}
	adopted, err := s.newDriver(t).Adopt(ctxFor(t, opTimeout), spec.ID)
	if err != nil {
		t.Fatalf("adopt an off VM: %v", err)
	}
	waitState(t, adopted, hypervisor.Shutdown)
	if _, err := d.Start(ctxFor(t, opTimeout), spec); err != nil {
		t.Fatalf("start after power off: %v", err)
	}
	waitState(t, vm, hypervisor.Running)
	if vm.PID() <= 0 {
		t.Errorf("PID() = %d after restart", vm.PID())
	}
}

func (s *suite) kill(t *testing.T) {
	d := s.newDriver(t)
	vm := start(t, d, blankSpec(t, "kill"))
	if err := vm.Kill(); err != nil {
		t.Fatalf("kill: %v", err)
	}
	waitState(t, vm, hypervisor.Shutdown)
	if vm.PID() != 0 {
		t.Errorf("PID() = %d after kill, want 0", vm.PID())
	}
	if err := vm.Kill(); err != nil {
		t.Errorf("kill of a dead VM: %v", err)
	}
}

func (s *suite) destroy(t *testing.T) {
	tests := map[string]struct {
		off bool // power off before destroying
	}{
		"running": {},
		"off":     {off: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := s.newDriver(t)
			spec := blankSpec(t, "destroy")
			vm := start(t, d, spec)
			waitConsoleGrows(t, vm, 0, "after start")
			if tc.off {
				if err := vm.PowerOff(ctxFor(t, opTimeout), 0); err != nil {
					t.Fatalf("power off: %v", err)
				}
			}
			if err := vm.Destroy(ctxFor(t, opTimeout)); err != nil {
				t.Fatalf("destroy: %v", err)
			}
			if _, err := os.Stat(vm.Console()); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("console log %s still there (err %v)", vm.Console(), err)
			}
			if sock := vm.SerialSocket(); sock != "" {
				if _, err := os.Stat(sock); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("serial socket %s still there (err %v)", sock, err)
				}
			}
			if vm.PID() != 0 {
				t.Errorf("PID() = %d after destroy", vm.PID())
			}
			if _, err := vm.State(ctxFor(t, opTimeout)); !errors.Is(err, hypervisor.ErrNotFound) {
				t.Errorf("state after destroy: err = %v, want ErrNotFound", err)
			}
			ids, err := d.List(ctxFor(t, opTimeout))
			if err != nil || slices.Contains(ids, spec.ID) {
				t.Errorf("List() = %v, %v after destroy; want no %s", ids, err, spec.ID)
			}
			if _, err := s.newDriver(t).Adopt(ctxFor(t, opTimeout), spec.ID); !errors.Is(err, hypervisor.ErrNotFound) {
				t.Errorf("adopt after destroy: err = %v, want ErrNotFound", err)
			}
			if err := vm.Destroy(ctxFor(t, opTimeout)); err != nil {
				t.Errorf("second destroy: %v", err)
			}
			// The disks are the caller's.
			if _, err := os.Stat(spec.Disks[0].Path); err != nil {
				t.Errorf("disk after destroy: %v", err)
			}
		})
	}
}

func (s *suite) adoptAfterRestart(t *testing.T) {
	first := s.newDriver(t)
	spec := blankSpec(t, "adopt")
	vm := start(t, first, spec)
	pid := vm.PID()

	second := s.newDriver(t) // rackd restarted
	ids, err := second.List(ctxFor(t, opTimeout))
	if err != nil || !slices.Contains(ids, spec.ID) {
		t.Fatalf("new driver: List() = %v, %v; want it to hold %s", ids, err, spec.ID)
	}
	adopted, err := second.Adopt(ctxFor(t, opTimeout), spec.ID)
	if err != nil {
		t.Fatalf("adopt: %v", err)
	}
	if adopted.PID() != pid {
		t.Errorf("adopted PID %d, want %d", adopted.PID(), pid)
	}
	if adopted.Console() != vm.Console() {
		t.Errorf("adopted console %q, want %q", adopted.Console(), vm.Console())
	}
	waitState(t, adopted, hypervisor.Running)
	// Both handles drive the one VM.
	if err := adopted.Pause(ctxFor(t, opTimeout)); err != nil {
		t.Fatalf("pause through the adopted handle: %v", err)
	}
	waitState(t, vm, hypervisor.Paused)
	if err := adopted.Resume(ctxFor(t, opTimeout)); err != nil {
		t.Fatalf("resume through the adopted handle: %v", err)
	}
	waitState(t, vm, hypervisor.Running)
	if err := adopted.Destroy(ctxFor(t, opTimeout)); err != nil {
		t.Fatalf("destroy through the adopted handle: %v", err)
	}
	if _, err := vm.State(ctxFor(t, opTimeout)); !errors.Is(err, hypervisor.ErrNotFound) {
		t.Errorf("state through the first handle after destroy: err = %v, want ErrNotFound", err)
	}
}

func (s *suite) adoptUnknown(t *testing.T) {
	d := s.newDriver(t)
	for _, id := range []string{newID("unknown"), "../etc", "", "a/b"} {
		if _, err := d.Adopt(ctxFor(t, opTimeout), id); !errors.Is(err, hypervisor.ErrNotFound) {
			t.Errorf("adopt %q: err = %v, want ErrNotFound", id, err)
		}
	}
}

func (s *suite) invalidSpec(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.qcow2")
	tests := map[string]func(*hypervisor.VMSpec){
		"zero memory":         func(s *hypervisor.VMSpec) { s.MemoryMB = 0 },
		"zero vcpus":          func(s *hypervisor.VMSpec) { s.VCPUs = 0 },
		"missing disk file":   func(s *hypervisor.VMSpec) { s.Disks[0].Path = missing },
		"relative disk path":  func(s *hypervisor.VMSpec) { s.Disks[0].Path = "blank.raw" },
		"unknown disk format": func(s *hypervisor.VMSpec) { s.Disks[0].Format = "vmdk" },
		"no disk format":      func(s *hypervisor.VMSpec) { s.Disks[0].Format = "" },
		"disk serial too long": func(s *hypervisor.VMSpec) {
			s.Disks[0].Serial = strings.Repeat("x", 21)
		},
		"missing config drive": func(s *hypervisor.VMSpec) { s.ConfigDrive = missing },
		"id with a slash":      func(s *hypervisor.VMSpec) { s.ID = "../" + s.ID },
		"bad mac": func(s *hypervisor.VMSpec) {
			s.NICs = []hypervisor.NIC{{Tap: "tap-ct0", MAC: "fa:16:3e:zz:00:01"}}
		},
		"multicast mac": func(s *hypervisor.VMSpec) {
			s.NICs = []hypervisor.NIC{{Tap: "tap-ct0", MAC: "01:00:5e:00:00:01"}}
		},
		"tap name too long": func(s *hypervisor.VMSpec) {
			s.NICs = []hypervisor.NIC{{Tap: "tap-much-too-long0", MAC: "fa:16:3e:00:00:01"}}
		},
	}
	d := s.newDriver(t)
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			spec := blankSpec(t, "bad")
			mutate(&spec)
			vm, err := d.Start(ctxFor(t, opTimeout), spec)
			if err == nil {
				vm.Destroy(ctxFor(t, opTimeout))
				t.Fatal("start succeeded")
			}
			if !errors.Is(err, hypervisor.ErrInvalidSpec) {
				t.Errorf("err = %v, want ErrInvalidSpec", err)
			}
			t.Logf("error: %v", err)
			ids, err := d.List(ctxFor(t, opTimeout))
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range ids {
				if strings.HasPrefix(id, "ct-bad-") {
					t.Errorf("List() holds %s after a refused start", id)
				}
			}
			if _, err := d.Adopt(ctxFor(t, opTimeout), spec.ID); !errors.Is(err, hypervisor.ErrNotFound) {
				t.Errorf("adopt after a refused start: err = %v, want ErrNotFound", err)
			}
		})
	}
}

func (s *suite) bootImage(t *testing.T) {
	if s.image == "" {
		t.Skip("this driver boots no disk images (no test image given)")
	}
	// A driver that boots images must boot one in CI: a missing image
	// fails there rather than hiding that the boot was never checked.
	testenv.RequireFile(t, s.image, "make test-image builds it")
	// A private copy: the guest may write to its disk.
	format := hypervisor.FormatRaw
	if strings.HasSuffix(s.image, ".qcow2") {
		format = hypervisor.FormatQCOW2
	}
	disk := filepath.Join(t.TempDir(), "boot"+filepath.Ext(s.image))
	if err := copyFile(disk, s.image); err != nil {
		t.Fatal(err)
	}
	spec := hypervisor.VMSpec{
		ID:       newID("boot"),
		Name:     "conformance boot",
		VCPUs:    1,
		MemoryMB: 256,
		Disks:    []hypervisor.Disk{{Path: disk, Format: format, Serial: "rs-boot"}},
	}
	d := s.newDriver(t)
	began := time.Now()
	vm := start(t, d, spec)
	waitConsoleCount(t, vm, ReadyLine, 1, began, "first boot")

	// The image powers off on the ACPI power button: a soft reboot is a
	// real guest shutdown followed by a reset, and a second boot.
	began = time.Now()
	if err := vm.Reboot(ctxFor(t, bootTimeout), hypervisor.SoftReboot, bootTimeout); err != nil {
		t.Fatalf("soft reboot: %v", err)
	}
	waitConsoleCount(t, vm, PoweringOffLine, 1, began, "soft reboot: guest shut down")
	waitConsoleCount(t, vm, ReadyLine, 2, began, "soft reboot: second boot")
	waitState(t, vm, hypervisor.Running)

	// A power off with a long grace ends by the guest's own shutdown.
	began = time.Now()
	if err := vm.PowerOff(ctxFor(t, bootTimeout), bootTimeout); err != nil {
		t.Fatalf("power off: %v", err)
	}
	t.Logf("power off by the guest took %s", time.Since(began).Round(10*time.Millisecond))
	waitState(t, vm, hypervisor.Shutdown)
	waitConsoleCount(t, vm, PoweringOffLine, 2, began, "power off")
}

// PoweringOffLine is what the test image prints when it shuts down.
const PoweringOffLine = "RACKSTACK-TEST-IMAGE: powering off"

// waitConsoleCount waits until line appears n times in the console log.
func waitConsoleCount(t *testing.T, vm hypervisor.VM, line string, n int, since time.Time, why string) {
	t.Helper()
	deadline := time.Now().Add(bootTimeout)
	for {
		b, _ := os.ReadFile(vm.Console())
		if bytes.Count(b, []byte(line)) >= n {
			t.Logf("%s: %q after %s", why, line, time.Since(since).Round(100*time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %q not seen %d times in the console after %s; console tail:\n%s", why, line, n, bootTimeout, tail(b, 2000))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}
