// Package qemu runs VMs as QEMU processes: it is the hypervisor.Driver of a
// node. Each VM is one daemonized qemu-system-x86_64 in its own session,
// driven over QMP, with its files in a run directory <RunDir>/<id>/ (pid
// file, QMP and serial sockets, console log, QEMU's stderr, and spec.json,
// the spec it was started with). Everything the driver knows is in those
// files and in /proc, so a restarted rackd adopts the VMs the last one
// started, and killing rackd never takes a guest down.
//
// The driver holds no QMP connection between calls: each operation dials
// the monitor, runs its commands and hangs up, so a restarted rackd (or an
// operator's qmp-shell) can always connect. It never deletes disk images:
// they belong to the caller.
package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/rackstack/rackstack/fabric/revert"
	"github.com/rackstack/rackstack/node/hypervisor"
	"github.com/rackstack/rackstack/node/hypervisor/qmp"
)

// Config configures a Driver.
type Config struct {
	// RunDir holds one directory per VM. Keep it short: the sockets in it
	// must fit a unix socket path (107 bytes), so RunDir plus the longest
	// id plus "/serial.sock" must too. Required.
	RunDir string
	// Binary is the QEMU to run; "qemu-system-x86_64" (from PATH) if empty.
	Binary string
	// Accelerator is "auto" (the default: KVM when the host has hardware
	// virtualisation and a usable /dev/kvm, TCG otherwise), "kvm" or "tcg".
	Accelerator string
	// Machine is the QEMU machine type; "q35" if empty.
	Machine string
	// StartTimeout bounds QEMU's own start-up, until it has daemonized;
	// 30s if zero.
	StartTimeout time.Duration
	// Logger receives the accelerator choice and VM lifecycle events;
	// slog.Default() if nil.
	Logger *slog.Logger
}

// Driver is the QEMU hypervisor.Driver.
type Driver struct {
	runDir       string
	binary       string
	machine      string
	accel        string
	startTimeout time.Duration
	log          *slog.Logger

	// Seams for tests.
	procRoot string
	directIO func(path string) bool
}

var _ hypervisor.Driver = (*Driver)(nil)

// New checks the configuration, finds QEMU, chooses the accelerator (and
// logs the choice), and creates RunDir.
func New(cfg Config) (*Driver, error) {
	if cfg.RunDir == "" {
		return nil, errors.New("qemu driver: run dir required")
	}
	runDir, err := filepath.Abs(cfg.RunDir)
	if err != nil {
		return nil, fmt.Errorf("qemu driver: run dir: %w", err)
	}
	if err := os.MkdirAll(runDir, 0o750); err != nil {
		return nil, fmt.Errorf("qemu driver: create run dir: %w", err)
	}
	bin := cfg.Binary
	if bin == "" {
		bin = "qemu-system-x86_64"
	}
	binary, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("qemu driver: find %s: %w", bin, err)
	}
	if binary, err = filepath.Abs(binary); err != nil {
		return nil, fmt.Errorf("qemu driver: find %s: %w", bin, err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	cpuinfo, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return nil, fmt.Errorf("qemu driver: read cpuinfo: %w", err)
	}
	accel, reason, err := ProbeAccelerator(cfg.Accelerator, cpuinfo, kvmUsable)
	if err != nil {
		return nil, fmt.Errorf("qemu driver: %w", err)
	}
	log.Info("hypervisor accelerator chosen", "accel", accel, "cpu", cpuModel(accel), "reason", reason)
	d := &Driver{
		runDir:       runDir,
		binary:       binary,
		machine:      cfg.Machine,
		accel:        accel,
		startTimeout: cfg.StartTimeout,
		log:          log,
		procRoot:     "/proc",
		directIO:     directIO,
	}
	if d.machine == "" {
		d.machine = "q35"
	}
	if d.startTimeout <= 0 {
		d.startTimeout = 30 * time.Second
	}
	return d, nil
}

// Accelerator implements hypervisor.Driver.
func (d *Driver) Accelerator() string { return d.accel }

