package qemu

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// livePID returns the pid of the QEMU process running the VM whose files
// are at p, or 0 if there is none. The pid file alone is not trusted: QEMU
// leaves it behind when killed, and the pid may since have been reused, so
// the process's command line must name this very pid file.
func (d *Driver) livePID(p runPaths) int {
	b, err := os.ReadFile(p.pidfile)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	if !d.runs(pid, p) {
		return 0
	}
	return pid
}

// runs reports whether pid is alive and is QEMU started for the VM at p. A
// zombie (exited, not yet reaped by its parent, which for a daemonized QEMU
// is init) has an empty command line, so it does not count.
func (d *Driver) runs(pid int, p runPaths) bool {
	b, err := os.ReadFile(filepath.Join(d.procRoot, strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return false
	}
	return cmdlineMatches(b, p.pidfile)
}

// cmdlineMatches reports whether a NUL-separated /proc/<pid>/cmdline is a
// QEMU's that writes pidfile.
func cmdlineMatches(cmdline []byte, pidfile string) bool {
	args := strings.Split(string(bytes.TrimRight(cmdline, "\x00")), "\x00")
	if len(args) < 2 || !strings.Contains(filepath.Base(args[0]), "qemu") {
		return false
	}
	for i := 1; i < len(args)-1; i++ {
		if args[i] == "-pidfile" && args[i+1] == pidfile {
			return true
		}
	}
	return false
}

// waitGone polls until the VM's process pid is gone, up to timeout or the
// end of ctx. It reports whether the process is gone.
func (d *Driver) waitGone(ctx context.Context, pid int, p runPaths, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if !d.runs(pid, p) {
			return true
		}
		select {
		case <-ctx.Done():
			return !d.runs(pid, p)
		case <-deadline.C:
			return !d.runs(pid, p)
		case <-tick.C:
		}
	}
}

// kill sends SIGKILL to pid, if it is still the VM's process.
func (d *Driver) kill(pid int, p runPaths) error {
	if !d.runs(pid, p) {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// removeStale removes what a QEMU that is gone may have left behind: a
// killed QEMU does not remove its pid file or sockets.
func removeStale(p runPaths) {
	for _, f := range []string{p.pidfile, p.qmp, p.serial, p.vnc} {
		os.Remove(f)
	}
}

// directIO reports whether path can be opened with O_DIRECT, which
// cache=none needs. tmpfs, for one, refuses it with EINVAL.
func directIO(path string) bool {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		// Only EINVAL says O_DIRECT itself is refused; any other failure
		// is QEMU's to report.
		return !errors.Is(err, unix.EINVAL)
	}
	unix.Close(fd)
	return true
}
