package main

import (
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestQuantile(t *testing.T) {
	cases := map[string]struct {
		xs   []float64
		p    float64
		want float64
	}{
		"none":                 {xs: nil, p: 50, want: 0},
		"one":                  {xs: []float64{7}, p: 95, want: 7},
		"odd median":           {xs: []float64{3, 1, 2}, p: 50, want: 2},
		"even median":          {xs: []float64{4, 1, 3, 2}, p: 50, want: 2.5},
		"p95 of three":         {xs: []float64{10, 30, 20}, p: 95, want: 29},
		"p95 of ten":           {xs: []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, p: 95, want: 9.55},
		"p100 is the largest":  {xs: []float64{5, 9, 1}, p: 100, want: 9},
		"p0 is the smallest":   {xs: []float64{5, 9, 1}, p: 0, want: 1},
		"out of range clamped": {xs: []float64{5, 9, 1}, p: 120, want: 9},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			in := append([]float64(nil), c.xs...)
			if got := quantile(c.xs, c.p); math.Abs(got-c.want) > 1e-9 {
				t.Errorf("quantile(%v, %v) = %v, want %v", c.xs, c.p, got, c.want)
			}
			for i := range in {
				if in[i] != c.xs[i] {
					t.Fatalf("quantile reordered its input: %v", c.xs)
				}
			}
		})
	}
}

func TestStartTicks(t *testing.T) {
	real, err := os.ReadFile("testdata/launch_qemu_stat.txt")
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		stat    string
		want    uint64
		wantErr string
	}{
		"qemu":                    {stat: string(real), want: 1575720},
		"name with spaces and ))": {stat: "42 (a) b) (c d) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10 18446744073709551615\n", want: 98765},
		"no name":                 {stat: "42 a S 1", wantErr: "no command name"},
		"cut short":               {stat: "42 (a) S 1 42 42 0", wantErr: "fields after the command name"},
		"not a number":            {stat: "42 (a) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 x 1000", wantErr: "starttime"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := startTicks(c.stat)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("start ticks %d, want %d", got, c.want)
			}
		})
	}
}

func TestStatusMiB(t *testing.T) {
	real, err := os.ReadFile("testdata/launch_qemu_status.txt")
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		status, field string
		want          float64
		wantErr       string
	}{
		"qemu VmRSS":  {status: string(real), field: "VmRSS", want: 210052.0 / 1024},
		"not VmRSS2":  {status: "VmRSS2:\t1 kB\nVmRSS:\t2048 kB\n", field: "VmRSS", want: 2},
		"missing":     {status: "Name:\tkthreadd\n", field: "VmRSS", wantErr: "no VmRSS"},
		"not numeric": {status: "VmRSS:\tlots kB\n", field: "VmRSS", wantErr: "parse VmRSS"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := statusMiB(c.status, c.field)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got-c.want) > 1e-9 {
				t.Errorf("%s = %v MiB, want %v", c.field, got, c.want)
			}
		})
	}
}

func TestAuxvValue(t *testing.T) {
	vec := func(pairs ...uint64) []byte {
		b := make([]byte, 8*len(pairs))
		for i, v := range pairs {
			binary.LittleEndian.PutUint64(b[8*i:], v)
		}
		return b
	}
	cases := map[string]struct {
		auxv []byte
		want uint64
		ok   bool
	}{
		"present":         {auxv: vec(6, 4096, atClkTck, 100, atNull, 0), want: 100, ok: true},
		"after AT_NULL":   {auxv: vec(6, 4096, atNull, 0, atClkTck, 250)},
		"absent":          {auxv: vec(6, 4096, atNull, 0)},
		"truncated entry": {auxv: vec(6, 4096, atClkTck)},
		"empty":           {},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got, ok := auxvValue(c.auxv, atClkTck)
			if got != c.want || ok != c.ok {
				t.Errorf("auxvValue = %d, %v; want %d, %v", got, ok, c.want, c.ok)
			}
		})
	}
}

