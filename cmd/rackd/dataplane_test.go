package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
