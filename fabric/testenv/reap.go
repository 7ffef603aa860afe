package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// ProcessLog is the record of the processes one test run started, a file
// in a directory shared by runs. A `go test` killed by -timeout runs no
// t.Cleanup, so the daemons and guests it started (each in its own
// process group or session, to outlive a test that stops rackd on
// purpose) would run on; the next run, or `make purge`, reads the records
// of runs that are gone and kills what they left (Reap).
//
// Each process is recorded with its start time from /proc/PID/stat, and
// killed only while the PID still has that start time: a PID the kernel
// has since given to another process is left alone.
type ProcessLog struct {
	mu   sync.Mutex
	path string
}

// Lines of a record: "PID START" (kill the process), "PID START group"
// (kill its process group, which it leads), "pidfile PATH" (a file holding
// "PID START" of a process the run's children start and stop, read when
// reaping: bmcsim's machine PID file).
const (
	recordGroup   = "group"
	recordPIDFile = "pidfile"
	recordPrefix  = "run-"
)

// OpenProcessLog creates the record of this process's run in dir.
func OpenProcessLog(dir string) (*ProcessLog, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create process log dir: %w", err)
	}
	start, ok := StartTime(os.Getpid())
	if !ok {
		return nil, errors.New("create process log: no start time for this process in /proc")
	}
	path := filepath.Join(dir, fmt.Sprintf("%s%d-%s", recordPrefix, os.Getpid(), start))
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		return nil, fmt.Errorf("create process log: %w", err)
	}
	return &ProcessLog{path: path}, nil
}

// Path is the record's file.
func (l *ProcessLog) Path() string { return l.path }

// Process records pid, started by this run; group says it leads its own
// process group, which is killed with it. A process that is gone already
// is not recorded.
func (l *ProcessLog) Process(pid int, group bool) error {
	start, ok := StartTime(pid)
	if !ok {
		return nil
	}
	line := fmt.Sprintf("%d %s", pid, start)
	if group {
		line += " " + recordGroup
	}
	return l.append(line)
}

// PIDFile records a file holding "PID START" of a process started on the
// run's behalf by another program (a BMC simulator's QEMU).
func (l *ProcessLog) PIDFile(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("record pid file: %w", err)
	}
	return l.append(recordPIDFile + " " + abs)
}

func (l *ProcessLog) append(line string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("record process: %w", err)
	}
	defer f.Close()
	if _, err := fmt.Fprintln(f, line); err != nil {
		return fmt.Errorf("record process: %w", err)
	}
	return nil
}

// Close removes the record: the run ended and its cleanups ran.
func (l *ProcessLog) Close() error {
	if err := os.Remove(l.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove process log: %w", err)
	}
	return nil
}

// Reap kills what the runs recorded in dir left behind, when they are
// gone, and removes their records; it returns the PIDs it killed. The
// record of a run that is still going (its process has the start time in
// the record's name) is left alone, so `make purge` beside a running test
// stops nothing of it.
func Reap(dir string) ([]int, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read process logs: %w", err)
	}
	var killed []int
	var errs []error
	for _, e := range entries {
		owner, start, ok := parseRecordName(e.Name())
		if !ok {
			continue
		}
		if now, alive := StartTime(owner); alive && now == start {
			continue
		}
		path := filepath.Join(dir, e.Name())
		k, err := reapRecord(path)
		killed = append(killed, k...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove process log: %w", err))
		}
	}
	return killed, errors.Join(errs...)
}

func parseRecordName(name string) (pid int, start string, ok bool) {
	rest, ok := strings.CutPrefix(name, recordPrefix)
	if !ok {
		return 0, "", false
	}
	p, start, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, "", false
	}
	pid, err := strconv.Atoi(p)
	return pid, start, err == nil && pid > 0 && start != ""
}

func reapRecord(path string) ([]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read process log: %w", err)
	}
	defer f.Close()
	var killed []int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 2 && fields[0] == recordPIDFile {
			b, err := os.ReadFile(fields[1])
			if err != nil {
				continue // that process was stopped, its file removed
			}
			fields = strings.Fields(string(b))
		}
		if len(fields) < 2 {
			continue
		}
		pid, err := strconv.Atoi(fields[0])
		if err != nil || pid <= 0 {
			continue
		}
		if killRecorded(pid, fields[1], len(fields) > 2 && fields[2] == recordGroup) {
			killed = append(killed, pid)
		}
	}
	if err := sc.Err(); err != nil {
		return killed, fmt.Errorf("read process log %s: %w", path, err)
	}
	return killed, nil
}

// killRecorded sends SIGKILL to pid (or its group) only if pid still has
// the start time recorded for it.
func killRecorded(pid int, start string, group bool) bool {
	if now, ok := StartTime(pid); !ok || now != start {
		return false
	}
	target := pid
	if group {
		if pgid, err := syscall.Getpgid(pid); err == nil && pgid == pid {
			target = -pid
		}
	}
	return syscall.Kill(target, syscall.SIGKILL) == nil
}

// StartTime reads a live process's start time (clock ticks since boot,
// field 22 of /proc/PID/stat); ok is false when it is gone or a zombie.
func StartTime(pid int) (string, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", false
	}
	// The command name is in parentheses and may hold blanks: the fields
	// after it start with the state; the start time is the twentieth.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return "", false
	}
	return f[19], true
}
