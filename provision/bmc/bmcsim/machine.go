// Package bmcsim simulates the servers behind BMCs for tests and
// benchmarks: a Machine is a directory holding a QEMU command line, the
// boot override and the PID of the running QEMU. Power on starts that
// QEMU with the boot order the override asks for, power off kills it, and
// the power state is whether it runs — the way sushy-tools and virtualbmc
// drive libvirt. Two BMCs drive machines: ipmi_sim (Debian's openipmi),
// through the chassis-control program (Chassis, run as `rack-bmcsim
// chassis`), and a small Redfish service (Redfish).
//
// It imports nothing of ours but fabric/testenv (which imports nothing
// of ours), so tests of any layer and cmd/rack-bmcsim use it.
package bmcsim

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// Files in a machine directory.
const (
	// ArgvFile holds the QEMU command line, one argument per line, the
	// program first. The harness writes it; a "-boot" argument in it is
	// replaced by the boot override's order when there is one.
	ArgvFile = "argv"
	// BootFile holds the boot override (JSON, see Boot).
	BootFile = "boot.json"
	// PIDFile holds the PID of the running QEMU and its start time.
	PIDFile = "pid"
	// LogFile receives QEMU's standard output and error.
	LogFile  = "qemu.log"
	lockFile = "lock"
)

// Boot devices, as the BMCs name them to the machine.
const (
	DevPXE  = "pxe"
	DevDisk = "disk"
)

// Boot is the boot override: a persistent device, and a one-time device
// the next power on consumes. "" is no override.
type Boot struct {
	Persistent string `json:"persistent,omitempty"`
	Once       string `json:"once,omitempty"`
}

// Current is the device the next power on boots and whether it stays.
func (b Boot) Current() (dev string, persistent bool) {
	if b.Once != "" {
		return b.Once, false
	}
	return b.Persistent, b.Persistent != ""
}

// Machine is a simulated server in Dir. Methods lock the directory, so a
// Redfish service and ipmi_sim's chassis program may share one.
type Machine struct {
	Dir string
}

// Create makes a machine directory whose QEMU runs argv (program first).
func Create(dir string, argv []string) (*Machine, error) {
	if len(argv) == 0 {
		return nil, errors.New("create machine: empty command line")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create machine: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ArgvFile), []byte(strings.Join(argv, "\n")+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("create machine: %w", err)
	}
	return &Machine{Dir: dir}, nil
}

// lock takes the directory's lock; the returned func releases it.
func (m *Machine) lock() (func(), error) {
	f, err := os.OpenFile(filepath.Join(m.Dir, lockFile), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock machine %s: %w", m.Dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock machine %s: %w", m.Dir, err)
	}
	return func() { f.Close() }, nil
}

// PowerState reports whether the machine's QEMU runs.
func (m *Machine) PowerState() (bool, error) {
	unlock, err := m.lock()
	if err != nil {
		return false, err
	}
	defer unlock()
	pid, err := m.pid()
	return pid != 0, err
}

