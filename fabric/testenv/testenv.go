// Package testenv decides what a test does when the machine lacks
// something it needs (root, QEMU, a tool, a built test image): it skips
// with the reason, except under RACKSTACK_REQUIRE_INTEGRATION (set by
// .ci/run), where the machine is known to have all of it and a skip would
// hide a missing feature, so the test fails instead.
//
// It imports nothing of ours and sits at the ground of the tree beside
// fabric/store and fabric/api, so tests of every layer (node agents, the
// dataplane, the integration suite) may use it without an import running
// back up. Only tests and test-support packages import it.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// RequireEnv is the variable under which a missing prerequisite fails the
// test instead of skipping it.
const RequireEnv = "RACKSTACK_REQUIRE_INTEGRATION"

// Required reports whether prerequisites must be present (RequireEnv set).
func Required() bool { return os.Getenv(RequireEnv) != "" }

// Require skips t with why when ok is false, or fails it when Required.
func Require(t testing.TB, ok bool, why string) {
	t.Helper()
	if ok {
		return
	}
	if Required() {
		t.Fatalf("prerequisite missing and %s is set: %s", RequireEnv, why)
		return
	}
	t.Skipf("skipping: %s", why)
}

// RequireRoot requires that the test runs as root; purpose says what for
// ("load BPF programs").
func RequireRoot(t testing.TB, purpose string) {
	t.Helper()
	uid := os.Geteuid()
	Require(t, uid == 0, fmt.Sprintf("needs root to %s (running as uid %d)", purpose, uid))
}

// RequireCommand requires name on PATH (or, with a slash, at that path)
// and returns its path.
func RequireCommand(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	Require(t, err == nil, name+" is not installed (make test installs what the tests need)")
	return path
}

// RequireFile requires that path exists; how says how to make it
// ("make test-image").
func RequireFile(t testing.TB, path, how string) {
	t.Helper()
	_, err := os.Stat(path)
	Require(t, err == nil, fmt.Sprintf("%s is missing (%s): %v", path, how, err))
}
