//go:build integration

package integration

import (
	"fmt"
	"os"
	"testing"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// pidsDir holds each integration run's record of the processes it
// started (testenv.ProcessLog), shared by every checkout on the machine:
// a run killed by -timeout skips its cleanups, and the next run, whichever
// checkout it is from, stops what it left (runs are serialised by the
// integration lock, and a live run's record is never reaped).
const pidsDir = "/tmp/rackstack-integ-pids"

// procs is this run's record, set by TestMain (reapLeftovers) before any
// test runs, as binDir is.
var procs *testenv.ProcessLog

// reapLeftovers kills what earlier runs that did not end cleanly left
// running, and opens this run's record; the returned func removes it once
// the tests (and their cleanups) are done. `make purge` runs TestMain with
// no test to reap.
func reapLeftovers() func() {
	killed, err := testenv.Reap(pidsDir)
	if len(killed) > 0 {
		fmt.Fprintf(os.Stderr, "integration: killed processes an earlier run left behind: %v\n", killed)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration: reaping an earlier run's processes:", err)
	}
	procs, err = testenv.OpenProcessLog(pidsDir)
	if err != nil {
		// Not fatal: the tests run, only a killed run's leftovers would
		// not be found.
		fmt.Fprintln(os.Stderr, "integration: no record of started processes:", err)
		return func() {}
	}
	return func() { procs.Close() }
}

// recordProcess notes a process the test started (group: it leads its own
// process group, which goes with it) so that a later run can stop it if
// this one is killed before its cleanups.
func recordProcess(t *testing.T, pid int, group bool) {
	t.Helper()
	if procs == nil {
		return
	}
	if err := procs.Process(pid, group); err != nil {
		t.Logf("recording process %d: %v", pid, err)
	}
}

// recordPIDFile notes a PID file ("PID START") of a process started on
// the test's behalf (a simulated machine's QEMU, started by its BMC).
func recordPIDFile(t *testing.T, path string) {
	t.Helper()
	if procs == nil {
		return
	}
	if err := procs.PIDFile(path); err != nil {
		t.Logf("recording pid file %s: %v", path, err)
	}
}