// Start implements hypervisor.Driver.
func (d *Driver) Start(ctx context.Context, spec hypervisor.VMSpec) (hypervisor.VM, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.ID, err)
	}
	if err := spec.CheckFiles(); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.ID, err)
	}
	p := newRunPaths(d.runDir, spec.ID)
	if n := max(len(p.qmp), len(p.serial), len(p.vnc)); n > maxSocketPath {
		return nil, fmt.Errorf("start %s: socket path %s is %d bytes, more than %d: use a shorter run dir", spec.ID, p.serial, n, maxSocketPath)
	}
	lock, err := d.lock(spec.ID)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.ID, err)
	}
	defer lock.unlock()

	if pid := d.livePID(p); pid != 0 {
		old, err := readSpec(p.spec)
		if err != nil || !old.Equal(spec) {
			return nil, fmt.Errorf("start %s: running (pid %d) with a different spec: %w", spec.ID, pid, hypervisor.ErrExists)
		}
		if !d.husk(ctx, p) {
			return &vm{d: d, id: spec.ID, p: p}, nil
		}
		// The guest shut down while QEMU was told to wait (a soft reboot
		// cut short by a rackd restart): start it afresh.
		d.log.Info("vm process holds a shut-down guest; restarting it", "id", spec.ID, "pid", pid)
		if err := d.stop(ctx, pid, p); err != nil {
			return nil, fmt.Errorf("start %s: %w", spec.ID, err)
		}
	}
	if err := d.boot(ctx, spec, p, false); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.ID, err)
	}
	return &vm{d: d, id: spec.ID, p: p}, nil
}

// boot starts QEMU for spec. On failure it leaves the run directory as it
// found it: gone if it was new, with the previous spec if not.
func (d *Driver) boot(ctx context.Context, spec hypervisor.VMSpec, p runPaths, incoming bool) error {
	began := time.Now()
	undo := revert.New()
	defer undo.Fail()

	if _, statErr := os.Stat(p.dir); errors.Is(statErr, fs.ErrNotExist) {
		if err := os.MkdirAll(p.dir, 0o750); err != nil {
			return fmt.Errorf("create run dir: %w", err)
		}
		undo.Add(func() { os.RemoveAll(p.dir) })
	} else if old, readErr := os.ReadFile(p.spec); readErr == nil {
		undo.Add(func() { os.WriteFile(p.spec, old, 0o640) })
	}
	removeStale(p)
	if err := writeSpec(p.spec, spec); err != nil {
		return err
	}

	for _, disk := range spec.Disks {
		if disk.Encryption != nil && disk.Encryption.Format {
			if err := d.formatBootDisk(ctx, disk); err != nil {
				return err
			}
		}
	}
	keyFiles, keys, err := keyPipes(spec)
	if err != nil {
		return err
	}
	defer closeAll(keyFiles) // QEMU holds its own ends once started
	args := buildArgs(spec, launch{paths: p, accel: d.accel, machine: d.machine, cache: d.cacheMode, keys: keys, incoming: incoming})
	stderr, err := os.OpenFile(p.log, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("open qemu log: %w", err)
	}
	defer stderr.Close()
	fmt.Fprintf(stderr, "# %s %s\n", d.binary, strings.Join(args, " "))

	// Not exec.CommandContext: the VM must outlive ctx and rackd. The
	// process we start is only QEMU's launcher; it exits once the VM
	// process (its daemonized child) is set up.
	cmd := exec.Command(d.binary, args...)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.ExtraFiles = keyFiles
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", d.binary, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	timeout := time.NewTimer(d.startTimeout)
	defer timeout.Stop()
	waited := false
	select {
	case err = <-exited:
		waited = true
	case <-ctx.Done():
		err = ctx.Err()
	case <-timeout.C:
		err = fmt.Errorf("qemu did not finish starting in %s", d.startTimeout)
	}
	if err != nil {
		if !waited { // the launcher still runs: we gave up on it
			cmd.Process.Kill()
			<-exited
		}
		if pid := d.livePID(p); pid != 0 { // the VM process got as far as its pid file
			d.kill(pid, p)
			d.waitGone(context.Background(), pid, p, 5*time.Second)
		}
		removeStale(p)
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return fmt.Errorf("qemu: %s: %s", exit, lastLines(p.log, 5))
		}
		return fmt.Errorf("qemu: %w", err)
	}

	pid := d.livePID(p)
	if pid == 0 {
		return fmt.Errorf("qemu started but no process runs with pid file %s: %s", p.pidfile, lastLines(p.log, 5))
	}
	undo.Add(func() {
		d.kill(pid, p)
		d.waitGone(context.Background(), pid, p, 5*time.Second)
		removeStale(p)
	})
	var st status
	if err := d.monitor(ctx, p, func(c *qmp.Client) error {
		return c.Execute(ctx, "query-status", nil, &st)
	}); err != nil {
		return err
	}
	undo.Success()
	d.log.Info("vm started", "id", spec.ID, "pid", pid, "accel", d.accel,
		"status", st.Status, "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// husk reports whether the VM's live process holds a guest that has shut
// down (run state "shutdown": QEMU was told to pause, not exit, on guest
// shutdown). When QMP does not answer, it is not known to be one.
func (d *Driver) husk(ctx context.Context, p runPaths) bool {
	ctx, cancel := context.WithTimeout(ctx, quitTimeout)
	defer cancel()
	var st status
	err := d.monitor(ctx, p, func(c *qmp.Client) error {
		return c.Execute(ctx, "query-status", nil, &st)
	})
	return err == nil && st.Status == "shutdown"
}

// cacheMode picks cache=none where O_DIRECT works, writeback elsewhere.
func (d *Driver) cacheMode(path string) string {
	if d.directIO(path) {
		return cacheNone
	}
	return cacheWriteback
}

// Adopt implements hypervisor.Driver. A VM whose process is gone is still
// adopted (its State is Shutdown, and Start boots it again); only a VM
// with no run directory is ErrNotFound. A live VM must answer on QMP.
func (d *Driver) Adopt(ctx context.Context, id string) (hypervisor.VM, error) {
	if !validID(id) {
		return nil, fmt.Errorf("adopt %s: %w", id, hypervisor.ErrNotFound)
	}
	p := newRunPaths(d.runDir, id)
	if _, err := readSpec(p.spec); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("adopt %s: %w", id, hypervisor.ErrNotFound)
		}
		return nil, fmt.Errorf("adopt %s: %w", id, err)
	}
	if pid := d.livePID(p); pid != 0 {
		if err := d.monitor(ctx, p, func(c *qmp.Client) error {
			return c.Execute(ctx, "query-status", nil, nil)
		}); err != nil {
			return nil, fmt.Errorf("adopt %s: pid %d: %w", id, pid, err)
		}
		// Adopt is also how callers look a VM up, every pass of the node
		// agent: the agent logs an adoption once, when it is news.
		d.log.Debug("vm adopted", "id", id, "pid", pid)
	}
	return &vm{d: d, id: id, p: p}, nil
}

