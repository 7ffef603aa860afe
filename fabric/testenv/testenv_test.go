package testenv

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// recorder stands in for a *testing.T: it records whether the test would
// have been skipped or failed (a real T would stop the goroutine).
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
}

func TestRequire(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "absent")
	for name, tc := range map[string]struct {
		env        string
		check      func(testing.TB)
		skip, fail bool
	}{
		"present":                  {check: func(t testing.TB) { Require(t, true, "x") }},
		"present, required":        {env: "1", check: func(t testing.TB) { Require(t, true, "x") }},
		"missing skips":            {check: func(t testing.TB) { Require(t, false, "x") }, skip: true},
		"missing fails in CI":      {env: "1", check: func(t testing.TB) { Require(t, false, "x") }, fail: true},
		"command found":            {env: "1", check: func(t testing.TB) { RequireCommand(t, "go") }},
		"command missing skips":    {check: func(t testing.TB) { RequireCommand(t, missing) }, skip: true},
		"command missing fails":    {env: "1", check: func(t testing.TB) { RequireCommand(t, missing) }, fail: true},
		"file missing fails in CI": {env: "1", check: func(t testing.TB) { RequireFile(t, missing, "make it") }, fail: true},
		"file present":             {env: "1", check: func(t testing.TB) { RequireFile(t, t.TempDir(), "") }},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(RequireEnv, tc.env)
			r := &recorder{TB: t}
			tc.check(r)
			if (r.skipped != "") != tc.skip || (r.failed != "") != tc.fail {
				t.Errorf("skipped %q, failed %q; want skip %v, fail %v", r.skipped, r.failed, tc.skip, tc.fail)
			}
		})
	}
}

// The reason names what is missing, so the skip line says what to install.
func TestReasonNamesTheMissingThing(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "genisoimage")
	t.Setenv(RequireEnv, "")
	r := &recorder{TB: t}
	RequireCommand(r, missing)
	if want := "skipping: " + missing + " is not installed"; !strings.HasPrefix(r.skipped, want) {
		t.Errorf("skip reason %q, want it to start with %q", r.skipped, want)
	}
}
