package dataplane

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrPinDirInUse is returned by Open when another process holds the pin
// directory: two loaders on one set of maps each write their own desired
// state over the other's, and both clouds lose their ports.
var ErrPinDirInUse = errors.New("pin directory in use")

// lockPinDir takes an exclusive flock on the pin directory itself (bpffs
// holds no regular files, so there is no lock file to put beside the
// pins). The lock lives as long as the returned file is open, and the
// kernel drops it when the process dies, so a crashed rackd never leaves
// a stale lock behind.
func lockPinDir(dir string) (*os.File, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("dataplane: lock pin directory: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder := lockHolder(f)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("dataplane: %w: %s is held by %s; every rackd on a host needs its own (give this one another --name, --data-dir or --bpf-dir)", ErrPinDirInUse, dir, holder)
		}
		return nil, fmt.Errorf("dataplane: lock pin directory %s: %w", dir, err)
	}
	return f, nil
}

// lockHolder names the process holding a flock on f, as /proc/locks and
// /proc/PID tell: its pid, command line and working directory (where a
// relative --data-dir is).
func lockHolder(f *os.File) string {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return "another process"
	}
	raw, err := os.ReadFile("/proc/locks")
	if err != nil {
		return "another process"
	}
	pid := lockPID(raw, fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino))
	if pid == 0 {
		return "another process"
	}
	who := "pid " + strconv.Itoa(pid)
	if pid == os.Getpid() {
		who += " (this process)"
	}
	if cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && len(cmd) > 0 {
		who += ": " + strings.TrimSpace(string(bytes.ReplaceAll(cmd, []byte{0}, []byte{' '})))
	}
	if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err == nil {
		who += " (in " + cwd + ")"
	}
	return who
}

// lockPID finds, in the text of /proc/locks, the pid holding a FLOCK on
// the inode written as "MAJ:MIN:INODE" (hex device numbers); 0 if none.
// Lines with "->" are processes waiting for the lock, not holding it.
func lockPID(procLocks []byte, inode string) int {
	sc := bufio.NewScanner(bytes.NewReader(procLocks))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// 1: FLOCK  ADVISORY  WRITE 16071 00:27:44403 0 EOF
		if len(f) < 6 || f[1] != "FLOCK" || f[5] != inode {
			continue
		}
		if pid, err := strconv.Atoi(f[4]); err == nil {
			return pid
		}
	}
	return 0
}
