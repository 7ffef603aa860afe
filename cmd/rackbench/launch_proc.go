package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// What the launch suite reads of /proc: when a QEMU process started, and
// how much memory rackd and QEMU hold.
//
// A process's start time (field 22 of /proc/<pid>/stat) counts clock ticks
// since boot on CLOCK_BOOTTIME. The suite compares it with CLOCK_BOOTTIME
// read when it sent the POST, not with wall time from /proc/stat's btime:
// btime is whole seconds, too coarse for a figure in milliseconds.

// bootClock is the time since boot (CLOCK_BOOTTIME), the clock process
// start times are counted on.
func bootClock() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// startTicks reads field 22 (starttime) of a /proc/<pid>/stat line. Field
// 2, the command name in parentheses, may itself hold spaces and
// parentheses, so fields are counted from the last ')'.
func startTicks(stat string) (uint64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("parse stat: no command name")
	}
	f := strings.Fields(stat[i+1:])
	const field = 22 - 3 // f[0] is field 3, the state
	if len(f) <= field {
		return 0, fmt.Errorf("parse stat: %d fields after the command name, want more than %d", len(f), field)
	}
	n, err := strconv.ParseUint(f[field], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse stat: starttime: %w", err)
	}
	return n, nil
}

// clockTicks is USER_HZ, the unit of start times: the AT_CLKTCK entry of
// the auxiliary vector (sysconf(_SC_CLK_TCK) reads the same, and needs
// cgo). It is 100 on every Linux this runs on; that is the fallback.
func clockTicks() int {
	raw, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return 100
	}
	if hz, ok := auxvValue(raw, atClkTck); ok && hz > 0 {
		return int(hz)
	}
	return 100
}

// Auxiliary vector keys (linux/auxvec.h).
const (
	atNull   = 0
	atClkTck = 17
)

// auxvValue finds key in a 64-bit little-endian auxiliary vector: pairs
// of words ending with AT_NULL.
func auxvValue(auxv []byte, key uint64) (uint64, bool) {
	for len(auxv) >= 16 {
		k, v := binary.LittleEndian.Uint64(auxv), binary.LittleEndian.Uint64(auxv[8:])
		if k == atNull {
			break
		}
		if k == key {
			return v, true
		}
		auxv = auxv[16:]
	}
	return 0, false
}

// processStart is when pid started, as time since boot.
func processStart(pid int, hz int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	ticks, err := startTicks(string(raw))
	if err != nil {
		return 0, err
	}
	return time.Duration(ticks) * time.Second / time.Duration(hz), nil
}

// statusMiB reads a "kB" field such as VmRSS of a /proc/<pid>/status text,
// in MiB.
func statusMiB(status, field string) (float64, error) {
	for _, line := range strings.Split(status, "\n") {
		v, ok := strings.CutPrefix(line, field+":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
		if err != nil {
			return 0, fmt.Errorf("parse %s: %w", field, err)
		}
		return kb / 1024, nil
	}
	return 0, fmt.Errorf("no %s", field)
}

// rssMiB is the resident set size of pid.
func rssMiB(pid int) (float64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return statusMiB(string(raw), "VmRSS")
}

// qemuServerID says which server a process's argv runs, if it is a QEMU
// whose pid file lies in runDir (<runDir>/<server id>/qemu.pid, as the
// QEMU driver lays its run directory out).
func qemuServerID(argv []string, runDir string) (string, bool) {
	if len(argv) == 0 || filepath.Base(argv[0]) != "qemu-system-x86_64" {
		return "", false
	}
	for i := 1; i+1 < len(argv); i++ {
		if argv[i] != "-pidfile" {
			continue
		}
		dir, file := filepath.Split(argv[i+1])
		dir = filepath.Clean(dir)
		if file == "qemu.pid" && filepath.Dir(dir) == filepath.Clean(runDir) {
			return filepath.Base(dir), true
		}
	}
	return "", false
}

// qemuProcesses lists the QEMU processes whose run directory is in runDir,
// by server id. Only QEMUs of the rackd the suite started live there.
func qemuProcesses(runDir string) (map[string]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(raw) == 0 {
			continue // gone, or a kernel thread
		}
		argv := strings.Split(string(bytes.TrimRight(raw, "\x00")), "\x00")
		if id, ok := qemuServerID(argv, runDir); ok {
			// The launcher and the daemonized VM process share argv for
			// a moment: the VM process is the later one.
			if old, dup := out[id]; !dup || pid > old {
				out[id] = pid
			}
		}
	}
	return out, nil
}