// List implements hypervisor.Driver: the directories of RunDir holding a
// spec.json.
func (d *Driver) List(ctx context.Context) ([]string, error) {
	entries, err := os.ReadDir(d.runDir)
	if err != nil {
		return nil, fmt.Errorf("list vms: %w", err)
	}
	var ids []string
	for _, e := range entries {
		if !e.IsDir() || !validID(e.Name()) {
			continue
		}
		if _, err := os.Stat(filepath.Join(d.runDir, e.Name(), "spec.json")); err == nil {
			ids = append(ids, e.Name())
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// monitor dials the VM's QMP socket, runs fn, and hangs up.
func (d *Driver) monitor(ctx context.Context, p runPaths, fn func(c *qmp.Client) error) error {
	c, err := qmp.Dial(ctx, p.qmp)
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(c)
}

// status is QMP's query-status reply.
type status struct {
	Status  string `json:"status"`
	Running bool   `json:"running"`
}

func validID(id string) bool {
	return hypervisor.VMSpec{ID: id, VCPUs: 1, MemoryMB: 1}.Validate() == nil
}

func readSpec(path string) (hypervisor.VMSpec, error) {
	var s hypervisor.VMSpec
	b, err := os.ReadFile(path)
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("read %s: %w", path, err)
	}
	return s, nil
}

// writeSpec replaces path atomically, so a crash never leaves half a spec.
func writeSpec(path string, s hypervisor.VMSpec) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o640); err != nil {
		return fmt.Errorf("write spec: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write spec: %w", err)
	}
	return nil
}

// lastLines returns the last n non-empty lines of a file, joined by "; ",
// skipping our own "#" header: where QEMU says why it failed.
func lastLines(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 1<<20))
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "# ") {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 0 {
		return "(no output)"
	}
	return strings.Join(lines, "; ")
}
