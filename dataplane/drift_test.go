package dataplane

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/bpf"
)

// TestSecondLoaderRefused opens the pins a loaded dataplane holds: a
// second rackd on the same pin directory must not start, and must say who
// has it, instead of writing its own state over the first one's.
func TestSecondLoaderRefused(t *testing.T) {
	d := fixture(t)
	second, err := Open(d.cfg)
	if err == nil {
		second.Close()
		t.Fatal("a second loader opened pins another one holds")
	}
	if !errors.Is(err, ErrPinDirInUse) {
		t.Fatalf("error %v, want ErrPinDirInUse", err)
	}
	for _, want := range []string{d.cfg.PinDir, fmt.Sprintf("pid %d", os.Getpid()), "--bpf-dir"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	t.Logf("refused: %v", err)
	// The first one's maps are untouched.
	if r := d.run(t, d.objs.PortIn, "tapa", frame{src: macA, dst: macB}.tcp("10.0.0.10", "10.0.0.11", 40000, 22)); r.String() != "REDIRECT [fwd_local]" {
		t.Errorf("ssh after the refused open: %s", r)
	}
	// Closed, the pins are free for the next rackd.
	d.Close()
	d2, err := Open(d.cfg)
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	d2.Close()
}

func TestLockPID(t *testing.T) {
	locks := []byte(`1: POSIX  ADVISORY  WRITE 9672 fe:00:398608 0 EOF
2: FLOCK  ADVISORY  WRITE 16071 00:27:44403 0 EOF
2: -> FLOCK  ADVISORY  WRITE 16099 00:27:44403 0 EOF
3: FLOCK  ADVISORY  WRITE 9591 fe:00:9980562 0 EOF
`)
	cases := map[string]struct {
		inode string
		want  int
	}{
		"held":              {"00:27:44403", 16071},
		"another inode":     {"fe:00:9980562", 9591},
		"posix, not flock":  {"fe:00:398608", 0},
		"nobody holds it":   {"00:27:1", 0},
		"inode of a prefix": {"00:27:4440", 0},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if got := lockPID(locks, c.inode); got != c.want {
				t.Errorf("lockPID(%s) = %d, want %d", c.inode, got, c.want)
			}
		})
	}
}

// TestVerifyRepairsDrift removes entries and pins behind the dataplane's
// back, as a second loader or bpftool would: Apply alone would never put
// them back; Verify finds, counts and repairs them.
func TestVerifyRepairsDrift(t *testing.T) {
	d := fixture(t)
	ssh := frame{src: macA, dst: macB}.tcp("10.0.0.10", "10.0.0.11", 40000, 22)
	if drift, err := d.Verify(); err != nil || drift.Total() != 0 {
		t.Fatalf("verify right after apply: drift %v, err %v", drift, err)
	}
	var fdbKey bpf.DataplaneFdbKey
	for k, v := range d.cur.fdb {
		if v == d.ifindex(t, "tapb") {
			fdbKey = k
		}
	}
	if err := d.objs.Fdb.Delete(fdbKey); err != nil {
		t.Fatal(err)
	}
	if err := d.objs.Ports.Delete(d.ifindex(t, "tapa")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(d.cfg.PinDir, bpf.DataplaneMapRules)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(d.linkPin("tapb")); err != nil {
		t.Fatal(err)
	}
	if r := d.run(t, d.objs.PortIn, "tapa", ssh); r.String() == "REDIRECT [fwd_local]" {
		t.Fatalf("ssh still forwarded with a's port and b's FDB entry gone: %s", r)
	}
	if _, err := d.Apply(fixtureState()); err != nil {
		t.Fatal(err)
	}
	if r := d.run(t, d.objs.PortIn, "tapa", ssh); r.String() == "REDIRECT [fwd_local]" {
		t.Fatalf("Apply repaired the drift by itself; this test no longer shows what Verify is for: %s", r)
	}

	drift, err := d.Verify()
	if err != nil {
		t.Fatal(err)
	}
	want := Drift{bpf.DataplaneMapFdb: 1, bpf.DataplaneMapPorts: 1, "pins": 2}
	if drift.String() != want.String() {
		t.Errorf("drift %s, want %s", drift, want)
	}
	if r := d.run(t, d.objs.PortIn, "tapa", ssh); r.String() != "REDIRECT [fwd_local]" {
		t.Errorf("ssh after the repair: %s", r)
	}
	for _, p := range []string{filepath.Join(d.cfg.PinDir, bpf.DataplaneMapRules), d.linkPin("tapb")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("pin not restored: %v", err)
		}
	}
	st, err := d.Status()
	if err != nil {
		t.Fatal(err)
	}
	if st.Drift.Repaired != 4 || st.Drift.Last.String() != want.String() || st.Drift.LastAt.IsZero() {
		t.Errorf("status drift %+v, want 4 repaired, last %s", st.Drift, want)
	}
	if drift, err := d.Verify(); err != nil || drift.Total() != 0 {
		t.Errorf("verify after the repair: drift %v, err %v", drift, err)
	}
}

// TestVerifyRecreatesRemovedPinDir removes the whole pin directory, as
// `rm -r` or another rackd's Destroy would: the lock went with it, so
// Verify must lock the new directory before re-pinning into it, and fail
// (and say so in the status) while someone else holds it.
func TestVerifyRecreatesRemovedPinDir(t *testing.T) {
	d := fixture(t)
	if err := os.RemoveAll(d.cfg.PinDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(d.cfg.PinDir, 0o700); err != nil {
		t.Fatal(err)
	}
	other, err := lockPinDir(d.cfg.PinDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Verify(); !errors.Is(err, ErrPinDirInUse) {
		t.Fatalf("verify with the new directory held by another: %v, want ErrPinDirInUse", err)
	}
	if st := d.Drift(); !strings.Contains(st.Error, "in use") {
		t.Errorf("status error %q does not say the directory is in use", st.Error)
	}
	other.Close()

	drift, err := d.Verify()
	if err != nil {
		t.Fatal(err)
	}
	// Every map of the programs and five links (four ports and the
	// uplink) pinned again: a map verifyPins forgot would stay unpinned.
	spec, err := bpf.LoadDataplane()
	if err != nil {
		t.Fatal(err)
	}
	if want := (Drift{"pin_dir": 1, "pins": len(spec.Maps) + 5}); drift.String() != want.String() {
		t.Errorf("drift %s, want %s", drift, want)
	}
	if st := d.Drift(); st.Error != "" {
		t.Errorf("status error %q after a good check", st.Error)
	}
	if _, err := Open(d.cfg); !errors.Is(err, ErrPinDirInUse) {
		t.Errorf("a second loader on the recreated directory: %v, want ErrPinDirInUse", err)
	}
	// A restart finds everything through the new pins.
	cfg := d.cfg
	d.Close()
	d2, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d2.Destroy() })
	if len(d2.links) != 5 || len(d2.cur.ports) != 4 {
		t.Errorf("after reopening: %d links, %d ports, want 5 and 4", len(d2.links), len(d2.cur.ports))
	}
}