// pid returns the PID of the running QEMU, 0 when none runs. The PID
// file holds the PID and the process's start time: a PID whose process is
// gone, a zombie, or started at another time (the PID was reused) counts
// as none. The start time, not the command line, identifies it, because
// the command may exec another (`ip netns exec NS qemu-system-x86_64 …`).
func (m *Machine) pid() (int, error) {
	b, err := os.ReadFile(filepath.Join(m.Dir, PIDFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read pid: %w", err)
	}
	fields := strings.Fields(string(b))
	if len(fields) != 2 {
		return 0, nil
	}
	pid, err := strconv.Atoi(fields[0])
	if err != nil || pid <= 0 {
		return 0, nil
	}
	if start, ok := testenv.StartTime(pid); !ok || start != fields[1] {
		return 0, nil
	}
	return pid, nil
}

func alive(pid int) bool {
	_, ok := testenv.StartTime(pid)
	return ok
}

func (m *Machine) argv() ([]string, error) {
	f, err := os.Open(filepath.Join(m.Dir, ArgvFile))
	if err != nil {
		return nil, fmt.Errorf("read command line: %w", err)
	}
	defer f.Close()
	var argv []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if line := sc.Text(); line != "" {
			argv = append(argv, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read command line: %w", err)
	}
	if len(argv) == 0 {
		return nil, fmt.Errorf("read command line: %s is empty", filepath.Join(m.Dir, ArgvFile))
	}
	return argv, nil
}

// Boot reads the boot override.
func (m *Machine) Boot() (Boot, error) {
	unlock, err := m.lock()
	if err != nil {
		return Boot{}, err
	}
	defer unlock()
	return m.boot()
}

func (m *Machine) boot() (Boot, error) {
	var b Boot
	data, err := os.ReadFile(filepath.Join(m.Dir, BootFile))
	if errors.Is(err, os.ErrNotExist) {
		return b, nil
	}
	if err != nil {
		return b, fmt.Errorf("read boot override: %w", err)
	}
	if err := json.Unmarshal(data, &b); err != nil {
		return b, fmt.Errorf("read boot override: %w", err)
	}
	return b, nil
}

func (m *Machine) writeBoot(b Boot) error {
	data, _ := json.Marshal(b)
	tmp := filepath.Join(m.Dir, BootFile+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write boot override: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(m.Dir, BootFile)); err != nil {
		return fmt.Errorf("write boot override: %w", err)
	}
	return nil
}

// SetBoot sets the boot override: dev (DevPXE, DevDisk, or "" for none)
// for every boot or only the next power on.
func (m *Machine) SetBoot(dev string, persistent bool) error {
	if dev != "" && dev != DevPXE && dev != DevDisk {
		return fmt.Errorf("set boot device %q: want %s or %s", dev, DevPXE, DevDisk)
	}
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	b, err := m.boot()
	if err != nil {
		return err
	}
	if persistent {
		b = Boot{Persistent: dev}
	} else {
		b.Once = dev
	}
	return m.writeBoot(b)
}

// PowerOn starts QEMU unless it runs. A one-time boot override is used
// and cleared. The started process outlives the caller (ipmi_sim's
// chassis program exits at once); wait, when set, is given the started
// process so a long-lived caller can reap it.
func (m *Machine) PowerOn(wait func(*os.Process)) error {
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	return m.powerOn(wait)
}

func (m *Machine) powerOn(wait func(*os.Process)) error {
	if pid, err := m.pid(); err != nil || pid != 0 {
		return err
	}
	argv, err := m.argv()
	if err != nil {
		return err
	}
	b, err := m.boot()
	if err != nil {
		return err
	}
	dev, _ := b.Current()
	argv = withBootOrder(argv, dev)
	log, err := os.OpenFile(filepath.Join(m.Dir, LogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("power on: %w", err)
	}
	defer log.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = m.Dir
	cmd.Stdout, cmd.Stderr = log, log
	// Its own session: ipmi_sim's signals and the chassis program's exit
	// do not reach it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("power on: %w", err)
	}
	start, ok := testenv.StartTime(cmd.Process.Pid)
	if !ok {
		// It exited at once: the command line is wrong. Its log says why.
		_, _ = cmd.Process.Wait()
		return fmt.Errorf("power on: %s exited at once (see %s)", argv[0], filepath.Join(m.Dir, LogFile))
	}
	if err := os.WriteFile(filepath.Join(m.Dir, PIDFile), []byte(fmt.Sprintf("%d %s\n", cmd.Process.Pid, start)), 0o644); err != nil {
		_ = cmd.Process.Kill()
		return fmt.Errorf("power on: %w", err)
	}
	if wait != nil {
		wait(cmd.Process)
	} else {
		_ = cmd.Process.Release()
	}
	if b.Once != "" {
		b.Once = ""
		return m.writeBoot(b)
	}
	return nil
}

// withBootOrder sets QEMU's boot order for dev: network (n) or first
// disk (c), replacing a -boot argument; no override keeps argv.
func withBootOrder(argv []string, dev string) []string {
	order := map[string]string{DevPXE: "order=n", DevDisk: "order=c"}[dev]
	if order == "" {
		return argv
	}
	out := append([]string(nil), argv...)
	for i := 1; i < len(out)-1; i++ {
		if out[i] == "-boot" {
			out[i+1] = order
			return out
		}
	}
	return append(out, "-boot", order)
}

// PowerOff stops QEMU: SIGKILL (a pulled plug), or with graceful SIGTERM
// (QEMU shuts down cleanly on it, as on an ACPI power button the guest
// honours), and waits until it is gone.
func (m *Machine) PowerOff(graceful bool) error {
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	return m.powerOff(graceful)
}

func (m *Machine) powerOff(graceful bool) error {
	pid, err := m.pid()
	if err != nil || pid == 0 {
		return err
	}
	sig := syscall.SIGKILL
	if graceful {
		sig = syscall.SIGTERM
	}
	if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("power off: kill %d: %w", pid, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			if sig == syscall.SIGKILL {
				return fmt.Errorf("power off: process %d still runs 10 s after SIGKILL", pid)
			}
			sig = syscall.SIGKILL
			_ = syscall.Kill(pid, sig)
			deadline = time.Now().Add(10 * time.Second)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := os.Remove(filepath.Join(m.Dir, PIDFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("power off: %w", err)
	}
	return nil
}

// Reset restarts QEMU (off, then on, with the boot override), or starts
// it when off.
func (m *Machine) Reset(wait func(*os.Process)) error {
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if err := m.powerOff(false); err != nil {
		return err
	}
	return m.powerOn(wait)
}
