package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestPurgeRemovesADevCloudOnlyWhenStopped(t *testing.T) {
	base := t.TempDir()
	o := &options{Name: "dev", DataDir: filepath.Join(base, "data"), VMRunDir: filepath.Join(base, "run"), BPFDir: filepath.Join(base, "pins"), Accel: "tcg"}
	for _, d := range []string{filepath.Join(o.DataDir, "raft"), o.VMRunDir, o.BPFDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	db := filepath.Join(o.DataDir, "raft", "raft.db")
	if err := os.WriteFile(db, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// A running rackd holds bolt's flock on its Raft log.
	held, err := os.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(held.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	err = purge(context.Background(), o, &out, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "a rackd is running") {
		t.Fatalf("purge while running: %v", err)
	}
	if _, err := os.Stat(o.DataDir); err != nil {
		t.Fatalf("a refused purge removed the data dir: %v", err)
	}
	held.Close()

	if err := purge(context.Background(), o, &out, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{o.DataDir, o.VMRunDir, o.BPFDir} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Fatalf("%s is still there after purge (%v)", d, err)
		}
		if !strings.Contains(out.String(), "removed "+d) {
			t.Fatalf("purge did not say it removed %s:\n%s", d, out.String())
		}
	}
}
