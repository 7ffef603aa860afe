package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

// proc is a process a test started, and the channel its Wait closes.
type proc struct {
	*exec.Cmd
	done chan struct{}
}

// sleeper starts a process that runs until killed, in its own process
// group (or in group pgid when it is not 0), and kills and reaps it when
// the test ends.
func sleeper(t *testing.T, pgid int) proc {
	t.Helper()
	cmd := exec.Command("sleep", "600")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: pgid}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := proc{cmd, make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
	})
	return p
}

// stillRuns reports whether p has not exited (its Wait returns only once
// it is gone, so a kill shows within the grace).
func (p proc) stillRuns() bool {
	select {
	case <-p.done:
		return false
	case <-time.After(300 * time.Millisecond):
		return true
	}
}

func startOf(t *testing.T, pid int) string {
	t.Helper()
	s, ok := StartTime(pid)
	if !ok {
		t.Fatalf("no start time for %d", pid)
	}
	return s
}

// deadRun names a record as a run whose process is gone: this test's PID
// with a start time it does not have (the PID was reused).
func deadRun(t *testing.T, dir, body string) string {
	t.Helper()
	path := filepath.Join(dir, fmt.Sprintf("run-%d-1", os.Getpid()))
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReapKillsOnlyTheRecordedStartTime(t *testing.T) {
	dir := t.TempDir()
	recorded, reused := sleeper(t, 0), sleeper(t, 0)
	// reused stands for a process that got a recorded PID after the
	// recorded one exited: same PID, another start time.
	deadRun(t, dir, fmt.Sprintf("%d %s\n%d %s1\n", recorded.Process.Pid, startOf(t, recorded.Process.Pid),
		reused.Process.Pid, startOf(t, reused.Process.Pid)))
	killed, err := Reap(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(killed, []int{recorded.Process.Pid}) {
		t.Errorf("killed %v, want only %d", killed, recorded.Process.Pid)
	}
	if recorded.stillRuns() {
		t.Errorf("the recorded process %d still runs", recorded.Process.Pid)
	}
	if !reused.stillRuns() {
		t.Errorf("process %d, whose start time is not the recorded one, was killed", reused.Process.Pid)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("records left after reaping: %v", left)
	}
}

func TestReapLeavesARunningRunAlone(t *testing.T) {
	dir := t.TempDir()
	log, err := OpenProcessLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	p := sleeper(t, 0)
	if err := log.Process(p.Process.Pid, true); err != nil {
		t.Fatal(err)
	}
	// This test's process is the run, and it is alive.
	if killed, err := Reap(dir); err != nil || len(killed) != 0 {
		t.Fatalf("reap beside a live run: killed %v, %v", killed, err)
	}
	if !p.stillRuns() {
		t.Fatal("reap killed a live run's process")
	}
	if _, err := os.Stat(log.Path()); err != nil {
		t.Fatalf("a live run's record: %v", err)
	}
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(log.Path()); !os.IsNotExist(err) {
		t.Fatalf("record after Close: %v", err)
	}
}

func TestReapKillsGroupsAndPIDFiles(t *testing.T) {
	dir := t.TempDir()
	leader := sleeper(t, 0)
	// A member of leader's process group, as the children rackd starts
	// in its group are.
	member := sleeper(t, leader.Process.Pid)
	viaFile := sleeper(t, 0)
	pidFile := filepath.Join(t.TempDir(), "pid")
	if err := os.WriteFile(pidFile, []byte(fmt.Sprintf("%d %s\n", viaFile.Process.Pid, startOf(t, viaFile.Process.Pid))), 0o644); err != nil {
		t.Fatal(err)
	}
	deadRun(t, dir, fmt.Sprintf("%d %s group\npidfile %s\npidfile %s\n", leader.Process.Pid, startOf(t, leader.Process.Pid),
		pidFile, filepath.Join(dir, "a-machine-that-was-powered-off")))
	if _, err := Reap(dir); err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]proc{"group leader": leader, "group member": member, "pid file's process": viaFile} {
		if p.stillRuns() {
			t.Errorf("the %s %d still runs", name, p.Process.Pid)
		}
	}
}

func TestStartTimeOfAGoneProcess(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if s, ok := StartTime(cmd.Process.Pid); ok {
		t.Errorf("StartTime of exited %d = %s, want none", cmd.Process.Pid, s)
	}
}
