package qemu

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCmdlineMatches(t *testing.T) {
	const pidfile = "/run/vms/vm1/qemu.pid"
	tests := map[string]struct {
		args []string
		want bool
	}{
		"our qemu":          {args: []string{"/usr/bin/qemu-system-x86_64", "-name", "guest=vm1", "-pidfile", pidfile, "-daemonize"}, want: true},
		"relative binary":   {args: []string{"qemu-system-x86_64", "-pidfile", pidfile}, want: true},
		"other vm's qemu":   {args: []string{"/usr/bin/qemu-system-x86_64", "-pidfile", "/run/vms/vm2/qemu.pid"}},
		"pid reused":        {args: []string{"/usr/bin/sleep", "-pidfile", pidfile}},
		"zombie":            {args: nil},
		"pidfile last":      {args: []string{"/usr/bin/qemu-system-x86_64", "-pidfile"}},
		"pidfile as value":  {args: []string{"/usr/bin/qemu-system-x86_64", "-name", pidfile}},
		"prefix of pidfile": {args: []string{"/usr/bin/qemu-system-x86_64", "-pidfile", pidfile + ".old"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var cmdline []byte
			if tc.args != nil {
				cmdline = []byte(strings.Join(tc.args, "\x00") + "\x00")
			}
			if got := cmdlineMatches(cmdline, pidfile); got != tc.want {
				t.Errorf("cmdlineMatches = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestLivePID(t *testing.T) {
	proc := t.TempDir()
	d := &Driver{procRoot: proc}
	p := newRunPaths(t.TempDir(), "vm1")
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeProc := func(pid, cmdline string) {
		dir := filepath.Join(proc, pid)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cmdline"), []byte(cmdline), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeProc("4242", "/usr/bin/qemu-system-x86_64\x00-pidfile\x00"+p.pidfile+"\x00")
	writeProc("4343", "/usr/bin/bash\x00")
	writeProc("4444", "") // a zombie

	tests := map[string]struct {
		pidfile string // content; "-" for no file
		want    int
	}{
		"alive":           {pidfile: "4242\n", want: 4242},
		"no pid file":     {pidfile: "-"},
		"garbage":         {pidfile: "qemu\n"},
		"negative":        {pidfile: "-1\n"},
		"reused pid":      {pidfile: "4343\n"},
		"zombie":          {pidfile: "4444\n"},
		"no such process": {pidfile: "4545\n"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			os.Remove(p.pidfile)
			if tc.pidfile != "-" {
				if err := os.WriteFile(p.pidfile, []byte(tc.pidfile), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if got := d.livePID(p); got != tc.want {
				t.Errorf("livePID = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestPowerState(t *testing.T) {
	tests := map[string]string{
		"running": "running", "paused": "paused", "prelaunch": "paused", "io-error": "paused",
		"suspended": "paused", "shutdown": "shutdown", "guest-panicked": "crashed", "internal-error": "crashed",
	}
	for qemu, want := range tests {
		if got := powerState(qemu); string(got) != want {
			t.Errorf("powerState(%q) = %q, want %q", qemu, got, want)
		}
	}
}

func TestDirectIO(t *testing.T) {
	f := filepath.Join(t.TempDir(), "disk.raw")
	if err := os.WriteFile(f, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	// Whatever the file system, a missing file is not "no O_DIRECT":
	// QEMU reports that one.
	if !directIO(filepath.Join(t.TempDir(), "missing")) {
		t.Error("directIO(missing) = false")
	}
	if _, err := os.Stat("/dev/shm"); err == nil {
		shm, err := os.CreateTemp("/dev/shm", "rackstack-directio-*")
		if err == nil {
			shm.Close()
			defer os.Remove(shm.Name())
			if directIO(shm.Name()) {
				t.Log("tmpfs accepts O_DIRECT on this kernel")
			}
		}
	}
	t.Logf("directIO(%s) = %v", f, directIO(f))
}