func TestQEMUServerID(t *testing.T) {
	const runDir = "/run/rackbench-7"
	id := "3bac6cd3-6c88-474d-8816-555e1946c7c2"
	cases := map[string]struct {
		argv   []string
		wantID string
	}{
		"ours":                {argv: []string{"/usr/bin/qemu-system-x86_64", "-name", "guest=vm1", "-pidfile", runDir + "/" + id + "/qemu.pid", "-daemonize"}, wantID: id},
		"relative binary":     {argv: []string{"qemu-system-x86_64", "-pidfile", runDir + "/" + id + "/qemu.pid"}, wantID: id},
		"another run dir":     {argv: []string{"/usr/bin/qemu-system-x86_64", "-pidfile", "/run/rackstack/abc/" + id + "/qemu.pid"}},
		"nested deeper":       {argv: []string{"/usr/bin/qemu-system-x86_64", "-pidfile", runDir + "/x/" + id + "/qemu.pid"}},
		"not qemu":            {argv: []string{"/usr/bin/sleep", "-pidfile", runDir + "/" + id + "/qemu.pid"}},
		"pidfile last":        {argv: []string{"/usr/bin/qemu-system-x86_64", "-pidfile"}},
		"pid file as a value": {argv: []string{"/usr/bin/qemu-system-x86_64", "-name", runDir + "/" + id + "/qemu.pid"}},
		"empty":               {},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got, ok := qemuServerID(c.argv, runDir)
			if got != c.wantID || ok != (c.wantID != "") {
				t.Errorf("qemuServerID = %q, %v; want %q", got, ok, c.wantID)
			}
		})
	}
}

// Process start times and the suite's POST instants must be on one clock.
func TestProcessStartOnBootClock(t *testing.T) {
	hz := clockTicks()
	if hz <= 0 {
		t.Fatalf("clock ticks %d", hz)
	}
	tick := time.Second / time.Duration(hz)
	before := bootClock()
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sleep (coreutils): %v", err)
	}
	after := bootClock()
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	started, err := processStart(cmd.Process.Pid, hz)
	if err != nil {
		t.Fatal(err)
	}
	// Start times are whole ticks, rounded down.
	if started < before-tick || started > after {
		t.Errorf("child started at %s on the boot clock, want between %s and %s", started, before-tick, after)
	}
}

func TestFindTestImage(t *testing.T) {
	repo := t.TempDir()
	img := filepath.Join(repo, testImagePath)
	if err := os.MkdirAll(filepath.Dir(img), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, []byte("qcow2"), 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(repo, "cmd", "rackbench")
	os.MkdirAll(sub, 0o755)
	elsewhere := t.TempDir()

	t.Run("flag", func(t *testing.T) {
		got, err := findTestImage(img, "")
		if err != nil || got != img {
			t.Errorf("got %q, %v; want %q", got, err, img)
		}
	})
	t.Run("flag names a missing file", func(t *testing.T) {
		if _, err := findTestImage(filepath.Join(elsewhere, "none.qcow2"), ""); err == nil || !strings.Contains(err.Error(), "--image") {
			t.Errorf("err = %v, want one about --image", err)
		}
	})
	t.Run("above the current directory", func(t *testing.T) {
		t.Chdir(sub)
		got, err := findTestImage("", "")
		if err != nil || got != img {
			t.Errorf("got %q, %v; want %q", got, err, img)
		}
	})
	t.Run("beside the bin directory", func(t *testing.T) {
		t.Chdir(elsewhere)
		got, err := findTestImage("", filepath.Join(repo, "bin"))
		if err != nil || got != img {
			t.Errorf("got %q, %v; want %q", got, err, img)
		}
	})
	t.Run("nowhere", func(t *testing.T) {
		t.Chdir(elsewhere)
		if _, err := findTestImage("", filepath.Join(elsewhere, "bin")); err == nil || !strings.Contains(err.Error(), "make test-image") {
			t.Errorf("err = %v, want one that says to run make test-image", err)
		}
	})
}

func TestLaunchGoals(t *testing.T) {
	res := func(metric string, launches, atOnce int, v float64) Result {
		return newResult("launch", "rackstack", map[string]any{"launches": launches, "at_once": atOnce}, metric, "ms", []float64{v})
	}
	rs := []Result{
		res(metricControl, 1, 1, 250), res(metricQEMUStart, 1, 1, 120),
		res(metricControl, 8, 8, 900), res(metricQEMUStart, 8, 8, 700),
		res(metricBoot, 1, 1, 9),
	}
	got := launchGoals(rs)
	if len(got) != 2 {
		t.Fatalf("%d checks, want 2: %v", len(got), got)
	}
	for i, want := range []struct {
		met  bool
		text string
	}{
		{true, "launches=1 at_once=1: 250 ms (POST → QEMU process started: 120 ms), target ≤300 ms: met"},
		{false, "launches=8 at_once=8: 900 ms (POST → QEMU process started: 700 ms), target ≤300 ms: not met"},
	} {
		if got[i].met() != want.met || !strings.HasSuffix(got[i].String(), want.text) {
			t.Errorf("check %d: %q (met %v), want it to end %q (met %v)", i, got[i], got[i].met(), want.text, want.met)
		}
	}
	if none := launchGoals(nil); len(none) != 1 || none[0].met() || !strings.HasSuffix(none[0].String(), "not measured") {
		t.Errorf("no results: %v", none)
	}
}
