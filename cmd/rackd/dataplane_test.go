package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestBPFDirPerDataDir checks two dev clouds on one host, both named
// "dev", get pin directories of their own, and that one cloud keeps its
// directory however its data dir is spelled.
func TestBPFDirPerDataDir(t *testing.T) {
	parse := func(args ...string) *options {
		t.Helper()
		o, err := parseFlags("dev", args, func(string) string { return "" }, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	first, second := bpfDir(parse("--data-dir", "/tmp/a")), bpfDir(parse("--data-dir", "/tmp/b"))
	if first == second {
		t.Fatalf("two data dirs share the pin directory %s", first)
	}
	if !strings.HasPrefix(filepath.Base(first), "dev-") {
		t.Errorf("pin directory %s does not name the node", first)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if rel, abs := bpfDir(parse()), bpfDir(parse("--data-dir", filepath.Join(wd, ".rackstack"))); rel != abs {
		t.Errorf("the default data dir gives %s, spelled absolute %s", rel, abs)
	}
	if got := bpfDir(parse("--bpf-dir", "/sys/fs/bpf/mine")); got != "/sys/fs/bpf/mine" {
		t.Errorf("--bpf-dir gives %s", got)
	}
}

// TestAdoptLegacyPins checks the upgrade from pins named by the node alone:
// the old directory moves to the new name, unless the new one exists or
// another process holds the old one.
func TestAdoptLegacyPins(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	setup := func(t *testing.T) (legacy, dir string) {
		root := t.TempDir()
		legacy, dir = filepath.Join(root, "dev"), filepath.Join(root, "dev-0123456789ab")
		if err := os.MkdirAll(filepath.Join(legacy, "links"), 0o700); err != nil {
			t.Fatal(err)
		}
		return legacy, dir
	}
	t.Run("moved", func(t *testing.T) {
		legacy, dir := setup(t)
		adoptLegacyPins(legacy, dir, log)
		if _, err := os.Stat(filepath.Join(dir, "links")); err != nil {
			t.Errorf("pins not moved: %v", err)
		}
		if _, err := os.Stat(legacy); err == nil {
			t.Errorf("old directory still there")
		}
	})
	t.Run("new directory exists", func(t *testing.T) {
		legacy, dir := setup(t)
		os.Mkdir(dir, 0o700)
		adoptLegacyPins(legacy, dir, log)
		if _, err := os.Stat(filepath.Join(legacy, "links")); err != nil {
			t.Errorf("old pins moved over an existing directory: %v", err)
		}
	})
	t.Run("held by another", func(t *testing.T) {
		legacy, dir := setup(t)
		f, err := os.Open(legacy)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
			t.Fatal(err)
		}
		adoptLegacyPins(legacy, dir, log)
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("pins another process holds were moved")
		}
	})
}
